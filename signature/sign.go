package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Message is what gets signed.
type Message struct {
	// ID is the event id, sent as webhook-id. StandardWebhooks signs it and
	// needs it to be non-empty printable ASCII without spaces or '.'.
	ID string
	// Timestamp is the send time, sent as unix seconds (sub-second precision
	// is dropped). StandardWebhooks and Timestamped sign it and need it to be
	// at or after 1970-01-01 UTC.
	Timestamp time.Time
	// Body is the request body, signed byte for byte.
	Body []byte
}

// Sign returns the headers that carry the signature of m under scheme s, with
// canonical keys (use http.Header.Get or copy them with Set):
//
//   - StandardWebhooks: only webhook-signature; the caller sets webhook-id to
//     m.ID and webhook-timestamp to m.Timestamp in unix seconds itself.
//     header is ignored: the scheme always uses webhook-signature.
//   - HMACSHA256: the signature header.
//   - Timestamped: the signature header and X-Timestamp.
//   - SharedSecret: the secret header.
//
// header names the signature header; "" means s.DefaultHeader(). It must pass
// [ValidateHeader].
//
// secrets lists the active secrets, newest first: two during a rotation
// grace period. StandardWebhooks emits one signature per secret,
// space-separated in its one header as its specification defines
// ("v1,AAA v1,BBB"). The other schemes define a single value per header, so
// they put the first secret's value in the header and, during a rotation, the
// second's in the same header name with "-Previous" appended (see
// [PreviousHeader]); they accept at most two secrets.
//
// A secret is usable if its HMAC key is non-empty: for StandardWebhooks it is
// the standard base64 after an optional "whsec_" prefix, decoded; for
// HMACSHA256 and Timestamped it is the secret's bytes as given. A SharedSecret
// secret must be printable ASCII without spaces. Sign does not apply the
// length limits of [ValidateSecret].
//
// Errors wrap [ErrInvalidSecret] (no secrets, or an unusable one),
// [ErrInvalidMessage], [ErrInvalidHeaderName] or [ErrUnknownScheme].
func Sign(s Scheme, header string, secrets []string, m Message) (http.Header, error) {
	if !s.known() {
		return nil, unknownScheme(s)
	}
	if s != StandardWebhooks {
		if err := ValidateHeader(s, header); err != nil {
			return nil, err
		}
	}
	if len(secrets) == 0 {
		return nil, fmt.Errorf("%w: no secrets", ErrInvalidSecret)
	}
	if s != StandardWebhooks && len(secrets) > 2 {
		return nil, fmt.Errorf("%w: %s takes at most two secrets (current and previous)", ErrInvalidSecret, s)
	}
	var ts string
	switch s {
	case StandardWebhooks:
		if err := checkID(m.ID); err != nil {
			return nil, err
		}
		fallthrough
	case Timestamped:
		if m.Timestamp.IsZero() || m.Timestamp.Unix() < 0 {
			return nil, fmt.Errorf("%w: timestamp %v is before 1970", ErrInvalidMessage, m.Timestamp)
		}
		ts = strconv.FormatInt(m.Timestamp.Unix(), 10)
	}

	values := make([]string, len(secrets))
	for i, secret := range secrets {
		k, err := key(s, secret)
		if err != nil {
			return nil, fmt.Errorf("secret %d of %d: %w", i+1, len(secrets), err)
		}
		switch s {
		case StandardWebhooks:
			values[i] = "v1," + base64.StdEncoding.EncodeToString(standardMAC(k, m.ID, ts, m.Body))
		case HMACSHA256:
			values[i] = hex.EncodeToString(bodyMAC(k, m.Body))
		case Timestamped:
			values[i] = "sha256=" + hex.EncodeToString(timestampedMAC(k, ts, m.Body))
		case SharedSecret:
			values[i] = secret
		}
	}

	h := make(http.Header, 3)
	name := headerFor(s, header)
	if s == StandardWebhooks {
		h.Set(name, strings.Join(values, " "))
	} else {
		h.Set(name, values[0])
		if len(values) > 1 {
			h.Set(PreviousHeader(name), values[1])
		}
	}
	if s == Timestamped {
		h.Set(HeaderTimestamp, ts)
	}
	return h, nil
}

// PreviousHeader returns the header that carries the previous secret's value
// during a rotation, for the single-value schemes: name + "-Previous".
func PreviousHeader(name string) string {
	return http.CanonicalHeaderKey(name + "-Previous")
}

// TimestampedSignature returns the Timestamped signature of body sent at ts
// (unix seconds): "sha256=" followed by the lowercase hex HMAC-SHA256, keyed
// with secret's bytes, of "{ts}.{body}".
func TimestampedSignature(secret string, ts int64, body []byte) string {
	return "sha256=" + hex.EncodeToString(timestampedMAC([]byte(secret), strconv.FormatInt(ts, 10), body))
}

func checkID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty ID", ErrInvalidMessage)
	}
	if !printable(id) || strings.Contains(id, ".") {
		return fmt.Errorf("%w: ID %q must be printable ASCII without spaces or '.'", ErrInvalidMessage, id)
	}
	return nil
}

// standardMAC returns HMAC-SHA256(key, "{id}.{ts}.{body}").
func standardMAC(key []byte, id, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// bodyMAC returns HMAC-SHA256(key, body).
func bodyMAC(key, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return m.Sum(nil)
}

// timestampedMAC returns HMAC-SHA256(key, "{ts}.{body}").
func timestampedMAC(key []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}
