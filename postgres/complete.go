package postgres

import (
	"context"
	"errors"
	"fmt"
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

var errClosed = errors.New("postgres: store is closed")

// CompleteDeliveries implements hookd.Store. It returns once the outcomes are
// committed, in a transaction shared with the calls that arrived meanwhile.
func (db *DB) CompleteDeliveries(ctx context.Context, outcomes []hookd.Outcome) error {
	if len(outcomes) == 0 {
		return nil
	}
	req := completeReq{outcomes: outcomes, done: make(chan error, 1)}
	if err := db.comp.submit(ctx, req); err != nil {
		return fmt.Errorf("complete deliveries: %w", err)
	}
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
func (db *DB) flushCompletes(reqs <-chan completeReq) {
	for req := range reqs {
		batch := fill(reqs, []completeReq{req}, maxCompleteBatch, maxCompleteBatch,
			func(r completeReq) int { return len(r.outcomes) })
		var all []hookd.Outcome
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
