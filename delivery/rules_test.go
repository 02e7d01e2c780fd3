package delivery

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/netguard"
)

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"7", 7 * time.Second},
		{" 120 ", 120 * time.Second},
		{"-3", 0},
		{"soon", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestDecide(t *testing.T) {
	t.Parallel()
	e, err := New(Config{Store: nopStore{}, Retry: hookd.RetryPolicy{MaxAttempts: 3, InitialInterval: 10 * time.Second, MaxInterval: time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	claim := func(cycle int, typ string) *hookd.Claim {
		return &hookd.Claim{
			Delivery: hookd.Delivery{ID: "dlv_1", OrgID: "o", EventID: "e1", EventType: typ, EndpointID: "ep_1", CycleAttempts: cycle, Attempts: cycle},
			Event:    hookd.Event{ID: "e1", Type: typ},
			Lease:    "L",
		}
	}
	res := func(status int, errText string, retryAfter time.Duration) result {
		return result{attempt: hookd.Attempt{StatusCode: status, Error: errText, CreatedAt: start}, retryAfter: retryAfter}
	}
	tests := []struct {
		name      string
		c         *hookd.Claim
		r         result
		status    string
		minWait   time.Duration
		maxWait   time.Duration
		disable   bool
		emitTypes string
	}{
		{"success", claim(0, "a.b"), res(200, "", 0), hookd.DeliverySucceeded, 0, 0, false, ""},
		{"first failure backs off", claim(0, "a.b"), res(500, "boom", 0), hookd.DeliveryPending, 8 * time.Second, 12 * time.Second, false, ""},
		{"second failure backs off 6x", claim(1, "a.b"), res(500, "boom", 0), hookd.DeliveryPending, 48 * time.Second, time.Minute, false, ""},
		{"exhausted emits delivery.failed", claim(2, "a.b"), res(500, "boom", 0), hookd.DeliveryFailed, 0, 0, false, hookd.EventDeliveryFailed},
		{"exhausted operational event emits nothing", claim(2, hookd.EventDeliveryFailed), res(500, "boom", 0), hookd.DeliveryFailed, 0, 0, false, ""},
		{"exhausted usage_threshold emits nothing", claim(2, hookd.EventUsageThreshold), res(500, "boom", 0), hookd.DeliveryFailed, 0, 0, false, ""},
		{"410 disables", claim(0, "a.b"), res(410, "gone", 0), hookd.DeliveryFailed, 0, 0, true, ""},
		{"retry-after honoured", claim(0, "a.b"), res(429, "slow down", 30*time.Second), hookd.DeliveryPending, 30 * time.Second, 30 * time.Second, false, ""},
		{"retry-after capped", claim(0, "a.b"), res(503, "busy", time.Hour), hookd.DeliveryPending, time.Minute, time.Minute, false, ""},
		{"network error retried", claim(0, "a.b"), res(0, "connection refused", 0), hookd.DeliveryPending, 8 * time.Second, 12 * time.Second, false, ""},
	}
	for _, tt := range tests {
		out := e.decide(tt.c, tt.r)
		if out.Status != tt.status {
			t.Errorf("%s: status = %q, want %q", tt.name, out.Status, tt.status)
		}
		if tt.status == hookd.DeliveryPending {
			wait := out.NextAttemptAt.Sub(start)
			if wait < tt.minWait || wait > tt.maxWait {
				t.Errorf("%s: wait = %v, want in [%v, %v]", tt.name, wait, tt.minWait, tt.maxWait)
			}
		}
		if (out.DisableEndpoint != "") != tt.disable {
			t.Errorf("%s: DisableEndpoint = %q, want set=%v", tt.name, out.DisableEndpoint, tt.disable)
		}
		var types []string
		for _, ev := range out.Emit {
			types = append(types, ev.Type)
		}
		if got := strings.Join(types, ","); got != tt.emitTypes {
			t.Errorf("%s: emitted %q, want %q", tt.name, got, tt.emitTypes)
		}
		if out.Lease != "L" || out.DeliveryID != "dlv_1" {
			t.Errorf("%s: outcome lost its delivery or lease: %+v", tt.name, out)
		}
	}
}

func TestMaskHeaders(t *testing.T) {
	t.Parallel()
	h := http.Header{}
	h.Set("X-Webhook-Secret", "s3cret-value-123456")
	h.Set("X-Webhook-Secret-Previous", "old-s3cret-value-123456")
	h.Set("Authorization", "Bearer abc")
	h.Set("X-Api-Token", "t")
	h.Set("X-Team", "billing")
	h.Set("Webhook-Signature", "v1,abc")
	ep := &hookd.Endpoint{SignatureScheme: "shared-secret"}
	got := maskHeaders(h, ep)
	want := map[string]string{
		"X-Webhook-Secret": "********", "X-Webhook-Secret-Previous": "********", "Authorization": "********", "X-Api-Token": "********",
		"X-Team": "billing", "Webhook-Signature": "v1,abc",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("maskHeaders()[%q] = %q, want %q", k, got[k], v)
		}
	}
}

func TestBody(t *testing.T) {
	t.Parallel()
	ev := &hookd.Event{ID: "e1", OrgID: "acme", Type: "a.b", Data: []byte(`{"x":  1, "y": [1, 2]}`),
		CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	raw, _ := Body(ev, hookd.PayloadRaw)
	if string(raw) != `{"x":  1, "y": [1, 2]}` {
		t.Errorf("Body(raw) = %s, want the data byte for byte", raw)
	}
	env, _ := Body(ev, hookd.PayloadEnvelope)
	want := `{"id":"e1","type":"a.b","timestamp":"2026-01-02T03:04:05Z","organization":"acme","data":{"x":1,"y":[1,2]}}`
	if string(env) != want {
		t.Errorf("Body(envelope) = %s, want %s", env, want)
	}
}

// TestDecideFailureWindow: a failed attempt disables its endpoint once the run of
// failures it belongs to has lasted DisableAfter, conditionally on the store's run.
func TestDecideFailureWindow(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name         string
		disableAfter time.Duration
		since        time.Time // the claim's FailingSince
		errText      string
		disable      bool
	}{
		{"run longer than the window", 0, start.Add(-6 * 24 * time.Hour), "boom", true},
		{"run exactly the window", 0, start.Add(-DefaultDisableAfter), "boom", true},
		{"run shorter than the window", 0, start.Add(-24 * time.Hour), "boom", false},
		{"no run yet", 0, time.Time{}, "boom", false},
		{"success ends it", 0, start.Add(-6 * 24 * time.Hour), "", false},
		{"shorter window", time.Hour, start.Add(-2 * time.Hour), "boom", true},
		{"never", -1, start.Add(-60 * 24 * time.Hour), "boom", false},
	} {
		e, err := New(Config{Store: nopStore{}, DisableAfter: tt.disableAfter})
		if err != nil {
			t.Fatal(err)
		}
		c := &hookd.Claim{Delivery: hookd.Delivery{ID: "dlv_1"}, Event: hookd.Event{Type: "a.b"}, Lease: "L",
			Endpoint: hookd.Endpoint{ID: "ep_1", FailingSince: tt.since}}
		out := e.decide(c, result{attempt: hookd.Attempt{StatusCode: 500, Error: tt.errText, CreatedAt: start}})
		if (out.DisableEndpoint != "") != tt.disable {
			t.Errorf("%s: DisableEndpoint = %q, want set=%v", tt.name, out.DisableEndpoint, tt.disable)
		}
		if tt.disable && out.FailingFor != e.cfg.DisableAfter {
			t.Errorf("%s: FailingFor = %v, want %v (the store re-checks the run)", tt.name, out.FailingFor, e.cfg.DisableAfter)
		}
	}
}

// TestRequestRefusals: an attempt is refused, before any connection, when the
// endpoint URL is invalid, uses http without the policy allowing it, or sends a
// shared secret over http.
func TestRequestRefusals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		allowHTTP bool
		url       string
		scheme    string
		want      string
	}{
		{"invalid URL", true, "http://[::1", "", "the endpoint URL is invalid"},
		{"http by default", false, "http://example.com/h", "", "refused: the endpoint URL must use https"},
		{"another scheme", true, "ftp://example.com/h", "", "refused: the endpoint URL must use https"},
		{"shared secret over http", true, "http://example.com/h", "shared-secret", "refused: the shared-secret scheme sends the secret itself and needs https"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := New(Config{Store: nopStore{}})
			if err != nil {
				t.Fatal(err)
			}
			e.cfg.Policy.AllowHTTP = tt.allowHTTP
			c := &hookd.Claim{
				Event:    hookd.Event{ID: "evt_1", Type: "a.b", Data: []byte(`{}`), CreatedAt: time.Now()},
				Endpoint: hookd.Endpoint{ID: "ep_1", URL: tt.url, SignatureScheme: tt.scheme, Secret: "whsec_" + strings.Repeat("A", 32)},
			}
			if got := e.Send(t.Context(), c); got.Error != tt.want || got.StatusCode != 0 {
				t.Errorf("attempt = %q (status %d), want %q before any request", got.Error, got.StatusCode, tt.want)
			}
		})
	}
}

// TestSendTimesOut: a test send (Engine.Send) to an endpoint that never
// answers ends at the attempt timeout, even if its caller would wait longer.
func TestSendTimesOut(t *testing.T) {
	t.Parallel()
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(hang)
	e, err := New(Config{Store: nopStore{}, Policy: netguard.Policy{AllowHTTP: true, AllowPrivate: true},
		AttemptTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	start := time.Now()
	a := e.Send(ctx, &hookd.Claim{
		Event:    hookd.Event{ID: "evt_1", Type: "a.b", Data: []byte(`{}`), CreatedAt: time.Now()},
		Endpoint: hookd.Endpoint{ID: "ep_1", URL: srv.URL, Secret: "whsec_" + strings.Repeat("A", 32)},
	})
	if took := time.Since(start); !strings.HasPrefix(a.Error, "timed out after") || took > 10*time.Second {
		t.Errorf("Send to a hanging endpoint = %q after %s, want a timeout after about 200ms", a.Error, took)
	}
}
