package postgres_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/ids"
	"github.com/hookd/hookd/postgres"
	"github.com/hookd/hookd/secret"
)

// The tests of this file run several stores on one schema, each with its own
// connection pool, as the hookd instances sharing one database do (SPEC §9), and
// check that the store keeps its promises across them: a delivery leased once,
// per-endpoint caps, FIFO order and rate limits held, a duplicate event stored
// once, token buckets shared, workers woken, a differing master key refused.

// multiBase is these tests' fixed "now", truncated to the microsecond as the
// store keeps times. Events are created after it; claims are made later still.
var multiBase = time.Date(2025, time.March, 4, 5, 6, 7, 123456000, time.UTC)

// multiLease is the lease of every claim. A test's claims are made at one Now
// (or a second apart), so no lease expires during a test, and a delivery claimed
// twice is a violation, never a lease that ran out.
const multiLease = time.Minute

// hangGuard bounds the worker loops of a test, so that a store that strands work
// fails the test instead of hanging it. It is not a performance threshold.
const hangGuard = 2 * time.Minute

// multiStores opens n stores on one new schema, each with its own connection
// pool, as n instances sharing a database. They are closed when the test ends,
// before the schema is dropped.
func multiStores(t *testing.T, n int) []*postgres.DB {
	t.Helper()
	u := testURL(t)
	dbs := make([]*postgres.DB, n)
	for i := range dbs {
		db, err := postgres.Open(t.Context(), postgres.Config{URL: u, Sealer: testSealer(t)})
		if err != nil {
			t.Fatalf("postgres.Open (instance %d): %v", i, err)
		}
		t.Cleanup(func() { db.Close() })
		dbs[i] = db
	}
	return dbs
}

// multiOrg creates a new organization through db and returns its id.
func multiOrg(t *testing.T, db hookd.Store) string {
	t.Helper()
	o := &hookd.Organization{ID: ids.New("org"), Name: "Acme", MonthlyQuota: 1 << 30, CreatedAt: multiBase}
	if err := db.CreateOrganization(t.Context(), o); err != nil {
		t.Fatalf("CreateOrganization: %v", err)
	}
	return o.ID
}

// multiEndpoint creates, through db, an enabled, unordered endpoint of org
// subscribed to every event, changed by mutate if it is not nil.
func multiEndpoint(t *testing.T, db hookd.Store, org string, mutate func(*hookd.Endpoint)) *hookd.Endpoint {
	t.Helper()
	id := ids.New("ep")
	e := &hookd.Endpoint{
		ID:              id,
		OrgID:           org,
		URL:             "https://receiver.example.com/hooks/" + id,
		Events:          []string{"*"},
		Enabled:         true,
		SignatureScheme: "standard-webhooks",
		Payload:         hookd.PayloadEnvelope,
		Ordering:        hookd.OrderingUnordered,
		Secret:          "whsec_c2VjcmV0LW9mLQ" + id,
		CreatedAt:       multiBase,
		UpdatedAt:       multiBase,
	}
	if mutate != nil {
		mutate(e)
	}
	if err := db.CreateEndpoint(t.Context(), e); err != nil {
		t.Fatalf("CreateEndpoint: %v", err)
	}
	return e
}

// multiEvents returns n new events of org, created a microsecond apart from
// multiBase on, in the order they were created.
func multiEvents(org string, n int) []*hookd.Event {
	evs := make([]*hookd.Event, n)
	for i := range evs {
		id := ids.New("evt")
		evs[i] = &hookd.Event{
			ID:        id,
			OrgID:     org,
			Type:      "order.created",
			Data:      json.RawMessage(fmt.Sprintf(`{"event":%q,"n":%d}`, id, i)),
			CreatedAt: multiBase.Add(time.Duration(i) * time.Microsecond),
		}
	}
	return evs
}

// multiPublish publishes evs through db in one batch.
func multiPublish(t *testing.T, db hookd.Store, evs []*hookd.Event) {
	t.Helper()
	res, err := db.Publish(t.Context(), evs)
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if len(res) != len(evs) {
		t.Fatalf("Publish returned %d results for %d events", len(res), len(evs))
	}
}

// multiClaimParams claims up to limit deliveries due at now, for multiLease, with no
// engine-wide cap on what an endpoint has in flight.
func multiClaimParams(now time.Time, limit int) hookd.ClaimParams {
	return hookd.ClaimParams{Owner: "multi_test", Limit: limit, Now: now, Lease: multiLease, MaxInFlight: 1 << 20}
}

// multiSucceeded returns the outcome of a successful attempt made for c at at.
func multiSucceeded(c *hookd.Claim, at time.Time) hookd.Outcome {
	return hookd.Outcome{
		DeliveryID: c.Delivery.ID,
		Lease:      c.Lease,
		Status:     hookd.DeliverySucceeded,
		Attempt: hookd.Attempt{
			ID:             ids.New("att"),
			DeliveryID:     c.Delivery.ID,
			OrgID:          c.Delivery.OrgID,
			Number:         c.Delivery.Attempts + 1,
			URL:            c.Endpoint.URL,
			RequestHeaders: map[string]string{"Webhook-Id": c.Event.ID},
			StatusCode:     200,
			Duration:       time.Millisecond,
			CreatedAt:      at,
		},
	}
}

// concurrently runs fn perDB times at once on each of dbs, releasing every call
// together, and waits for them all.
func concurrently(dbs []*postgres.DB, perDB int, fn func(db *postgres.DB)) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	for _, db := range dbs {
		for range perDB {
			wg.Go(func() {
				<-start
				fn(db)
			})
		}
	}
	close(start)
	wg.Wait()
}

// multiProgress lets a worker that found nothing to claim wait until another worker,
// or a publisher, changed something, instead of spinning.
type multiProgress struct {
	mu sync.Mutex
	ch chan struct{}
}

// next returns a channel closed by the next call of changed. Take it before
// looking for work, so that no change made meanwhile is missed.
func (p *multiProgress) next() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ch == nil {
		p.ch = make(chan struct{})
	}
	return p.ch
}

// changed wakes every worker waiting on next.
func (p *multiProgress) changed() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ch != nil {
		close(p.ch)
	}
	p.ch = make(chan struct{})
}

// waitChanged waits for ch or the end of ctx.
func waitChanged(ctx context.Context, ch <-chan struct{}) {
	select {
	case <-ch:
	case <-ctx.Done():
	}
}

// multiDeliveries lists every delivery matching f through db, following cursors.
func multiDeliveries(t *testing.T, db hookd.Store, f hookd.DeliveryFilter) []*hookd.Delivery {
	t.Helper()
	f.Limit = hookd.MaxPageLimit
	var out []*hookd.Delivery
	for {
		page, next, err := db.ListDeliveries(t.Context(), f)
		if err != nil {
			t.Fatalf("ListDeliveries(%+v): %v", f, err)
		}
		out = append(out, page...)
		if next == "" {
			return out
		}
		f.Cursor = next
	}
}

// claimTally counts the deliveries claimed by concurrent calls.
type claimTally struct {
	mu     sync.Mutex
	counts map[string]int // claims of each delivery id
	order  []string       // delivery ids, in the order the claims returned
}

// add records the claims cs and returns the ids among them claimed before.
func (ct *claimTally) add(cs []*hookd.Claim) (twice []string) {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	if ct.counts == nil {
		ct.counts = map[string]int{}
	}
	for _, c := range cs {
		ct.counts[c.Delivery.ID]++
		ct.order = append(ct.order, c.Delivery.ID)
		if ct.counts[c.Delivery.ID] > 1 {
			twice = append(twice, c.Delivery.ID)
		}
	}
	return twice
}

// total returns how many claims were recorded.
func (ct *claimTally) total() int {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	return len(ct.order)
}

// ids returns the distinct claimed delivery ids, sorted.
func (ct *claimTally) ids() []string {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	out := make([]string, 0, len(ct.counts))
	for id := range ct.counts {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// claimOnce claims once through db at now and records what it got in ct,
// reporting any delivery claimed twice (every lease of these tests outlives them).
func claimOnce(t *testing.T, db *postgres.DB, ct *claimTally, now time.Time) {
	t.Helper()
	cs, err := db.ClaimDeliveries(t.Context(), multiClaimParams(now, 50))
	if err != nil {
		t.Errorf("ClaimDeliveries(Now=%v): %v", now, err)
		return
	}
	if twice := ct.add(cs); len(twice) > 0 {
		t.Errorf("deliveries %v claimed again while their leases were live", twice)
	}
}

// TestInstancesNeverLeaseTwice: workers of four instances claiming and completing
// the same backlog at once lease every delivery exactly once, and every delivery
// ends succeeded after one attempt.
func TestInstancesNeverLeaseTwice(t *testing.T) {
	t.Parallel()
	dbs := multiStores(t, 4)
	org := multiOrg(t, dbs[0])
	const endpoints, events = 5, 400
	for range endpoints {
		multiEndpoint(t, dbs[0], org, nil)
	}
	// The backlog is published by every instance at once, in batches.
	evs := multiEvents(org, events)
	batches := slices.Collect(slices.Chunk(evs, 50))
	var next atomic.Int64
	concurrently(dbs, 1, func(db *postgres.DB) {
		for i := next.Add(1) - 1; i < int64(len(batches)); i = next.Add(1) - 1 {
			if _, err := db.Publish(t.Context(), batches[i]); err != nil {
				t.Errorf("Publish (batch %d): %v", i, err)
				return
			}
		}
	})
	if t.Failed() {
		t.FailNow()
	}

	const total = endpoints * events
	now := multiBase.Add(time.Hour)
	ctx, cancel := context.WithTimeout(t.Context(), hangGuard)
	defer cancel()
	var (
		tally claimTally
		done  atomic.Int64
		prog  multiProgress
	)
	concurrently(dbs, 3, func(db *postgres.DB) {
		for done.Load() < total && ctx.Err() == nil {
			changed := prog.next()
			cs, err := db.ClaimDeliveries(ctx, multiClaimParams(now, 20))
			if err != nil {
				t.Errorf("ClaimDeliveries: %v", err)
				cancel() // its leases would hold up the others
				return
			}
			if twice := tally.add(cs); len(twice) > 0 {
				t.Errorf("deliveries %v claimed again while their leases were live", twice)
			}
			outs := make([]hookd.Outcome, 0, len(cs))
			for _, c := range cs {
				if c.Delivery.Status != hookd.DeliveryPending || c.Delivery.Attempts != 0 {
					t.Errorf("claimed delivery %s is %s after %d attempts, want pending after 0",
						c.Delivery.ID, c.Delivery.Status, c.Delivery.Attempts)
				}
				outs = append(outs, multiSucceeded(c, now))
			}
			if len(outs) == 0 {
				waitChanged(ctx, changed)
				continue
			}
			if err := db.CompleteDeliveries(ctx, outs); err != nil {
				t.Errorf("CompleteDeliveries: %v", err)
				cancel()
				return
			}
			done.Add(int64(len(outs)))
			prog.changed()
		}
	})
	if ctx.Err() != nil {
		t.Fatalf("workers stopped (on an error, or after %v) with %d of %d deliveries completed",
			hangGuard, done.Load(), total)
	}
	if got := len(tally.ids()); got != total {
		t.Errorf("%d distinct deliveries claimed, want %d", got, total)
	}

	ds := multiDeliveries(t, dbs[1], hookd.DeliveryFilter{OrgID: org})
	if len(ds) != total {
		t.Fatalf("ListDeliveries: %d deliveries, want %d", len(ds), total)
	}
	perEndpoint := map[string]int{}
	bad := 0
	for _, d := range ds {
		perEndpoint[d.EndpointID]++
		if d.Status != hookd.DeliverySucceeded || d.Attempts != 1 || d.InFlight {
			if bad++; bad <= 5 {
				t.Errorf("delivery %s is %s after %d attempts (in flight %v), want succeeded after 1",
					d.ID, d.Status, d.Attempts, d.InFlight)
			}
		}
	}
	if bad > 5 {
		t.Errorf("… and %d more deliveries not succeeded after exactly one attempt", bad-5)
	}
	for ep, n := range perEndpoint {
		if n != events {
			t.Errorf("endpoint %s has %d deliveries, want %d", ep, n, events)
		}
	}
}

// TestMaxInFlightHoldsAcrossInstances: claims made at once by four instances
// never lease more of an endpoint than its cap (its max_in_flight, or one for a
// FIFO endpoint), and they lease its oldest deliveries.
func TestMaxInFlightHoldsAcrossInstances(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(*hookd.Endpoint)
		want   int // leased in all
	}{
		{"MaxInFlight3", func(e *hookd.Endpoint) { e.MaxInFlight = 3 }, 3},
		{"FIFO", func(e *hookd.Endpoint) { e.Ordering = hookd.OrderingFIFO }, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dbs := multiStores(t, 4)
			org := multiOrg(t, dbs[0])
			ep := multiEndpoint(t, dbs[0], org, tt.mutate)
			evs := multiEvents(org, 40)
			multiPublish(t, dbs[0], evs)

			now := multiBase.Add(time.Hour)
			var tally claimTally
			concurrently(dbs, 4, func(db *postgres.DB) { claimOnce(t, db, &tally, now) })
			if got := tally.total(); got > tt.want {
				t.Errorf("concurrent claims leased %d deliveries of the endpoint, want at most %d", got, tt.want)
			}
			// A claim skips an endpoint another instance is claiming for; claims made
			// one after the other afterwards take whatever room is left.
			for _, db := range dbs {
				claimOnce(t, db, &tally, now)
			}
			if got := tally.total(); got != tt.want {
				t.Errorf("claims leased %d deliveries of the endpoint, want %d (its cap)", got, tt.want)
			}

			var oldest []string
			for _, ev := range evs[:tt.want] {
				_, ds, err := dbs[0].Event(t.Context(), org, ev.ID)
				if err != nil || len(ds) != 1 {
					t.Fatalf("Event(%s) = %d deliveries, %v; want 1", ev.ID, len(ds), err)
				}
				oldest = append(oldest, ds[0].ID)
			}
			slices.Sort(oldest)
			if got := tally.ids(); !slices.Equal(got, oldest) {
				t.Errorf("claimed deliveries %v, want the %d oldest %v", got, tt.want, oldest)
			}
			inFlight := 0
			for _, d := range multiDeliveries(t, dbs[2], hookd.DeliveryFilter{EndpointID: ep.ID}) {
				if d.InFlight {
					inFlight++
				}
			}
			if inFlight != tt.want {
				t.Errorf("the store shows %d deliveries of the endpoint in flight, want %d", inFlight, tt.want)
			}
		})
	}
}

// TestFIFOOrderAcrossInstances: workers of four instances delivering to one FIFO
// endpoint, while another instance publishes to it, complete its deliveries one
// at a time in the order they were published.
func TestFIFOOrderAcrossInstances(t *testing.T) {
	t.Parallel()
	dbs := multiStores(t, 4)
	org := multiOrg(t, dbs[0])
	multiEndpoint(t, dbs[0], org, func(e *hookd.Endpoint) { e.Ordering = hookd.OrderingFIFO })
	const n = 200
	evs := multiEvents(org, n)
	want := make([]string, n)
	for i, ev := range evs {
		want[i] = ev.ID
	}

	now := multiBase.Add(time.Hour)
	ctx, cancel := context.WithTimeout(t.Context(), hangGuard)
	defer cancel()
	var (
		mu       sync.Mutex
		order    []string // event ids, in the order their deliveries were held
		held     atomic.Int64
		overlaps atomic.Int64
		done     atomic.Int64
		prog     multiProgress
		wg       sync.WaitGroup
	)
	// The publisher goes batch by batch, round the instances, while the workers
	// run: each batch lands behind whatever is still pending.
	wg.Go(func() {
		for i, batch := range slices.Collect(slices.Chunk(evs, 20)) {
			if _, err := dbs[i%len(dbs)].Publish(ctx, batch); err != nil {
				t.Errorf("Publish (batch %d): %v", i, err)
				cancel()
				return
			}
			prog.changed()
		}
	})
	concurrently(dbs, 2, func(db *postgres.DB) {
		for done.Load() < n && ctx.Err() == nil {
			changed := prog.next()
			cs, err := db.ClaimDeliveries(ctx, multiClaimParams(now, 10))
			if err != nil {
				if ctx.Err() == nil {
					t.Errorf("ClaimDeliveries: %v", err)
					cancel()
				}
				return
			}
			if len(cs) == 0 {
				waitChanged(ctx, changed)
				continue
			}
			// held counts the claims between their lease and their completion, so it
			// can only overlap if the store's leases did.
			if h := held.Add(int64(len(cs))); h > 1 {
				overlaps.Add(1)
			}
			mu.Lock()
			for _, c := range cs {
				order = append(order, c.Event.ID)
			}
			mu.Unlock()
			outs := make([]hookd.Outcome, len(cs))
			for i, c := range cs {
				outs[i] = multiSucceeded(c, now)
			}
			held.Add(-int64(len(cs)))
			if err := db.CompleteDeliveries(ctx, outs); err != nil {
				t.Errorf("CompleteDeliveries: %v", err)
				cancel()
				return
			}
			done.Add(int64(len(cs)))
			prog.changed()
		}
	})
	wg.Wait()
	if ctx.Err() != nil {
		t.Fatalf("workers stopped (on an error, or after %v) with %d of %d deliveries completed",
			hangGuard, done.Load(), n)
	}
	if k := overlaps.Load(); k > 0 {
		t.Errorf("%d times more than one delivery of the FIFO endpoint was leased at once", k)
	}
	if !slices.Equal(order, want) {
		first := 0
		for first < min(len(order), len(want)) && order[first] == want[first] {
			first++
		}
		at := func(s []string, i int) string {
			if i < len(s) {
				return s[i]
			}
			return "none"
		}
		t.Errorf("deliveries completed out of publish order: %d completions of %d published; "+
			"completion %d is of event %s, want %s", len(order), len(want), first, at(order, first), at(want, first))
	}
	for _, d := range multiDeliveries(t, dbs[3], hookd.DeliveryFilter{OrgID: org}) {
		if d.Status != hookd.DeliverySucceeded || d.Attempts != 1 {
			t.Errorf("delivery %s is %s after %d attempts, want succeeded after 1", d.ID, d.Status, d.Attempts)
		}
	}
}

// TestRateLimitHoldsAcrossInstances: claims made at once by four instances take
// an endpoint's deliveries from one shared token bucket of one second's worth:
// five at one instant for 5/s, five more a second later.
func TestRateLimitHoldsAcrossInstances(t *testing.T) {
	t.Parallel()
	dbs := multiStores(t, 4)
	org := multiOrg(t, dbs[0])
	multiEndpoint(t, dbs[0], org, func(e *hookd.Endpoint) { e.RateLimit = 5 })
	multiPublish(t, dbs[0], multiEvents(org, 50))

	var tally claimTally
	for i, step := range []struct {
		now  time.Time
		want int // leased in all, by the end of the step
	}{
		{multiBase.Add(time.Hour), 5},
		{multiBase.Add(time.Hour + time.Second), 10},
	} {
		concurrently(dbs, 3, func(db *postgres.DB) { claimOnce(t, db, &tally, step.now) })
		if got := tally.total(); got > step.want {
			t.Errorf("step %d: concurrent claims leased %d deliveries in all, want at most %d", i, got, step.want)
		}
		// Claims one after the other take whatever tokens the skipped ones left.
		for _, db := range dbs {
			claimOnce(t, db, &tally, step.now)
		}
		if got := tally.total(); got != step.want {
			t.Errorf("step %d: claims leased %d deliveries in all, want %d", i, got, step.want)
		}
	}
}

// TestConcurrentDuplicatePublish: instances publishing one event (by id, or by
// idempotency key) at once store it once, with one delivery per endpoint, and
// all answer with the stored event.
func TestConcurrentDuplicatePublish(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		event func(org, id, key string) *hookd.Event // what each publisher publishes
	}{
		{"SameID", func(org, id, _ string) *hookd.Event {
			return &hookd.Event{ID: id, OrgID: org, Type: "order.created", Data: json.RawMessage(`{}`), CreatedAt: multiBase}
		}},
		{"SameIdempotencyKey", func(org, _, key string) *hookd.Event {
			return &hookd.Event{ID: ids.New("evt"), OrgID: org, Type: "order.created", Data: json.RawMessage(`{}`),
				IdempotencyKey: key, CreatedAt: multiBase}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dbs := multiStores(t, 4)
			org := multiOrg(t, dbs[0])
			var endpoints []string
			for range 3 {
				endpoints = append(endpoints, multiEndpoint(t, dbs[0], org, nil).ID)
			}
			slices.Sort(endpoints)
			id, key := ids.New("evt"), ids.New("idem")

			var (
				mu      sync.Mutex
				results []hookd.PublishResult
			)
			concurrently(dbs, 4, func(db *postgres.DB) {
				res, err := db.Publish(t.Context(), []*hookd.Event{tt.event(org, id, key)})
				if err != nil {
					t.Errorf("Publish: %v", err)
					return
				}
				mu.Lock()
				results = append(results, res...)
				mu.Unlock()
			})
			if t.Failed() {
				t.FailNow()
			}

			var stored []string
			for _, r := range results {
				if !r.Duplicate {
					stored = append(stored, r.Event.ID)
				}
			}
			if len(stored) != 1 {
				t.Fatalf("%d of %d publishes stored the event (%v), want exactly 1", len(stored), len(results), stored)
			}
			for _, r := range results {
				if r.Event.ID != stored[0] || r.Deliveries != len(endpoints) {
					t.Errorf("Publish = {Event %s, Deliveries %d, Duplicate %v}, want event %s with %d deliveries",
						r.Event.ID, r.Deliveries, r.Duplicate, stored[0], len(endpoints))
				}
			}
			_, ds, err := dbs[1].Event(t.Context(), org, stored[0])
			if err != nil {
				t.Fatalf("Event(%s): %v", stored[0], err)
			}
			var got []string
			for _, d := range ds {
				got = append(got, d.EndpointID)
			}
			slices.Sort(got)
			if !slices.Equal(got, endpoints) {
				t.Errorf("the event's deliveries go to endpoints %v, want one to each of %v", got, endpoints)
			}
			evs, _, err := dbs[2].ListEvents(t.Context(), hookd.EventFilter{OrgID: org})
			if err != nil {
				t.Fatalf("ListEvents: %v", err)
			}
			if len(evs) != 1 {
				t.Errorf("the organization has %d events, want 1", len(evs))
			}
		})
	}
}

// TestTakeTokenAcrossInstances: takes made at once by four instances share one
// bucket: exactly its burst at one instant, then exactly what refilled.
func TestTakeTokenAcrossInstances(t *testing.T) {
	t.Parallel()
	dbs := multiStores(t, 4)
	key := ids.New("bucket")
	limit := hookd.RateLimit{PerSecond: 1, Burst: 10}
	for i, step := range []struct {
		now  time.Time
		want int // tokens taken in the step
	}{
		{multiBase, 10},
		{multiBase.Add(time.Second), 1},
	} {
		var allowed atomic.Int64
		concurrently(dbs, 5, func(db *postgres.DB) {
			for range 3 {
				r, err := db.TakeToken(t.Context(), key, limit, step.now)
				if err != nil {
					t.Errorf("TakeToken: %v", err)
					return
				}
				if r.Allowed {
					allowed.Add(1)
				}
			}
		})
		if got := allowed.Load(); got != int64(step.want) {
			t.Errorf("step %d: %d of %d takes allowed, want %d", i, got, 4*5*3, step.want)
		}
	}
}

// TestListenWakes: an instance listening is woken when another one publishes an
// event with a delivery due.
func TestListenWakes(t *testing.T) {
	t.Parallel()
	dbs := multiStores(t, 2)
	org := multiOrg(t, dbs[1])
	multiEndpoint(t, dbs[1], org, nil)

	woken := make(chan struct{}, 1)
	wake := func() {
		select {
		case woken <- struct{}{}:
		default:
		}
	}
	var (
		mu   sync.Mutex
		errs []error
	)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		dbs[0].Listen(ctx, wake, func(err error) {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		})
	}()
	// Registered after the stores' Close, so it runs before it.
	t.Cleanup(func() {
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, err := range errs {
			t.Errorf("Listen: %v", err)
		}
	})

	// Wait (with a generous bound) for the listener to be in place: it wakes
	// once after it connects.
	wait := func(what string) {
		t.Helper()
		select {
		case <-woken:
		case <-time.After(10 * time.Second):
			t.Fatalf("no wake-up within 10s %s", what)
		}
	}
	wait("after Listen connected")
	multiPublish(t, dbs[1], multiEvents(org, 1))
	wait("after another instance published")
}

// TestWrongMasterKeyRefused: an instance whose master key differs from the one
// the database's secrets were sealed with refuses to open it, whether it starts
// later or at the same time as the first.
func TestWrongMasterKeyRefused(t *testing.T) {
	t.Parallel()
	sealer := func(t *testing.T, b byte) *secret.Sealer {
		t.Helper()
		s, err := secret.NewSealer(bytes.Repeat([]byte{b}, 32))
		if err != nil {
			t.Fatalf("NewSealer: %v", err)
		}
		return s
	}
	t.Run("Later", func(t *testing.T) {
		t.Parallel()
		u := testURL(t)
		first, err := postgres.Open(t.Context(), postgres.Config{URL: u, Sealer: sealer(t, 1)})
		if err != nil {
			t.Fatalf("Open with the first key: %v", err)
		}
		t.Cleanup(func() { first.Close() })
		other, err := postgres.Open(t.Context(), postgres.Config{URL: u, Sealer: sealer(t, 2)})
		if err == nil {
			other.Close()
		}
		if !errors.Is(err, postgres.ErrWrongMasterKey) {
			t.Errorf("Open with another key: error %v, want ErrWrongMasterKey", err)
		}
		again, err := postgres.Open(t.Context(), postgres.Config{URL: u, Sealer: sealer(t, 1)})
		if err != nil {
			t.Fatalf("Open with the first key again: %v", err)
		}
		again.Close()
	})
	t.Run("Together", func(t *testing.T) {
		t.Parallel()
		u := testURL(t)
		keys := []byte{1, 2, 1, 2}
		errs := make([]error, len(keys))
		var wg sync.WaitGroup
		for i, k := range keys {
			s := sealer(t, k)
			wg.Go(func() {
				db, err := postgres.Open(t.Context(), postgres.Config{URL: u, Sealer: s})
				if err == nil {
					db.Close()
				}
				errs[i] = err
			})
		}
		wg.Wait()
		// Whichever key sealed the check first wins; every instance with the other
		// key is refused.
		opened := map[byte]int{}
		for i, err := range errs {
			switch {
			case err == nil:
				opened[keys[i]]++
			case !errors.Is(err, postgres.ErrWrongMasterKey):
				t.Errorf("Open with key %d: %v, want nil or ErrWrongMasterKey", keys[i], err)
			}
		}
		if len(opened) != 1 || opened[1]+opened[2] != 2 {
			t.Errorf("opened with key → count %v, want both instances of one key only", opened)
		}
	})
}
