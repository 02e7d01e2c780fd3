package signature_test

import (
	"bytes"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/hookd/hookd/signature"
)

// verifyErrors are the errors Verify may return for a request.
var verifyErrors = []error{
	signature.ErrMissingHeader, signature.ErrInvalidHeader,
	signature.ErrTimestampOutOfRange, signature.ErrNoMatch,
}

func schemeAt(i uint8) signature.Scheme {
	s := signature.Schemes()
	return s[int(i)%len(s)]
}

func schemeIndex(s signature.Scheme) uint8 {
	for i, sc := range signature.Schemes() {
		if sc == s {
			return uint8(i)
		}
	}
	panic("unknown scheme " + s)
}

// FuzzVerify feeds Verify arbitrary headers and bodies. It must not panic,
// must fail only with its request errors, and must never accept a body other
// than the one that was signed.
func FuzzVerify(f *testing.F) {
	for _, tc := range verifyCases(f) {
		sig := tc.h.Get(tc.header)
		if tc.header == "" || tc.scheme == signature.StandardWebhooks {
			sig = tc.h.Get(tc.scheme.DefaultHeader())
		}
		f.Add(schemeIndex(tc.scheme), tc.header, tc.h.Get("webhook-id"), tc.h.Get("webhook-timestamp"),
			tc.h.Get("X-Timestamp"), sig, tc.body, testBody)
	}
	f.Fuzz(func(t *testing.T, si uint8, header, id, ts, xts, sig string, body, signedBody []byte) {
		s := schemeAt(si)
		secret := testSecrets[s][0]
		opts := signature.VerifyOptions{Now: at(t0)}

		// Arbitrary request headers.
		h := http.Header{}
		for k, v := range map[string]string{"webhook-id": id, "webhook-timestamp": ts, "X-Timestamp": xts} {
			if v != "" {
				h.Set(k, v)
			}
		}
		name := header
		if name == "" || s == signature.StandardWebhooks {
			name = s.DefaultHeader()
		}
		if sig != "" {
			h.Set(name, sig)
		}
		err := signature.Verify(s, header, secret, h, body, opts)
		if err != nil && !isAny(err, verifyErrors) {
			t.Fatalf("Verify(%q) = %v, want nil or a request error", s, err)
		}

		// A signature for signedBody verifies signedBody and nothing else.
		if signature.ValidateHeader(s, header) != nil {
			header = ""
		}
		sh, err := signature.Sign(s, header, testSecrets[s][:2], signature.Message{ID: testID, Timestamp: t0, Body: signedBody})
		if err != nil {
			t.Fatalf("Sign(%q, %q) error: %v", s, header, err)
		}
		sh.Set("webhook-id", testID)
		sh.Set("webhook-timestamp", "1700000000")
		if err := signature.Verify(s, header, secret, sh, signedBody, opts); err != nil {
			t.Fatalf("Verify(%q, signed body) = %v, want <nil>", s, err)
		}
		err = signature.Verify(s, header, secret, sh, body, opts)
		switch {
		case s == signature.SharedSecret:
			// The shared secret does not cover the body.
		case bytes.Equal(body, signedBody) && err != nil:
			t.Fatalf("Verify(%q, same body) = %v, want <nil>", s, err)
		case !bytes.Equal(body, signedBody) && !errors.Is(err, signature.ErrNoMatch):
			t.Fatalf("Verify(%q, body %q signed as %q) = %v, want %v", s, body, signedBody, err, signature.ErrNoMatch)
		}
	})
}

// FuzzValidateSecret checks that every secret ValidateSecret accepts signs
// and verifies.
func FuzzValidateSecret(f *testing.F) {
	for _, s := range signature.Schemes() {
		for _, secret := range testSecrets[s] {
			f.Add(schemeIndex(s), secret)
		}
		f.Add(schemeIndex(s), "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
		f.Add(schemeIndex(s), "whsec_%%%")
		f.Add(schemeIndex(s), "short")
		f.Add(schemeIndex(s), "has spaces in the middle")
	}
	f.Fuzz(func(t *testing.T, si uint8, secret string) {
		s := schemeAt(si)
		if err := signature.ValidateSecret(s, secret); err != nil {
			if !errors.Is(err, signature.ErrInvalidSecret) {
				t.Fatalf("ValidateSecret(%q, %q) = %v, want nil or ErrInvalidSecret", s, secret, err)
			}
			return
		}
		ts := time.Unix(1700000000, 0)
		h, err := signature.Sign(s, "", []string{secret}, signature.Message{ID: testID, Timestamp: ts, Body: testBody})
		if err != nil {
			t.Fatalf("Sign(%q, valid secret %q) = %v", s, secret, err)
		}
		h.Set("webhook-id", testID)
		h.Set("webhook-timestamp", "1700000000")
		if err := signature.Verify(s, "", secret, h, testBody, signature.VerifyOptions{Now: at(ts)}); err != nil {
			t.Fatalf("Verify(%q, valid secret %q) = %v, want <nil>", s, secret, err)
		}
	})
}

func isAny(err error, targets []error) bool {
	for _, target := range targets {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}
