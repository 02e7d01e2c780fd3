package postgres_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/postgres"
)

// TestPublishGroupCommit: concurrent Publish calls share transactions, and a
// call that fails inside a shared one (an organization past its quota, an
// unknown organization) takes nothing of the others with it, nor leaves
// anything of its own: every call answers as it would alone.
func TestPublishGroupCommit(t *testing.T) {
	t.Parallel()
	db := multiStores(t, 1)[0]
	// open's id sorts first: a call with events of both counts open's, then
	// fails on quota's, and what it counted for open must be undone.
	open, quota := multiOrg(t, db), multiOrg(t, db)
	if open > quota {
		open, quota = quota, open
	}
	for org, q := range map[string]int64{quota: 20, open: 0} { // 0: unlimited
		if _, err := db.UpdateOrganization(t.Context(), org, func(o *hookd.Organization) error {
			o.MonthlyQuota, o.AllowOverage = q, false
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	multiEndpoint(t, db, quota, func(e *hookd.Endpoint) { e.Events = []string{"order.*"} })
	multiEndpoint(t, db, open, nil)
	multiEndpoint(t, db, open, func(e *hookd.Endpoint) { e.Ordering = hookd.OrderingFIFO })

	type call struct {
		events []*hookd.Event
		res    []hookd.PublishResult
		err    error
	}
	var calls []*call
	for round := 0; round < 20; round++ {
		var batch []*call
		for i := range 64 {
			var evs []*hookd.Event
			if i == 13 && round%2 == 0 {
				// A call PostgreSQL refuses (bytes that are not UTF-8 in a
				// text column) amid others in a shared transaction: they run
				// again alone. (Every other round, so that groups also commit.)
				evs = multiEvents(open, 1)
				evs[0].Type = "bad.\xff"
				batch = append(batch, &call{events: evs})
				continue
			}
			switch i % 4 {
			case 0:
				evs = multiEvents(quota, 1)
			case 1:
				evs = multiEvents(open, 1+i%3)
			case 2:
				evs = multiEvents("org_nosuch", 1)
			default:
				evs = append(multiEvents(open, 1), multiEvents(quota, 1)...) // both or neither
			}
			batch = append(batch, &call{events: evs})
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for _, c := range batch {
			wg.Go(func() {
				<-start
				c.res, c.err = db.Publish(context.Background(), c.events)
			})
		}
		close(start)
		wg.Wait()
		calls = append(calls, batch...)
		if n, tx := db.PublishStats(); n-tx >= 64 && round >= 1 {
			break // enough calls shared a transaction
		}
	}
	n, tx := db.PublishStats()
	t.Logf("%d Publish calls in %d transactions", n, tx)
	if n-tx < 64 {
		t.Fatalf("%d Publish calls ran in %d transactions: too few shared one to test group commits", n, tx)
	}

	quotaAccepted, openAccepted := 0, int64(0)
	for _, c := range calls {
		hasQuota, unknown, bad := false, false, false
		for _, ev := range c.events {
			hasQuota = hasQuota || ev.OrgID == quota
			unknown = unknown || ev.OrgID == "org_nosuch"
			bad = bad || ev.Type == "bad.\xff"
		}
		switch {
		case bad:
			if c.err == nil {
				t.Errorf("Publish of an event type that is not UTF-8 succeeded, want PostgreSQL's refusal")
			}
		case unknown:
			if hookd.ErrorCode(c.err) != hookd.ENOTFOUND {
				t.Errorf("Publish to an unknown organization = %v, want %s", c.err, hookd.ENOTFOUND)
			}
		case c.err != nil && hasQuota && hookd.ErrorCode(c.err) == hookd.EQUOTA:
		case c.err != nil:
			t.Errorf("Publish of %d events: %v", len(c.events), c.err)
		default:
			for i, r := range c.res {
				if r.Duplicate || r.Event == nil || r.Event.ID != c.events[i].ID {
					t.Errorf("Publish result %d = %+v, want the new event %s", i, r, c.events[i].ID)
				}
			}
			if hasQuota {
				quotaAccepted++
			}
			for _, ev := range c.events {
				if ev.OrgID == open {
					openAccepted++
				}
			}
		}
		// Stored with its deliveries if and only if acknowledged.
		for _, ev := range c.events {
			if ev.OrgID == "org_nosuch" {
				continue
			}
			_, ds, err := db.Event(t.Context(), ev.OrgID, ev.ID)
			want := 1
			if ev.OrgID == open {
				want = 2
			}
			switch {
			case c.err == nil && (err != nil || len(ds) != want):
				t.Errorf("acknowledged event %s: %d deliveries, %v; want %d", ev.ID, len(ds), err, want)
			case c.err != nil && hookd.ErrorCode(err) != hookd.ENOTFOUND:
				t.Errorf("event %s of a refused call: Event = %v, want %s (nothing stored)", ev.ID, err, hookd.ENOTFOUND)
			}
		}
	}
	if quotaAccepted != 20 {
		t.Errorf("%d calls with an event of the organization with a quota of 20 were accepted, want 20", quotaAccepted)
	}
	u, err := db.Usage(t.Context(), quota, hookd.UsagePeriod(multiBase))
	if err != nil || u.Events != 20 {
		t.Errorf("usage of the organization with a quota = %+v, %v; want 20 events", u, err)
	}
	// The organization without a quota counts exactly its accepted events,
	// although a group adds them up at its end.
	if u, err := db.Usage(t.Context(), open, hookd.UsagePeriod(multiBase)); err != nil || u.Events != openAccepted {
		t.Errorf("usage of the organization without a quota = %+v, %v; want %d events", u, err, openAccepted)
	}
	evs, _, err := db.ListEvents(t.Context(), hookd.EventFilter{OrgID: quota, Type: hookd.EventUsageThreshold})
	if err != nil || len(evs) != 2 {
		t.Errorf("usage_threshold events: %d, %v; want 2 (90 %% and 100 %%, once each)", len(evs), err)
	}
}

var _ interface{ PublishStats() (int64, int64) } = (*postgres.DB)(nil)

// TestPublishQuotaWaitHoldsNoOneElse: calls for an organization whose usage
// row another transaction holds (a frozen instance, say) wait for it alone:
// calls for other organizations meanwhile commit at once, none fails, and the
// waiting calls commit once the row is free.
func TestPublishQuotaWaitHoldsNoOneElse(t *testing.T) {
	t.Parallel()
	db, u := openStoreURL(t)
	held, free := multiOrg(t, db), multiOrg(t, db) // held has a quota
	if _, err := db.UpdateOrganization(t.Context(), free, func(o *hookd.Organization) error { o.MonthlyQuota = 0; return nil }); err != nil {
		t.Fatal(err)
	}
	multiEndpoint(t, db, held, nil)
	multiEndpoint(t, db, free, nil)
	multiPublish(t, db, multiEvents(held, 1)) // its usage row exists
	release := holdInTx(t, u, `SELECT 1 FROM usage WHERE org_id = $1 AND shard = 0 FOR UPDATE`, held)

	heldDone := make(chan error, 8)
	for range 8 {
		go func() {
			_, err := db.Publish(context.Background(), multiEvents(held, 1))
			heldDone <- err
		}()
	}
	time.Sleep(100 * time.Millisecond) // the held calls are waiting
	start := time.Now()
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range 32 {
		wg.Go(func() {
			if _, err := db.Publish(context.Background(), multiEvents(free, 1)); err != nil {
				t.Errorf("Publish for another organization while a usage row is held: %v", err)
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("32 calls for another organization took %s while a usage row was held: they waited for it", took)
	}
	select {
	case err := <-heldDone:
		t.Fatalf("a call for the organization whose usage row is held answered %v before the row was free", err)
	default:
	}
	release()
	for range 8 {
		if err := <-heldDone; err != nil {
			t.Errorf("Publish once the usage row was free: %v", err)
		}
	}
}

// TestPublishAbandonedBeforeItRuns: a call whose context ends while it still
// waits for a transaction (every flusher busy) answers the context's error at
// once and is never stored; a call is never answered with an error and then
// committed.
func TestPublishAbandonedBeforeItRuns(t *testing.T) {
	t.Parallel()
	db, u := openStoreURL(t)
	busy, victim := multiOrg(t, db), multiOrg(t, db)
	for _, org := range []string{busy, victim} {
		if _, err := db.UpdateOrganization(t.Context(), org, func(o *hookd.Organization) error { o.MonthlyQuota = 0; return nil }); err != nil {
			t.Fatal(err)
		}
		multiEndpoint(t, db, org, nil)
	}
	// Publishing to busy waits for its organization's row: each of these
	// calls keeps a flusher waiting.
	release := holdInTx(t, u, `SELECT 1 FROM organizations WHERE id = $1 FOR UPDATE`, busy)
	busyDone := make(chan error, 8)
	for range 8 {
		go func() {
			_, err := db.Publish(context.Background(), multiEvents(busy, 1))
			busyDone <- err
		}()
		time.Sleep(50 * time.Millisecond) // each taken by an idle flusher
	}
	evs := multiEvents(victim, 2)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := db.Publish(ctx, evs)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Publish while every flusher is busy = %v, want the context's deadline", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Publish answered its context's end after %s, want at once", took)
	}
	release()
	for range 8 {
		if err := <-busyDone; err != nil {
			t.Errorf("Publish once the organization's row was free: %v", err)
		}
	}
	// Every flusher is free again: the abandoned call would have run by now.
	multiPublish(t, db, multiEvents(victim, 1))
	for _, ev := range evs {
		if _, _, err := db.Event(t.Context(), victim, ev.ID); hookd.ErrorCode(err) != hookd.ENOTFOUND {
			t.Errorf("event %s of a call answered with its context's error: Event = %v, want %s (never stored)", ev.ID, err, hookd.ENOTFOUND)
		}
	}
}
