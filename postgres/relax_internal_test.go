package postgres

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/ids"
	"github.com/hookd/hookd/internal/pgtest"
	"github.com/hookd/hookd/secret"
)

// TestRelaxedCommitsStayInTheirTransaction: outcomes commit without waiting
// for the WAL flush, and that setting ends with their transaction (as does the
// claims' planner settings, see noBitmapScans): on a pool of one connection,
// the claims and publishes that follow them (a publish is acknowledged to a
// client; a lost lease would let two instances attempt one delivery at once)
// still commit synchronously.
func TestRelaxedCommitsStayInTheirTransaction(t *testing.T) {
	t.Parallel()
	db, org, now := openOneConnection(t)
	ctx := t.Context()
	ep := addEndpoint(t, db, org, hookd.OrderingUnordered, now)
	setting := func(what string) string {
		t.Helper()
		var v string
		if err := db.pool.QueryRow(ctx, `SHOW synchronous_commit`).Scan(&v); err != nil {
			t.Fatalf("after %s: SHOW synchronous_commit: %v", what, err)
		}
		return v
	}
	for round := range 2 {
		c := publishAndClaim(t, db, org, now)
		if v := setting("a claim"); v != "on" {
			t.Errorf("round %d: synchronous_commit = %q after a claim, want on: the relaxed commit leaked out of its transaction", round, v)
		}
		var bitmap string
		if err := db.pool.QueryRow(ctx, `SHOW enable_bitmapscan`).Scan(&bitmap); err != nil {
			t.Fatal(err)
		}
		if bitmap != "on" {
			t.Errorf("round %d: enable_bitmapscan = %q after a claim, want on: the claim's planner setting leaked out of its transaction", round, bitmap)
		}
		succeed(t, db, c, ep, now)
		if v := setting("an outcome"); v != "on" {
			t.Errorf("round %d: synchronous_commit = %q after an outcome, want on: the relaxed commit leaked out of its transaction", round, v)
		}
	}
}

// TestOutcomesCommitWithoutWaitingForTheFlush: an outcome's transaction
// commits with synchronous_commit off, so its commit record may still wait in
// PostgreSQL's WAL buffers when CompleteDeliveries returns (a synchronous
// commit returns only once it is flushed). The WAL writer flushes within
// wal_writer_delay, so this is only required to be seen once in several
// rounds.
func TestOutcomesCommitWithoutWaitingForTheFlush(t *testing.T) {
	t.Parallel()
	db, org, now := openOneConnection(t)
	ctx := t.Context()
	ep := addEndpoint(t, db, org, hookd.OrderingUnordered, now)
	unflushed := func() bool {
		t.Helper()
		var behind bool
		if err := db.pool.QueryRow(ctx, `SELECT pg_current_wal_flush_lsn() < pg_current_wal_insert_lsn()`).Scan(&behind); err != nil {
			t.Fatal(err)
		}
		return behind
	}
	seen := false
	for round := 0; round < 10 && !seen; round++ {
		c := publishAndClaim(t, db, org, now)
		succeed(t, db, c, ep, now)
		seen = unflushed()
	}
	if !seen {
		t.Error("after each of 10 outcomes the WAL was flushed up to its end: outcomes wait for the flush (synchronous_commit on)")
	}
}

// publishAndClaim publishes an event to org's only endpoint and claims its
// delivery.
func publishAndClaim(t *testing.T, db *DB, org *hookd.Organization, now time.Time) *hookd.Claim {
	t.Helper()
	ev := &hookd.Event{ID: ids.New("evt"), OrgID: org.ID, Type: "a.b", Data: json.RawMessage(`{}`), CreatedAt: now}
	if _, err := db.Publish(t.Context(), []*hookd.Event{ev}); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	cs, err := db.ClaimDeliveries(t.Context(), hookd.ClaimParams{Limit: 10, Now: now, Lease: time.Minute})
	if err != nil || len(cs) != 1 {
		t.Fatalf("ClaimDeliveries = %d claims, %v; want 1", len(cs), err)
	}
	return cs[0]
}

// succeed records a successful attempt for c.
func succeed(t *testing.T, db *DB, c *hookd.Claim, ep *hookd.Endpoint, now time.Time) {
	t.Helper()
	a := hookd.Attempt{ID: ids.New("att"), Number: 1, URL: ep.URL, StatusCode: 200, CreatedAt: now}
	if err := db.CompleteDeliveries(t.Context(), []hookd.Outcome{{DeliveryID: c.Delivery.ID, Lease: c.Lease,
		Status: hookd.DeliverySucceeded, Attempt: a}}); err != nil {
		t.Fatalf("CompleteDeliveries: %v", err)
	}
}

// openOneConnection opens a store on a pool of one connection (so that the
// session settings and prepared statements a test reads are those the store
// used) with an organization, and returns them with the time they were made at.
func openOneConnection(t *testing.T) (*DB, *hookd.Organization, time.Time) {
	t.Helper()
	sealer, err := secret.NewSealer(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	db, err := Open(t.Context(), Config{URL: pgtest.URL(t) + "&pool_max_conns=1", Sealer: sealer})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	now := time.Now().Truncate(time.Microsecond)
	org := &hookd.Organization{ID: ids.New("org"), Name: "Acme", CreatedAt: now}
	if err := db.CreateOrganization(t.Context(), org); err != nil {
		t.Fatal(err)
	}
	return db, org, now
}

// addEndpoint creates an enabled endpoint of org, subscribed to every event,
// with the given ordering.
func addEndpoint(t *testing.T, db *DB, org *hookd.Organization, ordering string, now time.Time) *hookd.Endpoint {
	t.Helper()
	ep := &hookd.Endpoint{ID: ids.New("ep"), OrgID: org.ID, URL: "https://example.com/h", Events: []string{"*"}, Enabled: true,
		SignatureScheme: "standard-webhooks", Payload: hookd.PayloadEnvelope, Ordering: ordering,
		Secret: "whsec_c2VjcmV0LW9mLXRlc3Q=", CreatedAt: now, UpdatedAt: now}
	if err := db.CreateEndpoint(t.Context(), ep); err != nil {
		t.Fatal(err)
	}
	return ep
}

// TestCandidatesSettingReachesTheirQuery: the candidate query is sent in one
// batch after candidatesSettingsSQL, and its settings hold for it (the batch is
// one implicit transaction), then end with it.
func TestCandidatesSettingReachesTheirQuery(t *testing.T) {
	t.Parallel()
	db, _, _ := openOneConnection(t)
	ctx := t.Context()
	const show = `SELECT current_setting('enable_bitmapscan') || ' ' || current_setting('enable_sort')`
	b := &pgx.Batch{}
	b.Queue(candidatesSettingsSQL)
	b.Queue(show)
	br := db.pool.SendBatch(ctx, b)
	if _, err := br.Exec(); err != nil {
		t.Fatal(err)
	}
	var during string
	if err := br.QueryRow().Scan(&during); err != nil {
		t.Fatal(err)
	}
	if err := br.Close(); err != nil {
		t.Fatal(err)
	}
	var after string
	if err := db.pool.QueryRow(ctx, show).Scan(&after); err != nil {
		t.Fatal(err)
	}
	if during != "off off" || after != "on on" {
		t.Errorf("enable_bitmapscan, enable_sort = %q for the query after the settings, %q after the batch; want off off, then on on", during, after)
	}
}
