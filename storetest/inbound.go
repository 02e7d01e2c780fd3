package storetest

import (
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/ids"
)

// newInboundEvent returns the organization event that partner p's event
// partnerEventID becomes, of type typ, received at at.
func newInboundEvent(p *hookd.Partner, partnerEventID, typ string, at time.Time) *hookd.Event {
	ev := newEvent(p.OrgID, typ, at)
	ev.ID = hookd.InboundEventID(p.ID, partnerEventID)
	return ev
}

// inboundAudit returns the audit record of p submitting ev, answered with status.
func inboundAudit(p *hookd.Partner, ev *hookd.Event, status int) *hookd.AuditRecord {
	return &hookd.AuditRecord{
		ID:        ids.NewAt("aud", ev.CreatedAt),
		OrgID:     p.OrgID,
		Time:      ev.CreatedAt,
		ActorType: hookd.ActorPartner,
		Actor:     p.ID,
		Action:    "inbound.event",
		Target:    ev.ID,
		Result:    hookd.AuditSuccess,
		ClientIP:  "203.0.113.7",
		Status:    status,
	}
}

// mustAccept accepts ev with its two possible audit records.
func mustAccept(t *testing.T, s hookd.Store, ev *hookd.Event, accepted, duplicate *hookd.AuditRecord) *hookd.PublishResult {
	t.Helper()
	res, err := s.AcceptInbound(t.Context(), ev, accepted, duplicate)
	if err != nil {
		t.Fatalf("AcceptInbound(%s): %v", ev.ID, err)
	}
	if res == nil {
		t.Fatalf("AcceptInbound(%s) returned no result", ev.ID)
	}
	return res
}

var acceptInboundTests = []test{
	{"New", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		all := mustEndpoint(t, s, o.ID, nil)
		prefix := mustEndpoint(t, s, o.ID, subscribed("invoice.*"))
		disabled := mustEndpoint(t, s, o.ID, func(e *hookd.Endpoint) { e.Enabled = false })
		mustEndpoint(t, s, o.ID, subscribed("customer.*"))
		p := mustPartner(t, s, o.ID, nil)
		ev := newInboundEvent(p, "order-1", "invoice.paid", base)
		accepted, duplicate := inboundAudit(p, ev, 202), inboundAudit(p, ev, 200)

		res := mustAccept(t, s, ev, accepted, duplicate)
		if diff := cmp.Diff(&hookd.PublishResult{Event: ev, Deliveries: 3}, res, equateEmpty); diff != "" {
			t.Errorf("AcceptInbound of a new event (-want +got):\n%s", diff)
		}
		got, _, err := s.Event(t.Context(), o.ID, ev.ID)
		if err != nil {
			t.Fatalf("Event: %v", err)
		}
		if diff := cmp.Diff(ev, got, equateEmpty); diff != "" {
			t.Errorf("Event (-want +got):\n%s", diff)
		}
		// Fanned out as Publish does: due at once, skipped for a disabled endpoint.
		const P, S = hookd.DeliveryPending, hookd.DeliverySkipped
		if diff := cmp.Diff(map[string]string{all.ID: P, prefix.ID: P, disabled.ID: S}, statusesOf(t, s, ev)); diff != "" {
			t.Errorf("deliveries' statuses by endpoint (-want +got):\n%s", diff)
		}
		ds := deliveriesOf(t, s, ev)
		wantClaimed(t, mustClaim(t, s, base), "claim at the event's time", ds[all.ID], ds[prefix.ID])

		if diff := cmp.Diff([]*hookd.AuditRecord{accepted}, allAudit(t, s, hookd.AuditFilter{})); diff != "" {
			t.Errorf("audit log after accepting a new event (-want +got):\n%s", diff)
		}
	}},
	{"Duplicate", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		mustEndpoint(t, s, o.ID, nil)
		mustEndpoint(t, s, o.ID, subscribed("invoice.*"))
		p := mustPartner(t, s, o.ID, nil)
		orig := newInboundEvent(p, "order-1", "invoice.paid", base)
		accepted := inboundAudit(p, orig, 202)
		mustAccept(t, s, orig, accepted, inboundAudit(p, orig, 200))
		wantEvents, wantDeliveries := counts(t, s)

		// Meanwhile a third endpoint subscribes: the duplicate must still not fan out.
		mustEndpoint(t, s, o.ID, nil)
		again := newInboundEvent(p, "order-1", "customer.created", base.Add(time.Minute))
		again.Data = json.RawMessage(`{"other":true}`)
		acceptedAgain, duplicate := inboundAudit(p, again, 202), inboundAudit(p, again, 200)
		res := mustAccept(t, s, again, acceptedAgain, duplicate)
		if diff := cmp.Diff(&hookd.PublishResult{Event: orig, Deliveries: 2, Duplicate: true}, res, equateEmpty); diff != "" {
			t.Errorf("AcceptInbound of a duplicate (-want +got):\n%s", diff)
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
		// Newest first: the duplicate's record, then the first acceptance's.
		if diff := cmp.Diff([]*hookd.AuditRecord{duplicate, accepted}, allAudit(t, s, hookd.AuditFilter{})); diff != "" {
			t.Errorf("audit log after a duplicate (-want +got):\n%s", diff)
		}
	}},
	{"DuplicateOfPublished", func(t *testing.T, s hookd.Store) {
		// The same uniqueness as Publish: an event published under that id is the original.
		o := mustOrg(t, s)
		mustEndpoint(t, s, o.ID, nil)
		p := mustPartner(t, s, o.ID, nil)
		orig := newInboundEvent(p, "order-1", "invoice.paid", base)
		mustPublish(t, s, orig)
		again := newInboundEvent(p, "order-1", "invoice.paid", base.Add(time.Second))
		accepted, duplicate := inboundAudit(p, again, 202), inboundAudit(p, again, 200)
		res := mustAccept(t, s, again, accepted, duplicate)
		if diff := cmp.Diff(&hookd.PublishResult{Event: orig, Deliveries: 1, Duplicate: true}, res, equateEmpty); diff != "" {
			t.Errorf("AcceptInbound of a published id (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]*hookd.AuditRecord{duplicate}, allAudit(t, s, hookd.AuditFilter{})); diff != "" {
			t.Errorf("audit log (-want +got):\n%s", diff)
		}
	}},
	{"ConcurrentSameID", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		mustEndpoint(t, s, o.ID, nil)
		mustEndpoint(t, s, o.ID, nil)
		p := mustPartner(t, s, o.ID, nil)
		const n = 24
		var (
			wg         sync.WaitGroup
			results    = make([]*hookd.PublishResult, n)
			errs       = make([]error, n)
			accepted   = make([]*hookd.AuditRecord, n)
			duplicates = make([]*hookd.AuditRecord, n)
		)
		for i := range n {
			ev := newInboundEvent(p, "order-1", "invoice.paid", base.Add(time.Duration(i)*time.Millisecond))
			accepted[i], duplicates[i] = inboundAudit(p, ev, 202), inboundAudit(p, ev, 200)
			wg.Go(func() {
				results[i], errs[i] = s.AcceptInbound(t.Context(), ev, accepted[i], duplicates[i])
			})
		}
		wg.Wait()
		fresh := -1
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("AcceptInbound %d: %v", i, errs[i])
			}
			if !results[i].Duplicate {
				if fresh >= 0 {
					t.Fatalf("AcceptInbound %d and %d of one event were both new", fresh, i)
				}
				fresh = i
			}
		}
		if fresh < 0 {
			t.Fatalf("none of %d concurrent AcceptInbound of one event was new", n)
		}
		first := results[fresh].Event
		for i, r := range results {
			if diff := cmp.Diff(&hookd.PublishResult{Event: first, Deliveries: 2, Duplicate: i != fresh}, r, equateEmpty); diff != "" {
				t.Errorf("result %d (-want +got):\n%s", i, diff)
			}
		}
		if e, d := counts(t, s); e != 1 || d != 2 {
			t.Errorf("after concurrent acceptances: %d events and %d deliveries, want 1 and 2", e, d)
		}
		// Exactly one accepted record, the winner's, and every other call's duplicate record.
		want := []string{accepted[fresh].ID}
		for i, r := range duplicates {
			if i != fresh {
				want = append(want, r.ID)
			}
		}
		slices.Sort(want)
		got := auditIDs(allAudit(t, s, hookd.AuditFilter{OrgID: o.ID}))
		slices.Sort(got)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("audit log after concurrent acceptances (-want +got):\n%s", diff)
		}
	}},
	{"UnknownOrganizationStoresNothing", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		mustEndpoint(t, s, o.ID, nil)
		p := mustPartner(t, s, o.ID, nil)
		ev := newInboundEvent(p, "order-1", "invoice.paid", base)
		ev.OrgID = "no-such-org"
		_, err := s.AcceptInbound(t.Context(), ev, inboundAudit(p, ev, 202), inboundAudit(p, ev, 200))
		wantCode(t, err, hookd.ENOTFOUND, "AcceptInbound for an unknown organization")
		_, _, err = s.Event(t.Context(), "", ev.ID)
		wantCode(t, err, hookd.ENOTFOUND, "Event of the rejected event")
		if e, d := counts(t, s); e != 0 || d != 0 {
			t.Errorf("after a rejected event: %d events and %d deliveries, want none", e, d)
		}
		if got := allAudit(t, s, hookd.AuditFilter{}); len(got) != 0 {
			t.Errorf("audit log after a rejected event: %v, want nothing", auditIDs(got))
		}

		// The rejected id is still free.
		ev.OrgID = o.ID
		accepted := inboundAudit(p, ev, 202)
		if res := mustAccept(t, s, ev, accepted, inboundAudit(p, ev, 200)); res.Duplicate || res.Deliveries != 1 {
			t.Errorf("AcceptInbound after the rejection = %+v, want a new event with 1 delivery", res)
		}
		if diff := cmp.Diff([]*hookd.AuditRecord{accepted}, allAudit(t, s, hookd.AuditFilter{})); diff != "" {
			t.Errorf("audit log (-want +got):\n%s", diff)
		}
	}},
}

var retryEventTests = []test{
	{"FailedBecomePending", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		ok := mustEndpoint(t, s, o.ID, nil)
		bad1, bad2 := mustEndpoint(t, s, o.ID, nil), mustEndpoint(t, s, o.ID, nil)
		waiting := mustEndpoint(t, s, o.ID, nil)
		off := mustEndpoint(t, s, o.ID, func(e *hookd.Endpoint) { e.Enabled = false })
		ev, ds := mustPublishOne(t, s, o.ID, "invoice.paid", base)
		other, ods := mustPublishOne(t, s, o.ID, "invoice.paid", base.Add(time.Second))

		now := base.Add(time.Minute)
		settle(t, s, ds[ok.ID], hookd.DeliverySucceeded, now)
		settle(t, s, ds[bad1.ID], hookd.DeliveryFailed, now)
		settle(t, s, ds[bad2.ID], hookd.DeliveryPending, now) // fails on its second attempt
		for id, d := range ods {
			switch {
			case id == bad1.ID:
				settle(t, s, d, hookd.DeliveryFailed, now) // another event's failure
			case id != off.ID:
				settle(t, s, d, hookd.DeliverySucceeded, now)
			}
		}
		settle(t, s, ds[bad2.ID], hookd.DeliveryFailed, now.Add(5*time.Minute))
		settle(t, s, ds[waiting.ID], hookd.DeliveryPending, now.Add(5*time.Minute)) // due at now+10m
		for id, want := range map[string]string{ok.ID: hookd.DeliverySucceeded, bad1.ID: hookd.DeliveryFailed,
			bad2.ID: hookd.DeliveryFailed, waiting.ID: hookd.DeliveryPending, off.ID: hookd.DeliverySkipped} {
			if d, _ := mustDelivery(t, s, ds[id].ID); d.Status != want {
				t.Fatalf("delivery to %s is %s, want %s", id, d.Status, want)
			}
		}

		at := now.Add(6 * time.Minute)
		before := snapshot(t, s, o.ID)
		if d := before[ds[bad2.ID].ID]; d.Attempts != 2 || d.CycleAttempts != 2 || d.LastError == "" {
			t.Fatalf("delivery to bad2: Attempts %d, CycleAttempts %d, LastError %q; want 2, 2 and an error",
				d.Attempts, d.CycleAttempts, d.LastError)
		}
		n, err := s.RetryEvent(t.Context(), o.ID, ev.ID, at)
		if err != nil {
			t.Fatalf("RetryEvent: %v", err)
		}
		if n != 2 {
			t.Errorf("RetryEvent = %d, want 2 (the failed deliveries)", n)
		}
		want := map[string]*hookd.Delivery{}
		for id, d := range before {
			c := *d
			want[id] = &c
		}
		for _, e := range []*hookd.Endpoint{bad1, bad2} {
			d := want[ds[e.ID].ID]
			d.Status, d.NextAttemptAt, d.CycleAttempts = hookd.DeliveryPending, at, 0
		}
		if diff := cmp.Diff(want, snapshot(t, s, o.ID), cmpopts.IgnoreFields(hookd.Delivery{}, "UpdatedAt")); diff != "" {
			t.Errorf("deliveries after RetryEvent (-want +got):\n%s", diff)
		}
		if cs := mustClaim(t, s, at.Add(-time.Microsecond)); len(cs) != 0 {
			t.Errorf("claimed %v before the retry's time", claimedIDs(cs))
		}
		wantClaimed(t, mustClaim(t, s, at), "claim at the retry's time", ds[bad1.ID], ds[bad2.ID])

		// Nothing of the event has failed any more; the other event's failure is its own.
		if n, err := s.RetryEvent(t.Context(), o.ID, ev.ID, at); err != nil || n != 0 {
			t.Errorf("RetryEvent again = %d, %v; want 0, nil", n, err)
		}
		if n, err := s.RetryEvent(t.Context(), o.ID, other.ID, at); err != nil || n != 1 {
			t.Errorf("RetryEvent(other event) = %d, %v; want 1, nil", n, err)
		}
	}},
	{"NothingToRetry", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		e := mustEndpoint(t, s, o.ID, subscribed("invoice.*"))
		ev, ds := mustPublishOne(t, s, o.ID, "invoice.paid", base)
		settle(t, s, ds[e.ID], hookd.DeliverySucceeded, base)
		none := newEvent(o.ID, "customer.created", base) // no subscriber: no delivery
		mustPublish(t, s, none)
		before := snapshot(t, s, o.ID)
		for _, id := range []string{ev.ID, none.ID} {
			if n, err := s.RetryEvent(t.Context(), o.ID, id, base.Add(time.Hour)); err != nil || n != 0 {
				t.Errorf("RetryEvent(%s) = %d, %v; want 0, nil", id, n, err)
			}
		}
		if diff := cmp.Diff(before, snapshot(t, s, o.ID)); diff != "" {
			t.Errorf("deliveries after RetryEvent of an event without failures (-want +got):\n%s", diff)
		}
	}},
	{"AsAdmin", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		e := mustEndpoint(t, s, o.ID, nil)
		p := mustPartner(t, s, o.ID, nil)
		ev := newInboundEvent(p, "order-1", "invoice.paid", base)
		mustAccept(t, s, ev, inboundAudit(p, ev, 202), inboundAudit(p, ev, 200))
		d := deliveriesOf(t, s, ev)[e.ID]
		settle(t, s, d, hookd.DeliveryFailed, base)
		at := base.Add(time.Hour)
		n, err := s.RetryEvent(t.Context(), "", ev.ID, at)
		if err != nil || n != 1 {
			t.Fatalf("RetryEvent as admin = %d, %v; want 1, nil", n, err)
		}
		if got, _ := mustDelivery(t, s, d.ID); got.Status != hookd.DeliveryPending || !got.NextAttemptAt.Equal(at) {
			t.Errorf("delivery after RetryEvent as admin: status %s, due %v; want pending, due %v", got.Status, got.NextAttemptAt, at)
		}
	}},
	{"NotFound", func(t *testing.T, s hookd.Store) {
		o, other := mustOrg(t, s), mustOrg(t, s)
		e := mustEndpoint(t, s, o.ID, nil)
		ev, ds := mustPublishOne(t, s, o.ID, "invoice.paid", base)
		settle(t, s, ds[e.ID], hookd.DeliveryFailed, base)
		before := snapshot(t, s, o.ID)
		for _, tc := range []struct{ org, id string }{{other.ID, ev.ID}, {o.ID, "evt_unknown"}, {"", "evt_unknown"}} {
			n, err := s.RetryEvent(t.Context(), tc.org, tc.id, base.Add(time.Hour))
			wantCode(t, err, hookd.ENOTFOUND, "RetryEvent("+tc.org+", "+tc.id+")")
			if n != 0 {
				t.Errorf("RetryEvent(%q, %q) = %d, want 0", tc.org, tc.id, n)
			}
		}
		if diff := cmp.Diff(before, snapshot(t, s, o.ID)); diff != "" {
			t.Errorf("deliveries after RetryEvent by another organization (-want +got):\n%s", diff)
		}
	}},
	{"FIFOWaitsForLease", func(t *testing.T, s hookd.Store) {
		fifoRequeuedBehindLease(t, s, func(o *hookd.Organization, f *hookd.Endpoint, d *hookd.Delivery, now time.Time) {
			if n, err := s.RetryEvent(t.Context(), o.ID, d.EventID, now); err != nil || n != 1 {
				t.Fatalf("RetryEvent = %d, %v; want 1", n, err)
			}
		})
	}},
}
