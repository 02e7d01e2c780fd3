package delivery_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/delivery"
)

// TestEngineSlowEndpointsNeverStarveOthers is SPEC §4's "a slow or failing endpoint
// never delays deliveries to other endpoints" at its hardest: several endpoints that
// hang, each allowed more attempts in flight than the engine has slots, with big
// backlogs, and one healthy endpoint whose single delivery must still go out at once.
func TestEngineSlowEndpointsNeverStarveOthers(t *testing.T) {
	t.Parallel()
	db, org := setup(t)
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(hang.Close)
	for range 4 {
		addEndpoint(t, db, org, hang.URL, func(e *hookd.Endpoint) { e.MaxInFlight = 1000; e.Events = []string{"slow"} })
	}
	slow := make([]*hookd.Event, 200)
	for i := range slow {
		slow[i] = &hookd.Event{ID: "s" + string(rune('a'+i%26)) + time.Now().Format("150405.000000000")[7:] + string(rune('a'+i/26)),
			OrgID: org, Type: "slow", Data: []byte(`{}`), CreatedAt: time.Now()}
	}
	if _, err := db.Publish(context.Background(), slow); err != nil {
		t.Fatal(err)
	}
	fast := newReceiver(t, 0, 1)
	addEndpoint(t, db, org, fast.URL, func(e *hookd.Endpoint) { e.Events = []string{"fast"} })
	startEngine(t, db, func(c *delivery.Config) { c.Concurrency = 16; c.AttemptTimeout = 10 * time.Second })
	t.Cleanup(func() { close(release) }) // before the engine's Stop, which waits for attempts

	time.Sleep(100 * time.Millisecond) // let the slow endpoints take every slot they can
	start := time.Now()
	if _, err := db.Publish(context.Background(), []*hookd.Event{{ID: "fast-1", OrgID: org, Type: "fast", Data: []byte(`{}`), CreatedAt: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	fast.wait(t, 5*time.Second)
	// Starved, it would wait for a hanging attempt's 10 s timeout.
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the healthy endpoint's delivery took %v behind hanging endpoints, want far less than their 10 s timeout", d)
	}
}

// countingStore counts what the engine asks of the real store.
type countingStore struct {
	delivery.Store
	claimed, released atomic.Int64
}

func (s *countingStore) ClaimDeliveries(ctx context.Context, p hookd.ClaimParams) ([]*hookd.Claim, error) {
	cs, err := s.Store.ClaimDeliveries(ctx, p)
	s.claimed.Add(int64(len(cs)))
	return cs, err
}

func (s *countingStore) ReleaseDeliveries(ctx context.Context, rs []hookd.Release) error {
	s.released.Add(int64(len(rs)))
	return s.Store.ReleaseDeliveries(ctx, rs)
}

// TestEngineClaimsOnlyWhatItCanSend checks that an endpoint with a small
// max_in_flight and a big backlog is claimed only up to its free capacity, so
// nothing is claimed just to be released again.
func TestEngineClaimsOnlyWhatItCanSend(t *testing.T) {
	t.Parallel()
	db, org := setup(t)
	r := newReceiver(t, 5*time.Millisecond, 200)
	ep := addEndpoint(t, db, org, r.URL, func(e *hookd.Endpoint) { e.MaxInFlight = 2 })
	publish(t, db, org, 200)
	cs := &countingStore{Store: db}
	startEngine(t, db, func(c *delivery.Config) { c.Store = cs })
	r.wait(t, 20*time.Second)
	if m := r.maxCur.Load(); m > 2 {
		t.Errorf("endpoint %s saw %d attempts at once, want at most 2", ep.ID, m)
	}
	if n := cs.released.Load(); n != 0 {
		t.Errorf("the engine released %d claimed deliveries unattempted, want 0 (claimed %d for 200 sends)", n, cs.claimed.Load())
	}
}

// TestEngineChangedEndpointDoesNotStarveOthers: after an endpoint's settings change,
// the engine no longer holds it back on what it knew (it may now allow more), so
// the store's per-endpoint capacity alone must keep its backlog from hiding others.
func TestEngineChangedEndpointDoesNotStarveOthers(t *testing.T) {
	t.Parallel()
	db, org := setup(t)
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(hang.Close)
	busy := addEndpoint(t, db, org, hang.URL, func(e *hookd.Endpoint) { e.MaxInFlight = 4; e.Events = []string{"slow"} })
	evs := make([]*hookd.Event, 300)
	for i := range evs {
		evs[i] = &hookd.Event{ID: fmt.Sprintf("slow-%d", i), OrgID: org, Type: "slow", Data: []byte(`{}`), CreatedAt: time.Now()}
	}
	if _, err := db.Publish(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	fast := newReceiver(t, 0, 1)
	addEndpoint(t, db, org, fast.URL, func(e *hookd.Endpoint) { e.Events = []string{"fast"} })
	eng := startEngine(t, db, func(c *delivery.Config) { c.AttemptTimeout = 10 * time.Second })
	t.Cleanup(func() { close(release) })
	time.Sleep(100 * time.Millisecond) // the busy endpoint is at its cap
	eng.EndpointChanged(busy.ID)
	start := time.Now()
	if _, err := db.Publish(context.Background(), []*hookd.Event{{ID: "fast-1", OrgID: org, Type: "fast", Data: []byte(`{}`), CreatedAt: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	fast.wait(t, 9*time.Second)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the healthy endpoint's delivery took %v, want far less than the busy endpoint's 10 s attempts", d)
	}
}
