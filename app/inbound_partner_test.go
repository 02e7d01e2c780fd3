package app_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookd/hookd/hookdtest"
)

// TestPartnerManagement creates, reads and validates partners with the admin
// and organization keys, and checks the audit records of those actions.
func TestPartnerManagement(t *testing.T) {
	t.Parallel()
	e := setup(t)
	status, key := e.h.Do(t, http.MethodPost, "/api/organizations/"+e.org+"/keys", e.h.AdminKey, nil)
	if status != http.StatusCreated {
		t.Fatalf("create key = %d %v", status, key)
	}
	keyID, orgKey := str(key, "id"), str(key, "key")
	orgB, keyB := e.h.CreateOrg(t)

	// Created with the organization key: 201 with the key and secret, once.
	status, m := e.h.Do(t, http.MethodPost, "/api/partners", orgKey, map[string]any{"name": "Acme ERP"})
	if status != http.StatusCreated || !strings.HasPrefix(str(m, "id"), "ptn_") || str(m, "organization") != e.org ||
		str(m, "name") != "Acme ERP" || m["enabled"] != true || str(m, "api_key") == "" || len(str(m, "secret")) < 32 ||
		num(obj(m, "rate_limit"), "per_second") != 10 || num(obj(m, "rate_limit"), "burst") != 20 {
		t.Fatalf("POST /api/partners = %d %s, want 201 with id, api_key, secret, enabled and the default rate limit 10/20", status, hookdtest.JSON(m))
	}
	p := hookdtest.Partner{ID: str(m, "id"), Org: e.org, APIKey: str(m, "api_key"), Secret: str(m, "secret")}
	got := e.h.Get(t, orgKey, "/api/partners/"+p.ID)
	for _, f := range []string{"api_key", "secret", "api_key_hash", "previous_secret"} {
		if _, ok := got[f]; ok {
			t.Errorf("GET /api/partners/%s shows %q: %v", p.ID, f, got)
		}
	}
	checkMgmt := func(what string, action, actorType, actor, target string, status int, reason string) {
		t.Helper()
		_, recs := e.h.Audit(t, e.h.AdminKey, url.Values{"action": {action}, "limit": {"1"}})
		if len(recs) != 1 {
			t.Fatalf("%s: no %s audit record", what, action)
		}
		rec := recs[0]
		result := "success"
		if reason != "" {
			result = "failure"
		}
		if str(rec, "actor_type") != actorType || (actor != "" && str(rec, "actor") != actor) || str(rec, "target") != target ||
			int(num(rec, "status")) != status || str(rec, "result") != result || str(rec, "reason") != reason ||
			str(rec, "client_ip") != "127.0.0.1" || str(rec, "organization") != e.org {
			t.Errorf("%s: audit record %s, want %s by %s %s on %s: %d %s %s", what, hookdtest.JSON(rec), action, actorType, actor,
				target, status, result, reason)
		}
	}
	checkMgmt("create with the organization key", "partner.create", "key", keyID, p.ID, 201, "")

	// Created with the admin key, naming the organization.
	status, m = e.h.Do(t, http.MethodPost, "/api/partners", e.h.AdminKey, map[string]any{"name": "by admin", "organization": e.org,
		"rate_limit": map[string]any{"per_second": 3}, "ip_allowlist": []string{"203.0.113.0/24", "2001:db8::/32"}})
	if status != http.StatusCreated || str(m, "organization") != e.org || num(obj(m, "rate_limit"), "burst") != 6 ||
		hookdtest.JSON(m["ip_allowlist"]) != hookdtest.JSON([]string{"203.0.113.0/24", "2001:db8::/32"}) {
		t.Errorf("POST /api/partners (admin) = %d %s, want 201 in %s, burst 6 (twice per_second), both prefixes", status, hookdtest.JSON(m), e.org)
	}
	checkMgmt("create with the admin key", "partner.create", "admin", "", str(m, "id"), 201, "")

	invalid := []struct {
		key   string
		body  map[string]any
		field string
	}{
		{e.h.AdminKey, map[string]any{"name": "no org"}, "organization"},
		{orgKey, map[string]any{}, "name"},
		{orgKey, map[string]any{"name": ""}, "name"},
		{orgKey, map[string]any{"name": 7}, "name"},
		{orgKey, map[string]any{"name": "x", "ip_allowlist": []string{"203.0.113.0/33"}}, "ip_allowlist"},
		{orgKey, map[string]any{"name": "x", "ip_allowlist": "203.0.113.0/24"}, "ip_allowlist"},
		{orgKey, map[string]any{"name": "x", "rate_limit": map[string]any{"per_second": 0}}, "rate_limit.per_second"},
		{orgKey, map[string]any{"name": "x", "rate_limit": map[string]any{"per_second": -1}}, "rate_limit.per_second"},
		{orgKey, map[string]any{"name": "x", "rate_limit": map[string]any{"per_second": 1, "burst": 0}}, "rate_limit.burst"},
		{orgKey, map[string]any{"name": "x", "api_key": "pk_mine"}, "api_key"},
	}
	for _, c := range invalid {
		status, m := e.h.Do(t, http.MethodPost, "/api/partners", c.key, c.body)
		if status != http.StatusBadRequest || errorCode(m) != "invalid_field" || !strings.Contains(errorField(m), c.field) {
			t.Errorf("POST /api/partners %v = %d %v, want 400 invalid_field naming %s", c.body, status, m, c.field)
		}
	}
	checkMgmt("invalid create", "partner.create", "key", keyID, "", 400, "invalid_field")
	if status, m := e.h.Do(t, http.MethodPost, "/api/partners", "", map[string]any{"name": "x"}); status != http.StatusUnauthorized {
		t.Errorf("POST /api/partners without a key = %d %v, want 401", status, m)
	}

	// Another organization sees nothing of p; p's credentials are not management keys.
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{http.MethodGet, "/api/partners/" + p.ID, nil},
		{http.MethodPatch, "/api/partners/" + p.ID, map[string]any{"enabled": false}},
		{http.MethodPost, "/api/partners/" + p.ID + "/secret/rotate", map[string]any{"grace_period": 0}},
		{http.MethodDelete, "/api/partners/" + p.ID, nil},
		{http.MethodPost, "/api/partners", map[string]any{"name": "x", "organization": e.org}},
	} {
		if status, m := e.h.Do(t, c.method, c.path, keyB, c.body); status != http.StatusNotFound {
			t.Errorf("organization %s's key: %s %s = %d %v, want 404", orgB, c.method, c.path, status, m)
		}
	}
	for _, cred := range []string{p.APIKey, p.Secret} {
		if status, m := e.h.Do(t, http.MethodGet, "/api/partners/"+p.ID, cred, nil); status != http.StatusUnauthorized {
			t.Errorf("a partner credential as a bearer key = %d %v, want 401", status, m)
		}
	}
	if status, _, m := e.h.SendPartnerEvent(t, p, "mgmt-1", "order.created", map[string]any{}); status != http.StatusAccepted {
		t.Errorf("the new partner's first event = %d %v, want 202", status, m)
	}
	noSecretsInAudit(t, e.h, orgKey, p.APIKey, p.Secret, str(m, "api_key"), str(m, "secret"), orgKey, keyB, e.h.AdminKey)
}

// TestPartnerSecretRotation rotates a partner's secret with and without a
// grace period.
func TestPartnerSecretRotation(t *testing.T) {
	t.Parallel()
	e := setup(t)
	p := e.partner(t, nil)
	n := 0
	send := func(secret string, want int) {
		t.Helper()
		n++
		q := p
		q.Secret = secret
		status, _, m := e.h.SendPartnerEvent(t, q, "rot-"+string(rune('a'+n)), "order.created", map[string]any{"n": n})
		if status != want || (want == http.StatusUnauthorized && errorCode(m) != "invalid_signature") {
			t.Errorf("request %d signed with %s… = %d %v, want %d", n, secret[:8], status, m, want)
		}
	}
	rotate := func(body map[string]any) map[string]any {
		t.Helper()
		status, m := e.h.Do(t, http.MethodPost, "/api/partners/"+p.ID+"/secret/rotate", e.key, body)
		if status != http.StatusOK || str(m, "secret") == "" {
			t.Fatalf("rotate %v = %d %v, want 200 with the new secret", body, status, m)
		}
		return m
	}

	first := p.Secret
	send(first, http.StatusAccepted)
	m := rotate(map[string]any{"grace_period": 60})
	second := str(m, "secret")
	exp, err := time.Parse(time.RFC3339, str(m, "previous_secret_expires_at"))
	if second == first || err != nil || exp.Sub(time.Now()) < 50*time.Second || exp.Sub(time.Now()) > 70*time.Second {
		t.Errorf("rotate with grace_period 60 = %v, want a new secret and previous_secret_expires_at in 60 s", m)
	}
	send(first, http.StatusAccepted)
	send(second, http.StatusAccepted)

	m = rotate(map[string]any{"grace_period": 0})
	third := str(m, "secret")
	if m["previous_secret_expires_at"] != nil {
		t.Errorf("rotate with grace_period 0 = %v, want no previous_secret_expires_at", m)
	}
	send(second, http.StatusUnauthorized)
	send(first, http.StatusUnauthorized)
	send(third, http.StatusAccepted)

	// A grace period runs out.
	m = rotate(map[string]any{"grace_period": 1})
	fourth := str(m, "secret")
	send(third, http.StatusAccepted)
	exp, _ = time.Parse(time.RFC3339Nano, str(m, "previous_secret_expires_at"))
	time.Sleep(time.Until(exp) + 50*time.Millisecond)
	send(third, http.StatusUnauthorized)
	send(fourth, http.StatusAccepted)

	// A secret of the partner's choosing.
	const mine = "partner-chosen-secret-0123456789abcdef"
	rotate(map[string]any{"secret": mine, "grace_period": 0})
	send(fourth, http.StatusUnauthorized)
	send(mine, http.StatusAccepted)
	if status, m := e.h.Do(t, http.MethodPost, "/api/partners/"+p.ID+"/secret/rotate", e.key, map[string]any{"secret": "short"}); status != http.StatusBadRequest ||
		!strings.Contains(errorField(m), "secret") {
		t.Errorf("rotate to a short secret = %d %v, want 400 invalid_field secret", status, m)
	}

	_, recs := e.h.Audit(t, e.key, url.Values{"action": {"partner.secret.rotate"}})
	results := []string{}
	for _, rec := range recs {
		if str(rec, "target") != p.ID {
			t.Errorf("rotate audit record %s, want target %s", hookdtest.JSON(rec), p.ID)
		}
		results = append(results, str(rec, "result"))
	}
	if !slices.Equal(results, []string{"failure", "success", "success", "success", "success"}) {
		t.Errorf("rotate audit results (newest first) %v, want a failure after 4 successes", results)
	}
	noSecretsInAudit(t, e.h, e.key, p.APIKey, first, second, third, fourth, mine)
}

// TestPartnerDisableAndDelete disables, re-enables and deletes a partner.
func TestPartnerDisableAndDelete(t *testing.T) {
	t.Parallel()
	e := setup(t)
	p := e.partner(t, nil)
	send := func(id string, want int, code string) {
		t.Helper()
		status, _, m := e.h.SendPartnerEvent(t, p, id, "order.created", map[string]any{})
		if status != want || errorCode(m) != code {
			t.Errorf("event %s = %d %v, want %d %q", id, status, m, want, code)
		}
	}
	patch := func(enabled bool) {
		t.Helper()
		if status, m := e.h.Do(t, http.MethodPatch, "/api/partners/"+p.ID, e.key, map[string]any{"enabled": enabled}); status != http.StatusOK || m["enabled"] != enabled {
			t.Fatalf("PATCH enabled=%v = %d %v", enabled, status, m)
		}
	}
	send("on-1", http.StatusAccepted, "")
	patch(false)
	send("off-1", http.StatusForbidden, "partner_disabled")
	checkAudit(t, "disabled", newestAudit(t, e.h), auditWant{action: "inbound.event", result: "failure", reason: "partner_disabled",
		actor: p.ID, org: e.org, clientIP: "127.0.0.1", status: 403})
	if status, m := e.h.InboundStatus(t, p.APIKey, "on-1"); status != http.StatusForbidden || errorCode(m) != "partner_disabled" {
		t.Errorf("status query while disabled = %d %v, want 403 partner_disabled", status, m)
	}
	patch(true)
	send("on-2", http.StatusAccepted, "")
	if status, m := e.h.InboundStatus(t, p.APIKey, "off-1"); status != http.StatusNotFound {
		t.Errorf("status of the event refused while disabled = %d %v, want 404", status, m)
	}

	if status, _, body := e.h.Raw(t, http.MethodDelete, "/api/partners/"+p.ID, e.key, nil, nil); status != http.StatusNoContent {
		t.Fatalf("DELETE /api/partners/%s = %d %s, want 204", p.ID, status, body)
	}
	send("gone-1", http.StatusUnauthorized, "invalid_api_key")
	checkAudit(t, "deleted", newestAudit(t, e.h), auditWant{action: "inbound.event", result: "failure", reason: "invalid_api_key",
		clientIP: "127.0.0.1", status: 401})
	if status, m := e.h.InboundStatus(t, p.APIKey, "on-1"); status != http.StatusUnauthorized || errorCode(m) != "invalid_api_key" {
		t.Errorf("status query after delete = %d %v, want 401 invalid_api_key", status, m)
	}
	if status, m := e.h.Do(t, http.MethodGet, "/api/partners/"+p.ID, e.key, nil); status != http.StatusNotFound {
		t.Errorf("GET a deleted partner = %d %v, want 404", status, m)
	}
	// Its accepted events stay with the organization.
	for _, id := range []string{"on-1", "on-2"} {
		e.h.Get(t, e.key, "/api/events/"+url.PathEscape(orgEventID(p, id)))
	}

	var actions []string
	_, recs := e.h.Audit(t, e.key, url.Values{"since": {time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)}})
	for _, rec := range recs {
		if strings.HasPrefix(str(rec, "action"), "partner.") {
			if str(rec, "target") != p.ID || str(rec, "result") != "success" {
				t.Errorf("audit record %s, want a success on %s", hookdtest.JSON(rec), p.ID)
			}
			actions = append(actions, str(rec, "action"))
		}
	}
	if want := []string{"partner.delete", "partner.update", "partner.update", "partner.create"}; !slices.Equal(actions, want) {
		t.Errorf("partner audit actions (newest first) %v, want %v", actions, want)
	}
}

// TestInboundStatusLifecycle follows an event through queued, failed, retry
// and processed, and checks the status and retry routes' answers.
func TestInboundStatusLifecycle(t *testing.T) {
	t.Parallel()
	e := setup(t)
	r := hookdtest.NewReceiver(t)
	r.Respond(hookdtest.FailFirst(2, http.StatusInternalServerError))
	ep := e.endpoint(t, r.URL(), map[string]any{"events": []string{"order.created"}, "retry": map[string]any{"max_attempts": 2, "initial_interval": 0.05, "max_interval": 0.1}})
	p := e.partner(t, nil)
	other := e.partner(t, nil)

	status, _, m := e.h.SendPartnerEvent(t, p, "life-1", "order.created", map[string]any{"amount": 5})
	if status != http.StatusAccepted || str(m, "status") != "queued" {
		t.Fatalf("event = %d %v, want 202 queued", status, m)
	}
	receivedAt := str(m, "receivedAt")
	var seen []string
	st := e.h.WaitInboundStatus(t, p.APIKey, "life-1", 5*time.Second, func(st map[string]any) bool {
		if s := str(st, "status"); len(seen) == 0 || seen[len(seen)-1] != s {
			seen = append(seen, s)
		}
		return st["status"] == "failed"
	})
	for _, s := range seen[:len(seen)-1] {
		if s != "queued" && s != "processing" {
			t.Errorf("statuses seen %v, want only queued and processing before failed", seen)
		}
	}
	ds := hookdtest.Items(map[string]any{"data": st["deliveries"]})
	if num(st, "attempts") != 2 || !strings.Contains(str(st, "error"), "500") || str(st, "processedAt") == "" ||
		str(st, "receivedAt") != receivedAt || str(st, "eventId") != "life-1" || str(st, "type") != "order.created" ||
		len(ds) != 1 || str(ds[0], "status") != "failed" || str(ds[0], "webhook") != str(ep, "id") || num(ds[0], "attempts") != 2 ||
		num(ds[0], "lastStatusCode") != 500 {
		t.Errorf("failed status = %s, want attempts 2, an error naming 500, processedAt, and its failed delivery", hookdtest.JSON(st))
	}
	// A duplicate answers the current status.
	if status, _, m := e.h.SendPartnerEvent(t, p, "life-1", "order.created", map[string]any{"amount": 5}); status != http.StatusOK ||
		m["duplicate"] != true || str(m, "status") != "failed" {
		t.Errorf("duplicate of a failed event = %d %v, want 200 failed duplicate", status, m)
	}
	// Another partner cannot see or retry it.
	if status, m := e.h.InboundStatus(t, other.APIKey, "life-1"); status != http.StatusNotFound {
		t.Errorf("another partner's status query = %d %v, want 404", status, m)
	}
	if status, m := e.h.InboundRetry(t, other.APIKey, "life-1"); status != http.StatusNotFound {
		t.Errorf("another partner's retry = %d %v, want 404", status, m)
	}

	// Retry: the receiver now answers 200.
	status, m = e.h.InboundRetry(t, p.APIKey, "life-1")
	if status != http.StatusAccepted || !oneOf(str(m, "status"), "queued", "processing", "processed") || str(m, "eventId") != "life-1" {
		t.Errorf("retry = %d %v, want 202 with the re-queued status", status, m)
	}
	checkAudit(t, "retry", newestAudit(t, e.h), auditWant{action: "inbound.retry", result: "success", actor: p.ID, org: e.org,
		target: orgEventID(p, "life-1"), clientIP: "127.0.0.1", status: 202})
	st = e.h.WaitInboundStatus(t, p.APIKey, "life-1", 5*time.Second, func(st map[string]any) bool { return st["status"] == "processed" })
	processed, err1 := time.Parse(time.RFC3339, str(st, "processedAt"))
	received, err2 := time.Parse(time.RFC3339, receivedAt)
	if err1 != nil || err2 != nil || processed.Before(received) || num(st, "attempts") != 3 || st["error"] != nil {
		t.Errorf("processed status = %s, want processedAt after receivedAt, 3 attempts and no error", hookdtest.JSON(st))
	}
	reqs := r.Wait(t, 3, 5*time.Second)
	for _, req := range r.NoMoreThan(t, 3, 200*time.Millisecond) {
		if id := req.Header.Get("Webhook-Id"); id != orgEventID(p, "life-1") {
			t.Errorf("receiver got webhook-id %q, want %q on every attempt", id, orgEventID(p, "life-1"))
		}
	}
	if ev := decodeEnvelope(t, reqs[2].Body); string(ev.Data) != `{"amount":5}` {
		t.Errorf("delivered data %s, want the partner's {\"amount\":5}", ev.Data)
	}
	if status, m := e.h.InboundRetry(t, p.APIKey, "life-1"); status != http.StatusConflict || errorCode(m) != "conflict" {
		t.Errorf("retry of a processed event = %d %v, want 409 conflict", status, m)
	}

	// No subscribed endpoint: processed at once.
	status, _, m = e.h.SendPartnerEvent(t, p, "lonely-1", "nobody.listens", map[string]any{})
	if status != http.StatusAccepted {
		t.Fatalf("event nobody listens to = %d %v", status, m)
	}
	status, st = e.h.InboundStatus(t, p.APIKey, "lonely-1")
	if ds := st["deliveries"].([]any); status != http.StatusOK || str(st, "status") != "processed" || str(st, "processedAt") != str(m, "receivedAt") ||
		num(st, "attempts") != 0 || st["error"] != nil || len(ds) != 0 {
		t.Errorf("status of an event nobody listens to = %d %s, want processed at once, no deliveries", status, hookdtest.JSON(st))
	}
	if status, m := e.h.InboundRetry(t, p.APIKey, "lonely-1"); status != http.StatusConflict {
		t.Errorf("retry of an event with no deliveries = %d %v, want 409", status, m)
	}
}

// TestInboundAuditAccess checks who reads which inbound audit records, and
// the filters.
func TestInboundAuditAccess(t *testing.T) {
	t.Parallel()
	a := setup(t)
	orgB, keyB := a.h.CreateOrg(t)
	pa := a.partner(t, nil)
	pb := a.h.CreatePartner(t, keyB, map[string]any{"name": "b", "rate_limit": fastPartner})
	start := time.Now().UTC().Truncate(time.Second)
	a.h.SendPartnerEvent(t, pa, "a-1", "order.created", map[string]any{})
	a.h.SendPartnerEvent(t, pb, "b-1", "order.created", map[string]any{})
	a.h.Inbound(t, http.Header{"X-Api-Key": {"pk_unknown"}}, []byte(`{}`))

	_, recsA := a.h.Audit(t, a.key, url.Values{"action": {"inbound.event"}})
	if len(recsA) != 1 || str(recsA[0], "actor") != pa.ID || str(recsA[0], "organization") != a.org {
		t.Errorf("organization A's inbound.event records %s, want only its partner's one", hookdtest.JSON(recsA))
	}
	_, recsB := a.h.Audit(t, keyB, nil)
	for _, rec := range recsB {
		if str(rec, "organization") != orgB {
			t.Errorf("organization B's key reads %s", hookdtest.JSON(rec))
		}
	}
	_, all := a.h.Audit(t, a.h.AdminKey, url.Values{"action": {"inbound.event"}})
	if len(all) != 3 || str(all[0], "reason") != "invalid_api_key" || all[0]["actor"] != nil || all[0]["organization"] != nil {
		t.Errorf("the admin's inbound.event records %s, want 3, newest the anonymous invalid_api_key", hookdtest.JSON(all))
	}
	_, byOrg := a.h.Audit(t, a.h.AdminKey, url.Values{"action": {"inbound.event"}, "organization": {orgB}})
	if len(byOrg) != 1 || str(byOrg[0], "actor") != pb.ID {
		t.Errorf("admin ?organization=%s: %s, want B's partner's record", orgB, hookdtest.JSON(byOrg))
	}
	_, byActor := a.h.Audit(t, a.h.AdminKey, url.Values{"actor": {pb.ID}})
	if len(byActor) != 1 || str(byActor[0], "action") != "inbound.event" {
		t.Errorf("admin ?actor=%s: %s, want its one record", pb.ID, hookdtest.JSON(byActor))
	}
	_, since := a.h.Audit(t, a.h.AdminKey, url.Values{"since": {start.Add(time.Hour).Format(time.RFC3339)}})
	if len(since) != 0 {
		t.Errorf("?since= an hour ahead lists %d records, want 0", len(since))
	}
	_, since = a.h.Audit(t, a.key, url.Values{"since": {start.Format(time.RFC3339)}, "action": {"inbound.event"}})
	if len(since) != 1 {
		t.Errorf("?since=%s lists %d inbound.event records, want 1", start.Format(time.RFC3339), len(since))
	}
	for _, key := range []string{"", pa.APIKey, "hk_wrong"} {
		if status, _, body := a.h.Raw(t, http.MethodGet, "/api/audit", key, nil, nil); status != http.StatusUnauthorized {
			t.Errorf("GET /api/audit with key %q = %d %s, want 401", key, status, body)
		}
	}
	if status, _, body := a.h.Raw(t, http.MethodGet, "/api/audit?since=yesterday", a.key, nil, nil); status != http.StatusBadRequest {
		t.Errorf("GET /api/audit?since=yesterday = %d %s, want 400", status, body)
	}
	noSecretsInAudit(t, a.h, a.key, pa.APIKey, pa.Secret, pb.APIKey, pb.Secret, keyB)
}
