package storetest

import (
	"testing"
	"time"

	"github.com/hookd/hookd"
)

// DeleteInChunks checks a store that deletes an endpoint's deliveries (and
// their attempts) chunk at a time, each chunk a transaction of its own, before
// the endpoint: other writes go through between the chunks, the endpoint keeps
// working until the end and what it got meanwhile goes with it, and another
// endpoint's log is untouched. s deletes chunk deliveries per transaction and
// calls the function given to onChunk after each full chunk, while more may
// remain; orphans counts the attempts whose delivery is gone.
func DeleteInChunks(t *testing.T, s hookd.Store, chunk int, onChunk func(func()), orphans func() int) {
	t.Helper()
	events := 9*chunk + chunk/2
	o := mustOrg(t, s)
	gone, kept := mustEndpoint(t, s, o.ID, nil), mustEndpoint(t, s, o.ID, nil)
	for i := range events {
		mustPublishOne(t, s, o.ID, "invoice.paid", base.Add(time.Duration(i)*time.Microsecond))
	}
	// About half of them attempted, so that there are attempts to delete too.
	cs := mustClaimParams(t, s, hookd.ClaimParams{Now: base.Add(time.Second), Limit: events, PerEndpoint: events/2 + 1})
	if len(cs) != events {
		t.Fatalf("ClaimDeliveries = %d claims, want %d", len(cs), events)
	}
	var outcomes []hookd.Outcome
	for _, c := range cs {
		outcomes = append(outcomes, outcome(c, hookd.DeliverySucceeded, base.Add(time.Second)))
	}
	mustComplete(t, s, outcomes...)
	deliveriesOf := func(ep *hookd.Endpoint) []*hookd.Delivery {
		t.Helper()
		return allDeliveries(t, s, hookd.DeliveryFilter{OrgID: o.ID, EndpointID: ep.ID})
	}
	attempted := func(ep *hookd.Endpoint) (n int) {
		t.Helper()
		for _, d := range deliveriesOf(ep) {
			n += d.Attempts
		}
		return n
	}
	if a, b := attempted(gone), attempted(kept); a == 0 || b == 0 || a+b != events {
		t.Fatalf("attempts before the deletion: %d and %d, want %d in all", a, b, events)
	}

	chunks := 0
	onChunk(func() {
		chunks++
		want := events - chunks*chunk
		if chunks > 1 {
			want++ // the event published after the first chunk
		}
		if left := len(deliveriesOf(gone)); left != want {
			t.Errorf("after chunk %d: %d deliveries left, want %d", chunks, left, want)
		}
		if chunks == 1 {
			// Between chunks, other writes go through, and the endpoint still
			// exists: it gets this event too.
			if _, err := s.Endpoint(t.Context(), o.ID, gone.ID); err != nil {
				t.Errorf("Endpoint during the deletion: %v", err)
			}
			mustPublishOne(t, s, o.ID, "invoice.paid", base.Add(time.Hour))
		}
	})
	if err := s.DeleteEndpoint(t.Context(), o.ID, gone.ID); err != nil {
		t.Fatalf("DeleteEndpoint: %v", err)
	}
	if want := (events + 1) / chunk; chunks != want {
		t.Errorf("DeleteEndpoint deleted %d full chunks, want %d (%d deliveries, %d a chunk)", chunks, want, events+1, chunk)
	}
	_, err := s.Endpoint(t.Context(), o.ID, gone.ID)
	wantCode(t, err, hookd.ENOTFOUND, "Endpoint after DeleteEndpoint")
	if n := len(deliveriesOf(gone)); n != 0 {
		t.Errorf("%d deliveries of the deleted endpoint left", n)
	}
	if n := orphans(); n != 0 {
		t.Errorf("%d attempts of deleted deliveries left", n)
	}
	left := deliveriesOf(kept)
	if len(left) != events+1 {
		t.Errorf("the other endpoint has %d deliveries, want %d", len(left), events+1)
	}
	var as int
	for _, d := range left {
		if d.Attempts > 0 {
			_, got := mustDelivery(t, s, d.ID)
			as += len(got)
		}
	}
	if as == 0 {
		t.Error("the other endpoint's attempts were deleted")
	}
}
