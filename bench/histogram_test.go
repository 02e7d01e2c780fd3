package bench

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// exactQuantile is the definition Quantile approximates: the smallest value
// such that at least q of all values are ≤ it.
func exactQuantile(sorted []time.Duration, q float64) time.Duration {
	rank := max(int(math.Ceil(q*float64(len(sorted)))), 1)
	return sorted[rank-1]
}

func TestHistogramQuantiles(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	tests := []struct {
		name string
		gen  func(i int) time.Duration
		n    int
	}{
		{"one value", func(int) time.Duration { return 3 * time.Millisecond }, 1},
		{"constant", func(int) time.Duration { return 1234 * time.Microsecond }, 1000},
		{"uniform 1µs–1s", func(int) time.Duration { return time.Microsecond + time.Duration(rng.Int64N(int64(time.Second))) }, 100_000},
		{"exponential, mean 2ms", func(int) time.Duration {
			return time.Microsecond + time.Duration(rng.ExpFloat64()*float64(2*time.Millisecond))
		}, 100_000},
		{"log-uniform 1µs–10min", func(int) time.Duration {
			return time.Duration(math.Exp(math.Log(1e3) + rng.Float64()*(math.Log(6e11)-math.Log(1e3))))
		}, 50_000},
		{"ascending", func(i int) time.Duration { return time.Duration(i+1) * 10 * time.Microsecond }, 10_000},
		{"two clusters", func(i int) time.Duration {
			if i%100 == 0 {
				return 500 * time.Millisecond
			}
			return 2 * time.Millisecond
		}, 10_000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHistogram()
			vals := make([]time.Duration, tt.n)
			for i := range vals {
				vals[i] = tt.gen(i)
				h.Record(vals[i])
			}
			slices.Sort(vals)
			if got := h.Count(); got != int64(tt.n) {
				t.Errorf("Count() = %d, want %d", got, tt.n)
			}
			if got, want := h.Max(), vals[len(vals)-1]; got != want {
				t.Errorf("Max() = %v, want %v (exact)", got, want)
			}
			for _, q := range []float64{0.001, 0.1, 0.5, 0.9, 0.99, 0.999, 1} {
				got, want := h.Quantile(q), exactQuantile(vals, q)
				if rel := math.Abs(float64(got-want)) / float64(want); rel > 0.01 {
					t.Errorf("Quantile(%v) = %v, want %v within 1%% (off by %.2f%%)", q, got, want, rel*100)
				}
			}
		})
	}
}

func TestHistogramEdges(t *testing.T) {
	t.Parallel()
	h := newHistogram()
	if got := h.Quantile(0.5); got != 0 {
		t.Errorf("empty Quantile(0.5) = %v, want 0", got)
	}
	if got := h.Summary(); got != (latency{}) {
		t.Errorf("empty Summary() = %+v, want zero", got)
	}
	// Negative counts as 0; below the range is at most ~1µs; above it, the
	// top of the range (10 min) but the exact maximum.
	h.Record(-time.Second)
	h.Record(100 * time.Nanosecond)
	h.Record(time.Hour)
	if got := h.Quantile(0.3); got > 1020*time.Nanosecond {
		t.Errorf("Quantile(0.3) = %v, want ≤ 1.02µs", got)
	}
	if got := h.Quantile(0.6); got > 1020*time.Nanosecond {
		t.Errorf("Quantile(0.6) = %v, want ≤ 1.02µs", got)
	}
	if got := h.Quantile(0.99); got < 10*time.Minute || got > time.Hour {
		t.Errorf("Quantile(0.99) = %v, want 10m–1h", got)
	}
	if got := h.Quantile(1); got != time.Hour {
		t.Errorf("Quantile(1) = %v, want 1h (the exact max)", got)
	}
}
