package sqlite

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/hookd/hookd/secret"
	"github.com/hookd/hookd/storetest"
)

// TestDeleteEndpointInChunks: see storetest.DeleteInChunks.
func TestDeleteEndpointInChunks(t *testing.T) {
	t.Parallel()
	s, err := secret.NewSealer(bytes.Repeat([]byte{0x5a}, 32))
	if err != nil {
		t.Fatal(err)
	}
	const chunk = 10
	db, err := Open(t.Context(), Config{Path: filepath.Join(t.TempDir(), "hookd.db"), Sealer: s, DeleteChunk: chunk})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	storetest.DeleteInChunks(t, db, chunk, func(f func()) { db.deleted = f }, func() int {
		var n int
		err := db.r.QueryRowContext(t.Context(), `SELECT count(*) FROM attempts a
			WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.seq = a.delivery_seq)`).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		return n
	})
}
