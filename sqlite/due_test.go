package sqlite_test

import (
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/ids"
	"github.com/hookd/hookd/sqlite"
)

// TestClaimsReuseTheDueSummary: claims read the endpoints with due work once
// and reuse that summary while only outcomes are written, but read it again
// after anything that may add due work (a publish, an outcome's emitted
// event, a retry) and once it is older than its TTL.
func TestClaimsReuseTheDueSummary(t *testing.T) {
	t.Parallel()
	db := openAt(t, filepath.Join(t.TempDir(), "hookd.db"))
	f := newFixture(t, db)
	ctx := t.Context()
	watcher := *f.ep
	watcher.ID, watcher.Events, watcher.URL = ids.New("ep"), []string{hookd.EventDeliveryFailed}, "https://watcher.example.com/"
	if err := db.CreateEndpoint(ctx, &watcher); err != nil {
		t.Fatal(err)
	}
	if _, err := db.UpdateEndpoint(ctx, f.org.ID, f.ep.ID, func(e *hookd.Endpoint) error {
		e.Events = []string{"a.b"}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	sqlite.SetDueTTL(db, time.Hour)
	now := time.Now()
	mustPublish(t, db, f.event("a.b", now), f.event("a.b", now))
	reads := sqlite.DueQueries(db)
	claim := func(step string, wantClaims, wantReads int, endpoint string) []*hookd.Claim {
		t.Helper()
		cs, err := db.ClaimDeliveries(ctx, hookd.ClaimParams{Limit: 1, Now: time.Now(), Lease: time.Minute})
		if err != nil {
			t.Fatalf("%s: ClaimDeliveries: %v", step, err)
		}
		if len(cs) != wantClaims {
			t.Fatalf("%s: %d claims, want %d", step, len(cs), wantClaims)
		}
		if len(cs) > 0 && cs[0].Endpoint.ID != endpoint {
			t.Errorf("%s: claimed a delivery to %s, want %s", step, cs[0].Endpoint.ID, endpoint)
		}
		if got := sqlite.DueQueries(db) - reads; got != int64(wantReads) {
			t.Errorf("%s: %d summaries read since the publish, want %d", step, got, wantReads)
		}
		return cs
	}
	first := claim("first claim", 1, 1, f.ep.ID)
	second := claim("second claim", 1, 1, f.ep.ID)
	outcome := func(c *hookd.Claim, status string, emit ...*hookd.Event) {
		t.Helper()
		at := time.Now()
		o := hookd.Outcome{DeliveryID: c.Delivery.ID, Lease: c.Lease, Status: status, Emit: emit,
			Attempt: hookd.Attempt{ID: ids.New("att"), DeliveryID: c.Delivery.ID, OrgID: c.Delivery.OrgID, Number: 1,
				URL: c.Endpoint.URL, StatusCode: 500, Error: "HTTP 500", CreatedAt: at}}
		if err := db.CompleteDeliveries(ctx, []hookd.Outcome{o}); err != nil {
			t.Fatal(err)
		}
	}
	outcome(first[0], hookd.DeliverySucceeded)
	claim("after an outcome", 0, 1, "")
	d := second[0].Delivery
	outcome(second[0], hookd.DeliveryFailed, hookd.NewDeliveryFailedEvent(ids.New("evt"), &d, 1, "HTTP 500", time.Now()))
	emitted := claim("after an outcome that emitted an event", 1, 2, watcher.ID)
	mustPublish(t, db, f.event("a.b", time.Now()))
	claim("after a publish", 1, 3, f.ep.ID)
	claim("nothing new", 0, 3, "")
	outcome(emitted[0], hookd.DeliveryFailed) // the watcher has nothing pending now
	sqlite.SetDueTTL(db, time.Millisecond)
	time.Sleep(5 * time.Millisecond)
	claim("past the TTL", 0, 4, "")
	sqlite.SetDueTTL(db, time.Hour)
	if _, err := db.RetryDelivery(ctx, f.org.ID, emitted[0].Delivery.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	claim("after a retry", 1, 5, watcher.ID)
}

// TestClaimsReadAhead: claims read an unordered endpoint's due deliveries
// ahead and take the next ones from what they read, oldest due first, without
// asking the database again until it is used up; new deliveries come once it
// is; an endpoint disabled meanwhile loses what was read for it.
func TestClaimsReadAhead(t *testing.T) {
	t.Parallel()
	db := openAt(t, filepath.Join(t.TempDir(), "hookd.db"))
	f := newFixture(t, db)
	ctx := t.Context()
	var evs []*hookd.Event
	for range 10 {
		evs = append(evs, f.event("a.b", time.Now()))
	}
	mustPublish(t, db, evs...)
	var order []string // event ids, as claimed
	reads := sqlite.DueReads(db)
	claim := func(step string, limit, wantClaims, wantReads int) []*hookd.Claim {
		t.Helper()
		cs, err := db.ClaimDeliveries(ctx, hookd.ClaimParams{Limit: limit, Now: time.Now(), Lease: time.Minute})
		if err != nil {
			t.Fatalf("%s: ClaimDeliveries: %v", step, err)
		}
		if len(cs) != wantClaims {
			t.Fatalf("%s: %d claims, want %d", step, len(cs), wantClaims)
		}
		for _, c := range cs {
			order = append(order, c.Event.ID)
		}
		if got := sqlite.DueReads(db) - reads; got != int64(wantReads) {
			t.Errorf("%s: %d reads of due deliveries in all, want %d", step, got, wantReads)
		}
		return cs
	}
	claim("first claim", 3, 3, 1)
	claim("from the read-ahead", 3, 3, 1)
	late := f.event("a.b", time.Now())
	mustPublish(t, db, late)
	claim("the rest of the read-ahead, then the new one", 5, 5, 2)
	want := []string{}
	for _, ev := range append(evs, late) {
		want = append(want, ev.ID)
	}
	if !slices.Equal(order, want) {
		t.Errorf("claimed events %v, want them in publish order %v", order, want)
	}

	evs = evs[:0]
	for range 4 {
		evs = append(evs, f.event("a.b", time.Now()))
	}
	mustPublish(t, db, evs...)
	claim("after another publish", 1, 1, 3)
	disable := func(enabled bool) {
		t.Helper()
		if _, err := db.UpdateEndpoint(ctx, f.org.ID, f.ep.ID, func(e *hookd.Endpoint) error {
			e.Enabled = enabled
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if n := sqlite.ReadAhead(db); n != 1 {
		t.Fatalf("read-ahead kept for %d endpoints, want 1", n)
	}
	disable(false)
	claim("endpoint disabled", 10, 0, 3)
	if n := sqlite.ReadAhead(db); n != 0 {
		t.Errorf("read-ahead kept for %d endpoints after the only one was disabled, want none", n)
	}
	disable(true)
	claim("enabled again: read anew", 10, 3, 4)
}

// TestConcurrentClaimsHoldMaxInFlight: claims running at once, each of which
// sees the same free slots and takes different deliveries read ahead, never
// lease more of an endpoint than its max_in_flight between them.
func TestConcurrentClaimsHoldMaxInFlight(t *testing.T) {
	t.Parallel()
	const claims, maxInFlight = 8, 2
	for round := range 10 {
		db := openAt(t, filepath.Join(t.TempDir(), "hookd.db"))
		f := newFixture(t, db)
		var evs []*hookd.Event
		for range 100 {
			evs = append(evs, f.event("a.b", base))
		}
		mustPublish(t, db, evs...)
		now := base.Add(time.Second)
		params := hookd.ClaimParams{Limit: 100, Now: now, Lease: time.Hour, MaxInFlight: maxInFlight}
		// A first claim reads ahead; its outcomes free the slots again.
		cs, err := db.ClaimDeliveries(t.Context(), params)
		if err != nil {
			t.Fatal(err)
		}
		var outs []hookd.Outcome
		for _, c := range cs {
			outs = append(outs, hookd.Outcome{DeliveryID: c.Delivery.ID, Lease: c.Lease, Status: hookd.DeliverySucceeded,
				Attempt: hookd.Attempt{ID: ids.New("att"), Number: 1, URL: f.ep.URL, StatusCode: 200, CreatedAt: now}})
		}
		if err := db.CompleteDeliveries(t.Context(), outs); err != nil {
			t.Fatal(err)
		}
		var total atomic.Int64
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range claims {
			wg.Go(func() {
				<-start
				cs, err := db.ClaimDeliveries(t.Context(), params)
				if err != nil {
					t.Error(err)
				}
				total.Add(int64(len(cs)))
			})
		}
		close(start)
		wg.Wait()
		if n := total.Load(); n > maxInFlight {
			t.Fatalf("round %d: %d concurrent claims leased %d deliveries of an endpoint with max_in_flight %d", round, claims, n, maxInFlight)
		}
	}
}
