package postgres_test

import (
	"context"
	"sync"
	"testing"

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
			if i == 13 {
				// A call PostgreSQL refuses (bytes that are not UTF-8 in a
				// text column) in the middle of calls without a savepoint.
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
		if n, tx := db.PublishStats(); n-tx >= 64 {
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
