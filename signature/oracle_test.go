package signature_test

import (
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/hookd/hookd/signature"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// oracleBodies are payloads that stress the signed content's framing.
var oracleBodies = [][]byte{
	[]byte(`{"type":"invoice.paid","data":{"id":"inv_1"}}`),
	{},
	[]byte("1614265330.{\"a\":1}"),
	[]byte("line one\r\nline two\n\x00\xff\xfe not UTF-8"),
	[]byte(`{"test": 2432232314}`),
}

func newReference(t *testing.T, secret string) *standardwebhooks.Webhook {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatalf("standardwebhooks.NewWebhook(%q) error: %v", secret, err)
	}
	return wh
}

// TestStandardWebhooksOracle checks Sign and Verify against the reference Go
// library of the Standard Webhooks spec, in both directions.
func TestStandardWebhooksOracle(t *testing.T) {
	t.Parallel()
	current, previous, other := signature.NewSecret(), "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", signature.NewSecret()
	for i, body := range oracleBodies {
		now := time.Now()
		id := "evt_oracle" + strconv.Itoa(i)
		h, err := signature.Sign(signature.StandardWebhooks, "", []string{current, previous}, signature.Message{ID: id, Timestamp: now, Body: body})
		if err != nil {
			t.Fatalf("Sign(%q) error: %v", body, err)
		}
		h.Set(standardwebhooks.HeaderWebhookID, id)
		h.Set(standardwebhooks.HeaderWebhookTimestamp, strconv.FormatInt(now.Unix(), 10))

		// Ours → reference: each active secret verifies; another does not.
		for _, secret := range []string{current, previous} {
			if err := newReference(t, secret).Verify(body, h); err != nil {
				t.Errorf("reference Verify(%q) of Sign with %q = %v, want <nil>", body, secret, err)
			}
		}
		if err := newReference(t, other).Verify(body, h); err == nil {
			t.Errorf("reference Verify(%q) with an unrelated secret = <nil>, want an error", body)
		}

		// Reference → ours.
		for _, secret := range []string{current, previous} {
			sig, err := newReference(t, secret).Sign(id, now, body)
			if err != nil {
				t.Fatalf("reference Sign(%q) error: %v", body, err)
			}
			rh := http.Header{}
			rh.Set(standardwebhooks.HeaderWebhookID, id)
			rh.Set(standardwebhooks.HeaderWebhookTimestamp, strconv.FormatInt(now.Unix(), 10))
			rh.Set(standardwebhooks.HeaderWebhookSignature, sig)
			if err := signature.Verify(signature.StandardWebhooks, "", secret, rh, body, signature.VerifyOptions{}); err != nil {
				t.Errorf("Verify(%q) of reference Sign = %v, want <nil>", body, err)
			}
			if err := signature.Verify(signature.StandardWebhooks, "", other, rh, body, signature.VerifyOptions{}); err == nil {
				t.Errorf("Verify(%q) of reference Sign with an unrelated secret = <nil>, want an error", body)
			}
			if got := signature.Verify(signature.StandardWebhooks, "", secret, rh, append(slices.Clip(body), ' '), signature.VerifyOptions{}); got == nil {
				t.Errorf("Verify(%q + \" \") of reference Sign = <nil>, want an error", body)
			}
			// Both produce the same value for the same input.
			ours, err := signature.Sign(signature.StandardWebhooks, "", []string{secret}, signature.Message{ID: id, Timestamp: now, Body: body})
			if err != nil {
				t.Fatal(err)
			}
			if got := ours.Get("webhook-signature"); got != sig {
				t.Errorf("Sign(%q) = %q, reference Sign = %q", body, got, sig)
			}
		}
	}
}

// The reference library rejects what our Verify rejects for time reasons.
func TestStandardWebhooksOracleStale(t *testing.T) {
	t.Parallel()
	secret := signature.NewSecret()
	for _, offset := range []time.Duration{-10 * time.Minute, 10 * time.Minute} {
		ts := time.Now().Add(offset)
		h, err := signature.Sign(signature.StandardWebhooks, "", []string{secret}, signature.Message{ID: "evt_1", Timestamp: ts, Body: testBody})
		if err != nil {
			t.Fatal(err)
		}
		h.Set(standardwebhooks.HeaderWebhookID, "evt_1")
		h.Set(standardwebhooks.HeaderWebhookTimestamp, strconv.FormatInt(ts.Unix(), 10))
		if err := newReference(t, secret).Verify(testBody, h); err == nil {
			t.Errorf("reference Verify(offset %v) = <nil>, want an error", offset)
		}
		if err := newReference(t, secret).VerifyIgnoringTimestamp(testBody, h); err != nil {
			t.Errorf("reference VerifyIgnoringTimestamp(offset %v) = %v, want <nil>", offset, err)
		}
		if err := signature.Verify(signature.StandardWebhooks, "", secret, h, testBody, signature.VerifyOptions{}); err == nil {
			t.Errorf("Verify(offset %v) = <nil>, want an error", offset)
		}
	}
}
