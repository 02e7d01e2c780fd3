package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/hookd/hookd"
)

// setEnabled enables or disables an endpoint through UpdateEndpoint.
func setEnabled(t *testing.T, s hookd.Store, e *hookd.Endpoint, enabled bool) {
	t.Helper()
	if _, err := s.UpdateEndpoint(t.Context(), e.OrgID, e.ID, func(cur *hookd.Endpoint) error {
		cur.Enabled = enabled
		return nil
	}); err != nil {
		t.Fatalf("UpdateEndpoint(enabled=%v): %v", enabled, err)
	}
}

// fifo makes an endpoint FIFO.
func fifo(e *hookd.Endpoint) { e.Ordering = hookd.OrderingFIFO }

var claimTests = []test{
	{"FillsClaim", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		e := mustEndpoint(t, s, o.ID, func(e *hookd.Endpoint) {
			fullEndpoint(e)
			e.Enabled, e.DisabledReason, e.Ordering = true, "", hookd.OrderingUnordered
			e.Events = []string{"*"}
		})
		ev, ds := mustPublishOne(t, s, o.ID, "invoice.paid", base)
		cs := mustClaim(t, s, base.Add(time.Second))
		if len(cs) != 1 {
			t.Fatalf("claimed %d deliveries, want 1", len(cs))
		}
		c := cs[0]
		want := *ds[e.ID]
		want.InFlight = true // claimed: an attempt holds it now
		if diff := cmp.Diff(&want, &c.Delivery, cmpopts.IgnoreFields(hookd.Delivery{}, "UpdatedAt")); diff != "" {
			t.Errorf("Claim.Delivery (-want +got):\n%s", diff)
		}
		// The claim's event carries what sending needs; the idempotency key is not needed.
		if diff := cmp.Diff(ev, &c.Event, equateEmpty, cmpopts.IgnoreFields(hookd.Event{}, "IdempotencyKey")); diff != "" {
			t.Errorf("Claim.Event (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(e, &c.Endpoint, equateEmpty); diff != "" {
			t.Errorf("Claim.Endpoint, with its secrets opened (-want +got):\n%s", diff)
		}
	}},
	{"OnlyPendingOfEnabledEndpoints", func(t *testing.T, s hookd.Store) {
		o, other := mustOrg(t, s), mustOrg(t, s)
		on := mustEndpoint(t, s, o.ID, nil)
		off := mustEndpoint(t, s, o.ID, func(e *hookd.Endpoint) { e.Enabled = false })
		theirs := mustEndpoint(t, s, other.ID, nil)
		_, ds1 := mustPublishOne(t, s, o.ID, "invoice.paid", base)
		_, ds2 := mustPublishOne(t, s, o.ID, "invoice.paid", base)
		_, ds3 := mustPublishOne(t, s, o.ID, "invoice.paid", base)
		_, ds4 := mustPublishOne(t, s, other.ID, "invoice.paid", base)
		if ds1[off.ID].Status != hookd.DeliverySkipped {
			t.Fatalf("delivery to a disabled endpoint is %s, want skipped", ds1[off.ID].Status)
		}
		settle(t, s, ds1[on.ID], hookd.DeliverySucceeded, base)
		settle(t, s, ds2[on.ID], hookd.DeliveryFailed, base)
		// Every organization's due deliveries are claimed; skipped and finished ones are not.
		wantClaimed(t, mustClaim(t, s, base.Add(time.Hour)), "claim", ds3[on.ID], ds4[theirs.ID])
		wantClaimed(t, mustClaim(t, s, base.Add(24*time.Hour)), "claim after the leases expired", ds3[on.ID], ds4[theirs.ID])
	}},
	{"LeaseIsExclusive", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		e := mustEndpoint(t, s, o.ID, nil)
		_, ds := mustPublishOne(t, s, o.ID, "invoice.paid", base)
		first := mustClaimParams(t, s, hookd.ClaimParams{Now: base, Lease: time.Minute})
		wantClaimed(t, first, "first claim", ds[e.ID])
		for _, at := range []time.Duration{0, 30 * time.Second, 59 * time.Second} {
			if cs := mustClaim(t, s, base.Add(at)); len(cs) != 0 {
				t.Errorf("claim %v after a 1m lease claimed %v, want nothing", at, claimedIDs(cs))
			}
		}
		again := mustClaimParams(t, s, hookd.ClaimParams{Now: base.Add(61 * time.Second), Lease: time.Minute})
		wantClaimed(t, again, "claim after the lease expired", ds[e.ID])
		if again[0].Lease == first[0].Lease {
			t.Errorf("a new claim kept the expired lease %q", first[0].Lease)
		}
		if cs := mustClaim(t, s, base.Add(90*time.Second)); len(cs) != 0 {
			t.Errorf("claim within the second lease claimed %v", claimedIDs(cs))
		}
	}},
	{"NotYetDue", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		e := mustEndpoint(t, s, o.ID, nil)
		_, ds := mustPublishOne(t, s, o.ID, "invoice.paid", base)
		c := claimOf(t, mustClaim(t, s, base), ds[e.ID].ID)
		out := outcome(c, hookd.DeliveryPending, base.Add(time.Second))
		out.NextAttemptAt = base.Add(time.Hour)
		mustComplete(t, s, out)
		for _, at := range []time.Duration{time.Second, 2 * time.Minute, time.Hour - time.Microsecond} {
			if cs := mustClaim(t, s, base.Add(at)); len(cs) != 0 {
				t.Errorf("claim at +%v claimed %v, due at +1h", at, claimedIDs(cs))
			}
		}
		wantClaimed(t, mustClaim(t, s, base.Add(time.Hour)), "claim when due", ds[e.ID])
	}},
	{"Exclude", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		e1, e2, e3 := mustEndpoint(t, s, o.ID, nil), mustEndpoint(t, s, o.ID, nil), mustEndpoint(t, s, o.ID, nil)
		_, ds := mustPublishOne(t, s, o.ID, "invoice.paid", base)
		wantClaimed(t, mustClaimParams(t, s, hookd.ClaimParams{Now: base, Exclude: []string{e1.ID, e3.ID}}),
			"claim excluding two endpoints", ds[e2.ID])
		wantClaimed(t, mustClaimParams(t, s, hookd.ClaimParams{Now: base, Exclude: []string{}}),
			"claim excluding nothing", ds[e1.ID], ds[e3.ID])
	}},
	{"Limit", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		e := mustEndpoint(t, s, o.ID, nil)
		var all []*hookd.Delivery
		for range 5 {
			_, ds := mustPublishOne(t, s, o.ID, "invoice.paid", base)
			all = append(all, ds[e.ID])
		}
		var got []*hookd.Claim
		for _, want := range []int{2, 2, 1, 0} {
			cs := mustClaimParams(t, s, hookd.ClaimParams{Now: base, Limit: 2})
			if len(cs) != want {
				t.Errorf("claim with limit 2 claimed %d, want %d", len(cs), want)
			}
			got = append(got, cs...)
		}
		wantClaimed(t, got, "claims with limit 2", all...)
	}},
	{"OldestDueFirst", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		e := mustEndpoint(t, s, o.ID, nil)
		due := []time.Duration{3 * time.Minute, time.Minute, 2 * time.Minute}
		var ds []*hookd.Delivery
		for range due {
			_, m := mustPublishOne(t, s, o.ID, "invoice.paid", base)
			ds = append(ds, m[e.ID])
		}
		cs := mustClaim(t, s, base)
		var rs []hookd.Release
		for i, d := range ds {
			c := claimOf(t, cs, d.ID)
			rs = append(rs, hookd.Release{DeliveryID: d.ID, Lease: c.Lease, NextAttemptAt: base.Add(due[i])})
		}
		if err := s.ReleaseDeliveries(t.Context(), rs); err != nil {
			t.Fatalf("ReleaseDeliveries: %v", err)
		}
		for _, want := range []*hookd.Delivery{ds[1], ds[2], ds[0]} {
			wantClaimed(t, mustClaimParams(t, s, hookd.ClaimParams{Now: base.Add(time.Hour), Limit: 1}), "claim with limit 1", want)
		}
	}},
	{"DisabledEndpointWaits", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		e := mustEndpoint(t, s, o.ID, nil)
		_, ds := mustPublishOne(t, s, o.ID, "invoice.paid", base)
		setEnabled(t, s, e, false)
		if cs := mustClaim(t, s, base); len(cs) != 0 {
			t.Errorf("claimed %v of a disabled endpoint", claimedIDs(cs))
		}
		if d, _ := mustDelivery(t, s, ds[e.ID].ID); d.Status != hookd.DeliveryPending {
			t.Errorf("queued delivery of a disabled endpoint is %s, want pending", d.Status)
		}
		setEnabled(t, s, e, true)
		wantClaimed(t, mustClaim(t, s, base), "claim after re-enabling", ds[e.ID])
	}},
	{"ClaimsOldestDueFirst", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		mustEndpoint(t, s, o.ID, nil)
		mustEndpoint(t, s, o.ID, nil)
		// Published in another order than they fall due.
		for _, sec := range []int{3, 1, 4, 2} {
			mustPublishOne(t, s, o.ID, "invoice.paid", base.Add(time.Duration(sec)*time.Second))
		}
		cs := mustClaim(t, s, base.Add(10*time.Second))
		if len(cs) != 8 {
			t.Fatalf("claimed %d deliveries, want 8", len(cs))
		}
		for i := 1; i < len(cs); i++ {
			if cs[i].Delivery.NextAttemptAt.Before(cs[i-1].Delivery.NextAttemptAt) {
				t.Fatalf("claim %d is due at %s, before claim %d (%s): claims are not oldest due first", i,
					cs[i].Delivery.NextAttemptAt, i-1, cs[i-1].Delivery.NextAttemptAt)
			}
		}
	}},
	{"FIFO", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		f := mustEndpoint(t, s, o.ID, fifo)
		u := mustEndpoint(t, s, o.ID, nil)
		var fd, ud []*hookd.Delivery
		for i := range 3 {
			_, ds := mustPublishOne(t, s, o.ID, "invoice.paid", base.Add(time.Duration(i)*time.Second))
			fd, ud = append(fd, ds[f.ID]), append(ud, ds[u.ID])
		}
		now := base.Add(10 * time.Second)
		cs := mustClaim(t, s, now)
		wantClaimed(t, cs, "first claim: the FIFO endpoint's oldest and every unordered one", fd[0], ud[0], ud[1], ud[2])
		for _, d := range ud {
			mustComplete(t, s, outcome(claimOf(t, cs, d.ID), hookd.DeliverySucceeded, now))
		}
		if cs := mustClaim(t, s, now); len(cs) != 0 {
			t.Errorf("claimed %v while the FIFO head is leased", claimedIDs(cs))
		}
		// The head's lease expires: the head, not the next one, is claimed again.
		now = now.Add(lease + time.Second)
		cs = mustClaim(t, s, now)
		wantClaimed(t, cs, "claim after the head's lease expired", fd[0])

		mustComplete(t, s, outcome(claimOf(t, cs, fd[0].ID), hookd.DeliverySucceeded, now))
		// The next one is due from when the head finished; the one after it
		// still waits, with no time of its own.
		for _, w := range []struct {
			d    *hookd.Delivery
			next time.Time
		}{{fd[1], now}, {fd[2], time.Time{}}} {
			d, _, err := s.Delivery(t.Context(), o.ID, w.d.ID)
			if err != nil {
				t.Fatalf("Delivery: %v", err)
			}
			if !d.NextAttemptAt.Equal(w.next) {
				t.Errorf("after the head succeeded, %s's NextAttemptAt = %v, want %v", w.d.ID, d.NextAttemptAt, w.next)
			}
		}
		cs = mustClaim(t, s, now)
		wantClaimed(t, cs, "claim after the head succeeded", fd[1])

		// The head waits for a retry: it blocks the next one, and one published meanwhile.
		retry := outcome(cs[0], hookd.DeliveryPending, now)
		mustComplete(t, s, retry)
		_, late := mustPublishOne(t, s, o.ID, "invoice.paid", now)
		onlyF := func(at time.Time) []*hookd.Claim {
			t.Helper()
			return mustClaimParams(t, s, hookd.ClaimParams{Now: at, Exclude: []string{u.ID}})
		}
		if cs := onlyF(retry.NextAttemptAt.Add(-time.Second)); len(cs) != 0 {
			t.Errorf("claimed %v while the FIFO head waits for its retry", claimedIDs(cs))
		}
		now = retry.NextAttemptAt
		cs = onlyF(now)
		wantClaimed(t, cs, "claim when the head's retry is due", fd[1])

		// Released unattempted, the head stays the head.
		if err := s.ReleaseDeliveries(t.Context(), []hookd.Release{{DeliveryID: fd[1].ID, Lease: cs[0].Lease, NextAttemptAt: now}}); err != nil {
			t.Fatalf("ReleaseDeliveries: %v", err)
		}
		cs = onlyF(now)
		wantClaimed(t, cs, "claim after the head was released", fd[1])

		mustComplete(t, s, outcome(cs[0], hookd.DeliveryFailed, now))
		cs = onlyF(now)
		wantClaimed(t, cs, "claim after the head failed", fd[2])
		mustComplete(t, s, outcome(cs[0], hookd.DeliverySucceeded, now))
		cs = onlyF(now)
		wantClaimed(t, cs, "claim of the delivery published while the head waited", late[f.ID])
		mustComplete(t, s, outcome(cs[0], hookd.DeliverySucceeded, now))
		if cs := onlyF(now.Add(time.Hour)); len(cs) != 0 {
			t.Errorf("claimed %v, the FIFO endpoint has nothing pending", claimedIDs(cs))
		}
	}},
	{"FIFOReplayRunsInOrder", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		f := mustEndpoint(t, s, o.ID, fifo)
		var fd []*hookd.Delivery
		for i := range 3 {
			_, ds := mustPublishOne(t, s, o.ID, "invoice.paid", base.Add(time.Duration(i)*time.Second))
			fd = append(fd, ds[f.ID])
		}
		now := base.Add(time.Minute)
		for _, d := range fd {
			c := mustClaim(t, s, now)
			wantClaimed(t, c, "claim before the replay", d)
			mustComplete(t, s, outcome(c[0], hookd.DeliveryFailed, now))
		}
		if n, err := s.Replay(t.Context(), hookd.ReplayParams{OrgID: o.ID, EndpointID: f.ID, Now: now}); err != nil || n != 3 {
			t.Fatalf("Replay = %d, %v; want 3", n, err)
		}
		for _, d := range fd {
			c := mustClaim(t, s, now)
			wantClaimed(t, c, "claim after the replay, one at a time in publish order", d)
			mustComplete(t, s, outcome(c[0], hookd.DeliverySucceeded, now))
		}
	}},
	{"FIFODisabledByGone", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		f := mustEndpoint(t, s, o.ID, fifo)
		_, ds1 := mustPublishOne(t, s, o.ID, "invoice.paid", base)
		_, ds2 := mustPublishOne(t, s, o.ID, "invoice.paid", base.Add(time.Second))
		now := base.Add(time.Minute)
		cs := mustClaim(t, s, now)
		wantClaimed(t, cs, "claim", ds1[f.ID])
		gone := outcome(cs[0], hookd.DeliveryFailed, now)
		gone.Attempt.StatusCode, gone.DisableEndpoint = 410, "410 Gone"
		mustComplete(t, s, gone)
		if cs := mustClaim(t, s, now.Add(time.Hour)); len(cs) != 0 {
			t.Errorf("claimed %v of a disabled FIFO endpoint", claimedIDs(cs))
		}
		setEnabled(t, s, f, true)
		wantClaimed(t, mustClaim(t, s, now.Add(time.Hour)), "claim after re-enabling", ds2[f.ID])
	}},
	{"OrderingChange", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		now := base.Add(time.Minute)
		for _, tc := range []struct {
			from, to string
			want     func(ds []*hookd.Delivery) []*hookd.Delivery // claimable after the change
		}{
			// No longer ordered: the backlog behind a head waiting for its retry flows at once.
			{hookd.OrderingFIFO, hookd.OrderingUnordered, func(ds []*hookd.Delivery) []*hookd.Delivery { return ds[1:] }},
			// Newly ordered: the oldest pending one, waiting for its retry, holds the rest back.
			{hookd.OrderingUnordered, hookd.OrderingFIFO, func(ds []*hookd.Delivery) []*hookd.Delivery { return nil }},
		} {
			e := mustEndpoint(t, s, o.ID, func(e *hookd.Endpoint) { e.Ordering = tc.from })
			var ds []*hookd.Delivery
			for i := range 4 {
				_, m := mustPublishOne(t, s, o.ID, "invoice.paid", base.Add(time.Duration(i)*time.Second))
				ds = append(ds, m[e.ID])
			}
			exclude := otherEndpoints(t, s, e)
			// The oldest waits for a retry in an hour.
			cs := mustClaimParams(t, s, hookd.ClaimParams{Now: now, Limit: 1, Exclude: exclude})
			wantClaimed(t, cs, tc.from+": first claim", ds[0])
			retry := outcome(cs[0], hookd.DeliveryPending, now)
			retry.NextAttemptAt = now.Add(time.Hour)
			mustComplete(t, s, retry)
			if _, err := s.UpdateEndpoint(t.Context(), o.ID, e.ID, func(cur *hookd.Endpoint) error {
				cur.Ordering, cur.UpdatedAt = tc.to, now
				return nil
			}); err != nil {
				t.Fatalf("UpdateEndpoint: %v", err)
			}
			wantClaimed(t, mustClaimParams(t, s, hookd.ClaimParams{Now: now, Exclude: exclude}),
				tc.from+" to "+tc.to+": claim after the change", tc.want(ds)...)
			if tc.to == hookd.OrderingFIFO {
				wantClaimed(t, mustClaimParams(t, s, hookd.ClaimParams{Now: retry.NextAttemptAt, Exclude: exclude}),
					tc.from+" to "+tc.to+": claim when the oldest is due", ds[0])
			}
		}
	}},
	{"FIFOWaitsForLeaseAfterRetry", func(t *testing.T, s hookd.Store) {
		fifoRequeuedBehindLease(t, s, func(o *hookd.Organization, f *hookd.Endpoint, d *hookd.Delivery, now time.Time) {
			if _, err := s.RetryDelivery(t.Context(), o.ID, d.ID, now); err != nil {
				t.Fatalf("RetryDelivery: %v", err)
			}
		})
	}},
	{"FIFOWaitsForLeaseAfterReplay", func(t *testing.T, s hookd.Store) {
		fifoRequeuedBehindLease(t, s, func(o *hookd.Organization, f *hookd.Endpoint, d *hookd.Delivery, now time.Time) {
			if n, err := s.Replay(t.Context(), hookd.ReplayParams{OrgID: o.ID, EndpointID: f.ID, Now: now}); err != nil || n != 1 {
				t.Fatalf("Replay = %d, %v; want 1", n, err)
			}
		})
	}},
	{"ConcurrentClaimsAreDisjoint", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		for range 4 {
			mustEndpoint(t, s, o.ID, nil)
		}
		for range 10 {
			mustPublishOne(t, s, o.ID, "invoice.paid", base)
		}
		all := allDeliveries(t, s, hookd.DeliveryFilter{OrgID: o.ID, Status: hookd.DeliveryPending})
		if len(all) != 40 {
			t.Fatalf("%d pending deliveries, want 40", len(all))
		}
		var (
			mu  sync.Mutex
			got []*hookd.Claim
			wg  sync.WaitGroup
		)
		for range 8 {
			wg.Go(func() {
				for range 100 { // bounded: a store that ignores leases would claim forever
					cs, err := s.ClaimDeliveries(t.Context(), hookd.ClaimParams{Owner: "racer", Limit: 7, Now: base, Lease: lease})
					if err != nil {
						t.Errorf("ClaimDeliveries: %v", err)
						return
					}
					if len(cs) == 0 {
						return
					}
					mu.Lock()
					got = append(got, cs...)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if diff := cmp.Diff(sortedIDs(all...), claimedIDs(got)); diff != "" {
			t.Errorf("concurrent claims: each pending delivery exactly once (-want +got):\n%s", diff)
		}
	}},
}

// otherEndpoints returns the ids of every endpoint but e, to keep a claim to e's
// deliveries.
func otherEndpoints(t *testing.T, s hookd.Store, e *hookd.Endpoint) []string {
	t.Helper()
	all, _ := allEndpoints(t, s, hookd.EndpointFilter{})
	var out []string
	for _, x := range all {
		if x.ID != e.ID {
			out = append(out, x.ID)
		}
	}
	return out
}

// fifoRequeuedBehindLease checks that a delivery re-queued by requeue while a later
// delivery of the same FIFO endpoint is leased, and so now the endpoint's oldest
// pending delivery, waits until no delivery of the endpoint is leased ("only when no
// other of its deliveries is leased").
func fifoRequeuedBehindLease(t *testing.T, s hookd.Store, requeue func(*hookd.Organization, *hookd.Endpoint, *hookd.Delivery, time.Time)) {
	t.Helper()
	o := mustOrg(t, s)
	f := mustEndpoint(t, s, o.ID, fifo)
	_, ds1 := mustPublishOne(t, s, o.ID, "invoice.paid", base)
	_, ds2 := mustPublishOne(t, s, o.ID, "invoice.paid", base.Add(time.Second))
	now := base.Add(time.Minute)
	settle(t, s, ds1[f.ID], hookd.DeliveryFailed, now)
	cs := mustClaim(t, s, now)
	wantClaimed(t, cs, "claim after the head failed", ds2[f.ID])

	requeue(o, f, ds1[f.ID], now)
	if got := mustClaim(t, s, now); len(got) != 0 {
		t.Fatalf("claimed %v (re-queued, older) while %s of the same FIFO endpoint is leased: two deliveries in flight at once",
			claimedIDs(got), ds2[f.ID].ID)
	}
	mustComplete(t, s, outcome(cs[0], hookd.DeliverySucceeded, now))
	wantClaimed(t, mustClaim(t, s, now), "claim once nothing is leased", ds1[f.ID])
}

// capTests check that a claim never gives an endpoint more than its free capacity,
// and that an endpoint at its capacity, however big its backlog, never hides
// another endpoint's due deliveries.
var capTests = []test{
	{"InFlightWhileLeased", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		e := mustEndpoint(t, s, o.ID, nil)
		_, ds := mustPublishOne(t, s, o.ID, "invoice.paid", base)
		inFlight := func(what string, want bool) {
			t.Helper()
			d, _, err := s.Delivery(t.Context(), o.ID, ds[e.ID].ID)
			if err != nil {
				t.Fatal(err)
			}
			if d.InFlight != want {
				t.Errorf("%s: InFlight = %v, want %v", what, d.InFlight, want)
			}
		}
		inFlight("published", false)
		cs := mustClaim(t, s, base)
		inFlight("claimed", true)
		if err := s.ReleaseDeliveries(t.Context(), []hookd.Release{{DeliveryID: cs[0].Delivery.ID, Lease: cs[0].Lease, NextAttemptAt: base}}); err != nil {
			t.Fatal(err)
		}
		inFlight("released", false)
	}},
	{"MaxInFlightMinusLeased", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		mustEndpoint(t, s, o.ID, func(e *hookd.Endpoint) { e.MaxInFlight = 3 })
		for range 10 {
			mustPublishOne(t, s, o.ID, "invoice.paid", base)
		}
		if cs := mustClaimParams(t, s, hookd.ClaimParams{Now: base, Limit: 100}); len(cs) != 3 {
			t.Errorf("first claim took %d deliveries of an endpoint with max_in_flight 3, want 3", len(cs))
		}
		if cs := mustClaimParams(t, s, hookd.ClaimParams{Now: base, Limit: 100}); len(cs) != 0 {
			t.Errorf("second claim took %d while 3 are leased, want 0", len(cs))
		}
	}},
	{"DefaultCapCapsAndPerEndpoint", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		a, b, c := mustEndpoint(t, s, o.ID, nil), mustEndpoint(t, s, o.ID, nil), mustEndpoint(t, s, o.ID, nil)
		for range 10 {
			mustPublishOne(t, s, o.ID, "invoice.paid", base)
		}
		cs := mustClaimParams(t, s, hookd.ClaimParams{Now: base, Limit: 100, MaxInFlight: 4, Caps: map[string]int{b.ID: 2}})
		got := map[string]int{}
		for _, c := range cs {
			got[c.Endpoint.ID]++
		}
		if got[a.ID] != 4 || got[b.ID] != 2 || got[c.ID] != 4 {
			t.Errorf("claimed per endpoint %v, want 4 (default cap), 2 (caller's cap), 4", got)
		}
		cs = mustClaimParams(t, s, hookd.ClaimParams{Now: base, Limit: 100, MaxInFlight: 10, PerEndpoint: 1})
		got = map[string]int{}
		for _, c := range cs {
			got[c.Endpoint.ID]++
		}
		for id, n := range got {
			if n > 1 {
				t.Errorf("endpoint %s got %d deliveries with PerEndpoint 1", id, n)
			}
		}
	}},
	{"EndpointAtCapDoesNotHideOthers", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		busy := mustEndpoint(t, s, o.ID, func(e *hookd.Endpoint) { e.MaxInFlight = 2; e.Events = []string{"busy"} })
		quiet := mustEndpoint(t, s, o.ID, func(e *hookd.Endpoint) { e.Events = []string{"quiet"} })
		var evs []*hookd.Event
		for i := range 500 {
			evs = append(evs, &hookd.Event{ID: fmt.Sprintf("busy-%d", i), OrgID: o.ID, Type: "busy", Data: []byte(`{}`), CreatedAt: base})
		}
		if _, err := s.Publish(t.Context(), evs); err != nil {
			t.Fatal(err)
		}
		mustClaimParams(t, s, hookd.ClaimParams{Now: base, Limit: 2}) // busy is now at its cap
		if _, err := s.Publish(t.Context(), []*hookd.Event{{ID: "quiet-1", OrgID: o.ID, Type: "quiet", Data: []byte(`{}`), CreatedAt: base.Add(time.Second)}}); err != nil {
			t.Fatal(err)
		}
		cs := mustClaimParams(t, s, hookd.ClaimParams{Now: base.Add(time.Second), Limit: 2})
		if len(cs) != 1 || cs[0].Endpoint.ID != quiet.ID {
			t.Errorf("with %s at its cap and 498 of its deliveries older, claim = %v, want the other endpoint's one delivery",
				busy.ID, claimedIDs(cs))
		}
	}},
}
