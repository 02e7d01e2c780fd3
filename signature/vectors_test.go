package signature_test

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hookd/hookd/signature"
)

// standardVector is a published Standard Webhooks test vector.
type standardVector struct {
	source  string
	secret  string
	id      string
	ts      int64
	payload string
	want    string // webhook-signature
}

// The vectors from the Standard Webhooks spec's reference libraries
// (standard-webhooks/standard-webhooks, libraries/*/ tests), written out here.
var standardVectors = []standardVector{
	{
		source:  "spec libraries (go, python, javascript, java, ruby, php, csharp)",
		secret:  "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
		id:      "msg_p5jXN8AQM9LWM0D4loKWxJek",
		ts:      1614265330,
		payload: `{"test": 2432232314}`,
		want:    "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
	},
	{
		source:  "spec libraries (rust)",
		secret:  "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
		id:      "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
		ts:      1649367553,
		payload: `{"email":"test@example.com","username":"test_user"}`,
		want:    "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
	},
}

func (v standardVector) headers(sig string) http.Header {
	h := http.Header{}
	h.Set("webhook-id", v.id)
	h.Set("webhook-timestamp", strconv.FormatInt(v.ts, 10))
	h.Set("webhook-signature", sig)
	return h
}

func TestStandardWebhooksVectors(t *testing.T) {
	t.Parallel()
	for _, v := range standardVectors {
		msg := signature.Message{ID: v.id, Timestamp: time.Unix(v.ts, 0), Body: []byte(v.payload)}
		opts := signature.VerifyOptions{Now: at(time.Unix(v.ts, 0))}
		for _, secret := range []string{v.secret, strings.TrimPrefix(v.secret, "whsec_")} {
			h, err := signature.Sign(signature.StandardWebhooks, "", []string{secret}, msg)
			if got := h.Get("webhook-signature"); err != nil || got != v.want {
				t.Errorf("Sign(%q, %q) = %q, %v, want %q (%s)", secret, v.id, got, err, v.want, v.source)
			}
			if err := signature.Verify(signature.StandardWebhooks, "", secret, v.headers(v.want), msg.Body, opts); err != nil {
				t.Errorf("Verify(%q, %q) = %v, want <nil> (%s)", secret, v.want, err, v.source)
			}
		}
	}
}

// The negative and multi-signature cases from the reference libraries' tests.
func TestStandardWebhooksVectorRejections(t *testing.T) {
	t.Parallel()
	spec, rust := standardVectors[0], standardVectors[1]
	rustOthers := []string{
		"v1,tFtCZ5RDCPxzWQRWXWPgrCgE2frDBe9gjpbWQxnVfsQ=",
		"v1,Mm7xgUVICxZfQ3bgf0h0Dof65L/IFx+PnZvnDWPCX6Q=",
		"v1,9DfC1c3eeOrXB6w/5dIDydLNQaEyww5KalE5jLBZucE=",
	}
	tests := []struct {
		name string
		v    standardVector
		sig  string
		want error
	}{
		{"last digit changed", spec, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=", signature.ErrNoMatch},
		{"signature for another message", spec, "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=", signature.ErrNoMatch},
		{"partial signature", spec, "v1,", signature.ErrInvalidHeader},
		{"partial signature bytes", spec, spec.want[:8], signature.ErrInvalidHeader},
		{"valid among others", spec, strings.Join([]string{
			"v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
			"v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
			spec.want,
			"v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
		}, " "), nil},
		{"rust wrong signature", rust, "v1,R3PTzyfHASBKHH98a7yexTwaJ4yNIcGhFQc1yuN+BPU=", signature.ErrNoMatch},
		{"rust valid among others", rust, strings.Join([]string{rustOthers[0], rustOthers[1], rust.want, rustOthers[2]}, " "), nil},
		{"rust others only", rust, strings.Join(rustOthers, " "), signature.ErrNoMatch},
	}
	for _, tc := range tests {
		opts := signature.VerifyOptions{Now: at(time.Unix(tc.v.ts, 0))}
		err := signature.Verify(signature.StandardWebhooks, "", tc.v.secret, tc.v.headers(tc.sig), []byte(tc.v.payload), opts)
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("Verify(%q) = %v, want %v", tc.name, err, tc.want)
		}
	}
}

// Published HMAC-SHA256 known answers, for the schemes keyed with the
// secret's bytes.
func TestHMACVectors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		source string
		secret string
		body   string
		want   string
	}{
		{"RFC 4231 test case 2", "Jefe", "what do ya want for nothing?", "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
		{"GitHub docs, validating webhook deliveries", "It's a Secret to Everybody", "Hello, World!", "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"},
	}
	for _, tc := range tests {
		h, err := signature.Sign(signature.HMACSHA256, "", []string{tc.secret}, signature.Message{Body: []byte(tc.body)})
		if got := h.Get("X-Signature"); err != nil || got != tc.want {
			t.Errorf("Sign(%q, %q) = %q, %v, want %q (%s)", tc.secret, tc.body, got, err, tc.want, tc.source)
		}
		h = http.Header{"X-Signature": {tc.want}}
		if err := signature.Verify(signature.HMACSHA256, "", tc.secret, h, []byte(tc.body), signature.VerifyOptions{}); err != nil {
			t.Errorf("Verify(%q, %q) = %v, want <nil> (%s)", tc.secret, tc.want, err, tc.source)
		}
	}
}
