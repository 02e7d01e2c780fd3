package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/internal/sqlrow"
)

// Publishes are group-committed: every Publish call is acknowledged only once
// committed, and a commit waits for the WAL to reach the disk, so calls that
// arrive together share one transaction (and one flush) instead of paying for
// one each. Only calls that nothing but PostgreSQL itself could refuse share a
// transaction: every organization they publish to exists and has no quota, so
// their usage is only added up, never checked. A call for an organization with a
// quota (checked under a row lock that may wait for other instances) runs in a
// transaction of its own, in a goroutine of its own, as before group commits: it
// never holds up another organization's calls, nor they it.
const (
	// publishFlushers is how many group transactions may run at once.
	publishFlushers = 4
	// maxPublishGroup caps the calls of one group transaction.
	maxPublishGroup = 64
	// maxPublishGroupEvents stops adding calls to a group once it holds this
	// many events (a few batches are enough to fill one transaction).
	maxPublishGroupEvents = 2000
	// publishTimeout bounds one transaction of publishes.
	publishTimeout = 30 * time.Second
	// groupLockTimeout bounds a group's wait for a lock another transaction
	// holds (the same event id published elsewhere, an endpoint being
	// deleted): past it the group's calls run one by one, each waiting for
	// what it needs alone.
	groupLockTimeout = "2s"
)

// The states of a publishReq.
const (
	reqQueued    int32 = iota // waiting for a flusher
	reqTaken                  // in a transaction: its outcome is the answer
	reqAbandoned              // its caller gave up first: it never runs
)

type publishReq struct {
	events  []*hookd.Event
	results []hookd.PublishResult
	wake    bool // a delivery became due: wake the workers once committed
	done    chan error
	state   atomic.Int32
}

// take marks r as taken by a flusher, unless its caller gave up on it.
func (r *publishReq) take() bool { return r.state.CompareAndSwap(reqQueued, reqTaken) }

// PublishStats returns how many Publish calls this store has taken and in how
// many transactions it ran them (fewer than calls when concurrent calls
// shared a group commit).
func (db *DB) PublishStats() (calls, transactions int64) {
	return db.publishCalls.Load(), db.publishTx.Load()
}

// Publish implements hookd.Store. It returns once the events are committed, in
// a transaction shared with the calls that arrived meanwhile. If ctx ends while
// the call still waits for a transaction, the call never runs and Publish
// returns ctx's error; once in a transaction, its outcome is the answer.
func (db *DB) Publish(ctx context.Context, events []*hookd.Event) ([]hookd.PublishResult, error) {
	req := &publishReq{events: events, done: make(chan error, 1)}
	if err := db.pub.submit(ctx, req); err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	var err error
	select {
	case err = <-req.done:
	case <-ctx.Done():
		if req.state.CompareAndSwap(reqQueued, reqAbandoned) {
			return nil, fmt.Errorf("publish: %w", ctx.Err())
		}
		err = <-req.done // bounded by publishTimeout
	}
	if err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	return req.results, nil
}

// flushPublishes takes a request and every other one already waiting (up to
// maxPublishGroup), and commits those their callers still wait for in one
// transaction.
func (db *DB) flushPublishes(reqs <-chan *publishReq) {
	for req := range reqs {
		batch := fill(reqs, []*publishReq{req}, maxPublishGroup, maxPublishGroupEvents,
			func(r *publishReq) int { return len(r.events) })
		group := slices.DeleteFunc(batch, func(r *publishReq) bool { return !r.take() })
		if len(group) == 0 {
			continue
		}
		db.publishCalls.Add(int64(len(group)))
		db.publishGroup(group)
	}
}

// runAlone is the failure of a group that its calls must not share: each runs
// again on its own.
type runAlone struct{ err error }

func (e runAlone) Error() string { return e.err.Error() }
func (e runAlone) Unwrap() error { return e.err }

// publishGroup commits, in one transaction, the calls of group that nothing
// can refuse, and answers them; it answers the calls to unknown organizations
// with ENOTFOUND, and hands those for organizations with a quota to
// publishAlone. Should the transaction fail, nothing of it was stored (unless
// its very commit failed, which answers every call with that error): each call
// runs again alone, so that only a call PostgreSQL refuses fails.
func (db *DB) publishGroup(group []*publishReq) {
	ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
	defer cancel()
	var (
		errs      = make([]error, len(group))
		alone     = make([]bool, len(group))
		wake, ran bool // some call woke deliveries; some call ran
	)
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT set_config('lock_timeout', $1, true)`, groupLockTimeout); err != nil {
			return runAlone{fmt.Errorf("set lock timeout: %w", err)}
		}
		// The calls share what the transaction read of organizations and
		// endpoints, and one usage shard, counted once at the end.
		p := newPublisher(ctx, tx)
		p.shard = 1 + rand.IntN(usageShards)
		p.deferred = map[sqlrow.UsageKey]int64{}
		for i, r := range group {
			safe, err := p.cannotRefuse(r.events)
			switch {
			case hookd.ErrorCode(err) == hookd.ENOTFOUND:
				errs[i] = err // refused before it wrote anything
				continue
			case err != nil:
				return runAlone{err}
			case !safe:
				alone[i] = true
				continue
			}
			if err := r.run(ctx, tx, p); err != nil {
				return runAlone{err}
			}
			wake, ran = wake || r.wake, true
		}
		// The usage rows are locked only for the last moment, in key order.
		if err := p.flushDeferredUsage(); err != nil {
			return runAlone{err}
		}
		return nil
	})
	switch {
	case err != nil && (retryable(err) || errors.As(err, new(runAlone))):
		for _, r := range group {
			db.spawnAlone(r)
		}
		return
	case err != nil:
		for _, r := range group {
			r.done <- err
		}
		return
	}
	if ran {
		db.publishTx.Add(1)
	}
	if wake {
		db.wakeWorkers()
	}
	for i, r := range group {
		if alone[i] {
			db.spawnAlone(r)
		} else {
			r.done <- errs[i]
		}
	}
}

// spawnAlone runs r in a transaction of its own, in a goroutine of its own, so
// that the flusher goes on with other calls while r waits for its locks.
func (db *DB) spawnAlone(r *publishReq) {
	db.pub.goFn(func() {
		ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
		defer cancel()
		db.publishTx.Add(1)
		r.results, r.wake = nil, false
		err := db.tx(ctx, func(tx pgx.Tx) error { return r.run(ctx, tx, newPublisher(ctx, tx)) })
		if err == nil && r.wake {
			db.wakeWorkers()
		}
		r.done <- err
	})
}

// cannotRefuse reads the organizations of events (and their subscribers, for
// the publish that follows) and reports whether publishing events cannot be
// refused: no organization has a quota. (One with overage counts its usage in
// the same row as one without, so it runs alone too.) It fails with ENOTFOUND,
// before writing anything, if an organization does not exist.
func (p *publisher) cannotRefuse(events []*hookd.Event) (bool, error) {
	safe := true
	for _, ev := range events {
		if _, err := p.subscribers(ev.OrgID); err != nil {
			return false, err
		}
		safe = safe && p.orgs[ev.OrgID].MonthlyQuota == 0
	}
	return safe, nil
}

// run publishes r's events with p inside tx: events, deliveries and usage.
func (r *publishReq) run(ctx context.Context, tx pgx.Tx, p *publisher) error {
	p.due = false
	results, err := p.publishAll(r.events)
	if err != nil {
		return err
	}
	for i, res := range results {
		if !res.Duplicate {
			p.count(r.events[i])
		}
	}
	if err := p.settleUsage(); err != nil {
		clear(p.usage)
		return err
	}
	r.results, r.wake = results, p.due
	return nil
}
