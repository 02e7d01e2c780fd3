package hookd

import (
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Payload modes of an endpoint.
const (
	PayloadEnvelope = "envelope" // {"id","type","timestamp","organization","data"}
	PayloadRaw      = "raw"      // the published data, byte for byte
)

// Orderings of an endpoint.
const (
	OrderingUnordered = "unordered" // deliveries may overlap
	OrderingFIFO      = "fifo"      // one at a time, in publish order
)

// Limits on endpoint fields.
const (
	MaxEventPatterns = 100
	MaxHeaders       = 32
	MaxDescription   = 1024
	MaxURLLength     = 2048
	MaxMaxInFlight   = 1000
	MaxRateLimit     = 100000
)

// Endpoint is a webhook subscription: where an organization's events of the
// subscribed types are sent, and how.
type Endpoint struct {
	ID              string
	OrgID           string
	URL             string
	Events          []string // patterns: "*", "a.b", "a.*"
	Description     string
	Enabled         bool
	DisabledReason  string // why hookd disabled it, if it did
	Headers         map[string]string
	SignatureScheme string // see package signature; "" = standard-webhooks
	SignatureHeader string // "" = the scheme's default
	Payload         string // PayloadEnvelope or PayloadRaw
	Retry           RetryPolicy
	RateLimit       float64 // requests per second; 0 = unlimited
	MaxInFlight     int     // 0 = the engine's default
	Ordering        string  // OrderingUnordered or OrderingFIFO

	Secret                string    // current signing secret (plaintext in memory, sealed at rest)
	PreviousSecret        string    // the secret before the last rotation
	PreviousSecretExpires time.Time // when PreviousSecret stops being used
	CreatedAt, UpdatedAt  time.Time //
	// FailingSince is when the endpoint's current run of failed attempts began
	// (zero once an attempt succeeds, or when it is enabled): hookd disables an
	// endpoint whose run lasts the configured window.
	FailingSince time.Time
}

// Subscribes reports whether e wants events of the given type: a pattern matches when
// it equals the type, is "*", or ends in ".*" and the type starts with the part before
// the "*" (so "invoice.*" matches "invoice.paid" and "invoice.item.created", not "invoice").
func (e *Endpoint) Subscribes(eventType string) bool {
	for _, p := range e.Events {
		if MatchEventType(p, eventType) {
			return true
		}
	}
	return false
}

// MatchEventType reports whether pattern matches eventType; see Endpoint.Subscribes.
func MatchEventType(pattern, eventType string) bool {
	switch {
	case pattern == "*":
		return true
	case strings.HasSuffix(pattern, ".*"):
		return strings.HasPrefix(eventType, pattern[:len(pattern)-1])
	default:
		return pattern == eventType
	}
}

// Secrets returns the secrets to sign with at time now: the current one and, during a
// rotation's grace period, the previous one.
func (e *Endpoint) Secrets(now time.Time) []string {
	return activeSecrets(e.Secret, e.PreviousSecret, e.PreviousSecretExpires, now)
}

// activeSecrets returns current and, until previousExpires, previous.
func activeSecrets(current, previous string, previousExpires, now time.Time) []string {
	if previous != "" && now.Before(previousExpires) {
		return []string{current, previous}
	}
	return []string{current}
}

// Rotate makes next the current secret and keeps the one it replaces as the
// previous secret until now+grace; with no grace, the previous secret is dropped.
// A previous secret from an earlier rotation stops at once.
func Rotate(current, previous *string, previousExpires *time.Time, next string, now time.Time, grace time.Duration) {
	*previous, *previousExpires = *current, now.Add(grace)
	if grace <= 0 {
		*previous, *previousExpires = "", time.Time{}
	}
	*current = next
}

// Validate reports the first invalid field of e as an EINVALID *Error. It does not
// check the URL's target (see package netguard) or the secret's form (see package
// signature).
func (e *Endpoint) Validate() error {
	if e.URL == "" {
		return FieldError("url", "is required")
	}
	if len(e.URL) > MaxURLLength {
		return FieldError("url", "must be at most %d characters", MaxURLLength)
	}
	if len(e.Events) == 0 {
		return FieldError("events", "must name at least one event type or pattern")
	}
	if len(e.Events) > MaxEventPatterns {
		return FieldError("events", "must have at most %d patterns", MaxEventPatterns)
	}
	for _, p := range e.Events {
		if err := ValidateEventPattern(p); err != nil {
			return FieldError("events", "%v", err)
		}
	}
	if len(e.Description) > MaxDescription {
		return FieldError("description", "must be at most %d characters", MaxDescription)
	}
	if len(e.Headers) > MaxHeaders {
		return FieldError("headers", "must have at most %d entries", MaxHeaders)
	}
	for k, v := range e.Headers {
		if !validHeaderName(k) {
			return FieldError("headers", "%q is not a valid header name", k)
		}
		if reservedHeader(k) {
			return FieldError("headers", "%q is set by hookd and cannot be overridden", k)
		}
		if len(v) > 4096 || strings.ContainsAny(v, "\r\n\x00") {
			return FieldError("headers", "the value of %q is invalid", k)
		}
	}
	if e.SignatureHeader != "" && (!validHeaderName(e.SignatureHeader) || reservedHeader(e.SignatureHeader)) {
		return FieldError("signature.header", "%q is not a usable header name", e.SignatureHeader)
	}
	switch e.Payload {
	case PayloadEnvelope, PayloadRaw:
	default:
		return FieldError("payload", `must be "envelope" or "raw"`)
	}
	switch e.Ordering {
	case OrderingUnordered, OrderingFIFO:
	default:
		return FieldError("ordering", `must be "unordered" or "fifo"`)
	}
	if err := e.Retry.Validate(); err != nil {
		return err
	}
	if e.RateLimit < 0 || e.RateLimit > MaxRateLimit || math.IsNaN(e.RateLimit) {
		return FieldError("rate_limit_per_s", "must be between 0 and %d", MaxRateLimit)
	}
	if e.MaxInFlight < 0 || e.MaxInFlight > MaxMaxInFlight {
		return FieldError("max_in_flight", "must be between 0 and %d", MaxMaxInFlight)
	}
	return nil
}

// ValidateEventPattern checks an endpoint's event filter: "*", an event type, or an
// event type prefix followed by ".*". A pattern is at most MaxEventTypeLength
// characters like a type, so that every valid pattern matches some valid type
// ("p.*" needs room for "p.x").
func ValidateEventPattern(p string) error {
	if p == "*" {
		return nil
	}
	if len(p) > MaxEventTypeLength || ValidateEventType(strings.TrimSuffix(p, ".*")) != nil {
		return Errorf(EINVALID, "pattern %q is invalid: use \"*\", an event type or \"prefix.*\", at most %d characters", p, MaxEventTypeLength)
	}
	return nil
}

func validHeaderName(k string) bool {
	if k == "" || len(k) > 128 {
		return false
	}
	for _, c := range k {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", c)) {
			return false
		}
	}
	return true
}

// reservedHeader reports headers hookd sets itself on every delivery.
func reservedHeader(k string) bool {
	switch http.CanonicalHeaderKey(k) {
	case "Webhook-Id", "Webhook-Timestamp", "Webhook-Signature", "Content-Type", "Content-Length",
		"User-Agent", "Host", "Transfer-Encoding", "Connection", "X-Timestamp":
		return true
	}
	return false
}

// RetryPolicy is a retry schedule. Zero fields mean "use the default".
type RetryPolicy struct {
	MaxAttempts     int           // attempts in all, including the first
	InitialInterval time.Duration // wait after the first failure
	MaxInterval     time.Duration // cap on any wait, Retry-After included
}

// DefaultRetryPolicy is the schedule of SPEC §4: 5 attempts, waits of about 5 s,
// 30 s, 3 min and 18 min.
var DefaultRetryPolicy = RetryPolicy{MaxAttempts: 5, InitialInterval: 5 * time.Second, MaxInterval: time.Hour}

// BackoffFactor is the growth of the wait between consecutive attempts.
const BackoffFactor = 6

// Limits on retry policies.
const (
	MaxRetryAttempts = 100
	MaxRetryInterval = 7 * 24 * time.Hour
)

// Validate reports an invalid field of p as an EINVALID *Error.
func (p RetryPolicy) Validate() error {
	if p.MaxAttempts < 0 || p.MaxAttempts > MaxRetryAttempts {
		return FieldError("retry.max_attempts", "must be between 1 and %d", MaxRetryAttempts)
	}
	if p.InitialInterval < 0 || p.InitialInterval > MaxRetryInterval {
		return FieldError("retry.initial_interval", "must be between 0 and %d seconds", int(MaxRetryInterval.Seconds()))
	}
	if p.MaxInterval < 0 || p.MaxInterval > MaxRetryInterval {
		return FieldError("retry.max_interval", "must be between 0 and %d seconds", int(MaxRetryInterval.Seconds()))
	}
	if p.MaxInterval > 0 && p.InitialInterval > p.MaxInterval {
		return FieldError("retry.initial_interval", "must not exceed retry.max_interval")
	}
	return nil
}

// Or returns p with its zero fields taken from def.
func (p RetryPolicy) Or(def RetryPolicy) RetryPolicy {
	if p.MaxAttempts == 0 {
		p.MaxAttempts = def.MaxAttempts
	}
	if p.InitialInterval == 0 {
		p.InitialInterval = def.InitialInterval
	}
	if p.MaxInterval == 0 {
		p.MaxInterval = def.MaxInterval
	}
	if p.MaxInterval < p.InitialInterval {
		p.MaxInterval = p.InitialInterval
	}
	return p
}

// Backoff returns the wait before the next attempt after the given number of failed
// attempts (1 after the first failure): InitialInterval × BackoffFactor^(failed-1),
// spread by jitter (a number in [0,1) mapped to ±20 %), capped at MaxInterval.
func (p RetryPolicy) Backoff(failed int, jitter float64) time.Duration {
	if failed < 1 {
		failed = 1
	}
	d := float64(p.InitialInterval) * math.Pow(BackoffFactor, float64(failed-1))
	d *= 0.8 + 0.4*jitter
	if d > float64(p.MaxInterval) || math.IsInf(d, 0) {
		d = float64(p.MaxInterval)
	}
	return time.Duration(d)
}

// RedactURL returns raw with the password of its user information, if any,
// replaced: a URL's password is a credential, not shown in answers or logs.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}
