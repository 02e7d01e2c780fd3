package app_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hookd/hookd/app"
	"github.com/hookd/hookd/hookdtest"
	"github.com/hookd/hookd/internal/pgtest"
)

// onSharedStore configures an instance of the given role on the PostgreSQL
// database dbURL, with the master key every instance shares.
func onSharedStore(dbURL, role string) func(*app.Config) {
	return func(c *app.Config) {
		c.DatabaseURL, c.Role, c.MasterKey = dbURL, role, bytes.Repeat([]byte{0x17}, 32)
	}
}

// TestRoles: an API instance accepts and stores but delivers nothing; a worker
// on the same database delivers what the API accepted, woken at once by
// NOTIFY rather than its (here very slow) poll, and serves nothing but its health check.
func TestRoles(t *testing.T) {
	t.Parallel()
	u := pgtest.URL(t)
	api := hookdtest.Start(t, onSharedStore(u, app.RoleAPI))
	_, key := api.CreateOrg(t)
	r := hookdtest.NewReceiver(t)
	ep := api.CreateEndpoint(t, key, map[string]any{"url": r.URL(), "events": []string{"*"}})
	ev := api.Publish(t, key, map[string]any{"type": "order.created", "data": map[string]any{"n": 1}})
	r.NoMoreThan(t, 0, 300*time.Millisecond) // nothing delivers yet
	d := api.DeliveryFor(t, key, ev["id"].(string), ep["id"].(string))
	if d["status"] != "pending" || d["attempt_count"].(float64) != 0 {
		t.Fatalf("with only an API instance the delivery is %v with %v attempts, want pending with 0", d["status"], d["attempt_count"])
	}

	worker := hookdtest.Start(t, onSharedStore(u, app.RoleWorker), func(c *app.Config) {
		c.Engine.PollInterval = time.Hour // only a wake-up can make it claim after its first look
	})
	reqs := r.Wait(t, 1, 10*time.Second)
	if got := reqs[0].Header.Get("Webhook-Id"); got != ev["id"] {
		t.Errorf("worker delivered webhook-id %q, want %q", got, ev["id"])
	}
	api.WaitDeliveryStatus(t, key, d["id"].(string), "succeeded", 10*time.Second)

	// The worker is idle now, with an hour to its next poll: a new event reaches
	// it through NOTIFY.
	ev2 := api.Publish(t, key, map[string]any{"type": "order.created", "data": map[string]any{"n": 2}})
	reqs = r.Wait(t, 2, 10*time.Second)
	if got := reqs[1].Header.Get("Webhook-Id"); got != ev2["id"] {
		t.Errorf("second delivery webhook-id %q, want %q", got, ev2["id"])
	}

	if status, _ := worker.Do(t, http.MethodGet, "/api/health", "", nil); status != http.StatusOK {
		t.Errorf("worker health = %d, want 200", status)
	}
	for _, path := range []string{"/api/webhooks", "/api/events", "/api/organizations"} {
		status, body := worker.Do(t, http.MethodGet, path, key, nil)
		if errObj, _ := body["error"].(map[string]any); status != http.StatusNotFound || errObj["code"] != "not_found" {
			t.Errorf("worker GET %s = %d %v, want 404 not_found (a worker serves only its health check)", path, status, body)
		}
	}
}

// TestAPIRoleOnEmbeddedStore: an API instance on the embedded store accepts and
// stores events and delivers none; restarted with role all on the same data
// directory, hookd delivers them (how a backlog is built to measure a drain).
func TestAPIRoleOnEmbeddedStore(t *testing.T) {
	t.Parallel()
	if hookdtest.OnPostgres() {
		t.Skip("the embedded store only")
	}
	h := hookdtest.Start(t, func(c *app.Config) { c.Role = app.RoleAPI })
	_, key := h.CreateOrg(t)
	r := hookdtest.NewReceiver(t)
	ep := h.CreateEndpoint(t, key, map[string]any{"url": r.URL(), "events": []string{"*"}})
	var evs []string
	for i := range 3 {
		evs = append(evs, h.Publish(t, key, map[string]any{"type": "order.created", "data": map[string]any{"n": i}})["id"].(string))
	}
	r.NoMoreThan(t, 0, 300*time.Millisecond)
	h.Restart(t, func(c *app.Config) { c.Role = app.RoleAll })
	reqs := r.Wait(t, 3, 10*time.Second)
	got := map[string]bool{}
	for _, req := range reqs {
		got[req.Header.Get("Webhook-Id")] = true
	}
	for _, id := range evs {
		if !got[id] {
			t.Errorf("event %s stored by the API instance was not delivered after the restart (got %v)", id, got)
		}
		h.WaitDeliveryStatus(t, key, h.DeliveryFor(t, key, id, ep["id"].(string))["id"].(string), "succeeded", 10*time.Second)
	}
}

// TestPprof: profiles are served on their own address only when asked for.
func TestPprof(t *testing.T) {
	t.Parallel()
	h := hookdtest.Start(t, func(c *app.Config) { c.PprofAddr = "127.0.0.1:0" })
	addr := h.App().PprofAddr()
	if addr == "" {
		t.Fatal("PprofAddr() is empty with Config.PprofAddr set")
	}
	resp, err := http.Get("http://" + addr + "/debug/pprof/heap?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /debug/pprof/heap on the pprof address = %d, want 200", resp.StatusCode)
	}
	if status, _ := h.Do(t, http.MethodGet, "/debug/pprof/", h.AdminKey, nil); status != http.StatusNotFound {
		t.Errorf("GET /debug/pprof/ on the API = %d, want 404", status)
	}
	if plain := hookdtest.Start(t); plain.App().PprofAddr() != "" {
		t.Errorf("PprofAddr() = %q without Config.PprofAddr, want none", plain.App().PprofAddr())
	}
}

// TestRoleNeedsDatabase: the worker role and a bad role are refused with the
// embedded store.
func TestRoleNeedsDatabase(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		cfg  app.Config
		want string
	}{
		{app.Config{Role: app.RoleWorker}, "database"},
		{app.Config{Role: "boss"}, "role"},
	} {
		if _, err := app.New(c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%+v) = %v, want an error mentioning %q", c.cfg, err, c.want)
		}
	}
}

// TestWrongMasterKeyOnSharedStore: an instance whose master key differs from the
// one the database's secrets were sealed with refuses to start.
func TestWrongMasterKeyOnSharedStore(t *testing.T) {
	t.Parallel()
	u := pgtest.URL(t)
	hookdtest.Start(t, onSharedStore(u, app.RoleAll))
	cfg := hookdtest.Config(t.TempDir())
	onSharedStore(u, app.RoleAll)(&cfg)
	cfg.MasterKey = bytes.Repeat([]byte{0x18}, 32)
	a, err := app.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "master key") {
		t.Errorf("Start with another master key = %v, want an error about the master key", err)
		a.Stop(context.Background())
	}
}
