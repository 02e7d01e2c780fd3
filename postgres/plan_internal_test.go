package postgres

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/ids"
)

// TestStatementsPlannedEachTime runs publishing (FIFO backlogs and duplicates
// included) and the delivery path (claims, outcomes, retries, releases, FIFO
// promotion) many times on a pool of one connection, then reads the statements
// that connection keeps prepared: only inserts that read no table may be, since a prepared
// statement's generic plan is kept once chosen — chosen while a table is small,
// it scans the whole table long after it has grown. The publishing path's
// inserts, whose plans do not depend on sizes, must be (planOnce).
func TestStatementsPlannedEachTime(t *testing.T) {
	t.Parallel()
	db, org, now := openOneConnection(t)
	ctx := t.Context()
	for _, ordering := range []string{hookd.OrderingUnordered, hookd.OrderingFIFO} {
		addEndpoint(t, db, org, ordering, now)
	}
	for round := range 12 {
		ev := &hookd.Event{ID: ids.New("evt"), OrgID: org.ID, Type: "a.b", Data: json.RawMessage(`{}`), CreatedAt: now}
		if _, err := db.Publish(ctx, []*hookd.Event{ev}); err != nil {
			t.Fatalf("Publish: %v", err)
		}
		if err := db.AppendAudit(ctx, &hookd.AuditRecord{Time: now, ActorType: hookd.ActorAnonymous, Action: "inbound.event",
			Result: hookd.AuditFailure, Reason: "invalid_api_key", Status: 401}); err != nil {
			t.Fatalf("AppendAudit: %v", err)
		}
		again := *ev
		if r, err := db.Publish(ctx, []*hookd.Event{&again}); err != nil || !r[0].Duplicate {
			t.Fatalf("Publish again = %+v, %v; want a duplicate", r, err)
		}
		cs, err := db.ClaimDeliveries(ctx, hookd.ClaimParams{Limit: 10, Now: now, Lease: time.Minute})
		if err != nil || len(cs) == 0 {
			t.Fatalf("round %d: ClaimDeliveries = %d claims, %v; want some", round, len(cs), err)
		}
		var outcomes []hookd.Outcome
		var releases []hookd.Release
		for i, c := range cs {
			a := hookd.Attempt{ID: ids.New("att"), Number: c.Delivery.Attempts + 1, URL: c.Endpoint.URL, StatusCode: 200, CreatedAt: now}
			switch (round + i) % 3 {
			case 0:
				outcomes = append(outcomes, hookd.Outcome{DeliveryID: c.Delivery.ID, Lease: c.Lease, Status: hookd.DeliverySucceeded, Attempt: a})
			case 1:
				a.StatusCode, a.Error = 500, "server error"
				outcomes = append(outcomes, hookd.Outcome{DeliveryID: c.Delivery.ID, Lease: c.Lease, Status: hookd.DeliveryPending,
					NextAttemptAt: now, Attempt: a})
			default:
				releases = append(releases, hookd.Release{DeliveryID: c.Delivery.ID, Lease: c.Lease, NextAttemptAt: now})
			}
		}
		if err := db.CompleteDeliveries(ctx, outcomes); err != nil {
			t.Fatalf("CompleteDeliveries: %v", err)
		}
		if err := db.ReleaseDeliveries(ctx, releases); err != nil {
			t.Fatalf("ReleaseDeliveries: %v", err)
		}
	}
	rows, err := db.pool.Query(ctx, `SELECT statement FROM pg_prepared_statements`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	inserts := 0
	for rows.Next() {
		var stmt string
		if err := rows.Scan(&stmt); err != nil {
			t.Fatal(err)
		}
		s := strings.Join(strings.Fields(stmt), " ")
		// An insert of values or of unnest(…) reads no table; one that selects
		// from or joins a table has a plan that depends on its size.
		reads := strings.Contains(strings.ReplaceAll(s, "FROM unnest(", ""), " FROM ") || strings.Contains(s, " JOIN ")
		if !strings.HasPrefix(s, "INSERT INTO") || reads {
			t.Errorf("a statement that reads a table is prepared (its generic plan may scan the grown table): %.200s", s)
		} else if strings.HasPrefix(s, "INSERT INTO deliveries") {
			inserts++
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if inserts == 0 {
		t.Fatal("the publishing path's insert of deliveries is not prepared: the test no longer sees the pool's statements")
	}
}

// grownQueue opens a store whose tables have grown, with no statistics yet:
// two endpoints (one unordered, one FIFO) with 10,000 deliveries pending and
// 10,000 done each, and 10,000 idle rate-limited endpoints, each with its
// bucket. It returns the store, the two endpoints' ids and the time.
func grownQueue(t *testing.T) (*DB, []string, time.Time) {
	t.Helper()
	db, org, now := openOneConnection(t)
	ctx := t.Context()
	ep := addEndpoint(t, db, org, hookd.OrderingUnordered, now)
	fifo := addEndpoint(t, db, org, hookd.OrderingFIFO, now)
	ev := &hookd.Event{ID: ids.New("evt"), OrgID: org.ID, Type: "a.b", Data: json.RawMessage(`{}`), CreatedAt: now}
	if _, err := db.Publish(ctx, []*hookd.Event{ev}); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	for _, q := range []string{
		// 10,000 copies of each endpoint's pending delivery (a backlog) …
		`INSERT INTO deliveries SELECT r.* FROM deliveries d, generate_series(1, 10000) g,
			LATERAL jsonb_populate_record(NULL::deliveries, to_jsonb(d) || jsonb_build_object(
				'seq', nextval(pg_get_serial_sequence('deliveries', 'seq')), 'id', d.id || '_' || g)) r`,
		// … as many done …
		`INSERT INTO deliveries SELECT r.* FROM deliveries d,
			LATERAL jsonb_populate_record(NULL::deliveries, to_jsonb(d) || jsonb_build_object(
				'seq', nextval(pg_get_serial_sequence('deliveries', 'seq')), 'id', d.id || '_done', 'status', 'succeeded')) r`,
		// … and rate-limited endpoints with nothing to deliver, each with its bucket.
		`INSERT INTO endpoints SELECT r.* FROM endpoints e, generate_series(1, 10000) g,
			LATERAL jsonb_populate_record(NULL::endpoints, to_jsonb(e) || jsonb_build_object(
				'seq', nextval(pg_get_serial_sequence('endpoints', 'seq')), 'id', e.id || '_' || g, 'rate_limit', 10)) r
		 WHERE e.id = '` + ep.ID + `'`,
		`INSERT INTO rate_limits (key, tokens, updated_at) SELECT 'endpoint:' || id, 10, 0 FROM endpoints WHERE rate_limit > 0`,
	} {
		if _, err := db.pool.Exec(ctx, q); err != nil {
			t.Fatalf("grow the tables: %v", err)
		}
	}
	return db, []string{ep.ID, fifo.ID}, now
}

// explainedPlan is what the tests read of EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON).
type explainedPlan struct {
	Node     string          `json:"Node Type"`
	Relation string          `json:"Relation Name"`
	Rows     int64           `json:"Actual Rows"`
	Loops    int64           `json:"Actual Loops"`
	Hit      int64           `json:"Shared Hit Blocks"`
	Read     int64           `json:"Shared Read Blocks"`
	Plans    []explainedPlan `json:"Plans"`
}

// explain runs, in one batch, settings (an SQL statement) then EXPLAIN
// (ANALYZE, BUFFERS) of q with args, rolled back, both without statistics and
// after an analyze of the tables, and calls check with each plan.
func explain(t *testing.T, db *DB, settings, q string, args []any, check func(stats string, p explainedPlan, out []byte)) {
	t.Helper()
	ctx := t.Context()
	for _, stats := range []string{"without statistics", "after an analyze"} {
		if stats == "after an analyze" {
			if _, err := db.pool.Exec(ctx, `ANALYZE deliveries, endpoints, rate_limits`); err != nil {
				t.Fatal(err)
			}
		}
		b := &pgx.Batch{}
		b.Queue("BEGIN")
		b.Queue(settings)
		b.Queue(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) `+q, args...)
		b.Queue("ROLLBACK")
		br := db.pool.SendBatch(ctx, b)
		for range 2 {
			if _, err := br.Exec(); err != nil {
				t.Fatal(err)
			}
		}
		var out []byte
		if err := br.QueryRow().Scan(&out); err != nil {
			t.Fatal(err)
		}
		if err := br.Close(); err != nil {
			t.Fatal(err)
		}
		var plans []struct{ Plan explainedPlan }
		if err := json.Unmarshal(out, &plans); err != nil || len(plans) != 1 {
			t.Fatalf("EXPLAIN: %v: %s", err, out)
		}
		check(stats, plans[0].Plan, out)
	}
}

// TestCandidatesReadWhatTheyNeed: choosing the candidates reads a few dozen
// pages, not the tables (see grownQueue), planned without statistics and
// again after an analyze: every read goes by an index to an endpoint with
// pending work.
func TestCandidatesReadWhatTheyNeed(t *testing.T) {
	t.Parallel()
	db, _, now := grownQueue(t)
	explain(t, db, candidatesSettingsSQL, candidatesSQL, []any{noCap, us(now), []string{}, parked},
		func(stats string, pl explainedPlan, out []byte) {
			if pl.Rows != 2 || pl.Hit+pl.Read > 100 {
				t.Errorf("%s: the candidate query returned %d rows reading %d pages; want 2 rows from at most 100 pages:\n%s",
					stats, pl.Rows, pl.Hit+pl.Read, out)
			}
		})
}

// TestClaimReadsWhatItNeeds: the claim's statement, leasing 5 deliveries of
// each of the two endpoints (one of the FIFO one, its head), reads a few rows
// of deliveries and endpoints for each it leases, whatever the backlogs and
// the other endpoints (see grownQueue), planned without statistics and again
// after an analyze.
func TestClaimReadsWhatItNeeds(t *testing.T) {
	t.Parallel()
	db, eps, now := grownQueue(t)
	args := []any{eps, []int64{5, 5}, []int64{noCap, noCap}, us(now), "lease_test", us(now.Add(time.Minute)), parked, 100, noCap}
	explain(t, db, `SELECT set_config('lock_timeout', '2s', true), `+noBitmapScans, leaseSQL, args,
		func(stats string, pl explainedPlan, out []byte) {
			var read func(p explainedPlan) int64
			read = func(p explainedPlan) int64 {
				n := int64(0)
				if (p.Relation == "deliveries" || p.Relation == "endpoints") && p.Node != "ModifyTable" {
					n = p.Rows * max(1, p.Loops)
				}
				for _, c := range p.Plans {
					n += read(c)
				}
				return n
			}
			if pl.Rows != 6 || read(pl) > 60 {
				t.Errorf("%s: the claim leased %d deliveries reading %d rows of deliveries and endpoints; want 6 from at most 60:\n%s",
					stats, pl.Rows, read(pl), out)
			}
		})
}
