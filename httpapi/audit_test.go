package httpapi_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// auditRec is an audit record as GET /api/audit shows it (SPEC §7).
type auditRec struct {
	ID           string  `json:"id"`
	Organization *string `json:"organization"`
	Time         string  `json:"time"`
	ActorType    string  `json:"actor_type"`
	Actor        *string `json:"actor"`
	Action       string  `json:"action"`
	Target       *string `json:"target"`
	Result       string  `json:"result"`
	Reason       *string `json:"reason"`
	ClientIP     string  `json:"client_ip"`
	Status       int     `json:"status"`
}

func optStr(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func (r auditRec) String() string {
	return strings.Join([]string{r.ID, optStr(r.Organization), r.Time, r.ActorType, optStr(r.Actor), r.Action, optStr(r.Target),
		r.Result, optStr(r.Reason), r.ClientIP, http.StatusText(r.Status)}, " ")
}

// auditPages reads every record key may see with query, following next_cursor
// with pages of limit, newest first, and returns them with the raw bodies.
func (f *fixture) auditPages(key, query string, limit int) ([]auditRec, string) {
	f.t.Helper()
	var out []auditRec
	var raw strings.Builder
	cursor := ""
	for page := 0; ; page++ {
		if page == 1000 {
			f.t.Fatalf("GET /api/audit?%s: more than 1000 pages", query)
		}
		v, err := url.ParseQuery(query)
		if err != nil {
			f.t.Fatal(err)
		}
		v.Set("limit", strconv.Itoa(limit))
		if cursor != "" {
			v.Set("cursor", cursor)
		}
		var p struct {
			Data       []auditRec `json:"data"`
			NextCursor *string    `json:"next_cursor"`
		}
		r := f.mustDo("GET", "/api/audit?"+v.Encode(), key, "", http.StatusOK, &p)
		raw.Write(r.body)
		if p.Data == nil || !strings.Contains(string(r.body), `"next_cursor":`) {
			f.t.Fatalf("GET /api/audit?%s = %s, want {\"data\": [...], \"next_cursor\": …}", v.Encode(), r.body)
		}
		if p.NextCursor != nil && len(p.Data) != limit {
			f.t.Errorf("GET /api/audit?%s: %d records and a next_cursor, want %d", v.Encode(), len(p.Data), limit)
		}
		out = append(out, p.Data...)
		if p.NextCursor == nil {
			return out, raw.String()
		}
		if *p.NextCursor == "" {
			f.t.Fatalf("GET /api/audit?%s: next_cursor is \"\", want a cursor or null", v.Encode())
		}
		cursor = *p.NextCursor
	}
}

// auditAll is every record key may see with query, newest first.
func (f *fixture) auditAll(key, query string) []auditRec {
	f.t.Helper()
	recs, _ := f.auditPages(key, query, 500)
	return recs
}

// auditWant is the record a request must leave; "" is null.
type auditWant struct {
	action, actorType, actor, target, org, result, reason string
	status                                                int
}

// fromAnswer as auditWant.target is the "id" of the answer.
const fromAnswer = "<id of the answer>"

// auditLog checks, request by request, the records the API appends.
type auditLog struct {
	f    *fixture
	seen int // how many records (as the admin key sees them) were checked
}

func newAuditLog(f *fixture) *auditLog {
	return &auditLog{f: f, seen: len(f.auditAll(f.adminKey, ""))}
}

// step sends a request, checks its status and that it left exactly the record
// want (none if want is nil), and returns the answer and the record.
func (a *auditLog) step(t *testing.T, method, path, key, body string, status int, want *auditWant, headers ...string) (response, auditRec) {
	t.Helper()
	a.f.t = t
	before := time.Now().UTC().Truncate(time.Microsecond)
	r := a.f.do(method, path, key, body, headers...)
	after := time.Now().UTC()
	if r.status != status {
		t.Errorf("%s %s = %d %s, want %d", method, path, r.status, r.body, status)
	}
	all := a.f.auditAll(a.f.adminKey, "")
	fresh := all[:len(all)-a.seen]
	a.seen = len(all)
	what := method + " " + path
	if want == nil {
		if len(fresh) != 0 {
			t.Errorf("%s left %d audit records, want none: %v", what, len(fresh), fresh)
		}
		return r, auditRec{}
	}
	if len(fresh) != 1 {
		t.Errorf("%s left %d audit records, want exactly one %s: %v", what, len(fresh), want.action, fresh)
		if len(fresh) == 0 {
			return r, auditRec{}
		}
	}
	rec := fresh[len(fresh)-1]
	w := *want
	if w.target == fromAnswer {
		var ans struct{ ID string }
		json.Unmarshal(r.body, &ans)
		w.target = ans.ID
		if w.target == "" {
			t.Errorf("%s: no id in the answer %s", what, r.body)
		}
	}
	got := auditWant{action: rec.Action, actorType: rec.ActorType, actor: optStr(rec.Actor), target: optStr(rec.Target),
		org: optStr(rec.Organization), result: rec.Result, reason: optStr(rec.Reason), status: rec.Status}
	if got != w {
		t.Errorf("%s left the audit record\n%+v\nwant\n%+v", what, got, w)
	}
	if tm := mustRFC3339(t, "audit time", rec.Time); tm.Before(before.Add(-time.Millisecond)) || tm.After(after.Add(time.Millisecond)) {
		t.Errorf("%s: audit time %s, want between %s and %s", what, rec.Time, before.Format(time.RFC3339Nano), after.Format(time.RFC3339Nano))
	}
	checkAuditShape(t, rec)
	return r, rec
}

// checkAuditShape checks what every record must be, whatever its action.
func checkAuditShape(t *testing.T, rec auditRec) {
	t.Helper()
	if !strings.HasPrefix(rec.ID, "aud_") {
		t.Errorf("record id %q, want aud_…", rec.ID)
	}
	mustRFC3339(t, "audit time", rec.Time)
	if rec.ClientIP != "127.0.0.1" {
		t.Errorf("record %s: client_ip = %q, want 127.0.0.1", rec.ID, rec.ClientIP)
	}
	switch rec.ActorType {
	case "admin", "key":
		if !strings.HasPrefix(optStr(rec.Actor), "key_") {
			t.Errorf("record %s: actor = %q, want the key's id key_…", rec.ID, optStr(rec.Actor))
		}
	case "anonymous":
		if rec.Actor != nil {
			t.Errorf("record %s: anonymous actor = %q, want null", rec.ID, *rec.Actor)
		}
	}
	switch {
	case rec.Result == "success" && (rec.Reason != nil || rec.Status >= 400 || rec.Status < 200):
		t.Errorf("record %s: success with reason %q and status %d", rec.ID, optStr(rec.Reason), rec.Status)
	case rec.Result == "failure" && (rec.Reason == nil || rec.Status < 400):
		t.Errorf("record %s: failure with reason %q and status %d", rec.ID, optStr(rec.Reason), rec.Status)
	case rec.Result != "success" && rec.Result != "failure":
		t.Errorf("record %s: result %q, want success or failure", rec.ID, rec.Result)
	}
}

func auditOK(action, actorType, actor, target, org string, status int) *auditWant {
	return &auditWant{action: action, actorType: actorType, actor: actor, target: target, org: org, result: "success", status: status}
}

func auditFail(action, actorType, actor, target, org, reason string, status int) *auditWant {
	return &auditWant{action: action, actorType: actorType, actor: actor, target: target, org: org, result: "failure", reason: reason, status: status}
}

// fixtureKeyIDs returns the ids of the admin key and of acme's and other's keys,
// from the records setup left: two organization.create and two key.create by
// the admin key.
func fixtureKeyIDs(t *testing.T, f *fixture) (admin, acme, other string) {
	t.Helper()
	recs := f.auditAll(f.adminKey, "")
	if len(recs) != 4 {
		t.Fatalf("setup left %d audit records, want 4: %v", len(recs), recs)
	}
	var got []string
	for _, r := range slices.Backward(recs) {
		checkAuditShape(t, r)
		got = append(got, r.Action+" "+r.ActorType+" "+optStr(r.Target)+" "+optStr(r.Organization)+" "+r.Result)
	}
	want := []string{"organization.create admin acme acme success", "organization.create admin other other success",
		"key.create admin " + optStr(recs[1].Target) + " acme success", "key.create admin " + optStr(recs[0].Target) + " other success"}
	if !slices.Equal(got, want) {
		t.Fatalf("setup left the audit records %q, want %q", got, want)
	}
	return optStr(recs[0].Actor), optStr(recs[1].Target), optStr(recs[0].Target)
}

// TestAuditManagementActions: every management action leaves exactly one
// record, successful or not; reads and publishing leave none (SPEC §7,
// docs/decisions.md).
func TestAuditManagementActions(t *testing.T) {
	t.Parallel()
	f := setup(t, options{})
	adminID, acmeID, otherID := fixtureKeyIDs(t, f)
	a := newAuditLog(f)
	secrets := []string{f.adminKey, f.orgKey, f.otherKey}
	keep := func(r response, fields ...string) {
		var m map[string]any
		json.Unmarshal(r.body, &m)
		for _, k := range fields {
			if s, _ := m[k].(string); s != "" {
				secrets = append(secrets, s)
			} else {
				t.Errorf("no %q in %s", k, r.body)
			}
		}
	}
	id := func(r response) string {
		var v struct{ ID string }
		json.Unmarshal(r.body, &v)
		return v.ID
	}
	const wrongKey = "hk_wrong_0000000000000000000000000000000000000000000"
	secrets = append(secrets, wrongKey)
	hook := `{"url":"` + hookURL + `","events":["*"]}`

	// Organizations and keys.
	a.step(t, "POST", "/api/organizations", f.adminKey, `{"id":"third","name":"Third"}`, 201, auditOK("organization.create", "admin", adminID, "third", "third", 201))
	a.step(t, "POST", "/api/organizations", f.orgKey, `{"id":"fourth","name":"Fourth"}`, 403, auditFail("organization.create", "key", acmeID, "", orgID, "forbidden", 403))
	a.step(t, "POST", "/api/organizations", f.adminKey, `{"id":"acme","name":"Again"}`, 409, auditFail("organization.create", "admin", adminID, "", "", "conflict", 409))
	r, _ := a.step(t, "POST", "/api/organizations/acme/keys", f.orgKey, "", 201, auditOK("key.create", "key", acmeID, fromAnswer, orgID, 201))
	keep(r, "key")
	r, _ = a.step(t, "POST", "/api/organizations/other/keys", f.adminKey, "", 201, auditOK("key.create", "admin", adminID, fromAnswer, otherOrgID, 201))
	keep(r, "key")
	a.step(t, "POST", "/api/organizations/other/keys", f.orgKey, "", 404, auditFail("key.create", "key", acmeID, otherOrgID, orgID, "not_found", 404))
	r, _ = a.step(t, "POST", "/api/organizations/acme/keys", f.adminKey, "", 201, auditOK("key.create", "admin", adminID, fromAnswer, orgID, 201))
	keep(r, "key")
	spare := id(r)
	a.step(t, "DELETE", "/api/organizations/other/keys/"+spare, f.otherKey, "", 404, auditFail("key.delete", "key", otherID, spare, otherOrgID, "not_found", 404))
	a.step(t, "DELETE", "/api/organizations/acme/keys/"+spare, f.orgKey, "", 204, auditOK("key.delete", "key", acmeID, spare, orgID, 204))

	// Endpoints, with acme's key.
	r, _ = a.step(t, "POST", "/api/webhooks", f.orgKey, hook, 201, auditOK("endpoint.create", "key", acmeID, fromAnswer, orgID, 201))
	keep(r, "secret")
	ep := id(r)
	a.step(t, "POST", "/api/webhooks", f.orgKey, `{"events":["*"]}`, 400, auditFail("endpoint.create", "key", acmeID, "", orgID, "invalid_field", 400))
	a.step(t, "PATCH", "/api/webhooks/"+ep, f.orgKey, `{"description":"changed"}`, 200, auditOK("endpoint.update", "key", acmeID, ep, orgID, 200))
	a.step(t, "PATCH", "/api/webhooks/"+ep, f.orgKey, `{"description":`, 400, auditFail("endpoint.update", "key", acmeID, ep, orgID, "invalid_json", 400))
	a.step(t, "GET", "/api/webhooks/"+ep+"/secret", f.orgKey, "", 200, auditOK("endpoint.secret.read", "key", acmeID, ep, orgID, 200))
	r, _ = a.step(t, "POST", "/api/webhooks/"+ep+"/secret/rotate", f.orgKey, `{"grace_period":60}`, 200, auditOK("endpoint.secret.rotate", "key", acmeID, ep, orgID, 200))
	keep(r, "secret")
	given := sigSecret(40)
	secrets = append(secrets, given)
	a.step(t, "POST", "/api/webhooks/"+ep+"/secret/rotate", f.orgKey, `{"secret":"`+given+`"}`, 200, auditOK("endpoint.secret.rotate", "key", acmeID, ep, orgID, 200))
	a.step(t, "POST", "/api/webhooks/"+ep+"/test", f.orgKey, "", 200, auditOK("endpoint.test", "key", acmeID, ep, orgID, 200))
	a.step(t, "POST", "/api/webhooks/"+ep+"/replay", f.orgKey, `{"since":"2000-01-01T00:00:00Z"}`, 202, auditOK("endpoint.replay", "key", acmeID, ep, orgID, 202))

	// Publishing and reads leave nothing, whatever their outcome.
	r, _ = a.step(t, "POST", "/api/events", f.orgKey, `{"type":"invoice.paid","data":{"n":1}}`, 202, nil)
	evt := id(r)
	a.step(t, "POST", "/api/events/batch", f.orgKey, `{"events":[{"type":"invoice.paid","data":1}]}`, 202, nil)
	a.step(t, "POST", "/api/events", f.orgKey, `{"type":"invoice paid","data":1}`, 400, nil)
	r, _ = a.step(t, "GET", "/api/events/"+evt, f.orgKey, "", 200, nil)
	var ev struct{ Deliveries []struct{ ID string } }
	json.Unmarshal(r.body, &ev)
	if len(ev.Deliveries) != 1 {
		t.Fatalf("event %s has deliveries %s, want one", evt, r.body)
	}
	dlv := ev.Deliveries[0].ID
	for _, path := range []string{"/api/webhooks", "/api/webhooks/" + ep, "/api/events", "/api/deliveries", "/api/deliveries/" + dlv,
		"/api/organizations/acme", "/api/audit", "/api/health"} {
		a.step(t, "GET", path, f.orgKey, "", 200, nil)
	}
	a.step(t, "GET", "/api/webhooks/"+ep, f.otherKey, "", 404, nil)
	a.step(t, "GET", "/api/webhooks", "", "", 401, nil)
	a.step(t, "GET", "/api/audit", wrongKey, "", 401, nil)
	a.step(t, "POST", "/api/nope", f.orgKey, "{}", 404, nil)
	a.step(t, "PUT", "/api/webhooks/"+ep, f.orgKey, "{}", 405, nil)

	a.step(t, "POST", "/api/deliveries/"+dlv+"/retry", f.orgKey, "", 202, auditOK("delivery.retry", "key", acmeID, dlv, orgID, 202))
	a.step(t, "POST", "/api/deliveries/"+dlv+"/retry", f.otherKey, "", 404, auditFail("delivery.retry", "key", otherID, dlv, otherOrgID, "not_found", 404))

	// Partners.
	r, _ = a.step(t, "POST", "/api/partners", f.orgKey, `{"name":"P","ip_allowlist":["127.0.0.1"]}`, 201, auditOK("partner.create", "key", acmeID, fromAnswer, orgID, 201))
	keep(r, "api_key", "secret")
	ptn := id(r)
	a.step(t, "POST", "/api/partners", f.orgKey, `{"name":""}`, 400, auditFail("partner.create", "key", acmeID, "", orgID, "invalid_field", 400))
	a.step(t, "POST", "/api/partners", f.orgKey, `{"name":"P","organization":"other"}`, 404, auditFail("partner.create", "key", acmeID, "", orgID, "not_found", 404))
	a.step(t, "GET", "/api/partners/"+ptn, f.orgKey, "", 200, nil)
	a.step(t, "PATCH", "/api/partners/"+ptn, f.orgKey, `{"name":"Q"}`, 200, auditOK("partner.update", "key", acmeID, ptn, orgID, 200))
	a.step(t, "PATCH", "/api/partners/"+ptn, f.orgKey, `{"organization":"other"}`, 400, auditFail("partner.update", "key", acmeID, ptn, orgID, "invalid_field", 400))
	r, _ = a.step(t, "POST", "/api/partners/"+ptn+"/secret/rotate", f.orgKey, "", 200, auditOK("partner.secret.rotate", "key", acmeID, ptn, orgID, 200))
	keep(r, "secret")
	givenP := "given-partner-secret-0123456789"
	secrets = append(secrets, givenP)
	a.step(t, "POST", "/api/partners/"+ptn+"/secret/rotate", f.orgKey, `{"secret":"`+givenP+`","grace_period":0}`, 200, auditOK("partner.secret.rotate", "key", acmeID, ptn, orgID, 200))
	tooShort := "short-secret"
	secrets = append(secrets, tooShort)
	a.step(t, "POST", "/api/partners/"+ptn+"/secret/rotate", f.orgKey, `{"secret":"`+tooShort+`"}`, 400, auditFail("partner.secret.rotate", "key", acmeID, ptn, orgID, "invalid_field", 400))

	// Another organization's key acting on acme's objects: the record is the
	// acting key's, with its organization.
	a.step(t, "GET", "/api/partners/"+ptn, f.otherKey, "", 404, nil)
	a.step(t, "PATCH", "/api/partners/"+ptn, f.otherKey, `{"name":"stolen"}`, 404, auditFail("partner.update", "key", otherID, ptn, otherOrgID, "not_found", 404))
	a.step(t, "POST", "/api/partners/"+ptn+"/secret/rotate", f.otherKey, "", 404, auditFail("partner.secret.rotate", "key", otherID, ptn, otherOrgID, "not_found", 404))
	a.step(t, "DELETE", "/api/partners/"+ptn, f.otherKey, "", 404, auditFail("partner.delete", "key", otherID, ptn, otherOrgID, "not_found", 404))
	a.step(t, "DELETE", "/api/webhooks/"+ep, f.otherKey, "", 404, auditFail("endpoint.delete", "key", otherID, ep, otherOrgID, "not_found", 404))
	a.step(t, "GET", "/api/webhooks/"+ep+"/secret", f.otherKey, "", 404, auditFail("endpoint.secret.read", "key", otherID, ep, otherOrgID, "not_found", 404))

	// No key, or a wrong one: anonymous, and the key is never recorded.
	a.step(t, "POST", "/api/partners", wrongKey, `{"name":"P"}`, 401, auditFail("partner.create", "anonymous", "", "", "", "unauthorized", 401))
	a.step(t, "POST", "/api/partners", "", `{"name":"P"}`, 401, auditFail("partner.create", "anonymous", "", "", "", "unauthorized", 401))
	a.step(t, "GET", "/api/webhooks/"+ep+"/secret", wrongKey, "", 401, auditFail("endpoint.secret.read", "anonymous", "", ep, "", "unauthorized", 401))
	a.step(t, "POST", "/api/webhooks/"+ep+"/secret/rotate", "", "", 401, auditFail("endpoint.secret.rotate", "anonymous", "", ep, "", "unauthorized", 401))
	a.step(t, "DELETE", "/api/partners/"+ptn, "", "", 401, auditFail("partner.delete", "anonymous", "", ptn, "", "unauthorized", 401),
		"Authorization: Basic "+base64.StdEncoding.EncodeToString([]byte("u:"+f.orgKey)))
	a.step(t, "POST", "/api/organizations", "", `{"id":"x","name":"x"}`, 401, auditFail("organization.create", "anonymous", "", "", "", "unauthorized", 401))

	a.step(t, "DELETE", "/api/partners/"+ptn, f.orgKey, "", 204, auditOK("partner.delete", "key", acmeID, ptn, orgID, 204))
	a.step(t, "DELETE", "/api/partners/"+ptn, f.orgKey, "", 404, auditFail("partner.delete", "key", acmeID, ptn, orgID, "not_found", 404))
	a.step(t, "DELETE", "/api/webhooks/"+ep, f.orgKey, "", 204, auditOK("endpoint.delete", "key", acmeID, ep, orgID, 204))

	// The admin key acting on acme's objects: the records are acme's.
	r, _ = a.step(t, "POST", "/api/webhooks", f.adminKey, endpointBody(map[string]any{"events": []string{"*"}}), 201, auditOK("endpoint.create", "admin", adminID, fromAnswer, orgID, 201))
	keep(r, "secret")
	ep2 := id(r)
	a.step(t, "POST", "/api/webhooks", f.adminKey, endpointBody(map[string]any{"organization": omit}), 400, auditFail("endpoint.create", "admin", adminID, "", "", "invalid_field", 400))
	a.step(t, "PATCH", "/api/webhooks/"+ep2, f.adminKey, `{"description":"by admin"}`, 200, auditOK("endpoint.update", "admin", adminID, ep2, orgID, 200))
	a.step(t, "GET", "/api/webhooks/"+ep2+"/secret", f.adminKey, "", 200, auditOK("endpoint.secret.read", "admin", adminID, ep2, orgID, 200))
	r, _ = a.step(t, "POST", "/api/webhooks/"+ep2+"/secret/rotate", f.adminKey, `{"grace_period":0}`, 200, auditOK("endpoint.secret.rotate", "admin", adminID, ep2, orgID, 200))
	keep(r, "secret")
	a.step(t, "POST", "/api/webhooks/"+ep2+"/test", f.adminKey, "", 200, auditOK("endpoint.test", "admin", adminID, ep2, orgID, 200))
	a.step(t, "POST", "/api/webhooks/"+ep2+"/replay", f.adminKey, `{"since":"2000-01-01T00:00:00Z"}`, 202, auditOK("endpoint.replay", "admin", adminID, ep2, orgID, 202))
	r, _ = a.step(t, "POST", "/api/events", f.adminKey, eventBody(nil), 202, nil)
	json.Unmarshal(a.f.mustDo("GET", "/api/events/"+id(r)+"?organization=acme", f.adminKey, "", 200, nil).body, &ev)
	if len(ev.Deliveries) != 1 {
		t.Fatalf("admin's event has deliveries %+v, want one", ev.Deliveries)
	}
	a.step(t, "POST", "/api/deliveries/"+ev.Deliveries[0].ID+"/retry", f.adminKey, "", 202, auditOK("delivery.retry", "admin", adminID, ev.Deliveries[0].ID, orgID, 202))
	r, _ = a.step(t, "POST", "/api/partners", f.adminKey, partnerBody(nil), 201, auditOK("partner.create", "admin", adminID, fromAnswer, orgID, 201))
	keep(r, "api_key", "secret")
	ptn2 := id(r)
	a.step(t, "PATCH", "/api/partners/"+ptn2, f.adminKey, `{"enabled":false}`, 200, auditOK("partner.update", "admin", adminID, ptn2, orgID, 200))
	r, _ = a.step(t, "POST", "/api/partners/"+ptn2+"/secret/rotate", f.adminKey, `{"grace_period":10}`, 200, auditOK("partner.secret.rotate", "admin", adminID, ptn2, orgID, 200))
	keep(r, "secret")
	a.step(t, "DELETE", "/api/partners/"+ptn2, f.adminKey, "", 204, auditOK("partner.delete", "admin", adminID, ptn2, orgID, 204))
	a.step(t, "DELETE", "/api/webhooks/"+ep2, f.adminKey, "", 204, auditOK("endpoint.delete", "admin", adminID, ep2, orgID, 204))
	r, _ = a.step(t, "POST", "/api/organizations/acme/keys", f.adminKey, "", 201, auditOK("key.create", "admin", adminID, fromAnswer, orgID, 201))
	keep(r, "key")
	f.t = t

	all, adminRaw := f.auditPages(f.adminKey, "", 500)
	for _, rec := range all {
		checkAuditShape(t, rec)
	}

	// Every action of docs/decisions.md was recorded.
	var actions []string
	for _, rec := range all {
		if !slices.Contains(actions, rec.Action) {
			actions = append(actions, rec.Action)
		}
	}
	for _, want := range []string{"organization.create", "key.create", "endpoint.create", "endpoint.update", "endpoint.delete",
		"endpoint.secret.read", "endpoint.secret.rotate", "endpoint.test", "endpoint.replay", "delivery.retry",
		"partner.create", "partner.update", "partner.delete", "partner.secret.rotate"} {
		if !slices.Contains(actions, want) {
			t.Errorf("no %s record in the log (actions: %v)", want, actions)
		}
	}

	// Each organization key sees exactly its organization's records, the admin's
	// among them, whatever ?organization= says; the admin key sees everything.
	ids := func(recs []auditRec) []string {
		var out []string
		for _, r := range recs {
			out = append(out, r.ID)
		}
		return out
	}
	of := func(org string) []string {
		var out []string
		for _, r := range all {
			if optStr(r.Organization) == org {
				out = append(out, r.ID)
			}
		}
		return out
	}
	acmeAll, acmeRaw := f.auditPages(f.orgKey, "", 500)
	otherAll, otherRaw := f.auditPages(f.otherKey, "", 500)
	for _, c := range []struct {
		name string
		got  []string
		want []string
	}{
		{"acme's key", ids(acmeAll), of(orgID)},
		{"acme's key with ?organization=other", ids(f.auditAll(f.orgKey, "organization=other")), of(orgID)},
		{"other's key", ids(otherAll), of(otherOrgID)},
		{"the admin key with ?organization=acme", ids(f.auditAll(f.adminKey, "organization=acme")), of(orgID)},
		{"the admin key with ?organization=other", ids(f.auditAll(f.adminKey, "organization=other")), of(otherOrgID)},
		{"the admin key with ?organization=nope", ids(f.auditAll(f.adminKey, "organization=nope")), nil},
	} {
		if !slices.Equal(c.got, c.want) {
			t.Errorf("%s sees records %v, want %v", c.name, c.got, c.want)
		}
	}
	adminOnAcme := 0
	for _, r := range acmeAll {
		if r.ActorType == "admin" {
			adminOnAcme++
		}
	}
	if adminOnAcme < 12 {
		t.Errorf("acme's key sees %d records of admin actions on its objects, want at least 12", adminOnAcme)
	}

	// No key or secret, of any kind, anywhere in the log.
	for _, s := range secrets {
		for _, body := range []struct{ who, raw string }{{"admin", adminRaw}, {"acme", acmeRaw}, {"other", otherRaw}} {
			if strings.Contains(body.raw, s) {
				t.Errorf("GET /api/audit (%s key) shows the secret %q", body.who, s)
			}
		}
	}
	if len(secrets) < 20 {
		t.Errorf("only %d secrets were searched for", len(secrets))
	}
}

// TestAuditQuery covers GET /api/audit's filters, order and pages, and which
// records each key sees (SPEC §1, §7).
func TestAuditQuery(t *testing.T) {
	t.Parallel()
	f := setup(t, options{})
	adminID, acmeID, otherID := fixtureKeyIDs(t, f)
	ep := f.createEndpoint(`{"url":"` + hookURL + `","events":["*"]}`)
	var otherEp struct{ ID string }
	f.mustDo("POST", "/api/webhooks", f.otherKey, `{"url":"`+hookURL+`","events":["*"]}`, http.StatusCreated, &otherEp)
	f.mustDo("PATCH", "/api/webhooks/"+ep, f.orgKey, `{"description":"x"}`, http.StatusOK, nil)
	f.mustDo("POST", "/api/partners", f.adminKey, partnerBody(nil), http.StatusCreated, nil)
	f.mustDo("POST", "/api/partners", f.otherKey, `{"name":"O"}`, http.StatusCreated, nil)
	f.mustDo("POST", "/api/webhooks/"+ep+"/secret/rotate", f.orgKey, "", http.StatusOK, nil)
	f.mustDo("POST", "/api/webhooks", f.orgKey, `{}`, http.StatusBadRequest, nil)
	f.mustDo("POST", "/api/partners", "hk_wrong", `{"name":"x"}`, http.StatusUnauthorized, nil)
	performed := []string{ // newest first
		"partner.create unauthorized", "endpoint.create invalid_field", "endpoint.secret.rotate ", "partner.create ", "partner.create ",
		"endpoint.update ", "endpoint.create ", "endpoint.create ", "key.create ", "key.create ", "organization.create ", "organization.create ",
	}

	all := f.auditAll(f.adminKey, "")
	var got []string
	for _, r := range all {
		got = append(got, r.Action+" "+optStr(r.Reason))
	}
	if !slices.Equal(got, performed) {
		t.Fatalf("the log (newest first) is %q, want %q", got, performed)
	}
	for i := 1; i < len(all); i++ {
		if mustRFC3339(t, "time", all[i].Time).After(mustRFC3339(t, "time", all[i-1].Time)) {
			t.Errorf("record %d (%s) is newer than record %d (%s): not newest first", i, all[i].Time, i-1, all[i-1].Time)
		}
	}
	filter := func(keep func(auditRec) bool) []string {
		var out []string
		for _, r := range all {
			if keep(r) {
				out = append(out, r.ID)
			}
		}
		return out
	}
	ids := func(recs []auditRec) []string {
		var out []string
		for _, r := range recs {
			out = append(out, r.ID)
		}
		return out
	}

	// Pages of every size give every record once, in order.
	for _, limit := range []int{1, 2, 5, 11, 12, 13} {
		recs, _ := f.auditPages(f.adminKey, "", limit)
		if !slices.Equal(ids(recs), ids(all)) {
			t.Errorf("pages of %d give %v, want %v", limit, ids(recs), ids(all))
		}
	}
	acmeWant := filter(func(r auditRec) bool { return optStr(r.Organization) == orgID })
	if recs, _ := f.auditPages(f.orgKey, "", 2); !slices.Equal(ids(recs), acmeWant) {
		t.Errorf("acme's pages of 2 give %v, want %v", ids(recs), acmeWant)
	}
	var p page
	f.mustDo("GET", "/api/audit", f.adminKey, "", http.StatusOK, &p)
	if len(p.Data) != len(all) || p.NextCursor != nil {
		t.Errorf("GET /api/audit without limit: %d records, next_cursor %v; want %d and null", len(p.Data), p.NextCursor, len(all))
	}

	// Filters, alone and together, with each key.
	mid := mustRFC3339(t, "time", all[len(all)/2].Time)
	sinceMid := func(r auditRec) bool { return !mustRFC3339(t, "time", r.Time).Before(mid) }
	cases := []struct {
		name, key, query string
		want             []string
	}{
		{"action", f.adminKey, "action=partner.create", filter(func(r auditRec) bool { return r.Action == "partner.create" })},
		{"action_unknown", f.adminKey, "action=partner.nope", nil},
		{"action_prefix_is_not_a_match", f.adminKey, "action=partner", nil},
		{"actor_admin", f.adminKey, "actor=" + adminID, filter(func(r auditRec) bool { return optStr(r.Actor) == adminID })},
		{"actor_acme", f.adminKey, "actor=" + acmeID, filter(func(r auditRec) bool { return optStr(r.Actor) == acmeID })},
		{"actor_unknown", f.adminKey, "actor=key_nope", nil},
		{"actor_and_action", f.adminKey, "actor=" + acmeID + "&action=endpoint.create",
			filter(func(r auditRec) bool { return optStr(r.Actor) == acmeID && r.Action == "endpoint.create" })},
		{"since", f.adminKey, "since=" + url.QueryEscape(mid.Format(time.RFC3339Nano)), filter(sinceMid)},
		{"since_offset", f.adminKey, "since=" + url.QueryEscape(mid.In(time.FixedZone("", 5*3600+1800)).Format(time.RFC3339Nano)), filter(sinceMid)},
		{"since_past", f.adminKey, "since=2000-01-01T00:00:00Z", ids(all)},
		{"since_future", f.adminKey, "since=2999-01-01T00:00:00Z", nil},
		{"since_and_action", f.adminKey, "since=" + url.QueryEscape(mid.Format(time.RFC3339Nano)) + "&action=partner.create",
			filter(func(r auditRec) bool { return sinceMid(r) && r.Action == "partner.create" })},
		{"acme_action", f.orgKey, "action=endpoint.create",
			filter(func(r auditRec) bool { return optStr(r.Organization) == orgID && r.Action == "endpoint.create" })},
		{"acme_actor_admin", f.orgKey, "actor=" + adminID,
			filter(func(r auditRec) bool { return optStr(r.Organization) == orgID && optStr(r.Actor) == adminID })},
		{"acme_actor_other", f.orgKey, "actor=" + otherID, nil},
		{"acme_since", f.orgKey, "since=" + url.QueryEscape(mid.Format(time.RFC3339Nano)),
			filter(func(r auditRec) bool { return optStr(r.Organization) == orgID && sinceMid(r) })},
		{"other_all", f.otherKey, "", filter(func(r auditRec) bool { return optStr(r.Organization) == otherOrgID })},
		{"other_naming_acme", f.otherKey, "organization=acme", filter(func(r auditRec) bool { return optStr(r.Organization) == otherOrgID })},
		{"admin_organization_and_action", f.adminKey, "organization=other&action=partner.create",
			filter(func(r auditRec) bool { return optStr(r.Organization) == otherOrgID && r.Action == "partner.create" })},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f.t = t
			if got := ids(f.auditAll(c.key, c.query)); !slices.Equal(got, c.want) {
				t.Errorf("GET /api/audit?%s = %v, want %v", c.query, got, c.want)
			}
		})
	}
	f.t = t
	if n := len(filter(func(r auditRec) bool { return optStr(r.Organization) == orgID && r.ActorType == "admin" })); n == 0 {
		t.Error("no admin action on acme's objects in the log; the scope cases prove nothing")
	}
	// Reading the log changed nothing in it.
	if now := f.auditAll(f.adminKey, ""); !slices.Equal(ids(now), ids(all)) {
		t.Errorf("reading the log changed it: %v, was %v", ids(now), ids(all))
	}
}

// TestAuditRejects: bad parameters are 400 naming them; a missing or wrong key
// is 401 (SPEC §1, §2).
func TestAuditRejects(t *testing.T) {
	t.Parallel()
	var cases []badRequest
	for _, key := range []int{asAdmin, asOrg} {
		for _, q := range []struct{ name, query, field string }{
			{"since_word", "since=yesterday", "since"},
			{"since_date_only", "since=2026-01-01", "since"},
			{"since_unix", "since=1767225600", "since"},
			{"since_no_zone", "since=2026-01-01T00:00:00", "since"},
			{"limit_zero", "limit=0", "limit"},
			{"limit_501", "limit=501", "limit"},
			{"limit_abc", "limit=abc", "limit"},
			{"cursor_garbage", "cursor=!!!", "cursor"},
			{"cursor_zero", "cursor=" + base64.RawURLEncoding.EncodeToString([]byte("0")), "cursor"},
		} {
			cases = append(cases, badRequest{name: q.name + "/key" + strconv.Itoa(key), method: "GET", path: "/api/audit?" + q.query, key: key,
				status: 400, code: "invalid_field", field: q.field})
		}
	}
	cases = append(cases,
		badRequest{name: "no_key", method: "GET", path: "/api/audit", key: asNone, status: 401, code: "unauthorized"},
		badRequest{name: "wrong_key", method: "GET", path: "/api/audit", key: asNone, headers: []string{"Authorization: Bearer hk_wrong"}, status: 401, code: "unauthorized"},
		badRequest{name: "post", method: "POST", path: "/api/audit", body: "{}", status: 405, code: "method_not_allowed", allow: "GET"},
		badRequest{name: "delete", method: "DELETE", path: "/api/audit", status: 405, code: "method_not_allowed", allow: "GET"},
	)
	runBadRequests(t, cases)
}
