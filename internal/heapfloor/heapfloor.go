// Package heapfloor keeps the Go garbage collector from running on a heap far
// smaller than the process can afford.
//
// hookd's live Go heap is small (a few MiB: the data lives in the store, and
// SQLite's page caches are allocated outside the Go heap), so with Go's
// default GOGC=100 the heap goal is a few MiB too, and under load the
// collector runs dozens of times a second. Keep raises GOGC after each
// collection so that the next goal is at least a floor, and brings it back to
// 100 as the live heap grows past half the floor: memory stays bounded by
// max(floor, twice the live heap), as with the default beyond that point.
package heapfloor

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
)

const (
	// defaultPercent is Go's default GOGC.
	defaultPercent = 100
	// heapMinimum is the least heap goal at GOGC=100; Go scales it with GOGC
	// (the runtime's defaultHeapMinimum).
	heapMinimum = 4 << 20
)

// Keep adjusts GOGC after every collection so that the heap may grow to at
// least floor bytes before the next one. It does nothing when floor is not
// positive or when GOGC or GOMEMLIMIT is set in the environment (the
// operator's choice stands), or while another Keep runs in the process (GOGC
// is the process's). stop ends it and restores GOGC 100.
func Keep(floor int64) (stop func()) {
	if floor <= 0 || os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" || !active.CompareAndSwap(false, true) {
		return func() {}
	}
	t := &tuner{floor: floor, percent: defaultPercent}
	t.mu.Lock()
	t.adjust()
	t.arm()
	t.mu.Unlock()
	return t.stop
}

// Percent returns the GOGC value that makes the heap goal floor bytes, for a
// live heap of live bytes and roots (goroutine stacks and globals) of roots
// bytes, but never below Go's default. Go sets the goal at
// live + (live + roots) × GOGC/100, and at least 4 MiB × GOGC/100.
func Percent(live, roots, floor int64) int {
	scan := max(live+roots, 1)
	if live+scan >= floor {
		return defaultPercent
	}
	p := min((floor-live)*100/scan, floor*100/heapMinimum)
	return int(max(defaultPercent, p))
}

// active is whether a Keep runs.
var active atomic.Bool

type tuner struct {
	floor int64

	mu      sync.Mutex
	stopped bool
	percent int // last set
	samples [3]metrics.Sample
}

// sentinel is allocated unreachable, so that its cleanup runs after the next
// collection. (It holds a pointer and is larger than 16 bytes so that it is
// never part of a tiny block, whose cleanups may be delayed.)
type sentinel struct {
	p   *int
	pad [16]byte
}

// arm schedules afterGC for the end of the next collection. t.mu is held.
func (t *tuner) arm() {
	runtime.AddCleanup(&sentinel{}, (*tuner).afterGC, t)
}

func (t *tuner) afterGC() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	t.adjust()
	t.arm()
}

// adjust sets GOGC from the live heap the last collection found. t.mu is held.
func (t *tuner) adjust() {
	t.samples[0].Name = "/gc/heap/live:bytes"
	t.samples[1].Name = "/gc/scan/stack:bytes"
	t.samples[2].Name = "/gc/scan/globals:bytes"
	metrics.Read(t.samples[:])
	var v [3]int64
	for i, s := range t.samples {
		if s.Value.Kind() != metrics.KindUint64 {
			return // not reported by this runtime: leave GOGC as it is
		}
		v[i] = int64(s.Value.Uint64())
	}
	p := Percent(v[0], v[1]+v[2], t.floor)
	if p != t.percent {
		debug.SetGCPercent(p)
		t.percent = p
	}
}

func (t *tuner) stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	t.stopped = true
	debug.SetGCPercent(defaultPercent)
	active.Store(false)
}
