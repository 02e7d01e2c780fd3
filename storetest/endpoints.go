package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hookd/hookd"
)

// fullEndpoint sets every field of an endpoint to a non-zero value.
func fullEndpoint(e *hookd.Endpoint) {
	e.Events = []string{"invoice.paid", "workflow.item.*"}
	e.Description = "billing sync"
	e.Enabled = false
	e.DisabledReason = "410 Gone"
	e.Headers = map[string]string{"X-Team": "billing", "X-Env": "prod"}
	e.SignatureScheme = "hmac-sha256"
	e.SignatureHeader = "X-Signature"
	e.Payload = hookd.PayloadRaw
	e.Retry = hookd.RetryPolicy{MaxAttempts: 7, InitialInterval: 2500 * time.Millisecond, MaxInterval: 2 * time.Hour}
	e.RateLimit = 12.5
	e.MaxInFlight = 3
	e.Ordering = hookd.OrderingFIFO
	e.Secret = "whsec_bmV3LXNlY3JldC1mb3ItdGVzdHM="
	e.PreviousSecret = "whsec_b2xkLXNlY3JldC1mb3ItdGVzdHM="
	e.PreviousSecretExpires = base.Add(24 * time.Hour)
	e.CreatedAt = base.Add(-time.Hour)
	e.UpdatedAt = base.Add(-time.Minute)
}

// mustGetEndpoint returns the endpoint as the admin sees it.
func mustGetEndpoint(t *testing.T, s hookd.Store, id string) *hookd.Endpoint {
	t.Helper()
	e, err := s.Endpoint(t.Context(), "", id)
	if err != nil {
		t.Fatalf("Endpoint(%s): %v", id, err)
	}
	return e
}

// allEndpoints lists every endpoint matching f, following cursors, and checks that
// no page is longer than the limit.
func allEndpoints(t *testing.T, s hookd.Store, f hookd.EndpointFilter) ([]*hookd.Endpoint, int) {
	t.Helper()
	var out []*hookd.Endpoint
	pages := 0
	for {
		page, next, err := s.ListEndpoints(t.Context(), f)
		if err != nil {
			t.Fatalf("ListEndpoints(%+v): %v", f, err)
		}
		pages++
		if f.Limit > 0 && len(page) > f.Limit {
			t.Fatalf("ListEndpoints(limit %d) returned %d endpoints", f.Limit, len(page))
		}
		out = append(out, page...)
		if next == "" {
			return out, pages
		}
		if pages > 1000 {
			t.Fatalf("ListEndpoints: no end after %d pages", pages)
		}
		f.Cursor = next
	}
}

func endpointIDs(es []*hookd.Endpoint) []string {
	out := []string{}
	for _, e := range es {
		out = append(out, e.ID)
	}
	return out
}

var endpointTests = []test{
	{"CreateAndGetEveryField", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		for _, tc := range []struct {
			name   string
			mutate func(*hookd.Endpoint)
		}{
			{"minimal", nil},
			{"full", fullEndpoint},
		} {
			want := mustEndpoint(t, s, o.ID, tc.mutate)
			for _, org := range []string{o.ID, ""} {
				got, err := s.Endpoint(t.Context(), org, want.ID)
				if err != nil {
					t.Fatalf("%s: Endpoint(%q, id): %v", tc.name, org, err)
				}
				if diff := cmp.Diff(want, got, equateEmpty); diff != "" {
					t.Errorf("%s: Endpoint(%q, id) (-want +got):\n%s", tc.name, org, diff)
				}
			}
		}
	}},
	{"CreateForUnknownOrganization", func(t *testing.T, s hookd.Store) {
		e := newEndpoint("no-such-org", nil)
		wantCode(t, s.CreateEndpoint(t.Context(), e), hookd.ENOTFOUND, "CreateEndpoint for an unknown organization")
		_, err := s.Endpoint(t.Context(), "", e.ID)
		wantCode(t, err, hookd.ENOTFOUND, "Endpoint of the rejected endpoint")
	}},
	{"GetOtherOrganization", func(t *testing.T, s hookd.Store) {
		o, other := mustOrg(t, s), mustOrg(t, s)
		e := mustEndpoint(t, s, o.ID, nil)
		_, err := s.Endpoint(t.Context(), other.ID, e.ID)
		wantCode(t, err, hookd.ENOTFOUND, "Endpoint with another organization")
		_, err = s.Endpoint(t.Context(), o.ID, "ep_unknown")
		wantCode(t, err, hookd.ENOTFOUND, "Endpoint(unknown id)")
		if _, err := s.Endpoint(t.Context(), "", e.ID); err != nil {
			t.Errorf("Endpoint as admin: %v", err)
		}
	}},
	{"ListPagination", func(t *testing.T, s hookd.Store) {
		o, other := mustOrg(t, s), mustOrg(t, s)
		var mine, all []string
		for i := range 7 {
			e := mustEndpoint(t, s, o.ID, nil)
			mine, all = append(mine, e.ID), append(all, e.ID)
			if i%3 == 0 {
				all = append(all, mustEndpoint(t, s, other.ID, nil).ID)
			}
		}
		for _, tc := range []struct {
			org       string
			limit     int
			want      []string
			wantPages int
		}{
			{o.ID, 3, mine, 3},
			{o.ID, 7, mine, 1},
			{o.ID, 1, mine, 7},
			{o.ID, 0, mine, 1}, // the default limit
			{o.ID, 500, mine, 1},
			{"", 4, all, 3},
			{"", 0, all, 1},
			{"org_none", 2, nil, 1},
		} {
			got, pages := allEndpoints(t, s, hookd.EndpointFilter{OrgID: tc.org, Page: hookd.Page{Limit: tc.limit}})
			// Oldest first: the order of creation, each endpoint exactly once.
			if diff := cmp.Diff(tc.want, endpointIDs(got), equateEmpty); diff != "" {
				t.Errorf("ListEndpoints(org %q, limit %d) ids (-want +got):\n%s", tc.org, tc.limit, diff)
			}
			if pages != tc.wantPages {
				t.Errorf("ListEndpoints(org %q, limit %d) took %d pages, want %d", tc.org, tc.limit, pages, tc.wantPages)
			}
		}
	}},
	{"ListReturnsEveryField", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		want := mustEndpoint(t, s, o.ID, fullEndpoint)
		got, _ := allEndpoints(t, s, hookd.EndpointFilter{OrgID: o.ID})
		if diff := cmp.Diff([]*hookd.Endpoint{want}, got, equateEmpty); diff != "" {
			t.Errorf("ListEndpoints (-want +got):\n%s", diff)
		}
	}},
	{"Update", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		e := mustEndpoint(t, s, o.ID, nil)
		want := newEndpoint(o.ID, fullEndpoint)
		want.ID, want.CreatedAt = e.ID, e.CreatedAt
		got, err := s.UpdateEndpoint(t.Context(), o.ID, e.ID, func(cur *hookd.Endpoint) error {
			if diff := cmp.Diff(e, cur, equateEmpty); diff != "" {
				t.Errorf("fn got (-want +got):\n%s", diff)
			}
			*cur = *want
			cur.Events = append([]string(nil), want.Events...)
			cur.Headers = map[string]string{"X-Team": "billing", "X-Env": "prod"}
			return nil
		})
		if err != nil {
			t.Fatalf("UpdateEndpoint: %v", err)
		}
		if diff := cmp.Diff(want, got, equateEmpty); diff != "" {
			t.Errorf("UpdateEndpoint returned (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(want, mustGetEndpoint(t, s, e.ID), equateEmpty); diff != "" {
			t.Errorf("Endpoint after UpdateEndpoint (-want +got):\n%s", diff)
		}

		// Ending the rotation clears the previous secret; the admin may update too.
		want.PreviousSecret, want.PreviousSecretExpires, want.Enabled, want.DisabledReason = "", time.Time{}, true, ""
		want.Headers = nil
		if _, err := s.UpdateEndpoint(t.Context(), "", e.ID, func(cur *hookd.Endpoint) error {
			cur.PreviousSecret, cur.PreviousSecretExpires, cur.Enabled, cur.DisabledReason = "", time.Time{}, true, ""
			cur.Headers = nil
			return nil
		}); err != nil {
			t.Fatalf("UpdateEndpoint as admin: %v", err)
		}
		if diff := cmp.Diff(want, mustGetEndpoint(t, s, e.ID), equateEmpty); diff != "" {
			t.Errorf("Endpoint after the second UpdateEndpoint (-want +got):\n%s", diff)
		}
	}},
	{"UpdateFnError", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		e := mustEndpoint(t, s, o.ID, nil)
		for _, fnErr := range []error{
			errors.New("plain failure"),
			hookd.FieldError("url", "is not allowed"),
		} {
			_, err := s.UpdateEndpoint(t.Context(), o.ID, e.ID, func(cur *hookd.Endpoint) error {
				cur.URL = "https://changed.example.com/"
				cur.Enabled = false
				cur.Secret = "whsec_Y2hhbmdlZA=="
				return fnErr
			})
			if !errors.Is(err, fnErr) {
				t.Errorf("UpdateEndpoint with fn failing with %v: error %v, want fn's error", fnErr, err)
			}
			if got, want := hookd.ErrorCode(err), hookd.ErrorCode(fnErr); got != want {
				t.Errorf("UpdateEndpoint with fn failing with %v: code %q, want %q", fnErr, got, want)
			}
			if diff := cmp.Diff(e, mustGetEndpoint(t, s, e.ID), equateEmpty); diff != "" {
				t.Errorf("Endpoint after a failed update (-want +got):\n%s", diff)
			}
		}
	}},
	{"UpdateNotFound", func(t *testing.T, s hookd.Store) {
		o, other := mustOrg(t, s), mustOrg(t, s)
		e := mustEndpoint(t, s, o.ID, nil)
		for _, tc := range []struct{ org, id string }{{other.ID, e.ID}, {o.ID, "ep_unknown"}, {"", "ep_unknown"}} {
			called := false
			_, err := s.UpdateEndpoint(t.Context(), tc.org, tc.id, func(cur *hookd.Endpoint) error {
				called = true
				cur.URL = "https://changed.example.com/"
				return nil
			})
			wantCode(t, err, hookd.ENOTFOUND, "UpdateEndpoint("+tc.org+", "+tc.id+")")
			if called {
				t.Errorf("UpdateEndpoint(%q, %q) called fn", tc.org, tc.id)
			}
		}
		if diff := cmp.Diff(e, mustGetEndpoint(t, s, e.ID), equateEmpty); diff != "" {
			t.Errorf("Endpoint after UpdateEndpoint by another organization (-want +got):\n%s", diff)
		}
	}},
	{"Delete", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		gone := mustEndpoint(t, s, o.ID, nil)
		kept := mustEndpoint(t, s, o.ID, nil)
		ev, ds := mustPublishOne(t, s, o.ID, "invoice.paid", base)
		settle(t, s, ds[gone.ID], hookd.DeliveryFailed, base) // with an attempt

		if err := s.DeleteEndpoint(t.Context(), o.ID, gone.ID); err != nil {
			t.Fatalf("DeleteEndpoint: %v", err)
		}
		_, err := s.Endpoint(t.Context(), "", gone.ID)
		wantCode(t, err, hookd.ENOTFOUND, "Endpoint after DeleteEndpoint")
		_, _, err = s.Delivery(t.Context(), "", ds[gone.ID].ID)
		wantCode(t, err, hookd.ENOTFOUND, "Delivery of a deleted endpoint")
		if got := allDeliveries(t, s, hookd.DeliveryFilter{EndpointID: gone.ID}); len(got) != 0 {
			t.Errorf("ListDeliveries of a deleted endpoint = %v, want none", deliveryIDs(got))
		}
		if diff := cmp.Diff([]string{ds[kept.ID].ID}, deliveryIDs(allDeliveries(t, s, hookd.DeliveryFilter{OrgID: o.ID}))); diff != "" {
			t.Errorf("ListDeliveries after DeleteEndpoint (-want +got):\n%s", diff)
		}
		left := deliveriesOf(t, s, ev)
		if len(left) != 1 || left[kept.ID] == nil {
			t.Errorf("event's deliveries after DeleteEndpoint go to %v, want only %s", left, kept.ID)
		}
		if cs := mustClaim(t, s, base.Add(time.Hour)); len(cs) != 1 || cs[0].Delivery.EndpointID != kept.ID {
			t.Errorf("claimed %v after DeleteEndpoint, want only the delivery to %s", claimedIDs(cs), kept.ID)
		}
		wantCode(t, s.DeleteEndpoint(t.Context(), o.ID, gone.ID), hookd.ENOTFOUND, "DeleteEndpoint twice")

		// Events published afterwards do not go to the deleted endpoint.
		_, after := mustPublishOne(t, s, o.ID, "invoice.paid", base.Add(time.Second))
		if len(after) != 1 || after[kept.ID] == nil {
			t.Errorf("later event's deliveries go to %v, want only %s", after, kept.ID)
		}
	}},
	{"DeleteNotFound", func(t *testing.T, s hookd.Store) {
		o, other := mustOrg(t, s), mustOrg(t, s)
		e := mustEndpoint(t, s, o.ID, nil)
		_, ds := mustPublishOne(t, s, o.ID, "invoice.paid", base)
		wantCode(t, s.DeleteEndpoint(t.Context(), other.ID, e.ID), hookd.ENOTFOUND, "DeleteEndpoint with another organization")
		wantCode(t, s.DeleteEndpoint(t.Context(), "", "ep_unknown"), hookd.ENOTFOUND, "DeleteEndpoint(unknown)")
		if _, err := s.Endpoint(t.Context(), o.ID, e.ID); err != nil {
			t.Errorf("Endpoint after DeleteEndpoint by another organization: %v", err)
		}
		// Nothing of its log either (the stores delete an endpoint's
		// deliveries before the endpoint).
		if _, _, err := s.Delivery(t.Context(), o.ID, ds[e.ID].ID); err != nil {
			t.Errorf("Delivery after DeleteEndpoint by another organization: %v", err)
		}
		if err := s.DeleteEndpoint(t.Context(), "", e.ID); err != nil {
			t.Errorf("DeleteEndpoint as admin: %v", err)
		}
	}},
}
