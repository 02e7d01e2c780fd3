package httpapi_test

import (
	"encoding/json"
	"net/http"
	"testing"
)

// FuzzWriteBodies: whatever the body, the write routes answer a JSON object
// with a SPEC status, never an internal error, and every 400 is invalid_json
// or invalid_field.
func FuzzWriteBodies(f *testing.F) {
	for _, seed := range []string{
		``, `{`, `[1,2]`, `"str"`, `null`, `{} x`, `{}{}`, `{"url":5}`, `{"retry":{"max_attempts":"3"}}`,
		endpointBody(nil), endpointBody(map[string]any{"events": []string{"inv*"}}),
		endpointBody(map[string]any{"signature": map[string]any{"scheme": "hmac-sha256"}, "secret": "short"}),
		eventBody(nil), eventBody(map[string]any{"id": "a.b"}), batchBody(2),
		`{"organization":"acme","url":"http://127.0.0.1:9/x","events":["*"],"retry":{"initial_interval":1e308}}`,
		`{"organization":"acme","url":"http://127.0.0.1:9/x","events":["*"],"rate_limit_per_s":-0}`,
		"{\"organization\":\"acme\",\"type\":\"a\",\"data\":\"\xff\"}",
	} {
		for _, route := range []uint8{0, 1, 2, 3} {
			f.Add(route, seed)
		}
	}
	fx := setup(f, options{maxBody: 64 << 10})
	routes := []string{"/api/webhooks", "/api/events", "/api/events/batch", "/api/organizations"}
	f.Fuzz(func(t *testing.T, route uint8, body string) {
		fx.t = t
		path := routes[int(route)%len(routes)]
		r := fx.do("POST", path, fx.adminKey, body)
		switch r.status {
		case http.StatusOK, http.StatusCreated, http.StatusAccepted:
			var v map[string]any
			if err := json.Unmarshal(r.body, &v); err != nil {
				t.Fatalf("POST %s %q = %d with a body that is not a JSON object: %s", path, body, r.status, r.body)
			}
		case http.StatusBadRequest:
			e := checkError(t, r, http.StatusBadRequest, "")
			if e.Error.Code != "invalid_json" && e.Error.Code != "invalid_field" {
				t.Errorf("POST %s %q: 400 with code %q", path, body, e.Error.Code)
			}
		case http.StatusNotFound, http.StatusConflict, http.StatusRequestEntityTooLarge:
			checkError(t, r, r.status, map[int]string{404: "not_found", 409: "conflict", 413: "payload_too_large"}[r.status])
		default:
			t.Fatalf("POST %s %q = %d %s", path, body, r.status, r.body)
		}
	})
}
