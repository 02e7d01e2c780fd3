package storetest

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/ids"
)

// bucketLimit is the suite's token bucket: a token every 250ms, 5 at most.
var bucketLimit = hookd.RateLimit{PerSecond: 4, Burst: 5}

// tick is the time one token of bucketLimit takes to come back.
const tick = 250 * time.Millisecond

// mustTake takes a token from the bucket key at now.
func mustTake(t *testing.T, s hookd.Store, key string, limit hookd.RateLimit, now time.Time) hookd.TokenResult {
	t.Helper()
	r, err := s.TakeToken(t.Context(), key, limit, now)
	if err != nil {
		t.Fatalf("TakeToken(%s, %v): %v", key, now, err)
	}
	return r
}

// drain takes tokens from the bucket key at now until one is refused.
func drain(t *testing.T, s hookd.Store, key string, limit hookd.RateLimit, now time.Time) {
	t.Helper()
	for range limit.Burst + 1 {
		if !mustTake(t, s, key, limit, now).Allowed {
			return
		}
	}
	t.Fatalf("bucket %s gave more than %d tokens at one instant", key, limit.Burst)
}

// wantAllowed fails t unless r took a token and left remaining whole tokens.
func wantAllowed(t *testing.T, r hookd.TokenResult, remaining int, what string) {
	t.Helper()
	if !r.Allowed || r.Remaining != remaining {
		t.Errorf("%s: TakeToken = %+v, want allowed with %d remaining", what, r, remaining)
	}
}

// wantRefused fails t unless r was refused, with nothing remaining and a token due
// in retryAfter (to the millisecond).
func wantRefused(t *testing.T, r hookd.TokenResult, retryAfter time.Duration, what string) {
	t.Helper()
	if r.Allowed || r.Remaining != 0 || (r.RetryAfter-retryAfter).Abs() > time.Millisecond {
		t.Errorf("%s: TakeToken = %+v, want refused with 0 remaining, retry after %v", what, r, retryAfter)
	}
}

var takeTokenTests = []test{
	{"StartsFull", func(t *testing.T, s hookd.Store) {
		key := ids.New("bucket")
		for i := range bucketLimit.Burst {
			wantAllowed(t, mustTake(t, s, key, bucketLimit, base), bucketLimit.Burst-1-i, "take at one instant")
		}
		wantRefused(t, mustTake(t, s, key, bucketLimit, base), tick, "take past the burst")
		wantRefused(t, mustTake(t, s, key, bucketLimit, base), tick, "take past the burst again")
	}},
	{"Refills", func(t *testing.T, s hookd.Store) {
		key := ids.New("bucket")
		drain(t, s, key, bucketLimit, base)
		wantAllowed(t, mustTake(t, s, key, bucketLimit, base.Add(tick)), 0, "take a tick later")
		wantRefused(t, mustTake(t, s, key, bucketLimit, base.Add(tick)), tick, "second take a tick later")
		wantRefused(t, mustTake(t, s, key, bucketLimit, base.Add(tick+tick/2)), tick/2, "take half a tick later")
		// A second later: 0.5 + 3.5 tokens.
		at := base.Add(tick + time.Second)
		for i := range 4 {
			wantAllowed(t, mustTake(t, s, key, bucketLimit, at), 3-i, "take a second later")
		}
		wantRefused(t, mustTake(t, s, key, bucketLimit, at), tick, "fifth take a second later")
	}},
	{"NeverAboveBurst", func(t *testing.T, s hookd.Store) {
		key := ids.New("bucket")
		wantAllowed(t, mustTake(t, s, key, bucketLimit, base), 4, "first take")
		wantAllowed(t, mustTake(t, s, key, bucketLimit, base), 3, "second take")
		at := base.Add(time.Hour)
		for i := range bucketLimit.Burst {
			wantAllowed(t, mustTake(t, s, key, bucketLimit, at), bucketLimit.Burst-1-i, "take an hour later")
		}
		wantRefused(t, mustTake(t, s, key, bucketLimit, at), tick, "take past the burst an hour later")
	}},
	{"KeysAreIndependent", func(t *testing.T, s hookd.Store) {
		a, b := ids.New("bucket"), ids.New("bucket")
		drain(t, s, a, bucketLimit, base)
		for i := range bucketLimit.Burst {
			wantAllowed(t, mustTake(t, s, b, bucketLimit, base), bucketLimit.Burst-1-i, "take from another bucket")
		}
		wantRefused(t, mustTake(t, s, a, bucketLimit, base), tick, "take from the drained bucket")
	}},
	{"Concurrent", func(t *testing.T, s hookd.Store) {
		limit := hookd.RateLimit{PerSecond: 1, Burst: 10}
		key := ids.New("bucket")
		var (
			wg      sync.WaitGroup
			allowed atomic.Int64
		)
		for range 40 {
			wg.Go(func() {
				for range 2 {
					r, err := s.TakeToken(t.Context(), key, limit, base)
					if err != nil {
						t.Errorf("TakeToken: %v", err)
						return
					}
					if r.Allowed {
						allowed.Add(1)
					}
				}
			})
		}
		wg.Wait()
		if n := allowed.Load(); n != int64(limit.Burst) {
			t.Errorf("80 concurrent takes at one instant: %d allowed, want the burst, %d", n, limit.Burst)
		}
		wantRefused(t, mustTake(t, s, key, limit, base), time.Second, "take after the concurrent takes")
	}},
	{"ClockBackwards", func(t *testing.T, s hookd.Store) {
		key := ids.New("bucket")
		wantAllowed(t, mustTake(t, s, key, bucketLimit, base), 4, "take at base")
		// Earlier times take tokens but refill nothing.
		earlier := base.Add(-10 * time.Second)
		wantAllowed(t, mustTake(t, s, key, bucketLimit, earlier), 3, "take 10s before")
		drain(t, s, key, bucketLimit, earlier)
		wantRefused(t, mustTake(t, s, key, bucketLimit, base.Add(-time.Hour)), tick, "take an hour before")
		// Back at base, where the bucket was last refilled, no time has passed: an
		// instance whose clock lags must not hand out the time between the clocks again.
		if r := mustTake(t, s, key, bucketLimit, base); r.Allowed {
			t.Fatalf("take at base again: TakeToken = %+v, want refused: the time between base and an earlier clock was refilled twice", r)
		}
		wantAllowed(t, mustTake(t, s, key, bucketLimit, base.Add(tick)), 0, "take a tick after base")
		wantRefused(t, mustTake(t, s, key, bucketLimit, base.Add(tick)), tick, "second take a tick after base")
	}},
}
