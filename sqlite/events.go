package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

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

// publisher fans events out inside a write transaction, with the writer's cache
// of each organization's endpoints.
type publisher struct {
	tx    wtx
	subs  map[string][]subscriber
	usage sqlrow.Tally // new events to count (see settleUsage)
}

func newPublisher(tx wtx) *publisher {
	return &publisher{tx: tx, subs: tx.db.subs}
}

func (p *publisher) subscribers(orgID string) ([]subscriber, error) {
	if s, ok := p.subs[orgID]; ok {
		return s, nil
	}
	var one int
	if err := p.tx.QueryRow(`SELECT 1 FROM organizations WHERE id = ?`, orgID).Scan(&one); err != nil {
		return nil, notFoundIf(err, "organization", orgID)
	}
	rows, err := p.tx.Query(`SELECT id, events, enabled, ordering = 'fifo' FROM endpoints WHERE org_id = ? ORDER BY rowid`, orgID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	subs := []subscriber{}
	for rows.Next() {
		var s subscriber
		var events string
		if err := rows.Scan(&s.id, &events, &s.enabled, &s.fifo); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(events), &s.events); err != nil {
			return nil, fmt.Errorf("decode endpoint events: %w", err)
		}
		subs = append(subs, s)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	p.subs[orgID] = subs
	return subs, nil
}

// existing returns the event stored under ev's id or idempotency key, or nil.
func (p *publisher) existing(ev *hookd.Event) (*hookd.Event, int, error) {
	q := `SELECT ` + sqlrow.EventColumns + ` FROM events WHERE org_id = ? AND id = ?`
	args := []any{ev.OrgID, ev.ID}
	if ev.IdempotencyKey != "" {
		q += ` UNION ALL SELECT ` + sqlrow.EventColumns + ` FROM events WHERE org_id = ? AND idempotency_key = ?`
		args = append(args, ev.OrgID, ev.IdempotencyKey)
	}
	old, seq, err := scanEvent(p.tx.QueryRow(q+` LIMIT 1`, args...))
	if err == sql.ErrNoRows {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	var n int
	if err := p.tx.QueryRow(`SELECT COUNT(*) FROM deliveries WHERE event_seq = ?`, seq).Scan(&n); err != nil {
		return nil, 0, err
	}
	return old, n, nil
}

// publish stores ev (unless it is a duplicate) and its deliveries.
func (p *publisher) publish(ev *hookd.Event) (hookd.PublishResult, error) {
	subs, err := p.subscribers(ev.OrgID)
	if err != nil {
		return hookd.PublishResult{}, err
	}
	// The insert finds a duplicate (same id, or same idempotency key) in the
	// unique indexes it updates anyway; only then is the original read.
	seq, err := p.insertEvent(ev)
	if err != nil {
		return hookd.PublishResult{}, err
	}
	if seq == 0 {
		old, n, err := p.existing(ev)
		if err == nil && old == nil {
			err = fmt.Errorf("event %q conflicts with a stored event that cannot be found", ev.ID)
		}
		if err != nil {
			return hookd.PublishResult{}, err
		}
		return hookd.PublishResult{Event: old, Deliveries: n, Duplicate: true}, nil
	}
	var n int
	for _, s := range subs {
		ep := hookd.Endpoint{Events: s.events}
		if !ep.Subscribes(ev.Type) {
			continue
		}
		status := hookd.DeliveryPending
		if !s.enabled {
			status = hookd.DeliverySkipped
		}
		next := us(ev.CreatedAt)
		if s.fifo && status == hookd.DeliveryPending {
			if next, err = p.fifoNext(s.id, next); err != nil {
				return hookd.PublishResult{}, err
			}
		}
		if err := p.insertDelivery(ids.NewAt("dlv", ev.CreatedAt), ev, seq, s.id, status, next); err != nil {
			return hookd.PublishResult{}, err
		}
		n++
	}
	return hookd.PublishResult{Event: ev, Deliveries: n}, nil
}

// insertEvent stores ev and returns its seq, or 0 if its organization has an
// event with its id or idempotency key already.
func (p *publisher) insertEvent(ev *hookd.Event) (int64, error) {
	var idem any
	if ev.IdempotencyKey != "" {
		idem = ev.IdempotencyKey
	}
	res, err := p.tx.Exec(`INSERT INTO events (org_id, id, type, data, idempotency_key, created_at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT DO NOTHING`,
		ev.OrgID, ev.ID, ev.Type, []byte(ev.Data), idem, us(ev.CreatedAt))
	if err != nil {
		return 0, fmt.Errorf("insert event: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return 0, err // a duplicate
	}
	return res.LastInsertId()
}

// fifoNext returns when a new delivery to a FIFO endpoint is due: now if the
// endpoint has nothing pending, otherwise parked behind what it has.
func (p *publisher) fifoNext(endpointID string, now int64) (int64, error) {
	var one int
	err := p.tx.QueryRow(`SELECT 1 FROM deliveries WHERE endpoint_id = ? AND status = 'pending' LIMIT 1`, endpointID).Scan(&one)
	switch {
	case err == sql.ErrNoRows:
		return now, nil
	case err != nil:
		return 0, fmt.Errorf("find fifo backlog: %w", err)
	}
	return parked, nil
}

func (p *publisher) insertDelivery(id string, ev *hookd.Event, eventSeq int64, endpointID, status string, next int64) error {
	t := us(ev.CreatedAt)
	if _, err := p.tx.Exec(`INSERT INTO deliveries (id, org_id, event_seq, endpoint_id, status, next_attempt_at, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, id, ev.OrgID, eventSeq, endpointID, status, next, t, t); err != nil {
		return fmt.Errorf("insert delivery: %w", err)
	}
	if status == hookd.DeliveryPending {
		p.tx.db.moreDue = true
	}
	return nil
}

// Publish implements hookd.Store.
func (db *DB) Publish(ctx context.Context, events []*hookd.Event) ([]hookd.PublishResult, error) {
	var results []hookd.PublishResult
	// (It may run twice: see writeOp.rerun. The second run sets every result again.)
	err := db.submit(ctx, writeOp{rerun: true, fn: func(tx wtx) error {
		p := newPublisher(tx)
		results = make([]hookd.PublishResult, len(events))
		for i, ev := range events {
			r, err := p.publish(ev)
			if err != nil {
				return err
			}
			if !r.Duplicate {
				p.count(ev)
			}
			results[i] = r
		}
		return p.settleUsage()
	}})
	if err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	return results, nil
}

var scanEvent = sqlrow.ScanEvent

// Event implements hookd.Store.
func (db *DB) Event(ctx context.Context, orgID, id string) (*hookd.Event, []*hookd.Delivery, error) {
	where, args := orgClause("org_id", orgID, []any{id})
	ev, seq, err := scanEvent(db.r.QueryRowContext(ctx, `SELECT `+sqlrow.EventColumns+`
		FROM events WHERE id = ?`+where+` ORDER BY seq DESC LIMIT 1`, args...))
	if err != nil {
		return nil, nil, fmt.Errorf("get event: %w", notFoundIf(err, "event", id))
	}
	rows, err := db.r.QueryContext(ctx, `SELECT `+deliveryColumns+` FROM deliveries d JOIN events ev ON ev.seq = d.event_seq
		WHERE d.event_seq = ? ORDER BY d.seq`, seq)
	if err != nil {
		return nil, nil, fmt.Errorf("get event deliveries: %w", err)
	}
	defer rows.Close()
	var ds []*hookd.Delivery
	for rows.Next() {
		d, _, err := db.scanDelivery(rows)
		if err != nil {
			return nil, nil, fmt.Errorf("get event deliveries: %w", err)
		}
		ds = append(ds, d)
	}
	if err := rows.Err(); err != nil {
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
	q := `SELECT ` + sqlrow.EventColumns + ` FROM events WHERE seq < ?`
	args := []any{before}
	if f.OrgID != "" {
		q, args = q+` AND org_id = ?`, append(args, f.OrgID)
	}
	if f.Type != "" {
		q, args = q+` AND type = ?`, append(args, f.Type)
	}
	if !f.Since.IsZero() {
		q, args = q+` AND created_at >= ?`, append(args, us(f.Since))
	}
	rows, err := db.r.QueryContext(ctx, q+` ORDER BY seq DESC LIMIT ?`, append(args, limit+1)...)
	if err != nil {
		return nil, "", fmt.Errorf("list events: %w", err)
	}
	size := 0
	full := func(ev *hookd.Event) bool {
		size += len(ev.Data)
		return size >= hookd.MaxPageDataBytes
	}
	out, next, err := collectPage(rows, limit, func(r *sql.Rows) (*hookd.Event, int64, error) { return scanEvent(r) }, full)
	if err != nil {
		return nil, "", fmt.Errorf("list events: %w", err)
	}
	return out, next, nil
}

// RecordTest implements hookd.Store.
func (db *DB) RecordTest(ctx context.Context, ev *hookd.Event, d *hookd.Delivery, a *hookd.Attempt) error {
	headers, err := sqlrow.AttemptHeaders(a)
	if err != nil {
		return fmt.Errorf("record test delivery: %w", err)
	}
	err = db.write(ctx, func(tx wtx) error {
		p := newPublisher(tx)
		var one int
		if err := tx.QueryRow(`SELECT 1 FROM endpoints WHERE id = ? AND org_id = ?`, d.EndpointID, d.OrgID).Scan(&one); err != nil {
			return notFoundIf(err, "endpoint", d.EndpointID)
		}
		seq, err := p.insertEvent(ev)
		if err != nil {
			return err
		}
		if err := p.insertDelivery(d.ID, ev, seq, d.EndpointID, d.Status, us(ev.CreatedAt)); err != nil {
			return err
		}
		var dseq int64
		if err := tx.QueryRow(`UPDATE deliveries SET attempts = 1, cycle_attempts = 1, last_status_code = ?, last_error = ?,
			updated_at = ? WHERE id = ? RETURNING seq`, a.StatusCode, a.Error, us(a.CreatedAt), d.ID).Scan(&dseq); err != nil {
			return err
		}
		return insertAttempt(tx, a, headers, dseq, d.OrgID)
	})
	if err != nil {
		return fmt.Errorf("record test delivery: %w", err)
	}
	return nil
}
