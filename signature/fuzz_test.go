package signature_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hookd/hookd/signature"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
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

// maxFuzzTime keeps fuzzed send times, and the times derived from them, in
// the range Sign and Verify take (1970 to 9999).
const maxFuzzTime = 253402300799 - 3600

// mutateSecret returns a secret that differs from secret in one byte of its
// HMAC key (or, for SharedSecret, of the secret itself), so that it must not
// verify what secret signed. It keeps the secret usable: base64 for
// StandardWebhooks, printable ASCII for SharedSecret.
func mutateSecret(t *testing.T, s signature.Scheme, secret string, at, by uint8) string {
	t.Helper()
	d := by | 1 // never zero
	switch s {
	case signature.StandardWebhooks:
		k, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, signature.SecretPrefix))
		if err != nil || len(k) == 0 {
			t.Fatalf("mutateSecret: %q is not a usable %s secret", secret, s)
		}
		k[int(at)%len(k)] ^= d
		return signature.SecretPrefix + base64.StdEncoding.EncodeToString(k)
	case signature.SharedSecret:
		b := []byte(secret)
		i := int(at) % len(b)
		b[i] = '!' + byte((int(b[i]-'!')+1+int(by)%93)%94) // another printable character
		return string(b)
	default:
		b := []byte(secret)
		b[int(at)%len(b)] ^= d
		return string(b)
	}
}

// hexMAC is HMAC-SHA256(key, content) in lowercase hex, computed here
// independently of the package.
func hexMAC(key []byte, content string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(content))
	return hex.EncodeToString(m.Sum(nil))
}

// FuzzSignRoundTrip signs fuzzed messages with every scheme (the index si
// picks one of signature.Schemes()) and checks:
//   - Sign's header value is what an independent HMAC over SPEC §5's signed
//     content gives (for StandardWebhooks: the reference library too);
//   - what Sign made, Verify accepts, under each secret of a rotation;
//   - a change of one byte of the body, of the timestamp, of the id or of the
//     secret's key makes Verify fail with ErrNoMatch, for every scheme that
//     covers that part (and changes nothing for those that do not);
//   - a timestamp further than the tolerance from now fails with
//     ErrTimestampOutOfRange, one at most the tolerance away verifies.
func FuzzSignRoundTrip(f *testing.F) {
	for _, s := range signature.Schemes() {
		for _, sec := range testSecrets[s][:2] {
			f.Add(schemeIndex(s), "", sec, testID, int64(1700000000), testBody, uint8(0), uint8(1), int16(0), uint16(1))
		}
		f.Add(schemeIndex(s), "X-Custom-Sig", testSecrets[s][0], "msg_2", int64(0), []byte{}, uint8(7), uint8(0x80), int16(300), uint16(300))
		f.Add(schemeIndex(s), "x-timestamp", testSecrets[s][0], "a:b-c_d", int64(maxFuzzTime), []byte("1700000000.{}"), uint8(255), uint8(255), int16(-301), uint16(0))
		f.Add(schemeIndex(s), "bad header", "whsec_", "id.with.dots", int64(-5), []byte("\x00\xff\r\n"), uint8(3), uint8(2), int16(301), uint16(7))
	}
	f.Fuzz(func(t *testing.T, si uint8, header, secret, id string, ts int64, body []byte, pos, by uint8, skew int16, shift uint16) {
		s := schemeAt(si)
		if signature.ValidateHeader(s, header) != nil {
			header = ""
		}
		if _, err := signature.Sign(s, header, []string{secret}, signature.Message{ID: testID, Timestamp: t0}); err != nil {
			if !errors.Is(err, signature.ErrInvalidSecret) {
				t.Fatalf("Sign(%q, secret %q) = %v, want nil or ErrInvalidSecret", s, secret, err)
			}
			secret = testSecrets[s][0]
		}
		if _, err := signature.Sign(s, header, []string{secret}, signature.Message{ID: id, Timestamp: t0}); err != nil {
			if !errors.Is(err, signature.ErrInvalidMessage) {
				t.Fatalf("Sign(%q, id %q) = %v, want nil or ErrInvalidMessage", s, id, err)
			}
			id = testID
		}
		if ts < 0 {
			ts = -(ts + 1)
		}
		ts %= maxFuzzTime
		when := time.Unix(ts, 0)
		msg := signature.Message{ID: id, Timestamp: when, Body: body}
		other := mutateSecret(t, s, secret, pos, by)
		h, err := signature.Sign(s, header, []string{secret, other}, msg)
		if err != nil {
			t.Fatalf("Sign(%q, %q, [%q %q], %+v) = %v", s, header, secret, other, msg, err)
		}
		name := header
		if name == "" || s == signature.StandardWebhooks {
			name = s.DefaultHeader()
		}
		tsText := strconv.FormatInt(ts, 10)
		h.Set("webhook-id", id)
		h.Set("webhook-timestamp", tsText)

		// The value is SPEC §5's, computed independently.
		var want string
		switch s {
		case signature.StandardWebhooks:
			k, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, signature.SecretPrefix))
			kk, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(other, signature.SecretPrefix))
			mac := func(key []byte) string {
				m := hmac.New(sha256.New, key)
				m.Write([]byte(id + "." + tsText + "." + string(body)))
				return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
			}
			want = mac(k) + " " + mac(kk)
			for _, sec := range []string{secret, other} {
				ref, err := standardwebhooks.NewWebhook(sec)
				if err != nil {
					t.Fatalf("standardwebhooks.NewWebhook(%q) = %v", sec, err)
				}
				if err := ref.VerifyIgnoringTimestamp(body, h); err != nil {
					t.Fatalf("reference Verify of Sign(%q, %q) = %v, want <nil>", s, sec, err)
				}
			}
		case signature.HMACSHA256:
			want = hexMAC([]byte(secret), string(body))
		case signature.Timestamped:
			want = "sha256=" + hexMAC([]byte(secret), tsText+"."+string(body))
			if got := h.Get(signature.HeaderTimestamp); got != tsText {
				t.Fatalf("Sign(%q) X-Timestamp = %q, want %q", s, got, tsText)
			}
		case signature.SharedSecret:
			want = secret
		}
		if got := h.Get(name); got != want {
			t.Fatalf("Sign(%q, %q, %q) %s = %q, want %q", s, secret, body, name, got, want)
		}

		now := signature.VerifyOptions{Now: at(when)}
		check := func(what, secret string, h http.Header, body []byte, opts signature.VerifyOptions, want error) {
			t.Helper()
			err := signature.Verify(s, header, secret, h, body, opts)
			if want == nil && err != nil || want != nil && !errors.Is(err, want) {
				t.Fatalf("Verify(%q, %s) = %v, want %v", s, what, err, want)
			}
		}
		check("the current secret", secret, h, body, now, nil)
		check("the previous secret", other, h, body, now, nil)
		only := h.Clone()
		only.Del(signature.PreviousHeader(name))
		if s == signature.StandardWebhooks {
			only.Set(name, strings.Fields(h.Get(name))[0])
		}
		check("another secret", other, only, body, now, signature.ErrNoMatch)

		// One changed byte of the body.
		changed := append([]byte(nil), body...)
		if len(changed) == 0 {
			changed = []byte{by}
		} else {
			changed[int(pos)%len(changed)] ^= by | 1
		}
		var bodyCovered error = signature.ErrNoMatch
		if s == signature.SharedSecret {
			bodyCovered = nil
		}
		check("a changed body", secret, h, changed, now, bodyCovered)

		// Another timestamp within the tolerance.
		d := int64(shift%300) + 1
		moved := ts + d
		tsCovered := error(signature.ErrNoMatch)
		if s == signature.HMACSHA256 || s == signature.SharedSecret {
			tsCovered = nil
		}
		mh := h.Clone()
		mh.Set("webhook-timestamp", strconv.FormatInt(moved, 10))
		if s == signature.Timestamped { // others may use X-Timestamp as their signature header
			mh.Set(signature.HeaderTimestamp, strconv.FormatInt(moved, 10))
		}
		check("a changed timestamp", secret, mh, body, now, tsCovered)

		// Another id.
		ih := h.Clone()
		ih.Set("webhook-id", id+string(rune('a'+by%26)))
		idCovered := error(nil)
		if s == signature.StandardWebhooks {
			idCovered = signature.ErrNoMatch
		}
		check("a changed id", secret, ih, body, now, idCovered)

		// The clock skew: at most the tolerance away verifies, further does not.
		off := time.Duration(skew) * time.Second
		skewed := signature.VerifyOptions{Now: at(when.Add(off)), Tolerance: 300 * time.Second}
		var tooFar error
		if (off > 300*time.Second || off < -300*time.Second) && (s == signature.StandardWebhooks || s == signature.Timestamped) {
			tooFar = signature.ErrTimestampOutOfRange
		}
		check(fmt.Sprintf("now %v from the timestamp", off), secret, h, body, skewed, tooFar)
	})
}

// FuzzPartnerSignature checks the partner door's signature (SPEC §6:
// x-webhook-signature = sha256=<hex HMAC-SHA256(secret, "{x-timestamp}.{raw
// body}")>), which httpapi checks with Verify(Timestamped,
// "X-Webhook-Signature", …): TimestampedSignature is that value computed
// independently; Verify accepts it with the x-timestamp header, also with
// the hex in upper case; any other secret, timestamp or body fails with
// ErrNoMatch; a timestamp that is not canonical unix seconds fails with
// ErrInvalidHeader; and arbitrary header values never make Verify panic or
// accept.
func FuzzPartnerSignature(f *testing.F) {
	f.Add("psec_0123456789abcdefghijABCDEFGHIJ0123456789abc", int64(1700000000), []byte(`{"id":"1","type":"a","data":{}}`), "", "", uint8(0))
	f.Add("k", int64(0), []byte{}, "01700000000", "sha256=", uint8(1))
	f.Add("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", int64(1614265330), []byte(`{"test": 2432232314}`), "+1614265330", "sha1=abc sha256=zz", uint8(9))
	f.Add("a\x00", int64(maxFuzzTime), []byte("1700000000.x"), " 1700000000", "SHA256=00", uint8(200))
	f.Fuzz(func(t *testing.T, secret string, ts int64, body []byte, rawTS, rawSig string, by uint8) {
		if secret == "" {
			secret = "s"
		}
		if ts < 0 {
			ts = -(ts + 1)
		}
		ts %= maxFuzzTime
		tsText := strconv.FormatInt(ts, 10)
		want := "sha256=" + hexMAC([]byte(secret), tsText+"."+string(body))
		if got := signature.TimestampedSignature(secret, ts, body); got != want {
			t.Fatalf("TimestampedSignature(%q, %d, %q) = %q, want %q", secret, ts, body, got, want)
		}
		opts := signature.VerifyOptions{Now: at(time.Unix(ts, 0)), Tolerance: 300 * time.Second}
		verify := func(secret, ts, sig string, body []byte) error {
			h := http.Header{}
			h.Set("X-Timestamp", ts)
			h.Set("X-Webhook-Signature", sig)
			return signature.Verify(signature.Timestamped, "X-Webhook-Signature", secret, h, body, opts)
		}
		if err := verify(secret, tsText, want, body); err != nil {
			t.Fatalf("Verify(partner, %q, %q) = %v, want <nil>", secret, body, err)
		}
		if err := verify(secret, tsText, "sha256="+strings.ToUpper(want[7:]), body); err != nil {
			t.Fatalf("Verify(partner, upper-case hex) = %v, want <nil>", err)
		}
		b := []byte(secret)
		b[int(by)%len(b)] ^= by | 1
		if err := verify(string(b), tsText, want, body); !errors.Is(err, signature.ErrNoMatch) {
			t.Fatalf("Verify(partner, secret %q for %q) = %v, want ErrNoMatch", b, secret, err)
		}
		if err := verify(secret, strconv.FormatInt(ts+1+int64(by)%300, 10), want, body); !errors.Is(err, signature.ErrNoMatch) {
			t.Fatalf("Verify(partner, another timestamp) = %v, want ErrNoMatch", err)
		}
		changed := append(append([]byte(nil), body...), by)
		if err := verify(secret, tsText, want, changed); !errors.Is(err, signature.ErrNoMatch) {
			t.Fatalf("Verify(partner, body %q signed as %q) = %v, want ErrNoMatch", changed, body, err)
		}
		// Fuzzed header values: a non-canonical timestamp is refused before
		// the signature; nothing but the right value is accepted.
		if rawTS != "" && rawTS != tsText {
			err := verify(secret, rawTS, want, body)
			if _, perr := strconv.ParseUint(rawTS, 10, 63); (perr != nil || rawTS[0] == '0' && rawTS != "0" || strings.TrimSpace(rawTS) != rawTS) &&
				!errors.Is(err, signature.ErrInvalidHeader) && !errors.Is(err, signature.ErrMissingHeader) {
				t.Fatalf("Verify(partner, x-timestamp %q) = %v, want ErrInvalidHeader", rawTS, err)
			}
			if err == nil {
				t.Fatalf("Verify(partner, x-timestamp %q signed as %q) = <nil>, want an error", rawTS, tsText)
			}
		}
		if rawSig != "" {
			err := verify(secret, tsText, rawSig, body)
			if err == nil && !containsEntry(rawSig, want) {
				t.Fatalf("Verify(partner, signature %q) = <nil>, but it does not hold %q", rawSig, want)
			}
			if err != nil && !isAny(err, verifyErrors) {
				t.Fatalf("Verify(partner, signature %q) = %v, want a request error", rawSig, err)
			}
		}
	})
}

// containsEntry reports whether one of the space-separated entries of sigs is
// want, ignoring the case of the hex digits.
func containsEntry(sigs, want string) bool {
	for _, e := range strings.Fields(sigs) {
		if algo, hx, ok := strings.Cut(e, "="); ok && algo == "sha256" && strings.EqualFold(hx, want[len("sha256="):]) {
			return true
		}
	}
	return false
}
