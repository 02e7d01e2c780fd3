package storetest

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/hookd/hookd"
)

// quotaOrg creates an organization with the given monthly quota and overage setting.
func quotaOrg(t *testing.T, s hookd.Store, quota int64, overage bool) *hookd.Organization {
	t.Helper()
	o := mustOrg(t, s)
	o, err := s.UpdateOrganization(t.Context(), o.ID, func(o *hookd.Organization) error {
		o.MonthlyQuota, o.AllowOverage = quota, overage
		return nil
	})
	if err != nil {
		t.Fatalf("UpdateOrganization: %v", err)
	}
	return o
}

// usageOf returns an organization's usage in the month of at.
func usageOf(t *testing.T, s hookd.Store, org string, at time.Time) int64 {
	t.Helper()
	u, err := s.Usage(t.Context(), org, hookd.UsagePeriod(at))
	if err != nil {
		t.Fatalf("Usage: %v", err)
	}
	return u.Events
}

// thresholdEvents returns the usage_threshold events of org, oldest first, decoded.
func thresholdEvents(t *testing.T, s hookd.Store, org string) []map[string]any {
	t.Helper()
	evs := allEvents(t, s, hookd.EventFilter{OrgID: org, Type: hookd.EventUsageThreshold})
	out := make([]map[string]any, len(evs))
	for i, ev := range evs {
		if err := json.Unmarshal(ev.Data, &out[len(evs)-1-i]); err != nil {
			t.Fatalf("decode %s: %v", ev.Data, err)
		}
	}
	return out
}

// publishN publishes n events of org at at, one per call, and returns the error of each.
func publishN(t *testing.T, s hookd.Store, org string, n int, at time.Time) []error {
	t.Helper()
	errs := make([]error, n)
	for i := range n {
		_, errs[i] = s.Publish(t.Context(), []*hookd.Event{newEvent(org, "invoice.paid", at)})
	}
	return errs
}

var usageTests = []test{
	{"CountsNewEventsPerMonth", func(t *testing.T, s hookd.Store) {
		o := quotaOrg(t, s, 0, false)
		mustEndpoint(t, s, o.ID, nil)
		nov := time.Date(2026, time.November, 30, 23, 59, 59, 999999000, time.UTC)
		dec := nov.Add(time.Microsecond)
		evs := []*hookd.Event{newEvent(o.ID, "a.b", nov), newEvent(o.ID, "a.b", nov), newEvent(o.ID, "a.b", nov)}
		mustPublish(t, s, evs...)
		mustPublish(t, s, evs[0]) // a duplicate does not count
		mustPublish(t, s, newEvent(o.ID, "a.b", dec), newEvent(o.ID, "a.b", dec))
		if got := usageOf(t, s, o.ID, nov); got != 3 {
			t.Errorf("November usage = %d, want 3 (a duplicate does not count)", got)
		}
		if got := usageOf(t, s, o.ID, dec); got != 2 {
			t.Errorf("December usage = %d, want 2 (the month is UTC)", got)
		}
		if got := usageOf(t, s, o.ID, dec.AddDate(0, 1, 0)); got != 0 {
			t.Errorf("January usage = %d, want 0", got)
		}
		// An operational event emitted by a delivery's outcome does not count.
		c := mustClaim(t, s, dec)[0]
		out := outcome(c, hookd.DeliveryFailed, dec)
		out.Emit = []*hookd.Event{hookd.NewDeliveryFailedEvent("evt_failed_1", &c.Delivery, 1, "boom", dec)}
		mustComplete(t, s, out)
		if got := usageOf(t, s, o.ID, dec); got != 2 {
			t.Errorf("December usage after an operational event = %d, want 2", got)
		}
		u, err := s.Usage(t.Context(), o.ID, "2026-11")
		if err != nil || u.OrgID != o.ID || u.Period != "2026-11" || u.Events != 3 || u.Quota != 0 {
			t.Errorf("Usage = %+v, %v", u, err)
		}
		if _, err := s.Usage(t.Context(), "org_nope", "2026-11"); hookd.ErrorCode(err) != hookd.ENOTFOUND {
			t.Errorf("Usage of a missing organization: %v, want not_found", err)
		}
	}},
	{"QuotaRejectsAndStoresNothing", func(t *testing.T, s hookd.Store) {
		o := quotaOrg(t, s, 5, false)
		e := mustEndpoint(t, s, o.ID, subscribed("invoice.*"))
		for i, err := range publishN(t, s, o.ID, 4, base) {
			if err != nil {
				t.Fatalf("publish %d under the quota: %v", i+1, err)
			}
		}
		// A batch of two would make 6 of 5: all of it is refused.
		_, err := s.Publish(t.Context(), []*hookd.Event{newEvent(o.ID, "invoice.paid", base), newEvent(o.ID, "invoice.paid", base)})
		wantCode(t, err, hookd.EQUOTA, "batch past the quota")
		if got := usageOf(t, s, o.ID, base); got != 4 {
			t.Fatalf("usage after a refused batch = %d, want 4", got)
		}
		if err := publishN(t, s, o.ID, 1, base)[0]; err != nil {
			t.Fatalf("the 5th event (exactly the quota): %v", err)
		}
		wantCode(t, publishN(t, s, o.ID, 1, base)[0], hookd.EQUOTA, "the 6th event")
		evs := allEvents(t, s, hookd.EventFilter{OrgID: o.ID, Type: "invoice.paid"})
		ds := allDeliveries(t, s, hookd.DeliveryFilter{EndpointID: e.ID})
		if len(evs) != 5 || len(ds) != 5 || usageOf(t, s, o.ID, base) != 5 {
			t.Errorf("stored %d events, %d deliveries, usage %d; want 5 of each (refused ones store nothing)",
				len(evs), len(ds), usageOf(t, s, o.ID, base))
		}
		// A new month starts afresh.
		if err := publishN(t, s, o.ID, 1, base.AddDate(0, 1, 0))[0]; err != nil {
			t.Errorf("first event of the next month: %v", err)
		}
	}},
	{"QuotaSetMidMonth", func(t *testing.T, s hookd.Store) {
		o := quotaOrg(t, s, 0, false)
		mustEndpoint(t, s, o.ID, nil)
		for i, err := range publishN(t, s, o.ID, 5, base) {
			if err != nil {
				t.Fatalf("publish %d without a quota: %v", i+1, err)
			}
		}
		if _, err := s.UpdateOrganization(t.Context(), o.ID, func(o *hookd.Organization) error { o.MonthlyQuota = 6; return nil }); err != nil {
			t.Fatal(err)
		}
		// The events counted without a quota count against it.
		if err := publishN(t, s, o.ID, 1, base)[0]; err != nil {
			t.Fatalf("the 6th event (exactly the new quota): %v", err)
		}
		wantCode(t, publishN(t, s, o.ID, 1, base)[0], hookd.EQUOTA, "the 7th event")
		if got := usageOf(t, s, o.ID, base); got != 6 {
			t.Errorf("usage = %d, want 6", got)
		}
		if got := thresholdEvents(t, s, o.ID); len(got) != 2 || got[0]["usage"] != 6.0 {
			t.Errorf("usage_threshold events %v, want two at usage 6", got)
		}
	}},
	{"OverageAllowed", func(t *testing.T, s hookd.Store) {
		o := quotaOrg(t, s, 2, true)
		for i, err := range publishN(t, s, o.ID, 5, base) {
			if err != nil {
				t.Fatalf("publish %d with overage allowed: %v", i+1, err)
			}
		}
		if got := usageOf(t, s, o.ID, base); got != 5 {
			t.Errorf("usage = %d, want 5 (overage counts)", got)
		}
		if got := len(thresholdEvents(t, s, o.ID)); got != 2 {
			t.Errorf("%d usage_threshold events, want 2 (90 %% and 100 %%, once each)", got)
		}
	}},
	{"ThresholdsOncePerMonth", func(t *testing.T, s hookd.Store) {
		o := quotaOrg(t, s, 10, false)
		sub := mustEndpoint(t, s, o.ID, subscribed(hookd.EventUsageThreshold))
		other := mustEndpoint(t, s, o.ID, subscribed("invoice.*"))
		publishN(t, s, o.ID, 8, base)
		if got := thresholdEvents(t, s, o.ID); len(got) != 0 {
			t.Fatalf("at 80 %%: usage_threshold events %v, want none", got)
		}
		publishN(t, s, o.ID, 1, base)
		publishN(t, s, o.ID, 1, base)
		publishN(t, s, o.ID, 3, base) // refused: nothing new to announce
		got := thresholdEvents(t, s, o.ID)
		if len(got) != 2 {
			t.Fatalf("usage_threshold events %v, want two (90 %%, then 100 %%)", got)
		}
		for i, want := range []map[string]any{
			{"event": "usage_threshold", "organization": o.ID, "usage": 9.0, "threshold": 9.0, "percent": 90.0, "quota": 10.0, "period": hookd.UsagePeriod(base)},
			{"event": "usage_threshold", "organization": o.ID, "usage": 10.0, "threshold": 10.0, "percent": 100.0, "quota": 10.0, "period": hookd.UsagePeriod(base)},
		} {
			for k, v := range want {
				if got[i][k] != v {
					t.Errorf("usage_threshold event %d: %s = %v, want %v (payload %v)", i+1, k, got[i][k], v, got[i])
				}
			}
		}
		// Delivered like any event: to the endpoint subscribed to it only.
		if n := len(allDeliveries(t, s, hookd.DeliveryFilter{EndpointID: sub.ID})); n != 2 {
			t.Errorf("the usage_threshold subscriber has %d deliveries, want 2", n)
		}
		if n := len(allDeliveries(t, s, hookd.DeliveryFilter{EndpointID: other.ID})); n != 10 {
			t.Errorf("the invoice subscriber has %d deliveries, want 10", n)
		}
		// Raising the quota does not announce a threshold again this month...
		if _, err := s.UpdateOrganization(t.Context(), o.ID, func(o *hookd.Organization) error { o.MonthlyQuota = 11; return nil }); err != nil {
			t.Fatal(err)
		}
		publishN(t, s, o.ID, 1, base)
		if got := thresholdEvents(t, s, o.ID); len(got) != 2 {
			t.Errorf("after raising the quota: %d usage_threshold events, want still 2 (once per month)", len(got))
		}
		// ...but the next month has its own.
		publishN(t, s, o.ID, 10, base.AddDate(0, 1, 0))
		if got := thresholdEvents(t, s, o.ID); len(got) != 3 {
			t.Errorf("next month at 10 of 11: %d usage_threshold events, want 3", len(got))
		}
	}},
	{"ConcurrentPublishersAcrossThreshold", func(t *testing.T, s hookd.Store) {
		o := quotaOrg(t, s, 20, false)
		mustEndpoint(t, s, o.ID, nil)
		const publishers = 40
		var wg sync.WaitGroup
		errs := make([]error, publishers)
		for i := range publishers {
			wg.Go(func() { errs[i] = publishN(t, s, o.ID, 1, base)[0] })
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case hookd.ErrorCode(err) != hookd.EQUOTA:
				t.Errorf("publish: %v, want success or quota_exceeded", err)
			}
		}
		if ok != 20 || usageOf(t, s, o.ID, base) != 20 {
			t.Errorf("%d publishes accepted, usage %d; want exactly the quota, 20", ok, usageOf(t, s, o.ID, base))
		}
		if got := thresholdEvents(t, s, o.ID); len(got) != 2 {
			t.Errorf("usage_threshold events %v, want exactly two", got)
		}
	}},
	{"InboundCountsAndIsRefused", func(t *testing.T, s hookd.Store) {
		o := quotaOrg(t, s, 1, false)
		mustEndpoint(t, s, o.ID, nil)
		rec := func() *hookd.AuditRecord {
			return &hookd.AuditRecord{OrgID: o.ID, Time: base, ActorType: "partner", Action: "inbound.event", Result: "accepted"}
		}
		if _, err := s.AcceptInbound(t.Context(), newEvent(o.ID, "partner.thing", base), rec(), rec()); err != nil {
			t.Fatalf("first inbound event: %v", err)
		}
		_, err := s.AcceptInbound(t.Context(), newEvent(o.ID, "partner.thing", base), rec(), rec())
		wantCode(t, err, hookd.EQUOTA, "inbound event past the quota")
		if got := usageOf(t, s, o.ID, base); got != 1 {
			t.Errorf("usage = %d, want 1", got)
		}
	}},
	{"UpdateOrganization", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		got, err := s.UpdateOrganization(t.Context(), o.ID, func(o *hookd.Organization) error {
			o.Name, o.MonthlyQuota, o.AllowOverage, o.ID = "Renamed", 77, true, "ignored"
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		stored, err := s.Organization(t.Context(), o.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != o.ID || stored.Name != "Renamed" || stored.MonthlyQuota != 77 || !stored.AllowOverage || !stored.CreatedAt.Equal(o.CreatedAt) {
			t.Errorf("after update: returned %+v, stored %+v", got, stored)
		}
		_, err = s.UpdateOrganization(t.Context(), "org_nope", func(*hookd.Organization) error { return nil })
		wantCode(t, err, hookd.ENOTFOUND, "update of a missing organization")
		_, err = s.UpdateOrganization(t.Context(), o.ID, func(*hookd.Organization) error { return hookd.FieldError("name", "bad") })
		wantCode(t, err, hookd.EINVALID, "fn's error")
	}},
}
