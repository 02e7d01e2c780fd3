package sqlite

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/ids"
	"github.com/hookd/hookd/secret"
)

// TestReadAheadOfADeletedEndpoint: seqs read ahead for an endpoint that is
// then deleted may name other deliveries by the time a claim takes them
// (SQLite reuses the seqs of the last rows once they are deleted); a claim
// leases such a delivery only for the endpoint it belongs to, within that
// endpoint's max_in_flight.
func TestReadAheadOfADeletedEndpoint(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := secret.NewSealer(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	db, err := Open(ctx, Config{Path: filepath.Join(t.TempDir(), "hookd.db"), Sealer: s, DeleteChunk: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	now := time.Now().Truncate(time.Microsecond)
	o := &hookd.Organization{ID: ids.New("org"), Name: "Acme", CreatedAt: now}
	if err := db.CreateOrganization(ctx, o); err != nil {
		t.Fatal(err)
	}
	endpoint := func(typ string, maxInFlight int) *hookd.Endpoint {
		t.Helper()
		e := &hookd.Endpoint{ID: ids.New("ep"), OrgID: o.ID, URL: "https://receiver.example.com/", Events: []string{typ}, Enabled: true,
			SignatureScheme: "standard-webhooks", Payload: hookd.PayloadEnvelope, Ordering: hookd.OrderingUnordered,
			Secret: "whsec_QUJDREVGR0hJSktMTU5PUFFSU1RVVldY", MaxInFlight: maxInFlight, CreatedAt: now, UpdatedAt: now}
		if err := db.CreateEndpoint(ctx, e); err != nil {
			t.Fatal(err)
		}
		return e
	}
	gone, other := endpoint("one", 0), endpoint("two", 1)
	publish := func(typ string, n int) {
		t.Helper()
		for range n {
			ev := &hookd.Event{ID: ids.New("evt"), OrgID: o.ID, Type: typ, Data: json.RawMessage(`{}`), CreatedAt: now}
			if _, err := db.Publish(ctx, []*hookd.Event{ev}); err != nil {
				t.Fatal(err)
			}
		}
	}
	claim := func(p hookd.ClaimParams) []*hookd.Claim {
		t.Helper()
		p.Now, p.Lease = time.Now(), time.Hour
		cs, err := db.ClaimDeliveries(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		return cs
	}
	publish("one", 3)
	cs := claim(hookd.ClaimParams{Limit: 10, Caps: map[string]int{gone.ID: 1}})
	if len(cs) != 1 || len(db.due.ahead[gone.ID]) != 2 {
		t.Fatalf("%d claims, %d deliveries read ahead; want 1 and 2", len(cs), len(db.due.ahead[gone.ID]))
	}
	if err := db.CompleteDeliveries(ctx, []hookd.Outcome{{DeliveryID: cs[0].Delivery.ID, Lease: cs[0].Lease, Status: hookd.DeliverySucceeded,
		Attempt: hookd.Attempt{ID: ids.New("att"), Number: 1, URL: gone.URL, StatusCode: 200, CreatedAt: now}}}); err != nil {
		t.Fatal(err)
	}
	var got []*hookd.Claim
	db.deleted = func() { // after the first chunk: the endpoint's deliveries are gone, it is not yet
		db.deleted = nil
		publish("two", 3) // reuses the deleted deliveries' seqs
		publish("one", 1) // the endpoint still has pending work: its read-ahead is kept
		got = claim(hookd.ClaimParams{Limit: 10})
	}
	if err := db.DeleteEndpoint(ctx, o.ID, gone.ID); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range got {
		if c.Endpoint.ID == other.ID {
			n++
		}
	}
	if n > 1 {
		t.Errorf("%d deliveries of an endpoint with max_in_flight 1 claimed at once", n)
	}
	if live := db.leases.live(us(time.Now()))[other.ID]; len(live) != n {
		t.Errorf("%d leases held for the endpoint, %d of its deliveries claimed", len(live), n)
	}
}

// TestOutcomeOfADeliveryWhoseSeqWasReused: a delivery deleted with its endpoint
// while its attempt runs may see its seq taken by a new delivery (SQLite
// reuses the seqs of the last rows); the attempt's outcome then changes
// nothing (the call succeeds), leaves the new delivery as it was, and ends the
// old lease, so that the new delivery can be claimed.
func TestOutcomeOfADeliveryWhoseSeqWasReused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := secret.NewSealer(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	db, err := Open(ctx, Config{Path: filepath.Join(t.TempDir(), "hookd.db"), Sealer: s})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	now := time.Now().Truncate(time.Microsecond)
	o := &hookd.Organization{ID: ids.New("org"), Name: "Acme", CreatedAt: now}
	if err := db.CreateOrganization(ctx, o); err != nil {
		t.Fatal(err)
	}
	endpoint := func() *hookd.Endpoint {
		t.Helper()
		e := &hookd.Endpoint{ID: ids.New("ep"), OrgID: o.ID, URL: "https://receiver.example.com/", Events: []string{"*"}, Enabled: true,
			SignatureScheme: "standard-webhooks", Payload: hookd.PayloadEnvelope, Ordering: hookd.OrderingUnordered,
			Secret: "whsec_QUJDREVGR0hJSktMTU5PUFFSU1RVVldY", CreatedAt: now, UpdatedAt: now}
		if err := db.CreateEndpoint(ctx, e); err != nil {
			t.Fatal(err)
		}
		return e
	}
	publish := func() {
		t.Helper()
		ev := &hookd.Event{ID: ids.New("evt"), OrgID: o.ID, Type: "a.b", Data: json.RawMessage(`{}`), CreatedAt: now}
		if _, err := db.Publish(ctx, []*hookd.Event{ev}); err != nil {
			t.Fatal(err)
		}
	}
	claim := func() []*hookd.Claim {
		t.Helper()
		cs, err := db.ClaimDeliveries(ctx, hookd.ClaimParams{Limit: 10, Now: time.Now(), Lease: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		return cs
	}
	gone := endpoint()
	publish()
	old := claim()
	if len(old) != 1 {
		t.Fatalf("%d claims, want 1", len(old))
	}
	if err := db.DeleteEndpoint(ctx, o.ID, gone.ID); err != nil {
		t.Fatal(err)
	}
	endpoint()
	publish()
	var seq int64
	if err := db.r.QueryRowContext(ctx, `SELECT seq FROM deliveries`).Scan(&seq); err != nil {
		t.Fatal(err)
	}
	if m, _ := db.leases.holds(old[0].Delivery.ID, old[0].Lease); m.seq != seq {
		t.Fatalf("SQLite gave the new delivery seq %d, not the deleted one's %d: the test no longer reuses a seq", seq, m.seq)
	}
	if err := db.CompleteDeliveries(ctx, []hookd.Outcome{{DeliveryID: old[0].Delivery.ID, Lease: old[0].Lease, Status: hookd.DeliverySucceeded,
		Attempt: hookd.Attempt{ID: ids.New("att"), Number: 1, URL: gone.URL, StatusCode: 200, CreatedAt: now}}}); err != nil {
		t.Fatalf("outcome of the deleted delivery: %v", err)
	}
	cs := claim()
	if len(cs) != 1 || cs[0].Delivery.Status != hookd.DeliveryPending || cs[0].Delivery.Attempts != 0 {
		t.Fatalf("after the deleted delivery's outcome: %d claims (%+v), want the new delivery, pending with no attempt", len(cs), cs)
	}
}
