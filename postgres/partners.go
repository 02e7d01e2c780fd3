package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/internal/sqlrow"
)

// CreatePartner implements hookd.Store.
func (db *DB) CreatePartner(ctx context.Context, p *hookd.Partner) error {
	vals, err := sqlrow.PartnerValues(p, db.cfg.Sealer)
	if err != nil {
		return fmt.Errorf("create partner: %w", err)
	}
	err = db.tx(ctx, func(tx pgx.Tx) error {
		if err := orgExists(ctx, tx, p.OrgID); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO partners (id, org_id, api_key_hash, `+sqlrow.PartnerSetColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`, append([]any{p.ID, p.OrgID, p.APIKeyHash}, vals...)...)
		if isUnique(err) {
			return hookd.Errorf(hookd.ECONFLICT, "a partner with id %q or the same API key already exists", p.ID)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("create partner: %w", err)
	}
	return nil
}

// Partner implements hookd.Store.
func (db *DB) Partner(ctx context.Context, orgID, id string) (*hookd.Partner, error) {
	a := args{id}
	where := orgClause("org_id", orgID, &a)
	p, err := sqlrow.ScanPartner(db.pool.QueryRow(ctx, `SELECT `+sqlrow.PartnerColumns+` FROM partners WHERE id = $1`+where, a...), db.cfg.Sealer)
	if err != nil {
		return nil, fmt.Errorf("get partner: %w", notFoundIf(err, "partner", id))
	}
	return p, nil
}

// PartnerByKeyHash implements hookd.Store.
func (db *DB) PartnerByKeyHash(ctx context.Context, hash string) (*hookd.Partner, error) {
	p, err := sqlrow.ScanPartner(db.pool.QueryRow(ctx, `SELECT `+sqlrow.PartnerColumns+` FROM partners WHERE api_key_hash = $1`, hash), db.cfg.Sealer)
	if err != nil {
		return nil, fmt.Errorf("get partner by key: %w", notFoundIf(err, "partner", "…"))
	}
	return p, nil
}

// UpdatePartner implements hookd.Store. The partner's row is locked until the
// change commits.
func (db *DB) UpdatePartner(ctx context.Context, orgID, id string, fn func(*hookd.Partner) error) (*hookd.Partner, error) {
	var out *hookd.Partner
	err := db.tx(ctx, func(tx pgx.Tx) error {
		a := args{id}
		where := orgClause("org_id", orgID, &a)
		p, err := sqlrow.ScanPartner(tx.QueryRow(ctx, `SELECT `+sqlrow.PartnerColumns+` FROM partners WHERE id = $1`+where+
			` FOR NO KEY UPDATE`, a...), db.cfg.Sealer)
		if err != nil {
			return notFoundIf(err, "partner", id)
		}
		if err := fn(p); err != nil {
			return err
		}
		vals, err := sqlrow.PartnerValues(p, db.cfg.Sealer)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE partners SET (`+sqlrow.PartnerSetColumns+`) =
			($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) WHERE id = $11`, append(vals, p.ID)...); err != nil {
			return err
		}
		out = p
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("update partner: %w", err)
	}
	return out, nil
}

// DeletePartner implements hookd.Store.
func (db *DB) DeletePartner(ctx context.Context, orgID, id string) error {
	err := db.tx(ctx, func(tx pgx.Tx) error {
		a := args{id}
		where := orgClause("org_id", orgID, &a)
		tag, err := tx.Exec(ctx, `DELETE FROM partners WHERE id = $1`+where, a...)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return hookd.NotFound("partner", id)
		}
		_, err = tx.Exec(ctx, `DELETE FROM rate_limits WHERE key = $1`, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete partner: %w", err)
	}
	return nil
}

// AcceptInbound implements hookd.Store.
func (db *DB) AcceptInbound(ctx context.Context, ev *hookd.Event, accepted, duplicate *hookd.AuditRecord) (*hookd.PublishResult, error) {
	var res hookd.PublishResult
	var wake bool
	err := db.tx(ctx, func(tx pgx.Tx) error {
		p := newPublisher(ctx, tx)
		r, err := p.publish(ev)
		if err != nil {
			return err
		}
		if !r.Duplicate {
			p.count(ev)
			if err := p.settleUsage(); err != nil {
				return err
			}
		}
		wake, res = p.due, r
		if r.Duplicate {
			return appendAudit(ctx, tx, duplicate)
		}
		return appendAudit(ctx, tx, accepted)
	})
	if err != nil {
		return nil, fmt.Errorf("accept inbound event: %w", err)
	}
	if wake {
		db.wakeWorkers()
	}
	return &res, nil
}

// RetryEvent implements hookd.Store.
func (db *DB) RetryEvent(ctx context.Context, orgID, id string, now time.Time) (int, error) {
	var n int64
	err := db.tx(ctx, func(tx pgx.Tx) error {
		a := args{id}
		where := orgClause("org_id", orgID, &a)
		var seq int64
		if err := tx.QueryRow(ctx, `SELECT seq FROM events WHERE id = $1`+where+` ORDER BY seq DESC LIMIT 1`, a...).Scan(&seq); err != nil {
			return notFoundIf(err, "event", id)
		}
		tag, err := tx.Exec(ctx, `UPDATE deliveries SET status = 'pending', next_attempt_at = `+dueOrParked+`,
			cycle_attempts = 0, updated_at = $1 WHERE event_seq = $2 AND status = 'failed'`, us(now), seq)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("retry event: %w", err)
	}
	if n > 0 {
		db.wakeWorkers()
	}
	return int(n), nil
}

// TakeToken implements hookd.Store. The bucket's row is locked from read to write,
// so concurrent takes on any instance apply one after the other.
func (db *DB) TakeToken(ctx context.Context, key string, limit hookd.RateLimit, now time.Time) (hookd.TokenResult, error) {
	var res hookd.TokenResult
	err := db.tx(ctx, func(tx pgx.Tx) error {
		// A new bucket starts full; the insert also gives the next statement a row to lock.
		if _, err := tx.Exec(ctx, `INSERT INTO rate_limits (key, tokens, updated_at) VALUES ($1, $2, $3)
			ON CONFLICT (key) DO NOTHING`, key, float64(limit.Burst), us(now)); err != nil {
			return err
		}
		var tokens float64
		var updated int64
		if err := tx.QueryRow(ctx, `SELECT tokens, updated_at FROM rate_limits WHERE key = $1 FOR UPDATE`, key).Scan(&tokens, &updated); err != nil {
			return err
		}
		last := fromUS(updated)
		res = hookd.TakeToken(tokens, last, limit, now)
		// A clock behind the bucket's (another instance's skew) refills nothing and
		// must not move the bucket back in time either, or the next take refills twice.
		at := now
		if at.Before(last) {
			at = last
		}
		_, err := tx.Exec(ctx, `UPDATE rate_limits SET tokens = $2, updated_at = $3 WHERE key = $1`, key, res.Tokens, us(at))
		return err
	})
	if err != nil {
		return hookd.TokenResult{}, fmt.Errorf("take rate limit token: %w", err)
	}
	return res, nil
}
