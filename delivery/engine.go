// Package delivery is hookd's delivery engine: it claims due deliveries from the
// store in batches, signs and sends them with per-endpoint concurrency and rate
// limits, and records every attempt and the retry schedule's verdict.
package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/ids"
	"github.com/hookd/hookd/netguard"
)

// Store is what the engine needs of hookd.Store.
type Store interface {
	ClaimDeliveries(ctx context.Context, p hookd.ClaimParams) ([]*hookd.Claim, error)
	CompleteDeliveries(ctx context.Context, outcomes []hookd.Outcome) error
	ReleaseDeliveries(ctx context.Context, releases []hookd.Release) error
}

// Config configures an Engine. Zero values mean the documented defaults.
type Config struct {
	// Store is where deliveries are claimed and outcomes recorded. Required.
	Store Store
	// Policy guards targets at connect time (SSRF) and decides whether http URLs may
	// be used. The zero value is strict: https and public addresses only.
	Policy netguard.Policy
	// Concurrency caps attempts in flight across all endpoints. Default 512. The
	// last quarter of it is kept for endpoints with nothing in flight, so that slow
	// endpoints can never hold every slot and delay the others.
	Concurrency int
	// MaxInFlight is the default cap on attempts in flight per endpoint, for
	// endpoints that set none. Default 32.
	MaxInFlight int
	// BatchSize caps the deliveries claimed at once. Default 256.
	BatchSize int
	// PollInterval is how often the store is asked for due deliveries when nothing
	// woke the engine sooner. Default 250ms.
	PollInterval time.Duration
	// ClaimGap is the least time between two claims that did not fill a batch, so
	// that freed slots are refilled in batches. Default 3ms.
	ClaimGap time.Duration
	// ClaimEarly is how many attempts must end, after a claim, for the next claim
	// to go before ClaimGap has passed: enough to fill a batch worth its cost,
	// and under load much sooner than ClaimGap. Default 16.
	ClaimEarly int
	// AttemptTimeout bounds one attempt, connection included. Default 15s.
	AttemptTimeout time.Duration
	// Lease is how long a claim is exclusive. Default AttemptTimeout + 30s.
	Lease time.Duration
	// Retry is the default retry schedule. Default hookd.DefaultRetryPolicy.
	Retry hookd.RetryPolicy
	// DisableAfter is how long an endpoint may fail continuously (every attempt
	// since the first failure failed) before hookd disables it and emits
	// endpoint.disabled. Default 5 days; negative never disables.
	DisableAfter time.Duration
	// UserAgent is sent with every request. Default "hookd/dev".
	UserAgent string
	// Name identifies this engine in claims. Default a random id.
	Name string
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives errors and lifecycle messages. Default slog.Default().
	Logger *slog.Logger
}

func (c *Config) setDefaults() error {
	if c.Store == nil {
		return errors.New("delivery: Config.Store is required")
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 512
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 32
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 256
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 250 * time.Millisecond
	}
	if c.AttemptTimeout <= 0 {
		c.AttemptTimeout = 15 * time.Second
	}
	if c.ClaimGap <= 0 {
		c.ClaimGap = 3 * time.Millisecond
	}
	if c.ClaimEarly <= 0 {
		c.ClaimEarly = 16
	}
	if c.Lease <= 0 {
		c.Lease = c.AttemptTimeout + 30*time.Second
	}
	c.Retry = c.Retry.Or(hookd.DefaultRetryPolicy)
	if c.DisableAfter == 0 {
		c.DisableAfter = DefaultDisableAfter
	}
	if c.UserAgent == "" {
		c.UserAgent = "hookd/dev"
	}
	if c.Name == "" {
		c.Name = ids.New("engine")
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// DefaultDisableAfter is Config.DisableAfter's default (SPEC §8).
const DefaultDisableAfter = 5 * 24 * time.Hour

// Engine sends webhooks. Start it once; Stop it once. Safe for concurrent use.
type Engine struct {
	cfg    Config
	client *http.Client
	wake   chan struct{}
	rec    *recorder
	// early is signalled when ClaimEarly attempts have ended since the last
	// claim.
	early chan struct{}

	mu        sync.Mutex
	endpoints map[string]*endpointState
	inFlight  int
	ended     int // attempts ended since the last claim

	startOnce, stopOnce sync.Once
	cancelLoop          context.CancelFunc
	loopDone            chan struct{}
	sendCtx             context.Context // cancelled only when Stop's deadline passes
	cancelSend          context.CancelFunc
	sends               sync.WaitGroup

	// Attempts run on worker goroutines kept between attempts (about one per
	// attempt in flight), so that an attempt does not start a goroutine and
	// grow its stack anew: that cost ~3 % of hookd's CPU in `burst`.
	jobs    chan job                             // unbuffered: a send succeeds only if a worker waits
	quit    chan struct{}                        // closed by Stop once every attempt has finished
	idle    time.Duration                        // how long a worker waits for its next attempt
	workers struct{ live, started atomic.Int64 } // running now, and started in all
}

// job is an attempt handed to a worker.
type job struct {
	c        *hookd.Claim
	leaseEnd time.Time
}

// workerIdle is how long a worker waits for its next attempt before it exits.
const workerIdle = 10 * time.Second

// endpointState is the engine's local view of one endpoint's load.
type endpointState struct {
	inFlight int
	max      int
	rate     float64
	limiter  *rate.Limiter
}

// New returns an engine configured by cfg, or an error naming a missing field.
func New(cfg Config) (*Engine, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	e := &Engine{
		cfg:       cfg,
		client:    cfg.Policy.Client(),
		wake:      make(chan struct{}, 1),
		early:     make(chan struct{}, 1),
		rec:       newRecorder(cfg.Store),
		endpoints: map[string]*endpointState{},
		loopDone:  make(chan struct{}),
		jobs:      make(chan job),
		quit:      make(chan struct{}),
		idle:      workerIdle,
	}
	if t, ok := e.client.Transport.(*http.Transport); ok {
		// Every connection the engine opens can be kept: with fewer idle
		// connections per host than attempts in flight, endpoints sharing a
		// host (or one busy endpoint) would open and close connections all
		// the time, each a TCP (and TLS) handshake and a socket in TIME_WAIT.
		t.MaxIdleConnsPerHost = max(t.MaxIdleConnsPerHost, cfg.Concurrency)
		t.MaxIdleConns = max(t.MaxIdleConns, cfg.Concurrency)
	}
	e.sendCtx, e.cancelSend = context.WithCancel(context.Background())
	return e, nil
}

// Notify tells the engine that deliveries may have become due (an event was
// published, an endpoint enabled, a delivery retried). It never blocks.
func (e *Engine) Notify() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// EndpointChanged tells the engine that an endpoint's settings changed (ordering,
// max_in_flight, rate limit, enabled): it stops holding the endpoint back on what it
// knew of it until its next claim brings the new settings. It never blocks.
func (e *Engine) EndpointChanged(id string) {
	e.mu.Lock()
	if st := e.endpoints[id]; st != nil {
		st.max = math.MaxInt
	}
	e.mu.Unlock()
	e.Notify()
}

// Start starts the claim loop in the background. It returns at once.
func (e *Engine) Start(ctx context.Context) error {
	e.startOnce.Do(func() {
		ctx, e.cancelLoop = context.WithCancel(context.WithoutCancel(ctx))
		e.rec.start()
		go e.loop(ctx)
	})
	return nil
}

// Stop stops claiming, waits for attempts in flight to finish and be recorded, and
// returns. If ctx ends first, the remaining attempts are aborted and their
// deliveries released unattempted, and Stop returns ctx's error. Stop is idempotent.
func (e *Engine) Stop(ctx context.Context) error {
	var err error
	e.stopOnce.Do(func() {
		if e.cancelLoop != nil {
			e.cancelLoop()
			<-e.loopDone
		}
		done := make(chan struct{})
		go func() { e.sends.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			e.cancelSend()
			<-done
			err = ctx.Err()
		}
		e.cancelSend()
		if e.cancelLoop != nil {
			e.rec.stop() // every attempt has finished: their outcomes are in
		}
		close(e.quit) // no attempt is started after the loop has stopped
		e.client.CloseIdleConnections()
	})
	return err
}

// worker runs j, then the attempts handed to it, until it has waited
// e.idle for one or the engine stops.
func (e *Engine) worker(j job) {
	e.workers.started.Add(1)
	e.workers.live.Add(1)
	defer e.workers.live.Add(-1)
	idle := time.NewTimer(e.idle)
	defer idle.Stop()
	for {
		e.deliver(j.c, j.leaseEnd)
		idle.Reset(e.idle)
		select {
		case j = <-e.jobs:
		case <-idle.C:
			return
		case <-e.quit:
			return
		}
	}
}

func (e *Engine) loop(ctx context.Context) {
	defer close(e.loopDone)
	timer := time.NewTimer(0)
	defer timer.Stop()
	var last time.Time
	for {
		// Claims are batched: each costs a few queries, so after a short one wait
		// until ClaimGap has passed, gathering every slot freed meanwhile, or
		// until ClaimEarly slots are free again.
		if wait := e.cfg.ClaimGap - time.Since(last); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			case <-e.early:
				timer.Stop() // Reset discards a value it may have sent since (Go 1.23)
			}
		}
		last = time.Now()
		n, err := e.runOnce(ctx)
		if err != nil && ctx.Err() == nil {
			e.cfg.Logger.Error("claim deliveries", "err", err)
		}
		if err == nil && n == e.cfg.BatchSize {
			// There may be more due work: go again unless we are out of slots,
			// in which case a finishing attempt wakes us.
			if e.free() > 0 {
				last = time.Time{}
				continue
			}
		}
		timer.Reset(e.cfg.PollInterval)
		select {
		case <-ctx.Done():
			return
		case <-e.wake:
		case <-timer.C:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// reserve is how many slots only endpoints with nothing in flight may take.
func (e *Engine) reserve() int {
	return max(1, e.cfg.Concurrency/4)
}

func (e *Engine) free() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.cfg.Concurrency - e.inFlight
}

// runOnce claims one batch of due deliveries and starts their attempts. It returns
// how many deliveries it claimed.
func (e *Engine) runOnce(ctx context.Context) (int, error) {
	now := e.cfg.Now()
	e.mu.Lock()
	e.ended = 0
	select {
	case <-e.early: // from before this claim
	default:
	}
	free := e.cfg.Concurrency - e.inFlight
	// The last e.reserve() slots are claimed only one per endpoint, and only by
	// endpoints with nothing in flight; the rest, up to what no single endpoint may
	// exceed, by anyone.
	reserved := free <= e.reserve()
	limit, perEndpoint := min(free-e.reserve(), e.cfg.BatchSize), max(1, e.cfg.Concurrency-e.reserve())
	if reserved {
		limit, perEndpoint = min(free, e.cfg.BatchSize), 1
	}
	var exclude []string
	caps := map[string]int{}
	for id, st := range e.endpoints {
		switch {
		case st.inFlight >= st.max:
			exclude = append(exclude, id)
		case reserved && st.inFlight > 0:
			// The last slots go to endpoints that have nothing in flight.
			exclude = append(exclude, id)
		case st.limiter != nil:
			tokens := int(st.limiter.TokensAt(now))
			if tokens < 1 {
				exclude = append(exclude, id)
			} else {
				caps[id] = tokens
			}
		case st.inFlight == 0 && len(e.endpoints) > 10000:
			delete(e.endpoints, id) // forget idle endpoints to bound memory
		}
	}
	e.mu.Unlock()
	if limit <= 0 {
		return 0, nil
	}
	// The lease runs from before the claim: every attempt must end, and its
	// outcome be recorded, before it runs out (see deliver).
	leaseEnd := time.Now().Add(e.cfg.Lease)
	claims, err := e.cfg.Store.ClaimDeliveries(ctx, hookd.ClaimParams{
		Owner: e.cfg.Name, Limit: limit, Now: now, Lease: e.cfg.Lease, Exclude: exclude,
		MaxInFlight: e.cfg.MaxInFlight, Caps: caps, PerEndpoint: perEndpoint,
	})
	if err != nil {
		return 0, err
	}
	var releases []hookd.Release
	e.mu.Lock()
	for _, c := range claims {
		// The store capped each endpoint's share by its live leases, which is
		// authoritative: the local count may still include attempts whose outcome
		// was just recorded.
		st := e.stateLocked(&c.Endpoint)
		if st.limiter != nil {
			r := st.limiter.ReserveN(now, 1)
			if d := r.DelayFrom(now); d > 0 {
				r.CancelAt(now)
				releases = append(releases, hookd.Release{DeliveryID: c.Delivery.ID, Lease: c.Lease, NextAttemptAt: now.Add(d)})
				continue
			}
		}
		st.inFlight++
		e.inFlight++
		e.sends.Add(1)
		select {
		case e.jobs <- job{c, leaseEnd}:
		default:
			go e.worker(job{c, leaseEnd})
		}
	}
	e.mu.Unlock()
	if len(releases) > 0 {
		if err := e.cfg.Store.ReleaseDeliveries(context.WithoutCancel(ctx), releases); err != nil {
			return len(claims), err
		}
	}
	return len(claims), nil
}

// stateLocked returns the state of ep, refreshed from the claim's copy of its
// settings. e.mu must be held.
func (e *Engine) stateLocked(ep *hookd.Endpoint) *endpointState {
	st := e.endpoints[ep.ID]
	if st == nil {
		st = &endpointState{}
		e.endpoints[ep.ID] = st
	}
	st.max = ep.MaxInFlight
	if st.max <= 0 {
		st.max = e.cfg.MaxInFlight
	}
	// No endpoint may take the slots kept in reserve.
	st.max = min(st.max, max(1, e.cfg.Concurrency-e.reserve()))
	if ep.Ordering == hookd.OrderingFIFO {
		st.max = 1
	}
	if ep.RateLimit != st.rate {
		st.rate, st.limiter = ep.RateLimit, nil
		if ep.RateLimit > 0 {
			st.limiter = rate.NewLimiter(rate.Limit(ep.RateLimit), max(1, int(ep.RateLimit)))
		}
	}
	return st
}

// minAttemptTime is the least lease time worth starting an attempt with.
const minAttemptTime = 100 * time.Millisecond

// leaseMargin is the part of a lease kept for recording the attempt's outcome: an
// attempt is cut short that much before its lease ends, so that no other
// instance can claim the delivery while it is still being attempted.
func (e *Engine) leaseMargin() time.Duration {
	return min(10*time.Second, e.cfg.Lease/4)
}

// deliver makes one attempt for c and records its outcome, unless too little of
// its lease (ending at leaseEnd) is left, in which case it releases c unattempted.
func (e *Engine) deliver(c *hookd.Claim, leaseEnd time.Time) {
	defer e.sends.Done()
	defer func() {
		e.mu.Lock()
		e.endpoints[c.Endpoint.ID].inFlight--
		e.inFlight--
		e.ended++
		if e.ended == e.cfg.ClaimEarly {
			select {
			case e.early <- struct{}{}:
			default:
			}
		}
		e.mu.Unlock()
		e.Notify()
	}()
	if time.Until(leaseEnd) < e.leaseMargin()+minAttemptTime {
		// Claimed too long ago (a stalled process): let it run again, fresh.
		e.cfg.Logger.Warn("lease nearly over before the attempt started; released", "delivery", c.Delivery.ID)
		e.release(c)
		return
	}
	// One deadline bounds the attempt: its timeout, or the end of its lease
	// less the margin for recording it, whichever comes first. It is released
	// only once the outcome is recorded, well after the response body is closed,
	// so that the transport is never told of a cancellation while it puts the
	// connection back in its idle pool (it would close the connection instead).
	sendCtx, cancelSend := context.WithDeadline(e.sendCtx,
		earliest(leaseEnd.Add(-e.leaseMargin()), time.Now().Add(e.cfg.AttemptTimeout)))
	defer cancelSend()
	res := e.attempt(sendCtx, c)
	if e.sendCtx.Err() != nil {
		// Shutting down: the attempt was cut short, so it does not count.
		e.release(c)
		return
	}
	out := e.decide(c, res)
	if err := e.rec.record(out); err != nil {
		// The lease will expire and the delivery will be attempted again.
		e.cfg.Logger.Error("record delivery outcome", "delivery", c.Delivery.ID, "err", err)
	}
}

// release gives c back unattempted, due when it was.
func (e *Engine) release(c *hookd.Claim) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rel := []hookd.Release{{DeliveryID: c.Delivery.ID, Lease: c.Lease, NextAttemptAt: c.Delivery.NextAttemptAt}}
	if err := e.cfg.Store.ReleaseDeliveries(ctx, rel); err != nil {
		e.cfg.Logger.Error("release delivery", "delivery", c.Delivery.ID, "err", err)
	}
}

// decide applies the retry schedule to an attempt's result.
func (e *Engine) decide(c *hookd.Claim, r result) hookd.Outcome {
	now := r.attempt.CreatedAt.Add(r.attempt.Duration)
	out := hookd.Outcome{DeliveryID: c.Delivery.ID, Lease: c.Lease, Attempt: r.attempt}
	policy := c.Endpoint.Retry.Or(e.cfg.Retry)
	failed := c.Delivery.CycleAttempts + 1
	switch {
	case r.attempt.Error == "":
		out.Status = hookd.DeliverySucceeded
	case r.attempt.StatusCode == http.StatusGone:
		out.Status = hookd.DeliveryFailed
		out.DisableEndpoint = "the endpoint answered 410 Gone"
	case failed >= policy.MaxAttempts:
		out.Status = hookd.DeliveryFailed
		if !hookd.NoFollowUp(c.Event.Type) {
			d := c.Delivery
			out.Emit = append(out.Emit, hookd.NewDeliveryFailedEvent(ids.NewAt("evt", now), &d, d.Attempts+1, r.attempt.Error, now))
		}
	default:
		out.Status = hookd.DeliveryPending
		wait := policy.Backoff(failed, rand.Float64())
		if r.retryAfter > 0 {
			wait = min(r.retryAfter, policy.MaxInterval)
		}
		out.NextAttemptAt = now.Add(wait)
	}
	if since := c.Endpoint.FailingSince; r.attempt.Error != "" && out.DisableEndpoint == "" && e.cfg.DisableAfter > 0 &&
		!since.IsZero() && now.Sub(since) >= e.cfg.DisableAfter {
		out.DisableEndpoint = fmt.Sprintf("every attempt failed since %s (%s); disabled after %s of failures",
			since.UTC().Format(time.RFC3339), r.attempt.Error, e.cfg.DisableAfter)
		out.FailingFor = e.cfg.DisableAfter // the store checks the run it has, which a success may have ended
	}
	return out
}

// Send makes one attempt for c now, outside the queue, and returns it (used to
// test an endpoint). c.Lease is not used.
func (e *Engine) Send(ctx context.Context, c *hookd.Claim) hookd.Attempt {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.AttemptTimeout)
	defer cancel()
	return e.attempt(ctx, c).attempt
}

// earliest returns the earlier of a and b.
func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// errorf formats an attempt error.
func errorf(format string, args ...any) string { return fmt.Sprintf(format, args...) }
