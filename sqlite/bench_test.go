// Benchmarks of the store calls on the delivery path, each on a store in a temp
// directory (file-backed, WAL, synchronous=FULL as in production):
//
//   - BenchmarkClaimDeliveries: one engine-sized claim (256, the engine's default
//     caps) from 10 endpoints with 100,000 pending deliveries. The claimed
//     deliveries are released, untimed, after each claim, so every claim sees
//     the same backlog.
//   - BenchmarkCompleteDeliveries: recording successful attempts, one outcome per
//     call from 64 goroutines (the engine's shape: the store's group commit
//     gathers them), and 64 outcomes per call from one goroutine; one op is one
//     call. The leases are claimed, untimed, before the timer starts.
//   - BenchmarkDeleteEndpoint: deleting an endpoint with 100,000 deliveries
//     (a quarter of them attempted) while another goroutine publishes one
//     event at a time to another endpoint; besides the time per deletion it
//     reports the longest of those publishes (publish-max-ms): how long the
//     deletion held up the writer.
//   - BenchmarkPublish: one event with one subscriber per call, from 32
//     goroutines. (delivery's BenchmarkPublish measures the same through the
//     engine's store choice; this one is the store's own, in events/s.)
//
// deliveries/s, outcomes/s and events/s are rates over the timed part only.
// Setup fills the backlog in batches and takes a few seconds per benchmark run.
//
//	go test -run '^$' -bench . -benchmem ./sqlite
//	go test -run '^$' -bench 'Claim|Complete|Publish' -benchmem -benchtime 2s -count 3 ./sqlite
package sqlite_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/ids"
	"github.com/hookd/hookd/secret"
	"github.com/hookd/hookd/sqlite"
	"github.com/hookd/hookd/storetest"
)

// benchStore opens a store in a temp directory, closed when the benchmark ends.
func benchStore(b *testing.B) hookd.Store {
	b.Helper()
	s, err := secret.NewSealer(testKey)
	if err != nil {
		b.Fatalf("NewSealer: %v", err)
	}
	db, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(b.TempDir(), "hookd.db"), Sealer: s})
	if err != nil {
		b.Fatalf("sqlite.Open: %v", err)
	}
	b.Cleanup(func() {
		if err := db.Close(); err != nil {
			b.Errorf("Close: %v", err)
		}
	})
	return db
}

func BenchmarkClaimDeliveries(b *testing.B) {
	f := newBenchFixture(b, benchStore(b), 10)
	f.publish(b, 100_000)
	benchClaim(b, f, 256)
}

func BenchmarkCompleteDeliveries(b *testing.B) {
	f := newBenchFixture(b, benchStore(b), 10)
	b.Run("goroutines=64/outcomes=1", func(b *testing.B) { benchComplete(b, f, 1, 64) })
	b.Run("goroutines=1/outcomes=64", func(b *testing.B) { benchComplete(b, f, 64, 1) })
}

func BenchmarkDeleteEndpoint(b *testing.B) {
	ctx := context.Background()
	var worst time.Duration
	for range b.N {
		b.StopTimer()
		db := benchStore(b)
		f := newBenchFixture(b, db, 2)
		f.publish(b, 200_000)
		cs := f.leased(b, 50_000)
		outcomes := make([]hookd.Outcome, len(cs))
		for i, c := range cs {
			outcomes[i] = benchSucceeded(c, time.Now())
		}
		for len(outcomes) > 0 {
			k := min(len(outcomes), 1000)
			if err := db.CompleteDeliveries(ctx, outcomes[:k]); err != nil {
				b.Fatalf("CompleteDeliveries: %v", err)
			}
			outcomes = outcomes[k:]
		}
		eps, _, err := db.ListEndpoints(ctx, hookd.EndpointFilter{OrgID: f.org})
		if err != nil || len(eps) != 2 {
			b.Fatalf("ListEndpoints = %d, %v", len(eps), err)
		}
		// The other publisher's events go to the endpoint that stays only.
		other := &benchFixture{db: db, org: ids.New("org"), endpoints: 1, base: f.base}
		if err := db.CreateOrganization(ctx, &hookd.Organization{ID: other.org, Name: "Other", CreatedAt: f.base}); err != nil {
			b.Fatal(err)
		}
		e := *eps[1]
		e.ID, e.OrgID = ids.New("ep"), other.org
		if err := db.CreateEndpoint(ctx, &e); err != nil {
			b.Fatal(err)
		}
		worst = max(worst, storetest.DeleteWhilePublishing(b, db, f.org, eps[0].ID, func() []*hookd.Event { return other.events(1) }))
	}
	b.ReportMetric(float64(worst.Microseconds())/1000, "publish-max-ms")
}

func BenchmarkPublish(b *testing.B) {
	f := newBenchFixture(b, benchStore(b), 1)
	b.Run("goroutines=32", func(b *testing.B) { benchPublish(b, f, 32) })
}

// What follows is the same in sqlite/bench_test.go and postgres/bench_test.go.

// benchFixture is an organization without a quota whose endpoints all subscribe
// to every event.
type benchFixture struct {
	db        hookd.Store
	org       string
	endpoints int
	base      time.Time // when the first event was created; later ones follow a microsecond apart
	published int       // events published so far
	// vacuum, if set, clears away the row versions that updates leave behind
	// (PostgreSQL); benchClaim runs it untimed every vacuumEvery claims.
	vacuum func(b *testing.B)
}

// vacuumEvery is how many claims benchClaim makes between vacuums: claims and
// releases each leave a dead row version per delivery, which claims would
// otherwise wade through in growing numbers, each slower than the one before.
const vacuumEvery = 16

func newBenchFixture(b *testing.B, db hookd.Store, endpoints int) *benchFixture {
	b.Helper()
	ctx := context.Background()
	f := &benchFixture{db: db, org: ids.New("org"), endpoints: endpoints, base: time.Now().Add(-time.Hour).Truncate(time.Microsecond)}
	if err := db.CreateOrganization(ctx, &hookd.Organization{ID: f.org, Name: "Bench", CreatedAt: f.base}); err != nil {
		b.Fatalf("CreateOrganization: %v", err)
	}
	for range endpoints {
		id := ids.New("ep")
		e := &hookd.Endpoint{
			ID: id, OrgID: f.org, URL: "https://receiver.example.com/hooks/" + id, Events: []string{"*"}, Enabled: true,
			SignatureScheme: "standard-webhooks", Payload: hookd.PayloadEnvelope, Ordering: hookd.OrderingUnordered,
			Secret: "whsec_c2VjcmV0LW9mLQ" + id, CreatedAt: f.base, UpdatedAt: f.base,
		}
		if err := db.CreateEndpoint(ctx, e); err != nil {
			b.Fatalf("CreateEndpoint: %v", err)
		}
	}
	return f
}

// events returns n new events, created after every earlier one.
func (f *benchFixture) events(n int) []*hookd.Event {
	evs := make([]*hookd.Event, n)
	for i := range evs {
		id := ids.New("evt")
		evs[i] = &hookd.Event{ID: id, OrgID: f.org, Type: "invoice.paid",
			Data:      json.RawMessage(`{"id":"` + id + `","amount":4200,"currency":"eur"}`),
			CreatedAt: f.base.Add(time.Duration(f.published+i) * time.Microsecond)}
	}
	f.published += n
	return evs
}

// publish adds at least the given number of pending deliveries (one per
// endpoint per event), in batches of 1,000 events.
func (f *benchFixture) publish(b *testing.B, deliveries int) {
	b.Helper()
	evs := f.events((deliveries + f.endpoints - 1) / f.endpoints)
	for len(evs) > 0 {
		k := min(len(evs), 1000)
		if _, err := f.db.Publish(context.Background(), evs[:k]); err != nil {
			b.Fatalf("Publish: %v", err)
		}
		evs = evs[k:]
	}
}

// leased claims n deliveries for an hour, publishing more whenever the backlog
// runs out.
func (f *benchFixture) leased(b *testing.B, n int) []*hookd.Claim {
	b.Helper()
	var out []*hookd.Claim
	for len(out) < n {
		cs, err := f.db.ClaimDeliveries(context.Background(), hookd.ClaimParams{
			Owner: "bench", Limit: min(n-len(out), 5000), Now: time.Now(), Lease: time.Hour})
		if err != nil {
			b.Fatalf("ClaimDeliveries: %v", err)
		}
		if len(cs) == 0 {
			f.publish(b, max(n-len(out), 10_000))
		}
		out = append(out, cs...)
	}
	return out
}

// benchSucceeded returns the outcome of a successful attempt of c.
func benchSucceeded(c *hookd.Claim, at time.Time) hookd.Outcome {
	return hookd.Outcome{
		DeliveryID: c.Delivery.ID,
		Lease:      c.Lease,
		Status:     hookd.DeliverySucceeded,
		Attempt: hookd.Attempt{
			ID: ids.NewAt("att", at), DeliveryID: c.Delivery.ID, OrgID: c.Delivery.OrgID,
			Number: c.Delivery.Attempts + 1, URL: c.Endpoint.URL,
			RequestHeaders: map[string]string{"Webhook-Id": c.Event.ID, "Webhook-Signature": "v1,<redacted>"},
			StatusCode:     200, ResponseBody: `{"ok":true}`, Duration: 42 * time.Millisecond, CreatedAt: at,
		},
	}
}

// benchClaim measures claims of up to limit deliveries with the delivery
// engine's default caps (MaxInFlight 32, PerEndpoint 384). After each claim,
// untimed, the claimed deliveries are released as they were, so every claim
// sees the same backlog.
func benchClaim(b *testing.B, f *benchFixture, limit int) {
	ctx := context.Background()
	if f.vacuum != nil {
		f.vacuum(b)
	}
	b.ReportAllocs()
	claimed, claims := 0, 0
	for b.Loop() {
		cs, err := f.db.ClaimDeliveries(ctx, hookd.ClaimParams{
			Owner: "bench", Limit: limit, Now: time.Now(), Lease: time.Minute, MaxInFlight: 32, PerEndpoint: 384})
		if err != nil {
			b.Fatalf("ClaimDeliveries: %v", err)
		}
		b.StopTimer()
		if len(cs) == 0 {
			b.Fatal("ClaimDeliveries claimed nothing: the backlog ran dry")
		}
		claimed += len(cs)
		rs := make([]hookd.Release, len(cs))
		for i, c := range cs {
			rs[i] = hookd.Release{DeliveryID: c.Delivery.ID, Lease: c.Lease, NextAttemptAt: c.Delivery.NextAttemptAt}
		}
		if err := f.db.ReleaseDeliveries(ctx, rs); err != nil {
			b.Fatalf("ReleaseDeliveries: %v", err)
		}
		if claims++; f.vacuum != nil && claims%vacuumEvery == 0 {
			f.vacuum(b)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(claimed)/float64(b.N), "deliveries/op")
	b.ReportMetric(float64(claimed)/b.Elapsed().Seconds(), "deliveries/s")
}

// benchComplete measures recording successful attempts, perCall outcomes per
// CompleteDeliveries call, from the given number of goroutines; one op is one
// call. The deliveries are claimed before the timer starts.
func benchComplete(b *testing.B, f *benchFixture, perCall, goroutines int) {
	cs := f.leased(b, b.N*perCall)
	now := time.Now()
	outcomes := make([]hookd.Outcome, len(cs))
	for i, c := range cs {
		outcomes[i] = benchSucceeded(c, now)
	}
	b.ReportAllocs()
	b.ResetTimer()
	benchParallel(b, goroutines, b.N, func(i int) error {
		return f.db.CompleteDeliveries(context.Background(), outcomes[i*perCall:(i+1)*perCall])
	})
	b.StopTimer()
	b.ReportMetric(float64(len(outcomes))/b.Elapsed().Seconds(), "outcomes/s")
}

// benchPublish measures publishing one event per call from the given number of
// goroutines.
func benchPublish(b *testing.B, f *benchFixture, goroutines int) {
	evs := f.events(b.N)
	b.ReportAllocs()
	b.ResetTimer()
	benchParallel(b, goroutines, b.N, func(i int) error {
		res, err := f.db.Publish(context.Background(), evs[i:i+1])
		if err == nil && res[0].Deliveries != f.endpoints {
			err = fmt.Errorf("Publish made %d deliveries, want %d", res[0].Deliveries, f.endpoints)
		}
		return err
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// benchParallel calls fn(i) for every i in [0, n) from the given number of
// goroutines, each taking the next i as soon as its previous call returns, and
// fails b with the first error.
func benchParallel(b *testing.B, goroutines, n int, fn func(i int) error) {
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		firstErr atomic.Pointer[error]
	)
	for range goroutines {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || firstErr.Load() != nil {
					return
				}
				if err := fn(i); err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := firstErr.Load(); err != nil {
		b.Fatal(*err)
	}
}
