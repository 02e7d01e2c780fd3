package hookd_test

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/hookd/hookd"
)

func TestPartnerAllows(t *testing.T) {
	t.Parallel()
	list := []netip.Prefix{
		netip.MustParsePrefix("203.0.113.0/24"),
		netip.MustParsePrefix("198.51.100.7/32"),
		netip.MustParsePrefix("2001:db8::/32"),
		netip.MustParsePrefix("2001:db8:ffff::5/128"),
	}
	tests := []struct {
		allowlist []netip.Prefix
		addr      string
		want      bool
	}{
		{list, "203.0.113.0", true},
		{list, "203.0.113.255", true},
		{list, "203.0.114.1", false},
		{list, "198.51.100.7", true},
		{list, "198.51.100.8", false},
		{list, "2001:db8::1", true},
		{list, "2001:db8:ffff::5", true},
		{list, "2001:db9::1", false},
		{list, "::ffff:203.0.113.9", true}, // IPv4-mapped IPv6 against an IPv4 prefix
		{list, "::ffff:198.51.100.7", true},
		{list, "::ffff:198.51.100.8", false},
		{list, "::203.0.113.9", false}, // IPv4-compatible is not IPv4-mapped
		{list, "127.0.0.1", false},
		{list, "::1", false},
		{nil, "192.0.2.1", true}, // an empty allowlist allows every address
		{nil, "2001:db8::1", true},
		{[]netip.Prefix{}, "::ffff:192.0.2.1", true},
		{[]netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}, "::ffff:192.0.2.1", true},
		{[]netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}, "2001:db8::1", false},
		{[]netip.Prefix{netip.MustParsePrefix("::/0")}, "192.0.2.1", false},
	}
	for _, tt := range tests {
		p := hookd.Partner{IPAllowlist: tt.allowlist}
		if got := p.Allows(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("Partner{IPAllowlist: %v}.Allows(%q) = %v, want %v", tt.allowlist, tt.addr, got, tt.want)
		}
	}
	// The zero address (no client address known) passes only an empty allowlist.
	if got := (&hookd.Partner{IPAllowlist: list}).Allows(netip.Addr{}); got {
		t.Errorf("Allows(zero address) = %v with an allowlist, want false", got)
	}
	if got := (&hookd.Partner{}).Allows(netip.Addr{}); !got {
		t.Errorf("Allows(zero address) = %v without an allowlist, want true", got)
	}
}

func TestPartnerSecrets(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rotating := hookd.Partner{Secret: "new", PreviousSecret: "old", PreviousSecretExpires: now.Add(time.Minute)}
	tests := []struct {
		name string
		p    hookd.Partner
		at   time.Time
		want string
	}{
		{"rotating", rotating, now.Add(-time.Hour), "[new old]"},
		{"rotating", rotating, now, "[new old]"},
		{"rotating", rotating, now.Add(time.Minute - time.Nanosecond), "[new old]"},
		{"rotating", rotating, now.Add(time.Minute), "[new]"}, // the grace period ends at the expiry
		{"rotating", rotating, now.Add(time.Hour), "[new]"},
		{"never rotated", hookd.Partner{Secret: "only"}, now, "[only]"},
		{"expiry without a previous secret", hookd.Partner{Secret: "only", PreviousSecretExpires: now.Add(time.Hour)}, now, "[only]"},
		{"previous secret without expiry", hookd.Partner{Secret: "new", PreviousSecret: "old"}, now, "[new]"},
	}
	for _, tt := range tests {
		if got := fmt.Sprint(tt.p.Secrets(tt.at)); got != tt.want {
			t.Errorf("%s: Secrets(%v) = %v, want %v", tt.name, tt.at, got, tt.want)
		}
	}
}

func TestTakeToken(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	four := hookd.RateLimit{PerSecond: 4, Burst: 5} // a token every 250ms
	slow := hookd.RateLimit{PerSecond: 0.5, Burst: 1}
	fast := hookd.RateLimit{PerSecond: hookd.MaxPartnerRate, Burst: hookd.MaxPartnerBurst}
	tests := []struct {
		tokens  float64
		elapsed time.Duration // since the bucket held tokens; negative if the clock went back
		limit   hookd.RateLimit
		want    hookd.TokenResult
	}{
		{5, 0, four, hookd.TokenResult{Allowed: true, Remaining: 4, Tokens: 4}},
		{1, 0, four, hookd.TokenResult{Allowed: true, Remaining: 0, Tokens: 0}},
		{2.5, 0, four, hookd.TokenResult{Allowed: true, Remaining: 1, Tokens: 1.5}},
		{0, 0, four, hookd.TokenResult{RetryAfter: 250 * time.Millisecond}},
		{0.5, 0, four, hookd.TokenResult{RetryAfter: 125 * time.Millisecond, Tokens: 0.5}},
		{0, 125 * time.Millisecond, four, hookd.TokenResult{RetryAfter: 125 * time.Millisecond, Tokens: 0.5}},
		{0, 250 * time.Millisecond, four, hookd.TokenResult{Allowed: true, Remaining: 0, Tokens: 0}},
		{0, time.Second, four, hookd.TokenResult{Allowed: true, Remaining: 3, Tokens: 3}},
		{0, time.Hour, four, hookd.TokenResult{Allowed: true, Remaining: 4, Tokens: 4}},         // never above the burst
		{9, 0, four, hookd.TokenResult{Allowed: true, Remaining: 4, Tokens: 4}},                 // a lowered burst caps a fuller bucket
		{3, -10 * time.Second, four, hookd.TokenResult{Allowed: true, Remaining: 2, Tokens: 2}}, // backwards: no refill
		{0, -time.Hour, four, hookd.TokenResult{RetryAfter: 250 * time.Millisecond}},
		{0, 0, slow, hookd.TokenResult{RetryAfter: 2 * time.Second}},
		{0, time.Second, slow, hookd.TokenResult{RetryAfter: time.Second, Tokens: 0.5}},
		{0, 2 * time.Second, slow, hookd.TokenResult{Allowed: true, Remaining: 0, Tokens: 0}},
		{0, time.Minute, slow, hookd.TokenResult{Allowed: true, Remaining: 0, Tokens: 0}},
		{0, time.Millisecond, fast, hookd.TokenResult{Allowed: true, Remaining: 99, Tokens: 99}},
		{0, 0, fast, hookd.TokenResult{RetryAfter: 10 * time.Microsecond}},
	}
	for _, tt := range tests {
		got := hookd.TakeToken(tt.tokens, now.Add(-tt.elapsed), tt.limit, now)
		got.RetryAfter = got.RetryAfter.Round(time.Microsecond)
		if got.Allowed != tt.want.Allowed || got.Remaining != tt.want.Remaining || got.RetryAfter != tt.want.RetryAfter ||
			math.Abs(got.Tokens-tt.want.Tokens) > 1e-9 {
			t.Errorf("TakeToken(%v, now-%v, %+v, now) = %+v, want %+v", tt.tokens, tt.elapsed, tt.limit, got, tt.want)
		}
	}
}

func TestInboundEventState(t *testing.T) {
	t.Parallel()
	received := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// d returns a delivery in status with attempts made, its last error, updated at
	// received+updated.
	d := func(status string, attempts int, lastError string, updated time.Duration) *hookd.Delivery {
		return &hookd.Delivery{Status: status, Attempts: attempts, LastError: lastError, UpdatedAt: received.Add(updated)}
	}
	const P, S, F, K = hookd.DeliveryPending, hookd.DeliverySucceeded, hookd.DeliveryFailed, hookd.DeliverySkipped
	var never time.Time
	tests := []struct {
		name        string
		deliveries  []*hookd.Delivery
		status      string
		attempts    int
		err         string
		processedAt time.Time
	}{
		{"no deliveries", nil, hookd.InboundProcessed, 0, "", received},
		{"pending, unattempted", []*hookd.Delivery{d(P, 0, "", 0), d(P, 0, "", 0)}, hookd.InboundQueued, 0, "", never},
		{"pending and skipped", []*hookd.Delivery{d(P, 0, "", 0), d(K, 0, "", 0)}, hookd.InboundQueued, 0, "", never},
		{"one pending after an attempt", []*hookd.Delivery{d(P, 0, "", 0), d(P, 2, "503 Service Unavailable", time.Minute)},
			hookd.InboundProcessing, 2, "503 Service Unavailable", never},
		{"one succeeded, one unattempted", []*hookd.Delivery{d(S, 1, "", time.Minute), d(P, 0, "", 0)},
			hookd.InboundProcessing, 1, "", never},
		{"first attempt in flight", []*hookd.Delivery{{Status: P, InFlight: true}, d(P, 0, "", 0)},
			hookd.InboundProcessing, 0, "", never},
		{"re-queued after failing", []*hookd.Delivery{d(P, 3, "500 Internal Server Error", time.Hour)},
			hookd.InboundProcessing, 3, "500 Internal Server Error", never},
		{"succeeded", []*hookd.Delivery{d(S, 1, "", time.Minute), d(S, 2, "", 2*time.Minute)},
			hookd.InboundProcessed, 3, "", received.Add(2 * time.Minute)},
		{"succeeded and skipped", []*hookd.Delivery{d(S, 1, "", time.Minute), d(K, 0, "", 0)},
			hookd.InboundProcessed, 1, "", received.Add(time.Minute)},
		{"only skipped", []*hookd.Delivery{d(K, 0, "", 0)}, hookd.InboundProcessed, 0, "", received},
		{"failed", []*hookd.Delivery{d(S, 1, "", 2*time.Minute), d(F, 3, "500 Internal Server Error", time.Minute)},
			hookd.InboundFailed, 4, "500 Internal Server Error", received.Add(2 * time.Minute)},
		{"failed while another is pending", []*hookd.Delivery{
			d(F, 1, "410 Gone", time.Minute), d(P, 1, "503 Service Unavailable", 3*time.Minute), d(P, 0, "", 0),
		}, hookd.InboundFailed, 2, "410 Gone", received.Add(time.Minute)},
		{"no failure: the last error of any", []*hookd.Delivery{d(P, 1, "timeout", time.Minute), d(S, 2, "", 2*time.Minute),
			d(P, 1, "503 Service Unavailable", time.Minute)}, hookd.InboundProcessing, 4, "503 Service Unavailable", never},
	}
	for _, tt := range tests {
		ie := &hookd.InboundEvent{ReceivedAt: received, Deliveries: tt.deliveries}
		if got := ie.Status(); got != tt.status {
			t.Errorf("%s: Status() = %q, want %q", tt.name, got, tt.status)
		}
		if got := ie.Attempts(); got != tt.attempts {
			t.Errorf("%s: Attempts() = %d, want %d", tt.name, got, tt.attempts)
		}
		if got := ie.Error(); got != tt.err {
			t.Errorf("%s: Error() = %q, want %q", tt.name, got, tt.err)
		}
		if got := ie.ProcessedAt(); !got.Equal(tt.processedAt) {
			t.Errorf("%s: ProcessedAt() = %v, want %v", tt.name, got, tt.processedAt)
		}
	}
}

func TestInboundEventID(t *testing.T) {
	t.Parallel()
	if got, want := hookd.InboundEventID("ptn_1", "order-1"), "ptn_1:order-1"; got != want {
		t.Errorf("InboundEventID(%q, %q) = %q, want %q", "ptn_1", "order-1", got, want)
	}
	// Two partners' events of one id never collide, and the result is a valid event id.
	if hookd.InboundEventID("ptn_1", "x") == hookd.InboundEventID("ptn_2", "x") {
		t.Errorf("InboundEventID is the same for two partners")
	}
	if err := hookd.ValidateEventID(hookd.InboundEventID("ptn_01JD3V6Q3ZJ9W8T2N4X5Y6Z7AB", "a:b-c_d")); err != nil {
		t.Errorf("ValidateEventID(InboundEventID(…)) = %v, want nil", err)
	}
}

func validPartner() hookd.Partner {
	return hookd.Partner{Name: "Globex", RateLimit: hookd.DefaultPartnerRateLimit}
}

func TestPartnerValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(*hookd.Partner)
		field  string // "" = valid
	}{
		{"valid", func(*hookd.Partner) {}, ""},
		{"no name", func(p *hookd.Partner) { p.Name = "" }, "name"},
		{"200-character name", func(p *hookd.Partner) { p.Name = strings.Repeat("n", 200) }, ""},
		{"long name", func(p *hookd.Partner) { p.Name = strings.Repeat("n", 201) }, "name"},
		{"full allowlist", func(p *hookd.Partner) { p.IPAllowlist = make([]netip.Prefix, hookd.MaxAllowlist) }, ""},
		{"long allowlist", func(p *hookd.Partner) { p.IPAllowlist = make([]netip.Prefix, hookd.MaxAllowlist+1) }, "ip_allowlist"},
		{"no rate limit", func(p *hookd.Partner) { p.RateLimit = hookd.RateLimit{} }, "rate_limit.per_second"},
		{"zero rate", func(p *hookd.Partner) { p.RateLimit.PerSecond = 0 }, "rate_limit.per_second"},
		{"negative rate", func(p *hookd.Partner) { p.RateLimit.PerSecond = -1 }, "rate_limit.per_second"},
		{"NaN rate", func(p *hookd.Partner) { p.RateLimit.PerSecond = math.NaN() }, "rate_limit.per_second"},
		{"infinite rate", func(p *hookd.Partner) { p.RateLimit.PerSecond = math.Inf(1) }, "rate_limit.per_second"},
		{"slow rate", func(p *hookd.Partner) { p.RateLimit.PerSecond = 0.001 }, ""},
		{"highest rate", func(p *hookd.Partner) { p.RateLimit.PerSecond = hookd.MaxPartnerRate }, ""},
		{"too high rate", func(p *hookd.Partner) { p.RateLimit.PerSecond = hookd.MaxPartnerRate + 0.5 }, "rate_limit.per_second"},
		{"zero burst", func(p *hookd.Partner) { p.RateLimit.Burst = 0 }, "rate_limit.burst"},
		{"negative burst", func(p *hookd.Partner) { p.RateLimit.Burst = -1 }, "rate_limit.burst"},
		{"burst of one", func(p *hookd.Partner) { p.RateLimit.Burst = 1 }, ""},
		{"highest burst", func(p *hookd.Partner) { p.RateLimit.Burst = hookd.MaxPartnerBurst }, ""},
		{"too high burst", func(p *hookd.Partner) { p.RateLimit.Burst = hookd.MaxPartnerBurst + 1 }, "rate_limit.burst"},
		{"default rate limit", func(p *hookd.Partner) { p.RateLimit = hookd.DefaultPartnerRateLimit }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := validPartner()
			tt.mutate(&p)
			err := p.Validate()
			var de *hookd.Error
			switch {
			case tt.field == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.field != "" && (!errors.As(err, &de) || de.Field != tt.field || de.Code != hookd.EINVALID):
				t.Fatalf("Validate() = %v, want invalid_field %q", err, tt.field)
			}
		})
	}
}
