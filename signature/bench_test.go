// Benchmarks of signing and verifying, which every delivery (Sign) and every
// receiver (Verify) pays once per request: each scheme, with one secret and with
// two (a rotation's grace period), over a 256-byte and a 4 KiB body. MB/s is the
// body bytes signed or verified per second.
//
//	go test -run '^$' -bench . -benchmem ./signature
//	go test -run '^$' -bench 'Sign/standard-webhooks' -benchmem -count 6 ./signature
package signature_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/hookd/hookd/signature"
)

// benchSecrets are the secrets of a rotation, newest first: each is a valid
// "whsec_" secret of 32 key bytes, usable with every scheme.
var benchSecrets = []string{
	signature.SecretPrefix + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xa5}, 32)),
	signature.SecretPrefix + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x5a}, 32)),
}

// benchTime is the timestamp of every benchmark message; Verify's clock is set to it.
var benchTime = time.Unix(1741064767, 0)

// benchBodies are the body sizes benchmarked: a small event and a large one.
var benchBodies = []int{256, 4 << 10}

// benchMessage returns a message with a JSON-looking body of n bytes.
func benchMessage(n int) signature.Message {
	body := bytes.Repeat([]byte("x"), n)
	copy(body, `{"type":"invoice.paid","data":{"note":"`)
	copy(body[n-3:], `"}}`)
	return signature.Message{ID: "msg_2tY5Qm3uAQKb7kBZb0z2rP6sN1c", Timestamp: benchTime, Body: body}
}

// benchCases runs bench for every scheme, number of active secrets and body size.
func benchCases(b *testing.B, bench func(b *testing.B, s signature.Scheme, secrets []string, m signature.Message)) {
	for _, s := range signature.Schemes() {
		for _, nsec := range []int{1, 2} {
			for _, n := range benchBodies {
				b.Run(fmt.Sprintf("%s/secrets=%d/body=%dB", s, nsec, n), func(b *testing.B) {
					m := benchMessage(n)
					b.SetBytes(int64(len(m.Body)))
					b.ReportAllocs()
					bench(b, s, benchSecrets[:nsec], m)
				})
			}
		}
	}
}

// BenchmarkSign measures Sign: the headers of one delivery.
func BenchmarkSign(b *testing.B) {
	benchCases(b, func(b *testing.B, s signature.Scheme, secrets []string, m signature.Message) {
		if _, err := signature.Sign(s, "", secrets, m); err != nil {
			b.Fatalf("Sign(%s): %v", s, err)
		}
		for b.Loop() {
			if _, err := signature.Sign(s, "", secrets, m); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkVerify measures Verify of a request signed as hookd sends it. With
// two secrets the request carries both signatures and the receiver holds the
// previous secret, so the match is the second entry (the most work).
func BenchmarkVerify(b *testing.B) {
	benchCases(b, func(b *testing.B, s signature.Scheme, secrets []string, m signature.Message) {
		h, err := signature.Sign(s, "", secrets, m)
		if err != nil {
			b.Fatalf("Sign(%s): %v", s, err)
		}
		h.Set(signature.HeaderWebhookID, m.ID)
		h.Set(signature.HeaderWebhookTimestamp, strconv.FormatInt(m.Timestamp.Unix(), 10))
		secret := secrets[len(secrets)-1]
		opts := signature.VerifyOptions{Now: func() time.Time { return benchTime }}
		if err := signature.Verify(s, "", secret, h, m.Body, opts); err != nil {
			b.Fatalf("Verify(%s) of a request Sign made: %v", s, err)
		}
		for b.Loop() {
			if err := signature.Verify(s, "", secret, h, m.Body, opts); err != nil {
				b.Fatal(err)
			}
		}
	})
}
