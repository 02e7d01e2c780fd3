package hookd

import (
	"regexp"
	"time"
)

// Organization is a tenant. Every endpoint, event and delivery belongs to exactly one.
type Organization struct {
	ID           string    `json:"id"`
	Name         string    `json:"name"`
	MonthlyQuota int64     `json:"monthly_quota"` // 0 = unlimited
	CreatedAt    time.Time `json:"created_at"`
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
	if o.MonthlyQuota < 0 {
		return FieldError("monthly_quota", "must not be negative")
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
