package sqlite

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/hookd/hookd/secret"
)

// openTest opens a store for a test of this package's internals: in a new
// directory unless cfg.Path is set, with a fixed master key unless
// cfg.Sealer is set, closed when the test ends.
func openTest(t *testing.T, cfg Config) *DB {
	t.Helper()
	if cfg.Path == "" {
		cfg.Path = filepath.Join(t.TempDir(), "hookd.db")
	}
	if cfg.Sealer == nil {
		s, err := secret.NewSealer(bytes.Repeat([]byte{0x5a}, 32))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Sealer = s
	}
	db, err := Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
