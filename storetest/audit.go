package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/ids"
)

// newAudit returns the record, with a fresh id, of actor (a key id) succeeding at
// action on a new target in org at at.
func newAudit(org, action, actor string, at time.Time) *hookd.AuditRecord {
	return &hookd.AuditRecord{
		ID:        ids.NewAt("aud", at),
		OrgID:     org,
		Time:      at,
		ActorType: hookd.ActorKey,
		Actor:     actor,
		Action:    action,
		Target:    ids.New("ep"),
		Result:    hookd.AuditSuccess,
		ClientIP:  "198.51.100.20",
		Status:    201,
	}
}

// mustAppendAudit appends records in one call.
func mustAppendAudit(t *testing.T, s hookd.Store, records ...*hookd.AuditRecord) {
	t.Helper()
	if err := s.AppendAudit(t.Context(), records...); err != nil {
		t.Fatalf("AppendAudit: %v", err)
	}
}

// allAudit lists every audit record matching f, following cursors, and checks that
// no page is longer than the limit.
func allAudit(t *testing.T, s hookd.Store, f hookd.AuditFilter) []*hookd.AuditRecord {
	t.Helper()
	var out []*hookd.AuditRecord
	for i := 0; ; i++ {
		page, next, err := s.ListAudit(t.Context(), f)
		if err != nil {
			t.Fatalf("ListAudit(%+v): %v", f, err)
		}
		if f.Limit > 0 && len(page) > f.Limit {
			t.Fatalf("ListAudit(limit %d) returned %d records", f.Limit, len(page))
		}
		out = append(out, page...)
		if next == "" {
			return out
		}
		if i > 1000 {
			t.Fatalf("ListAudit: no end after %d pages", i)
		}
		f.Cursor = next
	}
}

// auditIDs returns the ids of rs in order.
func auditIDs(rs []*hookd.AuditRecord) []string {
	out := []string{}
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

// copyAudit returns copies of rs, which later changes to rs do not affect.
func copyAudit(rs []*hookd.AuditRecord) []*hookd.AuditRecord {
	out := []*hookd.AuditRecord{}
	for _, r := range rs {
		c := *r
		out = append(out, &c)
	}
	return out
}

var auditTests = []test{
	{"AppendAndListEveryField", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		records := []*hookd.AuditRecord{
			{ID: ids.NewAt("aud", base), OrgID: o.ID, Time: base, ActorType: hookd.ActorKey, Actor: ids.New("key"),
				Action: "endpoint.create", Target: ids.New("ep"), Result: hookd.AuditSuccess, ClientIP: "2001:db8::7", Status: 201},
			{ID: ids.NewAt("aud", base), Time: base.Add(time.Microsecond), ActorType: hookd.ActorAnonymous,
				Action: "inbound.event", Result: hookd.AuditFailure, Reason: "invalid_api_key", ClientIP: "203.0.113.9", Status: 401,
				Count: 4213}, // failures summed into one record
			{ID: ids.NewAt("aud", base), OrgID: o.ID, Time: base.Add(time.Second), ActorType: hookd.ActorAdmin, Actor: ids.New("key"),
				Action: "organization.create", Target: o.ID, Result: hookd.AuditFailure, Reason: hookd.ECONFLICT,
				ClientIP: "127.0.0.1", Status: 409},
			{ID: ids.NewAt("aud", base), OrgID: o.ID, Time: base.Add(2 * time.Second), ActorType: hookd.ActorPartner,
				Actor: ids.New("ptn"), Action: "inbound.event", Target: "ptn_x:order-1", Result: hookd.AuditSuccess,
				ClientIP: "198.51.100.7", Status: 202},
		}
		want := copyAudit(records)
		for _, r := range want {
			r.Count = max(r.Count, 1) // a record stands for one attempt unless it says more
		}
		slices.Reverse(want) // newest first
		mustAppendAudit(t, s, records[0])
		mustAppendAudit(t, s, records[1:]...)
		if diff := cmp.Diff(want, allAudit(t, s, hookd.AuditFilter{})); diff != "" {
			t.Errorf("ListAudit, newest first (-want +got):\n%s", diff)
		}
	}},
	{"AppendNothing", func(t *testing.T, s hookd.Store) {
		mustAppendAudit(t, s)
		if got := allAudit(t, s, hookd.AuditFilter{}); len(got) != 0 {
			t.Errorf("ListAudit after appending nothing = %v, want nothing", auditIDs(got))
		}
	}},
	{"ListPagination", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		var want []string
		for i := range 7 {
			r := newAudit(o.ID, "endpoint.create", "key_1", base.Add(time.Duration(i)*time.Second))
			mustAppendAudit(t, s, r)
			want = append([]string{r.ID}, want...)
		}
		f := hookd.AuditFilter{OrgID: o.ID, Page: hookd.Page{Limit: 3}}
		var pages [][]string
		for {
			page, next, err := s.ListAudit(t.Context(), f)
			if err != nil {
				t.Fatalf("ListAudit: %v", err)
			}
			pages = append(pages, auditIDs(page))
			if next == "" || len(pages) > 10 {
				break
			}
			f.Cursor = next
		}
		if diff := cmp.Diff([][]string{want[0:3], want[3:6], want[6:7]}, pages); diff != "" {
			t.Errorf("ListAudit pages, newest first (-want +got):\n%s", diff)
		}

		// A page that ends exactly at the last record has no next cursor.
		page, next, err := s.ListAudit(t.Context(), hookd.AuditFilter{OrgID: o.ID, Page: hookd.Page{Limit: 7}})
		if err != nil {
			t.Fatalf("ListAudit: %v", err)
		}
		if diff := cmp.Diff(want, auditIDs(page)); diff != "" {
			t.Errorf("ListAudit(limit 7) (-want +got):\n%s", diff)
		}
		if next != "" {
			t.Errorf("ListAudit(limit 7) of 7 records: next cursor %q, want none", next)
		}
	}},
	{"ListFilters", func(t *testing.T, s hookd.Store) {
		a, b := mustOrg(t, s), mustOrg(t, s)
		keyA, keyB, admin, ptn := ids.New("key"), ids.New("key"), ids.New("key"), ids.New("ptn")
		// Appended in this order, one second apart; lists are newest first.
		var rs []*hookd.AuditRecord
		for i, p := range []struct{ org, action, actor string }{
			{a.ID, "endpoint.create", keyA},
			{b.ID, "endpoint.create", keyB},
			{a.ID, "partner.delete", keyA},
			{"", "inbound.event", ""}, // an unknown API key
			{a.ID, "inbound.event", ptn},
			{b.ID, "partner.delete", keyB},
			{a.ID, "endpoint.create", admin},
		} {
			r := newAudit(p.org, p.action, p.actor, base.Add(time.Duration(i)*time.Second))
			mustAppendAudit(t, s, r)
			rs = append(rs, r)
		}
		pick := func(is ...int) []string {
			out := []string{}
			for _, i := range is {
				out = append(out, rs[i].ID)
			}
			return out
		}
		for _, tc := range []struct {
			name string
			f    hookd.AuditFilter
			want []string
		}{
			{"all", hookd.AuditFilter{}, pick(6, 5, 4, 3, 2, 1, 0)},
			{"org", hookd.AuditFilter{OrgID: a.ID}, pick(6, 4, 2, 0)},
			{"other org", hookd.AuditFilter{OrgID: b.ID}, pick(5, 1)},
			{"since", hookd.AuditFilter{Since: base.Add(3 * time.Second)}, pick(6, 5, 4, 3)},
			{"since between", hookd.AuditFilter{Since: base.Add(2500 * time.Millisecond)}, pick(6, 5, 4, 3)},
			{"since after all", hookd.AuditFilter{Since: base.Add(time.Hour)}, nil},
			{"action", hookd.AuditFilter{Action: "endpoint.create"}, pick(6, 1, 0)},
			{"action is exact", hookd.AuditFilter{Action: "endpoint"}, nil},
			{"actor", hookd.AuditFilter{Actor: keyA}, pick(2, 0)},
			{"partner actor", hookd.AuditFilter{Actor: ptn}, pick(4)},
			{"org and actor", hookd.AuditFilter{OrgID: b.ID, Actor: keyB}, pick(5, 1)},
			{"org, action and since", hookd.AuditFilter{OrgID: a.ID, Action: "endpoint.create", Since: base.Add(time.Second)}, pick(6)},
			{"org and another org's actor", hookd.AuditFilter{OrgID: a.ID, Actor: keyB}, nil},
			{"unknown org", hookd.AuditFilter{OrgID: "org_none"}, nil},
		} {
			for _, limit := range []int{0, 1, 2, 100} {
				f := tc.f
				f.Limit = limit
				got := allAudit(t, s, f)
				if diff := cmp.Diff(tc.want, auditIDs(got), equateEmpty); diff != "" {
					t.Errorf("ListAudit(%s, limit %d) ids (-want +got):\n%s", tc.name, limit, diff)
				}
			}
		}
		got := allAudit(t, s, hookd.AuditFilter{OrgID: b.ID, Action: "partner.delete"})
		if diff := cmp.Diff([]*hookd.AuditRecord{rs[5]}, got); diff != "" {
			t.Errorf("ListAudit returned records (-want +got):\n%s", diff)
		}
	}},
	{"AppendOnly", func(t *testing.T, s hookd.Store) {
		// Nothing in the interface changes a record: what was appended reads back the
		// same after further appends and after the caller reuses its structs.
		o := mustOrg(t, s)
		first := []*hookd.AuditRecord{
			newAudit(o.ID, "endpoint.create", "key_1", base),
			newAudit(o.ID, "endpoint.update", "key_1", base.Add(time.Second)),
		}
		mustAppendAudit(t, s, first...)
		want := copyAudit(first)
		slices.Reverse(want)
		for _, r := range first {
			r.Result, r.Reason, r.Status, r.Time = hookd.AuditFailure, "changed", 500, base.Add(time.Hour)
		}

		p := mustPartner(t, s, o.ID, nil)
		ev := newInboundEvent(p, "order-1", "invoice.paid", base.Add(2*time.Second))
		accepted := inboundAudit(p, ev, 202)
		mustAccept(t, s, ev, accepted, inboundAudit(p, ev, 200))
		later := newAudit(o.ID, "endpoint.delete", "key_1", base.Add(3*time.Second))
		mustAppendAudit(t, s, later)
		want = append(copyAudit([]*hookd.AuditRecord{later, accepted}), want...)
		if diff := cmp.Diff(want, allAudit(t, s, hookd.AuditFilter{})); diff != "" {
			t.Errorf("ListAudit after further appends (-want +got):\n%s", diff)
		}
	}},
	{"AssignsMissingIDs", func(t *testing.T, s hookd.Store) {
		// httpapi appends records without an id and relies on the store to give each one.
		o := mustOrg(t, s)
		mustEndpoint(t, s, o.ID, nil)
		p := mustPartner(t, s, o.ID, nil)
		rec := newAudit(o.ID, "endpoint.create", "key_1", base)
		rec.ID = ""
		one, two := *rec, *rec
		two.Time = base.Add(time.Second)
		mustAppendAudit(t, s, &one, &two)
		three := *rec
		three.Time = base.Add(2 * time.Second)
		mustAppendAudit(t, s, &three)
		ev := newInboundEvent(p, "order-1", "invoice.paid", base.Add(3*time.Second))
		for i := range 2 {
			accepted, duplicate := inboundAudit(p, ev, 202), inboundAudit(p, ev, 200)
			accepted.ID, duplicate.ID = "", ""
			accepted.Time, duplicate.Time = ev.CreatedAt.Add(time.Duration(i)*time.Second), ev.CreatedAt.Add(time.Duration(i)*time.Second)
			mustAccept(t, s, ev, accepted, duplicate)
		}

		got := allAudit(t, s, hookd.AuditFilter{})
		if len(got) != 5 {
			t.Fatalf("ListAudit returned %d records, want 5", len(got))
		}
		seen := map[string]bool{}
		for _, r := range got {
			if r.ID == "" || seen[r.ID] {
				t.Errorf("record %+v: id empty or not unique", r)
			}
			seen[r.ID] = true
		}
		wantStatus := []int{200, 202, 201, 201, 201}
		var gotStatus []int
		for _, r := range got {
			gotStatus = append(gotStatus, r.Status)
		}
		if diff := cmp.Diff(wantStatus, gotStatus); diff != "" {
			t.Errorf("statuses of the records, newest first (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(&three, got[2], cmpopts.IgnoreFields(hookd.AuditRecord{}, "ID")); diff != "" {
			t.Errorf("record appended without an id (-want +got):\n%s", diff)
		}
	}},
	{"InvalidCursor", func(t *testing.T, s hookd.Store) {
		for _, cursor := range []string{"not a cursor!", "%%%"} {
			_, _, err := s.ListAudit(t.Context(), hookd.AuditFilter{Page: hookd.Page{Limit: 10, Cursor: cursor}})
			wantCode(t, err, hookd.EINVALID, "ListAudit(cursor "+cursor+")")
		}
	}},
}
