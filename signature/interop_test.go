package signature_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/hookd/hookd/signature"
)

var hex64 = regexp.MustCompile(`\b[0-9a-f]{64}\b`)

// opensslHMAC returns the hex HMAC-SHA256 of data keyed with key, computed
// by the openssl binary, or skips the test if openssl is not installed.
func opensslHMAC(t *testing.T, key string, data []byte) string {
	t.Helper()
	bin, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not installed")
	}
	cmd := exec.Command(bin, "dgst", "-sha256", "-hmac", key)
	cmd.Stdin = bytes.NewReader(data)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl dgst -sha256 -hmac %q: %v", key, err)
	}
	m := hex64.Find(out)
	if m == nil {
		t.Fatalf("openssl dgst output %q has no hex digest", out)
	}
	return string(m)
}

// stdlibHMAC computes the same independently of the package.
func stdlibHMAC(key string, data []byte) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write(data)
	return hex.EncodeToString(m.Sum(nil))
}

// TestHMACInterop checks hmac-sha256 and timestamped against HMACs computed
// elsewhere, keyed with the secret string's bytes as a Node receiver would
// (crypto.createHmac("sha256", secret)), including secrets that look like
// Standard Webhooks secrets.
func TestHMACInterop(t *testing.T) {
	t.Parallel()
	secrets := []string{
		"plain-secret-0123456789",
		"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
		signature.NewSecret(),
		`s3cr3t!#$%&'()*+,-./:;<=>?@[\]^_{|}~"`,
	}
	bodies := [][]byte{
		testBody,
		{},
		[]byte("line one\r\nline two\n\x00\xff not UTF-8"),
	}
	ts := time.Unix(1700000000, 0)
	for _, secret := range secrets {
		for _, body := range bodies {
			h, err := signature.Sign(signature.HMACSHA256, "", []string{secret}, signature.Message{Body: body})
			if err != nil {
				t.Fatalf("Sign(hmac-sha256, %q) error: %v", secret, err)
			}
			gotHMAC := h.Get("X-Signature")
			h, err = signature.Sign(signature.Timestamped, "", []string{secret}, signature.Message{Timestamp: ts, Body: body})
			if err != nil {
				t.Fatalf("Sign(timestamped, %q) error: %v", secret, err)
			}
			gotTS := h.Get("X-Webhook-Signature")
			signed := append([]byte(strconv.FormatInt(ts.Unix(), 10)+"."), body...)

			if want := stdlibHMAC(secret, body); gotHMAC != want {
				t.Errorf("Sign(hmac-sha256, %q, %q) = %q, want %q", secret, body, gotHMAC, want)
			}
			if want := "sha256=" + stdlibHMAC(secret, signed); gotTS != want {
				t.Errorf("Sign(timestamped, %q, %q) = %q, want %q", secret, body, gotTS, want)
			}

			// Signatures computed independently verify.
			vh := http.Header{}
			vh.Set("X-Signature", stdlibHMAC(secret, body))
			vh.Set("X-Webhook-Signature", "sha256="+stdlibHMAC(secret, signed))
			vh.Set("X-Timestamp", "1700000000")
			opts := signature.VerifyOptions{Now: at(ts)}
			if err := signature.Verify(signature.HMACSHA256, "", secret, vh, body, opts); err != nil {
				t.Errorf("Verify(hmac-sha256, %q, %q) = %v, want <nil>", secret, body, err)
			}
			if err := signature.Verify(signature.Timestamped, "", secret, vh, body, opts); err != nil {
				t.Errorf("Verify(timestamped, %q, %q) = %v, want <nil>", secret, body, err)
			}

			t.Run("openssl", func(t *testing.T) {
				if want := opensslHMAC(t, secret, body); gotHMAC != want {
					t.Errorf("Sign(hmac-sha256, %q, %q) = %q, openssl says %q", secret, body, gotHMAC, want)
				}
				if want := "sha256=" + opensslHMAC(t, secret, signed); gotTS != want {
					t.Errorf("Sign(timestamped, %q, %q) = %q, openssl says %q", secret, body, gotTS, want)
				}
			})
		}
	}
}
