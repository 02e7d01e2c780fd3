package sqlite_test

import (
	"database/sql"
	"errors"
	"path/filepath"
	"sync"
	"testing"
)

// TestPingWritesOncePerSecond: Ping writes a heartbeat (so that a disk that
// refuses writes fails it), and concurrent or repeated checks within a second
// share one write, so that health checks cannot load the writer.
func TestPingWritesOncePerSecond(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "hookd.db")
	db := openAt(t, path)
	ro, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ro.Close() })
	heartbeat := func() string {
		t.Helper()
		var v []byte
		err := ro.QueryRow(`SELECT value FROM meta WHERE key = 'health'`).Scan(&v)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			t.Fatalf("read heartbeat: %v", err)
		}
		return string(v)
	}
	if hb := heartbeat(); hb != "" {
		t.Fatalf("heartbeat %q before any Ping", hb)
	}
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if err := db.Ping(t.Context()); err != nil {
				t.Errorf("Ping: %v", err)
			}
		})
	}
	wg.Wait()
	first := heartbeat()
	if first == "" {
		t.Fatal("no heartbeat written by Ping")
	}
	for range 20 {
		if err := db.Ping(t.Context()); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	}
	if hb := heartbeat(); hb != first {
		t.Errorf("heartbeat %q rewritten to %q by checks within a second of it", first, hb)
	}
}
