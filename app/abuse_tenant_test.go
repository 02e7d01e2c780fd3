package app_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hookd/hookd/hookdtest"
)

// tenantCase is one request that organization A's key makes at organization
// B's objects, and the answer SPEC §2 requires.
type tenantCase struct {
	name   string
	method string
	path   string // with B's ids
	body   any
	// ghost is the same request naming objects that do not exist at all; a
	// 404 must read the same for both (existence does not leak). "" = no twin.
	ghostPath string
	ghostBody any
	status    int
	code      string
	// bOK, if set, is the status B's own key gets for the same request:
	// the control that proves the path names B's object.
	bOK int
}

// tenantWorld is two organizations, A and B, where B owns one of each kind of
// object and A tries to reach them.
type tenantWorld struct {
	a, b     env
	rb       *hookdtest.Receiver // B's receiver, answering 500
	epB      map[string]any      // B's endpoint
	dB       map[string]any      // a failed delivery of B's
	pB       hookdtest.Partner   // B's partner
	pA       hookdtest.Partner   // A's partner
	bKeyID   string              // a key of B's (its id)
	bKey     string              // that key
	bUsage   map[string]any      // B's usage before the attack
	bAudit   int                 // B's audit records before the attack
	bEventID string              // B's event id, also reused by A
}

func newTenantWorld(t *testing.T) tenantWorld {
	t.Helper()
	a := setup(t)
	orgB, keyB := a.h.CreateOrg(t)
	w := tenantWorld{a: a, b: env{h: a.h, org: orgB, key: keyB}, bEventID: "only-b"}
	w.rb = hookdtest.NewReceiver(t)
	w.rb.Respond(hookdtest.Always(http.StatusInternalServerError))
	a.endpoint(t, hookdtest.NewReceiver(t).URL(), nil)
	w.epB = w.b.endpoint(t, w.rb.URL(), map[string]any{"events": []string{"order.created"}, "retry": fastRetry(1)})
	ev := w.b.publish(t, w.bEventID, "order.created", map[string]any{"org": "b"})
	w.dB = a.h.DeliveryFor(t, keyB, str(ev, "id"), str(w.epB, "id"))
	w.dB = a.h.WaitDeliveryStatus(t, keyB, str(w.dB, "id"), "failed", 10*time.Second)
	w.pB = w.b.partner(t, nil)
	w.pA = a.partner(t, nil)
	if status, _, m := a.h.SendPartnerEvent(t, w.pB, "pb-1", "order.created", map[string]any{}); status != http.StatusAccepted {
		t.Fatalf("B's partner event = %d %v", status, m)
	}
	_, k := a.h.Do(t, http.MethodPost, "/api/organizations/"+orgB+"/keys", keyB, nil)
	if w.bKeyID, w.bKey = str(k, "id"), str(k, "key"); w.bKeyID == "" || w.bKey == "" {
		t.Fatalf("create a key for B: %v", k)
	}
	w.bUsage = a.h.Get(t, keyB, "/api/usage")
	_, recs := a.h.Audit(t, keyB, nil)
	w.bAudit = len(recs)
	return w
}

// TestAbuseCrossTenant sends organization A's key at every route of SPEC
// naming organization B's objects: each answers as SPEC §2 says (404
// not_found for another organization's object, 403 only for what an
// organization key may never do, lists and usage limited to A), the 404
// reads the same as for an object that does not exist, and B's objects
// are untouched.
func TestAbuseCrossTenant(t *testing.T) {
	t.Parallel()
	w := newTenantWorld(t)
	a, b := w.a, w.b
	epB, dB := "/api/webhooks/"+str(w.epB, "id"), "/api/deliveries/"+str(w.dB, "id")
	ghostEp, ghostD := "/api/webhooks/ep_01ZZZZZZZZZZZZZZZZZZZZZZZZ", "/api/deliveries/dlv_01ZZZZZZZZZZZZZZZZZZZZZZZZ"
	pB, ghostP := "/api/partners/"+w.pB.ID, "/api/partners/ptn_01ZZZZZZZZZZZZZZZZZZZZZZZZ"
	orgB, ghostOrg := "/api/organizations/"+b.org, "/api/organizations/org_ghost"
	since := time.Now().UTC().Add(-time.Hour).Format(time.RFC3339)
	ev := func(org string) map[string]any {
		return map[string]any{"type": "order.created", "data": map[string]any{}, "organization": org}
	}
	cases := []tenantCase{
		{name: "read B's organization", method: "GET", path: orgB, ghostPath: ghostOrg, status: 404, code: "not_found", bOK: 200},
		{name: "rename B's organization", method: "PATCH", path: orgB, body: map[string]any{"name": "pwned"},
			ghostPath: ghostOrg, status: 404, code: "not_found"},
		{name: "raise B's quota", method: "PATCH", path: orgB, body: map[string]any{"monthly_quota": 1},
			ghostPath: ghostOrg, status: 404, code: "not_found"},
		{name: "create a key for B", method: "POST", path: orgB + "/keys", ghostPath: ghostOrg + "/keys", status: 404, code: "not_found", bOK: 201},
		{name: "revoke B's key", method: "DELETE", path: orgB + "/keys/" + w.bKeyID, ghostPath: ghostOrg + "/keys/key_01ZZZZZZZZZZZZZZZZZZZZZZZZ",
			status: 404, code: "not_found"},
		{name: "revoke B's key through A's organization", method: "DELETE", path: "/api/organizations/" + a.org + "/keys/" + w.bKeyID,
			ghostPath: "/api/organizations/" + a.org + "/keys/key_01ZZZZZZZZZZZZZZZZZZZZZZZZ", status: 404, code: "not_found"},
		{name: "create an organization", method: "POST", path: "/api/organizations", body: map[string]any{"name": "mine"}, status: 403, code: "forbidden"},
		{name: "create an organization with B's id", method: "POST", path: "/api/organizations", body: map[string]any{"id": b.org, "name": "mine"}, status: 403, code: "forbidden"},
		{name: "create an endpoint in B", method: "POST", path: "/api/webhooks",
			body:      map[string]any{"url": "http://127.0.0.1:9/x", "events": []string{"*"}, "organization": b.org},
			ghostBody: map[string]any{"url": "http://127.0.0.1:9/x", "events": []string{"*"}, "organization": "org_ghost"},
			status:    404, code: "not_found"},
		{name: "read B's endpoint", method: "GET", path: epB, ghostPath: ghostEp, status: 404, code: "not_found", bOK: 200},
		{name: "repoint B's endpoint", method: "PATCH", path: epB, body: map[string]any{"url": "http://127.0.0.1:9/steal"},
			ghostPath: ghostEp, status: 404, code: "not_found"},
		{name: "disable B's endpoint", method: "PATCH", path: epB, body: map[string]any{"enabled": false}, ghostPath: ghostEp, status: 404, code: "not_found"},
		{name: "move B's endpoint to A", method: "PATCH", path: epB, body: map[string]any{"organization": a.org}, status: 400, code: "invalid_field"},
		{name: "delete B's endpoint", method: "DELETE", path: epB, ghostPath: ghostEp, status: 404, code: "not_found"},
		{name: "read B's endpoint secret", method: "GET", path: epB + "/secret", ghostPath: ghostEp + "/secret", status: 404, code: "not_found", bOK: 200},
		{name: "rotate B's endpoint secret", method: "POST", path: epB + "/secret/rotate", body: map[string]any{"grace_period": 0},
			ghostPath: ghostEp + "/secret/rotate", status: 404, code: "not_found"},
		{name: "set B's endpoint secret", method: "POST", path: epB + "/secret/rotate",
			body: map[string]any{"secret": "whsec_" + strings.Repeat("QUFB", 8), "grace_period": 0}, ghostPath: ghostEp + "/secret/rotate", status: 404, code: "not_found"},
		{name: "test-send to B's endpoint", method: "POST", path: epB + "/test", ghostPath: ghostEp + "/test", status: 404, code: "not_found"},
		{name: "replay B's endpoint", method: "POST", path: epB + "/replay", body: map[string]any{"since": since},
			ghostPath: ghostEp + "/replay", status: 404, code: "not_found"},
		{name: "publish into B", method: "POST", path: "/api/events", body: ev(b.org), ghostBody: ev("org_ghost"), status: 404, code: "not_found"},
		{name: "batch into B", method: "POST", path: "/api/events/batch",
			body:      map[string]any{"organization": b.org, "events": []any{map[string]any{"type": "order.created", "data": 1}}},
			ghostBody: map[string]any{"organization": "org_ghost", "events": []any{map[string]any{"type": "order.created", "data": 1}}},
			status:    404, code: "not_found"},
		{name: "batch with one event into B", method: "POST", path: "/api/events/batch",
			body:   map[string]any{"events": []any{map[string]any{"type": "order.created", "data": 1}, ev(b.org)}},
			status: 404, code: "not_found"},
		{name: "read B's event", method: "GET", path: "/api/events/" + w.bEventID, ghostPath: "/api/events/never-b", status: 404, code: "not_found", bOK: 200},
		{name: "read B's event naming B", method: "GET", path: "/api/events/" + w.bEventID + "?organization=" + b.org,
			ghostPath: "/api/events/never-b?organization=" + b.org, status: 404, code: "not_found"},
		{name: "read B's partner event", method: "GET", path: "/api/events/" + url.PathEscape(w.pB.ID+":pb-1"),
			ghostPath: "/api/events/" + url.PathEscape(w.pB.ID+":pb-0"), status: 404, code: "not_found", bOK: 200},
		{name: "read B's delivery", method: "GET", path: dB, ghostPath: ghostD, status: 404, code: "not_found", bOK: 200},
		{name: "retry B's delivery", method: "POST", path: dB + "/retry", ghostPath: ghostD + "/retry", status: 404, code: "not_found"},
		{name: "create a partner in B", method: "POST", path: "/api/partners", body: map[string]any{"name": "x", "organization": b.org},
			ghostBody: map[string]any{"name": "x", "organization": "org_ghost"}, status: 404, code: "not_found"},
		{name: "read B's partner", method: "GET", path: pB, ghostPath: ghostP, status: 404, code: "not_found", bOK: 200},
		{name: "open B's partner to every address", method: "PATCH", path: pB, body: map[string]any{"ip_allowlist": []string{}, "enabled": true},
			ghostPath: ghostP, status: 404, code: "not_found"},
		{name: "move B's partner to A", method: "PATCH", path: pB, body: map[string]any{"organization": a.org}, status: 400, code: "invalid_field"},
		{name: "rotate B's partner secret", method: "POST", path: pB + "/secret/rotate", body: map[string]any{"grace_period": 0},
			ghostPath: ghostP + "/secret/rotate", status: 404, code: "not_found"},
		{name: "delete B's partner", method: "DELETE", path: pB, ghostPath: ghostP, status: 404, code: "not_found"},
		{name: "B's usage", method: "GET", path: "/api/usage?organization=" + b.org, status: 200}, // A's own: checked below
	}
	for _, c := range cases {
		status, m := a.h.Do(t, c.method, c.path, a.key, c.body)
		if status != c.status || (c.code != "" && errorCode(m) != c.code) {
			t.Errorf("%s: A's key: %s %s = %d %v, want %d %s", c.name, c.method, c.path, status, m, c.status, c.code)
			continue
		}
		if c.ghostPath != "" || c.ghostBody != nil {
			gp, gb := c.ghostPath, c.ghostBody
			if gp == "" {
				gp = c.path
			}
			if gb == nil {
				gb = c.body
			}
			gs, gm := a.h.Do(t, c.method, gp, a.key, gb)
			if gs != status || errorCode(gm) != errorCode(m) || shape(str(obj(gm, "error"), "message")) != shape(str(obj(m, "error"), "message")) {
				t.Errorf("%s: B's object answers %d %v, a missing one %d %v: existence leaks", c.name, status, m, gs, gm)
			}
		}
		if c.bOK != 0 {
			if status, m := a.h.Do(t, c.method, c.path, b.key, c.body); status != c.bOK {
				t.Errorf("%s: control: B's key: %s %s = %d %v, want %d", c.name, c.method, c.path, status, m, c.bOK)
			}
		}
	}

	// Lists and usage show A alone, whatever they name.
	lists := []string{
		"/api/webhooks?organization=" + b.org,
		"/api/events?organization=" + b.org,
		"/api/events?type=order.created&organization=" + b.org,
		"/api/deliveries?webhook=" + str(w.epB, "id"),
		"/api/deliveries?event=" + w.bEventID,
		"/api/deliveries?organization=" + b.org + "&status=failed",
		"/api/audit?organization=" + b.org,
		"/api/audit?actor=" + w.bKeyID,
		"/api/audit?actor=" + w.pB.ID,
	}
	for _, path := range lists {
		for _, it := range hookdtest.Items(a.h.Get(t, a.key, path)) {
			if org := str(it, "organization"); org != a.org {
				t.Errorf("A's GET %s lists an object of %q: %s", path, org, hookdtest.JSON(it))
			}
		}
	}
	if u := a.h.Get(t, a.key, "/api/usage?organization="+b.org); str(u, "organization") != a.org {
		t.Errorf("A's GET /api/usage?organization=B = %v, want A's usage", u)
	}

	// Keys of B's, and of other kinds, are no bearer keys for A's routes.
	for _, bad := range []string{w.bKeyID, w.pB.APIKey, w.pB.Secret, str(w.epB, "secret")} {
		if status, m := a.h.Do(t, http.MethodGet, "/api/webhooks", bad, nil); status != 401 || errorCode(m) != "unauthorized" {
			t.Errorf("GET /api/webhooks with %.12s… as the key = %d %v, want 401 unauthorized", bad, status, m)
		}
	}

	// The partner door: A's partner cannot see or retry B's partner's events.
	for _, id := range []string{"pb-1", w.pB.ID + ":pb-1", w.bEventID} {
		if status, m := a.h.InboundStatus(t, w.pA.APIKey, id); status != 404 || errorCode(m) != "not_found" {
			t.Errorf("A's partner: status of %q = %d %v, want 404 not_found", id, status, m)
		}
		if status, m := a.h.InboundRetry(t, w.pA.APIKey, id); status != 404 || errorCode(m) != "not_found" {
			t.Errorf("A's partner: retry of %q = %d %v, want 404 not_found", id, status, m)
		}
	}
	// Ids are per organization (and per partner): reusing B's ids is no
	// duplicate, which would tell A that B used them.
	if status, m := a.h.Do(t, http.MethodPost, "/api/events", a.key, map[string]any{"id": w.bEventID, "type": "x.y", "data": 1}); status != 202 || m["duplicate"] != nil {
		t.Errorf("A publishing B's event id = %d %v, want 202 and no duplicate", status, m)
	}
	if status, _, m := a.h.SendPartnerEvent(t, w.pA, "pb-1", "order.created", map[string]any{}); status != 202 || m["duplicate"] != nil {
		t.Errorf("A's partner sending B's partner's event id = %d %v, want 202 and no duplicate", status, m)
	}

	// B is untouched.
	if status, m := a.h.Do(t, http.MethodGet, "/api/webhooks", w.bKey, nil); status != http.StatusOK {
		t.Errorf("B's key after the attack (revoked?) = %d %v, want 200", status, m)
	}
	if got := a.h.Get(t, b.key, epB); got["enabled"] != true || got["url"] != w.rb.URL() {
		t.Errorf("B's endpoint changed: %s", hookdtest.JSON(got))
	}
	if s := a.h.Get(t, b.key, epB+"/secret"); str(s, "secret") != str(w.epB, "secret") || s["previous_secret_expires_at"] != nil {
		t.Errorf("B's endpoint secret changed: %v", s)
	}
	if d := a.h.Get(t, b.key, dB); str(d, "status") != "failed" || num(d, "attempt_count") != 1 {
		t.Errorf("B's delivery was touched: %s", hookdtest.JSON(d))
	}
	if p := a.h.Get(t, b.key, pB); p["enabled"] != true || p["name"] != t.Name() {
		t.Errorf("B's partner changed: %s", hookdtest.JSON(p))
	}
	if status, _, m := a.h.SendPartnerEvent(t, w.pB, "pb-2", "order.created", map[string]any{}); status != 202 {
		t.Errorf("B's partner after the attack (secret rotated or deleted?) = %d %v, want 202", status, m)
	}
	if o := a.h.Get(t, b.key, orgB); o["name"] != t.Name() || num(o, "monthly_quota") != 0 {
		t.Errorf("B's organization changed: %v", o)
	}
	if u := a.h.Get(t, b.key, "/api/usage"); num(u, "usage") != num(w.bUsage, "usage")+1 { // pb-2
		t.Errorf("B's usage %v, was %v before the attack (+1 for pb-2)", u["usage"], w.bUsage["usage"])
	}
	if evs := hookdtest.Items(a.h.Get(t, b.key, "/api/events?type=order.created")); len(evs) != 3 { // only-b, pb-1, pb-2
		t.Errorf("B has %d events, want 3: %s", len(evs), hookdtest.JSON(evs))
	}
	w.rb.NoMoreThan(t, 3, 300*time.Millisecond) // only-b, pb-1, pb-2: no test send, replay or retry
	// A's failed attempts are in A's audit log, not in B's.
	_, recs := a.h.Audit(t, b.key, nil)
	for _, rec := range recs[:len(recs)-w.bAudit] {
		if str(rec, "organization") != b.org || str(rec, "actor") == a.h.AdminKey {
			t.Errorf("B's audit log shows a record of A's: %s", hookdtest.JSON(rec))
		}
	}
}

// shape returns an error message with the ids it quotes blanked, so that the
// answers about two different ids can be compared.
func shape(msg string) string {
	var b strings.Builder
	inQuote := false
	for _, r := range msg {
		switch {
		case r == '"':
			inQuote = !inQuote
			b.WriteRune(r)
		case !inQuote:
			b.WriteRune(r)
		}
	}
	return b.String()
}
