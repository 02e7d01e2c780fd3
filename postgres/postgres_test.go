package postgres_test

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/internal/pgtest"
	"github.com/hookd/hookd/postgres"
	"github.com/hookd/hookd/secret"
	"github.com/hookd/hookd/storetest"
)

// testURL returns the URL of a new, empty schema of the test database; see pgtest.
func testURL(t *testing.T) string { return pgtest.URL(t) }

// testSealer is the sealer of every test store.
func testSealer(t *testing.T) *secret.Sealer {
	t.Helper()
	s, err := secret.NewSealer(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatalf("NewSealer: %v", err)
	}
	return s
}

// openStore opens a store on a new schema, closed when the test ends.
func openStore(t *testing.T) *postgres.DB {
	t.Helper()
	db, _ := openStoreURL(t)
	return db
}

// openStoreURL is openStore, and the schema's URL, for tests that reach into
// the database beside the store.
func openStoreURL(t *testing.T) (*postgres.DB, string) {
	t.Helper()
	u := testURL(t)
	db, err := postgres.Open(t.Context(), postgres.Config{URL: u, Sealer: testSealer(t)})
	if err != nil {
		t.Fatalf("postgres.Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db, u
}

// holdInTx runs sql in a transaction of its own on the database at u and
// keeps that transaction, with the locks it took, open until release is
// called or the test ends.
func holdInTx(t *testing.T, u, sql string, args ...any) (release func()) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(t.Context())
	if err != nil {
		conn.Close(context.Background())
		t.Fatal(err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			tx.Rollback(context.Background())
			conn.Close(context.Background())
		})
	}
	t.Cleanup(release)
	if _, err := tx.Exec(t.Context(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return release
}

func TestStore(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) hookd.Store { return openStore(t) })
}

func tables(t *testing.T, dbURL string) map[string]bool {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(t.Context(), `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()`)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, n := range names {
		out[n] = true
	}
	return out
}

func TestOpenMigratesAndReopens(t *testing.T) {
	t.Parallel()
	u := testURL(t)
	for range 2 { // the second open finds nothing to apply
		db, err := postgres.Open(t.Context(), postgres.Config{URL: u, Sealer: testSealer(t)})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if err := db.Ping(t.Context()); err != nil {
			t.Errorf("Ping: %v", err)
		}
		db.Close()
	}
	got := tables(t, u)
	for _, want := range []string{"organizations", "api_keys", "endpoints", "events", "deliveries", "attempts",
		"partners", "audit_log", "rate_limits", "meta"} {
		if !got[want] {
			t.Errorf("table %s missing after migration; have %v", want, got)
		}
	}
}

// TestConcurrentOpensMigrateOnce: instances starting together on a fresh database
// all come up, and each migration is applied once.
func TestConcurrentOpensMigrateOnce(t *testing.T) {
	t.Parallel()
	u := testURL(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			db, err := postgres.Open(t.Context(), postgres.Config{URL: u, Sealer: testSealer(t)})
			if err == nil {
				db.Close()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent Open: %v", err)
		}
	}
	conn, err := pgx.Connect(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(t.Context(), `SELECT COUNT(*) FROM goose_db_version WHERE version_id > 0`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	files, err := fs.Glob(os.DirFS("migrations"), "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	if n != len(files) {
		t.Errorf("goose_db_version has %d applied migrations, want %d (each applied once)", n, len(files))
	}
}

func TestOpenUnreachable(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if db, err := postgres.Open(ctx, postgres.Config{URL: "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=2", Sealer: testSealer(t)}); err == nil {
		db.Close()
		t.Fatal("Open of an unreachable database succeeded")
	}
	if _, err := postgres.Open(ctx, postgres.Config{Sealer: testSealer(t)}); err == nil {
		t.Fatal("Open without a URL succeeded")
	}
}
