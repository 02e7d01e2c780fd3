package storetest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/hookd/hookd"
)

var eventTests = []test{
	{"ListPageBoundedByDataSize", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		big := []byte(`"` + strings.Repeat("x", 1<<20) + `"`) // 1 MiB of data each
		var evs []*hookd.Event
		for i := range 10 {
			evs = append(evs, &hookd.Event{ID: fmt.Sprintf("big-%d", i), OrgID: o.ID, Type: "a.b", Data: big, CreatedAt: base})
		}
		if _, err := s.Publish(t.Context(), evs); err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		cursor := ""
		for pages := 0; ; pages++ {
			page, next, err := s.ListEvents(t.Context(), hookd.EventFilter{OrgID: o.ID, Page: hookd.Page{Limit: 500, Cursor: cursor}})
			if err != nil {
				t.Fatal(err)
			}
			size := 0
			for _, ev := range page {
				size += len(ev.Data)
				seen[ev.ID] = true
			}
			if size > hookd.MaxPageDataBytes+len(big) {
				t.Errorf("page %d holds %d bytes of data, want at most about %d", pages, size, hookd.MaxPageDataBytes)
			}
			if next == "" {
				break
			}
			cursor = next
		}
		if len(seen) != 10 {
			t.Errorf("pages returned %d of the 10 events", len(seen))
		}
	}},
	{"GetWithDeliveries", func(t *testing.T, s hookd.Store) {
		o, other := mustOrg(t, s), mustOrg(t, s)
		a := mustEndpoint(t, s, o.ID, nil)
		b := mustEndpoint(t, s, o.ID, func(e *hookd.Endpoint) { e.Enabled = false })
		mustEndpoint(t, s, o.ID, subscribed("customer.*"))
		ev := newEvent(o.ID, "invoice.paid", base)
		ev.IdempotencyKey = "order-1234"
		mustPublish(t, s, ev)

		for _, org := range []string{o.ID, ""} {
			got, ds, err := s.Event(t.Context(), org, ev.ID)
			if err != nil {
				t.Fatalf("Event(%q, id): %v", org, err)
			}
			if diff := cmp.Diff(ev, got, equateEmpty); diff != "" {
				t.Errorf("Event(%q, id) (-want +got):\n%s", org, diff)
			}
			want := []*hookd.Delivery{
				{OrgID: o.ID, EventID: ev.ID, EventType: ev.Type, EndpointID: a.ID, Status: hookd.DeliveryPending,
					CreatedAt: ev.CreatedAt},
				{OrgID: o.ID, EventID: ev.ID, EventType: ev.Type, EndpointID: b.ID, Status: hookd.DeliverySkipped,
					CreatedAt: ev.CreatedAt},
			}
			opts := cmp.Options{
				cmpopts.SortSlices(func(x, y *hookd.Delivery) bool { return x.EndpointID < y.EndpointID }),
				// The due time is checked by PublishedDeliveriesAreDueAtEventTime; a
				// skipped delivery has none that matters.
				cmpopts.IgnoreFields(hookd.Delivery{}, "ID", "NextAttemptAt", "UpdatedAt"),
			}
			if diff := cmp.Diff(want, ds, opts); diff != "" {
				t.Errorf("Event(%q, id) deliveries (-want +got):\n%s", org, diff)
			}
			for _, d := range ds {
				if d.ID == "" {
					t.Errorf("delivery to %s has no id", d.EndpointID)
				}
			}
			if len(ds) == 2 && ds[0].ID == ds[1].ID {
				t.Errorf("two deliveries share the id %s", ds[0].ID)
			}
		}
		_, _, err := s.Event(t.Context(), other.ID, ev.ID)
		wantCode(t, err, hookd.ENOTFOUND, "Event with another organization")
		_, _, err = s.Event(t.Context(), "", "evt_unknown")
		wantCode(t, err, hookd.ENOTFOUND, "Event(unknown)")
	}},
	{"PublishedDeliveriesAreDueAtEventTime", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		e := mustEndpoint(t, s, o.ID, nil)
		_, ds := mustPublishOne(t, s, o.ID, "invoice.paid", base)
		d := ds[e.ID]
		if !d.NextAttemptAt.Equal(base) || !d.CreatedAt.Equal(base) {
			t.Errorf("delivery: NextAttemptAt %v, CreatedAt %v, want both at the event's CreatedAt %v", d.NextAttemptAt, d.CreatedAt, base)
		}
		if cs := mustClaim(t, s, base.Add(-time.Microsecond)); len(cs) != 0 {
			t.Errorf("claimed %v before the event's time", claimedIDs(cs))
		}
		wantClaimed(t, mustClaim(t, s, base), "claim at the event's time", d)
	}},
	{"ListFilters", func(t *testing.T, s hookd.Store) {
		a, b := mustOrg(t, s), mustOrg(t, s)
		// Published in this order, one second apart; lists are newest first.
		var evs []*hookd.Event
		for i, p := range []struct{ org, typ string }{
			{a.ID, "invoice.paid"},
			{b.ID, "invoice.paid"},
			{a.ID, "customer.created"},
			{a.ID, "invoice.paid"},
			{b.ID, "customer.created"},
			{a.ID, "invoice.paid"},
		} {
			ev := newEvent(p.org, p.typ, base.Add(time.Duration(i)*time.Second))
			mustPublish(t, s, ev)
			evs = append(evs, ev)
		}
		pick := func(is ...int) []string {
			out := []string{}
			for _, i := range is {
				out = append(out, evs[i].ID)
			}
			return out
		}
		for _, tc := range []struct {
			name string
			f    hookd.EventFilter
			want []string
		}{
			{"all", hookd.EventFilter{}, pick(5, 4, 3, 2, 1, 0)},
			{"org", hookd.EventFilter{OrgID: a.ID}, pick(5, 3, 2, 0)},
			{"other org", hookd.EventFilter{OrgID: b.ID}, pick(4, 1)},
			{"type", hookd.EventFilter{Type: "invoice.paid"}, pick(5, 3, 1, 0)},
			{"type is exact", hookd.EventFilter{Type: "invoice"}, nil},
			{"since", hookd.EventFilter{Since: base.Add(3 * time.Second)}, pick(5, 4, 3)},
			{"since between", hookd.EventFilter{Since: base.Add(2500 * time.Millisecond)}, pick(5, 4, 3)},
			{"org, type and since", hookd.EventFilter{OrgID: a.ID, Type: "invoice.paid", Since: base.Add(time.Second)}, pick(5, 3)},
			{"unknown org", hookd.EventFilter{OrgID: "org_none"}, nil},
		} {
			for _, limit := range []int{0, 1, 2, 100} {
				f := tc.f
				f.Limit = limit
				got := allEvents(t, s, f)
				if diff := cmp.Diff(tc.want, eventIDs(got), equateEmpty); diff != "" {
					t.Errorf("ListEvents(%s, limit %d) ids (-want +got):\n%s", tc.name, limit, diff)
				}
			}
		}
		got := allEvents(t, s, hookd.EventFilter{OrgID: a.ID, Type: "customer.created"})
		if diff := cmp.Diff([]*hookd.Event{evs[2]}, got, equateEmpty); diff != "" {
			t.Errorf("ListEvents returned events (-want +got):\n%s", diff)
		}
	}},
	{"ListPagination", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		var want []string
		for i := range 7 {
			ev := newEvent(o.ID, "invoice.paid", base.Add(time.Duration(i)*time.Second))
			mustPublish(t, s, ev)
			want = append([]string{ev.ID}, want...)
		}
		f := hookd.EventFilter{OrgID: o.ID, Page: hookd.Page{Limit: 3}}
		var pages [][]string
		for {
			page, next, err := s.ListEvents(t.Context(), f)
			if err != nil {
				t.Fatalf("ListEvents: %v", err)
			}
			pages = append(pages, eventIDs(page))
			if next == "" || len(pages) > 10 {
				break
			}
			f.Cursor = next
		}
		if diff := cmp.Diff([][]string{want[0:3], want[3:6], want[6:7]}, pages); diff != "" {
			t.Errorf("ListEvents pages, newest first (-want +got):\n%s", diff)
		}

		// A page that ends exactly at the last event has no next cursor.
		page, next, err := s.ListEvents(t.Context(), hookd.EventFilter{OrgID: o.ID, Page: hookd.Page{Limit: 7}})
		if err != nil {
			t.Fatalf("ListEvents: %v", err)
		}
		if diff := cmp.Diff(want, eventIDs(page)); diff != "" {
			t.Errorf("ListEvents(limit 7) (-want +got):\n%s", diff)
		}
		if next != "" {
			t.Errorf("ListEvents(limit 7) of 7 events: next cursor %q, want none", next)
		}
	}},
}

var listTests = []test{
	{"InvalidCursor", func(t *testing.T, s hookd.Store) {
		// A cursor that no list returned is the caller's mistake (400 invalid_field),
		// not an internal error.
		for _, cursor := range []string{"not a cursor!", "%%%"} {
			p := hookd.Page{Limit: 10, Cursor: cursor}
			_, _, err := s.ListEndpoints(t.Context(), hookd.EndpointFilter{Page: p})
			wantCode(t, err, hookd.EINVALID, "ListEndpoints(cursor "+cursor+")")
			_, _, err = s.ListEvents(t.Context(), hookd.EventFilter{Page: p})
			wantCode(t, err, hookd.EINVALID, "ListEvents(cursor "+cursor+")")
			_, _, err = s.ListDeliveries(t.Context(), hookd.DeliveryFilter{Page: p})
			wantCode(t, err, hookd.EINVALID, "ListDeliveries(cursor "+cursor+")")
		}
	}},
}
