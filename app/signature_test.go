package app_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/hookd/hookd/app"
	"github.com/hookd/hookd/hookdtest"
	"github.com/hookd/hookd/signature"
)

// verifyStandard checks a delivery's standard-webhooks signature with
// signature.Verify and with the Standard Webhooks reference library.
func verifyStandard(t *testing.T, secret string, req *hookdtest.Request) {
	t.Helper()
	if err := signature.Verify(signature.StandardWebhooks, "", secret, req.Header, req.Body, signature.VerifyOptions{}); err != nil {
		t.Errorf("request %d: signature.Verify: %v (webhook-signature %q)", req.N, err, req.Header.Get("Webhook-Signature"))
	}
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatalf("standardwebhooks.NewWebhook: %v", err)
	}
	if err := wh.Verify(req.Body, req.Header); err != nil {
		t.Errorf("request %d: the Standard Webhooks reference library rejects the signature: %v", req.N, err)
	}
}

func hexHMAC(key, msg string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}

func TestSignatureSchemes(t *testing.T) {
	t.Parallel()
	e := setup(t)
	const plain = "plain-text-secret-0123456789"
	cases := []struct {
		name      string
		signature map[string]any // nil: the default scheme
		secret    string         // "": generated
		header    string         // where the signature (or secret) travels
		want      func(secret string, req *hookdtest.Request) string
	}{
		{name: "standard-webhooks default", header: "Webhook-Signature", want: func(secret string, req *hookdtest.Request) string {
			key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
			m := hmac.New(sha256.New, key)
			m.Write([]byte(req.Header.Get("Webhook-Id") + "." + req.Header.Get("Webhook-Timestamp") + "." + string(req.Body)))
			return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
		}},
		{name: "standard-webhooks explicit", signature: map[string]any{"scheme": "standard-webhooks"}, header: "Webhook-Signature"},
		{name: "hmac-sha256", signature: map[string]any{"scheme": "hmac-sha256"}, secret: plain, header: "X-Signature",
			want: func(secret string, req *hookdtest.Request) string { return hexHMAC(secret, string(req.Body)) }},
		{name: "hmac-sha256 generated secret", signature: map[string]any{"scheme": "hmac-sha256"}, header: "X-Signature",
			want: func(secret string, req *hookdtest.Request) string { return hexHMAC(secret, string(req.Body)) }},
		{name: "hmac-sha256 custom header", signature: map[string]any{"scheme": "hmac-sha256", "header": "X-Hub-Signature-256"},
			secret: plain, header: "X-Hub-Signature-256",
			want: func(secret string, req *hookdtest.Request) string { return hexHMAC(secret, string(req.Body)) }},
		{name: "timestamped", signature: map[string]any{"scheme": "timestamped"}, secret: plain, header: "X-Webhook-Signature",
			want: func(secret string, req *hookdtest.Request) string {
				return "sha256=" + hexHMAC(secret, req.Header.Get("X-Timestamp")+"."+string(req.Body))
			}},
		{name: "timestamped custom header", signature: map[string]any{"scheme": "timestamped", "header": "X-Sig"}, secret: plain,
			header: "X-Sig", want: func(secret string, req *hookdtest.Request) string {
				return "sha256=" + hexHMAC(secret, req.Header.Get("X-Timestamp")+"."+string(req.Body))
			}},
		{name: "shared-secret", signature: map[string]any{"scheme": "shared-secret"}, secret: plain, header: "X-Webhook-Secret",
			want: func(secret string, _ *hookdtest.Request) string { return secret }},
		{name: "shared-secret custom header", signature: map[string]any{"scheme": "shared-secret", "header": "X-Shared-Key"},
			secret: plain, header: "X-Shared-Key", want: func(secret string, _ *hookdtest.Request) string { return secret }},
	}
	type created struct {
		r      *hookdtest.Receiver
		ep     map[string]any
		scheme signature.Scheme
		custom string
	}
	eps := make([]created, len(cases))
	for i, c := range cases {
		extra := map[string]any{}
		if c.signature != nil {
			extra["signature"] = c.signature
		}
		if c.secret != "" {
			extra["secret"] = c.secret
		}
		r := hookdtest.NewTLSReceiver(t) // shared-secret needs https
		ep := e.endpoint(t, r.URL(), extra)
		scheme := signature.StandardWebhooks
		custom := ""
		if c.signature != nil {
			scheme = signature.Scheme(c.signature["scheme"].(string))
			custom, _ = c.signature["header"].(string)
		}
		eps[i] = created{r: r, ep: ep, scheme: scheme, custom: custom}
	}
	res := e.publish(t, "sig-1", "invoice.paid", map[string]any{"amount": 42, "note": "naïve ✓"})

	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cr := eps[i]
			secret := str(cr.ep, "secret")
			if c.secret != "" && secret != c.secret {
				t.Errorf("created endpoint secret = %q, want the given %q", secret, c.secret)
			}
			if c.secret == "" && !strings.HasPrefix(secret, "whsec_") {
				t.Errorf("generated secret %q does not start with whsec_", secret)
			}
			req := cr.r.Wait(t, 1, 5*time.Second)[0]
			if err := signature.Verify(cr.scheme, cr.custom, secret, req.Header, req.Body, signature.VerifyOptions{}); err != nil {
				t.Errorf("signature.Verify(%s, %q): %v; headers %v", cr.scheme, cr.custom, err, req.Header)
			}
			wrong := secret + "x"
			if cr.scheme == signature.StandardWebhooks {
				wrong = signature.NewSecret()
			}
			if err := signature.Verify(cr.scheme, cr.custom, wrong, req.Header, req.Body, signature.VerifyOptions{}); err == nil {
				t.Errorf("signature.Verify with a wrong secret succeeded")
			}
			if cr.scheme == signature.StandardWebhooks {
				verifyStandard(t, secret, req)
			}
			if c.want != nil {
				if got, want := req.Header.Get(c.header), c.want(secret, req); got != want {
					t.Errorf("%s = %q, want %q", c.header, got, want)
				}
			}
			if cr.scheme == signature.Timestamped {
				ts, err := strconv.ParseInt(req.Header.Get("X-Timestamp"), 10, 64)
				if err != nil || time.Since(time.Unix(ts, 0)).Abs() > time.Minute {
					t.Errorf("X-Timestamp = %q, want the current unix time", req.Header.Get("X-Timestamp"))
				}
			}
			if req.Header.Get("Webhook-Id") != str(res, "id") {
				t.Errorf("webhook-id = %q, want %q", req.Header.Get("Webhook-Id"), str(res, "id"))
			}

			// The delivery log keeps request headers with secrets masked.
			d := e.h.DeliveryFor(t, e.key, str(res, "id"), str(cr.ep, "id"))
			d = e.h.WaitDeliveryStatus(t, e.key, str(d, "id"), "succeeded", 5*time.Second)
			if log := hookdtest.JSON(d); strings.Contains(log, secret) {
				t.Errorf("the delivery log shows the secret: %s", log)
			}
			if cr.scheme == signature.SharedSecret {
				as := attempts(d)
				if len(as) == 0 {
					t.Fatalf("no attempts: %s", hookdtest.JSON(d))
				}
				if h := obj(as[0], "request_headers"); h[http.CanonicalHeaderKey(c.header)] == nil {
					t.Errorf("request_headers %v lack %s (masked)", h, c.header)
				}
			}
		})
	}
}

func TestBodiesAndHeaders(t *testing.T) {
	t.Parallel()
	e := setup(t)
	envR, rawR, retried := hookdtest.NewReceiver(t), hookdtest.NewReceiver(t), hookdtest.NewReceiver(t)
	envEP := e.endpoint(t, envR.URL(), map[string]any{"headers": map[string]string{"X-Team": "billing", "X-Api-Token": "tok-123"}})
	rawEP := e.endpoint(t, rawR.URL(), map[string]any{"payload": "raw"})
	retried.Respond(hookdtest.FailFirst(1, http.StatusInternalServerError))
	retriedEP := e.endpoint(t, retried.URL(), map[string]any{"retry": fastRetry(3)})

	const data = `{"a":  1, "b":[1, 2],  "s": "x\u00e9"}`
	const id = "ord-42:raw_test"
	status, res := e.h.Do(t, http.MethodPost, "/api/events", e.key,
		`{"id": "`+id+`", "type": "invoice.paid", "data": `+data+`}`)
	if status != http.StatusAccepted || str(res, "id") != id || num(res, "deliveries") != 3 {
		t.Fatalf("publish = %d %v, want 202 with id %s and 3 deliveries", status, res, id)
	}

	t.Run("raw", func(t *testing.T) {
		req := rawR.Wait(t, 1, 5*time.Second)[0]
		if string(req.Body) != data {
			t.Errorf("raw body = %q, want the published data byte for byte: %q", req.Body, data)
		}
		verifyStandard(t, str(rawEP, "secret"), req)
	})
	t.Run("envelope", func(t *testing.T) {
		req := envR.Wait(t, 1, 5*time.Second)[0]
		ev := decodeEnvelope(t, req.Body)
		if ev.ID != id || ev.Type != "invoice.paid" || ev.Organization != e.org {
			t.Errorf("envelope = %s, want id %s, type invoice.paid, organization %s", req.Body, id, e.org)
		}
		var got, want any
		json.Unmarshal(ev.Data, &got)
		json.Unmarshal([]byte(data), &want)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("envelope data = %s, want %s", ev.Data, data)
		}
		ts, _ := time.Parse(time.RFC3339, ev.Timestamp)
		if time.Since(ts).Abs() > time.Minute {
			t.Errorf("envelope timestamp %s is not the publish time", ev.Timestamp)
		}
		verifyStandard(t, str(envEP, "secret"), req)

		h := req.Header
		checks := []struct{ name, got, want string }{
			{"Webhook-Id", h.Get("Webhook-Id"), id},
			{"Content-Type", h.Get("Content-Type"), "application/json"},
			{"User-Agent", h.Get("User-Agent"), "hookd/" + app.Version},
			{"X-Team", h.Get("X-Team"), "billing"},
			{"X-Api-Token", h.Get("X-Api-Token"), "tok-123"},
		}
		for _, c := range checks {
			if c.got != c.want {
				t.Errorf("header %s = %q, want %q", c.name, c.got, c.want)
			}
		}
		if ts, err := strconv.ParseInt(h.Get("Webhook-Timestamp"), 10, 64); err != nil || time.Since(time.Unix(ts, 0)).Abs() > time.Minute {
			t.Errorf("webhook-timestamp = %q, want the current unix time", h.Get("Webhook-Timestamp"))
		}
		d := e.h.DeliveryFor(t, e.key, id, str(envEP, "id"))
		d = e.h.WaitDeliveryStatus(t, e.key, str(d, "id"), "succeeded", 5*time.Second)
		if as := attempts(d); len(as) == 1 {
			logged := obj(as[0], "request_headers")
			if logged["X-Team"] != "billing" || logged["X-Api-Token"] == "tok-123" {
				t.Errorf("logged request headers = %v, want X-Team shown and X-Api-Token masked", logged)
			}
		} else {
			t.Errorf("got %d attempts, want 1", len(as))
		}
	})
	t.Run("retry keeps webhook-id", func(t *testing.T) {
		reqs := retried.Wait(t, 2, 5*time.Second)
		for _, req := range reqs {
			if req.Header.Get("Webhook-Id") != id {
				t.Errorf("attempt %d: webhook-id = %q, want %q", req.N, req.Header.Get("Webhook-Id"), id)
			}
			verifyStandard(t, str(retriedEP, "secret"), req)
		}
		if string(reqs[0].Body) != string(reqs[1].Body) {
			t.Errorf("retry body %s differs from the first attempt's %s", reqs[1].Body, reqs[0].Body)
		}
	})
}

func TestSecretRotation(t *testing.T) {
	t.Parallel()
	e := setup(t)
	r := hookdtest.NewReceiver(t)
	ep := e.endpoint(t, r.URL(), nil)
	id := str(ep, "id")
	old := str(ep, "secret")
	sigCount := func(req *hookdtest.Request) int { return strings.Count(req.Header.Get("Webhook-Signature"), "v1,") }

	e.publish(t, "", "order.created", map[string]any{"n": 1})
	req := r.Wait(t, 1, 5*time.Second)[0]
	if n := sigCount(req); n != 1 {
		t.Errorf("before rotation: %d signatures, want 1", n)
	}

	status, rot := e.h.Do(t, http.MethodPost, "/api/webhooks/"+id+"/secret/rotate", e.key, map[string]any{"grace_period": 60})
	next := str(rot, "secret")
	if status != http.StatusOK || next == "" || next == old {
		t.Fatalf("rotate = %d %v, want a new secret", status, rot)
	}
	if got := e.h.Get(t, e.key, "/api/webhooks/"+id+"/secret"); str(got, "secret") != next || got["previous_secret_expires_at"] == nil {
		t.Errorf("GET secret = %v, want the new secret and the old one's expiry", got)
	}
	e.publish(t, "", "order.created", map[string]any{"n": 2})
	req = r.Wait(t, 2, 5*time.Second)[1]
	if n := sigCount(req); n != 2 {
		t.Errorf("during the grace period: webhook-signature %q has %d signatures, want 2", req.Header.Get("Webhook-Signature"), n)
	}
	verifyStandard(t, next, req)
	verifyStandard(t, old, req)

	status, rot = e.h.Do(t, http.MethodPost, "/api/webhooks/"+id+"/secret/rotate", e.key, map[string]any{"grace_period": 0})
	latest := str(rot, "secret")
	if status != http.StatusOK || latest == "" || latest == next {
		t.Fatalf("rotate = %d %v, want a new secret", status, rot)
	}
	if got := e.h.Get(t, e.key, "/api/webhooks/"+id+"/secret"); str(got, "secret") != latest || got["previous_secret_expires_at"] != nil {
		t.Errorf("GET secret after a rotation without grace = %v, want the new secret alone", got)
	}
	e.publish(t, "", "order.created", map[string]any{"n": 3})
	req = r.Wait(t, 3, 5*time.Second)[2]
	if n := sigCount(req); n != 1 {
		t.Errorf("after a rotation without grace: %d signatures, want 1", n)
	}
	verifyStandard(t, latest, req)
	for _, s := range []string{old, next} {
		if err := signature.Verify(signature.StandardWebhooks, "", s, req.Header, req.Body, signature.VerifyOptions{}); err == nil {
			t.Errorf("a retired secret still verifies")
		}
	}
}

func TestSharedSecretNeverOverHTTP(t *testing.T) {
	t.Parallel()
	e := setup(t) // development policy: http targets are allowed
	r := hookdtest.NewReceiver(t)
	const secret = "plain-text-secret-0123456789"
	status, ep := e.h.Do(t, http.MethodPost, "/api/webhooks", e.key, map[string]any{"url": r.URL(), "events": []string{"order.created"},
		"signature": map[string]any{"scheme": "shared-secret"}, "secret": secret, "retry": fastRetry(1)})
	switch status {
	case http.StatusBadRequest: // refused when saved: fine
		return
	case http.StatusCreated:
	default:
		t.Fatalf("create shared-secret endpoint over http = %d %v", status, ep)
	}
	// Accepted: then no delivery may carry the secret over http.
	res := e.publish(t, "", "order.created", map[string]any{"n": 1})
	d := e.h.DeliveryFor(t, e.key, str(res, "id"), str(ep, "id"))
	d = e.h.WaitDelivery(t, e.key, str(d, "id"), 5*time.Second, func(d map[string]any) bool { return num(d, "attempt_count") >= 1 })
	for _, req := range r.NoMoreThan(t, 1, 100*time.Millisecond) {
		if strings.Contains(fmt.Sprint(req.Header), secret) {
			t.Errorf("the shared secret was sent over http: %v", req.Header)
		}
	}
	if as := attempts(d); len(as) == 0 || !strings.Contains(str(as[0], "error"), "https") {
		t.Errorf("attempts = %s, want one refused because the scheme needs https", hookdtest.JSON(attempts(d)))
	}
}
