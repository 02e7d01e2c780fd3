package postgres

import (
	"bytes"
	"testing"

	"github.com/hookd/hookd/internal/pgtest"
	"github.com/hookd/hookd/secret"
	"github.com/hookd/hookd/storetest"
)

// TestDeleteEndpointInChunks: see storetest.DeleteInChunks.
func TestDeleteEndpointInChunks(t *testing.T) {
	t.Parallel()
	sealer, err := secret.NewSealer(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	const chunk = 10
	db, err := Open(t.Context(), Config{URL: pgtest.URL(t), Sealer: sealer, DeleteChunk: chunk})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	storetest.DeleteInChunks(t, db, chunk, func(f func()) { db.deleted = f }, func() int {
		var n int
		err := db.pool.QueryRow(t.Context(), `SELECT count(*) FROM attempts a
			WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.seq = a.delivery_seq)`).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		return n
	})
}
