package bench

import (
	"math"
	"sync/atomic"
	"time"
)

// The histogram's range and precision: buckets grow by histGrowth from
// histMin, so a bucket's geometric midpoint is within sqrt(histGrowth)-1
// (≈1%) of any value in it. Values outside the range land in the first or last
// bucket; the exact minimum and maximum are kept besides.
const (
	histMin    = float64(time.Microsecond)
	histMax    = float64(10 * time.Minute)
	histGrowth = 1.02
)

var (
	histLogGrowth = math.Log(histGrowth)
	histBuckets   = int(math.Ceil(math.Log(histMax/histMin)/histLogGrowth)) + 1
)

// histogram records durations in logarithmic buckets, so its memory is
// constant (about 8 KiB) whatever the count. Its methods are safe for
// concurrent use; a quantile read while values are recorded reflects some of
// them.
type histogram struct {
	counts []atomic.Uint64
	n      atomic.Int64
	min    atomic.Int64 // exact; math.MaxInt64 while empty
	max    atomic.Int64 // exact
}

func newHistogram() *histogram {
	h := &histogram{counts: make([]atomic.Uint64, histBuckets)}
	h.min.Store(math.MaxInt64)
	return h
}

// bucket returns the bucket index of d.
func bucket(d time.Duration) int {
	if float64(d) <= histMin {
		return 0
	}
	i := int(math.Log(float64(d)/histMin) / histLogGrowth)
	return min(i, histBuckets-1)
}

// Record adds one value. Negative durations count as zero.
func (h *histogram) Record(d time.Duration) {
	d = max(d, 0)
	h.counts[bucket(d)].Add(1)
	h.n.Add(1)
	for v := h.max.Load(); int64(d) > v && !h.max.CompareAndSwap(v, int64(d)); v = h.max.Load() {
	}
	for v := h.min.Load(); int64(d) < v && !h.min.CompareAndSwap(v, int64(d)); v = h.min.Load() {
	}
}

// Count returns how many values were recorded.
func (h *histogram) Count() int64 { return h.n.Load() }

// Max returns the largest value recorded, exactly (0 if none).
func (h *histogram) Max() time.Duration { return time.Duration(h.max.Load()) }

// Quantile returns the value at quantile q (0 < q ≤ 1): the smallest recorded
// value v such that at least q of all values are ≤ v, within the bucket
// precision (≈1%) and clamped to the exact minimum and maximum. It returns 0
// for an empty histogram.
func (h *histogram) Quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	lo, hi := time.Duration(h.min.Load()), time.Duration(h.max.Load())
	if q >= 1 {
		return hi
	}
	rank := uint64(math.Ceil(q * float64(n)))
	rank = max(rank, 1)
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			mid := time.Duration(histMin * math.Pow(histGrowth, float64(i)+0.5))
			return min(max(mid, lo), hi)
		}
	}
	return hi
}

// latency is a histogram's summary as it appears in the JSON.
type latency struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

// Summary returns the count, p50, p90, p99 and max in milliseconds.
func (h *histogram) Summary() latency {
	return latency{
		Count: h.Count(),
		P50:   ms(h.Quantile(0.50)),
		P90:   ms(h.Quantile(0.90)),
		P99:   ms(h.Quantile(0.99)),
		Max:   ms(h.Max()),
	}
}

// ms returns d in milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
