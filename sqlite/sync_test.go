package sqlite

import (
	"context"
	"testing"
)

// TestRelaxedWritesSkipFsync: a batch of only relaxed writes (leases, attempt
// outcomes) commits with synchronous=NORMAL (no fsync); any other write
// commits with FULL (fsync before it is acknowledged), also right after
// relaxed ones.
func TestRelaxedWritesSkipFsync(t *testing.T) {
	t.Parallel()
	db := openTest(t, Config{})
	mode := func(write func(context.Context, func(wtx) error) error) int {
		t.Helper()
		var m int
		if err := write(t.Context(), func(tx wtx) error { return tx.QueryRow(`PRAGMA synchronous`).Scan(&m) }); err != nil {
			t.Fatal(err)
		}
		return m
	}
	const normal, full = 1, 2
	for i, c := range []struct {
		name  string
		write func(context.Context, func(wtx) error) error
		want  int
	}{
		{"write", db.write, full},
		{"writeRelaxed", db.writeRelaxed, normal},
		{"writeRelaxed", db.writeRelaxed, normal},
		{"write", db.write, full},
		{"writeRelaxed", db.writeRelaxed, normal},
	} {
		if got := mode(c.write); got != c.want {
			t.Errorf("step %d: %s ran with synchronous=%d, want %d", i, c.name, got, c.want)
		}
	}
}
