package sqlite

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/ids"
)

// reuseFixture is a store (deleting endpoints' deliveries in chunks of
// deleteChunk) with an organization, for the tests of reused seqs.
type reuseFixture struct {
	t   *testing.T
	db  *DB
	org *hookd.Organization
	now time.Time
}

func newReuseFixture(t *testing.T, deleteChunk int) *reuseFixture {
	t.Helper()
	db := openTest(t, Config{DeleteChunk: deleteChunk})
	f := &reuseFixture{t: t, db: db, now: time.Now().Truncate(time.Microsecond)}
	f.org = &hookd.Organization{ID: ids.New("org"), Name: "Acme", CreatedAt: f.now}
	if err := db.CreateOrganization(context.Background(), f.org); err != nil {
		t.Fatal(err)
	}
	return f
}

// endpoint creates an enabled, unordered endpoint subscribed to typ.
func (f *reuseFixture) endpoint(typ string, maxInFlight int) *hookd.Endpoint {
	f.t.Helper()
	e := &hookd.Endpoint{ID: ids.New("ep"), OrgID: f.org.ID, URL: "https://receiver.example.com/", Events: []string{typ}, Enabled: true,
		SignatureScheme: "standard-webhooks", Payload: hookd.PayloadEnvelope, Ordering: hookd.OrderingUnordered,
		Secret: "whsec_QUJDREVGR0hJSktMTU5PUFFSU1RVVldY", MaxInFlight: maxInFlight, CreatedAt: f.now, UpdatedAt: f.now}
	if err := f.db.CreateEndpoint(context.Background(), e); err != nil {
		f.t.Fatal(err)
	}
	return e
}

// publish publishes n events of type typ, one at a time.
func (f *reuseFixture) publish(typ string, n int) {
	f.t.Helper()
	for range n {
		ev := &hookd.Event{ID: ids.New("evt"), OrgID: f.org.ID, Type: typ, Data: json.RawMessage(`{}`), CreatedAt: f.now}
		if _, err := f.db.Publish(context.Background(), []*hookd.Event{ev}); err != nil {
			f.t.Fatal(err)
		}
	}
}

// claim claims with p, now, for an hour.
func (f *reuseFixture) claim(p hookd.ClaimParams) []*hookd.Claim {
	f.t.Helper()
	p.Now, p.Lease = time.Now(), time.Hour
	cs, err := f.db.ClaimDeliveries(context.Background(), p)
	if err != nil {
		f.t.Fatal(err)
	}
	return cs
}

// succeed records a successful attempt for c.
func (f *reuseFixture) succeed(c *hookd.Claim) error {
	return f.db.CompleteDeliveries(context.Background(), []hookd.Outcome{{DeliveryID: c.Delivery.ID, Lease: c.Lease, Status: hookd.DeliverySucceeded,
		Attempt: hookd.Attempt{ID: ids.New("att"), Number: 1, URL: "https://receiver.example.com/", StatusCode: 200, CreatedAt: f.now}}})
}

// TestReadAheadOfADeletedEndpoint: seqs read ahead for an endpoint that is
// then deleted may name other deliveries by the time a claim takes them
// (SQLite reuses the seqs of the last rows once they are deleted); a claim
// leases such a delivery only for the endpoint it belongs to, within that
// endpoint's max_in_flight.
func TestReadAheadOfADeletedEndpoint(t *testing.T) {
	t.Parallel()
	f := newReuseFixture(t, 3)
	db := f.db
	gone, other := f.endpoint("one", 0), f.endpoint("two", 1)
	f.publish("one", 3)
	cs := f.claim(hookd.ClaimParams{Limit: 10, Caps: map[string]int{gone.ID: 1}})
	if len(cs) != 1 || len(db.due.ahead[gone.ID]) != 2 {
		t.Fatalf("%d claims, %d deliveries read ahead; want 1 and 2", len(cs), len(db.due.ahead[gone.ID]))
	}
	if err := f.succeed(cs[0]); err != nil {
		t.Fatal(err)
	}
	var got []*hookd.Claim
	db.deleted = func() { // after the first chunk: the endpoint's deliveries are gone, it is not yet
		db.deleted = nil
		f.publish("two", 3) // reuses the deleted deliveries' seqs
		f.publish("one", 1) // the endpoint still has pending work: its read-ahead is kept
		got = f.claim(hookd.ClaimParams{Limit: 10})
	}
	if err := db.DeleteEndpoint(context.Background(), f.org.ID, gone.ID); err != nil {
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
	f := newReuseFixture(t, 0)
	db := f.db
	gone := f.endpoint("*", 0)
	f.publish("a.b", 1)
	old := f.claim(hookd.ClaimParams{Limit: 10})
	if len(old) != 1 {
		t.Fatalf("%d claims, want 1", len(old))
	}
	if err := db.DeleteEndpoint(context.Background(), f.org.ID, gone.ID); err != nil {
		t.Fatal(err)
	}
	f.endpoint("*", 0)
	f.publish("a.b", 1)
	var seq int64
	if err := db.r.QueryRowContext(context.Background(), `SELECT seq FROM deliveries`).Scan(&seq); err != nil {
		t.Fatal(err)
	}
	if m, _ := db.leases.holds(old[0].Delivery.ID, old[0].Lease); m.seq != seq {
		t.Fatalf("SQLite gave the new delivery seq %d, not the deleted one's %d: the test no longer reuses a seq", seq, m.seq)
	}
	if err := f.succeed(old[0]); err != nil {
		t.Fatalf("outcome of the deleted delivery: %v", err)
	}
	cs := f.claim(hookd.ClaimParams{Limit: 10})
	if len(cs) != 1 || cs[0].Delivery.Status != hookd.DeliveryPending || cs[0].Delivery.Attempts != 0 {
		t.Fatalf("after the deleted delivery's outcome: %d claims (%+v), want the new delivery, pending with no attempt", len(cs), cs)
	}
}
