package signature_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/hookd/hookd/signature"
)

// TestRotationSingleValueHeaders checks that during a rotation every single-value
// scheme keeps SPEC's one-value header format, so a receiver that compares the
// header with the one digest it computes (no hookd package) verifies with the
// new secret, and one still on the old secret finds its value in -Previous.
func TestRotationSingleValueHeaders(t *testing.T) {
	t.Parallel()
	const newSecret, oldSecret = "new-secret-0123456789", "old-secret-0123456789"
	body := []byte(`{"a":1}`)
	msg := signature.Message{ID: "evt_1", Timestamp: time.Unix(1700000000, 0), Body: body}
	mac := func(secret, content string) string {
		m := hmac.New(sha256.New, []byte(secret))
		m.Write([]byte(content))
		return hex.EncodeToString(m.Sum(nil))
	}
	tests := []struct {
		scheme   signature.Scheme
		naive    func(secret string) string // what a receiver expects in the header
		primary  string
		previous string
	}{
		{signature.HMACSHA256, func(s string) string { return mac(s, string(body)) }, "X-Signature", "X-Signature-Previous"},
		{signature.Timestamped, func(s string) string { return "sha256=" + mac(s, "1700000000."+string(body)) }, "X-Webhook-Signature", "X-Webhook-Signature-Previous"},
		{signature.SharedSecret, func(s string) string { return s }, "X-Webhook-Secret", "X-Webhook-Secret-Previous"},
	}
	for _, tt := range tests {
		h, err := signature.Sign(tt.scheme, "", []string{newSecret, oldSecret}, msg)
		if err != nil {
			t.Fatalf("Sign(%s) = %v", tt.scheme, err)
		}
		if got, want := h.Get(tt.primary), tt.naive(newSecret); got != want {
			t.Errorf("Sign(%s) %s = %q, want the new secret's single value %q", tt.scheme, tt.primary, got, want)
		}
		if got, want := h.Get(tt.previous), tt.naive(oldSecret); got != want {
			t.Errorf("Sign(%s) %s = %q, want the old secret's single value %q", tt.scheme, tt.previous, got, want)
		}
		for _, secret := range []string{newSecret, oldSecret} {
			if err := signature.Verify(tt.scheme, "", secret, h, body, signature.VerifyOptions{Now: func() time.Time { return msg.Timestamp }}); err != nil {
				t.Errorf("Verify(%s, %q) = %v, want nil", tt.scheme, secret, err)
			}
		}
		if err := signature.Verify(tt.scheme, "", "third-secret-0123456789", h, body, signature.VerifyOptions{Now: func() time.Time { return msg.Timestamp }}); !errors.Is(err, signature.ErrNoMatch) {
			t.Errorf("Verify(%s, third secret) = %v, want ErrNoMatch", tt.scheme, err)
		}
		if _, err := signature.Sign(tt.scheme, "", []string{"a-secret-0123456789", "b-secret-0123456789", "c-secret-0123456789"}, msg); !errors.Is(err, signature.ErrInvalidSecret) {
			t.Errorf("Sign(%s) with three secrets = %v, want ErrInvalidSecret", tt.scheme, err)
		}
	}
}
