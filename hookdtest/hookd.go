// Package hookdtest holds test helpers: a webhook receiver on 127.0.0.1 and a running hookd.
package hookdtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/app"
	"github.com/hookd/hookd/delivery"
	"github.com/hookd/hookd/internal/pgtest"
	"github.com/hookd/hookd/netguard"
)

// AdminKey is the admin API key of every hookd started by this package.
const AdminKey = "hk_admin_hookdtest_0123456789abcdef"

// Config returns the configuration Start uses before its configure functions
// run: 127.0.0.1:0, dataDir, AdminKey, the development policy (http and
// private targets allowed, as the receivers live on 127.0.0.1) and a fast
// engine: 20 ms polls, 2 s attempts, and 5 attempts 50–200 ms apart.
func Config(dataDir string) app.Config {
	return app.Config{
		Addr:     "127.0.0.1:0",
		DataDir:  dataDir,
		AdminKey: AdminKey,
		Policy:   netguard.Policy{AllowHTTP: true, AllowPrivate: true},
		Engine: delivery.Config{
			PollInterval:   20 * time.Millisecond,
			AttemptTimeout: 2 * time.Second,
			Retry:          hookd.RetryPolicy{MaxAttempts: 5, InitialInterval: 50 * time.Millisecond, MaxInterval: 200 * time.Millisecond},
		},
		ShutdownTimeout: 10 * time.Second,
	}
}

// Hookd is a running hookd (an app.App) with a small API client. Its methods are
// safe for concurrent use, except that Stop and Restart must not race each other.
type Hookd struct {
	// AdminKey is the admin API key.
	AdminKey string
	// DataDir is the data directory, kept across Restart.
	DataDir string

	client *http.Client

	mu   sync.Mutex
	cfg  app.Config
	app  *app.App // nil while stopped
	base string   // "http://127.0.0.1:port"
}

// StoreEnv names the environment variable that picks the store of every hookd
// Start runs: "postgres" runs it on a fresh schema of the PostgreSQL test
// database (see pgtest), anything else on the embedded SQLite store. make test
// runs the end-to-end suites both ways.
const StoreEnv = "HOOKD_TEST_STORE"

// OnPostgres reports whether Start runs hookd on PostgreSQL (StoreEnv).
func OnPostgres() bool { return os.Getenv(StoreEnv) == "postgres" }

// testMasterKey is the master key of every hookd on PostgreSQL, which must be given.
var testMasterKey = bytes.Repeat([]byte{0x42}, 32)

// Start starts hookd with Config(t.TempDir()) changed by configure, and stops it
// when the test ends. Its log goes to t.Log.
func Start(t testing.TB, configure ...func(*app.Config)) *Hookd {
	t.Helper()
	cfg := Config(t.TempDir())
	cfg.Logger = testLogger(t)
	if OnPostgres() {
		cfg.DatabaseURL, cfg.MasterKey = pgtest.URL(t), testMasterKey
	}
	for _, f := range configure {
		f(&cfg)
	}
	h := &Hookd{AdminKey: cfg.AdminKey, DataDir: cfg.DataDir, cfg: cfg,
		client: &http.Client{Transport: &http.Transport{}, Timeout: 30 * time.Second}}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := h.Stop(ctx); err != nil {
			t.Errorf("stop hookd: %v", err)
		}
		h.client.CloseIdleConnections()
	})
	h.start(t)
	return h
}

func (h *Hookd) start(t testing.TB) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	a, err := app.New(h.cfg)
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatalf("start hookd: %v", err)
	}
	h.app, h.base = a, "http://"+a.Addr()
}

// App returns the running App, or nil while stopped.
func (h *Hookd) App() *app.App {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.app
}

// URL returns the API's base URL, such as "http://127.0.0.1:41234". It changes
// with Restart.
func (h *Hookd) URL() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.base
}

// Stop stops the running App (a no-op while stopped) and returns App.Stop's error.
func (h *Hookd) Stop(ctx context.Context) error {
	h.mu.Lock()
	a := h.app
	h.app = nil
	h.mu.Unlock()
	if a == nil {
		return nil
	}
	return a.Stop(ctx)
}

// Restart stops the App if it runs (failing the test if Stop fails) and starts a
// new one on the same data directory, with the configuration changed by
// configure (the changes last for later restarts too).
func (h *Hookd) Restart(t testing.TB, configure ...func(*app.Config)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.Stop(ctx); err != nil {
		t.Fatalf("stop hookd: %v", err)
	}
	h.mu.Lock()
	for _, f := range configure {
		f(&h.cfg)
	}
	h.cfg.DataDir = h.DataDir
	h.mu.Unlock()
	h.start(t)
}

// Raw sends a request to the API with key as the bearer key ("" for none) and
// returns the answer's status, header and body. It fails the test on a
// transport error.
func (h *Hookd) Raw(t testing.TB, method, path, key string, header http.Header, body []byte) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, h.URL()+path, rd)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	for k, vs := range header {
		req.Header[http.CanonicalHeaderKey(k)] = vs
	}
	if body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read answer: %v", method, path, err)
	}
	return resp.StatusCode, resp.Header, b
}

// Do sends a request to the API and decodes the JSON object it answers (nil if
// the answer is not a JSON object). body is sent as is if it is a []byte or a
// string, as JSON otherwise, and not at all if nil.
func (h *Hookd) Do(t testing.TB, method, path, key string, body any) (int, map[string]any) {
	t.Helper()
	return h.DoHeader(t, method, path, key, nil, body)
}

// DoHeader is Do with extra request headers.
func (h *Hookd) DoHeader(t testing.TB, method, path, key string, header http.Header, body any) (int, map[string]any) {
	t.Helper()
	var raw []byte
	switch b := body.(type) {
	case nil:
	case []byte:
		raw = b
	case string:
		raw = []byte(b)
	default:
		var err error
		if raw, err = json.Marshal(body); err != nil {
			t.Fatalf("%s %s: encode body: %v", method, path, err)
		}
	}
	status, _, answer := h.Raw(t, method, path, key, header, raw)
	var m map[string]any
	if err := json.Unmarshal(answer, &m); err != nil {
		m = nil
	}
	return status, m
}

// must fails the test unless the request answered want, and returns the answer.
func (h *Hookd) must(t testing.TB, want int, method, path, key string, body any) map[string]any {
	t.Helper()
	status, m := h.Do(t, method, path, key, body)
	if status != want {
		t.Fatalf("%s %s = %d %v, want %d", method, path, status, m, want)
	}
	return m
}

// Get fails the test unless GET path answers 200, and returns the answer.
func (h *Hookd) Get(t testing.TB, key, path string) map[string]any {
	t.Helper()
	return h.must(t, http.StatusOK, http.MethodGet, path, key, nil)
}

// CreateOrg creates an organization with the admin key and a key for it, and
// returns both ids.
func (h *Hookd) CreateOrg(t testing.TB) (orgID, orgKey string) {
	t.Helper()
	org := h.must(t, http.StatusCreated, http.MethodPost, "/api/organizations", h.AdminKey, map[string]any{"name": t.Name()})
	orgID, _ = org["id"].(string)
	k := h.must(t, http.StatusCreated, http.MethodPost, "/api/organizations/"+orgID+"/keys", h.AdminKey, nil)
	orgKey, _ = k["key"].(string)
	if orgID == "" || orgKey == "" {
		t.Fatalf("create organization: got id %q and key %q", orgID, orgKey)
	}
	return orgID, orgKey
}

// CreateEndpoint registers an endpoint (POST /api/webhooks), failing the test
// unless it answers 201, and returns it (with its "secret").
func (h *Hookd) CreateEndpoint(t testing.TB, key string, body map[string]any) map[string]any {
	t.Helper()
	return h.must(t, http.StatusCreated, http.MethodPost, "/api/webhooks", key, body)
}

// Publish publishes an event (POST /api/events), failing the test unless it
// answers 202, and returns the answer ({"id", "deliveries", …}).
func (h *Hookd) Publish(t testing.TB, key string, body map[string]any) map[string]any {
	t.Helper()
	return h.must(t, http.StatusAccepted, http.MethodPost, "/api/events", key, body)
}

// DeliveryFor returns the one delivery of event eventID to endpoint endpointID.
func (h *Hookd) DeliveryFor(t testing.TB, key, eventID, endpointID string) map[string]any {
	t.Helper()
	q := url.Values{"event": {eventID}, "webhook": {endpointID}}
	ds := Items(h.Get(t, key, "/api/deliveries?"+q.Encode()))
	if len(ds) != 1 {
		t.Fatalf("deliveries of event %s to %s: got %d, want 1: %v", eventID, endpointID, len(ds), ds)
	}
	return ds[0]
}

// WaitDelivery polls GET /api/deliveries/{id} until ok accepts it, and returns
// it. It fails the test after timeout, showing the last answer.
func (h *Hookd) WaitDelivery(t testing.TB, key, id string, timeout time.Duration, ok func(d map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		d := h.Get(t, key, "/api/deliveries/"+id)
		if ok(d) {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery %s: condition not met within %s; last: %s", id, timeout, JSON(d))
		}
		<-tick.C
	}
}

// WaitDeliveryStatus waits until delivery id has the given status and returns it.
func (h *Hookd) WaitDeliveryStatus(t testing.TB, key, id, status string, timeout time.Duration) map[string]any {
	t.Helper()
	return h.WaitDelivery(t, key, id, timeout, func(d map[string]any) bool { return d["status"] == status })
}

// Items returns the "data" array of a list answer as objects.
func Items(list map[string]any) []map[string]any {
	raw, _ := list["data"].([]any)
	out := make([]map[string]any, 0, len(raw))
	for _, v := range raw {
		if m, ok := v.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// JSON returns v as indented JSON, for failure messages.
func JSON(v any) string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// testLogger returns a logger writing to t.Log until the test's cleanups are done.
func testLogger(t testing.TB) *slog.Logger {
	w := &logWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.done = true
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type logWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(string(bytes.TrimRight(p, "\n")))
	}
	return len(p), nil
}
