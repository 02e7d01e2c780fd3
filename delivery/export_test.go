package delivery

import "time"

// SetWorkerIdle sets how long e's workers wait for their next attempt. Call it
// before Start.
func SetWorkerIdle(e *Engine, d time.Duration) { e.idle = d }

// Workers returns how many of e's worker goroutines are running now and how
// many it has started in all.
func Workers(e *Engine) (live, started int64) {
	return e.workers.live.Load(), e.workers.started.Load()
}
