package heapfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

// These tests change the process's GC settings: none runs in parallel.

// gcPercent returns the current GOGC without changing it.
func gcPercent() int {
	p := debug.SetGCPercent(defaultPercent)
	debug.SetGCPercent(p)
	return p
}

var sink []byte

// eventually polls the heap goal until ok holds of it, for up to 10 s: the
// tuner adjusts GOGC in a collection's cleanup, which runs in a goroutine of
// its own after the collection. It returns the last goal read and whether ok
// held.
func eventually(ok func(goal uint64) bool) (uint64, bool) {
	s := []metrics.Sample{{Name: "/gc/heap/goal:bytes"}}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		metrics.Read(s)
		if g := s[0].Value.Uint64(); ok(g) || time.Now().After(deadline) {
			return g, ok(g)
		}
	}
}

// churn allocates n bytes of garbage in 64 KiB pieces and returns how many
// collections ran meanwhile.
func churn(n int) uint32 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range n / (64 << 10) {
		sink = make([]byte, 64<<10)
	}
	sink = nil
	runtime.ReadMemStats(&after)
	return after.NumGC - before.NumGC
}

func TestPercent(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		live, roots, floor int64
		want               int
	}{
		{live: 1 * mib, floor: 64 * mib, want: 1600},  // Go's least goal, 4 MiB × 16, reaches the floor
		{live: 8 * mib, floor: 256 * mib, want: 3100}, // 8 + 8 × 31 = 256 MiB
		{live: 8 * mib, roots: 8 * mib, floor: 256 * mib, want: 1550},
		{live: 4 * mib, floor: 64 * mib, want: 1500},
		{live: 31 * mib, floor: 64 * mib, want: 106},
		{live: 32 * mib, floor: 64 * mib, want: 100}, // twice the live heap reaches the floor
		{live: 30 * mib, roots: 4 * mib, floor: 64 * mib, want: 100},
		{live: 500 * mib, floor: 64 * mib, want: 100},
		{live: 0, floor: 64 * mib, want: 1600},
	} {
		got := Percent(tc.live, tc.roots, tc.floor)
		if got != tc.want {
			t.Errorf("Percent(%d MiB, %d MiB, %d MiB) = %d, want %d", tc.live/mib, tc.roots/mib, tc.floor/mib, got, tc.want)
		}
		goal := max(tc.live+(tc.live+tc.roots)*int64(got)/100, heapMinimum*int64(got)/100)
		if goal > max(tc.floor, 2*tc.live+tc.roots) {
			t.Errorf("Percent(%d, %d, %d) = %d: goal %d is past both the floor and Go's default", tc.live, tc.roots, tc.floor, got, goal)
		}
	}
}

// TestKeepRunsFewerCollections: with a 64 MiB floor, 512 MiB of short-lived
// garbage beside a small live heap takes a handful of collections; with Go's
// default goal of a few MiB it takes over a hundred.
func TestKeepRunsFewerCollections(t *testing.T) {
	if gcPercent() != defaultPercent {
		t.Skip("GOGC is set for this test run")
	}
	without := churn(512 << 20)
	stop := Keep(64 << 20)
	runtime.GC() // the first collection's cleanup sets the goal from its live heap
	if g, ok := eventually(func(g uint64) bool { return g >= 60<<20 && g <= 72<<20 }); !ok {
		t.Errorf("heap goal with a 64 MiB floor and a small live heap = %.1f MiB, want about 64", float64(g)/(1<<20))
	}
	with := churn(512 << 20)
	stop()
	t.Logf("512 MiB of garbage: %d collections with Go's default, %d with a 64 MiB floor", without, with)
	if with < 4 || with > 16 {
		t.Errorf("with a 64 MiB floor, 512 MiB of garbage took %d collections, want 4 to 16 (one per 64 MiB, give or take)", with)
	}
	if without <= 2*with {
		t.Errorf("Go's default took %d collections against %d with the floor; the test no longer tells them apart", without, with)
	}
	if p := gcPercent(); p != defaultPercent {
		t.Errorf("GOGC after stop = %d, want %d", p, defaultPercent)
	}
	// The first collections after stop may still have larger goals (what they
	// mark as live includes what was allocated while the last one ran, much of
	// it on a busy machine), so collect first; with the floor held, 256 MiB
	// would then take about 4.
	runtime.GC()
	runtime.GC()
	if n := churn(256 << 20); n < 8 {
		t.Errorf("after stop, 256 MiB of garbage took %d collections: the floor still holds", n)
	}
}

// TestKeepYieldsToALargeHeap: once the live heap is past half the floor, GOGC
// is Go's default again, so memory stays within twice the live heap.
func TestKeepYieldsToALargeHeap(t *testing.T) {
	stop := Keep(16 << 20)
	defer stop()
	runtime.GC()
	if _, ok := eventually(func(uint64) bool { return gcPercent() > defaultPercent }); !ok {
		t.Fatalf("GOGC with a small live heap = %d, want above %d", gcPercent(), defaultPercent)
	}
	live := make([][]byte, 64)
	for i := range live {
		live[i] = make([]byte, 1<<20) // 64 MiB, four times the floor
	}
	runtime.GC() // its cleanup, which runs after it, sets GOGC
	if _, ok := eventually(func(uint64) bool { return gcPercent() == defaultPercent }); !ok {
		t.Errorf("GOGC with 64 MiB live and a 16 MiB floor = %d, want %d", gcPercent(), defaultPercent)
	}
	runtime.KeepAlive(live)
}

// TestKeepLeavesTheOperatorsChoice: GOGC or GOMEMLIMIT in the environment, or
// no floor, turns Keep into a no-op.
func TestKeepLeavesTheOperatorsChoice(t *testing.T) {
	for _, tc := range []struct {
		name, env, value string
		floor            int64
	}{
		{"GOGC", "GOGC", "50", 64 << 20},
		{"GOMEMLIMIT", "GOMEMLIMIT", "1GiB", 64 << 20},
		{"no floor", "", "", 0},
		{"another Keep", "", "", 64 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv(tc.env, tc.value)
			}
			if tc.name == "another Keep" {
				defer Keep(16 << 30)() // a floor of 16 GiB would show as a GOGC of 400,000
				runtime.GC()
				runtime.GC()
			}
			before := gcPercent()
			stop := Keep(tc.floor)
			runtime.GC()
			runtime.GC()
			if p := gcPercent(); p != before {
				t.Errorf("GOGC = %d, want %d unchanged", p, before)
			}
			stop()
		})
	}
}
