package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/ids"
)

// TestFanOutSeesEveryEndpointChange checks the writer's cache of subscribers: each
// publish is routed by the endpoints as they are after every create, update and
// delete, whatever was published (and cached) before.
func TestFanOutSeesEveryEndpointChange(t *testing.T) {
	t.Parallel()
	db := openAt(t, filepath.Join(t.TempDir(), "hookd.db"))
	f := newFixture(t, db)
	ctx := t.Context()
	fanout := func(what string, want int) {
		t.Helper()
		res, err := db.Publish(ctx, []*hookd.Event{f.event("a.b", base)})
		if err != nil {
			t.Fatalf("%s: Publish: %v", what, err)
		}
		if res[0].Deliveries != want {
			t.Errorf("%s: event fanned out to %d endpoints, want %d", what, res[0].Deliveries, want)
		}
	}
	fanout("one endpoint", 1) // fills the cache

	e2 := *f.ep
	e2.ID = ids.New("ep")
	if err := db.CreateEndpoint(ctx, &e2); err != nil {
		t.Fatal(err)
	}
	fanout("after a create", 2)

	if _, err := db.UpdateEndpoint(ctx, f.org.ID, e2.ID, func(e *hookd.Endpoint) error {
		e.Events = []string{"other.*"}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	fanout("after an update of its filter", 1)

	if err := db.DeleteEndpoint(ctx, f.org.ID, f.ep.ID); err != nil {
		t.Fatal(err)
	}
	fanout("after a delete", 0)

	// A failed write in the same batch must not leave a stale view behind.
	if _, err := db.Publish(ctx, []*hookd.Event{f.event("a.b", base), {ID: "x", OrgID: "no-such-org", Type: "a.b", Data: []byte(`{}`)}}); err == nil {
		t.Fatal("Publish to an unknown organization succeeded")
	}
	fanout("after a failed publish", 0)
}
