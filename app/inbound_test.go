package app_test

import (
	"bytes"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookd/hookd/app"
	"github.com/hookd/hookd/hookdtest"
)

// fastPartner is a partner rate limit that tests never reach.
var fastPartner = map[string]any{"per_second": 1000, "burst": 1000}

// partner creates a partner of e's organization named after the test, with the
// fields of extra added or overriding.
func (e env) partner(t *testing.T, extra map[string]any) hookdtest.Partner {
	t.Helper()
	body := map[string]any{"name": t.Name(), "rate_limit": fastPartner}
	maps.Copy(body, extra)
	return e.h.CreatePartner(t, e.key, body)
}

// signedAt returns p's headers for body signed at unix seconds ts.
func signedAt(p hookdtest.Partner, ts int64, body []byte) http.Header {
	return hookdtest.SignedHeader(p.APIKey, p.Secret, ts, body)
}

// with returns a copy of h with k set to v, or removed if v is "".
func with(h http.Header, k, v string) http.Header {
	h = h.Clone()
	if v == "" {
		h.Del(k)
	} else {
		h.Set(k, v)
	}
	return h
}

// orgEventID is the organization event id of a partner's event (SPEC §6, docs/decisions.md).
func orgEventID(p hookdtest.Partner, id string) string { return p.ID + ":" + id }

// auditWant is what one audit record of a partner request must say; empty
// strings must be absent (null).
type auditWant struct {
	action, result, reason, actor, org, target, clientIP string
	status                                               int
}

// checkAudit compares an inbound audit record with want. The actor type follows
// from the actor: "partner" for a partner id, "anonymous" for none.
func checkAudit(t *testing.T, what string, rec map[string]any, want auditWant) {
	t.Helper()
	checkAuditAt(t, what, rec, want, time.Now())
}

// checkAuditAt is checkAudit for a record made about the server time now.
func checkAuditAt(t *testing.T, what string, rec map[string]any, want auditWant, now time.Time) {
	t.Helper()
	got := auditWant{action: str(rec, "action"), result: str(rec, "result"), reason: str(rec, "reason"), actor: str(rec, "actor"),
		org: str(rec, "organization"), target: str(rec, "target"), clientIP: str(rec, "client_ip"), status: int(num(rec, "status"))}
	wantType := "anonymous"
	if want.actor != "" {
		wantType = "partner"
	}
	at, err := time.Parse(time.RFC3339, str(rec, "time"))
	if got != want || str(rec, "actor_type") != wantType || err != nil || now.Sub(at).Abs() > time.Minute || !strings.HasPrefix(str(rec, "id"), "aud_") {
		t.Errorf("%s: audit record %s\nwant %+v, actor_type %s, a recent RFC 3339 time and an aud_ id", what, hookdtest.JSON(rec), want, wantType)
	}
}

// newestAudit returns the newest audit record (admin key: every organization).
func newestAudit(t *testing.T, h *hookdtest.Hookd) map[string]any {
	t.Helper()
	_, recs := h.Audit(t, h.AdminKey, url.Values{"limit": {"1"}})
	if len(recs) != 1 {
		t.Fatalf("GET /api/audit?limit=1: got %d records, want 1", len(recs))
	}
	return recs[0]
}

// noSecretsInAudit fails the test if any of secrets appears in the audit log as
// the admin or orgKey reads it.
func noSecretsInAudit(t *testing.T, h *hookdtest.Hookd, orgKey string, secrets ...string) {
	t.Helper()
	for _, key := range []string{h.AdminKey, orgKey} {
		raw, recs := h.Audit(t, key, nil)
		if len(recs) == 0 {
			t.Errorf("GET /api/audit: no records")
		}
		for _, s := range secrets {
			if s != "" && bytes.Contains(raw, []byte(s)) {
				t.Errorf("GET /api/audit shows the key or secret %q", s)
			}
		}
	}
}

// TestInboundAnswers sends one request per answer of SPEC §6 and checks each
// answer, the audit record it leaves, and that a rejected request stores nothing.
func TestInboundAnswers(t *testing.T) {
	t.Parallel()
	const maxBody = 4096
	e := setup(t, func(c *app.Config) { c.MaxBodyBytes = maxBody })
	r := hookdtest.NewReceiver(t)
	e.endpoint(t, r.URL(), nil)
	p := e.partner(t, nil)
	disabled := e.partner(t, nil)
	if status, m := e.h.Do(t, http.MethodPatch, "/api/partners/"+disabled.ID, e.key, map[string]any{"enabled": false}); status != http.StatusOK || m["enabled"] != false {
		t.Fatalf("PATCH enabled=false = %d %v", status, m)
	}
	walled := e.partner(t, map[string]any{"ip_allowlist": []string{"203.0.113.0/24"}})
	slow := e.partner(t, map[string]any{"rate_limit": map[string]any{"per_second": 0.01, "burst": 1}})
	if status, _, m := e.h.SendPartnerEvent(t, slow, "slow-0", "order.created", map[string]any{"n": 0}); status != http.StatusAccepted {
		t.Fatalf("first event of a partner with a burst of 1 = %d %v, want 202", status, m)
	}
	now := time.Now().Unix()
	body := func(id string) []byte {
		return hookdtest.PartnerEventBody(t, id, "order.created", map[string]any{"id": id})
	}
	big := hookdtest.PartnerEventBody(t, "big-1", "order.created", map[string]any{"pad": strings.Repeat("x", maxBody)})

	cases := []struct {
		name    string
		header  http.Header
		body    []byte
		chunked bool // send without Content-Length
		status  int
		code    string
		actor   string // the partner the audit record names
		field   string // for invalid_field: the field named
		eventID string // the partner event id the body names: it must not exist afterwards
	}{
		{name: "too large", header: signedAt(p, now, big), body: big,
			status: 413, code: "payload_too_large", eventID: "big-1"},
		{name: "too large, chunked", header: signedAt(p, now, big), body: big, chunked: true,
			status: 413, code: "payload_too_large", eventID: "big-1"},
		{name: "missing api key", header: with(signedAt(p, now, body("k-1")), "X-Api-Key", ""), body: body("k-1"),
			status: 401, code: "missing_api_key", eventID: "k-1"},
		{name: "invalid api key", header: with(signedAt(p, now, body("k-2")), "X-Api-Key", p.APIKey+"x"), body: body("k-2"),
			status: 401, code: "invalid_api_key", eventID: "k-2"},
		{name: "organization key as api key", header: with(signedAt(p, now, body("k-3")), "X-Api-Key", e.key), body: body("k-3"),
			status: 401, code: "invalid_api_key", eventID: "k-3"},
		{name: "partner disabled", header: signedAt(disabled, now, body("d-1")), body: body("d-1"),
			status: 403, code: "partner_disabled", actor: disabled.ID},
		{name: "ip not allowed", header: signedAt(walled, now, body("w-1")), body: body("w-1"),
			status: 403, code: "ip_not_allowed", actor: walled.ID},
		{name: "rate limited", header: signedAt(slow, now, body("slow-1")), body: body("slow-1"),
			status: 429, code: "rate_limited", actor: slow.ID},
		{name: "stale timestamp", header: signedAt(p, now-301, body("t-1")), body: body("t-1"),
			status: 401, code: "stale_timestamp", actor: p.ID, eventID: "t-1"},
		{name: "future timestamp", header: signedAt(p, now+305, body("t-2")), body: body("t-2"),
			status: 401, code: "stale_timestamp", actor: p.ID, eventID: "t-2"},
		{name: "missing timestamp", header: with(signedAt(p, now, body("t-3")), "X-Timestamp", ""), body: body("t-3"),
			status: 401, code: "stale_timestamp", actor: p.ID, eventID: "t-3"},
		{name: "timestamp not unix seconds", header: with(signedAt(p, now, body("t-4")), "X-Timestamp", time.Now().UTC().Format(time.RFC3339)),
			body: body("t-4"), status: 401, code: "stale_timestamp", actor: p.ID, eventID: "t-4"},
		{name: "missing signature", header: with(signedAt(p, now, body("s-1")), "X-Webhook-Signature", ""), body: body("s-1"),
			status: 401, code: "invalid_signature", actor: p.ID, eventID: "s-1"},
		{name: "another partner's secret", header: with(signedAt(disabled, now, body("s-2")), "X-Api-Key", p.APIKey), body: body("s-2"),
			status: 401, code: "invalid_signature", actor: p.ID, eventID: "s-2"},
		{name: "text/plain", header: with(signedAt(p, now, body("m-1")), "Content-Type", "text/plain"), body: body("m-1"),
			status: 415, code: "unsupported_media_type", actor: p.ID, eventID: "m-1"},
		{name: "form content type", header: with(signedAt(p, now, body("m-2")), "Content-Type", "application/x-www-form-urlencoded"),
			body: body("m-2"), status: 415, code: "unsupported_media_type", actor: p.ID, eventID: "m-2"},
		{name: "malformed json", header: signedAt(p, now, []byte(`{"id": "j-1", "type": `)), body: []byte(`{"id": "j-1", "type": `),
			status: 400, code: "invalid_json", actor: p.ID, eventID: "j-1"},
		{name: "empty body", header: signedAt(p, now, []byte{}), body: []byte{},
			status: 400, code: "invalid_json", actor: p.ID},
		{name: "json array", header: signedAt(p, now, []byte(`[{"id":"j-2"}]`)), body: []byte(`[{"id":"j-2"}]`),
			status: 400, code: "invalid_json", actor: p.ID, eventID: "j-2"},
		{name: "missing id", header: signedAt(p, now, []byte(`{"type":"a.b","data":{}}`)), body: []byte(`{"type":"a.b","data":{}}`),
			status: 400, code: "invalid_field", field: "id", actor: p.ID},
		{name: "id with a dot", header: signedAt(p, now, body("f.1")), body: body("f.1"),
			status: 400, code: "invalid_field", field: "id", actor: p.ID, eventID: "f.1"},
		{name: "id a number", header: signedAt(p, now, []byte(`{"id":7,"type":"a.b","data":{}}`)), body: []byte(`{"id":7,"type":"a.b","data":{}}`),
			status: 400, code: "invalid_field", field: "id", actor: p.ID, eventID: "7"},
		{name: "missing type", header: signedAt(p, now, []byte(`{"id":"f-2","data":{}}`)), body: []byte(`{"id":"f-2","data":{}}`),
			status: 400, code: "invalid_field", field: "type", actor: p.ID, eventID: "f-2"},
		{name: "bad type", header: signedAt(p, now, []byte(`{"id":"f-3","type":"not a type","data":{}}`)), body: []byte(`{"id":"f-3","type":"not a type","data":{}}`),
			status: 400, code: "invalid_field", field: "type", actor: p.ID, eventID: "f-3"},
		{name: "missing data", header: signedAt(p, now, []byte(`{"id":"f-4","type":"a.b"}`)), body: []byte(`{"id":"f-4","type":"a.b"}`),
			status: 400, code: "invalid_field", field: "data", actor: p.ID, eventID: "f-4"},
		{name: "null data", header: signedAt(p, now, []byte(`{"id":"f-5","type":"a.b","data":null}`)), body: []byte(`{"id":"f-5","type":"a.b","data":null}`),
			status: 400, code: "invalid_field", field: "data", actor: p.ID, eventID: "f-5"},
	}
	requests := 1 // slow-0
	for _, c := range cases {
		var status int
		var header http.Header
		var m map[string]any
		if c.chunked {
			req, err := http.NewRequest(http.MethodPost, e.h.URL()+"/api/webhooks/events", io.MultiReader(bytes.NewReader(c.body)))
			if err != nil {
				t.Fatal(err)
			}
			req.Header = c.header.Clone()
			var raw []byte
			status, header, raw = e.h.Send(t, req)
			m = map[string]any{}
			if err := json.Unmarshal(raw, &m); err != nil {
				t.Errorf("%s: answer %q is not JSON", c.name, raw)
			}
		} else {
			status, header, m = e.h.Inbound(t, c.header, c.body)
		}
		requests++
		if status != c.status || errorCode(m) != c.code || str(obj(m, "error"), "message") == "" {
			t.Errorf("%s: = %d %v, want %d %s with a message", c.name, status, m, c.status, c.code)
		}
		if ct := header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type %q, want application/json", c.name, ct)
		}
		if c.field != "" && !strings.Contains(errorField(m), c.field) {
			t.Errorf("%s: error %v does not name the field %q", c.name, m, c.field)
		}
		if c.code == "rate_limited" {
			ra, err := strconv.Atoi(header.Get("Retry-After"))
			if err != nil || ra < 1 || header.Get("X-RateLimit-Limit") != "1" || header.Get("X-RateLimit-Remaining") != "0" {
				t.Errorf("%s: Retry-After %q, X-RateLimit-Limit %q, X-RateLimit-Remaining %q; want ≥ 1, 1, 0", c.name,
					header.Get("Retry-After"), header.Get("X-RateLimit-Limit"), header.Get("X-RateLimit-Remaining"))
			}
		}
		org := ""
		if c.actor != "" {
			org = e.org
		}
		checkAudit(t, c.name, newestAudit(t, e.h), auditWant{action: "inbound.event", result: "failure", reason: c.code,
			actor: c.actor, org: org, clientIP: "127.0.0.1", status: c.status})
	}

	// Accepted, then the same id again: a duplicate.
	okBody := hookdtest.PartnerEventBody(t, "ok-1", "order.created", map[string]any{"amount": 42})
	before := time.Now().UTC().Truncate(time.Second)
	status, _, m := e.h.Inbound(t, p.Header(time.Now(), okBody), okBody)
	requests++
	received, err := time.Parse(time.RFC3339, str(m, "receivedAt"))
	if status != http.StatusAccepted || str(m, "eventId") != "ok-1" || str(m, "status") != "queued" || err != nil ||
		received.Before(before) || time.Since(received) > time.Minute || !strings.HasSuffix(str(m, "receivedAt"), "Z") || len(m) != 3 {
		t.Errorf("valid event = %d %v, want 202 {eventId: ok-1, status: queued, receivedAt: now}", status, m)
	}
	checkAudit(t, "accepted", newestAudit(t, e.h), auditWant{action: "inbound.event", result: "success", actor: p.ID, org: e.org,
		target: orgEventID(p, "ok-1"), clientIP: "127.0.0.1", status: 202})
	again := hookdtest.PartnerEventBody(t, "ok-1", "order.updated", map[string]any{"amount": 43})
	status, _, m = e.h.Inbound(t, p.Header(time.Now(), again), again)
	requests++
	if status != http.StatusOK || m["duplicate"] != true || str(m, "eventId") != "ok-1" || str(m, "type") != "order.created" ||
		str(m, "receivedAt") != timeString(received) || !oneOf(str(m, "status"), "queued", "processing", "processed") {
		t.Errorf("the same id again = %d %v, want 200 with the event's status and duplicate: true", status, m)
	}
	checkAudit(t, "duplicate", newestAudit(t, e.h), auditWant{action: "inbound.event", result: "success", actor: p.ID, org: e.org,
		target: orgEventID(p, "ok-1"), clientIP: "127.0.0.1", status: 200})

	// The status and retry routes.
	other := e.partner(t, nil)
	if status, _, m := e.h.SendPartnerEvent(t, other, "theirs-1", "order.created", map[string]any{}); status != http.StatusAccepted {
		t.Fatalf("other partner's event = %d %v", status, m)
	}
	requests++
	e.h.WaitInboundStatus(t, p.APIKey, "ok-1", 5*time.Second, func(st map[string]any) bool { return st["status"] == "processed" })
	requests += countAudit(t, e.h, "inbound.status", p.ID) // the polls
	routeCases := []struct {
		name          string
		action, key   string
		eventID       string
		status        int
		code, actor   string
		target, field string
	}{
		{name: "status", action: "inbound.status", key: p.APIKey, eventID: "ok-1", status: 200, actor: p.ID, target: orgEventID(p, "ok-1")},
		{name: "status without key", action: "inbound.status", eventID: "ok-1", status: 401, code: "missing_api_key"},
		{name: "status with a wrong key", action: "inbound.status", key: "pk_nope", eventID: "ok-1", status: 401, code: "invalid_api_key"},
		{name: "status without eventId", action: "inbound.status", key: p.APIKey, status: 400, code: "invalid_field", actor: p.ID, field: "eventId"},
		{name: "status of an unknown event", action: "inbound.status", key: p.APIKey, eventID: "nope-1", status: 404, code: "not_found",
			actor: p.ID, target: orgEventID(p, "nope-1")},
		{name: "status of another partner's event", action: "inbound.status", key: p.APIKey, eventID: "theirs-1", status: 404,
			code: "not_found", actor: p.ID, target: orgEventID(p, "theirs-1")},
		{name: "status by a disabled partner", action: "inbound.status", key: disabled.APIKey, eventID: "ok-1", status: 403,
			code: "partner_disabled", actor: disabled.ID},
		{name: "status from a wrong address", action: "inbound.status", key: walled.APIKey, eventID: "ok-1", status: 403,
			code: "ip_not_allowed", actor: walled.ID},
		{name: "retry of a processed event", action: "inbound.retry", key: p.APIKey, eventID: "ok-1", status: 409, code: "conflict",
			actor: p.ID, target: orgEventID(p, "ok-1")},
		{name: "retry of an unknown event", action: "inbound.retry", key: p.APIKey, eventID: "nope-2", status: 404, code: "not_found",
			actor: p.ID, target: orgEventID(p, "nope-2")},
		{name: "retry of another partner's event", action: "inbound.retry", key: p.APIKey, eventID: "theirs-1", status: 404,
			code: "not_found", actor: p.ID, target: orgEventID(p, "theirs-1")},
		{name: "retry with a wrong key", action: "inbound.retry", key: "pk_nope", eventID: "ok-1", status: 401, code: "invalid_api_key"},
	}
	for _, c := range routeCases {
		var status int
		var m map[string]any
		if c.action == "inbound.status" {
			status, m = e.h.InboundStatus(t, c.key, c.eventID)
		} else {
			status, m = e.h.InboundRetry(t, c.key, c.eventID)
		}
		requests++
		if status != c.status || errorCode(m) != c.code {
			t.Errorf("%s = %d %v, want %d %q", c.name, status, m, c.status, c.code)
		}
		if c.field != "" && !strings.Contains(errorField(m), c.field) {
			t.Errorf("%s: error %v does not name %q", c.name, m, c.field)
		}
		result, org := "success", ""
		if c.code != "" {
			result = "failure"
		}
		if c.actor != "" {
			org = e.org
		}
		checkAudit(t, c.name, newestAudit(t, e.h), auditWant{action: c.action, result: result, reason: c.code, actor: c.actor, org: org,
			target: c.target, clientIP: "127.0.0.1", status: c.status})
	}

	// Nothing but the audit records was stored for the rejected requests.
	for _, c := range cases {
		if c.eventID == "" {
			continue
		}
		if status, m := e.h.InboundStatus(t, p.APIKey, c.eventID); status != http.StatusNotFound || errorCode(m) != "not_found" {
			t.Errorf("after %q: status of event %s = %d %v, want 404 not_found", c.name, c.eventID, status, m)
		}
		requests++
	}
	var stored []string
	for _, ev := range hookdtest.Items(e.h.Get(t, e.key, "/api/events?limit=500")) {
		stored = append(stored, str(ev, "id"))
	}
	want := []string{orgEventID(other, "theirs-1"), orgEventID(p, "ok-1"), orgEventID(slow, "slow-0")}
	if strings.Join(stored, " ") != strings.Join(want, " ") {
		t.Errorf("stored events %v, want only the accepted %v", stored, want)
	}
	got := map[string]int{}
	for _, req := range r.Wait(t, 3, 5*time.Second) {
		got[req.Header.Get("Webhook-Id")]++
	}
	r.NoMoreThan(t, 3, 200*time.Millisecond)
	for _, id := range want {
		if got[id] != 1 {
			t.Errorf("receiver got %v, want each of %v once", got, want)
			break
		}
	}

	// One audit record per request to the partner door, and no key or secret.
	n := 0
	for _, action := range []string{"inbound.event", "inbound.status", "inbound.retry"} {
		_, recs := e.h.Audit(t, e.h.AdminKey, url.Values{"action": {action}})
		n += len(recs)
	}
	if n != requests {
		t.Errorf("the audit log holds %d inbound records, want one per request: %d", n, requests)
	}
	noSecretsInAudit(t, e.h, e.key, p.APIKey, p.Secret, disabled.APIKey, disabled.Secret, walled.APIKey, walled.Secret,
		slow.APIKey, slow.Secret, other.APIKey, other.Secret, e.key, e.h.AdminKey)
}

// countAudit returns how many audit records of action name actor.
func countAudit(t *testing.T, h *hookdtest.Hookd, action, actor string) int {
	t.Helper()
	_, recs := h.Audit(t, h.AdminKey, url.Values{"action": {action}, "actor": {actor}})
	return len(recs)
}

func oneOf(s string, options ...string) bool {
	for _, o := range options {
		if s == o {
			return true
		}
	}
	return false
}

func timeString(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// TestInboundCheckOrder checks that the checks of SPEC §6 run in their order
// (size, key, IP, rate, timestamp, signature, body) and stop at the first
// failure: a request failing several answers the first.
func TestInboundCheckOrder(t *testing.T) {
	t.Parallel()
	const maxBody = 2048
	e := setup(t, func(c *app.Config) { c.MaxBodyBytes = maxBody })
	p := e.partner(t, nil)
	walled := e.partner(t, map[string]any{"ip_allowlist": []string{"10.0.0.0/8"}, "rate_limit": map[string]any{"per_second": 0.01, "burst": 1}})
	disabledWalled := e.partner(t, map[string]any{"ip_allowlist": []string{"10.0.0.0/8"}})
	e.h.Do(t, http.MethodPatch, "/api/partners/"+disabledWalled.ID, e.key, map[string]any{"enabled": false})
	slow := e.partner(t, map[string]any{"rate_limit": map[string]any{"per_second": 0.01, "burst": 1}})

	now := time.Now().Unix()
	good := hookdtest.PartnerEventBody(t, "o-1", "order.created", map[string]any{"n": 1})
	big := []byte(`{"id": "o-2", ` + strings.Repeat(" ", maxBody))
	badJSON := []byte(`{"id": `)
	badSig := func(h http.Header) http.Header {
		return with(h, "X-Webhook-Signature", "sha256="+strings.Repeat("0", 64))
	}

	// slow's only token goes to a request with a bad signature: the rate check
	// runs before the signature check, so it counts.
	if status, _, m := e.h.Inbound(t, badSig(signedAt(slow, now, good)), good); status != 401 || errorCode(m) != "invalid_signature" {
		t.Fatalf("bad signature = %d %v, want 401 invalid_signature", status, m)
	}
	cases := []struct {
		name   string
		header http.Header
		body   []byte
		status int
		code   string
	}{
		{"oversized body with no key", with(signedAt(p, now-1000, big), "X-Api-Key", ""), big, 413, "payload_too_large"},
		{"oversized body with a wrong key, stale and unsigned", with(with(signedAt(p, now-1000, big), "X-Api-Key", "pk_wrong"), "X-Webhook-Signature", ""), big, 413, "payload_too_large"},
		{"no key and a stale timestamp", with(signedAt(p, now-1000, good), "X-Api-Key", ""), good, 401, "missing_api_key"},
		{"wrong key and a stale timestamp", with(signedAt(p, now-1000, good), "X-Api-Key", "pk_wrong"), good, 401, "invalid_api_key"},
		{"wrong key, bad signature, invalid JSON", badSig(with(signedAt(p, now, badJSON), "X-Api-Key", "pk_wrong")), badJSON, 401, "invalid_api_key"},
		{"disabled and from a wrong address", signedAt(disabledWalled, now, good), good, 403, "partner_disabled"},
		{"wrong address, stale and a bad signature", badSig(signedAt(walled, now-1000, good)), good, 403, "ip_not_allowed"},
		{"wrong address again (no token taken)", signedAt(walled, now, good), good, 403, "ip_not_allowed"},
		{"rate limited with a bad signature", badSig(signedAt(slow, now, good)), good, 429, "rate_limited"},
		{"rate limited, stale and invalid JSON", signedAt(slow, now-1000, badJSON), badJSON, 429, "rate_limited"},
		{"stale with a bad signature", badSig(signedAt(p, now-1000, good)), good, 401, "stale_timestamp"},
		{"stale with text/plain", with(signedAt(p, now-1000, good), "Content-Type", "text/plain"), good, 401, "stale_timestamp"},
		{"bad signature and invalid JSON", badSig(signedAt(p, now, badJSON)), badJSON, 401, "invalid_signature"},
		{"bad signature and text/plain", with(badSig(signedAt(p, now, good)), "Content-Type", "text/plain"), good, 401, "invalid_signature"},
		{"text/plain and invalid JSON", with(signedAt(p, now, badJSON), "Content-Type", "text/plain"), badJSON, 415, "unsupported_media_type"},
	}
	for _, c := range cases {
		if status, _, m := e.h.Inbound(t, c.header, c.body); status != c.status || errorCode(m) != c.code {
			t.Errorf("%s = %d %v, want %d %s", c.name, status, m, c.status, c.code)
		}
	}
	// The IP check took none of walled's tokens: once its address is allowed,
	// its one token is there.
	if status, m := e.h.Do(t, http.MethodPatch, "/api/partners/"+walled.ID, e.key, map[string]any{"ip_allowlist": []string{"127.0.0.0/8"}}); status != 200 {
		t.Fatalf("PATCH ip_allowlist = %d %v", status, m)
	}
	if status, _, m := e.h.Inbound(t, signedAt(walled, time.Now().Unix(), good), good); status != http.StatusAccepted {
		t.Errorf("allowed at last = %d %v, want 202: requests refused by the IP check must not take rate-limit tokens", status, m)
	}
}

// TestInboundTimestampWindow replays captured requests after the ±300 s window
// and checks the window's edges, on an injected clock.
func TestInboundTimestampWindow(t *testing.T) {
	t.Parallel()
	var clock atomic.Int64 // unix nanoseconds
	clock.Store(time.Now().Truncate(time.Second).UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	e := setup(t, func(c *app.Config) { c.Now = now })
	p := e.partner(t, nil)

	captured := hookdtest.PartnerEventBody(t, "cap-1", "order.created", map[string]any{"n": 1})
	capturedHeader := p.Header(now(), captured)
	unsent := hookdtest.PartnerEventBody(t, "cap-2", "order.created", map[string]any{"n": 2})
	unsentHeader := p.Header(now(), unsent)
	if status, _, m := e.h.Inbound(t, capturedHeader, captured); status != http.StatusAccepted {
		t.Fatalf("captured request = %d %v, want 202", status, m)
	}
	if status, _, m := e.h.Inbound(t, capturedHeader, captured); status != http.StatusOK || m["duplicate"] != true {
		t.Errorf("replayed within the window = %d %v, want 200 duplicate", status, m)
	}

	clock.Add(int64(301 * time.Second))
	if status, _, m := e.h.Inbound(t, capturedHeader, captured); status != http.StatusUnauthorized || errorCode(m) != "stale_timestamp" {
		t.Errorf("captured request replayed 301 s later = %d %v, want 401 stale_timestamp", status, m)
	}
	if status, _, m := e.h.Inbound(t, unsentHeader, unsent); status != http.StatusUnauthorized || errorCode(m) != "stale_timestamp" {
		t.Errorf("request signed 301 s ago = %d %v, want 401 stale_timestamp", status, m)
	}
	checkAuditAt(t, "stale replay", newestAudit(t, e.h), auditWant{action: "inbound.event", result: "failure", reason: "stale_timestamp",
		actor: p.ID, org: e.org, clientIP: "127.0.0.1", status: 401}, now())
	if status, m := e.h.InboundStatus(t, p.APIKey, "cap-2"); status != http.StatusNotFound {
		t.Errorf("status of the stale cap-2 = %d %v, want 404", status, m)
	}

	for _, c := range []struct {
		offset int64 // seconds from the server clock
		ok     bool
	}{{-301, false}, {301, false}, {-3600, false}, {86400, false}, {-299, true}, {299, true}, {-300, true}, {300, true}, {0, true}} {
		id := "w" + strconv.FormatInt(c.offset+100000, 10)
		body := hookdtest.PartnerEventBody(t, id, "order.created", map[string]any{"offset": c.offset})
		status, _, m := e.h.Inbound(t, signedAt(p, now().Unix()+c.offset, body), body)
		switch {
		case c.ok && status != http.StatusAccepted:
			t.Errorf("signed correctly %+d s from the server clock = %d %v, want 202", c.offset, status, m)
		case !c.ok && (status != http.StatusUnauthorized || errorCode(m) != "stale_timestamp"):
			t.Errorf("signed correctly %+d s from the server clock = %d %v, want 401 stale_timestamp", c.offset, status, m)
		}
	}
}

// TestInboundSignatureVariants tampers with signed requests and tries the
// forms a partner's signature may take.
func TestInboundSignatureVariants(t *testing.T) {
	t.Parallel()
	e := setup(t)
	p := e.partner(t, nil)
	q := e.partner(t, nil)
	n := 0
	next := func() (int64, []byte) {
		n++
		return time.Now().Unix(), hookdtest.PartnerEventBody(t, "sig-"+strconv.Itoa(n), "order.created", map[string]any{"amount": 42, "n": n})
	}
	mac := func(secret string, ts int64, body []byte) string {
		return strings.TrimPrefix(hookdtest.PartnerSignature(secret, strconv.FormatInt(ts, 10), body), "sha256=")
	}
	cases := []struct {
		name  string
		build func() (http.Header, []byte)
		ok    bool
	}{
		{"correct", func() (http.Header, []byte) { ts, b := next(); return signedAt(p, ts, b), b }, true},
		{"one byte of the body changed after signing", func() (http.Header, []byte) {
			ts, b := next()
			h := signedAt(p, ts, b)
			return h, bytes.Replace(b, []byte(`"amount":42`), []byte(`"amount":43`), 1)
		}, false},
		{"a newline appended after signing", func() (http.Header, []byte) {
			ts, b := next()
			return signedAt(p, ts, b), append(b, '\n')
		}, false},
		{"signed for another timestamp", func() (http.Header, []byte) {
			ts, b := next()
			return with(signedAt(p, ts-1, b), "X-Timestamp", strconv.FormatInt(ts, 10)), b
		}, false},
		{"signed over the body alone", func() (http.Header, []byte) {
			ts, b := next()
			return with(signedAt(p, ts, b), "X-Webhook-Signature", "sha256="+hexHMAC(p.Secret, string(b))), b
		}, false},
		{"another partner's secret", func() (http.Header, []byte) {
			ts, b := next()
			return with(signedAt(p, ts, b), "X-Webhook-Signature", "sha256="+mac(q.Secret, ts, b)), b
		}, false},
		{"the API key as the HMAC key", func() (http.Header, []byte) {
			ts, b := next()
			return with(signedAt(p, ts, b), "X-Webhook-Signature", "sha256="+mac(p.APIKey, ts, b)), b
		}, false},
		{"the secret itself as the signature", func() (http.Header, []byte) {
			ts, b := next()
			return with(signedAt(p, ts, b), "X-Webhook-Signature", p.Secret), b
		}, false},
		{"no sha256= prefix", func() (http.Header, []byte) {
			ts, b := next()
			return with(signedAt(p, ts, b), "X-Webhook-Signature", mac(p.Secret, ts, b)), b
		}, false},
		{"sha1= prefix", func() (http.Header, []byte) {
			ts, b := next()
			return with(signedAt(p, ts, b), "X-Webhook-Signature", "sha1="+mac(p.Secret, ts, b)), b
		}, false},
		{"truncated hex", func() (http.Header, []byte) {
			ts, b := next()
			return with(signedAt(p, ts, b), "X-Webhook-Signature", "sha256="+mac(p.Secret, ts, b)[:63]), b
		}, false},
		{"empty value after sha256=", func() (http.Header, []byte) {
			ts, b := next()
			return with(signedAt(p, ts, b), "X-Webhook-Signature", "sha256="), b
		}, false},
		{"uppercase hex (accepted: the same MAC, docs/decisions.md)", func() (http.Header, []byte) {
			ts, b := next()
			return with(signedAt(p, ts, b), "X-Webhook-Signature", "sha256="+strings.ToUpper(mac(p.Secret, ts, b))), b
		}, true},
		{"a wrong and a right value, space-separated (accepted, docs/decisions.md)", func() (http.Header, []byte) {
			ts, b := next()
			return with(signedAt(p, ts, b), "X-Webhook-Signature", "sha256="+mac(q.Secret, ts, b)+" sha256="+mac(p.Secret, ts, b)), b
		}, true},
	}
	for _, c := range cases {
		h, b := c.build()
		status, _, m := e.h.Inbound(t, h, b)
		switch {
		case c.ok && status != http.StatusAccepted:
			t.Errorf("%s = %d %v, want 202", c.name, status, m)
		case !c.ok && (status != http.StatusUnauthorized || errorCode(m) != "invalid_signature"):
			t.Errorf("%s = %d %v, want 401 invalid_signature", c.name, status, m)
		}
	}
}

// TestInboundTimestampLeadingZero sends a correctly signed request whose
// x-timestamp has a leading zero. It is unix seconds within the window and the
// signature covers the header exactly as sent, so the answer must not blame
// the signature: 202, or 401 stale_timestamp if the form is refused
// (docs/decisions.md: a malformed x-timestamp answers stale_timestamp).
func TestInboundTimestampLeadingZero(t *testing.T) {
	t.Parallel()
	e := setup(t)
	p := e.partner(t, nil)
	body := hookdtest.PartnerEventBody(t, "zero-1", "order.created", map[string]any{})
	ts := "0" + strconv.FormatInt(time.Now().Unix(), 10)
	h := http.Header{"X-Api-Key": {p.APIKey}, "X-Timestamp": {ts}, "X-Webhook-Signature": {hookdtest.PartnerSignature(p.Secret, ts, body)},
		"Content-Type": {"application/json"}}
	status, _, m := e.h.Inbound(t, h, body)
	if status != http.StatusAccepted && (status != http.StatusUnauthorized || errorCode(m) != "stale_timestamp") {
		t.Errorf("x-timestamp %q, correctly signed = %d %v, want 202 or 401 stale_timestamp", ts, status, m)
	}
}

// TestInboundMediaTypesAndSize checks which Content-Types the partner door
// takes, and the body size limit's edge.
func TestInboundMediaTypesAndSize(t *testing.T) {
	t.Parallel()
	const maxBody = 1024
	e := setup(t, func(c *app.Config) { c.MaxBodyBytes = maxBody })
	p := e.partner(t, nil)
	n := 0
	send := func(contentType string, want int) {
		t.Helper()
		n++
		body := hookdtest.PartnerEventBody(t, "mt-"+strconv.Itoa(n), "order.created", map[string]any{})
		req, err := http.NewRequest(http.MethodPost, e.h.URL()+"/api/webhooks/events", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header = with(p.Header(time.Now(), body), "Content-Type", contentType)
		status, _, raw := e.h.Send(t, req)
		if status != want || (want == http.StatusUnsupportedMediaType && !bytes.Contains(raw, []byte(`"unsupported_media_type"`))) {
			t.Errorf("Content-Type %q = %d %s, want %d", contentType, status, raw, want)
		}
	}
	send("application/json", http.StatusAccepted)
	send("application/json; charset=utf-8", http.StatusAccepted)
	send("Application/JSON", http.StatusAccepted)
	send("application/vnd.partner.event+json", http.StatusAccepted)
	send("", http.StatusUnsupportedMediaType)
	send("text/json", http.StatusUnsupportedMediaType)
	send("application/jsonp", http.StatusUnsupportedMediaType)
	send("multipart/form-data; boundary=x", http.StatusUnsupportedMediaType)
	send("application/json; charset", http.StatusUnsupportedMediaType) // malformed parameter

	// A body of exactly the limit is taken; one byte more is not.
	sized := func(id string, size int) []byte {
		b := hookdtest.PartnerEventBody(t, id, "order.created", map[string]any{"pad": ""})
		return hookdtest.PartnerEventBody(t, id, "order.created", map[string]any{"pad": strings.Repeat("x", size-len(b))})
	}
	at, over := sized("edge-1", maxBody), sized("edge-2", maxBody+1)
	if len(at) != maxBody || len(over) != maxBody+1 {
		t.Fatalf("bodies of %d and %d bytes, want %d and %d", len(at), len(over), maxBody, maxBody+1)
	}
	if status, _, m := e.h.Inbound(t, p.Header(time.Now(), at), at); status != http.StatusAccepted {
		t.Errorf("body of exactly %d bytes = %d %v, want 202", maxBody, status, m)
	}
	if status, _, m := e.h.Inbound(t, p.Header(time.Now(), over), over); status != http.StatusRequestEntityTooLarge || errorCode(m) != "payload_too_large" {
		t.Errorf("body of %d bytes = %d %v, want 413 payload_too_large", maxBody+1, status, m)
	}

	// A correctly signed body that is not UTF-8, or nested too deep, is not
	// JSON: refused, and nothing is stored under its id.
	for name, body := range map[string][]byte{
		"not UTF-8": []byte("{\"id\":\"bad-utf8\",\"type\":\"order.created\",\"data\":{\"k\":\"\xff\"}}"),
		"too deep":  []byte(`{"id":"bad-deep","type":"order.created","data":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`),
	} {
		if len(body) > maxBody {
			e2 := setup(t, func(c *app.Config) { c.MaxBodyBytes = 1 << 20 })
			p2 := e2.partner(t, nil)
			if status, _, m := e2.h.Inbound(t, p2.Header(time.Now(), body), body); status != http.StatusBadRequest || errorCode(m) != "invalid_json" {
				t.Errorf("signed body %s = %d %v, want 400 invalid_json", name, status, m)
			}
			continue
		}
		if status, _, m := e.h.Inbound(t, p.Header(time.Now(), body), body); status != http.StatusBadRequest || errorCode(m) != "invalid_json" {
			t.Errorf("signed body %s = %d %v, want 400 invalid_json", name, status, m)
		}
	}
	if status, m := e.h.InboundStatus(t, p.APIKey, "bad-utf8"); status != http.StatusNotFound {
		t.Errorf("status of the refused body's event = %d %v, want 404 (nothing stored)", status, m)
	}
}
