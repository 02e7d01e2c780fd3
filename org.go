package hookd

import (
	"regexp"
	"time"
)

// Organization is a tenant. Every endpoint, event and delivery belongs to exactly one.
type Organization struct {
	ID           string    `json:"id"`
	Name         string    `json:"name"`
	MonthlyQuota int64     `json:"monthly_quota"` // accepted events per calendar month (UTC); 0 = unlimited
	AllowOverage bool      `json:"allow_overage"` // past the quota, keep accepting (and counting) events
	CreatedAt    time.Time `json:"created_at"`
}

// MaxMonthlyQuota bounds a quota, so that its thresholds are computed exactly.
const MaxMonthlyQuota = 1 << 53

// UsagePeriod returns the calendar month (UTC) that t counts in, as "2006-01".
func UsagePeriod(t time.Time) string { return t.UTC().Format("2006-01") }

// Usage thresholds, in percent of the monthly quota: crossing each emits one
// usage_threshold event per month.
var UsageThresholds = []int{90, 100}

// UsageThreshold returns the number of events at which usage reaches percent of
// quota (rounded up: 90 % of 15 is 14).
func UsageThreshold(quota int64, percent int) int64 {
	return (quota*int64(percent) + 99) / 100
}

// QuotaExceeded reports whether a month's usage of events (the new ones included)
// is past o's quota with no overage allowed.
func (o *Organization) QuotaExceeded(events int64) bool {
	return o.MonthlyQuota > 0 && !o.AllowOverage && events > o.MonthlyQuota
}

// QuotaError is the EQUOTA error of an organization whose quota for period is used up.
func QuotaError(o *Organization, period string) *Error {
	return Errorf(EQUOTA, "organization %q has used its monthly quota of %d events for %s", o.ID, o.MonthlyQuota, period)
}

// ThresholdsReached returns the thresholds (percents, of UsageThresholds) that a
// month's usage of events has reached, of those not announced yet (announced
// lists the announced state of each of UsageThresholds). None without a quota.
func (o *Organization) ThresholdsReached(events int64, announced []bool) []int {
	var out []int
	if o.MonthlyQuota == 0 {
		return nil
	}
	for i, pct := range UsageThresholds {
		if !announced[i] && events >= UsageThreshold(o.MonthlyQuota, pct) {
			out = append(out, pct)
		}
	}
	return out
}

// Usage is an organization's count of accepted events in one period.
type Usage struct {
	OrgID  string
	Period string // "2006-01"
	Events int64
	Quota  int64 // the organization's monthly quota now; 0 = unlimited
}

var orgIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Validate reports the first invalid field of o as an EINVALID *Error.
func (o *Organization) Validate() error {
	if !orgIDPattern.MatchString(o.ID) {
		return FieldError("id", "must be 1–64 characters of A–Z a–z 0–9 _ -")
	}
	if o.Name == "" || len(o.Name) > 200 {
		return FieldError("name", "must be 1–200 characters")
	}
	if o.MonthlyQuota < 0 || o.MonthlyQuota > MaxMonthlyQuota {
		return FieldError("monthly_quota", "must be 0 (unlimited) to 2^53")
	}
	return nil
}

// APIKey is a management API key. Only the hash of the key is stored.
type APIKey struct {
	ID        string    // key_…
	OrgID     string    // "" for an admin key
	Hash      string    // hex SHA-256 of the key
	CreatedAt time.Time //
}

// Admin reports whether k is an admin key, valid for every organization.
func (k *APIKey) Admin() bool { return k.OrgID == "" }
