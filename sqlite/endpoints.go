package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/internal/cursor"
	"github.com/hookd/hookd/internal/sqlrow"
)

var endpointColumns = sqlrow.EndpointColumns("rowid")

func (db *DB) scanEndpoint(s scanner, extra ...any) (*hookd.Endpoint, int64, error) {
	return sqlrow.ScanEndpoint(s, db.cfg.Sealer, extra...)
}

func (db *DB) endpointArgs(e *hookd.Endpoint) ([]any, error) {
	return sqlrow.EndpointValues(e, db.cfg.Sealer)
}

// CreateEndpoint implements hookd.Store.
func (db *DB) CreateEndpoint(ctx context.Context, e *hookd.Endpoint) error {
	args, err := db.endpointArgs(e)
	if err != nil {
		return fmt.Errorf("create endpoint: %w", err)
	}
	err = db.write(ctx, func(tx wtx) error {
		var one int
		if err := tx.QueryRow(`SELECT 1 FROM organizations WHERE id = ?`, e.OrgID).Scan(&one); err != nil {
			return notFoundIf(err, "organization", e.OrgID)
		}
		delete(tx.db.subs, e.OrgID)
		_, err := tx.Exec(`INSERT INTO endpoints (id, org_id, `+sqlrow.EndpointSetColumns+`)
			VALUES (`+sqlrow.Placeholders(2+sqlrow.EndpointSetCount, false, 1)+`)`, append([]any{e.ID, e.OrgID}, args...)...)
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

// orgClause restricts a query to one organization unless orgID is "" (admin).
func orgClause(col, orgID string, args []any) (string, []any) {
	if orgID == "" {
		return "", args
	}
	return " AND " + col + " = ?", append(args, orgID)
}

// Endpoint implements hookd.Store.
func (db *DB) Endpoint(ctx context.Context, orgID, id string) (*hookd.Endpoint, error) {
	where, args := orgClause("e.org_id", orgID, []any{id})
	e, _, err := db.scanEndpoint(db.r.QueryRowContext(ctx, `SELECT `+endpointColumns+` FROM endpoints e WHERE e.id = ?`+where, args...))
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
	where, args := orgClause("e.org_id", f.OrgID, []any{after})
	rows, err := db.r.QueryContext(ctx, `SELECT `+endpointColumns+` FROM endpoints e WHERE e.rowid > ?`+where+
		` ORDER BY e.rowid LIMIT ?`, append(args, limit+1)...)
	if err != nil {
		return nil, "", fmt.Errorf("list endpoints: %w", err)
	}
	out, next, err := collectPage(rows, limit, func(r *sql.Rows) (*hookd.Endpoint, int64, error) { return db.scanEndpoint(r) }, nil)
	if err != nil {
		return nil, "", fmt.Errorf("list endpoints: %w", err)
	}
	return out, next, nil
}

// UpdateEndpoint implements hookd.Store.
func (db *DB) UpdateEndpoint(ctx context.Context, orgID, id string, fn func(*hookd.Endpoint) error) (*hookd.Endpoint, error) {
	var out *hookd.Endpoint
	err := db.write(ctx, func(tx wtx) error {
		where, args := orgClause("e.org_id", orgID, []any{id})
		e, _, err := db.scanEndpoint(tx.QueryRow(`SELECT `+endpointColumns+` FROM endpoints e WHERE e.id = ?`+where, args...))
		if err != nil {
			return notFoundIf(err, "endpoint", id)
		}
		delete(tx.db.subs, e.OrgID)
		delete(tx.db.health, e.ID)
		wasFIFO, wasEnabled := e.Ordering == hookd.OrderingFIFO, e.Enabled
		if err := fn(e); err != nil {
			return err
		}
		switch {
		case wasEnabled && !e.Enabled:
			if err := park(tx, e.ID); err != nil {
				return err
			}
		case !wasEnabled && e.Enabled, e.Enabled && wasFIFO && e.Ordering != hookd.OrderingFIFO:
			if !wasEnabled {
				e.FailingSince = time.Time{} // a fresh start
			}
			if err := unpark(tx, e.ID, e.Ordering == hookd.OrderingFIFO, us(e.UpdatedAt)); err != nil {
				return err
			}
		}
		vals, err := db.endpointArgs(e)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(`UPDATE endpoints SET (`+sqlrow.EndpointSetColumns+`) =
			(`+sqlrow.Placeholders(sqlrow.EndpointSetCount, false, 1)+`) WHERE id = ?`, append(vals, e.ID)...); err != nil {
			return err
		}
		out = e
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("update endpoint: %w", err)
	}
	return out, nil
}

// DeleteEndpoint implements hookd.Store. The endpoint's deliveries (and their
// attempts) are deleted first, Config.DeleteChunk at a time, each chunk a write
// of its own; then the endpoint, with whatever deliveries it got meanwhile. In
// one transaction, an endpoint with 100,000 deliveries held the writer for ~2 s
// (every other write waited) and the old version of every page it changed in
// memory (+90 MiB). Until the endpoint goes, it keeps working, and its oldest
// deliveries are gone from the log: the deletion is under way, not yet
// acknowledged. Chunks commit without fsync (see writeOp.relaxed): one lost in
// a power failure leaves its deliveries in place, and the call, which has not
// answered, is retried.
func (db *DB) DeleteEndpoint(ctx context.Context, orgID, id string) error {
	where, args := orgClause("org_id", orgID, []any{id})
	for {
		var n int64
		err := db.writeRelaxed(ctx, func(tx wtx) error {
			var one int
			if err := tx.QueryRow(`SELECT 1 FROM endpoints WHERE id = ?`+where, args...).Scan(&one); err != nil {
				return notFoundIf(err, "endpoint", id)
			}
			res, err := tx.Exec(`DELETE FROM deliveries WHERE seq IN
				(SELECT seq FROM deliveries WHERE endpoint_id = ? ORDER BY seq LIMIT ?)`, id, db.cfg.DeleteChunk)
			if err != nil {
				return fmt.Errorf("delete deliveries: %w", err)
			}
			n, err = res.RowsAffected()
			return err
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
	err := db.write(ctx, func(tx wtx) error {
		var org string
		err := tx.QueryRow(`DELETE FROM endpoints WHERE id = ?`+where+` RETURNING org_id`, args...).Scan(&org)
		if errors.Is(err, sql.ErrNoRows) {
			return hookd.NotFound("endpoint", id)
		}
		if err != nil {
			return err
		}
		delete(tx.db.subs, org)
		delete(tx.db.health, id)
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete endpoint: %w", err)
	}
	return nil
}

// park takes a disabled endpoint's waiting deliveries out of the due range, so
// that claims never walk them; unpark brings them back.
func park(tx wtx, endpointID string) error {
	if _, err := tx.Exec(`UPDATE deliveries SET next_attempt_at = ? WHERE endpoint_id = ? AND status = 'pending'
		AND lease IS NULL`, parked, endpointID); err != nil {
		return fmt.Errorf("park deliveries: %w", err)
	}
	return nil
}

// unpark makes an enabled endpoint's parked deliveries due at now: all of them, or
// for a FIFO endpoint only the oldest (the rest follow it one by one).
func unpark(tx wtx, endpointID string, fifo bool, now int64) error {
	q := `UPDATE deliveries SET next_attempt_at = ? WHERE endpoint_id = ? AND status = 'pending' AND next_attempt_at = ?`
	if fifo {
		q = `UPDATE deliveries SET next_attempt_at = ? WHERE seq = (SELECT MIN(seq) FROM deliveries
			WHERE endpoint_id = ? AND status = 'pending') AND next_attempt_at = ?`
	}
	if _, err := tx.Exec(q, now, endpointID, parked); err != nil {
		return fmt.Errorf("unpark deliveries: %w", err)
	}
	return nil
}
