package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/internal/cursor"
	"github.com/hookd/hookd/internal/sqlrow"
)

var endpointColumns = sqlrow.EndpointColumns("seq")

// CreateEndpoint implements hookd.Store.
func (db *DB) CreateEndpoint(ctx context.Context, e *hookd.Endpoint) error {
	vals, err := sqlrow.EndpointValues(e, db.cfg.Sealer)
	if err != nil {
		return fmt.Errorf("create endpoint: %w", err)
	}
	err = db.tx(ctx, func(tx pgx.Tx) error {
		if err := orgExists(ctx, tx, e.OrgID); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO endpoints (id, org_id, `+sqlrow.EndpointSetColumns+`)
			VALUES (`+sqlrow.Placeholders(2+sqlrow.EndpointSetCount, true, 1)+`)`,
			append([]any{e.ID, e.OrgID}, vals...)...)
		if isUnique(err) {
			return hookd.Errorf(hookd.ECONFLICT, "endpoint %q already exists", e.ID)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("create endpoint: %w", err)
	}
	return nil
}

// Endpoint implements hookd.Store.
func (db *DB) Endpoint(ctx context.Context, orgID, id string) (*hookd.Endpoint, error) {
	a := args{id}
	where := orgClause("e.org_id", orgID, &a)
	e, _, err := sqlrow.ScanEndpoint(db.pool.QueryRow(ctx, `SELECT `+endpointColumns+` FROM endpoints e WHERE e.id = $1`+where, a...), db.cfg.Sealer)
	if err != nil {
		return nil, fmt.Errorf("get endpoint: %w", notFoundIf(err, "endpoint", id))
	}
	return e, nil
}

// ListEndpoints implements hookd.Store.
func (db *DB) ListEndpoints(ctx context.Context, f hookd.EndpointFilter) ([]*hookd.Endpoint, string, error) {
	after, err := cursor.Decode(f.Cursor)
	if err != nil {
		return nil, "", err
	}
	limit := cursor.Limit(f.Page)
	a := args{after}
	where := orgClause("e.org_id", f.OrgID, &a)
	rows, err := db.pool.Query(ctx, `SELECT `+endpointColumns+` FROM endpoints e WHERE e.seq > $1`+where+
		` ORDER BY e.seq LIMIT `+a.add(limit+1), a...)
	if err != nil {
		return nil, "", fmt.Errorf("list endpoints: %w", err)
	}
	out, next, err := collectPage(rows, limit, func(r pgx.Rows) (*hookd.Endpoint, int64, error) {
		return sqlrow.ScanEndpoint(r, db.cfg.Sealer)
	}, nil)
	if err != nil {
		return nil, "", fmt.Errorf("list endpoints: %w", err)
	}
	return out, next, nil
}

// UpdateEndpoint implements hookd.Store. The endpoint's row is locked until the
// change commits, so concurrent updates apply one after the other.
func (db *DB) UpdateEndpoint(ctx context.Context, orgID, id string, fn func(*hookd.Endpoint) error) (*hookd.Endpoint, error) {
	var out *hookd.Endpoint
	var wake bool
	err := db.tx(ctx, func(tx pgx.Tx) error {
		wake = false
		a := args{id}
		where := orgClause("e.org_id", orgID, &a)
		e, _, err := sqlrow.ScanEndpoint(tx.QueryRow(ctx, `SELECT `+endpointColumns+` FROM endpoints e WHERE e.id = $1`+where+
			` FOR NO KEY UPDATE`, a...), db.cfg.Sealer)
		if err != nil {
			return notFoundIf(err, "endpoint", id)
		}
		wasFIFO, wasEnabled := e.Ordering == hookd.OrderingFIFO, e.Enabled
		if err := fn(e); err != nil {
			return err
		}
		switch {
		case wasEnabled && !e.Enabled:
			if err := park(ctx, tx, e.ID); err != nil {
				return err
			}
		case !wasEnabled && e.Enabled, e.Enabled && wasFIFO && e.Ordering != hookd.OrderingFIFO:
			if !wasEnabled {
				e.FailingSince = time.Time{} // a fresh start
			}
			if err := unpark(ctx, tx, e.ID, e.Ordering == hookd.OrderingFIFO, us(e.UpdatedAt)); err != nil {
				return err
			}
			wake = true
		}
		vals, err := sqlrow.EndpointValues(e, db.cfg.Sealer)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE endpoints SET (`+sqlrow.EndpointSetColumns+`) =
			(`+sqlrow.Placeholders(sqlrow.EndpointSetCount, true, 1)+`) WHERE id = $`+strconv.Itoa(sqlrow.EndpointSetCount+1),
			append(vals, e.ID)...); err != nil {
			return err
		}
		out = e
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("update endpoint: %w", err)
	}
	if wake {
		db.wakeWorkers()
	}
	return out, nil
}

// DeleteEndpoint implements hookd.Store. The endpoint's deliveries (and their
// attempts) are deleted first, Config.DeleteChunk at a time, each chunk a
// transaction of its own; then the endpoint, with whatever deliveries it got
// meanwhile. In one statement, deleting an endpoint with 100,000 deliveries
// held its row locked for ~0.7 s, and every publish fanning out to it (every
// publish of its organization, for an endpoint subscribed to everything)
// waited as long. Until the endpoint goes, it keeps working, and its oldest
// deliveries are gone from the log: the deletion is under way, not yet
// acknowledged.
func (db *DB) DeleteEndpoint(ctx context.Context, orgID, id string) error {
	a := args{id}
	where := orgClause("org_id", orgID, &a)
	// Each chunk starts past the last: the index entries of the rows deleted
	// stay until vacuum, and a scan from the start would wade through them.
	var after int64
	for {
		var n int64
		err := db.tx(ctx, func(tx pgx.Tx) error {
			var one int
			if err := tx.QueryRow(ctx, `SELECT 1 FROM endpoints WHERE id = $1`+where, a...).Scan(&one); err != nil {
				return notFoundIf(err, "endpoint", id)
			}
			err := tx.QueryRow(ctx, `WITH gone AS (DELETE FROM deliveries WHERE seq = ANY(ARRAY(
					SELECT seq FROM deliveries WHERE endpoint_id = $1 AND seq > $2 ORDER BY seq LIMIT $3)) RETURNING seq)
				SELECT count(*), coalesce(max(seq), $2) FROM gone`, id, after, db.cfg.DeleteChunk).Scan(&n, &after)
			if err != nil {
				return fmt.Errorf("delete deliveries: %w", err)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("delete endpoint: %w", err)
		}
		if n < int64(db.cfg.DeleteChunk) {
			break
		}
		if db.deleted != nil {
			db.deleted()
		}
	}
	err := db.tx(ctx, func(tx pgx.Tx) error {
		var org string
		err := tx.QueryRow(ctx, `DELETE FROM endpoints WHERE id = $1`+where+` RETURNING org_id`, a...).Scan(&org)
		if errors.Is(err, pgx.ErrNoRows) {
			return hookd.NotFound("endpoint", id)
		}
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM rate_limits WHERE key = $1`, rateKey(id))
		return err
	})
	if err != nil {
		return fmt.Errorf("delete endpoint: %w", err)
	}
	return nil
}

// park takes a disabled endpoint's waiting deliveries out of the due range, so
// that claims never walk them; unpark brings them back.
func park(ctx context.Context, tx pgx.Tx, endpointID string) error {
	if _, err := tx.Exec(ctx, `UPDATE deliveries SET next_attempt_at = $1 WHERE endpoint_id = $2 AND status = 'pending'
		AND lease IS NULL`, parked, endpointID); err != nil {
		return fmt.Errorf("park deliveries: %w", err)
	}
	return nil
}

// unpark makes an enabled endpoint's parked deliveries due at now: all of them, or
// for a FIFO endpoint only the oldest (the rest follow it one by one).
func unpark(ctx context.Context, tx pgx.Tx, endpointID string, fifo bool, now int64) error {
	q := `UPDATE deliveries SET next_attempt_at = $1 WHERE endpoint_id = $2 AND status = 'pending' AND next_attempt_at = $3`
	if fifo {
		q = `UPDATE deliveries SET next_attempt_at = $1 WHERE seq = (SELECT MIN(seq) FROM deliveries
			WHERE endpoint_id = $2 AND status = 'pending') AND next_attempt_at = $3`
	}
	if _, err := tx.Exec(ctx, q, now, endpointID, parked); err != nil {
		return fmt.Errorf("unpark deliveries: %w", err)
	}
	return nil
}
