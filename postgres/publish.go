package postgres

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/internal/sqlrow"
)

// Publishes are group-committed: every Publish call is acknowledged only once
// committed, and a commit waits for the WAL to reach the disk, so calls that
// arrive together share one transaction (and one flush) instead of paying for
// one each. Each call runs inside a savepoint of its own, so one call's failure
// (an unknown organization, a quota) undoes only its own events.
const (
	// publishFlushers is how many group transactions may run at once.
	publishFlushers = 4
	// maxPublishGroup caps the calls of one group transaction. Each is a
	// subtransaction; PostgreSQL tracks up to 64 per transaction cheaply.
	maxPublishGroup = 48
	// maxPublishGroupEvents stops adding calls to a group once it holds this
	// many events (a few batches are enough to fill one transaction).
	maxPublishGroupEvents = 2000
	// publishTimeout bounds one group transaction.
	publishTimeout = 30 * time.Second
)

type publishReq struct {
	events  []*hookd.Event
	results []hookd.PublishResult
	wake    bool // a delivery became due: wake the workers once committed
	done    chan error
}

// publishGroup gathers concurrent Publish calls.
type publishGroup struct {
	mu     sync.RWMutex // guards closed against sends on reqs
	closed bool
	reqs   chan *publishReq
	wg     sync.WaitGroup
	// calls and groups count the Publish calls taken and the transactions
	// they were committed in.
	calls, groups atomic.Int64
}

// PublishStats returns how many Publish calls this store has taken and in how
// many transactions it ran them (fewer than calls when concurrent calls
// shared a group commit).
func (db *DB) PublishStats() (calls, transactions int64) {
	return db.pub.calls.Load(), db.pub.groups.Load()
}

func (db *DB) startPublishers() {
	db.pub.reqs = make(chan *publishReq, maxPublishGroup)
	for range publishFlushers {
		db.pub.wg.Go(db.flushPublishes)
	}
}

// stopPublishers commits what was submitted and stops the flushers.
func (db *DB) stopPublishers() {
	db.pub.mu.Lock()
	if !db.pub.closed {
		db.pub.closed = true
		close(db.pub.reqs)
	}
	db.pub.mu.Unlock()
	db.pub.wg.Wait()
}

// Publish implements hookd.Store. It returns once the events are committed, in
// a transaction shared with the calls that arrived meanwhile.
func (db *DB) Publish(ctx context.Context, events []*hookd.Event) ([]hookd.PublishResult, error) {
	req := &publishReq{events: events, done: make(chan error, 1)}
	db.pub.mu.RLock()
	if db.pub.closed {
		db.pub.mu.RUnlock()
		return nil, fmt.Errorf("publish: %w", errClosed)
	}
	select {
	case db.pub.reqs <- req:
	case <-ctx.Done():
		db.pub.mu.RUnlock()
		return nil, fmt.Errorf("publish: %w", ctx.Err())
	}
	db.pub.mu.RUnlock()
	select {
	case err := <-req.done:
		if err != nil {
			return nil, fmt.Errorf("publish: %w", err)
		}
		return req.results, nil
	case <-ctx.Done():
		// The events may still be committed: the caller was not told they
		// were, and publishing them again finds them (a duplicate).
		return nil, fmt.Errorf("publish: %w", ctx.Err())
	}
}

// flushPublishes takes a request and every other one already waiting (up to
// maxPublishGroup), and commits them in one transaction.
func (db *DB) flushPublishes() {
	for req := range db.pub.reqs {
		group := []*publishReq{req}
		n := len(req.events)
	fill:
		for len(group) < maxPublishGroup && n < maxPublishGroupEvents {
			select {
			case r, ok := <-db.pub.reqs:
				if !ok {
					break fill
				}
				group, n = append(group, r), n+len(r.events)
			default:
				break fill
			}
		}
		db.pub.calls.Add(int64(len(group)))
		db.publishGroup(group)
	}
}

// publishGroup commits group's calls in one transaction, each that could be
// refused in a savepoint of its own, and answers each. Should the transaction fail for a reason PostgreSQL says a
// retry may cure (a deadlock with another instance's group, a serialization
// failure, an endpoint deleted meanwhile), each call runs again on its own.
func (db *DB) publishGroup(group []*publishReq) {
	ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
	defer cancel()
	db.pub.groups.Add(1)
	if len(group) == 1 {
		r := group[0]
		r.results, r.wake = nil, false
		err := db.tx(ctx, func(tx pgx.Tx) error { return r.run(ctx, tx, newPublisher(ctx, tx)) })
		if err == nil && r.wake {
			db.wakeWorkers()
		}
		r.done <- err
		return
	}
	errs := make([]error, len(group))
	wake := false
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		// The calls share what the transaction read of organizations and
		// endpoints, and one usage shard for organizations without a quota.
		p := newPublisher(ctx, tx)
		p.shard = 1 + rand.IntN(usageShards)
		p.deferred = map[sqlrow.UsageKey]int64{}
		for i, r := range group {
			// A call that nothing can refuse (its organizations exist and
			// have no quota to exceed) needs no savepoint: should it fail
			// all the same, the group fails and each call runs alone.
			safe, err := p.cannotRefuse(r.events)
			if hookd.ErrorCode(err) == hookd.ENOTFOUND {
				errs[i] = err // refused before it wrote anything
				continue
			}
			if err != nil {
				return runAlone{err}
			}
			if safe {
				if err := r.run(ctx, tx, p); err != nil {
					return runAlone{err}
				}
				wake = wake || r.wake
				continue
			}
			if _, err := tx.Exec(ctx, `SAVEPOINT publish`); err != nil {
				return fmt.Errorf("savepoint: %w", err)
			}
			errs[i] = r.run(ctx, tx, p)
			if errs[i] != nil {
				if retryable(errs[i]) {
					return errs[i] // the whole group runs again, call by call
				}
				if _, err := tx.Exec(ctx, `ROLLBACK TO SAVEPOINT publish`); err != nil {
					return fmt.Errorf("rollback to savepoint: %w", err)
				}
				// What the failed call read may be undone: read it again.
				clear(p.subs)
				clear(p.orgs)
			}
			if _, err := tx.Exec(ctx, `RELEASE SAVEPOINT publish`); err != nil {
				return fmt.Errorf("release savepoint: %w", err)
			}
			wake = wake || r.wake
		}
		// The usage rows are locked only for the last moment of the group.
		return p.flushDeferredUsage()
	})
	if err != nil && (retryable(err) || errors.As(err, new(runAlone))) {
		for _, r := range group {
			db.publishGroup([]*publishReq{r})
		}
		return
	}
	if err == nil && wake {
		db.wakeWorkers()
	}
	for i, r := range group {
		if err != nil {
			r.done <- err
		} else {
			r.done <- errs[i]
		}
	}
}

// runAlone is the failure of a group commit that its calls may not share: each
// runs again on its own.
type runAlone struct{ err error }

func (e runAlone) Error() string { return e.err.Error() }
func (e runAlone) Unwrap() error { return e.err }

// cannotRefuse reads the organizations of events (and their subscribers, for
// the publish that follows) and reports whether publishing events cannot be
// refused: no organization has a quota without overage. It fails with
// ENOTFOUND, before writing anything, if an organization does not exist.
func (p *publisher) cannotRefuse(events []*hookd.Event) (bool, error) {
	safe := true
	for _, ev := range events {
		if _, err := p.subscribers(ev.OrgID); err != nil {
			return false, err
		}
		o := p.orgs[ev.OrgID]
		safe = safe && (o.MonthlyQuota == 0 || o.AllowOverage)
	}
	return safe, nil
}

// run publishes r's events with p inside tx: events, deliveries and usage.
func (r *publishReq) run(ctx context.Context, tx pgx.Tx, p *publisher) error {
	p.due = false
	deferred := maps.Clone(p.deferred) // what to go back to if this call fails
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
		if deferred != nil {
			p.deferred = deferred
		}
		return err
	}
	r.results, r.wake = results, p.due
	return nil
}
