package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd"
)

// CreateOrganization implements hookd.Store.
func (db *DB) CreateOrganization(ctx context.Context, o *hookd.Organization) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO organizations (id, name, monthly_quota, allow_overage, created_at) VALUES ($1, $2, $3, $4, $5)`,
		o.ID, o.Name, o.MonthlyQuota, o.AllowOverage, us(o.CreatedAt))
	if isUnique(err) {
		err = hookd.Errorf(hookd.ECONFLICT, "organization %q already exists", o.ID)
	}
	if err != nil {
		return fmt.Errorf("create organization: %w", err)
	}
	return nil
}

// Organization implements hookd.Store.
func (db *DB) Organization(ctx context.Context, id string) (*hookd.Organization, error) {
	var o hookd.Organization
	var created int64
	err := db.pool.QueryRow(ctx, `SELECT id, name, monthly_quota, allow_overage, created_at FROM organizations WHERE id = $1`, id).
		Scan(&o.ID, &o.Name, &o.MonthlyQuota, &o.AllowOverage, &created)
	if err != nil {
		return nil, fmt.Errorf("get organization: %w", notFoundIf(err, "organization", id))
	}
	o.CreatedAt = fromUS(created)
	return &o, nil
}

// UpdateOrganization implements hookd.Store. The row is locked until the change commits.
func (db *DB) UpdateOrganization(ctx context.Context, id string, fn func(*hookd.Organization) error) (*hookd.Organization, error) {
	var out *hookd.Organization
	err := db.tx(ctx, func(tx pgx.Tx) error {
		o := hookd.Organization{}
		var created int64
		if err := tx.QueryRow(ctx, `SELECT id, name, monthly_quota, allow_overage, created_at FROM organizations
			WHERE id = $1 FOR NO KEY UPDATE`, id).Scan(&o.ID, &o.Name, &o.MonthlyQuota, &o.AllowOverage, &created); err != nil {
			return notFoundIf(err, "organization", id)
		}
		o.CreatedAt = fromUS(created)
		if err := fn(&o); err != nil {
			return err
		}
		o.ID = id
		if _, err := tx.Exec(ctx, `UPDATE organizations SET name = $1, monthly_quota = $2, allow_overage = $3 WHERE id = $4`,
			o.Name, o.MonthlyQuota, o.AllowOverage, id); err != nil {
			return err
		}
		out = &o
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("update organization: %w", err)
	}
	return out, nil
}

// orgExists answers ENOTFOUND unless the organization exists. FOR KEY SHARE keeps
// it from being deleted until tx ends.
func orgExists(ctx context.Context, tx pgx.Tx, orgID string) error {
	var one int
	err := tx.QueryRow(ctx, `SELECT 1 FROM organizations WHERE id = $1 FOR KEY SHARE`, orgID).Scan(&one)
	return notFoundIf(err, "organization", orgID)
}

// CreateAPIKey implements hookd.Store.
func (db *DB) CreateAPIKey(ctx context.Context, k *hookd.APIKey) error {
	err := db.tx(ctx, func(tx pgx.Tx) error {
		var org any
		if k.OrgID != "" {
			org = k.OrgID
			if err := orgExists(ctx, tx, k.OrgID); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, `INSERT INTO api_keys (id, org_id, hash, created_at) VALUES ($1, $2, $3, $4)`,
			k.ID, org, k.Hash, us(k.CreatedAt))
		if isUnique(err) {
			return hookd.Errorf(hookd.ECONFLICT, "key already exists")
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("create api key: %w", err)
	}
	return nil
}

// APIKeyByHash implements hookd.Store.
func (db *DB) APIKeyByHash(ctx context.Context, hash string) (*hookd.APIKey, error) {
	var k hookd.APIKey
	var org *string
	var created int64
	err := db.pool.QueryRow(ctx, `SELECT id, org_id, hash, created_at FROM api_keys WHERE hash = $1`, hash).
		Scan(&k.ID, &org, &k.Hash, &created)
	if err != nil {
		return nil, fmt.Errorf("get api key: %w", notFoundIf(err, "key", "…"))
	}
	if org != nil {
		k.OrgID = *org
	}
	k.CreatedAt = fromUS(created)
	return &k, nil
}

// DeleteAPIKey implements hookd.Store.
func (db *DB) DeleteAPIKey(ctx context.Context, orgID, id string) error {
	tag, err := db.pool.Exec(ctx, `DELETE FROM api_keys WHERE id = $1 AND org_id = $2`, id, orgID)
	if err == nil && tag.RowsAffected() == 0 {
		err = hookd.NotFound("key", id)
	}
	if err != nil {
		return fmt.Errorf("delete api key: %w", err)
	}
	return nil
}

// CountAdminKeys implements hookd.Store.
func (db *DB) CountAdminKeys(ctx context.Context) (int, error) {
	var n int
	if err := db.pool.QueryRow(ctx, `SELECT COUNT(*) FROM api_keys WHERE org_id IS NULL`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count admin keys: %w", err)
	}
	return n, nil
}
