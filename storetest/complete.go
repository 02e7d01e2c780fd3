package storetest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/ids"
)

// eventsOfType returns the organization's events of one type.
func eventsOfType(t *testing.T, s hookd.Store, org, typ string) []*hookd.Event {
	t.Helper()
	return allEvents(t, s, hookd.EventFilter{OrgID: org, Type: typ})
}

var completeTests = []test{
	{"Outcomes", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		e := mustEndpoint(t, s, o.ID, nil)
		for _, status := range []string{hookd.DeliverySucceeded, hookd.DeliveryFailed, hookd.DeliveryPending} {
			_, ds := mustPublishOne(t, s, o.ID, "invoice.paid", base)
			d := ds[e.ID]
			now := base.Add(time.Minute)
			c := claimOf(t, mustClaimParams(t, s, hookd.ClaimParams{Now: now, Limit: 1}), d.ID)
			out := outcome(c, status, now.Add(2*time.Second))
			out.Attempt.ResponseBody = `{"status":"` + status + `"}`
			mustComplete(t, s, out)

			got, as := mustDelivery(t, s, d.ID)
			want := *d
			want.Status, want.Attempts, want.CycleAttempts = status, 1, 1
			want.LastStatusCode, want.LastError = out.Attempt.StatusCode, out.Attempt.Error
			ignore := ignoreDeliveryTimes
			if status == hookd.DeliveryPending {
				want.NextAttemptAt = out.NextAttemptAt
				ignore = cmpopts.IgnoreFields(hookd.Delivery{}, "UpdatedAt")
			}
			if diff := cmp.Diff(&want, got, ignore); diff != "" {
				t.Errorf("%s: delivery (-want +got):\n%s", status, diff)
			}
			if diff := cmp.Diff([]*hookd.Attempt{&out.Attempt}, as, equateEmpty); diff != "" {
				t.Errorf("%s: attempts (-want +got):\n%s", status, diff)
			}
			// The lease ended with the attempt: a pending delivery is claimable when
			// due, not before; a finished one never again.
			if status != hookd.DeliveryPending {
				if cs := mustClaim(t, s, base.Add(48*time.Hour)); len(cs) != 0 {
					t.Errorf("%s: claimed %v, a finished delivery", status, claimedIDs(cs))
				}
				continue
			}
			if cs := mustClaim(t, s, out.NextAttemptAt.Add(-time.Second)); len(cs) != 0 {
				t.Errorf("%s: claimed %v before the retry is due", status, claimedIDs(cs))
			}
			wantClaimed(t, mustClaim(t, s, out.NextAttemptAt), status+": claim when the retry is due", d)
		}
	}},
	{"SeveralOutcomesAtOnce", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		e := mustEndpoint(t, s, o.ID, nil)
		statuses := []string{hookd.DeliverySucceeded, hookd.DeliveryFailed, hookd.DeliveryPending}
		var ds []*hookd.Delivery
		for range statuses {
			_, m := mustPublishOne(t, s, o.ID, "invoice.paid", base)
			ds = append(ds, m[e.ID])
		}
		cs := mustClaim(t, s, base)
		var outs []hookd.Outcome
		for i, d := range ds {
			outs = append(outs, outcome(claimOf(t, cs, d.ID), statuses[i], base.Add(time.Second)))
		}
		mustComplete(t, s, outs...)
		for i, d := range ds {
			got, as := mustDelivery(t, s, d.ID)
			if got.Status != statuses[i] || got.Attempts != 1 || len(as) != 1 || as[0].ID != outs[i].Attempt.ID {
				t.Errorf("delivery %d: status %s, %d attempts, attempt log %d long; want %s, 1, 1", i, got.Status, got.Attempts, len(as), statuses[i])
			}
		}
	}},
	{"OutcomeAfterEndpointDeleted", func(t *testing.T, s hookd.Store) {
		// An endpoint deleted while one of its deliveries is being attempted takes
		// the delivery with it: recording that attempt changes nothing and fails
		// nothing, and the other outcomes of the same call are recorded.
		o := mustOrg(t, s)
		gone, kept := mustEndpoint(t, s, o.ID, nil), mustEndpoint(t, s, o.ID, nil)
		_, ds := mustPublishOne(t, s, o.ID, "invoice.paid", base)
		cs := mustClaim(t, s, base)
		if err := s.DeleteEndpoint(t.Context(), o.ID, gone.ID); err != nil {
			t.Fatalf("DeleteEndpoint: %v", err)
		}
		lost := outcome(claimOf(t, cs, ds[gone.ID].ID), hookd.DeliverySucceeded, base.Add(time.Second))
		done := outcome(claimOf(t, cs, ds[kept.ID].ID), hookd.DeliverySucceeded, base.Add(time.Second))
		mustComplete(t, s, lost, done)
		_, _, err := s.Delivery(t.Context(), "", ds[gone.ID].ID)
		wantCode(t, err, hookd.ENOTFOUND, "Delivery of the deleted endpoint after its outcome")
		got, as := mustDelivery(t, s, ds[kept.ID].ID)
		if got.Status != hookd.DeliverySucceeded || got.Attempts != 1 || len(as) != 1 || as[0].ID != done.Attempt.ID {
			t.Errorf("the other delivery of the call: %s with %d attempts (%d recorded), want succeeded with its attempt",
				got.Status, got.Attempts, len(as))
		}
	}},
	{"StaleLease", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		e := mustEndpoint(t, s, o.ID, nil)
		_, ds := mustPublishOne(t, s, o.ID, "invoice.paid", base)
		d := ds[e.ID]
		stale := claimOf(t, mustClaimParams(t, s, hookd.ClaimParams{Now: base, Lease: time.Minute}), d.ID)
		fresh := claimOf(t, mustClaimParams(t, s, hookd.ClaimParams{Now: base.Add(61 * time.Second), Lease: time.Minute}), d.ID)
		if stale.Lease == fresh.Lease {
			t.Fatalf("two claims share the lease %q", stale.Lease)
		}
		before, _ := mustDelivery(t, s, d.ID)

		late := outcome(stale, hookd.DeliveryFailed, base.Add(70*time.Second))
		late.DisableEndpoint = "410 Gone"
		late.Emit = []*hookd.Event{hookd.NewDeliveryFailedEvent(ids.New("evt"), d, 1, "late", base.Add(70*time.Second))}
		mustComplete(t, s, late)
		got, as := mustDelivery(t, s, d.ID)
		if diff := cmp.Diff(before, got); diff != "" {
			t.Errorf("delivery after an outcome with a lost lease (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]*hookd.Attempt{&late.Attempt}, as, equateEmpty); diff != "" {
			t.Errorf("attempts after an outcome with a lost lease (-want +got):\n%s", diff)
		}
		if ep := mustGetEndpoint(t, s, e.ID); !ep.Enabled {
			t.Errorf("an outcome with a lost lease disabled the endpoint")
		}
		if evs := eventsOfType(t, s, o.ID, hookd.EventDeliveryFailed); len(evs) != 0 {
			t.Errorf("an outcome with a lost lease emitted %v", eventIDs(evs))
		}
		if cs := mustClaim(t, s, base.Add(90*time.Second)); len(cs) != 0 {
			t.Errorf("claimed %v within the new lease", claimedIDs(cs))
		}

		// The current lease still completes it.
		ok := outcome(fresh, hookd.DeliverySucceeded, base.Add(80*time.Second))
		ok.Attempt.Number = 2
		mustComplete(t, s, ok)
		got, as = mustDelivery(t, s, d.ID)
		if got.Status != hookd.DeliverySucceeded || got.Attempts != 1 || len(as) != 2 {
			t.Errorf("after the current lease's outcome: status %s, Attempts %d, %d attempts logged; want succeeded, 1, 2",
				got.Status, got.Attempts, len(as))
		}
	}},
	{"DisableEndpoint", func(t *testing.T, s hookd.Store) {
		o, other := mustOrg(t, s), mustOrg(t, s)
		gone := mustEndpoint(t, s, o.ID, subscribed("invoice.*"))
		watcher := mustEndpoint(t, s, o.ID, subscribed(hookd.EventEndpointDisabled))
		everything := mustEndpoint(t, s, o.ID, subscribed("*"))
		bystander := mustEndpoint(t, s, o.ID, subscribed("invoice.*", hookd.EventDeliveryFailed))
		theirs := mustEndpoint(t, s, other.ID, subscribed("*"))
		_, ds1 := mustPublishOne(t, s, o.ID, "invoice.paid", base)
		_, ds2 := mustPublishOne(t, s, o.ID, "invoice.paid", base)
		cs := mustClaimParams(t, s, hookd.ClaimParams{Now: base, Exclude: []string{watcher.ID, everything.ID, bystander.ID}})
		wantClaimed(t, cs, "claim", ds1[gone.ID], ds2[gone.ID])

		now := base.Add(time.Second)
		first := outcome(claimOf(t, cs, ds1[gone.ID].ID), hookd.DeliveryFailed, now)
		first.Attempt.StatusCode, first.Attempt.Error = 410, "410 Gone"
		first.DisableEndpoint = "the endpoint answered 410 Gone"
		mustComplete(t, s, first)

		ep := mustGetEndpoint(t, s, gone.ID)
		if ep.Enabled || ep.DisabledReason != first.DisableEndpoint {
			t.Errorf("endpoint after DisableEndpoint: Enabled %v, DisabledReason %q; want false, %q", ep.Enabled, ep.DisabledReason, first.DisableEndpoint)
		}
		d, _ := mustDelivery(t, s, ds1[gone.ID].ID)
		if d.Status != hookd.DeliveryFailed || d.LastStatusCode != 410 {
			t.Errorf("delivery: status %s, LastStatusCode %d; want failed, 410", d.Status, d.LastStatusCode)
		}

		// A second 410, from the delivery claimed before the endpoint was disabled.
		second := outcome(claimOf(t, cs, ds2[gone.ID].ID), hookd.DeliveryFailed, now.Add(time.Second))
		second.Attempt.StatusCode, second.Attempt.Error = 410, "410 Gone"
		second.DisableEndpoint = "the endpoint answered 410 Gone again"
		mustComplete(t, s, second)

		evs := eventsOfType(t, s, o.ID, hookd.EventEndpointDisabled)
		if len(evs) != 1 {
			t.Fatalf("%d endpoint.disabled events, want 1", len(evs))
		}
		var data struct {
			Webhook string `json:"webhook"`
		}
		if err := json.Unmarshal(evs[0].Data, &data); err != nil || data.Webhook != gone.ID {
			t.Errorf("endpoint.disabled data %s: webhook %q (%v), want %q", evs[0].Data, data.Webhook, err, gone.ID)
		}
		want := map[string]string{watcher.ID: hookd.DeliveryPending, everything.ID: hookd.DeliveryPending}
		if diff := cmp.Diff(want, statusesOf(t, s, evs[0])); diff != "" {
			t.Errorf("endpoint.disabled deliveries' statuses by endpoint (-want +got):\n%s", diff)
		}
		if got := eventsOfType(t, s, other.ID, hookd.EventEndpointDisabled); len(got) != 0 {
			t.Errorf("another organization got endpoint.disabled events %v", eventIDs(got))
		}
		if got := allDeliveries(t, s, hookd.DeliveryFilter{EndpointID: theirs.ID}); len(got) != 0 {
			t.Errorf("another organization's endpoint got deliveries %v", deliveryIDs(got))
		}
		if ep := mustGetEndpoint(t, s, gone.ID); ep.DisabledReason != first.DisableEndpoint {
			t.Errorf("second DisableEndpoint changed the reason to %q", ep.DisabledReason)
		}
	}},
	{"Emit", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		e := mustEndpoint(t, s, o.ID, subscribed("invoice.*"))
		watcher := mustEndpoint(t, s, o.ID, subscribed(hookd.EventDeliveryFailed))
		mustEndpoint(t, s, o.ID, subscribed("customer.*"))
		_, ds := mustPublishOne(t, s, o.ID, "invoice.paid", base)
		d := ds[e.ID]
		c := claimOf(t, mustClaim(t, s, base), d.ID)
		now := base.Add(time.Second)
		out := outcome(c, hookd.DeliveryFailed, now)
		failed := hookd.NewDeliveryFailedEvent(ids.New("evt"), d, 1, out.Attempt.Error, now)
		out.Emit = []*hookd.Event{failed}
		mustComplete(t, s, out)

		got, evDs, err := s.Event(t.Context(), o.ID, failed.ID)
		if err != nil {
			t.Fatalf("Event(emitted): %v", err)
		}
		if diff := cmp.Diff(failed, got, equateEmpty); diff != "" {
			t.Errorf("emitted event (-want +got):\n%s", diff)
		}
		if len(evDs) != 1 || evDs[0].EndpointID != watcher.ID || evDs[0].Status != hookd.DeliveryPending {
			t.Errorf("emitted event's deliveries = %v, want one pending to %s", evDs, watcher.ID)
		}
		wantClaimed(t, mustClaim(t, s, now), "claim of the emitted event's delivery", evDs...)
	}},
}

var releaseTests = []test{
	{"DueAgainAtNextAttempt", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		e := mustEndpoint(t, s, o.ID, nil)
		_, ds := mustPublishOne(t, s, o.ID, "invoice.paid", base)
		d := ds[e.ID]
		c := claimOf(t, mustClaim(t, s, base), d.ID)
		if err := s.ReleaseDeliveries(t.Context(), []hookd.Release{{DeliveryID: d.ID, Lease: c.Lease, NextAttemptAt: base.Add(5 * time.Minute)}}); err != nil {
			t.Fatalf("ReleaseDeliveries: %v", err)
		}
		got, as := mustDelivery(t, s, d.ID)
		if got.Status != hookd.DeliveryPending || got.Attempts != 0 || got.CycleAttempts != 0 || len(as) != 0 {
			t.Errorf("released delivery: status %s, Attempts %d, CycleAttempts %d, %d attempts logged; want pending, 0, 0, 0",
				got.Status, got.Attempts, got.CycleAttempts, len(as))
		}
		if !got.NextAttemptAt.Equal(base.Add(5 * time.Minute)) {
			t.Errorf("released delivery: NextAttemptAt %v, want %v", got.NextAttemptAt, base.Add(5*time.Minute))
		}
		if cs := mustClaim(t, s, base.Add(2*time.Minute)); len(cs) != 0 {
			t.Errorf("claimed %v before the released delivery is due", claimedIDs(cs))
		}
		again := mustClaim(t, s, base.Add(5*time.Minute))
		wantClaimed(t, again, "claim when the released delivery is due", d)
		if again[0].Delivery.Attempts != 0 {
			t.Errorf("claimed released delivery has %d attempts, want 0", again[0].Delivery.Attempts)
		}
	}},
	{"EndsTheLease", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		e := mustEndpoint(t, s, o.ID, nil)
		_, ds := mustPublishOne(t, s, o.ID, "invoice.paid", base)
		c := claimOf(t, mustClaimParams(t, s, hookd.ClaimParams{Now: base, Lease: time.Hour}), ds[e.ID].ID)
		if err := s.ReleaseDeliveries(t.Context(), []hookd.Release{{DeliveryID: c.Delivery.ID, Lease: c.Lease, NextAttemptAt: base}}); err != nil {
			t.Fatalf("ReleaseDeliveries: %v", err)
		}
		wantClaimed(t, mustClaim(t, s, base.Add(time.Second)), "claim right after the release, within the old lease", ds[e.ID])
	}},
	{"StaleLease", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		e := mustEndpoint(t, s, o.ID, nil)
		_, ds := mustPublishOne(t, s, o.ID, "invoice.paid", base)
		stale := claimOf(t, mustClaimParams(t, s, hookd.ClaimParams{Now: base, Lease: time.Minute}), ds[e.ID].ID)
		mustClaimParams(t, s, hookd.ClaimParams{Now: base.Add(61 * time.Second), Lease: time.Minute})
		if err := s.ReleaseDeliveries(t.Context(), []hookd.Release{{DeliveryID: stale.Delivery.ID, Lease: stale.Lease, NextAttemptAt: base}}); err != nil {
			t.Fatalf("ReleaseDeliveries: %v", err)
		}
		if cs := mustClaim(t, s, base.Add(62*time.Second)); len(cs) != 0 {
			t.Errorf("a release with a lost lease ended the current lease: claimed %v", claimedIDs(cs))
		}
	}},
}

var retryTests = []test{
	{"DisabledEndpointWaitsParked", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		e := mustEndpoint(t, s, o.ID, nil)
		_, ds := mustPublishOne(t, s, o.ID, "invoice.paid", base)
		cs := mustClaim(t, s, base)
		if err := s.CompleteDeliveries(t.Context(), []hookd.Outcome{{DeliveryID: cs[0].Delivery.ID, Lease: cs[0].Lease,
			Status: hookd.DeliveryFailed, Attempt: hookd.Attempt{ID: ids.New("att"), Number: 1, Error: "boom", CreatedAt: base}}}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.UpdateEndpoint(t.Context(), o.ID, e.ID, func(e *hookd.Endpoint) error { e.Enabled = false; return nil }); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RetryDelivery(t.Context(), o.ID, ds[e.ID].ID, base.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if n, err := s.Replay(t.Context(), hookd.ReplayParams{OrgID: o.ID, EndpointID: e.ID, Since: base.Add(-time.Hour), Now: base.Add(time.Minute)}); err != nil || n != 0 {
			t.Fatalf("Replay = %d, %v (the delivery is pending already)", n, err)
		}
		d, _, err := s.Delivery(t.Context(), o.ID, ds[e.ID].ID)
		if err != nil {
			t.Fatal(err)
		}
		if d.Status != hookd.DeliveryPending || !d.NextAttemptAt.IsZero() {
			t.Errorf("retried delivery of a disabled endpoint: status %q, next %v; want pending and waiting (no due time)", d.Status, d.NextAttemptAt)
		}
		if _, err := s.UpdateEndpoint(t.Context(), o.ID, e.ID, func(e *hookd.Endpoint) error { e.Enabled = true; e.UpdatedAt = base.Add(2 * time.Minute); return nil }); err != nil {
			t.Fatal(err)
		}
		if cs := mustClaim(t, s, base.Add(2*time.Minute)); len(cs) != 1 {
			t.Errorf("after enabling, claimed %d, want the waiting delivery", len(cs))
		}
	}},
	{"InFlightConflicts", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		e := mustEndpoint(t, s, o.ID, nil)
		_, ds := mustPublishOne(t, s, o.ID, "invoice.paid", base)
		cs := mustClaim(t, s, base)
		if len(cs) != 1 {
			t.Fatalf("claimed %d, want 1", len(cs))
		}
		if _, err := s.RetryDelivery(t.Context(), o.ID, ds[e.ID].ID, base.Add(time.Second)); hookd.ErrorCode(err) != hookd.ECONFLICT {
			t.Errorf("RetryDelivery of a delivery in flight = %v, want ECONFLICT", err)
		}
		// Once the lease has expired (the attempt is over or lost), it can be retried.
		if _, err := s.RetryDelivery(t.Context(), o.ID, ds[e.ID].ID, base.Add(2*time.Hour)); err != nil {
			t.Errorf("RetryDelivery after the lease expired = %v, want nil", err)
		}
	}},
	{"FailedBecomesPending", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		e := mustEndpoint(t, s, o.ID, nil)
		_, ds := mustPublishOne(t, s, o.ID, "invoice.paid", base)
		d := ds[e.ID]
		now := base
		for _, status := range []string{hookd.DeliveryPending, hookd.DeliveryPending, hookd.DeliveryFailed} {
			c := claimOf(t, mustClaim(t, s, now), d.ID)
			out := outcome(c, status, now)
			mustComplete(t, s, out)
			now = out.NextAttemptAt
		}
		failed, _ := mustDelivery(t, s, d.ID)
		if failed.Status != hookd.DeliveryFailed || failed.Attempts != 3 || failed.CycleAttempts != 3 {
			t.Fatalf("after three attempts: status %s, Attempts %d, CycleAttempts %d; want failed, 3, 3",
				failed.Status, failed.Attempts, failed.CycleAttempts)
		}

		at := base.Add(time.Hour)
		got, err := s.RetryDelivery(t.Context(), o.ID, d.ID, at)
		if err != nil {
			t.Fatalf("RetryDelivery: %v", err)
		}
		want := *failed
		want.Status, want.NextAttemptAt, want.CycleAttempts = hookd.DeliveryPending, at, 0
		if diff := cmp.Diff(&want, got, cmpopts.IgnoreFields(hookd.Delivery{}, "UpdatedAt")); diff != "" {
			t.Errorf("RetryDelivery returned (-want +got):\n%s", diff)
		}
		stored, _ := mustDelivery(t, s, d.ID)
		if diff := cmp.Diff(got, stored); diff != "" {
			t.Errorf("Delivery after RetryDelivery differs from what it returned (-want +got):\n%s", diff)
		}
		if cs := mustClaim(t, s, at.Add(-time.Second)); len(cs) != 0 {
			t.Errorf("claimed %v before the retry's time", claimedIDs(cs))
		}
		c := claimOf(t, mustClaim(t, s, at), d.ID)
		mustComplete(t, s, outcome(c, hookd.DeliverySucceeded, at))
		done, as := mustDelivery(t, s, d.ID)
		if done.Status != hookd.DeliverySucceeded || done.Attempts != 4 || done.CycleAttempts != 1 || len(as) != 4 {
			t.Errorf("after the retry: status %s, Attempts %d, CycleAttempts %d, %d attempts logged; want succeeded, 4, 1, 4",
				done.Status, done.Attempts, done.CycleAttempts, len(as))
		}
	}},
	{"AsAdmin", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		e := mustEndpoint(t, s, o.ID, nil)
		_, ds := mustPublishOne(t, s, o.ID, "invoice.paid", base)
		settle(t, s, ds[e.ID], hookd.DeliverySucceeded, base)
		got, err := s.RetryDelivery(t.Context(), "", ds[e.ID].ID, base.Add(time.Minute))
		if err != nil {
			t.Fatalf("RetryDelivery as admin: %v", err)
		}
		if got.Status != hookd.DeliveryPending || got.ID != ds[e.ID].ID {
			t.Errorf("RetryDelivery as admin returned %+v, want the delivery, pending", got)
		}
	}},
	{"NotFound", func(t *testing.T, s hookd.Store) {
		o, other := mustOrg(t, s), mustOrg(t, s)
		e := mustEndpoint(t, s, o.ID, nil)
		_, ds := mustPublishOne(t, s, o.ID, "invoice.paid", base)
		settle(t, s, ds[e.ID], hookd.DeliveryFailed, base)
		before, _ := mustDelivery(t, s, ds[e.ID].ID)
		_, err := s.RetryDelivery(t.Context(), other.ID, ds[e.ID].ID, base.Add(time.Hour))
		wantCode(t, err, hookd.ENOTFOUND, "RetryDelivery with another organization")
		_, err = s.RetryDelivery(t.Context(), "", "dlv_unknown", base.Add(time.Hour))
		wantCode(t, err, hookd.ENOTFOUND, "RetryDelivery(unknown)")
		after, _ := mustDelivery(t, s, ds[e.ID].ID)
		if diff := cmp.Diff(before, after); diff != "" {
			t.Errorf("delivery after RetryDelivery by another organization (-want +got):\n%s", diff)
		}
	}},
}

var recordTestTests = []test{
	{"StoresEventDeliveryAndAttempt", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		e := mustEndpoint(t, s, o.ID, nil)
		subscriber := mustEndpoint(t, s, o.ID, subscribed(hookd.EventWebhookTest))
		for _, tc := range []struct {
			status string
			code   int
			err    string
		}{
			{hookd.DeliverySucceeded, 204, ""},
			{hookd.DeliveryFailed, 0, "dial tcp: connection refused"},
		} {
			now := base.Add(time.Minute)
			ev := &hookd.Event{ID: ids.New("evt"), OrgID: o.ID, Type: hookd.EventWebhookTest,
				Data: json.RawMessage(`{"webhook":"` + e.ID + `"}`), CreatedAt: now}
			d := &hookd.Delivery{ID: ids.New("dlv"), OrgID: o.ID, EventID: ev.ID, EventType: ev.Type, EndpointID: e.ID,
				Status: tc.status, Attempts: 1, CycleAttempts: 1, LastStatusCode: tc.code, LastError: tc.err,
				CreatedAt: now, UpdatedAt: now}
			a := &hookd.Attempt{ID: ids.New("att"), DeliveryID: d.ID, OrgID: o.ID, Number: 1, URL: e.URL,
				RequestHeaders: map[string]string{"Webhook-Id": ev.ID}, StatusCode: tc.code, ResponseBody: "",
				Duration: 15 * time.Millisecond, Error: tc.err, CreatedAt: now}
			if err := s.RecordTest(t.Context(), ev, d, a); err != nil {
				t.Fatalf("%s: RecordTest: %v", tc.status, err)
			}
			got, as := mustDelivery(t, s, d.ID)
			if diff := cmp.Diff(d, got, ignoreDeliveryTimes); diff != "" {
				t.Errorf("%s: Delivery (-want +got):\n%s", tc.status, diff)
			}
			if diff := cmp.Diff([]*hookd.Attempt{a}, as, equateEmpty); diff != "" {
				t.Errorf("%s: attempts (-want +got):\n%s", tc.status, diff)
			}
			gotEv, evDs, err := s.Event(t.Context(), o.ID, ev.ID)
			if err != nil {
				t.Fatalf("%s: Event: %v", tc.status, err)
			}
			if diff := cmp.Diff(ev, gotEv, equateEmpty); diff != "" {
				t.Errorf("%s: Event (-want +got):\n%s", tc.status, diff)
			}
			// Only the tested endpoint gets it, not every subscriber.
			if len(evDs) != 1 || evDs[0].ID != d.ID {
				t.Errorf("%s: the test event has deliveries %v, want only %s", tc.status, deliveryIDs(evDs), d.ID)
			}
			if got := allDeliveries(t, s, hookd.DeliveryFilter{EndpointID: subscriber.ID}); len(got) != 0 {
				t.Errorf("%s: a subscriber to webhook.test got %v", tc.status, deliveryIDs(got))
			}
			if cs := mustClaim(t, s, now.Add(time.Hour)); len(cs) != 0 {
				t.Errorf("%s: claimed %v after a test", tc.status, claimedIDs(cs))
			}
		}
	}},
}

var pingTests = []test{
	{"Answers", func(t *testing.T, s hookd.Store) {
		if err := s.Ping(t.Context()); err != nil {
			t.Errorf("Ping: %v", err)
		}
	}},
}

// staleTests: an outcome whose lease was lost changes nothing but its own
// attempt record, even in the same call as the current outcome of its delivery.
var staleTests = []test{
	{"StaleOutcomeBesideCurrentOne", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		e := mustEndpoint(t, s, o.ID, nil)
		mustPublishOne(t, s, o.ID, "invoice.paid", base)
		old := mustClaim(t, s, base)[0]
		// The first lease expires; the delivery is claimed again.
		cur := mustClaim(t, s, base.Add(2*lease))[0]
		if cur.Delivery.ID != old.Delivery.ID {
			t.Fatalf("re-claimed %s, want %s", cur.Delivery.ID, old.Delivery.ID)
		}
		stale := outcome(old, hookd.DeliveryFailed, base.Add(2*lease))
		stale.Attempt.StatusCode = 410
		stale.DisableEndpoint = "the endpoint answered 410 Gone"
		mustComplete(t, s, stale, outcome(cur, hookd.DeliverySucceeded, base.Add(2*lease)))
		got, err := s.Endpoint(t.Context(), "", e.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Enabled {
			t.Errorf("the stale outcome disabled the endpoint (%s)", got.DisabledReason)
		}
		d, as := mustDelivery(t, s, cur.Delivery.ID)
		if d.Status != hookd.DeliverySucceeded || len(as) != 2 {
			t.Errorf("delivery %s with %d attempts, want succeeded with both attempts recorded", d.Status, len(as))
		}
	}},
}
