package signature

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
)

// SecretPrefix starts every StandardWebhooks secret.
const SecretPrefix = "whsec_"

// Bounds checked by ValidateSecret.
const (
	// MinStandardKeyBytes and MaxStandardKeyBytes bound the decoded key of
	// a StandardWebhooks secret.
	MinStandardKeyBytes = 24
	MaxStandardKeyBytes = 64
	// MinSecretLen and MaxSecretLen bound the length in bytes of a secret
	// for the other schemes.
	MinSecretLen = 16
	MaxSecretLen = 512
)

// NewSecret returns a fresh secret: SecretPrefix followed by the standard
// (padded) base64 encoding of 32 bytes from crypto/rand. It is valid for
// every scheme.
func NewSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails; see crypto/rand.Read.
	return SecretPrefix + base64.StdEncoding.EncodeToString(b)
}

// ValidateSecret reports whether secret can be used with s, for checking a
// secret before it is stored. For StandardWebhooks the secret must be
// SecretPrefix followed by canonical standard base64 that decodes to 24–64
// bytes. For the other schemes it must be 16–512 bytes of printable ASCII
// without spaces (a whsec_ secret qualifies, and is used as it is written).
// Errors wrap [ErrInvalidSecret] or [ErrUnknownScheme].
//
// Sign and Verify are more lenient: they accept any secret they can use (see
// Sign), so that receivers can verify with secrets created elsewhere.
func ValidateSecret(s Scheme, secret string) error {
	switch s {
	case StandardWebhooks:
		enc, ok := strings.CutPrefix(secret, SecretPrefix)
		if !ok {
			return fmt.Errorf("%w: %s secret must start with %q", ErrInvalidSecret, s, SecretPrefix)
		}
		key, err := base64.StdEncoding.DecodeString(enc)
		if err != nil || base64.StdEncoding.EncodeToString(key) != enc {
			return fmt.Errorf("%w: %s secret is not standard base64 after %q", ErrInvalidSecret, s, SecretPrefix)
		}
		if len(key) < MinStandardKeyBytes || len(key) > MaxStandardKeyBytes {
			return fmt.Errorf("%w: %s key is %d bytes, want %d to %d", ErrInvalidSecret, s, len(key), MinStandardKeyBytes, MaxStandardKeyBytes)
		}
		return nil
	case HMACSHA256, Timestamped, SharedSecret:
		if len(secret) < MinSecretLen || len(secret) > MaxSecretLen {
			return fmt.Errorf("%w: %s secret is %d bytes, want %d to %d", ErrInvalidSecret, s, len(secret), MinSecretLen, MaxSecretLen)
		}
		if !printable(secret) {
			return fmt.Errorf("%w: %s secret must be printable ASCII without spaces", ErrInvalidSecret, s)
		}
		return nil
	}
	return unknownScheme(s)
}

// key returns the HMAC key for secret under s (nil for SharedSecret), or an
// error wrapping ErrInvalidSecret if the secret cannot be used at all.
func key(s Scheme, secret string) ([]byte, error) {
	if secret == "" {
		return nil, fmt.Errorf("%w: empty secret", ErrInvalidSecret)
	}
	switch s {
	case StandardWebhooks:
		k, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, SecretPrefix))
		if err != nil {
			return nil, fmt.Errorf("%w: %s secret is not base64 after %q", ErrInvalidSecret, s, SecretPrefix)
		}
		if len(k) == 0 {
			return nil, fmt.Errorf("%w: %s secret has an empty key", ErrInvalidSecret, s)
		}
		return k, nil
	case HMACSHA256, Timestamped:
		return []byte(secret), nil
	case SharedSecret:
		if !printable(secret) {
			return nil, fmt.Errorf("%w: %s secret must be printable ASCII without spaces", ErrInvalidSecret, s)
		}
		return nil, nil
	}
	return nil, unknownScheme(s)
}

// printable reports whether s is made only of visible ASCII characters
// (no spaces or controls), so that it fits in a header value and can be
// space-separated.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}
