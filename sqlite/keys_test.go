package sqlite_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/ids"
	"github.com/hookd/hookd/sqlite"
)

// TestAPIKeysCachedUntilDeleted: a key found is read from the database once
// and then from memory; once DeleteAPIKey returns, it is found no more, even
// by a lookup that read it just before the deletion committed; unknown keys
// are read each time (never kept).
func TestAPIKeysCachedUntilDeleted(t *testing.T) {
	t.Parallel()
	db := openAt(t, filepath.Join(t.TempDir(), "hookd.db"))
	f := newFixture(t, db)
	ctx := t.Context()
	newKey := func() *hookd.APIKey {
		t.Helper()
		k := &hookd.APIKey{ID: ids.New("key"), OrgID: f.org.ID, Hash: ids.New("hash"), CreatedAt: time.Now().Truncate(time.Microsecond)}
		if err := db.CreateAPIKey(ctx, k); err != nil {
			t.Fatal(err)
		}
		return k
	}
	lookUp := func(step string, k *hookd.APIKey, found bool, wantReads int64) {
		t.Helper()
		before := sqlite.KeyReads(db)
		got, err := db.APIKeyByHash(ctx, k.Hash)
		switch {
		case found && (err != nil || got.ID != k.ID || got.OrgID != k.OrgID):
			t.Fatalf("%s: APIKeyByHash = %+v, %v; want key %s of %s", step, got, err, k.ID, k.OrgID)
		case !found && hookd.ErrorCode(err) != hookd.ENOTFOUND:
			t.Fatalf("%s: APIKeyByHash = %+v, %v; want not found", step, got, err)
		}
		if n := sqlite.KeyReads(db) - before; n != wantReads {
			t.Errorf("%s: %d reads from the database, want %d", step, n, wantReads)
		}
	}
	a, b := newKey(), newKey()
	lookUp("first lookup", a, true, 1)
	lookUp("second lookup", a, true, 0)
	lookUp("another key", b, true, 1)
	unknown := &hookd.APIKey{Hash: "no-such-hash"}
	lookUp("unknown key", unknown, false, 1)
	lookUp("unknown key again", unknown, false, 1)

	if err := db.DeleteAPIKey(ctx, f.org.ID, a.ID); err != nil {
		t.Fatal(err)
	}
	lookUp("after its deletion", a, false, 1)
	lookUp("a key not deleted", b, true, 1) // read again: a deletion forgets every key

	// A lookup reads c, then c is deleted before the lookup keeps it: the
	// lookup may answer with c (it began before the deletion), but no later
	// one may.
	c := newKey()
	sqlite.OnKeyRead(db, func() {
		sqlite.OnKeyRead(db, nil)
		if err := db.DeleteAPIKey(ctx, f.org.ID, c.ID); err != nil {
			t.Error(err)
		}
	})
	lookUp("lookup racing the deletion", c, true, 1)
	lookUp("after the deletion", c, false, 1)
}
