package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/internal/sqlrow"
)

const partnerColumns = sqlrow.PartnerColumns

func (db *DB) scanPartner(s scanner) (*hookd.Partner, error) {
	return sqlrow.ScanPartner(s, db.cfg.Sealer)
}

func (db *DB) partnerArgs(p *hookd.Partner) ([]any, error) {
	return sqlrow.PartnerValues(p, db.cfg.Sealer)
}

// CreatePartner implements hookd.Store.
func (db *DB) CreatePartner(ctx context.Context, p *hookd.Partner) error {
	args, err := db.partnerArgs(p)
	if err != nil {
		return fmt.Errorf("create partner: %w", err)
	}
	err = db.write(ctx, func(tx wtx) error {
		var one int
		if err := tx.QueryRow(`SELECT 1 FROM organizations WHERE id = ?`, p.OrgID).Scan(&one); err != nil {
			return notFoundIf(err, "organization", p.OrgID)
		}
		_, err := tx.Exec(`INSERT INTO partners (id, org_id, api_key_hash, name, secret, previous_secret,
			previous_secret_expires, ip_allowlist, rate_per_second, rate_burst, enabled, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, append([]any{p.ID, p.OrgID, p.APIKeyHash}, args...)...)
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
	where, args := orgClause("org_id", orgID, []any{id})
	p, err := db.scanPartner(db.r.QueryRowContext(ctx, `SELECT `+partnerColumns+` FROM partners WHERE id = ?`+where, args...))
	if err != nil {
		return nil, fmt.Errorf("get partner: %w", notFoundIf(err, "partner", id))
	}
	return p, nil
}

// PartnerByKeyHash implements hookd.Store.
func (db *DB) PartnerByKeyHash(ctx context.Context, hash string) (*hookd.Partner, error) {
	p, err := db.scanPartner(db.rqueryRow(ctx, `SELECT `+partnerColumns+` FROM partners WHERE api_key_hash = ?`, hash))
	if err != nil {
		return nil, fmt.Errorf("get partner by key: %w", notFoundIf(err, "partner", "…"))
	}
	return p, nil
}

// UpdatePartner implements hookd.Store.
func (db *DB) UpdatePartner(ctx context.Context, orgID, id string, fn func(*hookd.Partner) error) (*hookd.Partner, error) {
	var out *hookd.Partner
	err := db.write(ctx, func(tx wtx) error {
		where, args := orgClause("org_id", orgID, []any{id})
		p, err := db.scanPartner(tx.QueryRow(`SELECT `+partnerColumns+` FROM partners WHERE id = ?`+where, args...))
		if err != nil {
			return notFoundIf(err, "partner", id)
		}
		if err := fn(p); err != nil {
			return err
		}
		vals, err := db.partnerArgs(p)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(`UPDATE partners SET name = ?, secret = ?, previous_secret = ?, previous_secret_expires = ?,
			ip_allowlist = ?, rate_per_second = ?, rate_burst = ?, enabled = ?, created_at = ?, updated_at = ?
			WHERE id = ?`, append(vals, p.ID)...); err != nil {
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
	err := db.write(ctx, func(tx wtx) error {
		where, args := orgClause("org_id", orgID, []any{id})
		res, err := tx.Exec(`DELETE FROM partners WHERE id = ?`+where, args...)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return hookd.NotFound("partner", id)
		}
		_, err = tx.Exec(`DELETE FROM rate_limits WHERE key = ?`, id)
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
	err := db.write(ctx, func(tx wtx) error {
		p := newPublisher(tx)
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
		res = r
		if r.Duplicate {
			return appendAudit(tx, duplicate)
		}
		return appendAudit(tx, accepted)
	})
	if err != nil {
		return nil, fmt.Errorf("accept inbound event: %w", err)
	}
	return &res, nil
}

// RetryEvent implements hookd.Store.
func (db *DB) RetryEvent(ctx context.Context, orgID, id string, now time.Time) (int, error) {
	var n int64
	err := db.write(ctx, func(tx wtx) error {
		var seq int64
		where, args := orgClause("org_id", orgID, []any{id})
		if err := tx.QueryRow(`SELECT seq FROM events WHERE id = ?`+where+` ORDER BY seq DESC LIMIT 1`, args...).Scan(&seq); err != nil {
			return notFoundIf(err, "event", id)
		}
		res, err := tx.Exec(`UPDATE deliveries SET status = 'pending', next_attempt_at = `+dueOrParked+`,
			cycle_attempts = 0, updated_at = ? WHERE event_seq = ? AND status = 'failed'`, us(now), parked, us(now), seq)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("retry event: %w", err)
	}
	return int(n), nil
}

// TakeToken implements hookd.Store.
func (db *DB) TakeToken(ctx context.Context, key string, limit hookd.RateLimit, now time.Time) (hookd.TokenResult, error) {
	var res hookd.TokenResult
	err := db.write(ctx, func(tx wtx) error {
		tokens, last := float64(limit.Burst), now
		var updated int64
		err := tx.QueryRow(`SELECT tokens, updated_at FROM rate_limits WHERE key = ?`, key).Scan(&tokens, &updated)
		if err != nil && err != sql.ErrNoRows {
			return err
		}
		if err == nil {
			last = fromUS(updated)
		}
		res = hookd.TakeToken(tokens, last, limit, now)
		// A clock behind the bucket's (another instance's skew) refills nothing and
		// must not move the bucket back in time either, or the next take refills twice.
		at := now
		if at.Before(last) {
			at = last
		}
		_, err = tx.Exec(`INSERT INTO rate_limits (key, tokens, updated_at) VALUES (?, ?, ?)
			ON CONFLICT (key) DO UPDATE SET tokens = excluded.tokens, updated_at = excluded.updated_at`,
			key, res.Tokens, us(at))
		return err
	})
	if err != nil {
		return hookd.TokenResult{}, fmt.Errorf("take rate limit token: %w", err)
	}
	return res, nil
}
