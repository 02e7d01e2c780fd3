package postgres

import (
	"context"
	"sync"
)

// gatherer hands the requests of concurrent callers to a few flushers, each of
// which takes a request and every other one already waiting and runs them in
// one transaction (a group commit). It can be closed while callers submit:
// what was submitted before is still flushed.
type gatherer[T any] struct {
	mu     sync.RWMutex // guards closed against sends on reqs
	closed bool
	reqs   chan T
	wg     sync.WaitGroup // the flushers, and whatever they start with go
}

// start runs flushers goroutines of flush, which ranges over the requests
// until they are closed; up to buffer requests wait for them.
func (g *gatherer[T]) start(flushers, buffer int, flush func(reqs <-chan T)) {
	g.reqs = make(chan T, buffer)
	for range flushers {
		g.wg.Go(func() { flush(g.reqs) })
	}
}

// goFn runs fn in a goroutine that stop waits for.
func (g *gatherer[T]) goFn(fn func()) { g.wg.Go(fn) }

// submit hands req over, or fails with errClosed or ctx's error.
func (g *gatherer[T]) submit(ctx context.Context, req T) error {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.closed {
		return errClosed
	}
	select {
	case g.reqs <- req:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stop lets the flushers finish what was submitted and waits for them.
func (g *gatherer[T]) stop() {
	g.mu.Lock()
	if !g.closed {
		g.closed = true
		close(g.reqs)
	}
	g.mu.Unlock()
	g.wg.Wait()
}

// fill appends to batch the requests already waiting on reqs, while the batch
// holds fewer than maxReqs requests and their sizes add up to less than
// maxSize.
func fill[T any](reqs <-chan T, batch []T, maxReqs, maxSize int, size func(T) int) []T {
	total := 0
	for _, r := range batch {
		total += size(r)
	}
	for len(batch) < maxReqs && total < maxSize {
		select {
		case r, ok := <-reqs:
			if !ok {
				return batch
			}
			batch, total = append(batch, r), total+size(r)
		default:
			return batch
		}
	}
	return batch
}
