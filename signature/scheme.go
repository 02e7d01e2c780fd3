package signature

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Scheme names a way of signing a webhook delivery. Its values are the names
// used in hookd's API and configuration.
type Scheme string

// The supported schemes.
const (
	// StandardWebhooks is the Standard Webhooks 1.0 scheme, hookd's default:
	// "v1,<base64 HMAC-SHA256>" over "{id}.{timestamp}.{body}" in the
	// webhook-signature header.
	StandardWebhooks Scheme = "standard-webhooks"
	// HMACSHA256 sends the lowercase hex HMAC-SHA256 of the body.
	HMACSHA256 Scheme = "hmac-sha256"
	// Timestamped sends "sha256=<hex HMAC-SHA256>" over "{timestamp}.{body}"
	// together with an X-Timestamp header.
	Timestamped Scheme = "timestamped"
	// SharedSecret sends the secret itself.
	SharedSecret Scheme = "shared-secret"
)

// Header names used by the schemes.
const (
	// HeaderWebhookID carries the event id; hookd's caller sets it.
	HeaderWebhookID = "webhook-id"
	// HeaderWebhookTimestamp carries the send time in unix seconds; hookd's
	// caller sets it.
	HeaderWebhookTimestamp = "webhook-timestamp"
	// HeaderWebhookSignature carries the StandardWebhooks signatures.
	HeaderWebhookSignature = "webhook-signature"
	// HeaderTimestamp carries the unix time in seconds for Timestamped.
	HeaderTimestamp = "X-Timestamp"
)

// Errors returned by this package. Returned errors wrap one of them with
// detail; test for them with [errors.Is].
var (
	// ErrMissingHeader means a header that Verify needs is absent or empty.
	ErrMissingHeader = errors.New("signature: missing header")
	// ErrInvalidHeader means a header that Verify needs cannot be parsed.
	ErrInvalidHeader = errors.New("signature: invalid header")
	// ErrTimestampOutOfRange means the request's timestamp is further from
	// now than the tolerance allows, in the past or in the future.
	ErrTimestampOutOfRange = errors.New("signature: timestamp out of range")
	// ErrNoMatch means no signature in the request matches the secret.
	ErrNoMatch = errors.New("signature: no matching signature")

	// ErrUnknownScheme means a scheme name is not one of the supported ones.
	ErrUnknownScheme = errors.New("signature: unknown scheme")
	// ErrInvalidSecret means a secret cannot be used with a scheme, or that
	// Sign was given no secrets.
	ErrInvalidSecret = errors.New("signature: invalid secret")
	// ErrInvalidMessage means Sign was given a Message it cannot sign, such
	// as one without an ID or a timestamp for a scheme that signs them.
	ErrInvalidMessage = errors.New("signature: invalid message")
	// ErrInvalidHeaderName means a custom header name is not a valid HTTP
	// field name or would overwrite a header hookd sends.
	ErrInvalidHeaderName = errors.New("signature: invalid header name")
)

var schemes = []Scheme{StandardWebhooks, HMACSHA256, Timestamped, SharedSecret}

// Schemes returns every supported scheme, the default first.
func Schemes() []Scheme {
	return append([]Scheme(nil), schemes...)
}

// ParseScheme returns the scheme named s. The empty string means the default,
// StandardWebhooks. Names are matched exactly (they are lower case); any
// other name returns an error wrapping [ErrUnknownScheme] that names it.
func ParseScheme(s string) (Scheme, error) {
	if s == "" {
		return StandardWebhooks, nil
	}
	sc := Scheme(s)
	if !sc.known() {
		return "", unknownScheme(sc)
	}
	return sc, nil
}

func (s Scheme) known() bool {
	switch s {
	case StandardWebhooks, HMACSHA256, Timestamped, SharedSecret:
		return true
	}
	return false
}

func unknownScheme(s Scheme) error {
	names := make([]string, len(schemes))
	for i, sc := range schemes {
		names[i] = string(sc)
	}
	return fmt.Errorf("%w %q (want one of %s)", ErrUnknownScheme, string(s), strings.Join(names, ", "))
}

// DefaultHeader returns the header that carries s's signature (or, for
// SharedSecret, the secret) when no custom header is configured:
// "webhook-signature", "X-Signature", "X-Webhook-Signature" or
// "X-Webhook-Secret". It returns "" for an unknown scheme.
func (s Scheme) DefaultHeader() string {
	switch s {
	case StandardWebhooks:
		return HeaderWebhookSignature
	case HMACSHA256:
		return "X-Signature"
	case Timestamped:
		return "X-Webhook-Signature"
	case SharedSecret:
		return "X-Webhook-Secret"
	}
	return ""
}

// reserved lists headers every delivery carries, which a custom signature
// header must not replace.
var reserved = []string{
	HeaderWebhookID, HeaderWebhookTimestamp,
	"Content-Type", "Content-Length", "User-Agent", "Host",
	"Transfer-Encoding", "Connection",
}

// ValidateHeader reports whether header can carry s's signature, for
// checking an endpoint's configuration before it is stored. The empty string
// (the scheme's default header) is always valid. Otherwise header must be a
// valid HTTP field name that does not replace a header hookd sends itself
// (webhook-id, webhook-timestamp, Content-Type and the like, and X-Timestamp
// for Timestamped). StandardWebhooks always uses webhook-signature, so for it
// only that name is accepted. Errors wrap [ErrInvalidHeaderName] or
// [ErrUnknownScheme].
func ValidateHeader(s Scheme, header string) error {
	if !s.known() {
		return unknownScheme(s)
	}
	if header == "" {
		return nil
	}
	if s == StandardWebhooks {
		if strings.EqualFold(header, HeaderWebhookSignature) {
			return nil
		}
		return fmt.Errorf("%w: %q: %s always uses %s", ErrInvalidHeaderName, header, s, HeaderWebhookSignature)
	}
	if !validFieldName(header) {
		return fmt.Errorf("%w: %q is not a valid HTTP field name", ErrInvalidHeaderName, header)
	}
	for _, r := range reserved {
		if strings.EqualFold(header, r) {
			return fmt.Errorf("%w: %q is set by hookd itself", ErrInvalidHeaderName, header)
		}
	}
	if s == Timestamped && strings.EqualFold(header, HeaderTimestamp) {
		return fmt.Errorf("%w: %q carries the timestamp in %s", ErrInvalidHeaderName, header, s)
	}
	return nil
}

// headerFor returns the canonical header name that carries s's signature.
func headerFor(s Scheme, header string) string {
	if header == "" || s == StandardWebhooks {
		header = s.DefaultHeader()
	}
	return http.CanonicalHeaderKey(header)
}

// validFieldName reports whether name is an RFC 9110 token.
func validFieldName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
