package sqlite_test

import (
	"bytes"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/secret"
	"github.com/hookd/hookd/sqlite"
)

// TestWrongMasterKeyRefusesToOpen checks that a database whose secrets were sealed
// with one master key does not open with another: failing at start is the only
// safe answer, since every delivery would fail later.
func TestWrongMasterKeyRefusesToOpen(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "hookd.db")
	db := openAt(t, path)
	newFixture(t, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	other, err := secret.NewSealer(bytes.Repeat([]byte{0x11}, 32))
	if err != nil {
		t.Fatal(err)
	}
	if db, err := sqlite.Open(t.Context(), sqlite.Config{Path: path, Sealer: other}); !errors.Is(err, sqlite.ErrWrongMasterKey) {
		if err == nil {
			db.Close()
		}
		t.Fatalf("Open with another master key = %v, want ErrWrongMasterKey", err)
	}
	openAt(t, path) // the right key still opens it
}

// TestClaimSetsAsideUnreadableRow checks that one delivery whose endpoint secret
// cannot be opened does not stop the claim of every other delivery: it is left
// out, with the reason recorded, and due again later.
func TestClaimSetsAsideUnreadableRow(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "hookd.db")
	db := openAt(t, path)
	good, bad := newFixture(t, db), newFixture(t, db)
	mustPublish(t, db, good.event("a.b", base), bad.event("a.b", base))

	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`UPDATE endpoints SET secret = x'0102030405' WHERE id = ?`, bad.ep.ID); err != nil {
		t.Fatal(err)
	}

	claims := mustClaim(t, db, base.Add(time.Second), time.Minute)
	if len(claims) != 1 || claims[0].Endpoint.ID != good.ep.ID {
		t.Fatalf("claimed %d deliveries, want only the readable endpoint's", len(claims))
	}
	ds, _, err := db.ListDeliveries(t.Context(), hookd.DeliveryFilter{EndpointID: bad.ep.ID})
	if err != nil || len(ds) != 1 {
		t.Fatalf("ListDeliveries = %v, %v", ds, err)
	}
	d := ds[0]
	if d.Status != hookd.DeliveryPending || !strings.Contains(d.LastError, "secret") || !d.NextAttemptAt.After(base.Add(30*time.Second)) {
		t.Errorf("unreadable delivery = status %q, error %q, next %v; want pending, the reason, due about a minute later",
			d.Status, d.LastError, d.NextAttemptAt)
	}
	if again := mustClaim(t, db, base.Add(2*time.Second), time.Minute); len(again) != 0 {
		t.Errorf("the set-aside delivery was claimed again at once")
	}
}

// TestDatabaseFilesArePrivate: the database holds event payloads; it and the
// files SQLite creates beside it are readable by the owner only.
func TestDatabaseFilesArePrivate(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "hookd.db")
	db := openAt(t, path)
	newFixture(t, db) // writes, so the -wal file exists
	for _, p := range []string{path, path + "-wal"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatalf("stat %s: %v", p, err)
		}
		if mode := fi.Mode().Perm(); mode&0o077 != 0 {
			t.Errorf("%s has mode %v, want no access for group and others", filepath.Base(p), mode)
		}
	}
}

// TestMasterKeyCheckOnOlderDatabase: a database whose secrets predate the check
// value must not accept (and record) a wrong key on its first open with the check.
func TestMasterKeyCheckOnOlderDatabase(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "hookd.db")
	db := openAt(t, path)
	newFixture(t, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`DELETE FROM meta`); err != nil { // as before the check existed
		t.Fatal(err)
	}
	raw.Close()
	other, _ := secret.NewSealer(bytes.Repeat([]byte{0x22}, 32))
	if db, err := sqlite.Open(t.Context(), sqlite.Config{Path: path, Sealer: other}); !errors.Is(err, sqlite.ErrWrongMasterKey) {
		if err == nil {
			db.Close()
		}
		t.Fatalf("Open with a wrong key of a database without the check = %v, want ErrWrongMasterKey", err)
	}
	openAt(t, path) // the right key opens it and records the check
}
