package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/ids"
	"github.com/hookd/hookd/internal/sqlrow"
)

// count notes a new event for the usage of its organization and month.
func (p *publisher) count(ev *hookd.Event) {
	if p.usage == nil {
		p.usage = sqlrow.Tally{}
	}
	p.usage.Add(ev)
}

// settleUsage adds the counted events to their months' usage, fails with EQUOTA
// if that takes an organization past a quota without overage, and publishes a
// usage_threshold event for each threshold reached for the first time this month.
func (p *publisher) settleUsage() error {
	for _, k := range p.usage.Keys() {
		c := p.usage[k]
		o, ok := p.tx.db.quotas[k.Org]
		if !ok {
			o.ID = k.Org
			if err := p.tx.QueryRow(`SELECT monthly_quota, allow_overage FROM organizations WHERE id = ?`, k.Org).
				Scan(&o.MonthlyQuota, &o.AllowOverage); err != nil {
				return notFoundIf(err, "organization", k.Org)
			}
			p.tx.db.quotas[k.Org] = o
		}
		var events int64
		notified := make([]bool, 2)
		if err := p.tx.QueryRow(`INSERT INTO usage (org_id, period, events) VALUES (?, ?, ?)
			ON CONFLICT (org_id, period) DO UPDATE SET events = events + excluded.events
			RETURNING events, notified_90, notified_100`, k.Org, k.Period, c.Events).Scan(&events, &notified[0], &notified[1]); err != nil {
			return fmt.Errorf("count usage: %w", err)
		}
		if o.QuotaExceeded(events) {
			return hookd.QuotaError(&o, k.Period)
		}
		for _, pct := range o.ThresholdsReached(events, notified) {
			if _, err := p.tx.Exec(fmt.Sprintf(`UPDATE usage SET notified_%d = 1 WHERE org_id = ? AND period = ?`, pct), k.Org, k.Period); err != nil {
				return fmt.Errorf("note usage threshold: %w", err)
			}
			ev := hookd.NewUsageThresholdEvent(ids.NewAt("evt", c.Last), k.Org, events, o.MonthlyQuota, pct, k.Period, c.Last)
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
