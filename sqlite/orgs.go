package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/hookd/hookd"
)

// CreateOrganization implements hookd.Store.
func (db *DB) CreateOrganization(ctx context.Context, o *hookd.Organization) error {
	err := db.write(ctx, func(tx wtx) error {
		_, err := tx.Exec(`INSERT INTO organizations (id, name, monthly_quota, allow_overage, created_at) VALUES (?, ?, ?, ?, ?)`,
			o.ID, o.Name, o.MonthlyQuota, o.AllowOverage, us(o.CreatedAt))
		if isUnique(err) {
			return hookd.Errorf(hookd.ECONFLICT, "organization %q already exists", o.ID)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("create organization: %w", err)
	}
	return nil
}

// Organization implements hookd.Store.
func (db *DB) Organization(ctx context.Context, id string) (*hookd.Organization, error) {
	var o hookd.Organization
	var created int64
	err := db.r.QueryRowContext(ctx, `SELECT id, name, monthly_quota, allow_overage, created_at FROM organizations WHERE id = ?`, id).
		Scan(&o.ID, &o.Name, &o.MonthlyQuota, &o.AllowOverage, &created)
	if err != nil {
		return nil, fmt.Errorf("get organization: %w", notFoundIf(err, "organization", id))
	}
	o.CreatedAt = fromUS(created)
	return &o, nil
}

// UpdateOrganization implements hookd.Store.
func (db *DB) UpdateOrganization(ctx context.Context, id string, fn func(*hookd.Organization) error) (*hookd.Organization, error) {
	var out *hookd.Organization
	err := db.write(ctx, func(tx wtx) error {
		o := hookd.Organization{}
		var created int64
		if err := tx.QueryRow(`SELECT id, name, monthly_quota, allow_overage, created_at FROM organizations WHERE id = ?`, id).
			Scan(&o.ID, &o.Name, &o.MonthlyQuota, &o.AllowOverage, &created); err != nil {
			return notFoundIf(err, "organization", id)
		}
		o.CreatedAt = fromUS(created)
		if err := fn(&o); err != nil {
			return err
		}
		o.ID = id
		delete(tx.db.quotas, id)
		if _, err := tx.Exec(`UPDATE organizations SET name = ?, monthly_quota = ?, allow_overage = ? WHERE id = ?`,
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

// CreateAPIKey implements hookd.Store.
func (db *DB) CreateAPIKey(ctx context.Context, k *hookd.APIKey) error {
	err := db.write(ctx, func(tx wtx) error {
		var org any
		if k.OrgID != "" {
			org = k.OrgID
			var one int
			if err := tx.QueryRow(`SELECT 1 FROM organizations WHERE id = ?`, k.OrgID).Scan(&one); err != nil {
				return notFoundIf(err, "organization", k.OrgID)
			}
		}
		_, err := tx.Exec(`INSERT INTO api_keys (id, org_id, hash, created_at) VALUES (?, ?, ?, ?)`,
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

// maxCachedKeys bounds the API keys APIKeyByHash keeps in memory: past it,
// it forgets them all and starts again.
const maxCachedKeys = 4096

// APIKeyByHash implements hookd.Store. Every API request looks its key up, so
// keys found are kept in memory: a key never changes, and this process is the
// only one that writes the store, so deleting one (DeleteAPIKey) can forget
// them all before it returns. A lookup that read a key before a deletion
// committed does not keep it afterwards (db.keys.gen). Hashes not found are not
// kept, so that unknown keys cannot fill the memory.
func (db *DB) APIKeyByHash(ctx context.Context, hash string) (*hookd.APIKey, error) {
	db.keys.mu.Lock()
	if k, ok := db.keys.byHash[hash]; ok {
		db.keys.mu.Unlock()
		return &k, nil
	}
	gen := db.keys.gen
	db.keys.mu.Unlock()
	db.keys.reads.Add(1)
	var k hookd.APIKey
	var org sql.NullString
	var created int64
	err := db.rqueryRow(ctx, `SELECT id, org_id, hash, created_at FROM api_keys WHERE hash = ?`, hash).
		Scan(&k.ID, &org, &k.Hash, &created)
	if err != nil {
		return nil, fmt.Errorf("get api key: %w", notFoundIf(err, "key", "…"))
	}
	k.OrgID, k.CreatedAt = org.String, fromUS(created)
	if db.keys.read != nil {
		db.keys.read()
	}
	db.keys.mu.Lock()
	if db.keys.gen == gen {
		if len(db.keys.byHash) >= maxCachedKeys {
			clear(db.keys.byHash)
		}
		db.keys.byHash[hash] = k
	}
	db.keys.mu.Unlock()
	return &k, nil
}

// forgetKeys empties APIKeyByHash's cache, for good: a lookup that read its
// key before now does not keep it.
func (db *DB) forgetKeys() {
	db.keys.mu.Lock()
	db.keys.gen++
	clear(db.keys.byHash)
	db.keys.mu.Unlock()
}

// DeleteAPIKey implements hookd.Store.
func (db *DB) DeleteAPIKey(ctx context.Context, orgID, id string) error {
	// Once committed (or if the commit's fate is unknown), no cached key may
	// outlive this call.
	defer db.forgetKeys()
	err := db.write(ctx, func(tx wtx) error {
		res, err := tx.Exec(`DELETE FROM api_keys WHERE id = ? AND org_id = ?`, id, orgID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return hookd.NotFound("key", id)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete api key: %w", err)
	}
	return nil
}

// CountAdminKeys implements hookd.Store.
func (db *DB) CountAdminKeys(ctx context.Context) (int, error) {
	var n int
	if err := db.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM api_keys WHERE org_id IS NULL`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count admin keys: %w", err)
	}
	return n, nil
}
