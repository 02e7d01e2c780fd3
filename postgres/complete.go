package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hookd/hookd"
)

// Outcomes are recorded in group commits: each attempt's outcome arrives on its
// own (one CompleteDeliveries call per attempt), and one transaction per outcome
// would cost a commit each. Calls that arrive together share a transaction.
const (
	// completeFlushers is how many group transactions may run at once.
	completeFlushers = 4
	// maxCompleteBatch caps the outcomes of one group transaction.
	maxCompleteBatch = 512
	// completeTimeout bounds one group transaction.
	completeTimeout = 30 * time.Second
)

type completeReq struct {
	outcomes []hookd.Outcome
	done     chan error
}

// completer gathers concurrent CompleteDeliveries calls.
type completer struct {
	mu     sync.RWMutex // guards closed against sends on reqs
	closed bool
	reqs   chan completeReq
	wg     sync.WaitGroup
}

var errClosed = errors.New("postgres: store is closed")

func (db *DB) startCompleter() {
	db.comp.reqs = make(chan completeReq, maxCompleteBatch)
	for range completeFlushers {
		db.comp.wg.Go(db.flushCompletes)
	}
}

// stopCompleter records what was submitted and stops the flushers.
func (db *DB) stopCompleter() {
	db.comp.mu.Lock()
	if !db.comp.closed {
		db.comp.closed = true
		close(db.comp.reqs)
	}
	db.comp.mu.Unlock()
	db.comp.wg.Wait()
}

// CompleteDeliveries implements hookd.Store. It returns once the outcomes are
// committed, in a transaction shared with the calls that arrived meanwhile.
func (db *DB) CompleteDeliveries(ctx context.Context, outcomes []hookd.Outcome) error {
	if len(outcomes) == 0 {
		return nil
	}
	req := completeReq{outcomes: outcomes, done: make(chan error, 1)}
	db.comp.mu.RLock()
	if db.comp.closed {
		db.comp.mu.RUnlock()
		return fmt.Errorf("complete deliveries: %w", errClosed)
	}
	select {
	case db.comp.reqs <- req:
	case <-ctx.Done():
		db.comp.mu.RUnlock()
		return fmt.Errorf("complete deliveries: %w", ctx.Err())
	}
	db.comp.mu.RUnlock()
	select {
	case err := <-req.done:
		if err != nil {
			return fmt.Errorf("complete deliveries: %w", err)
		}
		return nil
	case <-ctx.Done():
		// The outcome may still be recorded; if not, the lease expires and the
		// delivery is attempted again.
		return fmt.Errorf("complete deliveries: %w", ctx.Err())
	}
}

// flushCompletes takes a request, every other one already waiting (up to
// maxCompleteBatch outcomes), and records them in one transaction. If that
// fails, each request is recorded on its own, so that one bad outcome fails
// only its own call.
func (db *DB) flushCompletes() {
	for req := range db.comp.reqs {
		batch := []completeReq{req}
		n := len(req.outcomes)
	fill:
		for n < maxCompleteBatch {
			select {
			case r, ok := <-db.comp.reqs:
				if !ok {
					break fill
				}
				batch, n = append(batch, r), n+len(r.outcomes)
			default:
				break fill
			}
		}
		all := make([]hookd.Outcome, 0, n)
		for _, r := range batch {
			all = append(all, r.outcomes...)
		}
		err := db.completeWithTimeout(all)
		if err != nil && len(batch) > 1 {
			for _, r := range batch {
				r.done <- db.completeWithTimeout(r.outcomes)
			}
			continue
		}
		for _, r := range batch {
			r.done <- err
		}
	}
}

func (db *DB) completeWithTimeout(outcomes []hookd.Outcome) error {
	ctx, cancel := context.WithTimeout(context.Background(), completeTimeout)
	defer cancel()
	return db.completeBatch(ctx, outcomes)
}
