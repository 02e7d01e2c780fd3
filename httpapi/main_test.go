package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/delivery"
	"github.com/hookd/hookd/httpapi"
	"github.com/hookd/hookd/ids"
	"github.com/hookd/hookd/netguard"
	"github.com/hookd/hookd/secret"
	"github.com/hookd/hookd/sqlite"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden with the current output")

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// options tune setup.
type options struct {
	// policy checks endpoint URLs. Default: http and private targets allowed, so
	// that tests never resolve names.
	policy *netguard.Policy
	// maxBody is httpapi.Config.MaxBodyBytes (0 = the default).
	maxBody int64
	// now is the API's clock (nil = time.Now).
	now func() time.Time
}

// fixture is a real API server on a real SQLite store, with an organization
// "acme" (and "other"), an admin key and a key of each organization.
type fixture struct {
	t        testing.TB
	srv      *httptest.Server
	store    *sqlite.DB
	adminKey string
	orgKey   string // acme's key
	otherKey string // other's key
}

const (
	orgID      = "acme"
	otherOrgID = "other"
)

func setup(t testing.TB, opts options) *fixture {
	t.Helper()
	ctx := context.Background()
	sealer, err := secret.NewSealer(secret.NewKey())
	if err != nil {
		t.Fatal(err)
	}
	store, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "hookd.db"), Sealer: sealer})
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { store.Close() })
	policy := netguard.Policy{AllowHTTP: true, AllowPrivate: true}
	if opts.policy != nil {
		policy = *opts.policy
	}
	engine, err := delivery.New(delivery.Config{Store: store, Policy: policy, UserAgent: "hookd/test"})
	if err != nil {
		t.Fatalf("delivery.New: %v", err)
	}
	t.Cleanup(func() { engine.Stop(context.Background()) })
	api, err := httpapi.New(httpapi.Config{Store: store, Engine: engine, Policy: policy, MaxBodyBytes: opts.maxBody, Version: "test",
		Now: opts.now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("httpapi.New: %v", err)
	}
	t.Cleanup(api.Close) // after the server below, before the store
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)

	f := &fixture{t: t, srv: srv, store: store, adminKey: secret.NewAPIKey("hk_admin_")}
	if err := store.CreateAPIKey(ctx, &hookd.APIKey{ID: ids.New("key"), Hash: secret.HashKey(f.adminKey)}); err != nil {
		t.Fatalf("create admin key: %v", err)
	}
	for _, org := range []string{orgID, otherOrgID} {
		f.mustDo("POST", "/api/organizations", f.adminKey, `{"id":"`+org+`","name":"`+org+` inc"}`, http.StatusCreated, nil)
	}
	var k struct{ Key string }
	f.mustDo("POST", "/api/organizations/"+orgID+"/keys", f.adminKey, "", http.StatusCreated, &k)
	f.orgKey = k.Key
	f.mustDo("POST", "/api/organizations/"+otherOrgID+"/keys", f.adminKey, "", http.StatusCreated, &k)
	f.otherKey = k.Key
	return f
}

// response is an answer of the API, its body read.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request with the bearer key (none if key is "") and headers given
// as "Name: value" strings.
func (f *fixture) do(method, path, key, body string, headers ...string) response {
	f.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, f.srv.URL+path, rd)
	if err != nil {
		f.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(k, strings.TrimSpace(v))
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		f.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// mustDo is do that fails the test unless the status is want, then decodes the
// body into out (if not nil).
func (f *fixture) mustDo(method, path, key, body string, want int, out any) response {
	f.t.Helper()
	r := f.do(method, path, key, body)
	if r.status != want {
		f.t.Fatalf("%s %s = %d %s, want %d", method, path, r.status, r.body, want)
	}
	if out != nil {
		if err := json.Unmarshal(r.body, out); err != nil {
			f.t.Fatalf("%s %s: decode %s: %v", method, path, r.body, err)
		}
	}
	return r
}

// apiError is the error shape of SPEC §1.
type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field"`
	} `json:"error"`
}

// checkError checks that r is a JSON error with the given status and code
// (any code if ""), and a message, and returns it.
func checkError(t *testing.T, r response, status int, code string) apiError {
	t.Helper()
	var e apiError
	if r.status != status {
		t.Errorf("status = %d, want %d (body %s)", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Errorf("body %s is not an error object: %v", r.body, err)
		return e
	}
	if code != "" && e.Error.Code != code {
		t.Errorf("error.code = %q, want %q (body %s)", e.Error.Code, code, r.body)
	}
	if strings.TrimSpace(e.Error.Message) == "" {
		t.Errorf("error.message is empty (body %s)", r.body)
	}
	return e
}

// page is the list shape of SPEC §1.
type page struct {
	Data       []json.RawMessage `json:"data"`
	NextCursor *string           `json:"next_cursor"`
}

// snapshot is everything a rejected request must leave unchanged, as the admin
// key lists it.
type snapshot map[string]string

func (f *fixture) snapshot() snapshot {
	f.t.Helper()
	s := snapshot{}
	for _, path := range []string{"/api/webhooks?limit=500", "/api/events?limit=500", "/api/deliveries?limit=500"} {
		r := f.mustDo("GET", path, f.adminKey, "", http.StatusOK, nil)
		s[path] = string(r.body)
	}
	return s
}

// checkUnchanged fails the test unless the state is before, and returns the
// state now.
func (f *fixture) checkUnchanged(before snapshot) snapshot {
	f.t.Helper()
	after := f.snapshot()
	for path, b := range before {
		if after[path] != b {
			f.t.Errorf("something was stored: GET %s\nbefore: %s\nafter:  %s", path, b, after[path])
		}
	}
	return after
}

// createEndpoint creates an endpoint of acme with the organization key and
// returns its id.
func (f *fixture) createEndpoint(body string) string {
	f.t.Helper()
	var ep struct{ ID string }
	f.mustDo("POST", "/api/webhooks", f.orgKey, body, http.StatusCreated, &ep)
	return ep.ID
}

// golden compares got with testdata/name.golden, rewriting it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from %s (go test -update rewrites it):\ngot:\n%s\nwant:\n%s", name, path, got, want)
	}
}
