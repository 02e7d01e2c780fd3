package delivery_test

import (
	"context"
	"testing"
	"time"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/delivery"
	"github.com/hookd/hookd/netguard"
)

// TestEngineKeepsWorkers: attempts run on worker goroutines that are kept
// between attempts (about as many as attempts in flight at once, not one per
// attempt), that exit once idle, and that Stop ends.
func TestEngineKeepsWorkers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		idle time.Duration
	}{
		{"exit when idle", 50 * time.Millisecond},
		{"end at Stop", time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db, org := setup(t)
			const concurrency, events = 16, 300
			r := newReceiver(t, 2*time.Millisecond, events)
			addEndpoint(t, db, org, r.URL, func(e *hookd.Endpoint) { e.MaxInFlight = concurrency })
			publish(t, db, org, events)
			e, err := delivery.New(delivery.Config{Store: db, Policy: netguard.Policy{AllowHTTP: true, AllowPrivate: true}, Concurrency: concurrency,
				PollInterval: 10 * time.Millisecond, AttemptTimeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			delivery.SetWorkerIdle(e, tc.idle)
			if err := e.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = e.Stop(context.Background()) })
			r.wait(t, time.Minute)
			live, started := delivery.Workers(e)
			// About as many as attempts in flight at once, not one per attempt.
			// (A worker that has just ended an attempt may not be waiting yet
			// when the next claim hands out work, which then starts another;
			// and with a short idle time, workers may exit between claims.)
			if started > 2*concurrency && tc.idle > time.Second {
				t.Errorf("%d attempts started %d workers, want at most %d (twice the attempts in flight at once)", events, started, 2*concurrency)
			}
			if started == 0 || live > started {
				t.Errorf("workers: %d live, %d started", live, started)
			}
			if tc.idle < time.Second {
				deadline := time.Now().Add(10 * time.Second)
				for live > 0 && time.Now().Before(deadline) {
					time.Sleep(10 * time.Millisecond)
					live, _ = delivery.Workers(e)
				}
				if live != 0 {
					t.Errorf("%d workers still running after %v idle, want none", live, tc.idle)
				}
				return
			}
			if live == 0 {
				t.Errorf("no worker kept after the attempts, want them waiting for the next (idle %v)", tc.idle)
			}
			if err := e.Stop(context.Background()); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(10 * time.Second)
			for live > 0 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
				live, _ = delivery.Workers(e)
			}
			if live != 0 {
				t.Errorf("%d workers still running after Stop, want none", live)
			}
		})
	}
}

// TestEngineClaimEarly: once ClaimEarly attempts have ended, the next claim
// goes without waiting for ClaimGap; with fewer ended, it waits.
func TestEngineClaimEarly(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name           string
		events, early  int
		gap            time.Duration
		atLeast, below time.Duration
	}{
		// 4 in flight at most: 10 claims, each as soon as the last 4 end
		// (9 gaps of a second without).
		{name: "early", events: 40, early: 4, gap: time.Second, below: 4 * time.Second},
		// 3 claims of 4, never 100 ended: two gaps at least.
		{name: "gap", events: 12, early: 100, gap: 300 * time.Millisecond, atLeast: 600 * time.Millisecond, below: time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db, org := setup(t)
			r := newReceiver(t, 0, tc.events)
			addEndpoint(t, db, org, r.URL, func(e *hookd.Endpoint) { e.MaxInFlight = 4 })
			publish(t, db, org, tc.events)
			start := time.Now()
			startEngine(t, db, func(c *delivery.Config) { c.ClaimGap, c.ClaimEarly = tc.gap, tc.early })
			r.wait(t, time.Minute)
			if took := time.Since(start); took < tc.atLeast || took >= tc.below {
				t.Errorf("%d deliveries took %v, want at least %v and less than %v", tc.events, took, tc.atLeast, tc.below)
			}
		})
	}
}

// TestEngineReleasesNearlyExpiredClaims: a claim whose lease has too little
// left for an attempt and its recording is released unattempted (here every
// claim, with a lease of 100 ms): the receiver hears nothing and the delivery
// stays pending, with no attempt counted.
func TestEngineReleasesNearlyExpiredClaims(t *testing.T) {
	t.Parallel()
	db, org := setup(t)
	r := newReceiver(t, 0, 1)
	addEndpoint(t, db, org, r.URL, nil)
	publish(t, db, org, 1)
	e := startEngine(t, db, func(c *delivery.Config) { c.Lease = 100 * time.Millisecond })
	time.Sleep(500 * time.Millisecond) // several claims, each released
	if err := e.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := r.n.Load(); n != 0 {
		t.Errorf("the receiver got %d requests, want none", n)
	}
	ds, _, err := db.ListDeliveries(context.Background(), hookd.DeliveryFilter{OrgID: org})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].Status != hookd.DeliveryPending || ds[0].Attempts != 0 {
		t.Fatalf("deliveries %+v, want one pending with no attempt", ds)
	}
}
