package signature_test

import (
	"encoding/base64"
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hookd/hookd/signature"
)

// t0 is the send time of every message in the tables.
var t0 = time.Unix(1700000000, 0)

const testID = "evt_01JD3V6Q3ZJ9W8T2N4X5Y6Z7AB"

var testBody = []byte(`{"type":"invoice.paid","data":{"id":"inv_1","amount":4200}}`)

// testSecrets holds, per scheme, a current secret, the previous one (still
// active during a rotation) and an unrelated one.
var testSecrets = map[signature.Scheme][]string{
	signature.StandardWebhooks: {
		"whsec_" + base64.StdEncoding.EncodeToString([]byte("new-key-0123456789abcdefghijklmn")),
		"whsec_" + base64.StdEncoding.EncodeToString([]byte("old-key-0123456789abcdefghijklmn")),
		"whsec_" + base64.StdEncoding.EncodeToString([]byte("other-key-0123456789abcdefghijkl")),
	},
	signature.HMACSHA256:   {"hmac-new-secret-0123456789", "hmac-old-secret-0123456789", "hmac-other-secret-012345"},
	signature.Timestamped:  {"ts-new-secret-0123456789", "ts-old-secret-0123456789", "ts-other-secret-012345"},
	signature.SharedSecret: {"shared-new-secret-0123456789", "shared-old-secret-0123456789", "shared-other-secret-0123"},
}

// verifyCase is one request checked by Verify.
type verifyCase struct {
	name   string
	scheme signature.Scheme
	header string // signature header passed to Verify
	secret string
	h      http.Header
	body   []byte
	opts   signature.VerifyOptions
	want   error
}

func at(t time.Time) func() time.Time { return func() time.Time { return t } }

// deliver signs msg as hookd does, adding webhook-id and webhook-timestamp.
func deliver(tb testing.TB, s signature.Scheme, header string, secrets []string, msg signature.Message) http.Header {
	tb.Helper()
	h, err := signature.Sign(s, header, secrets, msg)
	if err != nil {
		tb.Fatalf("Sign(%q, %q) error: %v", s, header, err)
	}
	h.Set("webhook-id", msg.ID)
	h.Set("webhook-timestamp", "1700000000")
	return h
}

func with(h http.Header, edit func(http.Header)) http.Header {
	h = h.Clone()
	edit(h)
	return h
}

func flipLast(b []byte) []byte {
	c := append([]byte(nil), b...)
	c[len(c)-1] ^= 1
	return c
}

// verifyCases returns the Verify table: cases shared by every scheme, then
// each scheme's own.
func verifyCases(tb testing.TB) []verifyCase {
	tb.Helper()
	var cases []verifyCase
	msg := signature.Message{ID: testID, Timestamp: t0, Body: testBody}
	for _, s := range signature.Schemes() {
		sec := testSecrets[s]
		sigHeader := s.DefaultHeader()
		h := deliver(tb, s, "", sec[:1], msg)
		rotated := deliver(tb, s, "", sec[:2], msg)
		custom := deliver(tb, s, "X-Custom-Sig", sec[:1], msg)
		timed := s == signature.StandardWebhooks || s == signature.Timestamped
		ifTimed := func(err error) error {
			if timed {
				return err
			}
			return nil
		}
		var bodyErr error = signature.ErrNoMatch
		if s == signature.SharedSecret {
			bodyErr = nil // the secret does not cover the body
		}
		malformedErr := signature.ErrInvalidHeader
		if s == signature.SharedSecret {
			malformedErr = signature.ErrNoMatch // any token could be a secret
		}
		customAtDefault := signature.ErrMissingHeader
		if s == signature.StandardWebhooks {
			customAtDefault = nil // always webhook-signature
		}
		add := func(c verifyCase) {
			c.name = string(s) + "/" + c.name
			c.scheme = s
			if c.secret == "" {
				c.secret = sec[0]
			}
			if c.h == nil {
				c.h = h
			}
			if c.body == nil {
				c.body = testBody
			}
			if c.opts.Now == nil {
				c.opts.Now = at(t0)
			}
			cases = append(cases, c)
		}
		add(verifyCase{name: "valid"})
		add(verifyCase{name: "wrong secret", secret: sec[2], want: signature.ErrNoMatch})
		add(verifyCase{name: "body changed by one byte", body: flipLast(testBody), want: bodyErr})
		add(verifyCase{name: "body truncated", body: testBody[:len(testBody)-1], want: bodyErr})
		add(verifyCase{name: "empty body", body: []byte{}, want: bodyErr})
		add(verifyCase{name: "stale", opts: signature.VerifyOptions{Now: at(t0.Add(5*time.Minute + time.Second))}, want: ifTimed(signature.ErrTimestampOutOfRange)})
		add(verifyCase{name: "future", opts: signature.VerifyOptions{Now: at(t0.Add(-5*time.Minute - time.Second))}, want: ifTimed(signature.ErrTimestampOutOfRange)})
		add(verifyCase{name: "exactly tolerance old", opts: signature.VerifyOptions{Now: at(t0.Add(5 * time.Minute))}})
		add(verifyCase{name: "exactly tolerance ahead", opts: signature.VerifyOptions{Now: at(t0.Add(-5 * time.Minute))}})
		add(verifyCase{name: "custom tolerance stale", opts: signature.VerifyOptions{Tolerance: 30 * time.Second, Now: at(t0.Add(31 * time.Second))}, want: ifTimed(signature.ErrTimestampOutOfRange)})
		add(verifyCase{name: "custom tolerance fresh", opts: signature.VerifyOptions{Tolerance: time.Hour, Now: at(t0.Add(59 * time.Minute))}})
		add(verifyCase{name: "negative tolerance means default", opts: signature.VerifyOptions{Tolerance: -time.Hour, Now: at(t0.Add(4 * time.Minute))}})
		add(verifyCase{name: "missing signature header", h: with(h, func(h http.Header) { h.Del(sigHeader) }), want: signature.ErrMissingHeader})
		add(verifyCase{name: "empty signature header", h: with(h, func(h http.Header) { h.Set(sigHeader, "") }), want: signature.ErrMissingHeader})
		add(verifyCase{name: "blank signature header", h: with(h, func(h http.Header) { h.Set(sigHeader, "   ") }), want: signature.ErrInvalidHeader})
		add(verifyCase{name: "no headers", h: http.Header{}, want: signature.ErrMissingHeader})
		add(verifyCase{name: "malformed signature", h: with(h, func(h http.Header) { h.Set(sigHeader, "garbage") }), want: malformedErr})
		add(verifyCase{name: "rotation new secret", h: rotated})
		add(verifyCase{name: "rotation old secret", h: rotated, secret: sec[1]})
		add(verifyCase{name: "rotation other secret", h: rotated, secret: sec[2], want: signature.ErrNoMatch})
		add(verifyCase{name: "valid among junk", h: with(h, func(h http.Header) {
			h.Set(sigHeader, "junk "+h.Get(sigHeader)+"  more,junk")
		})})
		add(verifyCase{name: "valid on a repeated header line", h: with(h, func(h http.Header) {
			v := h.Get(sigHeader)
			h.Set(sigHeader, "junk")
			h.Add(sigHeader, v)
		})})
		add(verifyCase{name: "custom header", header: "x-custom-sig", h: custom})
		add(verifyCase{name: "custom header read at default", h: custom, want: customAtDefault})
	}

	sw := signature.StandardWebhooks
	swH := deliver(tb, sw, "", testSecrets[sw][:1], msg)
	swSig := swH.Get("webhook-signature")
	swCase := func(name string, edit func(http.Header), want error) verifyCase {
		return verifyCase{
			name: string(sw) + "/" + name, scheme: sw, secret: testSecrets[sw][0],
			h: with(swH, edit), body: testBody, opts: signature.VerifyOptions{Now: at(t0)}, want: want,
		}
	}
	set := func(k, v string) func(http.Header) { return func(h http.Header) { h.Set(k, v) } }
	del := func(k string) func(http.Header) { return func(h http.Header) { h.Del(k) } }
	cases = append(cases,
		swCase("missing webhook-id", del("webhook-id"), signature.ErrMissingHeader),
		swCase("missing webhook-timestamp", del("webhook-timestamp"), signature.ErrMissingHeader),
		swCase("timestamp not a number", set("webhook-timestamp", "abc"), signature.ErrInvalidHeader),
		swCase("timestamp negative", set("webhook-timestamp", "-1700000000"), signature.ErrInvalidHeader),
		swCase("timestamp with plus sign", set("webhook-timestamp", "+1700000000"), signature.ErrInvalidHeader),
		swCase("timestamp with leading zero", set("webhook-timestamp", "01700000000"), signature.ErrInvalidHeader),
		swCase("timestamp with fraction", set("webhook-timestamp", "1700000000.5"), signature.ErrInvalidHeader),
		swCase("timestamp in milliseconds", set("webhook-timestamp", "1700000000000"), signature.ErrTimestampOutOfRange),
		swCase("timestamp overflows", set("webhook-timestamp", "99999999999999999999"), signature.ErrInvalidHeader),
		swCase("timestamp max int64", set("webhook-timestamp", "9223372036854775807"), signature.ErrTimestampOutOfRange),
		swCase("timestamp zero", set("webhook-timestamp", "0"), signature.ErrTimestampOutOfRange),
		swCase("timestamp changed", set("webhook-timestamp", "1700000001"), signature.ErrNoMatch),
		swCase("id changed", set("webhook-id", testID+"x"), signature.ErrNoMatch),
		swCase("version only", set("webhook-signature", "v1"), signature.ErrInvalidHeader),
		swCase("empty signature", set("webhook-signature", "v1,"), signature.ErrInvalidHeader),
		swCase("truncated signature", set("webhook-signature", swSig[:10]), signature.ErrInvalidHeader),
		swCase("signature not base64", set("webhook-signature", "v1,"+strings.Repeat("!", 44)), signature.ErrInvalidHeader),
		swCase("other version", set("webhook-signature", "v2,"+swSig[3:]), signature.ErrNoMatch),
		swCase("asymmetric entry skipped", set("webhook-signature", "v1a,c29tZXRoaW5n "+swSig), nil),
		swCase("non-canonical base64 padding bits", set("webhook-signature", swSig[:len(swSig)-2]+nudge(swSig[len(swSig)-2])+"="), signature.ErrNoMatch),
		swCase("signature without version", set("webhook-signature", swSig[3:]), signature.ErrInvalidHeader),
	)

	ts := signature.Timestamped
	tsH := deliver(tb, ts, "", testSecrets[ts][:1], msg)
	tsSig := tsH.Get("X-Webhook-Signature")
	tsCase := func(name string, edit func(http.Header), want error) verifyCase {
		return verifyCase{
			name: string(ts) + "/" + name, scheme: ts, secret: testSecrets[ts][0],
			h: with(tsH, edit), body: testBody, opts: signature.VerifyOptions{Now: at(t0)}, want: want,
		}
	}
	cases = append(cases,
		tsCase("missing X-Timestamp", del("X-Timestamp"), signature.ErrMissingHeader),
		tsCase("webhook-timestamp is not read", del("webhook-timestamp"), nil),
		tsCase("timestamp not a number", set("X-Timestamp", "soon"), signature.ErrInvalidHeader),
		tsCase("timestamp RFC 3339", set("X-Timestamp", "2023-11-14T22:13:20Z"), signature.ErrInvalidHeader),
		tsCase("timestamp changed", set("X-Timestamp", "1700000001"), signature.ErrNoMatch),
		tsCase("timestamp stale", set("X-Timestamp", "1699999000"), signature.ErrTimestampOutOfRange),
		tsCase("no algorithm", set("X-Webhook-Signature", tsSig[len("sha256="):]), signature.ErrInvalidHeader),
		tsCase("no equals sign", set("X-Webhook-Signature", "sha256"), signature.ErrInvalidHeader),
		tsCase("not hex", set("X-Webhook-Signature", "sha256="+strings.Repeat("zz", 32)), signature.ErrInvalidHeader),
		tsCase("truncated hex", set("X-Webhook-Signature", tsSig[:20]), signature.ErrInvalidHeader),
		tsCase("uppercase hex", set("X-Webhook-Signature", "sha256="+strings.ToUpper(tsSig[len("sha256="):])), nil),
		tsCase("other algorithm skipped", set("X-Webhook-Signature", "sha512=abcd "+tsSig), nil),
		tsCase("other algorithm only", set("X-Webhook-Signature", "sha512=abcd"), signature.ErrNoMatch),
		tsCase("algorithm is case-sensitive", set("X-Webhook-Signature", "SHA256="+tsSig[len("sha256="):]), signature.ErrNoMatch),
	)

	hm := signature.HMACSHA256
	hmH := deliver(tb, hm, "", testSecrets[hm][:1], msg)
	hmSig := hmH.Get("X-Signature")
	hmCase := func(name string, edit func(http.Header), want error) verifyCase {
		return verifyCase{
			name: string(hm) + "/" + name, scheme: hm, secret: testSecrets[hm][0],
			h: with(hmH, edit), body: testBody, opts: signature.VerifyOptions{Now: at(t0)}, want: want,
		}
	}
	cases = append(cases,
		hmCase("timestamps are not read", func(h http.Header) { h.Del("webhook-timestamp"); h.Del("webhook-id") }, nil),
		hmCase("uppercase hex", set("X-Signature", strings.ToUpper(hmSig)), nil),
		hmCase("sha256= prefix is not the scheme", set("X-Signature", "sha256="+hmSig), signature.ErrInvalidHeader),
		hmCase("truncated hex", set("X-Signature", hmSig[:63]), signature.ErrInvalidHeader),
		hmCase("extended hex", set("X-Signature", hmSig+"0"), signature.ErrInvalidHeader),
		hmCase("base64 instead of hex", set("X-Signature", "5nLRmt5ttasIGOZ9kAUs7MDzSyoNeoD1UoUBV2HDmb0="), signature.ErrInvalidHeader),
	)

	ss := signature.SharedSecret
	ssH := deliver(tb, ss, "", testSecrets[ss][:1], msg)
	ssCase := func(name string, edit func(http.Header), want error) verifyCase {
		return verifyCase{
			name: string(ss) + "/" + name, scheme: ss, secret: testSecrets[ss][0],
			h: with(ssH, edit), body: testBody, opts: signature.VerifyOptions{Now: at(t0)}, want: want,
		}
	}
	cases = append(cases,
		ssCase("secret with a suffix", set("X-Webhook-Secret", testSecrets[ss][0]+"x"), signature.ErrNoMatch),
		ssCase("secret prefix", set("X-Webhook-Secret", testSecrets[ss][0][:10]), signature.ErrNoMatch),
		ssCase("secret in other case", set("X-Webhook-Secret", strings.ToUpper(testSecrets[ss][0])), signature.ErrNoMatch),
		ssCase("stale timestamps are not read", set("webhook-timestamp", "1"), nil),
	)
	return cases
}

// nudge returns the base64 digit after c, which differs from c only in its
// lowest bit when c is at an even position in the alphabet.
func nudge(c byte) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	i := strings.IndexByte(alphabet, c)
	return string(alphabet[i^1])
}

func TestVerify(t *testing.T) {
	t.Parallel()
	for _, tc := range verifyCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := signature.Verify(tc.scheme, tc.header, tc.secret, tc.h, tc.body, tc.opts)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Errorf("Verify(%q) = %v, want %v", tc.name, err, tc.want)
			}
		})
	}
}

func TestVerifyCallerErrors(t *testing.T) {
	t.Parallel()
	h := deliver(t, signature.StandardWebhooks, "", testSecrets[signature.StandardWebhooks][:1],
		signature.Message{ID: testID, Timestamp: t0, Body: testBody})
	tests := []struct {
		scheme signature.Scheme
		secret string
		want   error
	}{
		{signature.StandardWebhooks, "", signature.ErrInvalidSecret},
		{signature.StandardWebhooks, "whsec_not base64!", signature.ErrInvalidSecret},
		{signature.StandardWebhooks, "whsec_", signature.ErrInvalidSecret},
		{signature.HMACSHA256, "", signature.ErrInvalidSecret},
		{signature.Timestamped, "", signature.ErrInvalidSecret},
		{signature.SharedSecret, "", signature.ErrInvalidSecret},
		{signature.SharedSecret, "two words", signature.ErrInvalidSecret},
		{"", "whatever-secret-123", signature.ErrUnknownScheme},
		{"HMAC-SHA256", "whatever-secret-123", signature.ErrUnknownScheme},
	}
	for _, tc := range tests {
		err := signature.Verify(tc.scheme, "", tc.secret, h, testBody, signature.VerifyOptions{Now: at(t0)})
		if !errors.Is(err, tc.want) {
			t.Errorf("Verify(%q, secret %q) = %v, want %v", tc.scheme, tc.secret, err, tc.want)
		}
	}
}

func TestVerifyDefaultClock(t *testing.T) {
	t.Parallel()
	now := time.Now()
	for _, s := range signature.Schemes() {
		sec := testSecrets[s][:1]
		h, err := signature.Sign(s, "", sec, signature.Message{ID: testID, Timestamp: now, Body: testBody})
		if err != nil {
			t.Fatalf("Sign(%q) error: %v", s, err)
		}
		h.Set("webhook-id", testID)
		h.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
		if err := signature.Verify(s, "", sec[0], h, testBody, signature.VerifyOptions{}); err != nil {
			t.Errorf("Verify(%q, signed now) = %v, want <nil>", s, err)
		}
		// A request signed an hour ago is stale by the real clock.
		h, err = signature.Sign(s, "", sec, signature.Message{ID: testID, Timestamp: now.Add(-time.Hour), Body: testBody})
		if err != nil {
			t.Fatalf("Sign(%q) error: %v", s, err)
		}
		h.Set("webhook-id", testID)
		h.Set("webhook-timestamp", strconv.FormatInt(now.Add(-time.Hour).Unix(), 10))
		err = signature.Verify(s, "", sec[0], h, testBody, signature.VerifyOptions{})
		timed := s == signature.StandardWebhooks || s == signature.Timestamped
		if timed != errors.Is(err, signature.ErrTimestampOutOfRange) {
			t.Errorf("Verify(%q, signed an hour ago) = %v, want stale: %v", s, err, timed)
		}
	}
}

func TestSign(t *testing.T) {
	t.Parallel()
	msg := signature.Message{ID: "msg_p5jXN8AQM9LWM0D4loKWxJek", Timestamp: time.Unix(1614265330, 0), Body: []byte(`{"test": 2432232314}`)}
	vectorKey := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	tests := []struct {
		name    string
		scheme  signature.Scheme
		header  string
		secrets []string
		msg     signature.Message
		want    http.Header
	}{
		{
			name: "standard-webhooks", scheme: signature.StandardWebhooks, secrets: []string{vectorKey}, msg: msg,
			want: http.Header{"Webhook-Signature": {"v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="}},
		},
		{
			name: "standard-webhooks ignores header", scheme: signature.StandardWebhooks, header: "X-Other", secrets: []string{vectorKey}, msg: msg,
			want: http.Header{"Webhook-Signature": {"v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="}},
		},
		{
			name: "standard-webhooks rotation", scheme: signature.StandardWebhooks, msg: msg,
			secrets: []string{vectorKey, "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, // the prefix is optional
			want:    http.Header{"Webhook-Signature": {"v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="}},
		},
		{
			// The key is the secret string's bytes, whsec_ prefix and all.
			name: "hmac-sha256 with whsec_ secret", scheme: signature.HMACSHA256, secrets: []string{vectorKey}, msg: msg,
			want: http.Header{"X-Signature": {"80ec8a89ce3cd22133a1066caecb4d04fea7467657c8514d717ec42c38a5c94c"}},
		},
		{
			name: "hmac-sha256 rotation custom header", scheme: signature.HMACSHA256, header: "x-hub-signature",
			secrets: []string{"Jefe", "It's a Secret to Everybody"},
			msg:     signature.Message{Body: []byte("what do ya want for nothing?")},
			want: http.Header{
				"X-Hub-Signature":          {"5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
				"X-Hub-Signature-Previous": {"e8cdbd8e730d2e4fdcf58541575a9cb80a07904719c22af4a11e5ef405a12e65"},
			},
		},
		{
			name: "timestamped", scheme: signature.Timestamped, secrets: []string{vectorKey}, msg: msg,
			want: http.Header{
				"X-Webhook-Signature": {"sha256=2e37df5d4a028c51a7f3133d64ae1e300d2c2c900f1b1d49d4369ad2530f8964"},
				"X-Timestamp":         {"1614265330"},
			},
		},
		{
			name: "timestamped rotation custom header", scheme: signature.Timestamped, header: "X-Sig", secrets: []string{vectorKey, vectorKey + "x"}, msg: msg,
			want: http.Header{
				"X-Sig":          {"sha256=2e37df5d4a028c51a7f3133d64ae1e300d2c2c900f1b1d49d4369ad2530f8964"},
				"X-Sig-Previous": {signature.TimestampedSignature(vectorKey+"x", 1614265330, msg.Body)},
				"X-Timestamp":    {"1614265330"},
			},
		},
		{
			name: "shared-secret", scheme: signature.SharedSecret, secrets: []string{"shared-new-secret-0123456789"},
			want: http.Header{"X-Webhook-Secret": {"shared-new-secret-0123456789"}},
		},
		{
			name: "shared-secret rotation custom header", scheme: signature.SharedSecret, header: "Authorization",
			secrets: []string{"new-secret-0123456789", vectorKey},
			want:    http.Header{"Authorization": {"new-secret-0123456789"}, "Authorization-Previous": {vectorKey}},
		},
		{
			name: "sub-second timestamp truncated", scheme: signature.Timestamped, secrets: []string{"k"},
			msg: signature.Message{Timestamp: time.Unix(1614265330, 999999999), Body: []byte("b")},
			want: http.Header{
				"X-Webhook-Signature": {signature.TimestampedSignature("k", 1614265330, []byte("b"))},
				"X-Timestamp":         {"1614265330"},
			},
		},
	}
	for _, tc := range tests {
		got, err := signature.Sign(tc.scheme, tc.header, tc.secrets, tc.msg)
		if err != nil {
			t.Errorf("Sign(%q) error: %v", tc.name, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("Sign(%q) headers (-want +got):\n%s", tc.name, diff)
		}
	}
}

func TestSignErrors(t *testing.T) {
	t.Parallel()
	ok := signature.Message{ID: testID, Timestamp: t0, Body: testBody}
	sw := testSecrets[signature.StandardWebhooks][:1]
	tests := []struct {
		name    string
		scheme  signature.Scheme
		header  string
		secrets []string
		msg     signature.Message
		want    error
	}{
		{"no secrets", signature.HMACSHA256, "", nil, ok, signature.ErrInvalidSecret},
		{"empty secrets", signature.StandardWebhooks, "", []string{}, ok, signature.ErrInvalidSecret},
		{"empty secret", signature.Timestamped, "", []string{"good-secret-0123456789", ""}, ok, signature.ErrInvalidSecret},
		{"bad whsec base64", signature.StandardWebhooks, "", []string{"whsec_%%%"}, ok, signature.ErrInvalidSecret},
		{"whsec without key", signature.StandardWebhooks, "", []string{"whsec_"}, ok, signature.ErrInvalidSecret},
		{"shared secret with space", signature.SharedSecret, "", []string{"two words here"}, ok, signature.ErrInvalidSecret},
		{"shared secret with newline", signature.SharedSecret, "", []string{"line\r\nX-Injected: 1"}, ok, signature.ErrInvalidSecret},
		{"empty ID", signature.StandardWebhooks, "", sw, signature.Message{Timestamp: t0}, signature.ErrInvalidMessage},
		{"ID with dot", signature.StandardWebhooks, "", sw, signature.Message{ID: "evt.1", Timestamp: t0}, signature.ErrInvalidMessage},
		{"ID with space", signature.StandardWebhooks, "", sw, signature.Message{ID: "evt 1", Timestamp: t0}, signature.ErrInvalidMessage},
		{"zero timestamp", signature.StandardWebhooks, "", sw, signature.Message{ID: testID}, signature.ErrInvalidMessage},
		{"zero timestamp timestamped", signature.Timestamped, "", []string{"k"}, signature.Message{}, signature.ErrInvalidMessage},
		{"timestamp before 1970", signature.Timestamped, "", []string{"k"}, signature.Message{Timestamp: time.Unix(-1, 0)}, signature.ErrInvalidMessage},
		{"invalid header name", signature.HMACSHA256, "X Sig", []string{"k"}, ok, signature.ErrInvalidHeaderName},
		{"header name with colon", signature.HMACSHA256, "X-Sig:", []string{"k"}, ok, signature.ErrInvalidHeaderName},
		{"reserved header", signature.SharedSecret, "webhook-id", []string{"k"}, ok, signature.ErrInvalidHeaderName},
		{"X-Timestamp for timestamped", signature.Timestamped, "x-timestamp", []string{"k"}, ok, signature.ErrInvalidHeaderName},
		{"empty scheme", "", "", []string{"k"}, ok, signature.ErrUnknownScheme},
		{"unknown scheme", "ed25519", "", []string{"k"}, ok, signature.ErrUnknownScheme},
	}
	for _, tc := range tests {
		got, err := signature.Sign(tc.scheme, tc.header, tc.secrets, tc.msg)
		if !errors.Is(err, tc.want) || got != nil {
			t.Errorf("Sign(%q) = %v, %v, want nil, %v", tc.name, got, err, tc.want)
		}
	}

	// Schemes that do not sign the ID or timestamp do not need them.
	for _, s := range []signature.Scheme{signature.HMACSHA256, signature.SharedSecret} {
		if _, err := signature.Sign(s, "", testSecrets[s][:1], signature.Message{}); err != nil {
			t.Errorf("Sign(%q, empty message) = %v, want <nil>", s, err)
		}
	}
}

func TestParseScheme(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    signature.Scheme
		wantErr bool
	}{
		{"", signature.StandardWebhooks, false},
		{"standard-webhooks", signature.StandardWebhooks, false},
		{"hmac-sha256", signature.HMACSHA256, false},
		{"timestamped", signature.Timestamped, false},
		{"shared-secret", signature.SharedSecret, false},
		{"Standard-Webhooks", "", true},
		{"hmac", "", true},
		{" timestamped", "", true},
		{"ed25519", "", true},
	}
	for _, tc := range tests {
		got, err := signature.ParseScheme(tc.in)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("ParseScheme(%q) = %q, %v, want %q, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
		if err != nil {
			if !errors.Is(err, signature.ErrUnknownScheme) || !strings.Contains(err.Error(), tc.in) {
				t.Errorf("ParseScheme(%q) error = %v, want one wrapping ErrUnknownScheme that names it", tc.in, err)
			}
		}
	}
	for _, s := range signature.Schemes() {
		if got, err := signature.ParseScheme(string(s)); got != s || err != nil {
			t.Errorf("ParseScheme(%q) = %q, %v, want %q, <nil>", s, got, err, s)
		}
	}
}

func TestSchemes(t *testing.T) {
	t.Parallel()
	got := signature.Schemes()
	want := []signature.Scheme{signature.StandardWebhooks, signature.HMACSHA256, signature.Timestamped, signature.SharedSecret}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Schemes() (-want +got):\n%s", diff)
	}
	got[0] = "changed"
	if signature.Schemes()[0] != signature.StandardWebhooks {
		t.Errorf("Schemes() returns a shared slice")
	}
}

func TestDefaultHeader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   signature.Scheme
		want string
	}{
		{signature.StandardWebhooks, "webhook-signature"},
		{signature.HMACSHA256, "X-Signature"},
		{signature.Timestamped, "X-Webhook-Signature"},
		{signature.SharedSecret, "X-Webhook-Secret"},
		{"", ""},
		{"unknown", ""},
	}
	for _, tc := range tests {
		if got := tc.in.DefaultHeader(); got != tc.want {
			t.Errorf("Scheme(%q).DefaultHeader() = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestValidateHeader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		scheme signature.Scheme
		in     string
		want   error
	}{
		{signature.StandardWebhooks, "", nil},
		{signature.StandardWebhooks, "Webhook-Signature", nil},
		{signature.StandardWebhooks, "X-Signature", signature.ErrInvalidHeaderName},
		{signature.HMACSHA256, "", nil},
		{signature.HMACSHA256, "X-Hub-Signature-256", nil},
		{signature.HMACSHA256, "x_custom.sig~1", nil},
		{signature.HMACSHA256, "X Signature", signature.ErrInvalidHeaderName},
		{signature.HMACSHA256, "X-Sig\r\nX-Evil", signature.ErrInvalidHeaderName},
		{signature.HMACSHA256, "X-Sig:", signature.ErrInvalidHeaderName},
		{signature.HMACSHA256, "Café", signature.ErrInvalidHeaderName},
		{signature.HMACSHA256, "webhook-id", signature.ErrInvalidHeaderName},
		{signature.HMACSHA256, "Webhook-Timestamp", signature.ErrInvalidHeaderName},
		{signature.HMACSHA256, "content-type", signature.ErrInvalidHeaderName},
		{signature.HMACSHA256, "X-Timestamp", nil},
		{signature.Timestamped, "X-Timestamp", signature.ErrInvalidHeaderName},
		{signature.Timestamped, "X-Webhook-Signature", nil},
		{signature.SharedSecret, "Authorization", nil},
		{signature.SharedSecret, "User-Agent", signature.ErrInvalidHeaderName},
		{"nope", "", signature.ErrUnknownScheme},
	}
	for _, tc := range tests {
		err := signature.ValidateHeader(tc.scheme, tc.in)
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("ValidateHeader(%q, %q) = %v, want %v", tc.scheme, tc.in, err, tc.want)
		}
	}
}

func TestValidateSecret(t *testing.T) {
	t.Parallel()
	b64 := func(n int) string { return base64.StdEncoding.EncodeToString(make([]byte, n)) }
	tests := []struct {
		scheme signature.Scheme
		in     string
		want   error
	}{
		{signature.StandardWebhooks, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", nil},
		{signature.StandardWebhooks, "whsec_" + b64(24), nil},
		{signature.StandardWebhooks, "whsec_" + b64(64), nil},
		{signature.StandardWebhooks, "whsec_" + b64(23), signature.ErrInvalidSecret},
		{signature.StandardWebhooks, "whsec_" + b64(65), signature.ErrInvalidSecret},
		{signature.StandardWebhooks, "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", signature.ErrInvalidSecret},
		{signature.StandardWebhooks, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS!", signature.ErrInvalidSecret},
		{signature.StandardWebhooks, "whsec_" + strings.TrimRight(b64(32), "="), signature.ErrInvalidSecret},
		{signature.StandardWebhooks, "whsec_" + b64(24)[:16] + "\n" + b64(24)[16:], signature.ErrInvalidSecret},
		{signature.StandardWebhooks, "whsec_" + base64.URLEncoding.EncodeToString([]byte("\xfb\xff\xfe0123456789abcdefghijklmn")), signature.ErrInvalidSecret},
		{signature.StandardWebhooks, "", signature.ErrInvalidSecret},
		{signature.HMACSHA256, "0123456789abcdef", nil},
		{signature.HMACSHA256, strings.Repeat("x", 512), nil},
		{signature.HMACSHA256, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", nil},
		{signature.HMACSHA256, `!"#$%&'()*+,-./:;<=>?@[\]^_{|}~`, nil},
		{signature.HMACSHA256, "0123456789abcde", signature.ErrInvalidSecret},
		{signature.HMACSHA256, strings.Repeat("x", 513), signature.ErrInvalidSecret},
		{signature.Timestamped, "0123456789 abcdef", signature.ErrInvalidSecret},
		{signature.Timestamped, "0123456789\tabcdef", signature.ErrInvalidSecret},
		{signature.SharedSecret, "0123456789abcdéf", signature.ErrInvalidSecret},
		{signature.SharedSecret, "0123456789abcdef\x7f", signature.ErrInvalidSecret},
		{signature.SharedSecret, "", signature.ErrInvalidSecret},
		{"", "0123456789abcdef", signature.ErrUnknownScheme},
	}
	for _, tc := range tests {
		err := signature.ValidateSecret(tc.scheme, tc.in)
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("ValidateSecret(%q, %q) = %v, want %v", tc.scheme, tc.in, err, tc.want)
		}
	}
}

func TestNewSecret(t *testing.T) {
	t.Parallel()
	shape := regexp.MustCompile(`^whsec_[A-Za-z0-9+/]{43}=$`)
	seen := map[string]bool{}
	for range 100 {
		s := signature.NewSecret()
		if !shape.MatchString(s) {
			t.Fatalf("NewSecret() = %q, want whsec_ + base64 of 32 bytes", s)
		}
		if seen[s] {
			t.Fatalf("NewSecret() = %q twice", s)
		}
		seen[s] = true
		for _, sc := range signature.Schemes() {
			if err := signature.ValidateSecret(sc, s); err != nil {
				t.Errorf("ValidateSecret(%q, NewSecret()) = %v, want <nil>", sc, err)
			}
		}
	}
}

func TestTimestampedSignature(t *testing.T) {
	t.Parallel()
	tests := []struct {
		secret string
		ts     int64
		body   string
		want   string
	}{
		// Computed with Python's hmac module.
		{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", 1614265330, `{"test": 2432232314}`, "sha256=2e37df5d4a028c51a7f3133d64ae1e300d2c2c900f1b1d49d4369ad2530f8964"},
	}
	for _, tc := range tests {
		if got := signature.TimestampedSignature(tc.secret, tc.ts, []byte(tc.body)); got != tc.want {
			t.Errorf("TimestampedSignature(%q, %d, %q) = %q, want %q", tc.secret, tc.ts, tc.body, got, tc.want)
		}
	}
	// It is what Sign puts in the header and what Verify accepts.
	h, err := signature.Sign(signature.Timestamped, "", []string{"k-0123456789abcdef"}, signature.Message{Timestamp: t0, Body: testBody})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := h.Get("X-Webhook-Signature"), signature.TimestampedSignature("k-0123456789abcdef", t0.Unix(), testBody); got != want {
		t.Errorf("Sign(timestamped) = %q, want TimestampedSignature = %q", got, want)
	}
}
