package hookd_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hookd/hookd"
)

func TestMatchEventType(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern, typ string
		want         bool
	}{
		{"*", "invoice.paid", true},
		{"*", "x", true},
		{"invoice.paid", "invoice.paid", true},
		{"invoice.paid", "invoice.paid.late", false},
		{"invoice.paid", "invoice", false},
		{"invoice.*", "invoice.paid", true},
		{"invoice.*", "invoice.item.created", true},
		{"invoice.*", "invoice", false},
		{"invoice.*", "invoices.paid", false},
		{"workflow.item.*", "workflow.item.resolved", true},
		{"workflow.item.*", "workflow.other", false},
		{"usage_threshold", "usage_threshold", true},
	}
	for _, tt := range tests {
		if got := hookd.MatchEventType(tt.pattern, tt.typ); got != tt.want {
			t.Errorf("MatchEventType(%q, %q) = %v, want %v", tt.pattern, tt.typ, got, tt.want)
		}
	}
}

func TestValidateEventPattern(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern string
		ok      bool
	}{
		{"*", true}, {"a", true}, {"a.b", true}, {"a.*", true}, {"a.b.*", true}, {"a:b-c_d", true},
		{"", false}, {"a*", false}, {"*.a", false}, {".*", false}, {"a..b", false}, {"a.", false},
		{"a b", false}, {"**", false}, {"a.*.b", false}, {strings.Repeat("a", 129), false},
	}
	for _, tt := range tests {
		if err := hookd.ValidateEventPattern(tt.pattern); (err == nil) != tt.ok {
			t.Errorf("ValidateEventPattern(%q) = %v, want ok=%v", tt.pattern, err, tt.ok)
		}
	}
}

func TestValidateEventID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		id string
		ok bool
	}{
		{"evt_1", true}, {"A-z_0:9", true}, {strings.Repeat("x", 128), true},
		{"", false}, {"a.b", false}, {"a b", false}, {strings.Repeat("x", 129), false}, {"é", false}, {"a/b", false},
	}
	for _, tt := range tests {
		if err := hookd.ValidateEventID(tt.id); (err == nil) != tt.ok {
			t.Errorf("ValidateEventID(%q) = %v, want ok=%v", tt.id, err, tt.ok)
		}
	}
}

func validEndpoint() hookd.Endpoint {
	return hookd.Endpoint{URL: "https://example.com/h", Events: []string{"*"}, Payload: hookd.PayloadEnvelope,
		Ordering: hookd.OrderingUnordered}
}

func TestEndpointValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(*hookd.Endpoint)
		field  string // "" = valid
	}{
		{"valid", func(*hookd.Endpoint) {}, ""},
		{"no url", func(e *hookd.Endpoint) { e.URL = "" }, "url"},
		{"long url", func(e *hookd.Endpoint) { e.URL = "https://x/" + strings.Repeat("a", 2048) }, "url"},
		{"no events", func(e *hookd.Endpoint) { e.Events = nil }, "events"},
		{"bad pattern", func(e *hookd.Endpoint) { e.Events = []string{"a*"} }, "events"},
		{"too many patterns", func(e *hookd.Endpoint) { e.Events = make([]string, 101) }, "events"},
		{"long description", func(e *hookd.Endpoint) { e.Description = strings.Repeat("d", 1025) }, "description"},
		{"reserved header", func(e *hookd.Endpoint) { e.Headers = map[string]string{"content-type": "x"} }, "headers"},
		{"webhook-id header", func(e *hookd.Endpoint) { e.Headers = map[string]string{"Webhook-Id": "x"} }, "headers"},
		{"bad header name", func(e *hookd.Endpoint) { e.Headers = map[string]string{"a b": "x"} }, "headers"},
		{"header value newline", func(e *hookd.Endpoint) { e.Headers = map[string]string{"X-A": "a\r\nb"} }, "headers"},
		{"custom header ok", func(e *hookd.Endpoint) { e.Headers = map[string]string{"X-Team": "billing"} }, ""},
		{"bad payload", func(e *hookd.Endpoint) { e.Payload = "xml" }, "payload"},
		{"bad ordering", func(e *hookd.Endpoint) { e.Ordering = "lifo" }, "ordering"},
		{"negative rate", func(e *hookd.Endpoint) { e.RateLimit = -1 }, "rate_limit_per_s"},
		{"huge in flight", func(e *hookd.Endpoint) { e.MaxInFlight = 1001 }, "max_in_flight"},
		{"retry attempts", func(e *hookd.Endpoint) { e.Retry.MaxAttempts = 101 }, "retry.max_attempts"},
		{"retry initial > max", func(e *hookd.Endpoint) {
			e.Retry.InitialInterval, e.Retry.MaxInterval = time.Minute, time.Second
		}, "retry.initial_interval"},
		{"signature header reserved", func(e *hookd.Endpoint) { e.SignatureHeader = "Content-Type" }, "signature.header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := validEndpoint()
			tt.mutate(&e)
			err := e.Validate()
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

func TestBackoff(t *testing.T) {
	t.Parallel()
	p := hookd.DefaultRetryPolicy
	tests := []struct {
		failed int
		jitter float64
		want   time.Duration
	}{
		{1, 0.5, 5 * time.Second},
		{2, 0.5, 30 * time.Second},
		{3, 0.5, 3 * time.Minute},
		{4, 0.5, 18 * time.Minute},
		{1, 0, 4 * time.Second},
		{1, 0.9999995, 5999999 * time.Microsecond},
		{5, 0.5, time.Hour},  // capped by MaxInterval
		{50, 0.5, time.Hour}, // no overflow
		{0, 0.5, 5 * time.Second},
	}
	for _, tt := range tests {
		got := p.Backoff(tt.failed, tt.jitter).Round(time.Microsecond)
		if got != tt.want {
			t.Errorf("Backoff(%d, %v) = %v, want %v", tt.failed, tt.jitter, got, tt.want)
		}
	}
}

func TestRetryPolicyOr(t *testing.T) {
	t.Parallel()
	def := hookd.DefaultRetryPolicy
	tests := []struct {
		in, want hookd.RetryPolicy
	}{
		{hookd.RetryPolicy{}, def},
		{hookd.RetryPolicy{MaxAttempts: 2}, hookd.RetryPolicy{MaxAttempts: 2, InitialInterval: def.InitialInterval, MaxInterval: def.MaxInterval}},
		{hookd.RetryPolicy{InitialInterval: 2 * time.Hour}, hookd.RetryPolicy{MaxAttempts: 5, InitialInterval: 2 * time.Hour, MaxInterval: 2 * time.Hour}},
		{hookd.RetryPolicy{MaxInterval: time.Second}, hookd.RetryPolicy{MaxAttempts: 5, InitialInterval: 5 * time.Second, MaxInterval: 5 * time.Second}},
	}
	for _, tt := range tests {
		if got := tt.in.Or(def); got != tt.want {
			t.Errorf("%+v.Or(default) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestEndpointSecrets(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	e := hookd.Endpoint{Secret: "new", PreviousSecret: "old", PreviousSecretExpires: now.Add(time.Minute)}
	tests := []struct {
		at   time.Time
		want string
	}{
		{now, "[new old]"},
		{now.Add(59 * time.Second), "[new old]"},
		{now.Add(time.Minute), "[new]"},
		{now.Add(time.Hour), "[new]"},
	}
	for _, tt := range tests {
		if got := fmt.Sprint(e.Secrets(tt.at)); got != tt.want {
			t.Errorf("Secrets(%v) = %v, want %v", tt.at, got, tt.want)
		}
	}
}

func TestErrorCode(t *testing.T) {
	t.Parallel()
	nf := hookd.NotFound("endpoint", "ep_1")
	tests := []struct {
		err       error
		code, msg string
	}{
		{nil, "", "internal error"},
		{errors.New("disk on fire"), hookd.EINTERNAL, "internal error"},
		{nf, hookd.ENOTFOUND, `endpoint "ep_1" not found`},
		{fmt.Errorf("get: %w", nf), hookd.ENOTFOUND, `endpoint "ep_1" not found`},
		{hookd.FieldError("url", "is required"), hookd.EINVALID, "url: is required"},
	}
	for _, tt := range tests {
		if got := hookd.ErrorCode(tt.err); got != tt.code {
			t.Errorf("ErrorCode(%v) = %q, want %q", tt.err, got, tt.code)
		}
		if got := hookd.ErrorMessage(tt.err); got != tt.msg {
			t.Errorf("ErrorMessage(%v) = %q, want %q", tt.err, got, tt.msg)
		}
	}
}

func TestRotate(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		grace        time.Duration
		wantPrevious string
		wantExpires  time.Time
	}{
		{time.Hour, "old", now.Add(time.Hour)},
		{0, "", time.Time{}},
	}
	for _, tt := range tests {
		cur, prev, exp := "old", "older", now.Add(time.Minute)
		hookd.Rotate(&cur, &prev, &exp, "new", now, tt.grace)
		if cur != "new" || prev != tt.wantPrevious || !exp.Equal(tt.wantExpires) {
			t.Errorf("Rotate(grace %v) = %q, %q, %v; want new, %q, %v", tt.grace, cur, prev, exp, tt.wantPrevious, tt.wantExpires)
		}
	}
}
