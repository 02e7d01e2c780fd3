package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/ids"
	"github.com/hookd/hookd/internal/cursor"
	"github.com/hookd/hookd/internal/sqlrow"
)

func appendAudit(tx wtx, r *hookd.AuditRecord) error {
	if r.ID == "" {
		r.ID = ids.NewAt("aud", r.Time)
	}
	r.Count = max(r.Count, 1)
	if _, err := tx.Exec(`INSERT INTO audit_log (id, org_id, time, actor_type, actor, action, target, result, reason,
		client_ip, status, count) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.OrgID, us(r.Time), r.ActorType, r.Actor, r.Action, r.Target, r.Result, r.Reason, r.ClientIP, r.Status,
		r.Count); err != nil {
		return fmt.Errorf("append audit record: %w", err)
	}
	return nil
}

// AppendAudit implements hookd.Store.
func (db *DB) AppendAudit(ctx context.Context, records ...*hookd.AuditRecord) error {
	err := db.write(ctx, func(tx wtx) error {
		for _, r := range records {
			if err := appendAudit(tx, r); err != nil {
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
	q := `SELECT ` + sqlrow.AuditColumns + ` FROM audit_log WHERE seq < ?`
	args := []any{before}
	if f.OrgID != "" {
		q, args = q+` AND org_id = ?`, append(args, f.OrgID)
	}
	if !f.Since.IsZero() {
		q, args = q+` AND time >= ?`, append(args, us(f.Since))
	}
	if f.Action != "" {
		q, args = q+` AND action = ?`, append(args, f.Action)
	}
	if f.Actor != "" {
		q, args = q+` AND actor = ?`, append(args, f.Actor)
	}
	rows, err := db.r.QueryContext(ctx, q+` ORDER BY seq DESC LIMIT ?`, append(args, limit+1)...)
	if err != nil {
		return nil, "", fmt.Errorf("list audit: %w", err)
	}
	out, next, err := collectPage(rows, limit, scanAudit, nil)
	if err != nil {
		return nil, "", fmt.Errorf("list audit: %w", err)
	}
	return out, next, nil
}

func scanAudit(rows *sql.Rows) (*hookd.AuditRecord, int64, error) { return sqlrow.ScanAudit(rows) }
