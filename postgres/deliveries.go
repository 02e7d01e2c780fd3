package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/ids"
	"github.com/hookd/hookd/internal/cursor"
	"github.com/hookd/hookd/internal/sqlrow"
)

// dueOrParked is the next_attempt_at of a re-queued delivery (retry, replay): $1
// if its endpoint is enabled, else parked, so that a disabled endpoint's
// deliveries wait outside the due range until it is enabled.
var dueOrParked = `CASE WHEN EXISTS (SELECT 1 FROM endpoints e WHERE e.id = deliveries.endpoint_id AND e.enabled)
	THEN $1::bigint ELSE ` + strconv.FormatInt(parked, 10) + ` END`

// Delivery implements hookd.Store.
func (db *DB) Delivery(ctx context.Context, orgID, id string) (*hookd.Delivery, []*hookd.Attempt, error) {
	a := args{id}
	where := orgClause("d.org_id", orgID, &a)
	d, seq, err := sqlrow.ScanDelivery(db.pool.QueryRow(ctx, `SELECT `+sqlrow.DeliveryColumns+`
		FROM deliveries d JOIN events ev ON ev.seq = d.event_seq WHERE d.id = $1`+where, a...))
	if err != nil {
		return nil, nil, fmt.Errorf("get delivery: %w", notFoundIf(err, "delivery", id))
	}
	rows, err := db.pool.Query(ctx, `SELECT `+sqlrow.AttemptColumns+` FROM attempts WHERE delivery_seq = $1 ORDER BY seq`, seq)
	if err != nil {
		return nil, nil, fmt.Errorf("get attempts: %w", err)
	}
	as, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*hookd.Attempt, error) { return sqlrow.ScanAttempt(r, d.ID) })
	if err != nil {
		return nil, nil, fmt.Errorf("get attempts: %w", err)
	}
	return d, as, nil
}

// ListDeliveries implements hookd.Store.
func (db *DB) ListDeliveries(ctx context.Context, f hookd.DeliveryFilter) ([]*hookd.Delivery, string, error) {
	before, err := cursor.DecodeBefore(f.Cursor)
	if err != nil {
		return nil, "", err
	}
	limit := cursor.Limit(f.Page)
	a := args{before}
	q := `SELECT ` + sqlrow.DeliveryColumns + ` FROM deliveries d JOIN events ev ON ev.seq = d.event_seq WHERE d.seq < $1`
	if f.OrgID != "" {
		q += ` AND d.org_id = ` + a.add(f.OrgID)
	}
	if f.EndpointID != "" {
		q += ` AND d.endpoint_id = ` + a.add(f.EndpointID)
	}
	if f.EventID != "" {
		// Through deliveries_event: the event's few deliveries, not a walk of the log.
		q += ` AND d.event_seq IN (SELECT seq FROM events WHERE id = ` + a.add(f.EventID) + orgClause("org_id", f.OrgID, &a) + `)`
	}
	if f.Status != "" {
		q += ` AND d.status = ` + a.add(f.Status)
	}
	rows, err := db.pool.Query(ctx, q+` ORDER BY d.seq DESC LIMIT `+a.add(limit+1), a...)
	if err != nil {
		return nil, "", fmt.Errorf("list deliveries: %w", err)
	}
	out, next, err := collectPage(rows, limit, func(r pgx.Rows) (*hookd.Delivery, int64, error) { return sqlrow.ScanDelivery(r) }, nil)
	if err != nil {
		return nil, "", fmt.Errorf("list deliveries: %w", err)
	}
	return out, next, nil
}

// RetryDelivery implements hookd.Store.
func (db *DB) RetryDelivery(ctx context.Context, orgID, id string, now time.Time) (*hookd.Delivery, error) {
	err := db.tx(ctx, func(tx pgx.Tx) error {
		a := args{id}
		where := orgClause("org_id", orgID, &a)
		var leaseUntil *int64
		if err := tx.QueryRow(ctx, `SELECT lease_until FROM deliveries WHERE id = $1`+where+` FOR UPDATE`, a...).Scan(&leaseUntil); err != nil {
			return notFoundIf(err, "delivery", id)
		}
		if leaseUntil != nil && *leaseUntil > us(now) {
			return hookd.Errorf(hookd.ECONFLICT, "delivery %q is being attempted right now; retry it once the attempt is over", id)
		}
		if _, err := tx.Exec(ctx, `UPDATE deliveries SET status = 'pending', next_attempt_at = `+dueOrParked+`,
			cycle_attempts = 0, updated_at = $1 WHERE id = $2`, us(now), id); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("retry delivery: %w", err)
	}
	db.wakeWorkers()
	d, _, err := db.Delivery(ctx, orgID, id)
	return d, err
}

// Replay implements hookd.Store.
func (db *DB) Replay(ctx context.Context, p hookd.ReplayParams) (int, error) {
	var n int64
	err := db.tx(ctx, func(tx pgx.Tx) error {
		a := args{p.EndpointID}
		where := orgClause("org_id", p.OrgID, &a)
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM endpoints WHERE id = $1`+where, a...).Scan(&one); err != nil {
			return notFoundIf(err, "endpoint", p.EndpointID)
		}
		a = args{us(p.Now), p.EndpointID, us(p.Since)}
		q := `UPDATE deliveries SET status = 'pending', next_attempt_at = ` + dueOrParked + `, cycle_attempts = 0,
			updated_at = $1 WHERE endpoint_id = $2 AND created_at >= $3`
		if !p.Until.IsZero() {
			q += ` AND created_at < ` + a.add(us(p.Until))
		}
		if p.Status != "" {
			q += ` AND status = ` + a.add(p.Status)
		} else {
			q += ` AND status <> 'pending'`
		}
		tag, err := tx.Exec(ctx, q, a...)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("replay: %w", err)
	}
	if n > 0 {
		db.wakeWorkers()
	}
	return int(n), nil
}

// claimLockSpace is the first key of the transaction advisory locks a claim holds
// on the endpoints it claims for ("hook"); the second is the hash of the
// endpoint's id. A hash collision only makes two endpoints take turns.
const claimLockSpace = 0x686f6f6b

// maxClaimEndpoints bounds the endpoints one claim locks (and so the lock table
// entries it holds), taken oldest due first; the rest wait for the next claim.
const maxClaimEndpoints = 128

// candidate is an endpoint with due work and room for more in flight.
type candidate struct {
	id       string
	rate     float64
	override int64 // p.Caps and p.PerEndpoint's cap for it (noCap if none)
	free     int64 // its cap less its live leases (and its tokens), when chosen
	due      int64 // its oldest due delivery
	share    int64 // how many this claim may take of it (all claims together take at most p.Limit)
}

// noCap stands for "no cap" in caps computed in SQL.
const noCap = int64(1) << 40

// claimLockTimeout bounds how long a claim waits for a row lock held by another
// transaction (a rate-limit bucket, a delivery being recorded): one that stalls
// (a frozen process) holds its locks until PostgreSQL ends its transaction, and
// claims must not wait that long. (Endpoint locks are never waited for.)
const claimLockTimeout = "2s"

// ClaimDeliveries implements hookd.Store. It chooses candidate endpoints without
// locks; then, in one transaction, takes the advisory lock of each that no other
// instance's claim holds (skipping the others, which that claim is serving),
// takes tokens from the rate-limited ones' shared buckets, and leases what fits
// under each endpoint's settings and live leases as they are under the lock. So
// caps, FIFO order and rate limits hold across every instance.
func (db *DB) ClaimDeliveries(ctx context.Context, p hookd.ClaimParams) ([]*hookd.Claim, error) {
	if p.Limit <= 0 {
		return nil, nil
	}
	cands, err := db.candidates(ctx, p)
	if err != nil || len(cands) == 0 {
		return nil, err
	}
	lease := ids.New("lease")
	var (
		claims []*hookd.Claim
		broken []sqlrow.BrokenClaim
	)
	err = db.tx(ctx, func(tx pgx.Tx) error {
		var err error
		claims, broken, err = claim(ctx, tx, db.cfg.Sealer, cands, p, lease)
		return err
	})
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "55P03" {
		// Another instance's claim holds a lock too long: claim again next round,
		// by when PostgreSQL may have ended that claim.
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", err)
	}
	if len(broken) > 0 {
		if err := db.setAside(ctx, broken, lease, p.Now); err != nil {
			return claims, fmt.Errorf("claim deliveries: %w", err)
		}
	}
	return claims, nil
}

// candidates lists the enabled endpoints with pending work (a loose scan of the
// pending index, so its cost grows with those endpoints, not with their
// backlogs) that have something due, free capacity and, if rate-limited, a token
// in their shared bucket, oldest due first (at most maxClaimEndpoints), each with
// its share of p.Limit.
func (db *DB) candidates(ctx context.Context, p hookd.ClaimParams) ([]candidate, error) {
	exclude := p.Exclude
	if exclude == nil {
		exclude = []string{}
	}
	now := us(p.Now)
	defaultCap := noCap
	if p.MaxInFlight > 0 {
		defaultCap = int64(p.MaxInFlight)
	}
	var cands []candidate
	err := func() error {
		// One round trip, one implicit transaction: the planner settings, then
		// the query they apply to (see candidatesSettingsSQL).
		b := &pgx.Batch{}
		b.Queue(candidatesSettingsSQL)
		b.Queue(candidatesSQL, defaultCap, now, exclude, parked)
		br := db.pool.SendBatch(ctx, b)
		defer br.Close()
		if _, err := br.Exec(); err != nil {
			return err
		}
		rows, err := br.Query()
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var c candidate
			var limit, leased int64
			var due, updated *int64
			var tokens *float64
			if err := rows.Scan(&c.id, &c.rate, &tokens, &updated, &limit, &leased, &due); err != nil {
				return err
			}
			c.override = noCap
			if v, ok := p.Caps[c.id]; ok {
				c.override = min(c.override, int64(v))
			}
			if p.PerEndpoint > 0 {
				c.override = min(c.override, int64(p.PerEndpoint))
			}
			c.free = min(limit, c.override) - leased
			if c.rate > 0 && tokens != nil {
				// An endpoint whose shared bucket is empty cannot take a place that
				// another endpoint could use.
				rl := hookd.RateLimit{PerSecond: c.rate, Burst: rateBurst(c.rate)}
				c.free = min(c.free, int64(hookd.Refill(*tokens, fromUS(*updated), rl, p.Now)))
			}
			if c.free > 0 && due != nil && *due <= now {
				c.due = *due
				cands = append(cands, c)
			}
		}
		return rows.Err()
	}()
	if err != nil {
		return nil, fmt.Errorf("choose due endpoints: %w", err)
	}
	slices.SortFunc(cands, func(a, b candidate) int { return cmp.Compare(a.due, b.due) })
	if len(cands) > maxClaimEndpoints {
		cands = cands[:maxClaimEndpoints]
	}
	for i := range cands {
		cands[i].share = min(cands[i].free, int64(p.Limit))
	}
	return cands, nil
}

// candidatesSQL lists the enabled endpoints with pending work and what
// candidates needs of each ($1: the default cap, $2: now, $3: the endpoints to
// leave out, $4: parked). Each endpoint is looked up by its id, row by row:
// OFFSET 0 keeps the lookup a subquery of its own, which the planner cannot
// flatten into a join with the whole table (it made that a hash join that read
// every endpoint of every organization at each claim). So a claim reads what
// the endpoints with pending work need, whatever the number of tenants
// (TestCandidatesReadWhatTheyNeed; the planner looks their rate-limit buckets
// up by key as it is).
var candidatesSQL = `
	WITH RECURSIVE eps(id) AS (
		(SELECT endpoint_id FROM deliveries WHERE status = 'pending' ORDER BY endpoint_id LIMIT 1)
		UNION ALL
		SELECT (SELECT d.endpoint_id FROM deliveries d WHERE d.status = 'pending' AND d.endpoint_id > eps.id
		        ORDER BY d.endpoint_id LIMIT 1)
		FROM eps WHERE eps.id IS NOT NULL
	)
	SELECT e.id, e.rate_limit, rl.tokens, rl.updated_at, e.cap,
	       ` + countLeases("e.id", "$2", "e.cap") + `,
	       CASE WHEN e.ordering = 'fifo' THEN
	           (SELECT CASE WHEN d.next_attempt_at = $4 THEN d.created_at ELSE d.next_attempt_at END
	            FROM deliveries d WHERE d.endpoint_id = e.id AND d.status = 'pending' ORDER BY d.seq LIMIT 1)
	       ELSE
	           (SELECT d.next_attempt_at FROM deliveries d WHERE d.endpoint_id = e.id AND d.status = 'pending'
	            AND (d.lease_until IS NULL OR d.lease_until <= $2) ORDER BY d.next_attempt_at LIMIT 1)
	       END
	FROM eps CROSS JOIN LATERAL (
		SELECT *, CASE WHEN ordering = 'fifo' THEN 1 WHEN max_in_flight > 0 THEN max_in_flight
		               ELSE $1::bigint END AS cap
		FROM endpoints WHERE id = eps.id OFFSET 0) e
	LEFT JOIN rate_limits rl ON rl.key = 'endpoint:' || e.id
	WHERE e.enabled AND NOT (e.id = ANY($3::text[]))`

// candidatesSettingsSQL makes the rest of its transaction plan the candidate
// query with no bitmap scans (see noBitmapScans) and no sorts. Every order the
// query needs is an index's: without the tables' statistics (before their
// first analyze, or on a server without autovacuum) the planner estimated an
// endpoint's pending deliveries at one row, and found its pending index plus a
// sort as cheap as its due index, reading the endpoint's whole backlog at each
// claim to find its oldest due delivery (TestCandidatesReadWhatTheyNeed).
const candidatesSettingsSQL = `SELECT ` + noBitmapScans + `, set_config('enable_sort', 'off', true)`

// noBitmapScans is an SQL expression that makes the rest of its transaction
// read the queue by plain index scans only, whatever the planner's estimates:
// a bitmap scan would visit every dead row version that claims and outcomes
// left in the queue's indexes since the last vacuum, each time, where a plain
// index scan marks those it meets so that the next scans skip them. (Mid-way
// through a bench run, with a bound on the count as countLeases has, the
// planner still chose a bitmap scan: 8 ms per endpoint.)
const noBitmapScans = `set_config('enable_bitmapscan', 'off', true)`

// countLeases is the SQL expression that counts the live leases of the endpoint
// whose id is the expression endpoint at the time now, up to its cap (an
// expression too): no claim needs to know more than that the cap is reached.
//
// Every lease leaves a dead row version in deliveries_leased until vacuum (a
// minute or more away): an unbounded count visited all of them each time (3,000
// per endpoint, 3.5 ms, mid-way through a bench run). A bounded count by a plain
// index scan (see noBitmapScans) stops at the cap and marks the dead entries it
// meets, so that the next scans skip them (0.1 ms).
func countLeases(endpoint, now, limit string) string {
	return `(SELECT COUNT(*) FROM (SELECT FROM deliveries l WHERE l.endpoint_id = ` + endpoint +
		` AND l.lease IS NOT NULL AND l.lease_until > ` + now + ` LIMIT ` + limit + `) AS live)`
}

// rateKey names an endpoint's token bucket in rate_limits.
func rateKey(endpointID string) string { return "endpoint:" + endpointID }

// rateBurst is the bucket size of an endpoint's rate limit: one second's worth,
// at least one (as the delivery engine's own limiter).
func rateBurst(rate float64) int { return max(1, int(rate)) }

// claim leases, inside tx, what the candidates' shares allow.
//
// It returns the leased deliveries with their events and endpoints (read by the
// statement that leases them, not in another round trip), oldest due first; a
// delivery whose endpoint secret cannot be opened is returned in broken instead.
func claim(ctx context.Context, tx pgx.Tx, sealer sqlrow.Sealer, cands []candidate, p hookd.ClaimParams, lease string) ([]*hookd.Claim, []sqlrow.BrokenClaim, error) {
	want := make([]string, len(cands))
	for i, c := range cands {
		want[i] = c.id
	}
	// Leases commit synchronously: one lost in a crash of PostgreSQL would let
	// another instance attempt a delivery that is still being attempted.
	// (And the leases are counted as in candidates: see noBitmapScans.)
	if _, err := tx.Exec(ctx, `SELECT set_config('lock_timeout', $1, true), `+noBitmapScans, claimLockTimeout); err != nil {
		return nil, nil, fmt.Errorf("lock endpoints: %w", err)
	}
	// A claim takes the locks it can get and leaves the endpoints whose lock
	// another instance's claim holds: that claim is serving them right now, and
	// waiting for it would serialise every instance on the busiest endpoints.
	// (The next claim, a few milliseconds later, finds them free again.)
	rows, err := tx.Query(ctx, `SELECT c.id FROM unnest($1::text[]) WITH ORDINALITY AS c(id, ord)
		WHERE pg_try_advisory_xact_lock($2, hashtext(c.id)) ORDER BY c.ord`, want, claimLockSpace)
	if err != nil {
		return nil, nil, fmt.Errorf("lock endpoints: %w", err)
	}
	locked, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, nil, fmt.Errorf("lock endpoints: %w", err)
	}
	cands = slices.DeleteFunc(slices.Clone(cands), func(c candidate) bool { return !slices.Contains(locked, c.id) })
	if len(cands) == 0 {
		return nil, nil, nil
	}
	now := us(p.Now)
	buckets, err := takeBuckets(ctx, tx, cands, p.Now)
	if err != nil {
		return nil, nil, err
	}
	var (
		epIDs     []string
		shares    []int64
		overrides []int64
	)
	for _, c := range cands {
		share := c.share
		if tokens, ok := buckets[c.id]; ok {
			share = min(share, int64(math.Floor(tokens)))
		}
		if share <= 0 {
			continue
		}
		epIDs, shares, overrides = append(epIDs, c.id), append(shares, share), append(overrides, c.override)
	}
	if len(epIDs) == 0 {
		return nil, nil, nil
	}
	// The endpoints' settings (ordering, max_in_flight) are read here, under the
	// locks, not taken from the candidates: they may have changed meanwhile.
	defaultCap := noCap
	if p.MaxInFlight > 0 {
		defaultCap = int64(p.MaxInFlight)
	}
	rows, err = tx.Query(ctx, leaseSQL, epIDs, shares, overrides, now, lease, us(p.Now.Add(p.Lease)), parked, p.Limit, defaultCap)
	if err != nil {
		return nil, nil, fmt.Errorf("lease deliveries: %w", err)
	}
	claims, seqs, broken, err := sqlrow.CollectClaimsSeq(rows, sealer, lease)
	rows.Close()
	if err != nil {
		return nil, nil, fmt.Errorf("lease deliveries: %w", err)
	}
	sortClaims(claims, seqs)
	taken := map[string]int{} // (a delivery set aside as broken takes no token)
	for _, c := range claims {
		taken[c.Endpoint.ID]++
	}
	if len(buckets) > 0 {
		var keys []string
		var levels []float64
		for id, tokens := range buckets {
			keys, levels = append(keys, rateKey(id)), append(levels, tokens-float64(taken[id]))
		}
		if _, err := tx.Exec(ctx, `INSERT INTO rate_limits (key, tokens, updated_at)
			SELECT k, t, $3 FROM unnest($1::text[], $2::float8[]) AS b(k, t)
			ON CONFLICT (key) DO UPDATE SET tokens = excluded.tokens,
				updated_at = GREATEST(rate_limits.updated_at, excluded.updated_at)`, keys, levels, now); err != nil {
			return nil, nil, fmt.Errorf("take rate limit tokens: %w", err)
		}
	}
	return claims, broken, nil
}

// leaseSQL leases what the locked candidates' shares allow ($1–$3: their ids,
// shares and overrides, in claim order; $4: now; $5: the lease; $6: its end;
// $7: parked; $8: the claim's limit; $9: the default cap) and returns the
// leased deliveries with their events and endpoints
// (TestClaimReadsWhatItNeeds).
var leaseSQL = `
		WITH c AS (
			SELECT c.id, c.share, c.ord, e.ordering = 'fifo' AS fifo,
			       LEAST(c.override, CASE WHEN e.ordering = 'fifo' THEN 1 WHEN e.max_in_flight > 0 THEN e.max_in_flight
			                              ELSE $9::bigint END) AS cap
			FROM unnest($1::text[], $2::bigint[], $3::bigint[]) WITH ORDINALITY AS c(id, share, override, ord)
			JOIN endpoints e ON e.id = c.id AND e.enabled
		), due AS (
			SELECT x.seq, c.ord, x.next_attempt_at FROM c CROSS JOIN LATERAL (
				SELECT d.seq, d.next_attempt_at FROM deliveries d
				WHERE d.endpoint_id = c.id AND d.status = 'pending' AND d.next_attempt_at <= $4
				  AND (d.lease_until IS NULL OR d.lease_until <= $4)
				ORDER BY d.next_attempt_at, d.seq
				LIMIT GREATEST(0, LEAST(c.share, c.cap - ` + countLeases("c.id", "$4", "c.cap") + `))
			) x WHERE NOT c.fifo
			UNION ALL
			SELECT h.seq, c.ord, h.next_attempt_at FROM c CROSS JOIN LATERAL (
				SELECT d.seq, d.next_attempt_at, d.lease_until FROM deliveries d
				WHERE d.endpoint_id = c.id AND d.status = 'pending' ORDER BY d.seq LIMIT 1
			) h
			WHERE c.fifo AND (h.next_attempt_at <= $4 OR h.next_attempt_at = $7)
			  AND (h.lease_until IS NULL OR h.lease_until <= $4)
			  AND NOT EXISTS (SELECT 1 FROM deliveries l WHERE l.endpoint_id = c.id AND l.lease IS NOT NULL AND l.lease_until > $4)
		), pick AS (
			SELECT seq FROM due ORDER BY ord, next_attempt_at, seq LIMIT $8
		)
		UPDATE deliveries d SET lease = $5, lease_until = $6
		FROM pick, events ev, endpoints e
		WHERE d.seq = pick.seq AND d.status = 'pending' AND (d.lease_until IS NULL OR d.lease_until <= $4)
		  AND (d.next_attempt_at <= $4 OR d.next_attempt_at = $7)
		  AND ev.seq = d.event_seq AND e.id = d.endpoint_id
		RETURNING ` + sqlrow.ClaimColumns("seq")

// takeBuckets reads, under the claim's locks, the shared buckets of the
// rate-limited candidates and returns each one's tokens refilled up to now.
func takeBuckets(ctx context.Context, tx pgx.Tx, cands []candidate, now time.Time) (map[string]float64, error) {
	var keys []string
	for _, c := range cands {
		if c.rate > 0 {
			keys = append(keys, rateKey(c.id))
		}
	}
	buckets := map[string]float64{}
	if len(keys) == 0 {
		return buckets, nil
	}
	rows, err := tx.Query(ctx, `SELECT key, tokens, updated_at FROM rate_limits WHERE key = ANY($1::text[])`, keys)
	if err != nil {
		return nil, fmt.Errorf("read rate limit buckets: %w", err)
	}
	type level struct {
		tokens float64
		at     time.Time
	}
	stored := map[string]level{}
	for rows.Next() {
		var key string
		var l level
		var updated int64
		if err := rows.Scan(&key, &l.tokens, &updated); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read rate limit buckets: %w", err)
		}
		l.at = fromUS(updated)
		stored[key] = l
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read rate limit buckets: %w", err)
	}
	for _, c := range cands {
		if c.rate <= 0 {
			continue
		}
		limit := hookd.RateLimit{PerSecond: c.rate, Burst: rateBurst(c.rate)}
		l, ok := stored[rateKey(c.id)]
		if !ok {
			l = level{float64(limit.Burst), now} // a new bucket starts full
		}
		buckets[c.id] = hookd.Refill(l.tokens, l.at, limit, now)
	}
	return buckets, nil
}

// sortClaims orders claims oldest due first (seqs[i] is claims[i]'s delivery
// sequence number, the tiebreak), as the claim chose them.
func sortClaims(claims []*hookd.Claim, seqs []int64) { sort.Sort(claimOrder{claims, seqs}) }

// claimOrder sorts claims and their seqs together.
type claimOrder struct {
	claims []*hookd.Claim
	seqs   []int64
}

func (o claimOrder) Len() int { return len(o.claims) }
func (o claimOrder) Less(i, j int) bool {
	return cmp.Or(cmp.Compare(claimDue(o.claims[i]), claimDue(o.claims[j])), cmp.Compare(o.seqs[i], o.seqs[j])) < 0
}
func (o claimOrder) Swap(i, j int) {
	o.claims[i], o.claims[j] = o.claims[j], o.claims[i]
	o.seqs[i], o.seqs[j] = o.seqs[j], o.seqs[i]
}

// claimDue is a claim's next_attempt_at: a parked FIFO head (no time) last.
func claimDue(c *hookd.Claim) int64 {
	if t := c.Delivery.NextAttemptAt; !t.IsZero() {
		return t.UnixMicro()
	}
	return parked
}

// setAside ends the leases of broken claims, recording why, due again in a minute.
func (db *DB) setAside(ctx context.Context, broken []sqlrow.BrokenClaim, lease string, now time.Time) error {
	seqs, errs := make([]int64, len(broken)), make([]string, len(broken))
	for i, b := range broken {
		seqs[i], errs[i] = b.Seq, "cannot attempt: "+b.Err
	}
	_, err := db.pool.Exec(ctx, `UPDATE deliveries d SET lease = NULL, lease_until = NULL, next_attempt_at = $1,
		last_error = b.err, updated_at = $2
		FROM unnest($3::bigint[], $4::text[]) AS b(seq, err) WHERE d.seq = b.seq AND d.lease = $5`,
		us(now.Add(time.Minute)), us(now), seqs, errs, lease)
	if err != nil {
		return fmt.Errorf("set aside deliveries: %w", err)
	}
	return nil
}

func insertAttempt(ctx context.Context, tx pgx.Tx, a *hookd.Attempt) error {
	headers, err := sqlrow.AttemptHeaders(a)
	if err != nil {
		return err
	}
	tag, err := tx.Exec(ctx, `INSERT INTO attempts (id, delivery_seq, org_id, number, url, request_headers, status_code,
		response_body, duration_us, error, created_at)
		SELECT $1, seq, org_id, $2, $3, $4, $5, $6, $7, $8, $9 FROM deliveries WHERE id = $10`,
		a.ID, a.Number, a.URL, headers, a.StatusCode, a.ResponseBody, a.Duration.Microseconds(), a.Error,
		us(a.CreatedAt), a.DeliveryID)
	if err != nil {
		return fmt.Errorf("insert attempt: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return hookd.NotFound("delivery", a.DeliveryID)
	}
	return nil
}

// relaxCommitSQL makes its transaction commit without waiting for its WAL to
// reach the disk (synchronous_commit off), for transactions whose loss in a
// crash of PostgreSQL only makes a delivery be attempted again: attempt
// outcomes (with what they bring about: an endpoint disabled, a FIFO successor
// made due, delivery.failed or endpoint.disabled emitted), none of which the
// API acknowledged. A crash of hookd loses nothing (the commit is done in
// PostgreSQL's memory); a crash of PostgreSQL (or the machine) may lose the
// last fraction of a second of them, never corrupting anything, and the next
// synchronous commit (every publish, every claim, every API write) makes them
// durable too, since the WAL is written in order. What a lost outcome costs:
// the delivery is still leased, and attempted again once the lease ends (never
// while the first attempt runs), its consequences decided again then: a
// duplicate, which at-least-once delivery allows. Reads may see such an
// outcome before a crash takes it back.
const relaxCommitSQL = `SELECT set_config('synchronous_commit', 'off', true)`

// heldKey names an outcome: its delivery and the lease it was attempted under.
type heldKey struct{ delivery, lease string }

func heldOf(o *hookd.Outcome) heldKey { return heldKey{o.DeliveryID, o.Lease} }

// completeBatch records outcomes in one transaction. The attempts and the
// deliveries' new states are written by one statement each, whatever the number
// of outcomes; only the rare outcomes that disable an endpoint or emit events take more.
func (db *DB) completeBatch(ctx context.Context, outcomes []hookd.Outcome) error {
	if len(outcomes) == 0 {
		return nil
	}
	n := len(outcomes)
	var (
		dIDs, leases, statuses, errs   = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		next, created                  = make([]int64, n), make([]int64, n)
		codes                          = make([]int32, n)
		aIDs, aURLs, aHeaders, aBodies = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		aNumbers                       = make([]int32, n)
		aDurations                     = make([]int64, n)
	)
	for i := range outcomes {
		o := &outcomes[i]
		o.Attempt.DeliveryID = o.DeliveryID
		h, err := sqlrow.AttemptHeaders(&o.Attempt)
		if err != nil {
			return fmt.Errorf("complete deliveries: %w", err)
		}
		dIDs[i], leases[i], statuses[i], errs[i] = o.DeliveryID, o.Lease, o.Status, o.Attempt.Error
		next[i], created[i], codes[i] = us(o.NextAttemptAt), us(o.Attempt.CreatedAt), int32(o.Attempt.StatusCode)
		aIDs[i], aURLs[i], aHeaders[i], aBodies[i] = o.Attempt.ID, o.Attempt.URL, h, o.Attempt.ResponseBody
		aNumbers[i], aDurations[i] = int32(o.Attempt.Number), o.Attempt.Duration.Microseconds()
	}
	var wake bool
	err := db.tx(ctx, func(tx pgx.Tx) error {
		// One round trip for the commit mode (see relaxCommitSQL), the attempts and
		// the deliveries' new states.
		b := &pgx.Batch{}
		b.Queue(relaxCommitSQL)
		// Every attempt is recorded, also one whose lease was lost; one whose
		// delivery was deleted meanwhile (with its endpoint) has nowhere to go.
		b.Queue(`INSERT INTO attempts (id, delivery_seq, org_id, number, url, request_headers, status_code,
			response_body, duration_us, error, created_at)
			SELECT a.id, d.seq, d.org_id, a.number, a.url, a.headers, a.code, a.body, a.duration, a.err, a.created
			FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::text[], $6::int[], $7::text[], $8::bigint[],
			            $9::text[], $10::bigint[]) AS a(id, delivery, number, url, headers, code, body, duration, err, created)
			JOIN deliveries d ON d.id = a.delivery`,
			aIDs, dIDs, aNumbers, aURLs, aHeaders, codes, aBodies, aDurations, errs, created)
		// Only outcomes that still hold their lease change their delivery.
		b.Queue(`UPDATE deliveries d SET status = o.status, attempts = d.attempts + 1,
			cycle_attempts = d.cycle_attempts + 1, next_attempt_at = o.next, lease = NULL, lease_until = NULL,
			last_status_code = o.code, last_error = o.err, updated_at = o.created
			FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::int[], $6::text[], $7::bigint[])
			     AS o(id, lease, status, next, code, err, created)
			WHERE d.id = o.id AND d.lease = o.lease
			RETURNING d.id, o.lease, d.endpoint_id,
				(SELECT e.ordering = 'fifo' FROM endpoints e WHERE e.id = d.endpoint_id)`,
			dIDs, leases, statuses, next, codes, errs, created)
		br := tx.SendBatch(ctx, b)
		defer br.Close()
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("relax commit: %w", err)
		}
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("insert attempts: %w", err)
		}
		rows, err := br.Query()
		if err != nil {
			return fmt.Errorf("update deliveries: %w", err)
		}
		// Outcomes whose lease held, by delivery and lease (a stale outcome of the
		// same delivery may be in the batch) → endpoint id; and the FIFO
		// endpoints among theirs.
		held := map[heldKey]string{}
		fifo := map[string]bool{}
		for rows.Next() {
			var k heldKey
			var ep string
			var isFIFO *bool // NULL: the endpoint is being deleted
			if err := rows.Scan(&k.delivery, &k.lease, &ep, &isFIFO); err != nil {
				rows.Close()
				return fmt.Errorf("update deliveries: %w", err)
			}
			held[k] = ep
			if isFIFO != nil && *isFIFO {
				fifo[ep] = true
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("update deliveries: %w", err)
		}
		if err := br.Close(); err != nil {
			return fmt.Errorf("update deliveries: %w", err)
		}
		if err := noteEndpointHealth(ctx, tx, outcomes, held, created); err != nil {
			return err
		}
		p := newPublisher(ctx, tx)
		// A finished FIFO delivery lets the next one go; promote before disabling,
		// which parks the endpoint's deliveries again. (Other endpoints have
		// nothing to promote, and looking would walk the index entries of the
		// deliveries just finished, dead until vacuum.)
		finished := map[string]int64{} // endpoint id → when its last delivery finished
		for i := range outcomes {
			if ep, ok := held[heldOf(&outcomes[i])]; ok && fifo[ep] && outcomes[i].Status != hookd.DeliveryPending {
				finished[ep] = max(finished[ep], created[i])
			}
		}
		if len(finished) > 0 {
			promoted, err := promote(ctx, tx, finished)
			if err != nil {
				return err
			}
			p.due = promoted
		}
		for i := range outcomes {
			o := &outcomes[i]
			if _, ok := held[heldOf(o)]; !ok {
				continue // lease lost: another claim owns the delivery now
			}
			if o.DisableEndpoint != "" {
				if err := disableEndpoint(ctx, tx, p, o, created[i]); err != nil {
					return err
				}
			}
			for _, ev := range o.Emit {
				if _, err := p.publish(ev); err != nil {
					return fmt.Errorf("emit %s: %w", ev.Type, err)
				}
			}
		}
		wake = p.due
		return nil
	})
	if err == nil && wake {
		db.wakeWorkers()
	}
	return err
}

// noteEndpointHealth updates the run of failures of the outcomes' endpoints (of
// the outcomes whose lease held), as if they were recorded one by one in the
// order of their attempts: an endpoint with a success ends its run, or starts a
// new one at its first failure after its last success; an endpoint with only
// failures starts a run at the first of them unless it has one. Endpoints are
// written in id order (concurrent batches lock them in the same order), and only
// when their state changes.
func noteEndpointHealth(ctx context.Context, tx pgx.Tx, outcomes []hookd.Outcome, held map[heldKey]string, at []int64) error {
	type health struct {
		lastOK    int64 // latest success, 0 if none
		firstFail int64 // earliest failure after lastOK, 0 if none
	}
	eps := map[string]*health{}
	for i := range outcomes {
		ep, ok := held[heldOf(&outcomes[i])]
		if !ok {
			continue
		}
		h := eps[ep]
		if h == nil {
			h = &health{}
			eps[ep] = h
		}
		if outcomes[i].Attempt.Error == "" {
			h.lastOK = max(h.lastOK, at[i])
		}
	}
	for i := range outcomes {
		ep, ok := held[heldOf(&outcomes[i])]
		if !ok || outcomes[i].Attempt.Error == "" {
			continue
		}
		if h := eps[ep]; at[i] > h.lastOK && (h.firstFail == 0 || at[i] < h.firstFail) {
			h.firstFail = at[i]
		}
	}
	ids := make([]string, 0, len(eps))
	for ep := range eps {
		ids = append(ids, ep)
	}
	slices.Sort(ids)
	var setIDs, startIDs []string
	var setAt, startAt []int64
	for _, ep := range ids {
		h := eps[ep]
		switch {
		case h.lastOK != 0: // the run ends; perhaps a new one begins
			setIDs, setAt = append(setIDs, ep), append(setAt, h.firstFail)
		case h.firstFail != 0:
			startIDs, startAt = append(startIDs, ep), append(startAt, h.firstFail)
		}
	}
	if len(setIDs) > 0 {
		if _, err := tx.Exec(ctx, `UPDATE endpoints e SET failing_since = f.at FROM unnest($1::text[], $2::bigint[]) AS f(id, at)
			WHERE e.id = f.id AND e.failing_since <> f.at`, setIDs, setAt); err != nil {
			return fmt.Errorf("note endpoint health: %w", err)
		}
	}
	if len(startIDs) > 0 {
		if _, err := tx.Exec(ctx, `UPDATE endpoints e SET failing_since = f.at FROM unnest($1::text[], $2::bigint[]) AS f(id, at)
			WHERE e.id = f.id AND e.failing_since = 0`, startIDs, startAt); err != nil {
			return fmt.Errorf("note endpoint health: %w", err)
		}
	}
	return nil
}

// promote makes the oldest pending delivery of each FIFO endpoint in finished
// (endpoint id → when) due then, if it was parked behind a delivery that just
// finished.
func promote(ctx context.Context, tx pgx.Tx, finished map[string]int64) (bool, error) {
	eps, at := make([]string, 0, len(finished)), make([]int64, 0, len(finished))
	for ep, t := range finished {
		eps, at = append(eps, ep), append(at, t)
	}
	tag, err := tx.Exec(ctx, `UPDATE deliveries d SET next_attempt_at = f.at
		FROM unnest($1::text[], $2::bigint[]) AS f(endpoint_id, at)
		WHERE d.seq = (SELECT MIN(h.seq) FROM deliveries h WHERE h.endpoint_id = f.endpoint_id AND h.status = 'pending')
		  AND d.next_attempt_at = $3`, eps, at, parked)
	if err != nil {
		return false, fmt.Errorf("promote next fifo deliveries: %w", err)
	}
	return tag.RowsAffected() > 0, nil
}

// disableEndpoint disables the outcome's endpoint and, if it was enabled, emits
// endpoint.disabled.
func disableEndpoint(ctx context.Context, tx pgx.Tx, p *publisher, o *hookd.Outcome, now int64) error {
	var endpointID, orgID, url string
	err := tx.QueryRow(ctx, `UPDATE endpoints SET enabled = false, disabled_reason = $1, updated_at = $2
		WHERE id = (SELECT endpoint_id FROM deliveries WHERE id = $3) AND enabled
		  AND ($4::bigint = 0 OR (failing_since <> 0 AND failing_since <= $5::bigint))
		RETURNING id, org_id, url`, o.DisableEndpoint, now, o.DeliveryID,
		o.FailingFor.Microseconds(), now-o.FailingFor.Microseconds()).Scan(&endpointID, &orgID, &url)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("disable endpoint: %w", err)
	}
	delete(p.subs, orgID)
	if err := park(ctx, tx, endpointID); err != nil {
		return err
	}
	t := fromUS(now)
	ev := hookd.NewEndpointDisabledEvent(ids.NewAt("evt", t), orgID, endpointID, url, o.DisableEndpoint, t)
	if _, err := p.publish(ev); err != nil {
		return fmt.Errorf("emit %s: %w", ev.Type, err)
	}
	return nil
}

// ReleaseDeliveries implements hookd.Store.
func (db *DB) ReleaseDeliveries(ctx context.Context, releases []hookd.Release) error {
	if len(releases) == 0 {
		return nil
	}
	ids, leases, next := make([]string, len(releases)), make([]string, len(releases)), make([]int64, len(releases))
	for i, r := range releases {
		ids[i], leases[i], next[i] = r.DeliveryID, r.Lease, us(r.NextAttemptAt)
	}
	if _, err := db.pool.Exec(ctx, `UPDATE deliveries d SET lease = NULL, lease_until = NULL, next_attempt_at = r.next
		FROM unnest($1::text[], $2::text[], $3::bigint[]) AS r(id, lease, next) WHERE d.id = r.id AND d.lease = r.lease`,
		ids, leases, next); err != nil {
		return fmt.Errorf("release deliveries: %w", err)
	}
	return nil
}
