package sqlite

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// openWAL opens a store in a new directory and returns it with its WAL file's
// path and a function that commits n MiB in commits of 1 MiB each (relaxed,
// as outcomes are) to a scratch table.
func openWAL(t *testing.T) (db *DB, wal string, writeMiB func(n int)) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "hookd.db")
	db = openTest(t, Config{Path: path})
	if err := db.write(t.Context(), func(tx wtx) error {
		_, err := tx.Exec(`CREATE TABLE scratch (b BLOB)`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	blob := bytes.Repeat([]byte{0xa5}, 1<<20)
	return db, path + "-wal", func(n int) {
		t.Helper()
		for range n {
			if err := db.writeRelaxed(t.Context(), func(tx wtx) error {
				_, err := tx.Exec(`INSERT INTO scratch (b) VALUES (?)`, blob)
				return err
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func walSize(t *testing.T, wal string) int64 {
	t.Helper()
	fi, err := os.Stat(wal)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestWALTrimmedWhenStartedOver: while a read holds an old snapshot, no
// checkpoint can start the WAL over and it grows past the checkpoint threshold; once
// the read ends, the next checkpoint starts it over and trims the file to
// walSizeLimit instead of keeping its largest size for good.
func TestWALTrimmedWhenStartedOver(t *testing.T) {
	t.Parallel()
	db, wal, writeMiB := openWAL(t)
	rtx, err := db.r.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := rtx.QueryRow(`SELECT COUNT(*) FROM scratch`).Scan(&n); err != nil { // takes the snapshot
		t.Fatal(err)
	}
	writeMiB(walSizeLimit>>20 + 16)
	if got := walSize(t, wal); got <= walSizeLimit {
		t.Fatalf("WAL under a long read = %d MiB, want > %d MiB (the test needs it to grow)", got>>20, walSizeLimit>>20)
	}
	if err := rtx.Rollback(); err != nil {
		t.Fatal(err)
	}
	writeMiB(2) // the first checkpoints all; the next starts the WAL over
	if got := walSize(t, wal); got > walSizeLimit+2<<20 {
		t.Fatalf("WAL after the read ended = %d MiB, want ≤ %d MiB", got>>20, (walSizeLimit+2<<20)>>20)
	}
}
