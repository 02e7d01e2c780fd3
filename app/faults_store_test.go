package app_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd/app"
	"github.com/hookd/hookd/hookdtest"
	"github.com/hookd/hookd/internal/pgtest"
)

// storeFault makes a running hookd's store refuse its writes, for real, and
// heals it.
type storeFault struct {
	name string
	// configure prepares hookd for the fault (before it starts).
	configure func(*app.Config)
	// inject starts the fault on the hookd started with configure; heal ends it.
	inject, heal func(t *testing.T, h *hookdtest.Hookd)
	// logWant is a piece of what hookd logs about the failing store.
	logWant string
	// readsWork: reads keep answering during the fault.
	readsWork bool
}

// sqliteReadOnlyFault makes the embedded store's files immutable (chattr +i):
// the kernel then refuses every write to them, also through the descriptors
// hookd holds open, with EPERM — what a disk remounted read-only or failing
// does (EROFS, EIO), and unlike chmod, which root and open descriptors ignore.
// The shared-memory index (-shm) is left alone: it is mapped, and a refused
// write to a mapping is a SIGBUS, which no disk error causes.
func sqliteReadOnlyFault() storeFault {
	files := func(h *hookdtest.Hookd) []string {
		return []string{filepath.Join(h.DataDir, "hookd.db"), filepath.Join(h.DataDir, "hookd.db-wal")}
	}
	chattr := func(t *testing.T, flag string, paths []string) error {
		t.Helper()
		out, err := exec.Command("chattr", append([]string{flag}, paths...)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("chattr %s: %v: %s", flag, err, out)
		}
		return nil
	}
	return storeFault{
		name:      "sqlite files immutable",
		configure: func(*app.Config) {},
		inject: func(t *testing.T, h *hookdtest.Hookd) {
			t.Helper()
			paths := files(h)
			t.Cleanup(func() { chattr(t, "-i", paths) }) // or the temporary directory stays
			if err := chattr(t, "+i", paths); err != nil {
				t.Skipf("cannot make the store's files immutable here (needs root and ext4/xfs/btrfs): %v", err)
			}
		},
		heal: func(t *testing.T, h *hookdtest.Hookd) {
			t.Helper()
			if err := chattr(t, "-i", files(h)); err != nil {
				t.Fatal(err)
			}
		},
		logWant:   "operation not permitted",
		readsWork: true,
	}
}

// postgresDownFault runs hookd as a role of its own, and takes the database
// away from it: the role may no longer log in (ALTER ROLE … NOLOGIN) and its
// sessions are ended (pg_terminate_backend), as when the primary goes down or
// fails over; healing lets it log in again.
func postgresDownFault(t *testing.T) storeFault {
	t.Helper()
	ctx := context.Background()
	admin := func(t *testing.T, sql string, args ...any) {
		t.Helper()
		ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, pgtest.BaseURL())
		if err != nil {
			t.Fatalf("connect to postgres: %v", err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	b := make([]byte, 6)
	rand.Read(b)
	role := "hookd_faults_" + hex.EncodeToString(b)
	admin(t, "CREATE ROLE "+role+" LOGIN")
	// After the schema is dropped (pgtest.URL's cleanup runs first).
	t.Cleanup(func() { admin(t, "DROP ROLE IF EXISTS "+role) })
	u, err := url.Parse(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	schema := u.Query().Get("search_path")
	admin(t, "GRANT ALL ON SCHEMA "+schema+" TO "+role)
	// The schema's objects belong to the role: drop them before the role.
	t.Cleanup(func() { admin(t, "DROP OWNED BY "+role+" CASCADE") })
	u.User = url.User(role)
	terminate := func(t *testing.T) {
		admin(t, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", role)
	}
	return storeFault{
		name:      "postgres unreachable",
		configure: func(c *app.Config) { c.DatabaseURL = u.String() },
		inject: func(t *testing.T, _ *hookdtest.Hookd) {
			admin(t, "ALTER ROLE "+role+" NOLOGIN")
			t.Cleanup(func() { admin(t, "ALTER ROLE "+role+" LOGIN") })
			terminate(t)
		},
		heal:    func(t *testing.T, _ *hookdtest.Hookd) { admin(t, "ALTER ROLE "+role+" LOGIN") },
		logWant: "is not permitted to log in",
	}
}

// TestFaultsStore makes the store refuse writes while hookd runs (on the store
// HOOKD_TEST_STORE picks: SQLite's files made immutable, or PostgreSQL taken
// away) and checks that hookd answers publishes at once with SPEC's error
// shape and a 5xx (nothing stored: the same ids are accepted as new once
// healed), logs the cause, keeps running, and resumes when the store heals:
// every accepted event, including those whose attempt could not be recorded
// during the fault, reaches its endpoint.
func TestFaultsStore(t *testing.T) {
	t.Parallel()
	var sf storeFault
	if hookdtest.OnPostgres() {
		sf = postgresDownFault(t)
	} else {
		sf = sqliteReadOnlyFault()
	}
	hold := 2 * time.Second
	if faultsLong() {
		hold = 20 * time.Second
	}
	logs := &syncBuffer{}
	e := setup(t, sf.configure, func(c *app.Config) {
		// A short lease, so that attempts whose outcome could not be
		// recorded run again soon after healing.
		c.Engine.Lease = 5 * time.Second
		c.Logger = slog.New(slog.NewTextHandler(logs, nil))
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("hookd's log:\n%s", logs.String())
		}
	})

	// The receiver holds its first answers until the fault is on, so that
	// their outcomes cannot be recorded.
	r := hookdtest.NewReceiver(t)
	gate := make(chan struct{})
	const held = 3
	r.Respond(func(n int, req *http.Request) (int, http.Header, string) {
		if n <= held {
			select {
			case <-gate:
			case <-req.Context().Done():
			}
		}
		return http.StatusOK, nil, "ok"
	})
	ep := e.endpoint(t, r.URL(), map[string]any{"events": []string{"store.fault"}})
	var accepted []string
	for i := range held {
		accepted = append(accepted, str(e.publish(t, fmt.Sprintf("before-%d", i), "store.fault", map[string]any{"n": i}), "id"))
	}
	r.Wait(t, held, 10*time.Second)

	sf.inject(t, e.h)
	close(gate)
	t.Logf("store fault on: %s", sf.name)

	// During the fault: every publish answers at once, 5xx, SPEC's error shape.
	var rejected []string
	var slowest time.Duration
	healthDown := false
	for i, end := 0, time.Now().Add(hold); i < 5 || time.Now().Before(end); i++ {
		id := fmt.Sprintf("during-%d", i)
		body, _ := json.Marshal(map[string]any{"id": id, "type": "store.fault", "data": map[string]any{"n": i}})
		start := time.Now()
		status, _, raw := e.h.Raw(t, http.MethodPost, "/api/events", e.key, nil, body)
		slowest = max(slowest, time.Since(start))
		var m map[string]any
		json.Unmarshal(raw, &m)
		switch {
		case status == http.StatusAccepted:
			t.Errorf("publish %s during the fault = 202 %s: accepted while the store refuses writes", id, raw)
			accepted = append(accepted, id)
		case status < 500 || errorCode(m) == "" || str(obj(m, "error"), "message") == "":
			t.Errorf("publish %s during the fault = %d %s, want a 5xx with {\"error\": {\"code\", \"message\"}}", id, status, raw)
		default:
			rejected = append(rejected, id)
		}
		hs, hm := e.h.Do(t, http.MethodGet, "/api/health", "", nil)
		if hs == http.StatusServiceUnavailable && str(hm, "status") != "ok" {
			healthDown = true
		}
		if sf.readsWork {
			if s, m := e.h.Do(t, http.MethodGet, "/api/deliveries?webhook="+str(ep, "id"), e.key, nil); s != http.StatusOK {
				t.Errorf("GET /api/deliveries during the fault = %d %v, want 200: reads need no writes", s, m)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if slowest > 10*time.Second {
		t.Errorf("the slowest publish during the fault took %s, want an answer within 10s", slowest)
	}
	if !healthDown {
		t.Errorf("GET /api/health never answered 503 while the store refused writes")
	}
	if !strings.Contains(logs.String(), sf.logWant) {
		t.Errorf("hookd's log does not name the cause (%q)", sf.logWant)
	}

	sf.heal(t, e.h)
	t.Logf("store healed after %d publishes were refused (slowest answer %s)", len(rejected), slowest.Round(time.Millisecond))
	waitFor(t, 30*time.Second, "health ok after healing", func() bool {
		s, _ := e.h.Do(t, http.MethodGet, "/api/health", "", nil)
		return s == http.StatusOK
	})
	// Nothing of a refused publish was stored: the same id is new now.
	for _, id := range rejected {
		res := e.publish(t, id, "store.fault", map[string]any{"retried": true})
		if res["duplicate"] == true {
			t.Errorf("publish %s after healing answered a duplicate: the refused publish was stored", id)
		}
		accepted = append(accepted, id)
	}
	for i := range 3 {
		accepted = append(accepted, str(e.publish(t, fmt.Sprintf("after-%d", i), "store.fault", map[string]any{"n": i}), "id"))
	}

	// Every accepted event reaches the endpoint (those attempted during the
	// fault again, once their lease ran out) and succeeds in the log.
	waitFor(t, 60*time.Second, "every accepted event delivered and recorded", func() bool {
		seen := map[string]bool{}
		for _, req := range r.Requests() {
			seen[req.Header.Get("Webhook-Id")] = true
		}
		for _, id := range accepted {
			if !seen[id] {
				return false
			}
		}
		ds := hookdtest.Items(e.h.Get(t, e.key, "/api/deliveries?limit=500&webhook="+str(ep, "id")))
		if len(ds) != len(accepted) {
			return false
		}
		for _, d := range ds {
			if str(d, "status") != "succeeded" {
				return false
			}
		}
		return true
	})
	t.Logf("%s: %d publishes refused during %s, %d events accepted, %d requests to the endpoint (%d held across the fault)",
		sf.name, len(rejected), hold, len(accepted), r.Count(), held)
}
