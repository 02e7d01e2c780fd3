package httpapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestAcceptedAtTheLimits: values at the edge of every limit are accepted.
func TestAcceptedAtTheLimits(t *testing.T) {
	t.Parallel()
	f := setup(t, options{})
	cases := []struct {
		name, method, path, body string
		headers                  []string
		want                     int
	}{
		{"event_id_128", "POST", "/api/events", eventBody(map[string]any{"id": strings.Repeat("a", 128)}), nil, 202},
		{"event_id_charset", "POST", "/api/events", eventBody(map[string]any{"id": "AZaz09_-:x"}), nil, 202},
		{"event_type_128", "POST", "/api/events", eventBody(map[string]any{"type": strings.Repeat("t", 128)}), nil, 202},
		{"event_type_words", "POST", "/api/events", eventBody(map[string]any{"type": "a.B_c.d-e.f:g"}), nil, 202},
		{"event_data_scalar", "POST", "/api/events", eventBody(map[string]any{"data": 0}), nil, 202},
		{"idempotency_key_255", "POST", "/api/events", eventBody(nil), []string{"Idempotency-Key: " + strings.Repeat("k", 255)}, 202},
		{"batch_1000", "POST", "/api/events/batch", batchBody(1000), nil, 202},
		{"batch_idempotency_key_255", "POST", "/api/events/batch", batchBody(2), []string{"Idempotency-Key: " + strings.Repeat("b", 255)}, 202},
		{"endpoint_limits", "POST", "/api/webhooks", endpointBody(map[string]any{
			"events": manyPatterns(100), "headers": manyHeaders(32), "description": strings.Repeat("d", 1024),
			"rate_limit_per_s": 100000, "max_in_flight": 1000,
			"retry": map[string]any{"max_attempts": 100, "initial_interval": 604800, "max_interval": 604800},
		}), nil, 201},
		{"endpoint_retry_fractions", "POST", "/api/webhooks", endpointBody(map[string]any{
			"retry": map[string]any{"max_attempts": 1, "initial_interval": 0.25, "max_interval": 0.5}}), nil, 201},
		{"standard_secret_24_bytes", "POST", "/api/webhooks", endpointBody(map[string]any{"secret": sigSecret(24)}), nil, 201},
		{"standard_secret_64_bytes", "POST", "/api/webhooks", endpointBody(map[string]any{"secret": sigSecret(64)}), nil, 201},
		{"hmac_secret_16_bytes", "POST", "/api/webhooks", endpointBody(map[string]any{
			"signature": map[string]any{"scheme": "hmac-sha256"}, "secret": strings.Repeat("s", 16)}), nil, 201},
		{"timestamped_custom_header", "POST", "/api/webhooks", endpointBody(map[string]any{
			"signature": map[string]any{"scheme": "timestamped", "header": "X-Sig"}, "secret": strings.Repeat("s", 512)}), nil, 201},
		{"minimal_form", "POST", "/api/webhooks", endpointBody(map[string]any{"events": omit, "event": "usage_threshold"}), nil, 201},
		{"patterns", "POST", "/api/webhooks", endpointBody(map[string]any{"events": []string{"*", "invoice.*", "workflow.item.*", "a"}}), nil, 201},
		{"limit_1", "GET", "/api/webhooks?limit=1", "", nil, 200},
		{"limit_500", "GET", "/api/events?limit=500", "", nil, 200},
		{"limit_empty", "GET", "/api/deliveries?limit=", "", nil, 200},
		{"since", "GET", "/api/events?since=2026-01-01T00:00:00Z", "", nil, 200},
		{"since_offset", "GET", "/api/events?since=" + url.QueryEscape("2026-01-01T01:00:00+01:00"), "", nil, 200},
		{"status", "GET", "/api/deliveries?status=skipped", "", nil, 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f.t = t
			if r := f.do(c.method, c.path, f.adminKey, c.body, c.headers...); r.status != c.want {
				t.Errorf("%s %s = %d %s, want %d", c.method, c.path, r.status, r.body, c.want)
			}
		})
	}
}

// TestBodyLimitBoundary: a body of exactly MaxBodyBytes is read; one byte more is 413.
func TestBodyLimitBoundary(t *testing.T) {
	t.Parallel()
	body := eventBody(map[string]any{"data": strings.Repeat("x", 900)})
	f := setup(t, options{maxBody: int64(len(body))})
	f.mustDo("POST", "/api/events", f.adminKey, body, http.StatusAccepted, nil)
	before := f.snapshot()
	r := f.do("POST", "/api/events", f.adminKey, body+" ")
	checkError(t, r, http.StatusRequestEntityTooLarge, "payload_too_large")
	f.checkUnchanged(before)
}

// TestPublishDuplicate: the same id, or Idempotency-Key, answers 200 with the
// original event and stores nothing (SPEC §4).
func TestPublishDuplicate(t *testing.T) {
	t.Parallel()
	f := setup(t, options{})
	f.createEndpoint(`{"url":"` + hookURL + `","events":["invoice.*"]}`)
	var first, again struct {
		ID         string `json:"id"`
		Deliveries int    `json:"deliveries"`
		CreatedAt  string `json:"created_at"`
	}
	f.mustDo("POST", "/api/events", f.orgKey, `{"id":"inv-1","type":"invoice.paid","data":{"v":1}}`, http.StatusAccepted, &first)
	if first.ID != "inv-1" || first.Deliveries != 1 {
		t.Fatalf("publish = %+v, want id inv-1 with 1 delivery", first)
	}
	before := f.snapshot()
	f.mustDo("POST", "/api/events", f.orgKey, `{"id":"inv-1","type":"invoice.paid","data":{"v":2}}`, http.StatusOK, &again)
	if again.ID != first.ID || again.Deliveries != first.Deliveries {
		t.Errorf("duplicate publish = %+v, want the original %+v", again, first)
	}
	f.checkUnchanged(before)

	f.t = t
	r := f.do("POST", "/api/events", f.orgKey, `{"type":"invoice.paid","data":{}}`, "Idempotency-Key: k1")
	if r.status != http.StatusAccepted {
		t.Fatalf("publish with Idempotency-Key = %d %s", r.status, r.body)
	}
	json.Unmarshal(r.body, &first)
	before = f.snapshot()
	r = f.do("POST", "/api/events", f.orgKey, `{"type":"invoice.paid","data":{}}`, "Idempotency-Key: k1")
	json.Unmarshal(r.body, &again)
	if r.status != http.StatusOK || again.ID != first.ID {
		t.Errorf("publish with the same Idempotency-Key = %d %s, want 200 with id %s", r.status, r.body, first.ID)
	}
	f.checkUnchanged(before)
}

// TestPagination: 7 endpoints, events and deliveries with limit=3 come in 3
// pages, next_cursor null on the last, every id exactly once (SPEC §1).
func TestPagination(t *testing.T) {
	t.Parallel()
	f := setup(t, options{})
	var endpoints, events []string
	for i := range 7 {
		pattern := "other.x"
		if i == 3 {
			pattern = "invoice.*"
		}
		endpoints = append(endpoints, f.createEndpoint(fmt.Sprintf(`{"url":"%s/%d","events":["%s"]}`, hookURL, i, pattern)))
	}
	for i := range 7 {
		var ev struct{ ID string }
		f.mustDo("POST", "/api/events", f.orgKey, fmt.Sprintf(`{"type":"invoice.paid","data":{"i":%d}}`, i), http.StatusAccepted, &ev)
		events = append(events, ev.ID)
	}
	// Noise in another organization, invisible to acme's key.
	var otherEp struct{ ID string }
	f.mustDo("POST", "/api/webhooks", f.otherKey, `{"url":"`+hookURL+`","events":["*"]}`, http.StatusCreated, &otherEp)
	f.mustDo("POST", "/api/events", f.otherKey, `{"type":"invoice.paid","data":{}}`, http.StatusAccepted, nil)

	var deliveries []string
	for _, id := range events {
		var ev struct {
			Deliveries []struct {
				ID      string `json:"id"`
				Webhook string `json:"webhook"`
				Status  string `json:"status"`
			} `json:"deliveries"`
		}
		f.mustDo("GET", "/api/events/"+id, f.orgKey, "", http.StatusOK, &ev)
		if len(ev.Deliveries) != 1 || ev.Deliveries[0].Webhook != endpoints[3] || ev.Deliveries[0].Status != "pending" {
			t.Fatalf("event %s has deliveries %+v, want one pending to %s", id, ev.Deliveries, endpoints[3])
		}
		deliveries = append(deliveries, ev.Deliveries[0].ID)
	}

	for _, c := range []struct {
		path string
		want []string
	}{
		{"/api/webhooks", endpoints},
		{"/api/events", events},
		{"/api/deliveries", deliveries},
		{"/api/deliveries?webhook=" + endpoints[3], deliveries},
		{"/api/deliveries?status=pending", deliveries},
		{"/api/events?type=invoice.paid", events},
	} {
		t.Run(c.path, func(t *testing.T) {
			f.t = t
			var got []string
			var sizes []int
			cursor := ""
			for page := 0; ; page++ {
				if page == 10 {
					t.Fatalf("more than 10 pages: %v", sizes)
				}
				sep := "?"
				if strings.Contains(c.path, "?") {
					sep = "&"
				}
				path := c.path + sep + "limit=3"
				if cursor != "" {
					path += "&cursor=" + url.QueryEscape(cursor)
				}
				var p struct {
					Data []struct {
						ID string `json:"id"`
					} `json:"data"`
					NextCursor *string `json:"next_cursor"`
				}
				r := f.mustDo("GET", path, f.orgKey, "", http.StatusOK, &p)
				if !bytes.Contains(r.body, []byte(`"next_cursor":`)) {
					t.Fatalf("GET %s: no next_cursor in %s", path, r.body)
				}
				sizes = append(sizes, len(p.Data))
				for _, d := range p.Data {
					got = append(got, d.ID)
				}
				if p.NextCursor == nil {
					break
				}
				if *p.NextCursor == "" {
					t.Fatalf("GET %s: next_cursor is \"\", want a cursor or null", path)
				}
				cursor = *p.NextCursor
			}
			if !slices.Equal(sizes, []int{3, 3, 1}) {
				t.Errorf("page sizes = %v, want [3 3 1]", sizes)
			}
			slices.Sort(got)
			want := slices.Sorted(slices.Values(c.want))
			if !slices.Equal(got, want) {
				t.Errorf("ids = %v, want each of %v exactly once", got, want)
			}
		})
	}

	// The other organization's key sees only its own objects; the admin key
	// sees everything.
	f.t = t
	for _, c := range []struct {
		key  string
		path string
		want int
	}{
		{f.otherKey, "/api/webhooks", 1},
		{f.otherKey, "/api/events", 1},
		{f.adminKey, "/api/webhooks", 8},
		{f.adminKey, "/api/events", 8},
		{f.adminKey, "/api/webhooks?organization=" + orgID, 7},
		{f.adminKey, "/api/events?organization=" + otherOrgID, 1},
	} {
		var p page
		f.mustDo("GET", c.path, c.key, "", http.StatusOK, &p)
		if len(p.Data) != c.want || p.NextCursor != nil {
			t.Errorf("GET %s: %d items, next_cursor %v; want %d and null", c.path, len(p.Data), p.NextCursor, c.want)
		}
	}
}

// TestHealth: 200 {"status":"ok","checks":{...},"version"} without a key, and
// 503 once the store no longer answers (SPEC §6).
func TestHealth(t *testing.T) {
	t.Parallel()
	f := setup(t, options{})
	r := f.do("GET", "/api/health", "", "")
	if r.status != http.StatusOK {
		t.Fatalf("GET /api/health = %d %s, want 200", r.status, r.body)
	}
	var h struct {
		Status  string            `json:"status"`
		Checks  map[string]string `json:"checks"`
		Version string            `json:"version"`
	}
	if err := json.Unmarshal(r.body, &h); err != nil {
		t.Fatal(err)
	}
	if h.Status != "ok" || len(h.Checks) == 0 || h.Version != "test" {
		t.Errorf("health = %s, want status ok, checks and version test", r.body)
	}
	golden(t, "health_ok", normalize(t, r.body))

	if err := f.store.Close(); err != nil {
		t.Fatalf("close store: %v", err)
	}
	r = f.do("GET", "/api/health", "", "")
	if r.status != http.StatusServiceUnavailable {
		t.Fatalf("GET /api/health with the store closed = %d %s, want 503", r.status, r.body)
	}
	if err := json.Unmarshal(r.body, &h); err != nil {
		t.Fatal(err)
	}
	if h.Status == "ok" || len(h.Checks) == 0 {
		t.Errorf("health with the store closed = %s, want a status other than ok and the failing check", r.body)
	}
	golden(t, "health_unavailable", normalize(t, r.body))

	// Other requests fail as internal errors that show no detail (STYLE habit 4).
	r = f.do("GET", "/api/webhooks", f.adminKey, "")
	e := checkError(t, r, http.StatusInternalServerError, "internal_error")
	if e.Error.Message != "internal error" {
		t.Errorf("internal error message = %q, want %q", e.Error.Message, "internal error")
	}
}

// normalize replaces the volatile values of a JSON object (ids, times) with
// placeholders, and indents it, for golden files.
func normalize(t *testing.T, body []byte) []byte {
	t.Helper()
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	var walk func(v any) any
	walk = func(v any) any {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				switch s, _ := e.(string); {
				case (k == "created_at" || k == "updated_at" || k == "next_attempt_at") && s != "":
					x[k] = "<time>"
				case k == "id" && strings.Contains(s, "_") && len(s) > 20:
					x[k] = "<" + s[:strings.Index(s, "_")] + " id>"
				default:
					x[k] = walk(e)
				}
			}
		case []any:
			for i := range x {
				x[i] = walk(x[i])
			}
		}
		return v
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(walk(v)); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// TestGoldenShapes pins a few SPEC response shapes.
func TestGoldenShapes(t *testing.T) {
	t.Parallel()
	f := setup(t, options{})
	secret := sigSecret(32)
	full := `{
		"url": "https://93.184.215.14/hooks",
		"events": ["invoice.paid", "workflow.item.*"],
		"secret": "` + secret + `",
		"description": "billing sync",
		"enabled": true,
		"headers": {"X-Team": "billing"},
		"signature": {"scheme": "standard-webhooks", "header": null},
		"payload": "envelope",
		"retry": {"max_attempts": 5, "initial_interval": 5, "max_interval": 3600},
		"rate_limit_per_s": 0,
		"max_in_flight": 0,
		"ordering": "unordered"
	}`
	cases := []struct {
		name, method, path, key, body string
		want                          int
	}{
		{"endpoint_created", "POST", "/api/webhooks", f.orgKey, full, 201},
		{"endpoint_minimal", "POST", "/api/webhooks", f.orgKey, `{"event":"usage_threshold","url":"` + hookURL + `","secret":"` + secret + `"}`, 201},
		{"event_published", "POST", "/api/events", f.orgKey, `{"id":"evt-1","type":"usage_threshold","data":{"usage":784017}}`, 202},
		{"error_invalid_field", "POST", "/api/webhooks", f.orgKey, `{"events":["*"]}`, 400},
		{"error_invalid_json", "POST", "/api/webhooks", f.orgKey, `[]`, 400},
		{"error_unauthorized", "GET", "/api/webhooks", "", "", 401},
		{"error_not_found_route", "GET", "/api/nope", f.orgKey, "", 404},
		{"error_method_not_allowed", "PUT", "/api/webhooks", f.orgKey, "{}", 405},
		{"list_empty", "GET", "/api/deliveries?status=failed", f.orgKey, "", 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f.t = t
			r := f.do(c.method, c.path, c.key, c.body)
			if r.status != c.want {
				t.Fatalf("%s %s = %d %s, want %d", c.method, c.path, r.status, r.body, c.want)
			}
			golden(t, c.name, normalize(t, r.body))
		})
	}
}

// TestTimesAreStable: the times in a create answer are the ones later reads
// show (SPEC §1: one RFC 3339 UTC time per fact).
func TestTimesAreStable(t *testing.T) {
	t.Parallel()
	f := setup(t, options{})
	var ep, epGet struct {
		ID        string `json:"id"`
		CreatedAt string `json:"created_at"`
		UpdatedAt string `json:"updated_at"`
	}
	f.mustDo("POST", "/api/webhooks", f.orgKey, `{"url":"`+hookURL+`","events":["*"]}`, http.StatusCreated, &ep)
	f.mustDo("GET", "/api/webhooks/"+ep.ID, f.orgKey, "", http.StatusOK, &epGet)
	if ep != epGet {
		t.Errorf("POST /api/webhooks answered %+v, GET answers %+v", ep, epGet)
	}
	var ev, evGet struct {
		ID        string `json:"id"`
		CreatedAt string `json:"created_at"`
	}
	f.mustDo("POST", "/api/events", f.orgKey, `{"type":"invoice.paid","data":{}}`, http.StatusAccepted, &ev)
	f.mustDo("GET", "/api/events/"+ev.ID, f.orgKey, "", http.StatusOK, &evGet)
	if ev != evGet {
		t.Errorf("POST /api/events answered %+v, GET answers %+v", ev, evGet)
	}
	for _, ts := range []string{ep.CreatedAt, ev.CreatedAt} {
		if tm, err := time.Parse(time.RFC3339Nano, ts); err != nil || !strings.HasSuffix(ts, "Z") || tm.IsZero() {
			t.Errorf("time %q is not RFC 3339 UTC", ts)
		}
	}
}

// TestSecretsShownOnce: an endpoint's secret is in the create answer and in
// GET …/secret only; an organization key only in its create answer (SPEC §2, §3).
func TestSecretsShownOnce(t *testing.T) {
	t.Parallel()
	f := setup(t, options{})
	var ep struct{ ID, Secret string }
	f.mustDo("POST", "/api/webhooks", f.orgKey, `{"url":"`+hookURL+`","events":["*"]}`, http.StatusCreated, &ep)
	if !strings.HasPrefix(ep.Secret, "whsec_") {
		t.Fatalf("generated secret = %q, want whsec_…", ep.Secret)
	}
	for _, path := range []string{"/api/webhooks/" + ep.ID, "/api/webhooks", "/api/webhooks?organization=acme"} {
		r := f.mustDo("GET", path, f.orgKey, "", http.StatusOK, nil)
		if bytes.Contains(r.body, []byte(ep.Secret)) || bytes.Contains(r.body, []byte(`"secret"`)) {
			t.Errorf("GET %s shows the secret: %s", path, r.body)
		}
	}
	var sec struct{ Secret string }
	f.mustDo("GET", "/api/webhooks/"+ep.ID+"/secret", f.orgKey, "", http.StatusOK, &sec)
	if sec.Secret != ep.Secret {
		t.Errorf("GET secret = %q, want %q", sec.Secret, ep.Secret)
	}
	var k struct{ ID, Key string }
	f.mustDo("POST", "/api/organizations/acme/keys", f.adminKey, "", http.StatusCreated, &k)
	if !strings.HasPrefix(k.ID, "key_") || len(k.Key) < 32 {
		t.Fatalf("new key = %+v, want id key_… and a key", k)
	}
	r := f.mustDo("GET", "/api/organizations/acme", k.Key, "", http.StatusOK, nil)
	if bytes.Contains(r.body, []byte(k.Key)) {
		t.Errorf("GET organization shows the key: %s", r.body)
	}
}

// TestBatchIdempotencyKey: a batch sent again with the same Idempotency-Key
// creates nothing, and its key does not collide with another request's key.
func TestBatchIdempotencyKey(t *testing.T) {
	t.Parallel()
	f := setup(t, options{})
	f.createEndpoint(`{"url":"` + hookURL + `","events":["*"]}`)
	type result struct {
		Data []struct {
			ID        string `json:"id"`
			Duplicate bool   `json:"duplicate"`
		} `json:"data"`
	}
	body := `{"events":[{"type":"a","data":1},{"type":"b","data":2}]}`
	r := f.do("POST", "/api/events/batch", f.orgKey, body, "Idempotency-Key: order-7")
	var first result
	if err := json.Unmarshal(r.body, &first); r.status != http.StatusAccepted || err != nil || len(first.Data) != 2 {
		t.Fatalf("batch = %d %s, want 202 with 2 events", r.status, r.body)
	}
	before := f.snapshot()
	r = f.do("POST", "/api/events/batch", f.orgKey, body, "Idempotency-Key: order-7")
	var again result
	json.Unmarshal(r.body, &again)
	if len(again.Data) != 2 || again.Data[0].ID != first.Data[0].ID || again.Data[1].ID != first.Data[1].ID ||
		!again.Data[0].Duplicate || !again.Data[1].Duplicate {
		t.Errorf("batch again = %d %s, want the original events marked duplicate", r.status, r.body)
	}
	f.checkUnchanged(before)

	// A single event whose own key happens to look like a batch item's key is
	// a different request.
	r = f.do("POST", "/api/events", f.orgKey, `{"type":"c","data":3}`, "Idempotency-Key: order-7#1")
	if r.status != http.StatusAccepted {
		t.Errorf("publish with Idempotency-Key order-7#1 = %d %s, want 202 (a new event)", r.status, r.body)
	}
}

// TestRevokeKey: DELETE /api/organizations/{org}/keys/{id} revokes an
// organization key at once; the organization's own keys and the admin key may
// revoke it, another organization's key gets 404 and changes nothing, and admin
// keys cannot be revoked this way.
func TestRevokeKey(t *testing.T) {
	t.Parallel()
	f := setup(t, options{})
	adminID, _, _ := fixtureKeyIDs(t, f)
	newKey := func(org string) (id, key string) {
		var k struct{ ID, Key string }
		f.mustDo("POST", "/api/organizations/"+org+"/keys", f.adminKey, "", http.StatusCreated, &k)
		return k.ID, k.Key
	}
	works := func(key string) bool {
		return f.do("GET", "/api/webhooks", key, "").status == http.StatusOK
	}
	id1, key1 := newKey(orgID)
	id2, key2 := newKey(orgID)
	if !works(key1) || !works(key2) {
		t.Fatal("new keys do not authenticate")
	}
	// Another organization's key, or naming another organization: 404, nothing revoked.
	f.mustDo("DELETE", "/api/organizations/"+orgID+"/keys/"+id1, f.otherKey, "", http.StatusNotFound, nil)
	f.mustDo("DELETE", "/api/organizations/"+otherOrgID+"/keys/"+id1, f.otherKey, "", http.StatusNotFound, nil)
	f.mustDo("DELETE", "/api/organizations/"+otherOrgID+"/keys/"+id1, f.adminKey, "", http.StatusNotFound, nil)
	if !works(key1) {
		t.Fatal("a failed revocation revoked the key")
	}
	// The organization's other key revokes it; it fails from the next request on.
	f.mustDo("DELETE", "/api/organizations/"+orgID+"/keys/"+id1, key2, "", http.StatusNoContent, nil)
	if r := f.do("GET", "/api/webhooks", key1, ""); r.status != http.StatusUnauthorized || !bytes.Contains(r.body, []byte(`"unauthorized"`)) {
		t.Errorf("revoked key: %d %s, want 401 unauthorized", r.status, r.body)
	}
	f.mustDo("DELETE", "/api/organizations/"+orgID+"/keys/"+id1, key2, "", http.StatusNotFound, nil)
	// A key may revoke itself; the admin key revokes any organization key.
	f.mustDo("DELETE", "/api/organizations/"+orgID+"/keys/"+id2, key2, "", http.StatusNoContent, nil)
	if works(key2) {
		t.Error("a key that revoked itself still authenticates")
	}
	id3, key3 := newKey(otherOrgID)
	f.mustDo("DELETE", "/api/organizations/"+otherOrgID+"/keys/"+id3, f.adminKey, "", http.StatusNoContent, nil)
	if works(key3) {
		t.Error("a key the admin revoked still authenticates")
	}
	// Admin keys belong to no organization.
	f.mustDo("DELETE", "/api/organizations/"+orgID+"/keys/"+adminID, f.adminKey, "", http.StatusNotFound, nil)
	if !works(f.adminKey) || !works(f.orgKey) || !works(f.otherKey) {
		t.Error("revoking one key affected another")
	}
}
