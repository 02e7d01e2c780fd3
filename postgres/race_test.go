package postgres_test

import (
	"context"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/internal/pgtest"
	"github.com/hookd/hookd/postgres"
)

// oneEvent returns a new event of org of type typ at at.
func oneEvent(org, typ string, at time.Time) []*hookd.Event {
	evs := multiEvents(org, 1)
	evs[0].Type, evs[0].CreatedAt = typ, at
	return evs
}

// TestRateLimitedEndpointsDoNotStarveOthers: endpoints whose shared buckets are
// empty (another instance used their tokens) take no place in a claim, so more
// of them than a claim considers cannot hide an unlimited endpoint's due work.
func TestRateLimitedEndpointsDoNotStarveOthers(t *testing.T) {
	t.Parallel()
	dbs := multiStores(t, 2)
	org := multiOrg(t, dbs[0])
	for range 140 {
		multiEndpoint(t, dbs[0], org, func(e *hookd.Endpoint) { e.RateLimit = 1; e.Events = []string{"slow"} })
	}
	fast := multiEndpoint(t, dbs[0], org, func(e *hookd.Endpoint) { e.Events = []string{"fast"} })
	for i := range 3 {
		multiPublish(t, dbs[0], oneEvent(org, "slow", multiBase.Add(time.Duration(i)*time.Millisecond)))
	}
	now := multiBase.Add(time.Hour)
	multiPublish(t, dbs[0], oneEvent(org, "fast", now.Add(-time.Second)))
	// Instance 0 takes every slow endpoint's token (and perhaps fast's delivery).
	got := map[string]bool{}
	for range 2 {
		cs, err := dbs[0].ClaimDeliveries(t.Context(), multiClaimParams(now, 256))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			got[c.Endpoint.ID] = true
		}
	}
	if got[fast.ID] {
		return // claimed already: nothing was starved
	}
	// Instance 1, at the same instant: the slow endpoints' buckets are empty.
	cs, err := dbs[1].ClaimDeliveries(t.Context(), multiClaimParams(now, 256))
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 || cs[0].Endpoint.ID != fast.ID {
		t.Errorf("second instance claimed %d deliveries %v, want only the unlimited endpoint's", len(cs), claimedEndpoints(cs))
	}
}

func claimedEndpoints(cs []*hookd.Claim) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Endpoint.ID)
	}
	return out
}

// TestStalledClaimIsBounded: an instance stalled inside its claim transaction
// (holding an endpoint's lock) does not hold up other claims: they leave that
// endpoint at once, without an error, and claim the others; once the stall
// ends, the endpoint is claimed again.
func TestStalledClaimIsBounded(t *testing.T) {
	t.Parallel()
	db, u := openStoreURL(t)
	org := multiOrg(t, db)
	hot := multiEndpoint(t, db, org, func(e *hookd.Endpoint) { e.Events = []string{"a.*"} })
	multiPublish(t, db, oneEvent(org, "a.b", multiBase))
	// The stalled instance: in a claim transaction, holding hot's lock.
	release := holdInTx(t, u, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, 0x686f6f6b, hot.ID)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	start := time.Now()
	cs, err := db.ClaimDeliveries(ctx, multiClaimParams(multiBase, 10))
	if err != nil || len(cs) != 0 {
		t.Fatalf("claim beside a stalled claim = %d claims, %v; want none and no error", len(cs), err)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("the claim beside a stalled one took %s: it waited for the stalled claim's lock", took)
	}
	// With another endpoint due, the claim takes it without waiting.
	other := multiEndpoint(t, db, org, func(e *hookd.Endpoint) { e.Events = []string{"other.*"} })
	multiPublish(t, db, oneEvent(org, "other.thing", multiBase))
	start = time.Now()
	cs, err = db.ClaimDeliveries(ctx, multiClaimParams(multiBase, 10))
	if err != nil || len(cs) != 1 || cs[0].Endpoint.ID != other.ID {
		t.Fatalf("claim beside a stalled claim with another endpoint due = %d claims, %v; want the other endpoint's", len(cs), err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("the claim of a free endpoint beside a stalled one took %s: it waited for the stalled claim's lock", took)
	}
	release()
	if cs, err := db.ClaimDeliveries(t.Context(), multiClaimParams(multiBase, 10)); err != nil || len(cs) != 1 || cs[0].Endpoint.ID != hot.ID {
		t.Errorf("claim once the stall ended = %d claims, %v; want hot's delivery", len(cs), err)
	}
}

// TestPublishRacingEndpointDelete: an endpoint deleted while a publish fans out
// to it does not fail the publish; the event goes to the endpoints that remain.
func TestPublishRacingEndpointDelete(t *testing.T) {
	t.Parallel()
	u := testURL(t)
	db, err := postgres.Open(t.Context(), postgres.Config{URL: u, Sealer: testSealer(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	org := multiOrg(t, db)
	gone := multiEndpoint(t, db, org, nil)
	stays := multiEndpoint(t, db, org, nil)
	conn, err := pgx.Connect(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	tx, err := conn.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(t.Context(), `DELETE FROM endpoints WHERE id = $1`, gone.ID); err != nil {
		t.Fatal(err)
	}
	done := make(chan []hookd.PublishResult, 1)
	errs := make(chan error, 1)
	go func() {
		res, err := db.Publish(context.Background(), oneEvent(org, "a.b", multiBase))
		done <- res
		errs <- err
	}()
	time.Sleep(200 * time.Millisecond) // let the publish read the subscribers and block on the row
	if err := tx.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	res, err := <-done, <-errs
	if err != nil {
		t.Fatalf("Publish while an endpoint is deleted: %v", err)
	}
	_, ds, err := db.Event(t.Context(), org, res[0].Event.ID)
	if err != nil || len(ds) != 1 || ds[0].EndpointID != stays.ID {
		t.Errorf("the event's deliveries: %v, %v; want one, to the endpoint that remains", ds, err)
	}
}

// TestLongSchemaName: wake-ups work in a schema whose name is near PostgreSQL's
// 63-byte limit (the channel name derives from it).
func TestLongSchemaName(t *testing.T) {
	t.Parallel()
	base := testURL(t) // a schema of its own for cleanup; the long one is made here
	schema := "hookd_" + strings.Repeat("s", 56)
	conn, err := pgx.Connect(t.Context(), pgtest.BaseURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), `CREATE SCHEMA `+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), pgtest.BaseURL())
		if err == nil {
			c.Exec(context.Background(), `DROP SCHEMA `+schema+` CASCADE`)
			c.Close(context.Background())
		}
	})
	pu, _ := url.Parse(base)
	q := pu.Query()
	q.Set("search_path", schema)
	pu.RawQuery = q.Encode()
	db, err := postgres.Open(t.Context(), postgres.Config{URL: pu.String(), Sealer: testSealer(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	woke := make(chan struct{}, 8)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go db.Listen(ctx, func() { woke <- struct{}{} }, func(err error) { t.Errorf("Listen: %v", err) })
	select {
	case <-woke: // the wake-up after connecting
	case <-time.After(10 * time.Second):
		t.Fatal("Listen did not connect")
	}
	org := multiOrg(t, db)
	multiEndpoint(t, db, org, nil)
	multiPublish(t, db, oneEvent(org, "a.b", multiBase))
	select {
	case <-woke:
	case <-time.After(10 * time.Second):
		t.Fatal("no wake-up after a publish in a schema with a long name")
	}
}

// TestUsageAcrossInstances: publishers on three instances racing across an
// organization's quota: exactly the quota is accepted, and each threshold is
// announced once.
func TestUsageAcrossInstances(t *testing.T) {
	t.Parallel()
	dbs := multiStores(t, 3)
	org := multiOrg(t, dbs[0])
	if _, err := dbs[0].UpdateOrganization(t.Context(), org, func(o *hookd.Organization) error {
		o.MonthlyQuota, o.AllowOverage = 30, false
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	multiEndpoint(t, dbs[0], org, nil)
	var accepted, refused atomic.Int64
	concurrently(dbs, 15, func(db *postgres.DB) {
		_, err := db.Publish(context.Background(), oneEvent(org, "a.b", multiBase))
		switch {
		case err == nil:
			accepted.Add(1)
		case hookd.ErrorCode(err) == hookd.EQUOTA:
			refused.Add(1)
		default:
			t.Errorf("Publish: %v", err)
		}
	})
	u, err := dbs[1].Usage(t.Context(), org, hookd.UsagePeriod(multiBase))
	if err != nil {
		t.Fatal(err)
	}
	if accepted.Load() != 30 || refused.Load() != 15 || u.Events != 30 {
		t.Errorf("accepted %d, refused %d, usage %d; want 30, 15, 30", accepted.Load(), refused.Load(), u.Events)
	}
	evs, _, err := dbs[2].ListEvents(t.Context(), hookd.EventFilter{OrgID: org, Type: hookd.EventUsageThreshold})
	if err != nil || len(evs) != 2 {
		t.Errorf("usage_threshold events: %d, %v; want 2 (90 %% and 100 %%, once each)", len(evs), err)
	}
}
