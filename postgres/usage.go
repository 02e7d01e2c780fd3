package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/ids"
	"github.com/hookd/hookd/internal/sqlrow"
)

// usageShards is how many rows an organization without a quota spreads its
// usage over (shards 1…usageShards; shard 0 is for organizations with a quota).
const usageShards = 16

// usageShard is the usage row an organization without a quota counts in: the
// group's (see publishGroup), or one at random.
func (p *publisher) usageShard() int {
	if p.shard > 0 {
		return p.shard
	}
	return 1 + rand.IntN(usageShards)
}

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
// The usage row stays locked until the transaction ends, so concurrent publishers
// on any instance add up exactly and announce each threshold once.
func (p *publisher) settleUsage() error {
	for _, k := range p.usage.Keys() {
		c := p.usage[k]
		o, ok := p.orgs[k.Org]
		if !ok {
			o = hookd.Organization{ID: k.Org}
			if err := p.tx.QueryRow(p.ctx, `SELECT monthly_quota, allow_overage FROM organizations WHERE id = $1`, k.Org).
				Scan(&o.MonthlyQuota, &o.AllowOverage); err != nil {
				return notFoundIf(err, "organization", k.Org)
			}
		}
		if o.MonthlyQuota == 0 && p.deferred != nil {
			// Unlimited, in a group commit: counted once for the whole group,
			// just before it commits (see flushDeferredUsage).
			p.deferred[k] += c.Events
			continue
		}
		if o.MonthlyQuota == 0 {
			// Unlimited: nothing to check, so no need to wait for other publishers.
			if err := p.addUsage(k, c.Events); err != nil {
				return err
			}
			continue
		}
		var events, others int64
		notified := make([]bool, 2)
		if err := p.tx.QueryRow(p.ctx, `INSERT INTO usage (org_id, period, shard, events) VALUES ($1, $2, 0, $3)
			ON CONFLICT (org_id, period, shard) DO UPDATE SET events = usage.events + excluded.events
			RETURNING events, notified_90, notified_100`, planOnce, k.Org, k.Period, c.Events).Scan(&events, &notified[0], &notified[1]); err != nil {
			return fmt.Errorf("count usage: %w", err)
		}
		// Events counted while the organization had no quota.
		if err := p.tx.QueryRow(p.ctx, `SELECT COALESCE(SUM(events), 0) FROM usage WHERE org_id = $1 AND period = $2 AND shard <> 0`,
			k.Org, k.Period).Scan(&others); err != nil {
			return fmt.Errorf("count usage: %w", err)
		}
		events += others
		if o.QuotaExceeded(events) {
			return hookd.QuotaError(&o, k.Period)
		}
		for _, pct := range o.ThresholdsReached(events, notified) {
			if _, err := p.tx.Exec(p.ctx, fmt.Sprintf(`UPDATE usage SET notified_%d = true WHERE org_id = $1 AND period = $2 AND shard = 0`, pct),
				k.Org, k.Period); err != nil {
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

// flushDeferredUsage adds the usage deferred by a group commit's calls, one
// statement per organization and month, in key order (so that two instances'
// groups lock their rows in the same order).
func (p *publisher) flushDeferredUsage() error {
	keys := slices.SortedFunc(maps.Keys(p.deferred), func(a, b sqlrow.UsageKey) int {
		return cmp.Or(cmp.Compare(a.Org, b.Org), cmp.Compare(a.Period, b.Period))
	})
	for _, k := range keys {
		if err := p.addUsage(k, p.deferred[k]); err != nil {
			return err
		}
	}
	clear(p.deferred)
	return nil
}

// addUsage adds n events to the usage of an organization without a quota, in
// its shard (usageShard).
func (p *publisher) addUsage(k sqlrow.UsageKey, n int64) error {
	if _, err := p.tx.Exec(p.ctx, `INSERT INTO usage (org_id, period, shard, events) VALUES ($1, $2, $3, $4)
		ON CONFLICT (org_id, period, shard) DO UPDATE SET events = usage.events + excluded.events`, planOnce,
		k.Org, k.Period, p.usageShard(), n); err != nil {
		return fmt.Errorf("count usage: %w", err)
	}
	return nil
}

// Usage implements hookd.Store.
func (db *DB) Usage(ctx context.Context, orgID, period string) (*hookd.Usage, error) {
	u := hookd.Usage{OrgID: orgID, Period: period}
	err := db.pool.QueryRow(ctx, `SELECT o.monthly_quota, (SELECT COALESCE(SUM(events), 0) FROM usage
		WHERE org_id = o.id AND period = $1) FROM organizations o WHERE o.id = $2`, period, orgID).Scan(&u.Quota, &u.Events)
	if errors.Is(err, pgx.ErrNoRows) {
		err = hookd.NotFound("organization", orgID)
	}
	if err != nil {
		return nil, fmt.Errorf("get usage: %w", err)
	}
	return &u, nil
}
