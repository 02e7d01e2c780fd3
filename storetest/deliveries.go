package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hookd/hookd"
)

var deliveryTests = []test{
	{"GetWithAttempts", func(t *testing.T, s hookd.Store) {
		o, other := mustOrg(t, s), mustOrg(t, s)
		e := mustEndpoint(t, s, o.ID, nil)
		ev, ds := mustPublishOne(t, s, o.ID, "invoice.paid", base)
		d := ds[e.ID]

		c1 := claimOf(t, mustClaim(t, s, base), d.ID)
		o1 := outcome(c1, hookd.DeliveryPending, base.Add(time.Second))
		mustComplete(t, s, o1)
		c2 := claimOf(t, mustClaim(t, s, o1.NextAttemptAt), d.ID)
		o2 := outcome(c2, hookd.DeliverySucceeded, o1.NextAttemptAt.Add(time.Second))
		mustComplete(t, s, o2)

		for _, org := range []string{o.ID, ""} {
			got, as, err := s.Delivery(t.Context(), org, d.ID)
			if err != nil {
				t.Fatalf("Delivery(%q, id): %v", org, err)
			}
			want := &hookd.Delivery{
				ID: d.ID, OrgID: o.ID, EventID: ev.ID, EventType: ev.Type, EndpointID: e.ID,
				Status: hookd.DeliverySucceeded, Attempts: 2, CycleAttempts: 2, LastStatusCode: 200,
				CreatedAt: d.CreatedAt,
			}
			if diff := cmp.Diff(want, got, ignoreDeliveryTimes); diff != "" {
				t.Errorf("Delivery(%q, id) (-want +got):\n%s", org, diff)
			}
			if diff := cmp.Diff([]*hookd.Attempt{&o1.Attempt, &o2.Attempt}, as, equateEmpty); diff != "" {
				t.Errorf("Delivery(%q, id) attempts, oldest first (-want +got):\n%s", org, diff)
			}
		}
		_, _, err := s.Delivery(t.Context(), other.ID, d.ID)
		wantCode(t, err, hookd.ENOTFOUND, "Delivery with another organization")
		_, _, err = s.Delivery(t.Context(), "", "dlv_unknown")
		wantCode(t, err, hookd.ENOTFOUND, "Delivery(unknown)")
	}},
	{"GetWithoutAttempts", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		e := mustEndpoint(t, s, o.ID, nil)
		_, ds := mustPublishOne(t, s, o.ID, "invoice.paid", base)
		got, as := mustDelivery(t, s, ds[e.ID].ID)
		if diff := cmp.Diff(ds[e.ID], got); diff != "" {
			t.Errorf("Delivery (-want +got):\n%s", diff)
		}
		if len(as) != 0 {
			t.Errorf("Delivery has %d attempts, want none", len(as))
		}
	}},
	{"ListFilters", func(t *testing.T, s hookd.Store) {
		a, b := mustOrg(t, s), mustOrg(t, s)
		e1 := mustEndpoint(t, s, a.ID, nil)
		e2 := mustEndpoint(t, s, a.ID, nil)
		e3 := mustEndpoint(t, s, b.ID, nil)
		ev1, ds1 := mustPublishOne(t, s, a.ID, "invoice.paid", base)
		settle(t, s, ds1[e1.ID], hookd.DeliverySucceeded, base)
		settle(t, s, ds1[e2.ID], hookd.DeliveryFailed, base)
		if _, err := s.UpdateEndpoint(t.Context(), a.ID, e2.ID, func(e *hookd.Endpoint) error { e.Enabled = false; return nil }); err != nil {
			t.Fatalf("UpdateEndpoint: %v", err)
		}
		ev2, ds2 := mustPublishOne(t, s, a.ID, "invoice.paid", base.Add(time.Second))
		_, ds3 := mustPublishOne(t, s, b.ID, "invoice.paid", base.Add(2*time.Second))

		for _, tc := range []struct {
			name string
			f    hookd.DeliveryFilter
			want []*hookd.Delivery
		}{
			{"all", hookd.DeliveryFilter{}, []*hookd.Delivery{ds1[e1.ID], ds1[e2.ID], ds2[e1.ID], ds2[e2.ID], ds3[e3.ID]}},
			{"org", hookd.DeliveryFilter{OrgID: a.ID}, []*hookd.Delivery{ds1[e1.ID], ds1[e2.ID], ds2[e1.ID], ds2[e2.ID]}},
			{"other org", hookd.DeliveryFilter{OrgID: b.ID}, []*hookd.Delivery{ds3[e3.ID]}},
			{"endpoint", hookd.DeliveryFilter{EndpointID: e1.ID}, []*hookd.Delivery{ds1[e1.ID], ds2[e1.ID]}},
			{"endpoint and its org", hookd.DeliveryFilter{OrgID: a.ID, EndpointID: e2.ID}, []*hookd.Delivery{ds1[e2.ID], ds2[e2.ID]}},
			{"endpoint and another org", hookd.DeliveryFilter{OrgID: b.ID, EndpointID: e2.ID}, nil},
			{"event", hookd.DeliveryFilter{EventID: ev1.ID}, []*hookd.Delivery{ds1[e1.ID], ds1[e2.ID]}},
			{"event and endpoint", hookd.DeliveryFilter{EventID: ev2.ID, EndpointID: e2.ID}, []*hookd.Delivery{ds2[e2.ID]}},
			{"status pending", hookd.DeliveryFilter{Status: hookd.DeliveryPending}, []*hookd.Delivery{ds2[e1.ID], ds3[e3.ID]}},
			{"status succeeded", hookd.DeliveryFilter{Status: hookd.DeliverySucceeded}, []*hookd.Delivery{ds1[e1.ID]}},
			{"status failed", hookd.DeliveryFilter{Status: hookd.DeliveryFailed}, []*hookd.Delivery{ds1[e2.ID]}},
			{"status skipped", hookd.DeliveryFilter{Status: hookd.DeliverySkipped}, []*hookd.Delivery{ds2[e2.ID]}},
			{"org and status", hookd.DeliveryFilter{OrgID: a.ID, Status: hookd.DeliveryPending}, []*hookd.Delivery{ds2[e1.ID]}},
			{"unknown endpoint", hookd.DeliveryFilter{EndpointID: "ep_unknown"}, nil},
		} {
			for _, limit := range []int{0, 1, 2} {
				f := tc.f
				f.Limit = limit
				got := allDeliveries(t, s, f)
				if diff := cmp.Diff(sortedIDs(tc.want...), sortedIDs(got...), equateEmpty); diff != "" {
					t.Errorf("ListDeliveries(%s, limit %d) ids (-want +got):\n%s", tc.name, limit, diff)
				}
			}
		}
		got := allDeliveries(t, s, hookd.DeliveryFilter{EndpointID: e2.ID, Status: hookd.DeliveryFailed})
		want, _ := mustDelivery(t, s, ds1[e2.ID].ID)
		if diff := cmp.Diff([]*hookd.Delivery{want}, got); diff != "" {
			t.Errorf("ListDeliveries returned deliveries (-want +got):\n%s", diff)
		}
	}},
	{"ListPagination", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		e := mustEndpoint(t, s, o.ID, nil)
		var want []string
		for i := range 7 {
			_, ds := mustPublishOne(t, s, o.ID, "invoice.paid", base.Add(time.Duration(i)*time.Second))
			want = append(want, ds[e.ID].ID)
		}
		slices.Reverse(want) // newest first
		f := hookd.DeliveryFilter{EndpointID: e.ID, Page: hookd.Page{Limit: 3}}
		var pages [][]string
		for {
			page, next, err := s.ListDeliveries(t.Context(), f)
			if err != nil {
				t.Fatalf("ListDeliveries: %v", err)
			}
			pages = append(pages, deliveryIDs(page))
			if next == "" || len(pages) > 10 {
				break
			}
			f.Cursor = next
		}
		if diff := cmp.Diff([][]string{want[0:3], want[3:6], want[6:7]}, pages); diff != "" {
			t.Errorf("ListDeliveries pages, newest first (-want +got):\n%s", diff)
		}
		// A page that ends exactly at the last delivery has no next cursor.
		page, next, err := s.ListDeliveries(t.Context(), hookd.DeliveryFilter{EndpointID: e.ID, Page: hookd.Page{Limit: 7}})
		if err != nil {
			t.Fatalf("ListDeliveries: %v", err)
		}
		if diff := cmp.Diff(want, deliveryIDs(page)); diff != "" {
			t.Errorf("ListDeliveries(limit 7) (-want +got):\n%s", diff)
		}
		if next != "" {
			t.Errorf("ListDeliveries(limit 7) of 7 deliveries: next cursor %q, want none", next)
		}
	}},
}
