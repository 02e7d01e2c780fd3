package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/ids"
	"github.com/hookd/hookd/internal/cursor"
	"github.com/hookd/hookd/internal/sqlrow"
)

func appendAudit(ctx context.Context, tx pgx.Tx, r *hookd.AuditRecord) error {
	if r.ID == "" {
		r.ID = ids.NewAt("aud", r.Time)
	}
	r.Count = max(r.Count, 1)
	if _, err := tx.Exec(ctx, `INSERT INTO audit_log (id, org_id, time, actor_type, actor, action, target, result, reason,
		client_ip, status, count) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`, planOnce,
		r.ID, r.OrgID, us(r.Time), r.ActorType, r.Actor, r.Action, r.Target, r.Result, r.Reason, r.ClientIP, r.Status,
		r.Count); err != nil {
		return fmt.Errorf("append audit record: %w", err)
	}
	return nil
}

// AppendAudit implements hookd.Store.
func (db *DB) AppendAudit(ctx context.Context, records ...*hookd.AuditRecord) error {
	err := db.tx(ctx, func(tx pgx.Tx) error {
		for _, r := range records {
			if err := appendAudit(ctx, tx, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("append audit: %w", err)
	}
	return nil
}

// ListAudit implements hookd.Store.
func (db *DB) ListAudit(ctx context.Context, f hookd.AuditFilter) ([]*hookd.AuditRecord, string, error) {
	before, err := cursor.DecodeBefore(f.Cursor)
	if err != nil {
		return nil, "", err
	}
	limit := cursor.Limit(f.Page)
	a := args{before}
	q := `SELECT ` + sqlrow.AuditColumns + ` FROM audit_log WHERE seq < $1`
	if f.OrgID != "" {
		q += ` AND org_id = ` + a.add(f.OrgID)
	}
	if !f.Since.IsZero() {
		q += ` AND time >= ` + a.add(us(f.Since))
	}
	if f.Action != "" {
		q += ` AND action = ` + a.add(f.Action)
	}
	if f.Actor != "" {
		q += ` AND actor = ` + a.add(f.Actor)
	}
	rows, err := db.pool.Query(ctx, q+` ORDER BY seq DESC LIMIT `+a.add(limit+1), a...)
	if err != nil {
		return nil, "", fmt.Errorf("list audit: %w", err)
	}
	out, next, err := collectPage(rows, limit, func(r pgx.Rows) (*hookd.AuditRecord, int64, error) { return sqlrow.ScanAudit(r) }, nil)
	if err != nil {
		return nil, "", fmt.Errorf("list audit: %w", err)
	}
	return out, next, nil
}
