package storetest

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/ids"
)

// statusesOf returns the statuses of ev's deliveries by endpoint id.
func statusesOf(t *testing.T, s hookd.Store, ev *hookd.Event) map[string]string {
	t.Helper()
	out := map[string]string{}
	for id, d := range deliveriesOf(t, s, ev) {
		out[id] = d.Status
	}
	return out
}

// counts returns how many events and deliveries the store holds in all.
func counts(t *testing.T, s hookd.Store) (events, deliveries int) {
	t.Helper()
	return len(allEvents(t, s, hookd.EventFilter{Page: hookd.Page{Limit: hookd.MaxPageLimit}})),
		len(allDeliveries(t, s, hookd.DeliveryFilter{Page: hookd.Page{Limit: hookd.MaxPageLimit}}))
}

var publishTests = []test{
	{"FanOut", func(t *testing.T, s hookd.Store) {
		o, other := mustOrg(t, s), mustOrg(t, s)
		all := mustEndpoint(t, s, o.ID, subscribed("*"))
		exact := mustEndpoint(t, s, o.ID, subscribed("invoice.paid"))
		prefix := mustEndpoint(t, s, o.ID, subscribed("invoice.*"))
		several := mustEndpoint(t, s, o.ID, subscribed("customer.created", "invoice.paid"))
		disabled := mustEndpoint(t, s, o.ID, func(e *hookd.Endpoint) { e.Events, e.Enabled = []string{"invoice.*"}, false })
		mustEndpoint(t, s, other.ID, subscribed("*")) // another organization's

		const P, S = hookd.DeliveryPending, hookd.DeliverySkipped
		for _, tc := range []struct {
			typ  string
			want map[string]string // endpoint id → status
		}{
			{"invoice.paid", map[string]string{all.ID: P, exact.ID: P, prefix.ID: P, several.ID: P, disabled.ID: S}},
			{"invoice", map[string]string{all.ID: P}},
			{"invoice.item.created", map[string]string{all.ID: P, prefix.ID: P, disabled.ID: S}},
			{"invoices.paid", map[string]string{all.ID: P}},
			{"customer.created", map[string]string{all.ID: P, several.ID: P}},
			{"invoice.paid.late", map[string]string{all.ID: P, prefix.ID: P, disabled.ID: S}},
		} {
			ev := newEvent(o.ID, tc.typ, base)
			res := mustPublish(t, s, ev)
			if res[0].Duplicate || res[0].Deliveries != len(tc.want) || res[0].Event == nil || res[0].Event.ID != ev.ID {
				t.Errorf("Publish(%q) = {Event: %v, Deliveries: %d, Duplicate: %v}, want {Event: %s, Deliveries: %d}",
					tc.typ, res[0].Event, res[0].Deliveries, res[0].Duplicate, ev.ID, len(tc.want))
			}
			if diff := cmp.Diff(tc.want, statusesOf(t, s, ev)); diff != "" {
				t.Errorf("Publish(%q): deliveries' statuses by endpoint (-want +got):\n%s", tc.typ, diff)
			}
		}
	}},
	{"NoSubscribers", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		mustEndpoint(t, s, o.ID, subscribed("invoice.paid"))
		ev := newEvent(o.ID, "customer.created", base)
		res := mustPublish(t, s, ev)
		if res[0].Deliveries != 0 || res[0].Duplicate {
			t.Errorf("Publish = %+v, want 0 deliveries, not a duplicate", res[0])
		}
		got, ds, err := s.Event(t.Context(), o.ID, ev.ID)
		if err != nil {
			t.Fatalf("Event: %v", err)
		}
		if diff := cmp.Diff(ev, got, equateEmpty); diff != "" {
			t.Errorf("Event (-want +got):\n%s", diff)
		}
		if len(ds) != 0 {
			t.Errorf("Event has %d deliveries, want 0", len(ds))
		}
	}},
	{"DuplicateID", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		mustEndpoint(t, s, o.ID, nil)
		mustEndpoint(t, s, o.ID, subscribed("invoice.*"))
		orig := newEvent(o.ID, "invoice.paid", base)
		orig.IdempotencyKey = "key-1"
		mustPublish(t, s, orig)
		wantEvents, wantDeliveries := counts(t, s)

		// Meanwhile a third endpoint subscribes: the duplicate must still not fan out.
		mustEndpoint(t, s, o.ID, nil)
		again := &hookd.Event{ID: orig.ID, OrgID: o.ID, Type: "customer.created", Data: json.RawMessage(`{"other":true}`),
			CreatedAt: base.Add(time.Minute)}
		res := mustPublish(t, s, again)
		want := hookd.PublishResult{Event: orig, Deliveries: 2, Duplicate: true}
		if diff := cmp.Diff(want, res[0], equateEmpty); diff != "" {
			t.Errorf("Publish of a duplicate id (-want +got):\n%s", diff)
		}
		if e, d := counts(t, s); e != wantEvents || d != wantDeliveries {
			t.Errorf("after a duplicate: %d events and %d deliveries, want %d and %d", e, d, wantEvents, wantDeliveries)
		}
		got, _, err := s.Event(t.Context(), o.ID, orig.ID)
		if err != nil {
			t.Fatalf("Event: %v", err)
		}
		if diff := cmp.Diff(orig, got, equateEmpty); diff != "" {
			t.Errorf("Event after a duplicate (-want +got):\n%s", diff)
		}
	}},
	{"DuplicateIdempotencyKey", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		mustEndpoint(t, s, o.ID, nil)
		orig := newEvent(o.ID, "invoice.paid", base)
		orig.IdempotencyKey = "idem-" + ids.New("k")
		mustPublish(t, s, orig)

		again := newEvent(o.ID, "invoice.paid", base.Add(time.Second))
		again.IdempotencyKey = orig.IdempotencyKey
		res := mustPublish(t, s, again)
		want := hookd.PublishResult{Event: orig, Deliveries: 1, Duplicate: true}
		if diff := cmp.Diff(want, res[0], equateEmpty); diff != "" {
			t.Errorf("Publish with a used idempotency key (-want +got):\n%s", diff)
		}
		_, _, err := s.Event(t.Context(), o.ID, again.ID)
		wantCode(t, err, hookd.ENOTFOUND, "Event of the duplicate's own id")
		if e, d := counts(t, s); e != 1 || d != 1 {
			t.Errorf("after a duplicate: %d events and %d deliveries, want 1 and 1", e, d)
		}
	}},
	{"SameIDInOtherOrganization", func(t *testing.T, s hookd.Store) {
		a, b := mustOrg(t, s), mustOrg(t, s)
		mustEndpoint(t, s, a.ID, nil)
		mustEndpoint(t, s, b.ID, nil)
		evA := newEvent(a.ID, "invoice.paid", base)
		evA.IdempotencyKey = "shared-key"
		evB := newEvent(b.ID, "invoice.paid", base)
		evB.ID, evB.IdempotencyKey = evA.ID, evA.IdempotencyKey
		for _, ev := range []*hookd.Event{evA, evB} {
			if res := mustPublish(t, s, ev); res[0].Duplicate || res[0].Deliveries != 1 {
				t.Errorf("Publish in organization %s = %+v, want a new event with 1 delivery", ev.OrgID, res[0])
			}
		}
		for _, ev := range []*hookd.Event{evA, evB} {
			got, ds, err := s.Event(t.Context(), ev.OrgID, ev.ID)
			if err != nil {
				t.Fatalf("Event: %v", err)
			}
			if diff := cmp.Diff(ev, got, equateEmpty); diff != "" {
				t.Errorf("Event in organization %s (-want +got):\n%s", ev.OrgID, diff)
			}
			if len(ds) != 1 || ds[0].OrgID != ev.OrgID {
				t.Errorf("Event in organization %s has deliveries %v", ev.OrgID, ds)
			}
		}
	}},
	{"DuplicatesInOneBatch", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		mustEndpoint(t, s, o.ID, nil)
		mustEndpoint(t, s, o.ID, subscribed("customer.*"))
		a := newEvent(o.ID, "invoice.paid", base)
		aAgain := newEvent(o.ID, "customer.created", base)
		aAgain.ID = a.ID
		b := newEvent(o.ID, "customer.created", base)
		b.IdempotencyKey = "batch-key"
		c := newEvent(o.ID, "invoice.paid", base)
		c.IdempotencyKey = b.IdempotencyKey
		d := newEvent(o.ID, "invoice.paid", base)
		res := mustPublish(t, s, a, aAgain, b, c, d)
		want := []hookd.PublishResult{
			{Event: a, Deliveries: 1},
			{Event: a, Deliveries: 1, Duplicate: true},
			{Event: b, Deliveries: 2},
			{Event: b, Deliveries: 2, Duplicate: true},
			{Event: d, Deliveries: 1},
		}
		if diff := cmp.Diff(want, res, equateEmpty); diff != "" {
			t.Errorf("Publish of a batch with duplicates (-want +got):\n%s", diff)
		}
		if e, n := counts(t, s); e != 3 || n != 4 {
			t.Errorf("after the batch: %d events and %d deliveries, want 3 and 4", e, n)
		}
	}},
	{"BatchFansOutAsOneByOne", func(t *testing.T, s hookd.Store) {
		// A batch without repeats among its events (which a store may store
		// in a few statements) gives what publishing its events one by one
		// would: a duplicate of a stored event is a duplicate, a disabled
		// endpoint's deliveries are skipped, each organization fans out to
		// its own endpoints, and a FIFO endpoint's deliveries queue in the
		// batch's order behind its backlog.
		o, other := mustOrg(t, s), mustOrg(t, s)
		all := mustEndpoint(t, s, o.ID, nil)
		paid := mustEndpoint(t, s, o.ID, subscribed("invoice.paid"))
		off := mustEndpoint(t, s, o.ID, func(e *hookd.Endpoint) { e.Enabled = false })
		busy := mustEndpoint(t, s, o.ID, func(e *hookd.Endpoint) { fifo(e); e.Events = []string{"invoice.*"} })
		theirs := mustEndpoint(t, s, other.ID, nil)
		_, before := mustPublishOne(t, s, o.ID, "invoice.created", base) // busy's backlog (and the others')
		stored := newEvent(o.ID, "invoice.paid", base)
		stored.IdempotencyKey = "stored-" + ids.New("k")
		mustPublish(t, s, stored)
		fresh := mustEndpoint(t, s, o.ID, fifo) // no backlog before the batch

		at := base.Add(time.Second)
		e1, e2, e3 := newEvent(o.ID, "invoice.paid", at), newEvent(o.ID, "customer.created", at), newEvent(other.ID, "invoice.paid", at)
		dupID := &hookd.Event{ID: stored.ID, OrgID: o.ID, Type: "customer.created", Data: json.RawMessage(`{}`), CreatedAt: at}
		dupKey := newEvent(o.ID, "invoice.paid", at)
		dupKey.IdempotencyKey = stored.IdempotencyKey
		e4 := newEvent(o.ID, "invoice.paid", at)
		res := mustPublish(t, s, e1, dupID, e2, e3, dupKey, e4)
		want := []hookd.PublishResult{
			{Event: e1, Deliveries: 5},
			{Event: stored, Deliveries: 4, Duplicate: true},
			{Event: e2, Deliveries: 3},
			{Event: e3, Deliveries: 1},
			{Event: stored, Deliveries: 4, Duplicate: true},
			{Event: e4, Deliveries: 5},
		}
		if diff := cmp.Diff(want, res, equateEmpty); diff != "" {
			t.Errorf("Publish of a mixed batch (-want +got):\n%s", diff)
		}
		const P, S = hookd.DeliveryPending, hookd.DeliverySkipped
		for _, tc := range []struct {
			ev   *hookd.Event
			want map[string]string
		}{
			{e1, map[string]string{all.ID: P, paid.ID: P, off.ID: S, fresh.ID: P, busy.ID: P}},
			{e2, map[string]string{all.ID: P, off.ID: S, fresh.ID: P}},
			{e3, map[string]string{theirs.ID: P}},
			{e4, map[string]string{all.ID: P, paid.ID: P, off.ID: S, fresh.ID: P, busy.ID: P}},
		} {
			if diff := cmp.Diff(tc.want, statusesOf(t, s, tc.ev)); diff != "" {
				t.Errorf("deliveries of %s by endpoint (-want +got):\n%s", tc.ev.Type, diff)
			}
		}
		if e, d := counts(t, s); e != 6 || d != 3+4+5+3+1+5 {
			t.Errorf("after the batch: %d events and %d deliveries, want 6 and 21", e, d)
		}
		// Behind a FIFO endpoint's oldest pending delivery, the others wait
		// parked (no next attempt time) until it is done.
		for _, tc := range []struct {
			ep     *hookd.Endpoint
			evs    []*hookd.Event
			headAt int // index in evs of the one that is due, -1: none
		}{
			{fresh, []*hookd.Event{e1, e2, e4}, 0},
			{busy, []*hookd.Event{e1, e4}, -1},
		} {
			for i, ev := range tc.evs {
				d := deliveriesOf(t, s, ev)[tc.ep.ID]
				if due := !d.NextAttemptAt.IsZero(); due != (i == tc.headAt) {
					t.Errorf("FIFO delivery of batch event %d: next attempt %v, want due: %v", i, d.NextAttemptAt, i == tc.headAt)
				}
			}
		}
		// The FIFO endpoints run in order: fresh from the batch's first event,
		// busy from its backlog, then the batch's.
		fifoOnly := func(ep *hookd.Endpoint, at time.Time) []*hookd.Claim {
			t.Helper()
			var exclude []string
			for _, e := range []*hookd.Endpoint{all, paid, off, fresh, busy, theirs} {
				if e.ID != ep.ID {
					exclude = append(exclude, e.ID)
				}
			}
			return mustClaimParams(t, s, hookd.ClaimParams{Now: at, Exclude: exclude})
		}
		now := at.Add(time.Minute)
		for _, tc := range []struct {
			ep    *hookd.Endpoint
			order []*hookd.Event
		}{
			{fresh, []*hookd.Event{e1, e2, e4}},
			{busy, []*hookd.Event{nil, stored, e1, e4}}, // nil: the backlog's delivery
		} {
			for i, ev := range tc.order {
				var d *hookd.Delivery
				switch ev {
				case nil:
					d = before[tc.ep.ID]
				default:
					d = deliveriesOf(t, s, ev)[tc.ep.ID]
				}
				cs := fifoOnly(tc.ep, now)
				wantClaimed(t, cs, fmt.Sprintf("FIFO claim %d", i+1), d)
				if len(cs) == 1 {
					mustComplete(t, s, outcome(cs[0], hookd.DeliverySucceeded, now))
				}
			}
		}
	}},
	{"UnknownOrganizationStoresNothing", func(t *testing.T, s hookd.Store) {
		for _, bad := range []int{0, 1, 2} {
			o := mustOrg(t, s)
			mustEndpoint(t, s, o.ID, nil)
			batch := []*hookd.Event{newEvent(o.ID, "invoice.paid", base), newEvent(o.ID, "invoice.paid", base), newEvent(o.ID, "invoice.paid", base)}
			batch[bad].OrgID = "no-such-org"
			_, err := s.Publish(t.Context(), batch)
			wantCode(t, err, hookd.ENOTFOUND, "Publish of a batch with an unknown organization")
			for _, ev := range batch {
				_, _, err := s.Event(t.Context(), "", ev.ID)
				wantCode(t, err, hookd.ENOTFOUND, "Event of a rejected batch")
			}
			if evs := allEvents(t, s, hookd.EventFilter{OrgID: o.ID}); len(evs) != 0 {
				t.Errorf("unknown organization at %d: events %v stored, want none", bad, eventIDs(evs))
			}
			if ds := allDeliveries(t, s, hookd.DeliveryFilter{OrgID: o.ID}); len(ds) != 0 {
				t.Errorf("unknown organization at %d: deliveries %v stored, want none", bad, deliveryIDs(ds))
			}
			// The rejected events' ids are still free.
			batch[bad].OrgID = o.ID
			for i, r := range mustPublish(t, s, batch...) {
				if r.Duplicate || r.Deliveries != 1 {
					t.Errorf("unknown organization at %d: republishing event %d = %+v, want new with 1 delivery", bad, i, r)
				}
			}
		}
		if e, d := counts(t, s); e != 9 || d != 9 {
			t.Errorf("in all: %d events and %d deliveries, want 9 and 9", e, d)
		}
	}},
	{"ConcurrentSameID", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		mustEndpoint(t, s, o.ID, nil)
		mustEndpoint(t, s, o.ID, nil)
		const n = 24
		id := ids.New("evt")
		var (
			wg      sync.WaitGroup
			results = make([]hookd.PublishResult, n)
			errs    = make([]error, n)
		)
		for i := range n {
			wg.Go(func() {
				ev := newEvent(o.ID, "invoice.paid", base.Add(time.Duration(i)*time.Millisecond))
				ev.ID = id
				res, err := s.Publish(t.Context(), []*hookd.Event{ev})
				if err == nil {
					results[i] = res[0]
				}
				errs[i] = err
			})
		}
		wg.Wait()
		fresh := 0
		var first *hookd.Event
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("Publish %d: %v", i, errs[i])
			}
			if !results[i].Duplicate {
				fresh++
				first = results[i].Event
			}
		}
		if fresh != 1 {
			t.Fatalf("%d of %d concurrent publishes of one id were not duplicates, want 1", fresh, n)
		}
		for i, r := range results {
			if diff := cmp.Diff(hookd.PublishResult{Event: first, Deliveries: 2, Duplicate: r.Duplicate}, r, equateEmpty); diff != "" {
				t.Errorf("result %d (-want +got):\n%s", i, diff)
			}
		}
		if e, d := counts(t, s); e != 1 || d != 2 {
			t.Errorf("after concurrent publishes: %d events and %d deliveries, want 1 and 2", e, d)
		}
	}},
}
