// Package secret seals secrets at rest and hashes API keys.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// KeySize is the size in bytes of a master key (AES-256).
const KeySize = 32

// version1 is the first byte of every sealed value: AES-256-GCM, a random
// 12-byte nonce, the version byte as additional data.
const version1 byte = 1

// ErrDecrypt is returned by Open when sealed data cannot be opened: it was
// changed, truncated, is not sealed data, or was sealed under another key.
var ErrDecrypt = errors.New("secret: cannot decrypt: wrong key or corrupted data")

// Sealer encrypts and authenticates small secrets with AES-256-GCM.
// It is safe for concurrent use.
type Sealer struct {
	aead cipher.AEAD
}

// NewSealer returns a Sealer using key, which must be KeySize (32) bytes.
// The Sealer does not keep a reference to key.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("secret: master key must be %d bytes, got %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts plaintext and returns version byte || 12-byte random nonce ||
// ciphertext || 16-byte tag, 29 bytes longer than plaintext. Sealing the same
// plaintext twice gives different results. One key must not seal more than
// 2^32 values. The error is always nil today; it is there for future formats.
func (s *Sealer) Seal(plaintext []byte) ([]byte, error) {
	out := make([]byte, 1, 1+s.aead.Overhead()+len(plaintext))
	out[0] = version1
	return s.aead.Seal(out, nil, plaintext, out[:1]), nil
}

// Open decrypts a value returned by Seal. It returns an error matching
// ErrDecrypt if sealed was modified, truncated, has an unknown version or was
// sealed under another key.
func (s *Sealer) Open(sealed []byte) ([]byte, error) {
	if len(sealed) < 1+s.aead.Overhead() {
		return nil, fmt.Errorf("%w (too short)", ErrDecrypt)
	}
	if sealed[0] != version1 {
		return nil, fmt.Errorf("%w (unknown version %d)", ErrDecrypt, sealed[0])
	}
	plaintext, err := s.aead.Open(nil, nil, sealed[1:], sealed[:1])
	if err != nil {
		return nil, ErrDecrypt
	}
	return plaintext, nil
}

// NewKey returns a fresh random master key of KeySize bytes.
func NewKey() []byte {
	key := make([]byte, KeySize)
	rand.Read(key) // never fails; crashes the program if the system has no randomness
	return key
}

// ParseKey decodes a master key, as given in HOOKD_MASTER_KEY or a key file:
// 64 hexadecimal characters, or standard or URL-safe base64 (padded or not)
// of 32 bytes. Surrounding white space is ignored. The error never contains
// the key text.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if len(s) == 2*KeySize {
		if key, err := hex.DecodeString(s); err == nil {
			return key, nil
		}
	}
	for _, enc := range []*base64.Encoding{
		base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding,
	} {
		if key, err := enc.DecodeString(s); err == nil && len(key) == KeySize {
			return key, nil
		}
	}
	return nil, fmt.Errorf("secret: master key must be %d bytes written as %d hex characters or as base64", KeySize, 2*KeySize)
}

// apiKeyLen is the length of the base62 text of a 256-bit number:
// 62^43 > 2^256.
const apiKeyLen = 43

// NewAPIKey returns a fresh random API key: prefix followed by 43 base62
// characters (0-9, a-z, A-Z) encoding 32 random bytes, such as
// NewAPIKey("hk_") = "hk_3kTMd…". Keys can be selected by double-clicking
// and need no escaping in URLs or headers.
func NewAPIKey(prefix string) string {
	var b [32]byte
	rand.Read(b[:]) // never fails; crashes the program if the system has no randomness
	text := new(big.Int).SetBytes(b[:]).Text(62)
	return prefix + strings.Repeat("0", apiKeyLen-len(text)) + text
}

// HashKey returns the lowercase hex SHA-256 of key, the form in which API
// keys are stored. A fast hash is right here: keys carry 256 random bits, so
// they cannot be guessed from the hash.
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// EqualHash reports whether a and b are equal, in time that depends only on
// their lengths, so comparing a stored hash with HashKey(presented) leaks
// nothing about the stored one.
func EqualHash(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
