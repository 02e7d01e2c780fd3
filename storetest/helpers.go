package storetest

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/ids"
)

// base is the suite's fixed "now", truncated to the microsecond as stores keep it.
var base = time.Date(2025, time.March, 4, 5, 6, 7, 123456000, time.UTC)

// lease is the lease every claim of the suite takes unless a case says otherwise.
const lease = time.Minute

// equateEmpty treats nil and empty maps and slices alike: a store may read back an
// empty header map as nil or the other way round.
var equateEmpty = cmpopts.EquateEmpty()

// ignoreDeliveryTimes ignores the times of a delivery that a case does not control.
var ignoreDeliveryTimes = cmpopts.IgnoreFields(hookd.Delivery{}, "NextAttemptAt", "UpdatedAt")

// wantCode fails t unless err carries the hookd error code want.
func wantCode(t *testing.T, err error, want, what string) {
	t.Helper()
	if got := hookd.ErrorCode(err); got != want {
		t.Fatalf("%s: error %v (code %q), want code %q", what, err, got, want)
	}
}

// mustOrg creates a new organization.
func mustOrg(t *testing.T, s hookd.Store) *hookd.Organization {
	t.Helper()
	o := &hookd.Organization{ID: ids.New("org"), Name: "Acme", MonthlyQuota: 1000, CreatedAt: base}
	if err := s.CreateOrganization(t.Context(), o); err != nil {
		t.Fatalf("CreateOrganization: %v", err)
	}
	return o
}

// newEndpoint returns an enabled endpoint of org subscribed to every event, with a
// secret, changed by mutate if it is not nil. It does not store it.
func newEndpoint(org string, mutate func(*hookd.Endpoint)) *hookd.Endpoint {
	id := ids.New("ep")
	e := &hookd.Endpoint{
		ID:              id,
		OrgID:           org,
		URL:             "https://receiver.example.com/hooks/" + id,
		Events:          []string{"*"},
		Enabled:         true,
		SignatureScheme: "standard-webhooks",
		Payload:         hookd.PayloadEnvelope,
		Ordering:        hookd.OrderingUnordered,
		Secret:          "whsec_c2VjcmV0LW9mLQ" + id,
		CreatedAt:       base,
		UpdatedAt:       base,
	}
	if mutate != nil {
		mutate(e)
	}
	return e
}

// mustEndpoint creates an endpoint of org; see newEndpoint.
func mustEndpoint(t *testing.T, s hookd.Store, org string, mutate func(*hookd.Endpoint)) *hookd.Endpoint {
	t.Helper()
	e := newEndpoint(org, mutate)
	if err := s.CreateEndpoint(t.Context(), e); err != nil {
		t.Fatalf("CreateEndpoint: %v", err)
	}
	return e
}

// subscribed returns a mutate function for mustEndpoint that sets the patterns.
func subscribed(patterns ...string) func(*hookd.Endpoint) {
	return func(e *hookd.Endpoint) { e.Events = patterns }
}

// newEvent returns an event of org with a fresh id, created at at.
func newEvent(org, typ string, at time.Time) *hookd.Event {
	id := ids.New("evt")
	return &hookd.Event{
		ID:        id,
		OrgID:     org,
		Type:      typ,
		Data:      json.RawMessage(fmt.Sprintf(`{"event":%q,"amount":42}`, id)),
		CreatedAt: at,
	}
}

// mustPublish publishes evs in one batch.
func mustPublish(t *testing.T, s hookd.Store, evs ...*hookd.Event) []hookd.PublishResult {
	t.Helper()
	res, err := s.Publish(t.Context(), evs)
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if len(res) != len(evs) {
		t.Fatalf("Publish returned %d results for %d events", len(res), len(evs))
	}
	return res
}

// mustPublishOne publishes an event of the given type at at and returns it with its
// deliveries, by endpoint id.
func mustPublishOne(t *testing.T, s hookd.Store, org, typ string, at time.Time) (*hookd.Event, map[string]*hookd.Delivery) {
	t.Helper()
	ev := newEvent(org, typ, at)
	mustPublish(t, s, ev)
	return ev, deliveriesOf(t, s, ev)
}

// deliveriesOf returns the deliveries of ev by endpoint id.
func deliveriesOf(t *testing.T, s hookd.Store, ev *hookd.Event) map[string]*hookd.Delivery {
	t.Helper()
	_, ds, err := s.Event(t.Context(), ev.OrgID, ev.ID)
	if err != nil {
		t.Fatalf("Event(%s): %v", ev.ID, err)
	}
	m := map[string]*hookd.Delivery{}
	for _, d := range ds {
		if m[d.EndpointID] != nil {
			t.Fatalf("event %s has two deliveries to endpoint %s", ev.ID, d.EndpointID)
		}
		m[d.EndpointID] = d
	}
	return m
}

// mustDelivery returns a delivery and its attempts, as the admin sees them.
func mustDelivery(t *testing.T, s hookd.Store, id string) (*hookd.Delivery, []*hookd.Attempt) {
	t.Helper()
	d, as, err := s.Delivery(t.Context(), "", id)
	if err != nil {
		t.Fatalf("Delivery(%s): %v", id, err)
	}
	return d, as
}

// mustClaim claims up to 100 deliveries at now with the suite's lease.
func mustClaim(t *testing.T, s hookd.Store, now time.Time) []*hookd.Claim {
	t.Helper()
	return mustClaimParams(t, s, hookd.ClaimParams{Now: now})
}

// mustClaimParams claims with p, defaulting Owner, Limit (100) and Lease.
func mustClaimParams(t *testing.T, s hookd.Store, p hookd.ClaimParams) []*hookd.Claim {
	t.Helper()
	if p.Owner == "" {
		p.Owner = "storetest"
	}
	if p.Limit == 0 {
		p.Limit = 100
	}
	if p.Lease == 0 {
		p.Lease = lease
	}
	cs, err := s.ClaimDeliveries(t.Context(), p)
	if err != nil {
		t.Fatalf("ClaimDeliveries(Now=%v): %v", p.Now, err)
	}
	for _, c := range cs {
		if c.Lease == "" {
			t.Fatalf("claim of delivery %s has no lease", c.Delivery.ID)
		}
	}
	return cs
}

// claimedIDs returns the sorted delivery ids of cs.
func claimedIDs(cs []*hookd.Claim) []string {
	out := []string{}
	for _, c := range cs {
		out = append(out, c.Delivery.ID)
	}
	slices.Sort(out)
	return out
}

// sortedIDs returns the delivery ids of ds, sorted.
func sortedIDs(ds ...*hookd.Delivery) []string {
	out := []string{}
	for _, d := range ds {
		out = append(out, d.ID)
	}
	slices.Sort(out)
	return out
}

// wantClaimed fails t unless cs claim exactly the deliveries want.
func wantClaimed(t *testing.T, cs []*hookd.Claim, what string, want ...*hookd.Delivery) {
	t.Helper()
	if diff := cmp.Diff(sortedIDs(want...), claimedIDs(cs)); diff != "" {
		t.Fatalf("%s: claimed deliveries (-want +got):\n%s", what, diff)
	}
}

// claimOf returns the claim of delivery id in cs, failing t if there is none.
func claimOf(t *testing.T, cs []*hookd.Claim, id string) *hookd.Claim {
	t.Helper()
	for _, c := range cs {
		if c.Delivery.ID == id {
			return c
		}
	}
	t.Fatalf("delivery %s was not claimed; claimed %v", id, claimedIDs(cs))
	return nil
}

// outcome returns the outcome of one attempt made for c at at with the given new
// status; NextAttemptAt is set for DeliveryPending.
func outcome(c *hookd.Claim, status string, at time.Time) hookd.Outcome {
	code, errText := 200, ""
	switch status {
	case hookd.DeliveryPending:
		code, errText = 503, "503 Service Unavailable"
	case hookd.DeliveryFailed:
		code, errText = 500, "500 Internal Server Error"
	}
	o := hookd.Outcome{
		DeliveryID: c.Delivery.ID,
		Lease:      c.Lease,
		Status:     status,
		Attempt: hookd.Attempt{
			ID:             ids.New("att"),
			DeliveryID:     c.Delivery.ID,
			OrgID:          c.Delivery.OrgID,
			Number:         c.Delivery.Attempts + 1,
			URL:            c.Endpoint.URL,
			RequestHeaders: map[string]string{"Webhook-Id": c.Event.ID, "Webhook-Signature": "v1,***"},
			StatusCode:     code,
			ResponseBody:   fmt.Sprintf(`{"answer":%d}`, code),
			Duration:       1234 * time.Millisecond,
			Error:          errText,
			CreatedAt:      at,
		},
	}
	if status == hookd.DeliveryPending {
		o.NextAttemptAt = at.Add(5 * time.Minute)
	}
	return o
}

// mustComplete reports outcomes.
func mustComplete(t *testing.T, s hookd.Store, outcomes ...hookd.Outcome) {
	t.Helper()
	if err := s.CompleteDeliveries(t.Context(), outcomes); err != nil {
		t.Fatalf("CompleteDeliveries: %v", err)
	}
}

// settle claims d at now and completes it with status, so that it ends up
// succeeded, failed or pending (due five minutes after now). The other deliveries
// claimed on the way are released, due again as they were.
func settle(t *testing.T, s hookd.Store, d *hookd.Delivery, status string, now time.Time) {
	t.Helper()
	cs := mustClaimParams(t, s, hookd.ClaimParams{Now: now, Limit: 1000})
	c := claimOf(t, cs, d.ID)
	var rs []hookd.Release
	for _, o := range cs {
		if o != c {
			rs = append(rs, hookd.Release{DeliveryID: o.Delivery.ID, Lease: o.Lease, NextAttemptAt: o.Delivery.NextAttemptAt})
		}
	}
	if len(rs) > 0 {
		if err := s.ReleaseDeliveries(t.Context(), rs); err != nil {
			t.Fatalf("ReleaseDeliveries: %v", err)
		}
	}
	mustComplete(t, s, outcome(c, status, now))
}

// allEvents lists every event matching f, following cursors.
func allEvents(t *testing.T, s hookd.Store, f hookd.EventFilter) []*hookd.Event {
	t.Helper()
	var out []*hookd.Event
	for i := 0; ; i++ {
		page, next, err := s.ListEvents(t.Context(), f)
		if err != nil {
			t.Fatalf("ListEvents(%+v): %v", f, err)
		}
		out = append(out, page...)
		if next == "" {
			return out
		}
		if i > 1000 {
			t.Fatalf("ListEvents: no end after %d pages", i)
		}
		f.Cursor = next
	}
}

// allDeliveries lists every delivery matching f, following cursors.
func allDeliveries(t *testing.T, s hookd.Store, f hookd.DeliveryFilter) []*hookd.Delivery {
	t.Helper()
	var out []*hookd.Delivery
	for i := 0; ; i++ {
		page, next, err := s.ListDeliveries(t.Context(), f)
		if err != nil {
			t.Fatalf("ListDeliveries(%+v): %v", f, err)
		}
		out = append(out, page...)
		if next == "" {
			return out
		}
		if i > 1000 {
			t.Fatalf("ListDeliveries: no end after %d pages", i)
		}
		f.Cursor = next
	}
}

// eventIDs returns the ids of evs in order.
func eventIDs(evs []*hookd.Event) []string {
	out := []string{}
	for _, ev := range evs {
		out = append(out, ev.ID)
	}
	return out
}

// deliveryIDs returns the ids of ds in order.
func deliveryIDs(ds []*hookd.Delivery) []string {
	out := []string{}
	for _, d := range ds {
		out = append(out, d.ID)
	}
	return out
}
