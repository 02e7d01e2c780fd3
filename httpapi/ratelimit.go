package httpapi

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// keyLimiter is a token bucket per API key, kept in this process's memory. Its
// zero value and a nil *keyLimiter limit nothing. Safe for concurrent use.
//
// A bucket left untouched for as long as it takes to refill completely is
// indistinguishable from a new one, so such buckets are dropped: memory holds
// only the keys that made a request within the last refill period (burst/rate
// seconds, at least a second).
type keyLimiter struct {
	rate  rate.Limit
	burst int
	// full is how long an empty bucket takes to refill.
	full time.Duration

	mu        sync.Mutex
	buckets   map[string]*rate.Limiter
	seen      map[string]time.Time // last request of each key in buckets
	lastSweep time.Time
}

// newKeyLimiter returns a limiter of perSecond requests per second and key with
// bursts of burst (at least 1), or nil, which limits nothing, if perSecond is
// not positive.
func newKeyLimiter(perSecond float64, burst int) *keyLimiter {
	if perSecond <= 0 {
		return nil
	}
	burst = max(burst, 1)
	full := time.Duration(float64(burst) / perSecond * float64(time.Second))
	return &keyLimiter{rate: rate.Limit(perSecond), burst: burst, full: max(full, time.Second),
		buckets: map[string]*rate.Limiter{}, seen: map[string]time.Time{}}
}

// verdict is the outcome of one request against its key's bucket.
type verdict struct {
	allowed    bool
	remaining  int           // whole tokens left after this request
	retryAfter time.Duration // when not allowed: until a token is back
}

// take spends a token of key's bucket at now, if it has one.
func (l *keyLimiter) take(key string, now time.Time) verdict {
	if l == nil || l.rate <= 0 {
		return verdict{allowed: true, remaining: math.MaxInt}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweepLocked(now)
	b := l.buckets[key]
	if b == nil {
		b = rate.NewLimiter(l.rate, l.burst)
		l.buckets[key] = b
	}
	l.seen[key] = now
	if b.AllowN(now, 1) {
		return verdict{allowed: true, remaining: int(math.Floor(b.TokensAt(now)))}
	}
	missing := 1 - b.TokensAt(now)
	return verdict{retryAfter: time.Duration(missing / float64(l.rate) * float64(time.Second))}
}

// sweepLocked drops, at most once per refill period, the buckets untouched for a
// whole refill period: they are full again, as a new bucket would be.
func (l *keyLimiter) sweepLocked(now time.Time) {
	if now.Sub(l.lastSweep) < l.full {
		return
	}
	l.lastSweep = now
	for key, t := range l.seen {
		if now.Sub(t) >= l.full {
			delete(l.seen, key)
			delete(l.buckets, key)
		}
	}
}

// size returns how many buckets are kept.
func (l *keyLimiter) size() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
