package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/ids"
)

// usageKey is one organization's month.
type usageKey struct{ org, period string }

// usageCount is the new events of one organization's month in a transaction.
type usageCount struct {
	events int64
	last   time.Time // the latest CreatedAt among them
}

// count notes a new event for the usage of its organization and month.
func (p *publisher) count(ev *hookd.Event) {
	if p.usage == nil {
		p.usage = map[usageKey]*usageCount{}
	}
	k := usageKey{ev.OrgID, hookd.UsagePeriod(ev.CreatedAt)}
	c := p.usage[k]
	if c == nil {
		c = &usageCount{}
		p.usage[k] = c
	}
	c.events++
	if ev.CreatedAt.After(c.last) {
		c.last = ev.CreatedAt
	}
}

// settleUsage adds the counted events to their months' usage, fails with EQUOTA
// if that takes an organization past a quota without overage, and publishes a
// usage_threshold event for each threshold reached for the first time this month.
func (p *publisher) settleUsage() error {
	keys := make([]usageKey, 0, len(p.usage))
	for k := range p.usage {
		keys = append(keys, k)
	}
	// In a fixed order, so that concurrent transactions (PostgreSQL) lock usage
	// rows in the same order.
	slices.SortFunc(keys, func(a, b usageKey) int {
		return cmp.Or(cmp.Compare(a.org, b.org), cmp.Compare(a.period, b.period))
	})
	for _, k := range keys {
		c := p.usage[k]
		var o hookd.Organization
		o.ID = k.org
		if err := p.tx.QueryRow(`SELECT monthly_quota, allow_overage FROM organizations WHERE id = ?`, k.org).
			Scan(&o.MonthlyQuota, &o.AllowOverage); err != nil {
			return notFoundIf(err, "organization", k.org)
		}
		var events int64
		notified := make([]bool, 2)
		if err := p.tx.QueryRow(`INSERT INTO usage (org_id, period, events) VALUES (?, ?, ?)
			ON CONFLICT (org_id, period) DO UPDATE SET events = events + excluded.events
			RETURNING events, notified_90, notified_100`, k.org, k.period, c.events).Scan(&events, &notified[0], &notified[1]); err != nil {
			return fmt.Errorf("count usage: %w", err)
		}
		if o.QuotaExceeded(events) {
			return hookd.QuotaError(&o, k.period)
		}
		for _, pct := range o.ThresholdsReached(events, notified) {
			if _, err := p.tx.Exec(fmt.Sprintf(`UPDATE usage SET notified_%d = 1 WHERE org_id = ? AND period = ?`, pct), k.org, k.period); err != nil {
				return fmt.Errorf("note usage threshold: %w", err)
			}
			ev := hookd.NewUsageThresholdEvent(ids.NewAt("evt", c.last), k.org, events, o.MonthlyQuota, pct, k.period, c.last)
			if _, err := p.publish(ev); err != nil {
				return fmt.Errorf("emit %s: %w", ev.Type, err)
			}
		}
	}
	clear(p.usage)
	return nil
}

// Usage implements hookd.Store.
func (db *DB) Usage(ctx context.Context, orgID, period string) (*hookd.Usage, error) {
	u := hookd.Usage{OrgID: orgID, Period: period}
	err := db.r.QueryRowContext(ctx, `SELECT o.monthly_quota, COALESCE(u.events, 0) FROM organizations o
		LEFT JOIN usage u ON u.org_id = o.id AND u.period = ? WHERE o.id = ?`, period, orgID).Scan(&u.Quota, &u.Events)
	if errors.Is(err, sql.ErrNoRows) {
		err = hookd.NotFound("organization", orgID)
	}
	if err != nil {
		return nil, fmt.Errorf("get usage: %w", err)
	}
	return &u, nil
}
