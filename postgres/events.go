package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/ids"
	"github.com/hookd/hookd/internal/cursor"
	"github.com/hookd/hookd/internal/sqlrow"
)

// subscriber is what fan-out needs of an endpoint.
type subscriber struct {
	id      string
	events  []string
	enabled bool
	fifo    bool
}

// publisher fans events out inside one transaction. It reads each organization's
// endpoints once per transaction: other instances change endpoints too, so no
// cache outlives it.
type publisher struct {
	ctx   context.Context
	tx    pgx.Tx
	subs  map[string][]subscriber
	due   bool // a delivery became due: notify the workers on commit
	usage sqlrow.Tally
	orgs  map[string]hookd.Organization // quota settings read with the subscribers
	// shard, if positive, is the usage shard of organizations without a quota.
	shard int
	// deferred, if not nil, gathers the usage of organizations without a
	// quota for a group commit to add at its end (see flushDeferredUsage).
	deferred map[sqlrow.UsageKey]int64
}

func newPublisher(ctx context.Context, tx pgx.Tx) *publisher {
	return &publisher{ctx: ctx, tx: tx, subs: map[string][]subscriber{}}
}

func (p *publisher) subscribers(orgID string) ([]subscriber, error) {
	if s, ok := p.subs[orgID]; ok {
		return s, nil
	}
	o := hookd.Organization{ID: orgID}
	err := p.tx.QueryRow(p.ctx, `SELECT monthly_quota, allow_overage FROM organizations WHERE id = $1 FOR KEY SHARE`, orgID).
		Scan(&o.MonthlyQuota, &o.AllowOverage)
	if err != nil {
		return nil, notFoundIf(err, "organization", orgID)
	}
	if p.orgs == nil {
		p.orgs = map[string]hookd.Organization{}
	}
	p.orgs[orgID] = o
	rows, err := p.tx.Query(p.ctx, `SELECT id, events, enabled, ordering = 'fifo' FROM endpoints WHERE org_id = $1 ORDER BY seq`, orgID)
	if err != nil {
		return nil, fmt.Errorf("read subscribers: %w", err)
	}
	defer rows.Close()
	subs := []subscriber{}
	for rows.Next() {
		var s subscriber
		var events string
		if err := rows.Scan(&s.id, &events, &s.enabled, &s.fifo); err != nil {
			return nil, fmt.Errorf("read subscribers: %w", err)
		}
		if err := json.Unmarshal([]byte(events), &s.events); err != nil {
			return nil, fmt.Errorf("decode endpoint events: %w", err)
		}
		subs = append(subs, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read subscribers: %w", err)
	}
	p.subs[orgID] = subs
	return subs, nil
}

// publish stores ev (unless it is a duplicate) and its deliveries: publishAll
// of one event.
func (p *publisher) publish(ev *hookd.Event) (hookd.PublishResult, error) {
	rs, err := p.publishAll([]*hookd.Event{ev})
	if err != nil {
		return hookd.PublishResult{}, err
	}
	return rs[0], nil
}

// publishAll stores events (except duplicates) and their deliveries in two
// statements whatever their number: one insert of the events, one of their
// deliveries (a batch of 1,000 events is not 2,000 round trips). The insert
// itself detects a duplicate (ON CONFLICT on the id and idempotency key), so two
// instances publishing the same event at once store it once: the second waits
// for the first to commit and then finds its event. Calls whose events repeat an
// id or an idempotency key among themselves go event by event, so that the first
// of them wins as it would.
func (p *publisher) publishAll(events []*hookd.Event) ([]hookd.PublishResult, error) {
	results := make([]hookd.PublishResult, len(events))
	if repeats(events) {
		for i, ev := range events {
			r, err := p.publish(ev)
			if err != nil {
				return nil, err
			}
			results[i] = r
		}
		return results, nil
	}
	n := len(events)
	var (
		orgs, evIDs, types, created = make([]string, n), make([]string, n), make([]string, n), make([]int64, n)
		data                        = make([][]byte, n)
		idems                       = make([]*string, n)
	)
	for i, ev := range events {
		if _, err := p.subscribers(ev.OrgID); err != nil {
			return nil, err
		}
		orgs[i], evIDs[i], types[i], data[i], created[i] = ev.OrgID, ev.ID, ev.Type, []byte(ev.Data), us(ev.CreatedAt)
		if ev.IdempotencyKey != "" {
			idems[i] = &ev.IdempotencyKey
		}
	}
	// ORDER BY ord: sequence numbers follow the events' order, as they would
	// one insert at a time.
	rows, err := p.tx.Query(p.ctx, `INSERT INTO events (org_id, id, type, data, idempotency_key, created_at)
		SELECT e.org_id, e.id, e.type, e.data, e.idem, e.created
		FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::text[], $6::bigint[])
		     WITH ORDINALITY AS e(org_id, id, type, data, idem, created, ord)
		ORDER BY e.ord
		ON CONFLICT DO NOTHING RETURNING seq, org_id, id`, planOnce, orgs, evIDs, types, data, idems, created)
	if err != nil {
		return nil, fmt.Errorf("insert events: %w", err)
	}
	type key struct{ org, id string }
	seqs := make(map[key]int64, n)
	for rows.Next() {
		var seq int64
		var k key
		if err := rows.Scan(&seq, &k.org, &k.id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("insert events: %w", err)
		}
		seqs[k] = seq
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("insert events: %w", err)
	}

	// The FIFO endpoints that had pending deliveries before these events: each
	// one's new deliveries are parked behind them; otherwise its first new
	// delivery is due and the rest wait behind it.
	var fifo []string
	for _, ev := range events {
		for _, s := range p.subs[ev.OrgID] {
			if s.fifo && s.enabled && !slices.Contains(fifo, s.id) {
				fifo = append(fifo, s.id)
			}
		}
	}
	backlog := map[string]bool{}
	if len(fifo) > 0 {
		if backlog, err = p.fifoBacklog(fifo); err != nil {
			return nil, err
		}
	}
	var (
		dIDs, dOrgs, dEndpoints, dStatus []string
		dEvents, dNext, dCreated         []int64
	)
	for i, ev := range events {
		seq, stored := seqs[key{ev.OrgID, ev.ID}]
		if !stored {
			r, err := p.duplicate(ev)
			if err != nil {
				return nil, err
			}
			results[i] = r
			continue
		}
		results[i] = hookd.PublishResult{Event: ev}
		for _, s := range p.subs[ev.OrgID] {
			ep := hookd.Endpoint{Events: s.events}
			if !ep.Subscribes(ev.Type) {
				continue
			}
			status, next := hookd.DeliveryPending, us(ev.CreatedAt)
			switch {
			case !s.enabled:
				status = hookd.DeliverySkipped
			case s.fifo && backlog[s.id]:
				next = parked
			case s.fifo:
				backlog[s.id] = true // the deliveries after this one wait for it
			}
			p.due = p.due || status == hookd.DeliveryPending
			dIDs, dOrgs, dEndpoints, dStatus = append(dIDs, ids.NewAt("dlv", ev.CreatedAt)), append(dOrgs, ev.OrgID), append(dEndpoints, s.id), append(dStatus, status)
			dEvents, dNext, dCreated = append(dEvents, seq), append(dNext, next), append(dCreated, us(ev.CreatedAt))
			results[i].Deliveries++
		}
	}
	if len(dIDs) == 0 {
		return results, nil
	}
	if _, err := p.tx.Exec(p.ctx, `INSERT INTO deliveries (id, org_id, event_seq, endpoint_id, status, next_attempt_at, created_at, updated_at)
		SELECT d.id, d.org_id, d.event_seq, d.endpoint_id, d.status, d.next, d.created, d.created
		FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::bigint[], $7::bigint[])
		     WITH ORDINALITY AS d(id, org_id, event_seq, endpoint_id, status, next, created, ord)
		ORDER BY d.ord`, planOnce,
		dIDs, dOrgs, dEvents, dEndpoints, dStatus, dNext, dCreated); err != nil {
		return nil, fmt.Errorf("insert deliveries: %w", err)
	}
	return results, nil
}

// repeats reports whether two of events share an organization and an id or an
// idempotency key.
func repeats(events []*hookd.Event) bool {
	type key struct{ org, id string }
	ids := make(map[key]bool, len(events))
	idems := map[key]bool{}
	for _, ev := range events {
		k := key{ev.OrgID, ev.ID}
		if ids[k] {
			return true
		}
		ids[k] = true
		if ev.IdempotencyKey != "" {
			k := key{ev.OrgID, ev.IdempotencyKey}
			if idems[k] {
				return true
			}
			idems[k] = true
		}
	}
	return false
}

// duplicate returns the stored event that ev's id or idempotency key names.
func (p *publisher) duplicate(ev *hookd.Event) (hookd.PublishResult, error) {
	q := `SELECT ` + sqlrow.EventColumns + ` FROM events WHERE org_id = $1 AND id = $2`
	a := args{ev.OrgID, ev.ID}
	if ev.IdempotencyKey != "" {
		q += ` UNION ALL SELECT ` + sqlrow.EventColumns + ` FROM events WHERE org_id = $1 AND idempotency_key = $3`
		a = append(a, ev.IdempotencyKey)
	}
	old, seq, err := sqlrow.ScanEvent(p.tx.QueryRow(p.ctx, q+` LIMIT 1`, a...))
	if err != nil {
		return hookd.PublishResult{}, fmt.Errorf("read the original of a duplicate event: %w", err)
	}
	var n int
	if err := p.tx.QueryRow(p.ctx, `SELECT COUNT(*) FROM deliveries WHERE event_seq = $1`, seq).Scan(&n); err != nil {
		return hookd.PublishResult{}, fmt.Errorf("count deliveries: %w", err)
	}
	return hookd.PublishResult{Event: old, Deliveries: n, Duplicate: true}, nil
}

// fifoBacklog reports which of the endpoints have pending deliveries.
func (p *publisher) fifoBacklog(endpoints []string) (map[string]bool, error) {
	rows, err := p.tx.Query(p.ctx, `SELECT c.id FROM unnest($1::text[]) AS c(id)
		WHERE EXISTS (SELECT 1 FROM deliveries d WHERE d.endpoint_id = c.id AND d.status = 'pending')`, endpoints)
	if err != nil {
		return nil, fmt.Errorf("find fifo backlog: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("find fifo backlog: %w", err)
	}
	out := make(map[string]bool, len(ids))
	for _, id := range ids {
		out[id] = true
	}
	return out, nil
}

// Event implements hookd.Store.
func (db *DB) Event(ctx context.Context, orgID, id string) (*hookd.Event, []*hookd.Delivery, error) {
	a := args{id}
	where := orgClause("org_id", orgID, &a)
	ev, seq, err := sqlrow.ScanEvent(db.pool.QueryRow(ctx, `SELECT `+sqlrow.EventColumns+`
		FROM events WHERE id = $1`+where+` ORDER BY seq DESC LIMIT 1`, a...))
	if err != nil {
		return nil, nil, fmt.Errorf("get event: %w", notFoundIf(err, "event", id))
	}
	rows, err := db.pool.Query(ctx, `SELECT `+sqlrow.DeliveryColumns+` FROM deliveries d JOIN events ev ON ev.seq = d.event_seq
		WHERE d.event_seq = $1 ORDER BY d.seq`, seq)
	if err != nil {
		return nil, nil, fmt.Errorf("get event deliveries: %w", err)
	}
	ds, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*hookd.Delivery, error) {
		d, _, err := sqlrow.ScanDelivery(r)
		return d, err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("get event deliveries: %w", err)
	}
	return ev, ds, nil
}

// ListEvents implements hookd.Store.
func (db *DB) ListEvents(ctx context.Context, f hookd.EventFilter) ([]*hookd.Event, string, error) {
	before, err := cursor.DecodeBefore(f.Cursor)
	if err != nil {
		return nil, "", err
	}
	limit := cursor.Limit(f.Page)
	a := args{before}
	q := `SELECT ` + sqlrow.EventColumns + ` FROM events WHERE seq < $1`
	if f.OrgID != "" {
		q += ` AND org_id = ` + a.add(f.OrgID)
	}
	if f.Type != "" {
		q += ` AND type = ` + a.add(f.Type)
	}
	if !f.Since.IsZero() {
		q += ` AND created_at >= ` + a.add(us(f.Since))
	}
	rows, err := db.pool.Query(ctx, q+` ORDER BY seq DESC LIMIT `+a.add(limit+1), a...)
	if err != nil {
		return nil, "", fmt.Errorf("list events: %w", err)
	}
	size := 0
	full := func(ev *hookd.Event) bool {
		size += len(ev.Data)
		return size >= hookd.MaxPageDataBytes
	}
	out, next, err := collectPage(rows, limit, func(r pgx.Rows) (*hookd.Event, int64, error) { return sqlrow.ScanEvent(r) }, full)
	if err != nil {
		return nil, "", fmt.Errorf("list events: %w", err)
	}
	return out, next, nil
}

// RecordTest implements hookd.Store.
func (db *DB) RecordTest(ctx context.Context, ev *hookd.Event, d *hookd.Delivery, a *hookd.Attempt) error {
	err := db.tx(ctx, func(tx pgx.Tx) error {
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM endpoints WHERE id = $1 AND org_id = $2`, d.EndpointID, d.OrgID).Scan(&one); err != nil {
			return notFoundIf(err, "endpoint", d.EndpointID)
		}
		var idem any
		if ev.IdempotencyKey != "" {
			idem = ev.IdempotencyKey
		}
		var seq int64
		if err := tx.QueryRow(ctx, `INSERT INTO events (org_id, id, type, data, idempotency_key, created_at)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq`,
			ev.OrgID, ev.ID, ev.Type, []byte(ev.Data), idem, us(ev.CreatedAt)).Scan(&seq); err != nil {
			return fmt.Errorf("insert event: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO deliveries (id, org_id, event_seq, endpoint_id, status, next_attempt_at,
			attempts, cycle_attempts, last_status_code, last_error, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, 1, 1, $7, $8, $6, $9)`,
			d.ID, ev.OrgID, seq, d.EndpointID, d.Status, us(ev.CreatedAt), a.StatusCode, a.Error, us(a.CreatedAt)); err != nil {
			return fmt.Errorf("insert delivery: %w", err)
		}
		return insertAttempt(ctx, tx, a)
	})
	if err != nil {
		return fmt.Errorf("record test delivery: %w", err)
	}
	return nil
}
