package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DefaultTolerance is how far a request's timestamp may be from now when
// VerifyOptions.Tolerance is zero.
const DefaultTolerance = 5 * time.Minute

// VerifyOptions adjusts Verify. The zero value is ready to use.
type VerifyOptions struct {
	// Tolerance is how far the timestamp of a StandardWebhooks or
	// Timestamped request may be from Now, in either direction; a
	// timestamp exactly Tolerance away is accepted. Zero or negative means
	// DefaultTolerance (5 minutes).
	Tolerance time.Duration
	// Now returns the current time. Nil means time.Now.
	Now func() time.Time
}

// maxTimestamp (9999-12-31T23:59:59Z) caps parsed timestamps so that time
// arithmetic on them cannot overflow.
const maxTimestamp = 253402300799

// Verify checks a received request's headers h and raw body against secret,
// as a receiver would. header names the signature header as in Sign ("" for
// the scheme's default; ignored for StandardWebhooks, which always reads
// webhook-signature).
//
//   - StandardWebhooks reads webhook-id, webhook-timestamp and
//     webhook-signature. Entries with versions other than "v1" (such as the
//     asymmetric "v1a") are skipped.
//   - HMACSHA256 reads the signature header: hex HMAC-SHA256 of the body (in
//     either case).
//   - Timestamped reads X-Timestamp and the signature header: "sha256=<hex>".
//     Entries for other algorithms are skipped.
//   - SharedSecret reads the secret header. It does not cover the body.
//
// The signature header may hold several space-separated entries (and may be
// repeated); the request is accepted if any one matches. Comparisons are
// constant-time. For the timestamped schemes a timestamp must be canonical
// unix seconds (decimal digits, no sign or leading zeros) no further than
// opts.Tolerance from opts.Now.
//
// Verify returns nil if the request is authentic. Otherwise its error wraps
// [ErrMissingHeader] (a needed header is absent or empty), [ErrInvalidHeader]
// (a timestamp does not parse, or no entry in the signature header is
// well-formed), [ErrTimestampOutOfRange] (stale or in the future), or
// [ErrNoMatch] (no signature matches), checked in that order; or, for a
// mistake of the caller's, [ErrInvalidSecret] (see Sign for usable secrets)
// or [ErrUnknownScheme].
func Verify(s Scheme, header, secret string, h http.Header, body []byte, opts VerifyOptions) error {
	k, err := key(s, secret)
	if err != nil {
		return err
	}
	name := headerFor(s, header)
	values := h.Values(name)
	if s != StandardWebhooks {
		values = append(values, h.Values(PreviousHeader(name))...)
	}
	sigs := strings.Join(values, " ")
	switch s {
	case StandardWebhooks:
		return verifyStandard(k, h, sigs, body, opts)
	case HMACSHA256:
		if err := required(name, sigs); err != nil {
			return err
		}
		return match(name, sigs, "", bodyMAC(k, body))
	case Timestamped:
		tsRaw := h.Get(HeaderTimestamp)
		if err := required(HeaderTimestamp, tsRaw, name, sigs); err != nil {
			return err
		}
		if err := checkTimestamp(HeaderTimestamp, tsRaw, opts); err != nil {
			return err
		}
		return match(name, sigs, "sha256=", timestampedMAC(k, tsRaw, body))
	case SharedSecret:
		if err := required(name, sigs); err != nil {
			return err
		}
		return matchSecret(name, sigs, secret)
	}
	return unknownScheme(s)
}

func verifyStandard(k []byte, h http.Header, sigs string, body []byte, opts VerifyOptions) error {
	id := h.Get(HeaderWebhookID)
	tsRaw := h.Get(HeaderWebhookTimestamp)
	if err := required(HeaderWebhookID, id, HeaderWebhookTimestamp, tsRaw, HeaderWebhookSignature, sigs); err != nil {
		return err
	}
	if err := checkTimestamp(HeaderWebhookTimestamp, tsRaw, opts); err != nil {
		return err
	}
	want := []byte(base64.StdEncoding.EncodeToString(standardMAC(k, id, tsRaw, body)))
	wellFormed := false
	for _, entry := range strings.Fields(sigs) {
		version, sig, ok := strings.Cut(entry, ",")
		if !ok || version == "" || sig == "" {
			continue
		}
		if version != "v1" {
			wellFormed = true // a scheme we do not verify, such as v1a
			continue
		}
		if base64.StdEncoding.DecodedLen(len(sig)) < sha256.Size {
			continue
		}
		if raw, err := base64.StdEncoding.DecodeString(sig); err != nil || len(raw) != sha256.Size {
			continue
		}
		wellFormed = true
		if hmac.Equal([]byte(sig), want) {
			return nil
		}
	}
	if !wellFormed {
		return fmt.Errorf("%w: %s has no well-formed signature", ErrInvalidHeader, HeaderWebhookSignature)
	}
	return ErrNoMatch
}

// match reports whether any entry of sigs is prefix followed by the hex of
// want. Entries of the form "algo=..." with another algo are skipped.
func match(name, sigs, prefix string, want []byte) error {
	wellFormed := false
	for _, entry := range strings.Fields(sigs) {
		hexSig := entry
		if prefix != "" {
			algo, rest, ok := strings.Cut(entry, "=")
			if !ok || algo == "" {
				continue
			}
			if algo+"=" != prefix {
				wellFormed = true // an algorithm we do not verify
				continue
			}
			hexSig = rest
		}
		if len(hexSig) != hex.EncodedLen(sha256.Size) {
			continue
		}
		got, err := hex.DecodeString(hexSig)
		if err != nil {
			continue
		}
		wellFormed = true
		if hmac.Equal(got, want) {
			return nil
		}
	}
	if !wellFormed {
		return fmt.Errorf("%w: %s has no well-formed signature", ErrInvalidHeader, name)
	}
	return ErrNoMatch
}

// matchSecret reports whether any entry of sigs is secret. It compares
// SHA-256 digests so that the time taken reveals neither the secret nor its
// length.
func matchSecret(name, sigs, secret string) error {
	want := sha256.Sum256([]byte(secret))
	entries := strings.Fields(sigs)
	if len(entries) == 0 {
		return fmt.Errorf("%w: %s is blank", ErrInvalidHeader, name)
	}
	for _, entry := range entries {
		got := sha256.Sum256([]byte(entry))
		if subtle.ConstantTimeCompare(got[:], want[:]) == 1 {
			return nil
		}
	}
	return ErrNoMatch
}

// checkTimestamp parses raw, the value of header name, as canonical unix
// seconds and checks it against opts.
func checkTimestamp(name, raw string, opts VerifyOptions) error {
	ts, err := parseTimestamp(raw)
	if err != nil {
		return fmt.Errorf("%w: %s %q is not unix seconds", ErrInvalidHeader, name, raw)
	}
	tol := opts.Tolerance
	if tol <= 0 {
		tol = DefaultTolerance
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	d := now().Sub(time.Unix(min(ts, maxTimestamp), 0)) // saturates
	switch {
	case d > tol:
		return fmt.Errorf("%w: %s %s is %v old, more than %v", ErrTimestampOutOfRange, name, raw, d, tol)
	case d < -tol:
		return fmt.Errorf("%w: %s %s is %v in the future, more than %v", ErrTimestampOutOfRange, name, raw, -d, tol)
	}
	return nil
}

// parseTimestamp parses s as a non-negative decimal integer without sign or
// leading zeros.
func parseTimestamp(s string) (int64, error) {
	if s == "" || len(s) > 1 && s[0] == '0' {
		return 0, strconv.ErrSyntax
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, strconv.ErrSyntax
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

// required returns an error wrapping ErrMissingHeader that names every
// header in nameValues (pairs of name and value) whose value is empty.
func required(nameValues ...string) error {
	var names []string
	for i := 0; i+1 < len(nameValues); i += 2 {
		if nameValues[i+1] == "" {
			names = append(names, http.CanonicalHeaderKey(nameValues[i]))
		}
	}
	if len(names) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrMissingHeader, strings.Join(names, ", "))
}
