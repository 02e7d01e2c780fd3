package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/ids"
	"github.com/hookd/hookd/internal/cursor"
	"github.com/hookd/hookd/internal/sqlrow"
)

const deliveryColumns = sqlrow.DeliveryColumns

// scanDelivery reads DeliveryColumns, with whether the delivery is leased
// (claimed and not yet recorded or released) from memory.
func (db *DB) scanDelivery(s sqlrow.Scanner) (*hookd.Delivery, int64, error) {
	d, seq, err := sqlrow.ScanDelivery(s)
	if err == nil {
		d.InFlight = db.leases.has(seq)
	}
	return d, seq, err
}

// Delivery implements hookd.Store.
func (db *DB) Delivery(ctx context.Context, orgID, id string) (*hookd.Delivery, []*hookd.Attempt, error) {
	where, args := orgClause("d.org_id", orgID, []any{id})
	d, seq, err := db.scanDelivery(db.r.QueryRowContext(ctx, `SELECT `+deliveryColumns+`
		FROM deliveries d JOIN events ev ON ev.seq = d.event_seq WHERE d.id = ?`+where, args...))
	if err != nil {
		return nil, nil, fmt.Errorf("get delivery: %w", notFoundIf(err, "delivery", id))
	}
	rows, err := db.r.QueryContext(ctx, `SELECT `+sqlrow.AttemptColumns+` FROM attempts WHERE delivery_seq = ? ORDER BY seq`, seq)
	if err != nil {
		return nil, nil, fmt.Errorf("get attempts: %w", err)
	}
	defer rows.Close()
	var as []*hookd.Attempt
	for rows.Next() {
		a, err := sqlrow.ScanAttempt(rows, d.ID)
		if err != nil {
			return nil, nil, fmt.Errorf("get attempts: %w", err)
		}
		as = append(as, a)
	}
	if err := rows.Err(); err != nil {
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
	q := `SELECT ` + deliveryColumns + ` FROM deliveries d JOIN events ev ON ev.seq = d.event_seq WHERE d.seq < ?`
	args := []any{before}
	if f.OrgID != "" {
		q, args = q+` AND d.org_id = ?`, append(args, f.OrgID)
	}
	if f.EndpointID != "" {
		q, args = q+` AND d.endpoint_id = ?`, append(args, f.EndpointID)
	}
	if f.EventID != "" {
		// Through deliveries_event: the event's few deliveries, not a walk of the log.
		sub, subArgs := orgClause("org_id", f.OrgID, []any{f.EventID})
		q, args = q+` AND d.event_seq IN (SELECT seq FROM events WHERE id = ?`+sub+`)`, append(args, subArgs...)
	}
	if f.Status != "" {
		q, args = q+` AND d.status = ?`, append(args, f.Status)
	}
	rows, err := db.r.QueryContext(ctx, q+` ORDER BY d.seq DESC LIMIT ?`, append(args, limit+1)...)
	if err != nil {
		return nil, "", fmt.Errorf("list deliveries: %w", err)
	}
	out, next, err := collectPage(rows, limit, func(r *sql.Rows) (*hookd.Delivery, int64, error) { return db.scanDelivery(r) }, nil)
	if err != nil {
		return nil, "", fmt.Errorf("list deliveries: %w", err)
	}
	return out, next, nil
}

// RetryDelivery implements hookd.Store.
func (db *DB) RetryDelivery(ctx context.Context, orgID, id string, now time.Time) (*hookd.Delivery, error) {
	err := db.write(ctx, func(tx wtx) error {
		where, args := orgClause("org_id", orgID, []any{id})
		var one int
		if err := tx.QueryRow(`SELECT 1 FROM deliveries WHERE id = ?`+where, args...).Scan(&one); err != nil {
			return notFoundIf(err, "delivery", id)
		}
		if db.leases.leasedID(id, us(now)) {
			return hookd.Errorf(hookd.ECONFLICT, "delivery %q is being attempted right now; retry it once the attempt is over", id)
		}
		_, err := tx.Exec(`UPDATE deliveries SET status = 'pending', next_attempt_at = `+dueOrParked+`,
			cycle_attempts = 0, updated_at = ? WHERE id = ?`, us(now), parked, us(now), id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("retry delivery: %w", err)
	}
	d, _, err := db.Delivery(ctx, orgID, id)
	return d, err
}

// Replay implements hookd.Store.
func (db *DB) Replay(ctx context.Context, p hookd.ReplayParams) (int, error) {
	var n int64
	err := db.write(ctx, func(tx wtx) error {
		where, args := orgClause("org_id", p.OrgID, []any{p.EndpointID})
		var one int
		if err := tx.QueryRow(`SELECT 1 FROM endpoints WHERE id = ?`+where, args...).Scan(&one); err != nil {
			return notFoundIf(err, "endpoint", p.EndpointID)
		}
		q := `UPDATE deliveries SET status = 'pending', next_attempt_at = ` + dueOrParked + `, cycle_attempts = 0,
			updated_at = ? WHERE endpoint_id = ? AND created_at >= ?`
		args = []any{us(p.Now), parked, us(p.Now), p.EndpointID, us(p.Since)}
		if !p.Until.IsZero() {
			q, args = q+` AND created_at < ?`, append(args, us(p.Until))
		}
		if p.Status != "" {
			q, args = q+` AND status = ?`, append(args, p.Status)
		} else {
			q += ` AND status <> 'pending'`
		}
		res, err := tx.Exec(q, args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("replay: %w", err)
	}
	return int(n), nil
}

// ClaimDeliveries implements hookd.Store. It chooses on a reader connection, so that
// walking the queue never holds up writes; leases in memory (see leases) what no
// live lease holds; and loads the claims on a reader again, keeping only those
// still pending, due and on an enabled endpoint.
//
// Claims choose and lease one at a time (db.due.mu): each then sees the
// leases of the one before, so that concurrent claims never choose the same
// deliveries or share out the read-ahead between them and come back with less
// than there is (the engine claims from one goroutine, so this costs it
// nothing).
func (db *DB) ClaimDeliveries(ctx context.Context, p hookd.ClaimParams) ([]*hookd.Claim, error) {
	lease := ids.New("lease")
	now := us(p.Now)
	db.due.mu.Lock()
	chosen, err := db.chooseDue(ctx, p)
	var leased []int64
	if err == nil {
		leased = db.leases.take(chosen, lease, us(p.Now.Add(p.Lease)), now)
	}
	db.due.mu.Unlock()
	if err != nil || len(leased) == 0 {
		return nil, err
	}
	claims, broken, err := db.loadClaims(ctx, leased, chosen, lease, now)
	if err != nil {
		db.leases.endSeqs(leased, lease)
		return nil, fmt.Errorf("claim deliveries: %w", err)
	}
	if len(broken) > 0 {
		if err := db.setAside(ctx, broken, lease, p.Now); err != nil {
			return claims, fmt.Errorf("claim deliveries: %w", err)
		}
	}
	return claims, nil
}

// dueEndpoint is an enabled endpoint with pending deliveries, as claims see it.
type dueEndpoint struct {
	id          string
	fifo        bool
	maxInFlight int64         // its own cap; 0 for the engine's default
	due         sql.NullInt64 // its earliest next_attempt_at
}

// dueTTL bounds how long claims reuse a summary of the endpoints with pending
// deliveries (see dueEndpoints). Reading it costs ~10 µs per such endpoint
// (~1 ms with 100), and what a stale summary misses is only work that went
// away, or a retry of an endpoint with nothing else pending, due seconds
// later anyway.
const dueTTL = 25 * time.Millisecond

// dueEndpoints returns the enabled endpoints with pending deliveries (a loose
// scan of the pending index, so its cost grows with those endpoints, not with
// their backlogs), with their earliest due time. Claims reuse the last summary
// for up to dueTTL unless a batch that may have added due work committed since
// (db.gen: a publish, a retry, an endpoint changed, an outcome's emitted
// events or FIFO successor). Meanwhile the summary can only be behind on work
// that went away (attempted, postponed, its endpoint disabled or deleted),
// which each endpoint's own query for due deliveries, and the claim's loading
// of them, see. db.due.mu must be held.
func (db *DB) dueEndpoints(ctx context.Context) ([]dueEndpoint, error) {
	gen := db.gen.Load() // before the query: a commit after it makes the summary stale
	if db.due.gen == gen && time.Since(db.due.at) < db.due.ttl && db.due.eps != nil {
		return db.due.eps, nil
	}
	db.due.queries.Add(1)
	rows, err := db.rquery(ctx, `
		WITH RECURSIVE eps(id) AS (
			SELECT (SELECT MIN(endpoint_id) FROM deliveries WHERE status = 'pending')
			UNION ALL
			SELECT (SELECT MIN(endpoint_id) FROM deliveries WHERE status = 'pending' AND endpoint_id > eps.id)
			FROM eps WHERE eps.id IS NOT NULL
		)
		SELECT e.id, e.ordering = 'fifo', e.max_in_flight,
		       (SELECT MIN(d.next_attempt_at) FROM deliveries d WHERE d.endpoint_id = e.id AND d.status = 'pending')
		FROM eps JOIN endpoints e ON e.id = eps.id
		WHERE e.enabled = 1`)
	if err != nil {
		return nil, fmt.Errorf("choose due endpoints: %w", err)
	}
	defer rows.Close()
	eps := []dueEndpoint{}
	for rows.Next() {
		var ep dueEndpoint
		if err := rows.Scan(&ep.id, &ep.fifo, &ep.maxInFlight, &ep.due); err != nil {
			return nil, fmt.Errorf("choose due endpoints: %w", err)
		}
		eps = append(eps, ep)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("choose due endpoints: %w", err)
	}
	db.due.gen, db.due.at, db.due.eps = gen, time.Now(), eps
	// Read-ahead is kept only for endpoints that are still enabled, unordered
	// and with pending work.
	keep := make(map[string]bool, len(eps))
	for _, ep := range eps {
		keep[ep.id] = !ep.fifo
	}
	maps.DeleteFunc(db.due.ahead, func(id string, _ []int64) bool { return !keep[id] })
	return eps, nil
}

// chosenDelivery is a delivery chooseDue picked.
type chosenDelivery struct {
	seq      int64
	endpoint string
}

// endpointsOf returns the endpoints of the chosen deliveries, each once.
func endpointsOf(chosen []chosenDelivery) []string {
	var ids []string
	seen := map[string]bool{}
	for _, c := range chosen {
		if !seen[c.endpoint] {
			seen[c.endpoint] = true
			ids = append(ids, c.endpoint)
		}
	}
	return ids
}

// chooseDue picks the deliveries to claim, endpoint by endpoint: of the enabled
// endpoints with pending work (dueEndpoints), it takes the ones with
// something due and free capacity (cap less live leases), oldest due first, and
// from each at most its free capacity of due, unleased deliveries (for a FIFO
// endpoint, its head only). db.due.mu must be held.
func (db *DB) chooseDue(ctx context.Context, p hookd.ClaimParams) ([]chosenDelivery, error) {
	now := us(p.Now)
	live := db.leases.live(now)
	const noCap = int64(1) << 40
	eps, err := db.dueEndpoints(ctx)
	if err != nil {
		return nil, err
	}
	excluded := make(map[string]bool, len(p.Exclude))
	for _, id := range p.Exclude {
		excluded[id] = true
	}
	type candidate struct {
		id     string
		fifo   bool
		free   int64
		leased []int64 // seqs of its live leases
		due    int64
	}
	var cands []candidate
	for _, ep := range eps {
		if excluded[ep.id] || !ep.due.Valid || ep.due.Int64 > now {
			continue
		}
		limit := noCap
		switch {
		case ep.fifo:
			limit = 1
		case ep.maxInFlight > 0:
			limit = ep.maxInFlight
		case p.MaxInFlight > 0:
			limit = int64(p.MaxInFlight)
		}
		if v, ok := p.Caps[ep.id]; ok {
			limit = min(limit, int64(v))
		}
		if p.PerEndpoint > 0 {
			limit = min(limit, int64(p.PerEndpoint))
		}
		c := candidate{id: ep.id, fifo: ep.fifo, leased: live[ep.id], due: ep.due.Int64}
		if c.free = limit - int64(len(c.leased)); c.free > 0 {
			cands = append(cands, c)
		}
	}
	slices.SortFunc(cands, func(a, b candidate) int { return cmp.Compare(a.due, b.due) })

	var out []chosenDelivery
	for _, c := range cands {
		if len(out) >= p.Limit {
			break
		}
		want := min(c.free, int64(p.Limit-len(out)))
		seqs, err := db.dueSeqs(ctx, c.id, c.fifo, c.leased, want, now)
		if err != nil {
			return nil, fmt.Errorf("choose due deliveries: %w", err)
		}
		for _, seq := range seqs {
			out = append(out, chosenDelivery{seq: seq, endpoint: c.id})
		}
	}
	return out, nil
}

// dueReadAhead is how many due deliveries of an unordered endpoint a claim
// reads at once (see dueSeqs), and maxReadAhead how many endpoints' read-ahead
// is kept.
const (
	dueReadAhead = 256
	maxReadAhead = 1024
)

// dueSeqs returns up to want due deliveries of an endpoint, oldest due first,
// leaving out those leased. For a FIFO endpoint that is its head, if due and
// not leased.
//
// An unordered endpoint's due deliveries are read dueReadAhead at a time and
// kept for the next claims (db.due.ahead), so that most claims take them from
// memory instead of asking the database for each endpoint each time. What is
// kept can only go stale by deliveries that stopped being due without being
// claimed here (the endpoint disabled meanwhile, say), and the claim's loading
// of the rows, which keeps only those still pending and due, leaves those out.
// Deliveries that became due since the read are taken once what was read is
// used up: oldest due first holds for each read, not across reads. db.due.mu
// must be held.
func (db *DB) dueSeqs(ctx context.Context, endpoint string, fifo bool, leased []int64, want, now int64) ([]int64, error) {
	var out []int64
	if !fifo {
		ahead := db.due.ahead[endpoint]
		k := min(int64(len(ahead)), want)
		out = append(out, ahead[:k]...)
		if ahead = ahead[k:]; len(ahead) == 0 {
			delete(db.due.ahead, endpoint)
		} else {
			db.due.ahead[endpoint] = ahead
		}
		if int64(len(out)) == want {
			return out, nil
		}
	}
	// The leased deliveries are among the due ones, and so are those taken
	// from the read-ahead: the index scan skips them, so that only new rows
	// come back. (A FIFO endpoint with a free slot has none leased.)
	skip := []byte("[]") // not null: NOT IN (NULL) would skip every row
	if len(leased)+len(out) > 0 {
		skip, _ = json.Marshal(append(slices.Clip(leased), out...))
	}
	q := `SELECT seq FROM deliveries WHERE endpoint_id = ? AND status = 'pending' AND next_attempt_at <= ?
		AND seq NOT IN (SELECT value FROM json_each(?)) ORDER BY next_attempt_at, seq LIMIT ?`
	limit := max(want-int64(len(out)), dueReadAhead)
	if fifo {
		q = `SELECT seq FROM deliveries WHERE seq = (SELECT MIN(seq) FROM deliveries WHERE endpoint_id = ? AND status = 'pending')
			AND next_attempt_at <= ? AND seq NOT IN (SELECT value FROM json_each(?)) LIMIT ?`
		limit = want
	}
	db.due.reads.Add(1)
	rows, err := db.rquery(ctx, q, endpoint, now, string(skip), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var read []int64
	for rows.Next() {
		var seq int64
		if err := rows.Scan(&seq); err != nil {
			return nil, err
		}
		read = append(read, seq)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	k := min(int64(len(read)), want-int64(len(out)))
	out = append(out, read[:k]...)
	if rest := read[k:]; len(rest) > 0 && len(db.due.ahead) < maxReadAhead {
		db.due.ahead[endpoint] = rest
	}
	return out, nil
}

// loadClaims reads leased deliveries with their events, keeping those still
// pending and due and still of the endpoint they were chosen for, and gives
// each its endpoint if that is enabled (ending the other leases). (A seq read
// ahead may name another delivery by now: SQLite reuses the seqs of the last
// rows once they are deleted, with their endpoint, say.) The endpoints, those
// of the chosen deliveries, are read and decoded once per claim, not once per
// delivery. A delivery whose endpoint secret cannot be opened is returned in
// broken instead.
func (db *DB) loadClaims(ctx context.Context, seqs []int64, chosen []chosenDelivery, lease string, now int64) ([]*hookd.Claim, []sqlrow.BrokenClaim, error) {
	eps, unusable, err := db.claimEndpoints(ctx, endpointsOf(chosen))
	if err != nil {
		return nil, nil, err
	}
	chosenFor := make(map[int64]string, len(chosen)) // seq → the endpoint it was chosen for
	for _, c := range chosen {
		chosenFor[c.seq] = c.endpoint
	}
	js, _ := json.Marshal(seqs)
	rows, err := db.rquery(ctx, `SELECT `+sqlrow.ClaimDeliveryColumns+`
		FROM deliveries d
		JOIN events ev ON ev.seq = d.event_seq
		WHERE d.seq IN (SELECT value FROM json_each(?)) AND d.status = 'pending' AND d.next_attempt_at <= ?
		ORDER BY d.next_attempt_at, d.seq`, string(js), now)
	if err != nil {
		return nil, nil, fmt.Errorf("load claims: %w", err)
	}
	defer rows.Close()
	var (
		claims []*hookd.Claim
		broken []sqlrow.BrokenClaim
		found  = make(map[int64]*hookd.Delivery, len(seqs))
		keep   = map[int64]bool{}
	)
	for rows.Next() {
		c, seq, err := sqlrow.ScanClaimDelivery(rows, lease)
		if err != nil {
			return nil, nil, fmt.Errorf("load claims: %w", err)
		}
		if c.Delivery.EndpointID != chosenFor[seq] {
			continue // not the delivery chosen: its lease ends below
		}
		if e := eps[c.Delivery.EndpointID]; e != nil {
			c.Endpoint = *e // shares the decoded Events and Headers, which no one changes
			c.Delivery.InFlight = true
			claims = append(claims, c)
			found[seq] = &c.Delivery
		} else if why, ok := unusable[c.Delivery.EndpointID]; ok {
			broken = append(broken, sqlrow.BrokenClaim{Seq: seq, Err: why})
			keep[seq] = true // set aside under this lease
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("load claims: %w", err)
	}
	db.leases.loaded(seqs, found, keep, lease)
	return claims, broken, nil
}

// claimEndpoints reads and decodes the enabled endpoints among ids; those whose
// row cannot be decoded (a secret that does not open) are in unusable, with why.
func (db *DB) claimEndpoints(ctx context.Context, ids []string) (eps map[string]*hookd.Endpoint, unusable map[string]string, err error) {
	js, _ := json.Marshal(ids)
	rows, err := db.rquery(ctx, `SELECT e.id, `+sqlrow.EndpointColumns("rowid")+` FROM endpoints e
		WHERE e.id IN (SELECT value FROM json_each(?)) AND e.enabled = 1`, string(js))
	if err != nil {
		return nil, nil, fmt.Errorf("load claimed endpoints: %w", err)
	}
	defer rows.Close()
	eps, unusable = make(map[string]*hookd.Endpoint, len(ids)), map[string]string{}
	for rows.Next() {
		var id string
		e, _, err := sqlrow.ScanEndpoint(rows, db.cfg.Sealer, &id)
		var de *sqlrow.DecodeError
		switch {
		case errors.As(err, &de):
			unusable[id] = de.Error()
		case err != nil:
			return nil, nil, fmt.Errorf("load claimed endpoints: %w", err)
		default:
			eps[e.ID] = e
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("load claimed endpoints: %w", err)
	}
	return eps, unusable, nil
}

// setAside ends the leases of broken claims, recording why, due again in a minute.
func (db *DB) setAside(ctx context.Context, broken []sqlrow.BrokenClaim, lease string, now time.Time) error {
	seqs := make([]int64, len(broken))
	err := db.writeRelaxed(ctx, func(tx wtx) error {
		for i, b := range broken {
			seqs[i] = b.Seq
			if !db.leases.holdsSeq(b.Seq, lease) {
				continue
			}
			if _, err := tx.Exec(`UPDATE deliveries SET next_attempt_at = ?, last_error = ?, updated_at = ? WHERE seq = ?`,
				us(now.Add(time.Minute)), "cannot attempt: "+b.Err, us(now), b.Seq); err != nil {
				return fmt.Errorf("set aside delivery: %w", err)
			}
		}
		return nil
	})
	if err == nil {
		db.leases.endSeqs(seqs, lease)
	}
	return err
}

// insertAttempt records attempt a of the delivery with the given seq and
// organization.
func insertAttempt(tx wtx, a *hookd.Attempt, headers string, seq int64, orgID string) error {
	if _, err := tx.Exec(`INSERT INTO attempts (id, delivery_seq, org_id, number, url, request_headers, status_code,
		response_body, duration_us, error, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		a.ID, seq, orgID, a.Number, a.URL, headers, a.StatusCode, a.ResponseBody, a.Duration.Microseconds(), a.Error,
		us(a.CreatedAt)); err != nil {
		return fmt.Errorf("insert attempt: %w", err)
	}
	return nil
}

// CompleteDeliveries implements hookd.Store.
func (db *DB) CompleteDeliveries(ctx context.Context, outcomes []hookd.Outcome) error {
	// The request headers are encoded here, not in the single writer.
	headers := make([]string, len(outcomes))
	for i := range outcomes {
		h, err := sqlrow.AttemptHeaders(&outcomes[i].Attempt)
		if err != nil {
			return fmt.Errorf("complete deliveries: %w", err)
		}
		headers[i] = h
	}
	// (It may run twice: see writeOp.rerun.)
	err := db.submit(ctx, writeOp{relaxed: true, rerun: true, fn: func(tx wtx) error {
		p := newPublisher(tx)
		for i := range outcomes {
			o := &outcomes[i]
			o.Attempt.DeliveryID = o.DeliveryID
			now := us(o.Attempt.CreatedAt)
			m, held := db.leases.holds(o.DeliveryID, o.Lease)
			seq, orgID, endpointID := m.seq, m.org, m.endpoint
			if held {
				res, err := tx.Exec(`UPDATE deliveries SET status = ?, attempts = attempts + 1, cycle_attempts = cycle_attempts + 1,
					next_attempt_at = ?, last_status_code = ?, last_error = ?, updated_at = ?
					WHERE seq = ? AND id = ?`, // (the seq of a delivery deleted meanwhile may be another's by now)
					o.Status, us(o.NextAttemptAt), o.Attempt.StatusCode, o.Attempt.Error, now, seq, o.DeliveryID)
				if err != nil {
					return fmt.Errorf("update delivery: %w", err)
				}
				if n, err := res.RowsAffected(); err != nil {
					return fmt.Errorf("update delivery: %w", err)
				} else if n == 0 {
					held = false // gone with its endpoint
				}
			}
			if !held {
				// Lease lost (another claim owns the delivery now) or the delivery
				// is gone with its endpoint: the attempt was made all the same, so
				// record it if the delivery still exists, and change nothing else.
				err := tx.QueryRow(`SELECT seq, org_id FROM deliveries WHERE id = ?`, o.DeliveryID).Scan(&seq, &orgID)
				if err == sql.ErrNoRows {
					continue
				}
				if err != nil {
					return fmt.Errorf("find delivery: %w", err)
				}
				if err := insertAttempt(tx, &o.Attempt, headers[i], seq, orgID); err != nil {
					return err
				}
				continue
			}
			if err := insertAttempt(tx, &o.Attempt, headers[i], seq, orgID); err != nil {
				return err
			}
			h, err := db.endpointHealth(tx, endpointID)
			if err != nil {
				return err
			}
			if err := noteEndpointHealth(tx, endpointID, h, o.Attempt.Error == "", now); err != nil {
				return err
			}
			if o.Status != hookd.DeliveryPending && h.fifo {
				if err := promote(tx, endpointID, now); err != nil {
					return err
				}
			}
			if o.DisableEndpoint != "" {
				if err := disableEndpoint(tx, p, o, now); err != nil {
					return err
				}
			}
			for _, ev := range o.Emit {
				if _, err := p.publish(ev); err != nil {
					return fmt.Errorf("emit %s: %w", ev.Type, err)
				}
			}
		}
		return nil
	}})
	if err != nil {
		return fmt.Errorf("complete deliveries: %w", err)
	}
	ids := make([]string, len(outcomes))
	for i, o := range outcomes {
		ids[i] = o.DeliveryID
	}
	db.leases.end(ids, func(i int) string { return outcomes[i].Lease })
	return nil
}

// endpointHealth is what recording an attempt needs of its endpoint.
type endpointHealth struct {
	fifo         bool  // ordering is FIFO: a finished delivery promotes the next
	failingSince int64 // start of the current run of failed attempts (µs), or 0
}

// endpointHealth returns the endpoint's entry in the writer's cache, reading it
// on a miss.
func (db *DB) endpointHealth(tx wtx, endpointID string) (endpointHealth, error) {
	if h, ok := db.health[endpointID]; ok {
		return h, nil
	}
	var h endpointHealth
	err := tx.QueryRow(`SELECT ordering = 'fifo', failing_since FROM endpoints WHERE id = ?`, endpointID).Scan(&h.fifo, &h.failingSince)
	if err != nil {
		return h, fmt.Errorf("read endpoint health: %w", err)
	}
	db.health[endpointID] = h
	return h, nil
}

// noteEndpointHealth ends an endpoint's run of failures after a successful attempt,
// or starts one at now after a failed one. Each is a no-op (no statement) when
// the endpoint (h, as cached) is already in that state.
func noteEndpointHealth(tx wtx, endpointID string, h endpointHealth, ok bool, now int64) error {
	switch {
	case ok && h.failingSince == 0, !ok && h.failingSince != 0:
		return nil
	case ok:
		h.failingSince = 0
	default:
		h.failingSince = now
	}
	if _, err := tx.Exec(`UPDATE endpoints SET failing_since = ? WHERE id = ?`, h.failingSince, endpointID); err != nil {
		return fmt.Errorf("note endpoint health: %w", err)
	}
	tx.db.health[endpointID] = h
	return nil
}

// promote makes the oldest pending delivery of a FIFO endpoint due now if it was
// parked behind a delivery that just finished.
func promote(tx wtx, endpointID string, now int64) error {
	if _, err := tx.Exec(`UPDATE deliveries SET next_attempt_at = ?
		WHERE seq = (SELECT MIN(seq) FROM deliveries WHERE endpoint_id = ? AND status = 'pending') AND next_attempt_at = ?`,
		now, endpointID, parked); err != nil {
		return fmt.Errorf("promote next fifo delivery: %w", err)
	}
	tx.db.moreDue = true
	return nil
}

// disableEndpoint disables the outcome's endpoint and, if it was enabled, emits
// endpoint.disabled.
func disableEndpoint(tx wtx, p *publisher, o *hookd.Outcome, now int64) error {
	var endpointID, orgID, url string
	err := tx.QueryRow(`UPDATE endpoints SET enabled = 0, disabled_reason = ?, updated_at = ?
		WHERE id = (SELECT endpoint_id FROM deliveries WHERE id = ?) AND enabled = 1
		  AND (? = 0 OR (failing_since <> 0 AND failing_since <= ?))
		RETURNING id, org_id, url`, o.DisableEndpoint, now, o.DeliveryID,
		o.FailingFor.Microseconds(), now-o.FailingFor.Microseconds()).Scan(&endpointID, &orgID, &url)
	if err == sql.ErrNoRows {
		return nil
	}
	if err != nil {
		return fmt.Errorf("disable endpoint: %w", err)
	}
	delete(p.subs, orgID)
	delete(tx.db.health, endpointID)
	if err := park(tx, endpointID); err != nil {
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
	err := db.writeRelaxed(ctx, func(tx wtx) error {
		for _, r := range releases {
			m, held := db.leases.holds(r.DeliveryID, r.Lease)
			if !held {
				continue
			}
			if _, err := tx.Exec(`UPDATE deliveries SET next_attempt_at = ? WHERE seq = ? AND id = ?`, us(r.NextAttemptAt), m.seq, r.DeliveryID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("release deliveries: %w", err)
	}
	ids := make([]string, len(releases))
	for i, r := range releases {
		ids[i] = r.DeliveryID
	}
	db.leases.end(ids, func(i int) string { return releases[i].Lease })
	return nil
}
