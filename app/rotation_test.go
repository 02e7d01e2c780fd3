package app_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/hookd/hookd/hookdtest"
)

// TestSecretRotationSingleValueSchemes checks SPEC §5's one-value headers during a
// grace period, as a receiver that does not use hookd's package sees them: the
// scheme's header carries exactly the value computed with the new secret, and
// <header>-Previous the one computed with the old secret.
func TestSecretRotationSingleValueSchemes(t *testing.T) {
	t.Parallel()
	e := setup(t)
	const oldSecret, newSecret = "old-partner-secret-0123456789", "new-partner-secret-0123456789"
	tests := []struct {
		scheme, header string
		value          func(secret string, req *hookdtest.Request) string
	}{
		{"hmac-sha256", "X-Signature", func(s string, req *hookdtest.Request) string { return hexHMAC(s, string(req.Body)) }},
		{"timestamped", "X-Webhook-Signature", func(s string, req *hookdtest.Request) string {
			return "sha256=" + hexHMAC(s, req.Header.Get("X-Timestamp")+"."+string(req.Body))
		}},
		{"shared-secret", "X-Webhook-Secret", func(s string, _ *hookdtest.Request) string { return s }},
	}
	for i, tt := range tests {
		r := hookdtest.NewTLSReceiver(t) // shared-secret needs https; the others do not mind
		ep := e.endpoint(t, r.URL(), map[string]any{"events": []string{"rot" + strconv.Itoa(i)},
			"secret": oldSecret, "signature": map[string]any{"scheme": tt.scheme}})
		status, rot := e.h.Do(t, http.MethodPost, "/api/webhooks/"+str(ep, "id")+"/secret/rotate", e.key,
			map[string]any{"secret": newSecret, "grace_period": 60})
		if status != http.StatusOK {
			t.Fatalf("%s: rotate = %d %v", tt.scheme, status, rot)
		}
		e.publish(t, "", "rot"+strconv.Itoa(i), map[string]any{"n": i})
		req := r.Wait(t, 1, 5*time.Second)[0]
		if got, want := req.Header.Values(tt.header), []string{tt.value(newSecret, req)}; len(got) != 1 || got[0] != want[0] {
			t.Errorf("%s: %s = %q, want exactly the new secret's value %q", tt.scheme, tt.header, got, want)
		}
		if got, want := req.Header.Get(tt.header+"-Previous"), tt.value(oldSecret, req); got != want {
			t.Errorf("%s: %s-Previous = %q, want the old secret's value %q", tt.scheme, tt.header, got, want)
		}
	}
}
