package app_test

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd/app"
	"github.com/hookd/hookd/hookdtest"
	"github.com/hookd/hookd/internal/pgtest"
)

func TestRequestValidation(t *testing.T) {
	t.Parallel()
	e := setup(t, func(c *app.Config) { c.MaxBodyBytes = 4096 })
	r := hookdtest.NewReceiver(t)
	u := r.URL()
	cases := []struct {
		name, method, path string
		body               any
		status             int
		code, field        string
	}{
		{"too large", http.MethodPost, "/api/webhooks", map[string]any{"url": u, "events": []string{"*"}, "description": strings.Repeat("d", 5000)},
			http.StatusRequestEntityTooLarge, "payload_too_large", ""},
		{"invalid JSON", http.MethodPost, "/api/events", `{"type": `, http.StatusBadRequest, "invalid_json", ""},
		{"empty body", http.MethodPost, "/api/webhooks", "", http.StatusBadRequest, "invalid_json", ""},
		{"wrong type", http.MethodPost, "/api/webhooks", map[string]any{"url": 5, "events": []string{"*"}}, http.StatusBadRequest, "invalid_field", "url"},
		{"wrong nested type", http.MethodPost, "/api/webhooks", map[string]any{"url": u, "events": []string{"*"}, "retry": map[string]any{"max_attempts": "x"}},
			http.StatusBadRequest, "invalid_field", "retry.max_attempts"},
		{"unknown field", http.MethodPost, "/api/webhooks", map[string]any{"url": u, "events": []string{"*"}, "bogus": 1}, http.StatusBadRequest, "invalid_field", "bogus"},
		{"missing events", http.MethodPost, "/api/webhooks", map[string]any{"url": u}, http.StatusBadRequest, "invalid_field", "events"},
		{"missing url", http.MethodPost, "/api/webhooks", map[string]any{"events": []string{"*"}}, http.StatusBadRequest, "invalid_field", "url"},
		{"bad pattern", http.MethodPost, "/api/webhooks", map[string]any{"url": u, "events": []string{"invoice.*.paid"}}, http.StatusBadRequest, "invalid_field", "events"},
		{"reserved header", http.MethodPost, "/api/webhooks", map[string]any{"url": u, "events": []string{"*"}, "headers": map[string]string{"Webhook-Id": "x"}},
			http.StatusBadRequest, "invalid_field", "headers"},
		{"bad scheme", http.MethodPost, "/api/webhooks", map[string]any{"url": u, "events": []string{"*"}, "signature": map[string]any{"scheme": "md5"}},
			http.StatusBadRequest, "invalid_field", "signature.scheme"},
		{"bad secret", http.MethodPost, "/api/webhooks", map[string]any{"url": u, "events": []string{"*"}, "secret": "whsec_short"},
			http.StatusBadRequest, "invalid_field", "secret"},
		{"bad ordering", http.MethodPost, "/api/webhooks", map[string]any{"url": u, "events": []string{"*"}, "ordering": "lifo"},
			http.StatusBadRequest, "invalid_field", "ordering"},
		{"missing data", http.MethodPost, "/api/events", map[string]any{"type": "a.b"}, http.StatusBadRequest, "invalid_field", "data"},
		{"missing type", http.MethodPost, "/api/events", map[string]any{"data": map[string]any{}}, http.StatusBadRequest, "invalid_field", "type"},
		{"bad event id", http.MethodPost, "/api/events", map[string]any{"id": "a.b", "type": "a.b", "data": 1}, http.StatusBadRequest, "invalid_field", "id"},
		{"long event id", http.MethodPost, "/api/events", map[string]any{"id": strings.Repeat("a", 129), "type": "a.b", "data": 1}, http.StatusBadRequest, "invalid_field", "id"},
		{"unknown route", http.MethodGet, "/api/nope", nil, http.StatusNotFound, "not_found", ""},
		{"wrong method", http.MethodDelete, "/api/events", nil, http.StatusMethodNotAllowed, "method_not_allowed", ""},
	}
	for _, c := range cases {
		status, m := e.h.Do(t, c.method, c.path, e.key, c.body)
		if status != c.status || errorCode(m) != c.code || (c.field != "" && !strings.Contains(errorField(m), c.field)) ||
			str(obj(m, "error"), "message") == "" {
			t.Errorf("%s: %s %s = %d %v, want %d %s naming %q with a message", c.name, c.method, c.path, status, m, c.status, c.code, c.field)
		}
	}
	status, m := e.h.Do(t, http.MethodPost, "/api/webhooks", e.h.AdminKey, map[string]any{"url": u, "events": []string{"*"}})
	if status != http.StatusBadRequest || !strings.Contains(errorField(m), "organization") {
		t.Errorf("admin key creating an endpoint without organization = %d %v, want 400 naming organization", status, m)
	}
	if n := len(hookdtest.Items(e.h.Get(t, e.key, "/api/webhooks"))); n != 0 {
		t.Errorf("rejected requests stored %d endpoints", n)
	}
	if n := len(hookdtest.Items(e.h.Get(t, e.key, "/api/events"))); n != 0 {
		t.Errorf("rejected requests stored %d events", n)
	}

	ep := e.h.CreateEndpoint(t, e.key, map[string]any{"event": "usage_threshold", "url": u}) // SPEC's minimal form
	if evs, _ := ep["events"].([]any); len(evs) != 1 || evs[0] != "usage_threshold" || ep["enabled"] != true || str(ep, "secret") == "" {
		t.Errorf("minimal endpoint = %s, want events [usage_threshold], enabled, with a secret", hookdtest.JSON(ep))
	}
	if got := e.h.Get(t, e.key, "/api/webhooks/"+str(ep, "id")); got["secret"] != nil {
		t.Errorf("GET /api/webhooks/{id} shows the secret")
	}
	for _, patch := range []map[string]any{{"secret": "whsec_x"}, {"organization": "other"}, {"url": "not a url"}} {
		if status, m := e.h.Do(t, http.MethodPatch, "/api/webhooks/"+str(ep, "id"), e.key, patch); status != http.StatusBadRequest {
			t.Errorf("PATCH %v = %d %v, want 400", patch, status, m)
		}
	}

	status, health := e.h.Do(t, http.MethodGet, "/api/health", "", nil)
	if status != http.StatusOK || health["status"] != "ok" || str(health, "version") != app.Version || obj(health, "checks") == nil {
		t.Errorf("GET /api/health = %d %v, want 200 ok with checks and version %s", status, health, app.Version)
	}
}

func TestPaginationAndFilters(t *testing.T) {
	t.Parallel()
	e := setup(t)
	r := hookdtest.NewReceiver(t)
	var eps []string
	for range 3 {
		eps = append(eps, str(e.endpoint(t, r.URL(), map[string]any{"events": []string{"order.*"}}), "id"))
	}
	for i := 1; i <= 5; i++ {
		typ := "order.created"
		if i == 3 {
			typ = "order.paid"
		}
		e.publish(t, "p-"+strconv.Itoa(i), typ, map[string]any{"i": i})
	}
	r.Wait(t, 15, 5*time.Second)

	// walk follows next_cursor and returns the ids of every page's items.
	walk := func(path string, limit int) []string {
		t.Helper()
		var ids []string
		cursor := ""
		for page := 0; ; page++ {
			q := url.Values{"limit": {strconv.Itoa(limit)}}
			if cursor != "" {
				q.Set("cursor", cursor)
			}
			sep := "?"
			if strings.Contains(path, "?") {
				sep = "&"
			}
			m := e.h.Get(t, e.key, path+sep+q.Encode())
			items := hookdtest.Items(m)
			if len(items) > limit {
				t.Fatalf("%s: page of %d items, limit %d", path, len(items), limit)
			}
			for _, it := range items {
				ids = append(ids, str(it, "id"))
			}
			next, _ := m["next_cursor"].(string)
			if m["next_cursor"] != nil && next == "" || page > 20 {
				t.Fatalf("%s: next_cursor = %v", path, m["next_cursor"])
			}
			if next == "" {
				return ids
			}
			cursor = next
		}
	}
	if got, want := walk("/api/events", 2), []string{"p-5", "p-4", "p-3", "p-2", "p-1"}; !slices.Equal(got, want) {
		t.Errorf("events by pages of 2 = %v, want %v (newest first)", got, want)
	}
	if got := walk("/api/webhooks", 1); !slices.Equal(got, eps) {
		t.Errorf("endpoints by pages of 1 = %v, want %v (oldest first)", got, eps)
	}
	if got := walk("/api/deliveries", 4); len(got) != 15 || len(slices.Compact(slices.Sorted(slices.Values(got)))) != 15 {
		t.Errorf("deliveries by pages of 4: %d ids (%d distinct), want 15", len(got), len(slices.Compact(slices.Sorted(slices.Values(got)))))
	}
	if got := walk("/api/events?type=order.paid", 2); !slices.Equal(got, []string{"p-3"}) {
		t.Errorf("events of type order.paid = %v, want [p-3]", got)
	}
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	if got := walk("/api/events?since="+future, 2); len(got) != 0 {
		t.Errorf("events since %s = %v, want none", future, got)
	}
	if got := walk("/api/deliveries?webhook="+eps[0], 9); len(got) != 5 {
		t.Errorf("deliveries of one endpoint = %d, want 5", len(got))
	}
	for _, path := range []string{"/api/events?limit=0", "/api/events?limit=501", "/api/events?limit=x", "/api/events?cursor=garbage",
		"/api/deliveries?status=bogus", "/api/events?since=yesterday"} {
		if status, m := e.h.Do(t, http.MethodGet, path, e.key, nil); status != http.StatusBadRequest || errorCode(m) != "invalid_field" {
			t.Errorf("GET %s = %d %v, want 400 invalid_field", path, status, m)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestAdminKeyBootstrap(t *testing.T) {
	t.Parallel()
	var log syncBuffer
	h := hookdtest.Start(t, func(c *app.Config) {
		c.AdminKey = ""
		c.Logger = slog.New(slog.NewTextHandler(&log, nil))
	})
	path := h.App().AdminKeyFile
	if path != filepath.Join(h.DataDir, "admin.key") {
		t.Fatalf("AdminKeyFile = %q, want %s", path, filepath.Join(h.DataDir, "admin.key"))
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin key file: %v; want mode 0600", err)
	}
	b, _ := os.ReadFile(path)
	key := strings.TrimSpace(string(b))
	if status, m := h.Do(t, http.MethodPost, "/api/organizations", key, map[string]any{"name": "boot"}); status != http.StatusCreated {
		t.Errorf("create organization with the generated admin key = %d %v", status, m)
	}
	if !strings.Contains(log.String(), path) || strings.Contains(log.String(), key) {
		t.Errorf("log should name the admin key file and never the key:\n%s", log.String())
	}

	h.Restart(t)
	if f := h.App().AdminKeyFile; f != "" {
		t.Errorf("after restart AdminKeyFile = %q, want \"\" (the key exists)", f)
	}
	if b2, _ := os.ReadFile(path); !bytes.Equal(b, b2) {
		t.Errorf("restart rewrote the admin key file")
	}
	if status, m := h.Do(t, http.MethodGet, "/api/webhooks", key, nil); status != http.StatusOK {
		t.Errorf("the admin key after restart: GET /api/webhooks = %d %v", status, m)
	}
	if hookdtest.OnPostgres() {
		return // the master key is given on PostgreSQL, never a file
	}
	if fi, err := os.Stat(filepath.Join(h.DataDir, "master.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("master key file: %v, want mode 0600", err)
	}
}

func TestDataDirInUse(t *testing.T) {
	t.Parallel()
	if hookdtest.OnPostgres() {
		t.Skip("the data dir lock guards the embedded store; instances sharing PostgreSQL do not take it")
	}
	h := hookdtest.Start(t)
	cfg := hookdtest.Config(h.DataDir)
	cfg.Logger = slog.New(slog.DiscardHandler)
	a, err := app.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("second App on a data dir in use: Start = %v, want an error saying so", err)
		a.Stop(context.Background())
	}
	if status, _ := h.Do(t, http.MethodGet, "/api/health", "", nil); status != http.StatusOK {
		t.Errorf("the first App stopped answering: health = %d", status)
	}
}

func TestNetworkErrorRetried(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/hooks"
	ln.Close()
	ep := e.endpoint(t, closed, map[string]any{"events": []string{"order.created"}, "retry": fastRetry(2)})
	res := e.publish(t, "", "order.created", map[string]any{"n": 1})
	d := e.h.DeliveryFor(t, e.key, str(res, "id"), str(ep, "id"))
	d = e.h.WaitDeliveryStatus(t, e.key, str(d, "id"), "failed", 5*time.Second)
	as := attempts(d)
	if len(as) != 2 {
		t.Fatalf("got %d attempts, want 2: %s", len(as), hookdtest.JSON(d))
	}
	for _, a := range as {
		if a["response_status"] != nil || !strings.Contains(str(a, "error"), "refused") {
			t.Errorf("attempt to a closed port = %s, want no response_status and a connection error", hookdtest.JSON(a))
		}
	}
}

// TestAutovacuumWarning: hookd on a PostgreSQL server that runs without
// autovacuum says so when it starts (its queue tables would fill with dead
// rows), and says nothing of it on one that runs it.
func TestAutovacuumWarning(t *testing.T) {
	t.Parallel()
	if !hookdtest.OnPostgres() {
		t.Skip("a PostgreSQL setting; the embedded store has no autovacuum")
	}
	conn, err := pgx.Connect(t.Context(), pgtest.BaseURL())
	if err != nil {
		t.Fatal(err)
	}
	var setting string
	err = conn.QueryRow(t.Context(), `SHOW autovacuum`).Scan(&setting)
	conn.Close(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var log syncBuffer
	hookdtest.Start(t, func(c *app.Config) { c.Logger = slog.New(slog.NewTextHandler(&log, nil)) })
	warned := strings.Contains(log.String(), "autovacuum off")
	if want := setting == "off"; warned != want {
		t.Errorf("server's autovacuum = %s; warned = %v, want %v; log:\n%s", setting, warned, want, log.String())
	}
}
