package postgres

import (
	"bytes"
	"testing"
	"time"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/ids"
	"github.com/hookd/hookd/internal/pgtest"
	"github.com/hookd/hookd/secret"
)

// TestDeleteEndpointInChunks: an endpoint's deliveries and attempts are deleted
// a chunk per transaction before the endpoint itself, so that publishes that
// fan out to it do not wait for the whole deletion; the endpoint keeps working
// until the end, and what it got meanwhile goes with it. Another endpoint's log
// is untouched.
func TestDeleteEndpointInChunks(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	sealer, err := secret.NewSealer(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	const chunk, events = 10, 95
	db, err := Open(ctx, Config{URL: pgtest.URL(t), Sealer: sealer, DeleteChunk: chunk})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	now := time.Now().Truncate(time.Microsecond)
	org := &hookd.Organization{ID: ids.New("org"), Name: "Acme", CreatedAt: now}
	if err := db.CreateOrganization(ctx, org); err != nil {
		t.Fatal(err)
	}
	gone := addEndpoint(t, db, org, hookd.OrderingUnordered, now)
	kept := addEndpoint(t, db, org, hookd.OrderingUnordered, now)
	publish := func(at time.Time) {
		t.Helper()
		ev := &hookd.Event{ID: ids.NewAt("evt", at), OrgID: org.ID, Type: "invoice.paid", Data: []byte(`{}`), CreatedAt: at}
		if _, err := db.Publish(ctx, []*hookd.Event{ev}); err != nil {
			t.Fatalf("Publish: %v", err)
		}
	}
	for i := range events {
		publish(now.Add(time.Duration(i) * time.Microsecond))
	}
	// Half of them attempted, so that there are attempts to delete too.
	cs, err := db.ClaimDeliveries(ctx, hookd.ClaimParams{Owner: "test", Limit: events, PerEndpoint: 50, Now: now.Add(time.Second), Lease: time.Minute})
	if err != nil || len(cs) != events {
		t.Fatalf("ClaimDeliveries = %d claims, %v; want %d", len(cs), err, events)
	}
	var outcomes []hookd.Outcome
	for _, c := range cs {
		outcomes = append(outcomes, hookd.Outcome{DeliveryID: c.Delivery.ID, Lease: c.Lease, Status: hookd.DeliverySucceeded,
			Attempt: hookd.Attempt{ID: ids.New("att"), DeliveryID: c.Delivery.ID, OrgID: org.ID, Number: 1,
				URL: c.Endpoint.URL, StatusCode: 204, CreatedAt: now.Add(time.Second)}})
	}
	if err := db.CompleteDeliveries(ctx, outcomes); err != nil {
		t.Fatal(err)
	}
	count := func(q string, args ...any) int {
		t.Helper()
		var n int
		if err := db.pool.QueryRow(ctx, q, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	deliveriesOf := func(ep *hookd.Endpoint) int {
		return count(`SELECT count(*) FROM deliveries WHERE endpoint_id = $1`, ep.ID)
	}
	attemptsOf := func(ep *hookd.Endpoint) int {
		return count(`SELECT count(*) FROM attempts a JOIN deliveries d ON d.seq = a.delivery_seq WHERE d.endpoint_id = $1`, ep.ID)
	}
	if a, b := attemptsOf(gone), attemptsOf(kept); a == 0 || b == 0 || a+b != events {
		t.Fatalf("attempts before the deletion: %d and %d, want %d in all", a, b, events)
	}

	chunks := 0
	db.deleted = func() {
		chunks++
		want := events - chunks*chunk
		if chunks > 1 {
			want++ // the event published after the first chunk
		}
		if left := deliveriesOf(gone); left != want {
			t.Errorf("after chunk %d: %d deliveries left, want %d", chunks, left, want)
		}
		if chunks == 1 {
			// Between chunks, publishes go through, and the endpoint still
			// exists: it gets this event too.
			if _, err := db.Endpoint(ctx, org.ID, gone.ID); err != nil {
				t.Errorf("Endpoint during the deletion: %v", err)
			}
			publish(now.Add(time.Hour))
		}
	}
	if err := db.DeleteEndpoint(ctx, org.ID, gone.ID); err != nil {
		t.Fatalf("DeleteEndpoint: %v", err)
	}
	if want := (events + 1) / chunk; chunks != want {
		t.Errorf("DeleteEndpoint deleted %d full chunks, want %d (%d deliveries, %d a chunk)", chunks, want, events+1, chunk)
	}
	if _, err := db.Endpoint(ctx, org.ID, gone.ID); hookd.ErrorCode(err) != hookd.ENOTFOUND {
		t.Errorf("Endpoint after DeleteEndpoint = %v, want not found", err)
	}
	if n := deliveriesOf(gone); n != 0 {
		t.Errorf("%d deliveries of the deleted endpoint left", n)
	}
	if n := count(`SELECT count(*) FROM attempts a WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.seq = a.delivery_seq)`); n != 0 {
		t.Errorf("%d attempts of deleted deliveries left", n)
	}
	if n := deliveriesOf(kept); n != events+1 {
		t.Errorf("the other endpoint has %d deliveries, want %d", n, events+1)
	}
	if a := attemptsOf(kept); a == 0 {
		t.Error("the other endpoint's attempts were deleted")
	}
}
