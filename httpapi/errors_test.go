package httpapi_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/hookd/hookd/netguard"
)

// omit deletes a key in with.
var omit = &struct{}{}

// with returns the JSON of base with the keys of over set (or deleted by omit).
func with(base, over map[string]any) string {
	m := map[string]any{}
	for k, v := range base {
		m[k] = v
	}
	for k, v := range over {
		if v == omit {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return string(b)
}

const hookURL = "http://127.0.0.1:9/hook"

func endpointBody(over map[string]any) string {
	return with(map[string]any{"organization": orgID, "url": hookURL, "events": []string{"invoice.paid"}}, over)
}

func eventBody(over map[string]any) string {
	return with(map[string]any{"organization": orgID, "type": "invoice.paid", "data": map[string]any{"n": 1}}, over)
}

func batchBody(n int) string {
	evs := make([]map[string]any, n)
	for i := range evs {
		evs[i] = map[string]any{"type": "invoice.paid", "data": map[string]any{"n": i}}
	}
	return with(map[string]any{"organization": orgID, "events": evs}, nil)
}

func sigSecret(n int) string {
	return "whsec_" + base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", n)))
}

func manyHeaders(n int) map[string]string {
	h := map[string]string{}
	for i := range n {
		h[fmt.Sprintf("X-H%d", i)] = "v"
	}
	return h
}

func manyPatterns(n int) []string {
	p := make([]string, n)
	for i := range p {
		p[i] = fmt.Sprintf("t%d", i)
	}
	return p
}

// Which key a request carries.
const (
	asAdmin = iota
	asOrg   // acme's key
	asOther // other's key
	asNone  // no Authorization header
)

// badRequest is a request the API must reject without storing anything.
type badRequest struct {
	name    string
	method  string // default POST
	path    string // "{ep}" is replaced by the id of acme's endpoint
	key     int
	body    string
	headers []string // "Name: value"
	maxBody int64

	status int
	code   string
	field  string // the error's field; "a|b" accepts either; "" = no field
	allow  string // the Allow header of a 405

	absentOrg string // an organization that must not exist afterwards
}

// run sends c on f, whose acme endpoint is ep, and checks the answer and that
// nothing changed.
func (c badRequest) run(t *testing.T, f *fixture, ep string, before snapshot) snapshot {
	t.Helper()
	f.t = t
	var key string
	switch c.key {
	case asAdmin:
		key = f.adminKey
	case asOrg:
		key = f.orgKey
	case asOther:
		key = f.otherKey
	}
	method := c.method
	if method == "" {
		method = http.MethodPost
	}
	path := strings.ReplaceAll(c.path, "{ep}", ep)
	r := f.do(method, path, key, c.body, c.headers...)
	e := checkError(t, r, c.status, c.code)
	if want := strings.Split(c.field, "|"); !slices.Contains(want, e.Error.Field) {
		t.Errorf("error.field = %q, want %q (body %s)", e.Error.Field, c.field, r.body)
	}
	if c.allow != "" || c.status == http.StatusMethodNotAllowed {
		if got := r.header.Get("Allow"); got != c.allow {
			t.Errorf("Allow = %q, want %q", got, c.allow)
		}
	}
	after := f.checkUnchanged(before)
	if c.absentOrg != "" {
		if r := f.do("GET", "/api/organizations/"+c.absentOrg, f.adminKey, ""); r.status != http.StatusNotFound {
			t.Errorf("organization %q was stored: GET answers %d %s", c.absentOrg, r.status, r.body)
		}
	}
	return after
}

// runBadRequests runs each case as a subtest. The cases share one fixture per
// body limit and run one after the other, so that whatever a case stores by
// mistake is blamed on that case; the fixture's acme endpoint is re-created if
// a case removed it.
func runBadRequests(t *testing.T, cases []badRequest) {
	t.Helper()
	type env struct {
		f    *fixture
		ep   string
		last snapshot // the state after the previous case
	}
	envs := map[int64]*env{}
	seen := map[string]bool{}
	for _, c := range cases {
		if seen[c.name] {
			t.Fatalf("duplicate case name %q", c.name)
		}
		seen[c.name] = true
		e := envs[c.maxBody]
		if e == nil {
			f := setup(t, options{maxBody: c.maxBody})
			e = &env{f: f, ep: f.createEndpoint(`{"url":"` + hookURL + `","events":["*"],"description":"original"}`)}
			e.last = f.snapshot()
			envs[c.maxBody] = e
		}
		t.Run(c.name, func(t *testing.T) {
			e.last = c.run(t, e.f, e.ep, e.last)
			if t.Failed() {
				e.f.t = t
				if r := e.f.do("GET", "/api/webhooks/"+e.ep, e.f.adminKey, ""); r.status != http.StatusOK {
					e.ep = e.f.createEndpoint(`{"url":"` + hookURL + `","events":["*"],"description":"original"}`)
					e.last = e.f.snapshot()
				}
			}
		})
	}
}

// TestInvalidJSON: every route that takes a body answers 400 invalid_json to a
// body that is not one JSON object, and 413 to one over the limit (SPEC §1).
func TestInvalidJSON(t *testing.T) {
	t.Parallel()
	routes := []struct {
		name, method, path string
		key                int
		valid              string // a valid body, padded for the 413 case
	}{
		{"create_endpoint", "POST", "/api/webhooks", asAdmin, endpointBody(map[string]any{"description": strings.Repeat("d", 1000)})},
		{"patch_endpoint", "PATCH", "/api/webhooks/{ep}", asOrg, `{"description":"` + strings.Repeat("d", 1100) + `"}`},
		{"publish", "POST", "/api/events", asAdmin, eventBody(map[string]any{"data": strings.Repeat("d", 1000)})},
		{"batch", "POST", "/api/events/batch", asAdmin, batchBody(30)},
		{"create_org", "POST", "/api/organizations", asAdmin, `{"id":"neworg","name":"` + strings.Repeat("n", 1000) + `"}`},
		{"replay", "POST", "/api/webhooks/{ep}/replay", asOrg, `{"since":"2026-01-01T00:00:00Z","until":"` + strings.Repeat(" ", 1000) + `"}`},
		{"rotate", "POST", "/api/webhooks/{ep}/secret/rotate", asOrg, `{"grace_period":1,"secret":"` + strings.Repeat("s", 1000) + `"}`},
	}
	bodies := []struct{ name, body string }{
		{"unclosed", `{`},
		{"array", `[1,2]`},
		{"string", `"str"`},
		{"number", `42`},
		{"empty", ``},
		{"blank", "  \n\t"},
		{"trailing_garbage", `{} x`},
		{"two_objects", `{}{}`},
		{"trailing_brace", `{}}`},
		{"trailing_array", `{} []`},
		{"trailing_comma", `{"description":"x",}`},
		{"single_quotes", `{'description':'x'}`},
		{"bare_word", `nul`},
		{"invalid_utf8_in_key", "{\"desc\xff\":1"},
	}
	var cases []badRequest
	for _, rt := range routes {
		for _, b := range bodies {
			if rt.name == "rotate" && strings.TrimSpace(b.body) == "" {
				continue // an empty body is a valid rotation request
			}
			cases = append(cases, badRequest{name: rt.name + "/" + b.name, method: rt.method, path: rt.path, key: rt.key,
				body: b.body, status: 400, code: "invalid_json", absentOrg: "neworg"})
		}
		if len(rt.valid) <= 1024 {
			t.Fatalf("%s: padded body has %d bytes, want more than 1024", rt.name, len(rt.valid))
		}
		cases = append(cases, badRequest{name: rt.name + "/too_large", method: rt.method, path: rt.path, key: rt.key,
			body: rt.valid, maxBody: 1024, status: 413, code: "payload_too_large", absentOrg: "neworg"})
	}
	runBadRequests(t, cases)
}

// TestCreateEndpointRejects covers SPEC §1 and §3 for POST /api/webhooks.
func TestCreateEndpointRejects(t *testing.T) {
	t.Parallel()
	bad := func(name string, over map[string]any, field string) badRequest {
		return badRequest{name: name, path: "/api/webhooks", body: endpointBody(over), status: 400, code: "invalid_field", field: field}
	}
	cases := []badRequest{
		// Wrong types.
		bad("url_number", map[string]any{"url": 5}, "url"),
		bad("events_string", map[string]any{"events": "x"}, "events"),
		bad("events_numbers", map[string]any{"events": []int{1}}, "events"),
		bad("event_number", map[string]any{"events": omit, "event": 5}, "event"),
		bad("enabled_string", map[string]any{"enabled": "yes"}, "enabled"),
		bad("retry_number", map[string]any{"retry": 5}, "retry"),
		bad("retry_max_attempts_string", map[string]any{"retry": map[string]any{"max_attempts": "3"}}, "retry.max_attempts"),
		bad("retry_max_attempts_fraction", map[string]any{"retry": map[string]any{"max_attempts": 2.5}}, "retry.max_attempts"),
		bad("retry_initial_string", map[string]any{"retry": map[string]any{"initial_interval": "5"}}, "retry.initial_interval"),
		bad("headers_array", map[string]any{"headers": []string{"X-A"}}, "headers"),
		bad("headers_value_number", map[string]any{"headers": map[string]any{"X-A": 1}}, "headers"),
		bad("signature_string", map[string]any{"signature": "hmac-sha256"}, "signature"),
		bad("signature_scheme_number", map[string]any{"signature": map[string]any{"scheme": 5}}, "signature.scheme"),
		bad("payload_number", map[string]any{"payload": 1}, "payload"),
		bad("ordering_bool", map[string]any{"ordering": true}, "ordering"),
		bad("rate_limit_string", map[string]any{"rate_limit_per_s": "1"}, "rate_limit_per_s"),
		bad("rate_limit_overflow", map[string]any{"rate_limit_per_s": json.RawMessage(`1e400`)}, "rate_limit_per_s"),
		bad("max_in_flight_fraction", map[string]any{"max_in_flight": 1.5}, "max_in_flight"),
		bad("description_bool", map[string]any{"description": false}, "description"),
		bad("secret_number", map[string]any{"secret": 123}, "secret"),
		bad("organization_number", map[string]any{"organization": 5}, "organization"),

		// Missing fields.
		bad("no_url", map[string]any{"url": omit}, "url"),
		bad("null_url", map[string]any{"url": nil}, "url"),
		bad("no_events", map[string]any{"events": omit}, "events"),
		bad("null_events", map[string]any{"events": nil}, "events"),
		bad("event_and_events", map[string]any{"event": "invoice.paid"}, "event|events"),
		bad("admin_without_organization", map[string]any{"organization": omit}, "organization"),
		bad("admin_empty_organization", map[string]any{"organization": ""}, "organization"),
		{name: "admin_unknown_organization", path: "/api/webhooks", body: endpointBody(map[string]any{"organization": "nope"}), status: 404, code: "not_found"},
		{name: "org_key_naming_other_org", key: asOrg, path: "/api/webhooks", body: endpointBody(map[string]any{"organization": otherOrgID}), status: 404, code: "not_found"},
		{name: "org_key_naming_unknown_org", key: asOrg, path: "/api/webhooks", body: endpointBody(map[string]any{"organization": "nope"}), status: 404, code: "not_found"},

		// Unknown fields, at the top and nested.
		bad("unknown_field", map[string]any{"urll": hookURL}, "urll"),
		bad("unknown_field_topics", map[string]any{"topics": []string{"a"}}, "topics"),
		bad("unknown_nested_retry_field", map[string]any{"retry": map[string]any{"max": 3}}, "retry.max"),
		bad("unknown_nested_signature_field", map[string]any{"signature": map[string]any{"schema": "hmac-sha256"}}, "signature.schema"),

		// Event patterns.
		bad("pattern_inner_star", map[string]any{"events": []string{"inv*"}}, "events"),
		bad("pattern_leading_star", map[string]any{"events": []string{"*.x"}}, "events"),
		bad("pattern_empty", map[string]any{"events": []string{""}}, "events"),
		bad("pattern_empty_event", map[string]any{"events": omit, "event": ""}, "event"),
		bad("pattern_double_dot", map[string]any{"events": []string{"invoice..paid"}}, "events"),
		bad("pattern_space", map[string]any{"events": []string{"invoice paid"}}, "events"),
		bad("pattern_double_star", map[string]any{"events": []string{"invoice.*.*"}}, "events"),
		bad("pattern_second_invalid", map[string]any{"events": []string{"*", "x*"}}, "events"),
		bad("patterns_none", map[string]any{"events": []string{}}, "events"),
		bad("patterns_101", map[string]any{"events": manyPatterns(101)}, "events"),

		// Signatures and secrets (SPEC §5).
		bad("scheme_unknown", map[string]any{"signature": map[string]any{"scheme": "rsa"}}, "signature.scheme"),
		bad("scheme_case", map[string]any{"signature": map[string]any{"scheme": "HMAC-SHA256"}}, "signature.scheme"),
		bad("standard_custom_header", map[string]any{"signature": map[string]any{"scheme": "standard-webhooks", "header": "X-Sig"}}, "signature.header"),
		bad("hmac_header_content_type", map[string]any{"signature": map[string]any{"scheme": "hmac-sha256", "header": "Content-Type"}}, "signature.header"),
		bad("hmac_header_webhook_id", map[string]any{"signature": map[string]any{"scheme": "hmac-sha256", "header": "webhook-id"}}, "signature.header"),
		bad("hmac_header_invalid_name", map[string]any{"signature": map[string]any{"scheme": "hmac-sha256", "header": "X Sig"}}, "signature.header"),
		bad("timestamped_header_x_timestamp", map[string]any{"signature": map[string]any{"scheme": "timestamped", "header": "X-Timestamp"}}, "signature.header"),
		bad("standard_secret_no_prefix", map[string]any{"secret": "abcdefghijklmnopqrstuvwxyz0123456789"}, "secret"),
		bad("standard_secret_not_base64", map[string]any{"secret": "whsec_!!!!not-base64!!!!"}, "secret"),
		bad("standard_secret_key_too_short", map[string]any{"secret": sigSecret(16)}, "secret"),
		bad("standard_secret_key_too_long", map[string]any{"secret": sigSecret(65)}, "secret"),
		bad("standard_secret_empty", map[string]any{"secret": ""}, "secret"),
		bad("hmac_secret_too_short", map[string]any{"signature": map[string]any{"scheme": "hmac-sha256"}, "secret": "short"}, "secret"),
		bad("hmac_secret_15_bytes", map[string]any{"signature": map[string]any{"scheme": "hmac-sha256"}, "secret": strings.Repeat("s", 15)}, "secret"),
		bad("hmac_secret_too_long", map[string]any{"signature": map[string]any{"scheme": "hmac-sha256"}, "secret": strings.Repeat("s", 513)}, "secret"),
		bad("hmac_secret_space", map[string]any{"signature": map[string]any{"scheme": "hmac-sha256"}, "secret": "a secret with spaces"}, "secret"),
		bad("shared_secret_over_http", map[string]any{"signature": map[string]any{"scheme": "shared-secret"}}, "url|signature.scheme"),

		// Headers.
		bad("header_content_type", map[string]any{"headers": map[string]string{"Content-Type": "text/plain"}}, "headers"),
		bad("header_webhook_id", map[string]any{"headers": map[string]string{"webhook-id": "x"}}, "headers"),
		bad("header_webhook_signature", map[string]any{"headers": map[string]string{"Webhook-Signature": "v1,x"}}, "headers"),
		bad("header_user_agent", map[string]any{"headers": map[string]string{"user-agent": "x"}}, "headers"),
		bad("header_host", map[string]any{"headers": map[string]string{"Host": "example.com"}}, "headers"),
		bad("header_bad_name", map[string]any{"headers": map[string]string{"X Team": "x"}}, "headers"),
		bad("header_empty_name", map[string]any{"headers": map[string]string{"": "x"}}, "headers"),
		bad("header_crlf_value", map[string]any{"headers": map[string]string{"X-Team": "a\r\nX-Evil: 1"}}, "headers"),
		bad("headers_33", map[string]any{"headers": manyHeaders(33)}, "headers"),

		// Enums and numbers.
		bad("payload_unknown", map[string]any{"payload": "xml"}, "payload"),
		bad("payload_empty", map[string]any{"payload": ""}, "payload"),
		bad("ordering_unknown", map[string]any{"ordering": "lifo"}, "ordering"),
		bad("ordering_upper", map[string]any{"ordering": "FIFO"}, "ordering"),
		bad("rate_limit_negative", map[string]any{"rate_limit_per_s": -1}, "rate_limit_per_s"),
		bad("rate_limit_too_big", map[string]any{"rate_limit_per_s": 100001}, "rate_limit_per_s"),
		bad("max_in_flight_negative", map[string]any{"max_in_flight": -1}, "max_in_flight"),
		bad("max_in_flight_too_big", map[string]any{"max_in_flight": 1001}, "max_in_flight"),
		bad("retry_max_attempts_zero", map[string]any{"retry": map[string]any{"max_attempts": 0}}, "retry.max_attempts"),
		bad("retry_max_attempts_negative", map[string]any{"retry": map[string]any{"max_attempts": -1}}, "retry.max_attempts"),
		bad("retry_max_attempts_too_big", map[string]any{"retry": map[string]any{"max_attempts": 101}}, "retry.max_attempts"),
		bad("retry_initial_negative", map[string]any{"retry": map[string]any{"initial_interval": -1}}, "retry.initial_interval"),
		bad("retry_max_negative", map[string]any{"retry": map[string]any{"max_interval": -5}}, "retry.max_interval"),
		bad("retry_initial_over_max", map[string]any{"retry": map[string]any{"initial_interval": 10, "max_interval": 5}}, "retry.initial_interval|retry.max_interval"),
		bad("retry_initial_too_big", map[string]any{"retry": map[string]any{"initial_interval": 7*24*3600 + 1}}, "retry.initial_interval"),
		bad("retry_max_too_big", map[string]any{"retry": map[string]any{"max_interval": 1e12}}, "retry.max_interval"),

		// URLs and text.
		bad("url_empty", map[string]any{"url": ""}, "url"),
		bad("url_not_a_url", map[string]any{"url": "not a url"}, "url"),
		bad("url_relative", map[string]any{"url": "/hook"}, "url"),
		bad("url_ftp", map[string]any{"url": "ftp://127.0.0.1/hook"}, "url"),
		bad("url_no_host", map[string]any{"url": "http://"}, "url"),
		bad("url_bad_port", map[string]any{"url": "http://127.0.0.1:99999/hook"}, "url"),
		bad("url_too_long", map[string]any{"url": "http://127.0.0.1:9/" + strings.Repeat("a", 2048)}, "url"),
		bad("description_too_long", map[string]any{"description": strings.Repeat("d", 1025)}, "description"),
	}
	runBadRequests(t, cases)
}

// TestCreateEndpointTargetPolicy: without --dev, loopback and http targets are
// refused when the endpoint is saved (SPEC §3).
func TestCreateEndpointTargetPolicy(t *testing.T) {
	t.Parallel()
	for _, url := range []string{
		"http://127.0.0.1:9/hook",
		"https://127.0.0.1:9/hook",
		"https://10.1.2.3/hook",
		"https://169.254.169.254/latest/meta-data",
		"https://[::1]/hook",
		"https://localhost/hook",
		"https://0.0.0.0/hook",
		"http://93.184.215.14/hook", // public, but http
	} {
		t.Run(url, func(t *testing.T) {
			t.Parallel()
			f := setup(t, options{policy: &netguard.Policy{}})
			before := f.snapshot()
			r := f.do("POST", "/api/webhooks", f.orgKey, endpointBody(map[string]any{"organization": omit, "url": url}))
			if e := checkError(t, r, 400, "invalid_field"); e.Error.Field != "url" {
				t.Errorf("error.field = %q, want url", e.Error.Field)
			}
			f.checkUnchanged(before)
		})
	}
}

// TestPatchEndpointRejects covers PATCH /api/webhooks/{id}: a rejected patch
// changes nothing.
func TestPatchEndpointRejects(t *testing.T) {
	t.Parallel()
	bad := func(name, body, field string) badRequest {
		return badRequest{name: name, method: "PATCH", path: "/api/webhooks/{ep}", key: asOrg, body: body, status: 400, code: "invalid_field", field: field}
	}
	cases := []badRequest{
		bad("url_number", `{"url":5}`, "url"),
		bad("url_ftp", `{"url":"ftp://127.0.0.1/x"}`, "url"),
		bad("url_empty", `{"url":""}`, "url"),
		bad("enabled_string", `{"enabled":"yes"}`, "enabled"),
		bad("secret", `{"secret":"`+sigSecret(32)+`"}`, "secret"),
		bad("organization", `{"organization":"other"}`, "organization"),
		bad("events_empty", `{"events":[]}`, "events"),
		bad("events_invalid", `{"events":["inv*"]}`, "events"),
		bad("event_and_events", `{"event":"a","events":["b"]}`, "event|events"),
		bad("header_reserved", `{"headers":{"Content-Type":"text/plain"}}`, "headers"),
		bad("retry_max_attempts_zero", `{"retry":{"max_attempts":0}}`, "retry.max_attempts"),
		bad("retry_initial_negative", `{"retry":{"initial_interval":-1}}`, "retry.initial_interval"),
		bad("scheme_unknown", `{"signature":{"scheme":"rsa"}}`, "signature.scheme"),
		bad("hmac_with_short_header", `{"signature":{"scheme":"hmac-sha256","header":"Host"}}`, "signature.header"),
		bad("payload", `{"payload":"xml"}`, "payload"),
		bad("ordering", `{"ordering":"lifo"}`, "ordering"),
		bad("rate_limit", `{"rate_limit_per_s":-1}`, "rate_limit_per_s"),
		bad("max_in_flight", `{"max_in_flight":1001}`, "max_in_flight"),
		bad("unknown_field", `{"nope":1}`, "nope"),
		bad("description_too_long", `{"description":"`+strings.Repeat("d", 1025)+`"}`, "description"),
		{name: "unknown_id", method: "PATCH", path: "/api/webhooks/ep_nope", key: asOrg, body: `{"enabled":false}`, status: 404, code: "not_found"},
		{name: "other_orgs_endpoint", method: "PATCH", path: "/api/webhooks/{ep}", key: asOther, body: `{"enabled":false}`, status: 404, code: "not_found"},
		{name: "other_orgs_endpoint_url", method: "PATCH", path: "/api/webhooks/{ep}", key: asOther, body: `{"url":"` + hookURL + `2"}`, status: 404, code: "not_found"},
		{name: "delete_other_orgs_endpoint", method: "DELETE", path: "/api/webhooks/{ep}", key: asOther, status: 404, code: "not_found"},
		{name: "rotate_other_orgs_endpoint", path: "/api/webhooks/{ep}/secret/rotate", key: asOther, status: 404, code: "not_found"},
		{name: "rotate_grace_negative", path: "/api/webhooks/{ep}/secret/rotate", key: asOrg, body: `{"grace_period":-1}`, status: 400, code: "invalid_field", field: "grace_period"},
		{name: "rotate_grace_too_long", path: "/api/webhooks/{ep}/secret/rotate", key: asOrg, body: `{"grace_period":2592001}`, status: 400, code: "invalid_field", field: "grace_period"},
		{name: "rotate_grace_string", path: "/api/webhooks/{ep}/secret/rotate", key: asOrg, body: `{"grace_period":"1"}`, status: 400, code: "invalid_field", field: "grace_period"},
		{name: "rotate_bad_secret", path: "/api/webhooks/{ep}/secret/rotate", key: asOrg, body: `{"secret":"whsec_short"}`, status: 400, code: "invalid_field", field: "secret"},
		{name: "rotate_unknown_field", path: "/api/webhooks/{ep}/secret/rotate", key: asOrg, body: `{"grace":1}`, status: 400, code: "invalid_field", field: "grace"},
		{name: "replay_no_since", path: "/api/webhooks/{ep}/replay", key: asOrg, body: `{}`, status: 400, code: "invalid_field", field: "since"},
		{name: "replay_bad_since", path: "/api/webhooks/{ep}/replay", key: asOrg, body: `{"since":"yesterday"}`, status: 400, code: "invalid_field", field: "since"},
		{name: "replay_since_number", path: "/api/webhooks/{ep}/replay", key: asOrg, body: `{"since":5}`, status: 400, code: "invalid_field", field: "since"},
		{name: "replay_until_before_since", path: "/api/webhooks/{ep}/replay", key: asOrg, body: `{"since":"2026-01-02T00:00:00Z","until":"2026-01-01T00:00:00Z"}`, status: 400, code: "invalid_field", field: "until"},
		{name: "replay_status_pending", path: "/api/webhooks/{ep}/replay", key: asOrg, body: `{"since":"2026-01-01T00:00:00Z","status":"pending"}`, status: 400, code: "invalid_field", field: "status"},
		{name: "replay_status_unknown", path: "/api/webhooks/{ep}/replay", key: asOrg, body: `{"since":"2026-01-01T00:00:00Z","status":"done"}`, status: 400, code: "invalid_field", field: "status"},
	}
	runBadRequests(t, cases)
}

// TestPublishRejects covers POST /api/events and /api/events/batch (SPEC §1, §4).
func TestPublishRejects(t *testing.T) {
	t.Parallel()
	bad := func(name string, over map[string]any, field string) badRequest {
		return badRequest{name: name, path: "/api/events", body: eventBody(over), status: 400, code: "invalid_field", field: field}
	}
	batchOf := func(evs ...map[string]any) string {
		return with(map[string]any{"organization": orgID, "events": evs}, nil)
	}
	ok := map[string]any{"type": "invoice.paid", "data": map[string]any{}}
	badBatch := func(name, body, field string) badRequest {
		return badRequest{name: "batch_" + name, path: "/api/events/batch", body: body, status: 400, code: "invalid_field", field: field}
	}
	cases := []badRequest{
		// Wrong types.
		bad("type_number", map[string]any{"type": 5}, "type"),
		bad("id_number", map[string]any{"id": 5}, "id"),
		bad("organization_number", map[string]any{"organization": 5}, "organization"),
		// Missing fields.
		bad("no_type", map[string]any{"type": omit}, "type"),
		bad("null_type", map[string]any{"type": nil}, "type"),
		bad("no_data", map[string]any{"data": omit}, "data"),
		bad("null_data", map[string]any{"data": nil}, "data"),
		bad("admin_without_organization", map[string]any{"organization": omit}, "organization"),
		{name: "admin_unknown_organization", path: "/api/events", body: eventBody(map[string]any{"organization": "nope"}), status: 404, code: "not_found"},
		{name: "org_key_naming_other_org", key: asOrg, path: "/api/events", body: eventBody(map[string]any{"organization": otherOrgID}), status: 404, code: "not_found"},
		// Unknown fields.
		bad("unknown_field", map[string]any{"payload": map[string]any{}}, "payload"),
		bad("unknown_field_event", map[string]any{"event": "invoice.paid"}, "event"),
		// Event ids (SPEC §1).
		bad("id_with_dot", map[string]any{"id": "evt.1"}, "id"),
		bad("id_129_chars", map[string]any{"id": strings.Repeat("a", 129)}, "id"),
		bad("id_empty", map[string]any{"id": ""}, "id"),
		bad("id_space", map[string]any{"id": "evt 1"}, "id"),
		bad("id_slash", map[string]any{"id": "evt/1"}, "id"),
		bad("id_non_ascii", map[string]any{"id": "évt"}, "id"),
		bad("id_newline", map[string]any{"id": "evt\n"}, "id"),
		// Data that is not UTF-8 (encoding/json keeps a raw value's bytes as
		// sent): stored, it would be delivered as a body that is not JSON.
		{name: "data_not_utf8", path: "/api/events", body: "{\"organization\":\"" + orgID + "\",\"type\":\"a.b\",\"data\":\"\xff\"}",
			status: 400, code: "invalid_json"},
		{name: "batch_data_not_utf8", path: "/api/events/batch",
			body:   "{\"organization\":\"" + orgID + "\",\"events\":[{\"type\":\"a.b\",\"data\":1},{\"type\":\"a.b\",\"data\":{\"k\":\"\xfe\"}}]}",
			status: 400, code: "invalid_json"},
		// JSON nested deeper than the decoder allows.
		{name: "data_too_deep", path: "/api/events", body: `{"organization":"` + orgID + `","type":"a.b","data":` +
			strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`, status: 400, code: "invalid_json"},
		// Event types.
		bad("type_empty", map[string]any{"type": ""}, "type"),
		bad("type_double_dot", map[string]any{"type": "invoice..paid"}, "type"),
		bad("type_leading_dot", map[string]any{"type": ".invoice"}, "type"),
		bad("type_trailing_dot", map[string]any{"type": "invoice."}, "type"),
		bad("type_space", map[string]any{"type": "invoice paid"}, "type"),
		bad("type_pattern", map[string]any{"type": "invoice.*"}, "type"),
		bad("type_star", map[string]any{"type": "*"}, "type"),
		bad("type_129_chars", map[string]any{"type": strings.Repeat("a", 129)}, "type"),
		// Idempotency-Key.
		{name: "idempotency_key_too_long", path: "/api/events", body: eventBody(nil), headers: []string{"Idempotency-Key: " + strings.Repeat("k", 256)},
			status: 400, code: "invalid_field", field: "Idempotency-Key"},

		// Batches.
		badBatch("empty", batchOf(), "events"),
		badBatch("missing", `{"organization":"acme"}`, "events"),
		badBatch("null", `{"organization":"acme","events":null}`, "events"),
		badBatch("object", `{"organization":"acme","events":{}}`, "events"),
		badBatch("string", `{"organization":"acme","events":"x"}`, "events"),
		badBatch("1001", batchBody(1001), "events"),
		badBatch("second_type_invalid", batchOf(ok, map[string]any{"type": "invoice..paid", "data": 1}), "events[1].type"),
		badBatch("second_without_data", batchOf(ok, map[string]any{"type": "invoice.paid"}), "events[1].data"),
		badBatch("second_id_invalid", batchOf(ok, map[string]any{"id": "a.b", "type": "invoice.paid", "data": 1}), "events[1].id"),
		badBatch("type_number", batchOf(map[string]any{"type": 5, "data": 1}), "events[0].type"),
		badBatch("unknown_event_field", batchOf(map[string]any{"type": "a", "data": 1, "x": 1}), "events[0].x"),
		badBatch("unknown_top_field", `{"organization":"acme","events":[{"type":"a","data":1}],"x":1}`, "x"),
		badBatch("admin_without_organization", `{"events":[{"type":"a","data":1}]}`, "organization|events[0].organization"),
		{name: "batch_second_names_other_org", key: asOrg, path: "/api/events/batch",
			body: `{"events":[{"type":"a","data":1},{"type":"a","data":1,"organization":"other"}]}`, status: 404, code: "not_found"},
		{name: "batch_idempotency_key_too_long", path: "/api/events/batch", body: batchBody(2), headers: []string{"Idempotency-Key: " + strings.Repeat("k", 256)},
			status: 400, code: "invalid_field", field: "Idempotency-Key|events[0].Idempotency-Key"},
	}
	runBadRequests(t, cases)
}

// TestOrganizationRejects covers POST /api/organizations and its keys (SPEC §2).
func TestOrganizationRejects(t *testing.T) {
	t.Parallel()
	bad := func(name, body, field string) badRequest {
		return badRequest{name: name, path: "/api/organizations", body: body, status: 400, code: "invalid_field", field: field, absentOrg: "neworg"}
	}
	cases := []badRequest{
		{name: "org_key_forbidden", key: asOrg, path: "/api/organizations", body: `{"id":"neworg","name":"New"}`, status: 403, code: "forbidden", absentOrg: "neworg"},
		{name: "no_key", key: asNone, path: "/api/organizations", body: `{"id":"neworg","name":"New"}`, status: 401, code: "unauthorized", absentOrg: "neworg"},
		bad("no_name", `{"id":"neworg"}`, "name"),
		bad("empty_name", `{"id":"neworg","name":""}`, "name"),
		bad("long_name", `{"id":"neworg","name":"`+strings.Repeat("n", 201)+`"}`, "name"),
		bad("name_number", `{"id":"neworg","name":5}`, "name"),
		bad("id_invalid", `{"id":"new org!","name":"New"}`, "id"),
		bad("id_empty", `{"id":"","name":"New"}`, "id"),
		bad("id_65_chars", `{"id":"`+strings.Repeat("o", 65)+`","name":"New"}`, "id"),
		bad("id_number", `{"id":5,"name":"New"}`, "id"),
		bad("quota_negative", `{"id":"neworg","name":"New","monthly_quota":-1}`, "monthly_quota"),
		bad("quota_string", `{"id":"neworg","name":"New","monthly_quota":"1000"}`, "monthly_quota"),
		bad("quota_fraction", `{"id":"neworg","name":"New","monthly_quota":1.5}`, "monthly_quota"),
		bad("unknown_field", `{"id":"neworg","name":"New","quota":1}`, "quota"),
		{name: "duplicate_id", path: "/api/organizations", body: `{"id":"acme","name":"Acme again"}`, status: 409, code: "conflict"},
		{name: "key_for_unknown_org", path: "/api/organizations/nope/keys", status: 404, code: "not_found"},
		{name: "key_for_other_org", key: asOrg, path: "/api/organizations/other/keys", status: 404, code: "not_found"},
		{name: "get_other_org", method: "GET", key: asOrg, path: "/api/organizations/other", status: 404, code: "not_found"},
		{name: "get_unknown_org", method: "GET", path: "/api/organizations/nope", status: 404, code: "not_found"},
	}
	runBadRequests(t, cases)
}

// TestListRejects covers ?limit=, ?cursor=, ?since= and ?status= (SPEC §1, §4).
func TestListRejects(t *testing.T) {
	t.Parallel()
	var cases []badRequest
	for _, list := range []string{"/api/webhooks", "/api/events", "/api/deliveries"} {
		for _, q := range []struct{ name, query, field string }{
			{"limit_zero", "limit=0", "limit"},
			{"limit_501", "limit=501", "limit"},
			{"limit_abc", "limit=abc", "limit"},
			{"limit_negative", "limit=-1", "limit"},
			{"limit_fraction", "limit=1.5", "limit"},
			{"limit_plus", "limit=%2B3", "limit"},
			{"limit_huge", "limit=99999999999999999999", "limit"},
			{"cursor_garbage", "cursor=!!!", "cursor"},
			{"cursor_not_a_number", "cursor=abc", "cursor"},
			{"cursor_zero", "cursor=" + base64.RawURLEncoding.EncodeToString([]byte("0")), "cursor"},
			{"cursor_negative", "cursor=" + base64.RawURLEncoding.EncodeToString([]byte("-5")), "cursor"},
		} {
			for _, key := range []int{asAdmin, asOrg} {
				cases = append(cases, badRequest{name: fmt.Sprintf("%s/%s/key%d", strings.TrimPrefix(list, "/api/"), q.name, key),
					method: "GET", path: list + "?" + q.query, key: key, status: 400, code: "invalid_field", field: q.field})
			}
		}
	}
	cases = append(cases,
		badRequest{name: "events/since_word", method: "GET", path: "/api/events?since=yesterday", status: 400, code: "invalid_field", field: "since"},
		badRequest{name: "events/since_date_only", method: "GET", path: "/api/events?since=2026-01-01", status: 400, code: "invalid_field", field: "since"},
		badRequest{name: "events/since_unix", method: "GET", path: "/api/events?since=1767225600", status: 400, code: "invalid_field", field: "since"},
		badRequest{name: "deliveries/status_unknown", method: "GET", path: "/api/deliveries?status=done", status: 400, code: "invalid_field", field: "status"},
		badRequest{name: "deliveries/status_upper", method: "GET", path: "/api/deliveries?status=FAILED", status: 400, code: "invalid_field", field: "status"},
	)
	runBadRequests(t, cases)
}

// TestAuthRejects: a missing, wrong or malformed key answers 401 unauthorized,
// and another organization's objects answer 404 (SPEC §2).
func TestAuthRejects(t *testing.T) {
	t.Parallel()
	body := endpointBody(nil)
	var cases []badRequest
	for _, h := range []struct{ name, header string }{
		{"none", ""},
		{"wrong_key", "Authorization: Bearer hk_wrong"},
		{"admin_key_like", "Authorization: Bearer hk_admin_0000000000000000000000000000000000000000000"},
		{"basic", "Authorization: Basic dXNlcjpwYXNz"},
		{"bearer_only", "Authorization: Bearer"},
		{"bearer_blank", "Authorization: Bearer    "},
		{"no_scheme", "Authorization: hk_admin_x"},
		{"api_key_header", "X-Api-Key: hk_admin_x"},
	} {
		var headers []string
		if h.header != "" {
			headers = []string{h.header}
		}
		for _, rt := range []struct{ method, path, body string }{
			{"GET", "/api/webhooks", ""},
			{"POST", "/api/webhooks", body},
			{"POST", "/api/events", eventBody(nil)},
			{"GET", "/api/deliveries", ""},
			{"GET", "/api/organizations/acme", ""},
		} {
			cases = append(cases, badRequest{name: h.name + "/" + rt.method + rt.path, method: rt.method, path: rt.path, key: asNone,
				body: rt.body, headers: headers, status: 401, code: "unauthorized"})
		}
	}
	for _, rt := range []struct{ method, path, body string }{
		{"GET", "/api/webhooks/{ep}", ""},
		{"GET", "/api/webhooks/{ep}/secret", ""},
		{"DELETE", "/api/webhooks/{ep}", ""},
		{"POST", "/api/webhooks/{ep}/test", ""},
		{"POST", "/api/webhooks/{ep}/replay", `{"since":"2026-01-01T00:00:00Z"}`},
		{"GET", "/api/organizations/acme", ""},
	} {
		cases = append(cases, badRequest{name: "other_org/" + rt.method + rt.path, method: rt.method, path: rt.path, key: asOther,
			body: rt.body, status: 404, code: "not_found"})
	}
	for _, rt := range []struct{ method, path string }{
		{"GET", "/api/webhooks/ep_nope"},
		{"GET", "/api/webhooks/ep_nope/secret"},
		{"DELETE", "/api/webhooks/ep_nope"},
		{"GET", "/api/events/evt_nope"},
		{"GET", "/api/deliveries/dlv_nope"},
		{"POST", "/api/deliveries/dlv_nope/retry"},
	} {
		cases = append(cases, badRequest{name: "unknown/" + rt.method + rt.path, method: rt.method, path: rt.path, key: asOrg, status: 404, code: "not_found"})
	}
	runBadRequests(t, cases)
}

// TestRouteErrors: unknown routes answer JSON 404, wrong methods JSON 405 with
// an Allow header (STYLE: JSON 404/405).
func TestRouteErrors(t *testing.T) {
	t.Parallel()
	cases := []badRequest{
		{name: "unknown_api_route", method: "GET", path: "/api/nope", status: 404, code: "not_found"},
		{name: "root", method: "GET", path: "/", status: 404, code: "not_found"},
		{name: "too_deep", method: "GET", path: "/api/webhooks/{ep}/secret/x", status: 404, code: "not_found"},
		{name: "unknown_no_key", method: "POST", key: asNone, path: "/api/nope", body: "{}", status: 404, code: "not_found"},
		{name: "put_webhooks", method: "PUT", path: "/api/webhooks", body: endpointBody(nil), status: 405, code: "method_not_allowed", allow: "GET, POST"},
		{name: "delete_webhooks", method: "DELETE", path: "/api/webhooks", status: 405, code: "method_not_allowed", allow: "GET, POST"},
		{name: "post_webhook", method: "POST", path: "/api/webhooks/{ep}", body: "{}", status: 405, code: "method_not_allowed", allow: "GET, PATCH, DELETE"},
		{name: "put_webhook", method: "PUT", path: "/api/webhooks/{ep}", body: "{}", status: 405, code: "method_not_allowed", allow: "GET, PATCH, DELETE"},
		{name: "get_rotate", method: "GET", path: "/api/webhooks/{ep}/secret/rotate", status: 405, code: "method_not_allowed", allow: "POST"},
		{name: "put_batch", method: "PUT", path: "/api/events/batch", key: asNone, body: batchBody(1), status: 405, code: "method_not_allowed", allow: "GET, POST"},
		{name: "delete_event", method: "DELETE", path: "/api/events/evt_1", status: 405, code: "method_not_allowed", allow: "GET"},
		{name: "post_health", method: "POST", path: "/api/health", key: asNone, status: 405, code: "method_not_allowed", allow: "GET"},
		{name: "patch_organizations", method: "PATCH", path: "/api/organizations", body: "{}", status: 405, code: "method_not_allowed", allow: "POST"},
	}
	runBadRequests(t, cases)
}
