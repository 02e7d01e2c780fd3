package httpapi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestBearerSchemeIsCaseInsensitive: RFC 7235 auth schemes are case-insensitive.
func TestBearerSchemeIsCaseInsensitive(t *testing.T) {
	t.Parallel()
	f := setup(t, options{})
	for _, scheme := range []string{"Bearer", "bearer", "BEARER"} {
		r := f.do("GET", "/api/webhooks", "", "", "Authorization: "+scheme+" "+f.orgKey)
		if r.status != http.StatusOK {
			t.Errorf("Authorization: %s <key> = %d %s, want 200", scheme, r.status, r.body)
		}
	}
	for _, h := range []string{"Basic " + f.orgKey, "Bearer", "Bearer ", f.orgKey} {
		checkError(t, f.do("GET", "/api/webhooks", "", "", "Authorization: "+h), http.StatusUnauthorized, "unauthorized")
	}
}

// TestFieldNamesAreCaseSensitive: encoding/json would accept "URL" for "url"; the
// API names the field it does not know instead.
func TestFieldNamesAreCaseSensitive(t *testing.T) {
	t.Parallel()
	f := setup(t, options{})
	before := f.snapshot()
	r := f.do("POST", "/api/webhooks", f.orgKey, `{"URL":"http://127.0.0.1:9/x","events":["*"]}`)
	if e := checkError(t, r, http.StatusBadRequest, "invalid_field"); e.Error.Field != "URL" {
		t.Errorf("field = %q, want URL", e.Error.Field)
	}
	r = f.do("POST", "/api/events", f.orgKey, `{"type":"a.b","DATA":{}}`)
	if e := checkError(t, r, http.StatusBadRequest, "invalid_field"); e.Error.Field != "DATA" {
		t.Errorf("field = %q, want DATA", e.Error.Field)
	}
	f.checkUnchanged(before)
}

// TestOperationalTypesAreReserved: clients cannot publish events that look like
// hookd's own operational events.
func TestOperationalTypesAreReserved(t *testing.T) {
	t.Parallel()
	f := setup(t, options{})
	before := f.snapshot()
	for _, typ := range []string{"delivery.failed", "endpoint.disabled", "webhook.test"} {
		r := f.do("POST", "/api/events", f.orgKey, `{"type":"`+typ+`","data":{}}`)
		if e := checkError(t, r, http.StatusBadRequest, "invalid_field"); e.Error.Field != "type" {
			t.Errorf("publish %s: field = %q, want type", typ, e.Error.Field)
		}
	}
	f.checkUnchanged(before)
}

// TestURLPasswordIsRedacted: a password in an endpoint URL is a credential and is
// not shown back.
func TestURLPasswordIsRedacted(t *testing.T) {
	t.Parallel()
	f := setup(t, options{})
	var ep map[string]any
	f.mustDo("POST", "/api/webhooks", f.orgKey, `{"url":"http://user:hunter2secret@127.0.0.1:9/x","events":["*"]}`, http.StatusCreated, &ep)
	r := f.mustDo("GET", "/api/webhooks/"+ep["id"].(string), f.orgKey, "", http.StatusOK, nil)
	for name, body := range map[string][]byte{"create": mustJSON(t, ep), "get": r.body} {
		if strings.Contains(string(body), "hunter2secret") {
			t.Errorf("%s answer shows the URL's password: %s", name, body)
		}
		if !strings.Contains(string(body), "user:") {
			t.Errorf("%s answer lost the URL's user: %s", name, body)
		}
	}
}

// TestSchemeChangeEndsGracePeriod: a secret of the old scheme may be unusable with
// the new one, so changing the scheme drops the previous secret.
func TestSchemeChangeEndsGracePeriod(t *testing.T) {
	t.Parallel()
	f := setup(t, options{})
	var ep map[string]any
	f.mustDo("POST", "/api/webhooks", f.orgKey, `{"url":"http://127.0.0.1:9/x","events":["*"],
		"signature":{"scheme":"hmac-sha256"},"secret":"plain-secret-abcdefgh"}`, http.StatusCreated, &ep)
	id := ep["id"].(string)
	f.mustDo("POST", "/api/webhooks/"+id+"/secret/rotate", f.orgKey, `{"secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw","grace_period":3600}`, http.StatusOK, nil)
	f.mustDo("PATCH", "/api/webhooks/"+id, f.orgKey, `{"signature":{"scheme":"standard-webhooks"}}`, http.StatusOK, nil)
	var sec map[string]any
	f.mustDo("GET", "/api/webhooks/"+id+"/secret", f.orgKey, "", http.StatusOK, &sec)
	if sec["previous_secret_expires_at"] != nil {
		t.Errorf("after a scheme change, GET secret = %v, want no previous secret", sec)
	}
	var test map[string]any
	f.mustDo("POST", "/api/webhooks/"+id+"/test", f.orgKey, "", http.StatusOK, &test)
	if a := test["attempt"].(map[string]any); a["error"] != nil && strings.Contains(a["error"].(string), "secret") {
		t.Errorf("test-send after the scheme change failed on a secret: %v", a["error"])
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
