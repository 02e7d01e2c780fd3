package hookd

import (
	"net/netip"
	"time"
)

// Limits on partners.
const (
	MaxAllowlist        = 100
	MaxPartnerRate      = 100000
	MaxPartnerBurst     = 100000
	DefaultPartnerRate  = 10 // requests per second, as SPEC §6's example
	DefaultPartnerBurst = 20
)

// RateLimit is a token bucket: PerSecond tokens are added each second up to Burst.
type RateLimit struct {
	PerSecond float64
	Burst     int
}

// DefaultPartnerRateLimit is the bucket of a partner that sets none.
var DefaultPartnerRateLimit = RateLimit{PerSecond: DefaultPartnerRate, Burst: DefaultPartnerBurst}

// Partner is a sender of inbound events: it authenticates with an API key (stored
// hashed) and signs every request with its secret (sealed at rest).
type Partner struct {
	ID                    string // ptn_…
	OrgID                 string // the organization its events are routed to
	Name                  string
	APIKeyHash            string         // hex SHA-256 of the API key
	Secret                string         // current signing secret (plaintext in memory)
	PreviousSecret        string         // still valid until PreviousSecretExpires
	PreviousSecretExpires time.Time      //
	IPAllowlist           []netip.Prefix // empty = any address
	RateLimit             RateLimit
	Enabled               bool
	CreatedAt, UpdatedAt  time.Time
}

// Secrets returns the secrets a request may be signed with at time now: the
// current one and, during a rotation's grace period, the previous one.
func (p *Partner) Secrets(now time.Time) []string {
	return activeSecrets(p.Secret, p.PreviousSecret, p.PreviousSecretExpires, now)
}

// Allows reports whether a request from addr passes the IP allowlist. IPv4-mapped
// IPv6 addresses are compared as IPv4.
func (p *Partner) Allows(addr netip.Addr) bool {
	if len(p.IPAllowlist) == 0 {
		return true
	}
	addr = addr.Unmap()
	for _, pfx := range p.IPAllowlist {
		if pfx.Contains(addr) {
			return true
		}
	}
	return false
}

// Validate reports the first invalid field of p as an EINVALID *Error.
func (p *Partner) Validate() error {
	if p.Name == "" || len(p.Name) > 200 {
		return FieldError("name", "must be 1–200 characters")
	}
	if len(p.IPAllowlist) > MaxAllowlist {
		return FieldError("ip_allowlist", "must have at most %d entries", MaxAllowlist)
	}
	r := p.RateLimit
	if !(r.PerSecond > 0 && r.PerSecond <= MaxPartnerRate) {
		return FieldError("rate_limit.per_second", "must be more than 0 and at most %d", MaxPartnerRate)
	}
	if r.Burst < 1 || r.Burst > MaxPartnerBurst {
		return FieldError("rate_limit.burst", "must be between 1 and %d", MaxPartnerBurst)
	}
	return nil
}

// Inbound event statuses, as partners see them (SPEC §6).
const (
	InboundQueued     = "queued"     // accepted; no delivery attempted yet
	InboundProcessing = "processing" // deliveries under way
	InboundProcessed  = "processed"  // every delivery done (or there was none to make)
	InboundFailed     = "failed"     // a delivery failed for good
)

// InboundEvent is an event a partner submitted, with its processing state derived
// from the deliveries it caused.
type InboundEvent struct {
	PartnerID  string
	EventID    string // the partner's id for it
	Event      Event  // the organization event it became
	ReceivedAt time.Time
	Deliveries []*Delivery
}

// InboundEventID is the organization event id of a partner's event: the partner
// id and the partner's event id, so that two partners of one organization never
// collide and a partner's duplicate is the same event.
func InboundEventID(partnerID, eventID string) string {
	return partnerID + ":" + eventID
}

// Status derives the inbound status from the event's deliveries: failed if any
// failed; processed if none is pending; queued if none was attempted yet (nor is
// being attempted); processing otherwise.
func (ie *InboundEvent) Status() string {
	pending, attempted := false, false
	for _, d := range ie.Deliveries {
		attempted = attempted || d.Attempts > 0 || d.InFlight
		switch d.Status {
		case DeliveryFailed:
			return InboundFailed
		case DeliveryPending:
			pending = true
		}
	}
	switch {
	case !pending:
		return InboundProcessed
	case attempted:
		return InboundProcessing
	default:
		return InboundQueued
	}
}

// Attempts returns the attempts made for the event, over all its deliveries.
func (ie *InboundEvent) Attempts() int {
	n := 0
	for _, d := range ie.Deliveries {
		n += d.Attempts
	}
	return n
}

// Error returns the last error of a failed delivery, or of any delivery if none
// failed, or "".
func (ie *InboundEvent) Error() string {
	msg := ""
	for _, d := range ie.Deliveries {
		if d.LastError == "" {
			continue
		}
		if d.Status == DeliveryFailed {
			return d.LastError
		}
		msg = d.LastError
	}
	return msg
}

// ProcessedAt returns when the event reached processed or failed: the latest
// update of its deliveries, or ReceivedAt if it had none; zero while in progress.
func (ie *InboundEvent) ProcessedAt() time.Time {
	st := ie.Status()
	if st != InboundProcessed && st != InboundFailed {
		return time.Time{}
	}
	t := ie.ReceivedAt
	for _, d := range ie.Deliveries {
		if d.Status != DeliveryPending && d.UpdatedAt.After(t) {
			t = d.UpdatedAt
		}
	}
	return t
}

// TokenResult is the verdict of a token bucket.
type TokenResult struct {
	Allowed    bool          // a token was taken
	Remaining  int           // whole tokens left
	RetryAfter time.Duration // when refused: until a token is available
	Tokens     float64       // the bucket's new level, to store
}

// Refill returns the level of a bucket that held tokens at time last, refilled by
// limit up to now (at most limit.Burst). A clock that went backwards refills nothing.
func Refill(tokens float64, last time.Time, limit RateLimit, now time.Time) float64 {
	elapsed := now.Sub(last).Seconds()
	if elapsed < 0 {
		elapsed = 0
	}
	return min(float64(limit.Burst), tokens+elapsed*limit.PerSecond)
}

// TakeToken refills a bucket that held tokens at time last up to now, and takes
// one token if there is one. A clock that went backwards refills nothing.
func TakeToken(tokens float64, last time.Time, limit RateLimit, now time.Time) TokenResult {
	tokens = Refill(tokens, last, limit, now)
	if tokens >= 1 {
		tokens--
		return TokenResult{Allowed: true, Remaining: int(tokens), Tokens: tokens}
	}
	wait := time.Duration((1 - tokens) / limit.PerSecond * float64(time.Second))
	return TokenResult{Remaining: 0, RetryAfter: wait, Tokens: tokens}
}
