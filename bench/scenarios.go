package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hookd/hookd/signature"
)

// backlogEndpoints is the number of endpoints of the backlog scenario.
const backlogEndpoints = 10

// badHealthy is the number of healthy endpoints of bad-receiver.
const badHealthy = 4

// createdEndpoint is an endpoint the bench made.
type createdEndpoint struct {
	org *api
	id  string
}

// scenarioRun is one run of one scenario.
type scenarioRun struct {
	r    *runner
	cfg  *Config
	name string
	n    int    // run number, from 1
	id   string // prefix of this run's endpoint names
	dir  string
	sets []*hookdSet
	run  RunResult
	raw  float64 // raw loopback capacity, requests/s, measured before the phases
	// rawConc is the concurrency raw was measured with.
	rawConc int

	// created lists the endpoints made on a target, deleted at the end.
	created []createdEndpoint

	// Totals over the phases, for the figures every scenario has.
	expected, delivered, requests, badSigs, pubErrors int64
	firstPubErr, firstBadSig                          string
}

// runScenario runs scenario name once and returns its figures; a failure is
// in the Run's Error.
func (r *runner) runScenario(ctx context.Context, dir, name string, n int) RunResult {
	r.seq++
	sr := &scenarioRun{r: r, cfg: &r.cfg, name: name, n: n, id: fmt.Sprintf("s%d", r.seq), dir: dir}
	sr.run.Started = time.Now().UTC()
	r.logf("%s: run %d of %d", name, n, r.cfg.Runs)
	flushDisks() // the previous run's writes
	fn := map[string]func(context.Context) error{
		Steady: sr.steady, Burst: sr.burst, Fanout: sr.fanout, Backlog: sr.backlog, BadReceiver: sr.badReceiver,
	}[name]
	sctx := ctx
	if name != Backlog { // backlog bounds each of its passes
		var cancel context.CancelFunc
		sctx, cancel = context.WithTimeout(ctx, r.cfg.Timeout)
		defer cancel()
	}
	err := fn(sctx)
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		sr.incomplete("the timeout (%s) ended the run", r.cfg.Timeout)
		err = nil
	}
	if r.cfg.Target != "" {
		sr.deleteEndpoints(ctx)
	}
	var peak int64
	var cpu float64
	for _, s := range sr.sets {
		err = errors.Join(err, sr.closeSet(ctx, s))
		p, c := s.usage()
		peak, cpu = max(peak, p), cpu+c
		if sr.run.hookdVersion == "" {
			sr.run.hookdVersion = s.ver
		}
	}
	sr.commonFigures(peak, cpu)
	sr.run.Seconds = time.Since(sr.run.Started).Seconds()
	if err != nil {
		sr.run.Error = err.Error()
	}
	return sr.run
}

// deleteEndpoints deletes the endpoints the run made, so that a target does
// not go on delivering to them (retries to a failing one) after the run.
func (sr *scenarioRun) deleteEndpoints(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	for _, e := range sr.created {
		if err := e.org.call(ctx, "DELETE", "/api/webhooks/"+e.id, nil, nil); err != nil {
			sr.note("delete endpoint %s: %v", e.id, err)
		}
	}
}

// add appends a figure.
func (sr *scenarioRun) add(name, label, unit string, v float64, t *Target) {
	if math.IsInf(v, 0) || math.IsNaN(v) {
		v = 0
	}
	f := Figure{Name: name, Label: label, Unit: unit, Value: v, Target: t}
	f.check()
	sr.run.Figures = append(sr.run.Figures, f)
}

func atLeast(v float64, note string) *Target { return &Target{Op: ">=", Value: v, Note: note} }
func atMost(v float64, note string) *Target  { return &Target{Op: "<=", Value: v, Note: note} }

// when returns t if cond holds: targets apply only under the conditions they
// were set for.
func when(cond bool, t *Target) *Target {
	if cond {
		return t
	}
	return nil
}

// deliveryTarget is the delivery rate hookd should reach.
func (sr *scenarioRun) deliveryTarget() *Target {
	if sr.cfg.DatabaseURL != "" {
		return when(sr.cfg.Workers == 2, atLeast(8000, "PostgreSQL, 2 workers"))
	}
	return atLeast(10000, "")
}

func (sr *scenarioRun) note(format string, args ...any) {
	sr.run.Notes = append(sr.run.Notes, fmt.Sprintf(format, args...))
}

func (sr *scenarioRun) incomplete(format string, args ...any) {
	sr.run.Incomplete = true
	sr.note("incomplete: "+format, args...)
}

// commonFigures adds the figures every scenario has.
func (sr *scenarioRun) commonFigures(peakRSS int64, cpu float64) {
	sr.add("expected", "deliveries expected", "", float64(sr.expected), nil)
	sr.add("delivered", "deliveries received (unique)", "", float64(sr.delivered), nil)
	if sr.delivered > 0 {
		sr.add("attempts_per_delivery", "attempts per delivery", "x", float64(sr.requests)/float64(sr.delivered), nil)
	}
	sr.add("publish_errors", "publish requests without 2xx", "", float64(sr.pubErrors), atMost(0, ""))
	if sr.firstPubErr != "" {
		sr.note("first publish error: %s", sr.firstPubErr)
	}
	if sr.cfg.Verify {
		sr.add("bad_signatures", "bad signatures", "", float64(sr.badSigs), atMost(0, ""))
		if sr.firstBadSig != "" {
			sr.note("first bad signature: %s", sr.firstBadSig)
		}
	}
	if peakRSS > 0 {
		sr.add("peak_rss_mib", "hookd peak RSS", "MiB", float64(peakRSS)/(1<<20), atMost(200, ""))
		sr.add("cpu_seconds", "hookd CPU time", "s", cpu, nil)
	}
}

// newSet starts a hookd for this run (see runner.newSet).
func (sr *scenarioRun) newSet(ctx context.Context, label, role string) (*hookdSet, error) {
	s, err := sr.r.newSet(ctx, sr.dir, label, role)
	if err != nil {
		return nil, err
	}
	sr.sets = append(sr.sets, s)
	return s, nil
}

// closeSet takes heap profiles (with ProfileDir) and stops the set.
func (sr *scenarioRun) closeSet(ctx context.Context, s *hookdSet) error {
	if sr.cfg.ProfileDir != "" {
		for _, p := range s.procs() {
			if p.pprof != "" {
				if err := sr.fetchProfile(ctx, p.pprof+"/debug/pprof/heap", sr.profilePath(s, p, "heap"), 30*time.Second); err != nil {
					sr.note("heap profile: %v", err)
				}
			}
		}
	}
	return s.close()
}

// profileCPU starts fetching a CPU profile of d (at most 30 s) of every
// process of s, named kind (e.g. "cpu"); the returned func waits for them.
func (sr *scenarioRun) profileCPU(ctx context.Context, s *hookdSet, d time.Duration, kind string) (wait func()) {
	if sr.cfg.ProfileDir == "" {
		return func() {}
	}
	secs := min(max(int(math.Ceil(d.Seconds())), 1), 30)
	var wg sync.WaitGroup
	for _, p := range s.procs() {
		if p.pprof == "" {
			continue
		}
		wg.Go(func() {
			u := p.pprof + "/debug/pprof/profile?seconds=" + strconv.Itoa(secs)
			if err := sr.fetchProfile(ctx, u, sr.profilePath(s, p, kind), time.Duration(secs+30)*time.Second); err != nil {
				sr.note("CPU profile: %v", err)
			}
		})
	}
	return wg.Wait
}

// profilePath names a profile file: <scenario>[-run<n>][-<set>][-<process>]-<kind>.pprof.
func (sr *scenarioRun) profilePath(s *hookdSet, p *proc, kind string) string {
	name := sr.name
	if sr.cfg.Runs > 1 {
		name += fmt.Sprintf("-run%d", sr.n)
	}
	if s.label != "" {
		name += "-" + s.label
	}
	if p.name != "hookd" {
		name += "-" + p.name
	}
	return filepath.Join(sr.cfg.ProfileDir, name+"-"+kind+".pprof")
}

func (sr *scenarioRun) fetchProfile(ctx context.Context, url, path string, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), limit)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return err
	}
	resp, err := sr.r.hc.Do(req)
	if err != nil {
		return fmt.Errorf("fetch %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fetch %s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("fetch %s: %w", url, err)
	}
	return f.Close()
}

// addEndpoints creates n endpoints of org at the receiver's /<kind>/<name>
// (kind ok, fail or hang), each with a secret the receiver is told, and
// returns their names.
func (sr *scenarioRun) addEndpoints(ctx context.Context, org *api, kind, tag string, n int) ([]string, error) {
	names := make([]string, n)
	secrets := make(map[string]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s-%s%d", sr.id, tag, i)
		secrets[names[i]] = signature.NewSecret()
	}
	if err := sr.r.receiverCall(ctx, "POST", "/_secrets", secrets, nil); err != nil {
		return nil, err
	}
	errs := make([]error, n)
	ids := make([]string, n)
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, name := range names {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			ids[i], errs[i] = org.createEndpoint(ctx, endpointSpec{
				url: sr.r.recv.url + "/" + kind + "/" + name, secret: secrets[name], maxInFlight: sr.cfg.MaxInFlight,
			})
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id != "" {
			sr.created = append(sr.created, createdEndpoint{org, id})
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return names, nil
}

// setup creates an organization on s and n endpoints at /ok/.
func (sr *scenarioRun) setup(ctx context.Context, s *hookdSet, n int) (*api, []string, error) {
	org, err := s.adminAPI().setupOrg(ctx, "bench "+sr.name+" "+sr.id)
	if err != nil {
		return nil, nil, err
	}
	names, err := sr.addEndpoints(ctx, org, "ok", "e", n)
	return org, names, err
}

// measureRaw measures the raw loopback capacity with as many connections as
// hookd would use for endpoints endpoints, and resets the receiver.
func (sr *scenarioRun) measureRaw(ctx context.Context, endpoints int) error {
	mif := sr.cfg.MaxInFlight
	if mif == 0 {
		mif = serveArg(sr.cfg.ServeArgs, "max-in-flight", hookdMaxInFlight)
	}
	conc := max(min(endpoints*mif, serveArg(sr.cfg.ServeArgs, "concurrency", hookdConcurrency)), 1)
	rate, err := sr.rawRate(ctx, conc)
	if err != nil {
		return err
	}
	sr.raw, sr.rawConc = rate, conc
	sr.add("raw_rate", fmt.Sprintf("raw loopback capacity (%d concurrent)", conc), "/s", rate, nil)
	return nil
}

// rawRate measures the raw loopback capacity with conc connections, and resets
// the receiver.
func (sr *scenarioRun) rawRate(ctx context.Context, conc int) (float64, error) {
	sr.r.logf("%s: measuring the raw loopback capacity for %s (%d concurrent requests)", sr.name, sr.cfg.RawDuration, conc)
	rate, err := measureRaw(ctx, sr.r.recv.url, sr.r.rawKey, sr.cfg.PayloadBytes, conc, sr.cfg.RawDuration)
	if err != nil {
		return 0, err
	}
	st, err := sr.r.receiverStats(ctx)
	if err != nil {
		return 0, err
	}
	sr.badSigs += st.BadSignatures
	if st.FirstBad != "" && sr.firstBadSig == "" {
		sr.firstBadSig = st.FirstBad
	}
	return rate, sr.reset(ctx)
}

// reset forgets the receiver's counts.
func (sr *scenarioRun) reset(ctx context.Context) error {
	return sr.r.receiverCall(ctx, "POST", "/_reset", nil, nil)
}

// phaseResult is what a phase measured.
type phaseResult struct {
	pubTime time.Duration  // time spent publishing
	acked   int64          // events acknowledged
	st      *receiverStats // the receiver's stats at the end
	tot     endpointStats  // the phase's endpoints' totals
}

// pubRate returns the events acknowledged per second of publishing.
func (p phaseResult) pubRate() float64 {
	if p.pubTime <= 0 {
		return 0
	}
	return float64(p.acked) / p.pubTime.Seconds()
}

// phase publishes with publish, then, if perEvent > 0, waits until the named
// endpoints got perEvent deliveries per acknowledged event, showing progress
// throughout. It returns an error if hookd exited or ctx ended; the result is
// valid then too.
func (sr *scenarioRun) phase(ctx context.Context, label string, s *hookdSet, pub *publisher, names []string, perEvent int, publish func(context.Context)) (phaseResult, error) {
	var want atomic.Int64
	want.Store(-1) // not known until publishing ends
	stop := sr.watch(ctx, label, s, pub, names, &want)
	defer stop()
	start := time.Now()
	publish(ctx)
	res := phaseResult{pubTime: time.Since(start), acked: pub.acked.Load()}
	sr.pubErrors += pub.failed.Load()
	if e := pub.firstError(); e != "" && sr.firstPubErr == "" {
		sr.firstPubErr = e
	}
	if err := ctx.Err(); err != nil {
		sr.incomplete("%s: published %d events before the end", label, res.acked)
		return res, err
	}
	if perEvent == 0 {
		return res, nil
	}
	want.Store(res.acked * int64(perEvent))
	var err error
	res.st, res.tot, err = sr.account(ctx, label, s, names, want.Load())
	return res, err
}

// await waits (showing progress) until the named endpoints got want unique
// deliveries; see account.
func (sr *scenarioRun) await(ctx context.Context, label string, s *hookdSet, names []string, want int64) (*receiverStats, endpointStats, error) {
	var w atomic.Int64
	w.Store(want)
	stop := sr.watch(ctx, label, s, nil, names, &w)
	defer stop()
	return sr.account(ctx, label, s, names, want)
}

// account waits until the named endpoints got want unique deliveries and adds
// them to the run's totals. It returns an error if hookd exited or ctx ended,
// with the stats at that moment.
func (sr *scenarioRun) account(ctx context.Context, label string, s *hookdSet, names []string, want int64) (*receiverStats, endpointStats, error) {
	st, tot, err := sr.waitFor(ctx, s, names, want)
	sr.expected += want
	sr.delivered += tot.Unique
	sr.requests += tot.Requests
	if st != nil {
		sr.badSigs += st.BadSignatures
		if st.FirstBad != "" && sr.firstBadSig == "" {
			sr.firstBadSig = st.FirstBad
		}
	}
	if err != nil {
		sr.incomplete("%s: %d of %d deliveries arrived", label, tot.Unique, want)
	}
	if st == nil {
		st = &receiverStats{}
	}
	return st, tot, err
}

// waitFor polls the receiver until the named endpoints got want unique
// deliveries, a process of s exits, or ctx ends.
func (sr *scenarioRun) waitFor(ctx context.Context, s *hookdSet, names []string, want int64) (*receiverStats, endpointStats, error) {
	var last *receiverStats
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		if st, err := sr.r.receiverStats(ctx); err == nil {
			last = st
			if tot := st.sum(names); tot.Unique >= want {
				return st, tot, nil
			}
		}
		for _, p := range s.procs() {
			select {
			case <-p.exited:
				return last, sumOf(last, names), fmt.Errorf("%s exited: %v%s", p.name, p.waitErr, logTail(p.logPath))
			default:
			}
		}
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if st, err := sr.r.receiverStats(fctx); err == nil {
				last = st
			}
			return last, sumOf(last, names), ctx.Err()
		case <-t.C:
		}
	}
}

func sumOf(st *receiverStats, names []string) endpointStats {
	if st == nil {
		return endpointStats{}
	}
	return st.sum(names)
}

// watch prints a progress line every second until the returned func is
// called: events published (if pub is not nil), deliveries to the named
// endpoints (of want, once it is not negative), their rates, and hookd's RSS
// (of all its processes).
func (sr *scenarioRun) watch(ctx context.Context, label string, s *hookdSet, pub *publisher, names []string, want *atomic.Int64) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		start := time.Now()
		lastT, lastPub, lastDel := start, int64(0), int64(-1)
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case now := <-t.C:
				dt := now.Sub(lastT).Seconds()
				line := fmt.Sprintf("%s/%s %3.0fs:", sr.name, label, now.Sub(start).Seconds())
				if pub != nil {
					n := pub.acked.Load()
					if want.Load() < 0 {
						line += fmt.Sprintf(" published %s (%s/s)", thousands(n), thousands(int64(float64(n-lastPub)/dt)))
					} else {
						line += fmt.Sprintf(" published %s,", thousands(n))
					}
					lastPub = n
				}
				sctx, cancel := context.WithTimeout(ctx, time.Second)
				st, err := sr.r.receiverStats(sctx)
				cancel()
				if err == nil {
					d := st.sum(names).Unique
					of := ""
					if w := want.Load(); w >= 0 {
						of = " of " + thousands(w)
					}
					rate := ""
					if lastDel >= 0 {
						rate = fmt.Sprintf(" (%s/s)", thousands(int64(float64(d-lastDel)/dt)))
					}
					line += fmt.Sprintf(" delivered %s%s%s", thousands(d), of, rate)
					lastDel = d
				}
				if rss := s.curRSS.Load(); rss > 0 {
					line += fmt.Sprintf(", hookd RSS %d MiB", rss>>20)
				}
				lastT = now
				sr.r.logf("%s", line)
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// e2eFigures adds the end-to-end latency quantiles.
func (sr *scenarioRun) e2eFigures(st *receiverStats, targets bool) {
	l := st.Latency
	sr.add("e2e_p50_ms", "publish→receive latency p50", "ms", l.P50, when(targets, atMost(5, "at 1,000 events/s")))
	sr.add("e2e_p90_ms", "publish→receive latency p90", "ms", l.P90, nil)
	sr.add("e2e_p99_ms", "publish→receive latency p99", "ms", l.P99, when(targets, atMost(25, "at 1,000 events/s")))
	sr.add("e2e_max_ms", "publish→receive latency max", "ms", l.Max, nil)
}

// vsRaw measures the raw loopback capacity again, now that the phase is over,
// and adds the ratio of a delivery rate to the mean of that and the first
// measurement: the machine's capacity drifts within a run (by a fifth or more
// between runs of the same hour here), and a measurement on one side of the
// phase only would move the ratio with it. If the second measurement fails,
// the ratio uses the first.
func (sr *scenarioRun) vsRaw(ctx context.Context, rate float64, t *Target) {
	if sr.raw <= 0 {
		return
	}
	raw := sr.raw
	after, err := sr.rawRate(ctx, sr.rawConc)
	if err == nil && after <= 0 {
		err = errors.New("no request completed")
	}
	if err != nil {
		sr.r.logf("%s: measuring the raw loopback capacity again: %v; the ratio uses the first measurement", sr.name, err)
	} else {
		sr.add("raw_rate_after", fmt.Sprintf("raw loopback capacity after the phase (%d concurrent)", sr.rawConc), "/s", after, nil)
		raw = (raw + after) / 2
	}
	sr.add("delivery_vs_raw", "delivery rate / raw loopback capacity (mean of both)", "x", rate/raw, t)
}

// steady publishes single events at a fixed rate to one endpoint.
func (sr *scenarioRun) steady(ctx context.Context) error {
	if err := sr.measureRaw(ctx, 1); err != nil {
		return err
	}
	s, err := sr.newSet(ctx, "", "all")
	if err != nil {
		return err
	}
	org, names, err := sr.setup(ctx, s, 1)
	if err != nil {
		return err
	}
	if _, err := sr.warmUp(ctx, s, org, names, 1, sr.cfg.Rate, sr.cfg.Duration); err != nil {
		return err
	}
	if err := sr.reset(ctx); err != nil {
		return err
	}
	pub := newPublisher(org, sr.cfg.PayloadBytes)
	prof := sr.profileCPU(ctx, s, sr.cfg.Duration, "cpu")
	res, err := sr.phase(ctx, "publish", s, pub, names, 1, func(ctx context.Context) { pub.paced(ctx, sr.cfg.Rate, sr.cfg.Duration) })
	prof()
	sr.add("publish_rate", fmt.Sprintf("publish rate (paced at %d/s)", sr.cfg.Rate), "/s", res.pubRate(), nil)
	sr.add("publish_p50_ms", "publish latency p50", "ms", ms(pub.lat.Quantile(0.5)), nil)
	sr.add("publish_p99_ms", "publish latency p99", "ms", ms(pub.lat.Quantile(0.99)), nil)
	if res.st != nil {
		sr.e2eFigures(res.st, sr.cfg.Rate == 1000)
		sr.add("delivery_rate", "delivery rate", "/s", res.tot.rate(), nil)
		sr.vsRaw(ctx, res.tot.rate(), nil)
	}
	return err
}

// warmUp publishes single events at rate for a second (at most d) and, if
// perEvent > 0, waits for their deliveries, so that what follows is measured
// on open connections and a warm hookd. It returns the events acknowledged.
func (sr *scenarioRun) warmUp(ctx context.Context, s *hookdSet, org *api, names []string, perEvent, rate int, d time.Duration) (int64, error) {
	pub := newPublisher(org, sr.cfg.PayloadBytes)
	res, err := sr.phase(ctx, "warm-up", s, pub, names, perEvent, func(ctx context.Context) { pub.paced(ctx, rate, min(d, time.Second)) })
	return res.acked, err
}

// burst publishes as fast as hookd acknowledges: single events, then batches.
func (sr *scenarioRun) burst(ctx context.Context) error {
	e := sr.cfg.Endpoints
	if err := sr.measureRaw(ctx, e); err != nil {
		return err
	}
	s, err := sr.newSet(ctx, "", "all")
	if err != nil {
		return err
	}
	org, names, err := sr.setup(ctx, s, e)
	if err != nil {
		return err
	}
	pub := newPublisher(org, sr.cfg.PayloadBytes)
	prof := sr.profileCPU(ctx, s, time.Duration(sr.cfg.Events)*time.Second/5000, "single-cpu")
	res, err := sr.phase(ctx, "single", s, pub, names, e, func(ctx context.Context) {
		pub.closedLoop(ctx, sr.cfg.Events, sr.cfg.Clients, 1)
	})
	prof()
	sr.add("publish_rate", fmt.Sprintf("publish rate (single events, %d clients)", sr.cfg.Clients), "/s", res.pubRate(),
		when(sr.cfg.Clients == 64, atLeast(15000, "")))
	sr.add("publish_p50_ms", "publish latency p50 (single events)", "ms", ms(pub.lat.Quantile(0.5)), nil)
	sr.add("publish_p99_ms", "publish latency p99 (single events)", "ms", ms(pub.lat.Quantile(0.99)), nil)
	if err != nil {
		return err
	}
	sr.add("single_delivery_rate", "delivery rate while publishing single events", "/s", res.tot.rate(), nil)
	if err := sr.reset(ctx); err != nil {
		return err
	}
	pub = newPublisher(org, sr.cfg.PayloadBytes)
	prof = sr.profileCPU(ctx, s, estimate(sr.cfg.Events*e), "cpu")
	res, err = sr.phase(ctx, "batch", s, pub, names, e, func(ctx context.Context) {
		pub.closedLoop(ctx, sr.cfg.Events, 4, sr.cfg.Batch)
	})
	prof()
	sr.add("batch_publish_rate", fmt.Sprintf("publish rate (batches of %d, 4 clients)", sr.cfg.Batch), "/s", res.pubRate(),
		when(sr.cfg.Batch == 1000, atLeast(100000, "")))
	if res.st != nil {
		sr.add("delivery_rate", "delivery rate (after batch publishes)", "/s", res.tot.rate(), sr.deliveryTarget())
		sr.vsRaw(ctx, res.tot.rate(), atLeast(0.4, ""))
		sr.add("e2e_p50_ms", "publish→receive latency p50 (batches)", "ms", res.st.Latency.P50, nil)
		sr.add("e2e_p99_ms", "publish→receive latency p99 (batches)", "ms", res.st.Latency.P99, nil)
	}
	return err
}

// estimate guesses how long delivering n takes, for the length of a CPU
// profile.
func estimate(n int) time.Duration {
	return time.Duration(n) * time.Second / 10000
}

// fanout publishes events in batches to many endpoints.
func (sr *scenarioRun) fanout(ctx context.Context) error {
	e := sr.cfg.FanoutEndpoints
	if err := sr.measureRaw(ctx, e); err != nil {
		return err
	}
	s, err := sr.newSet(ctx, "", "all")
	if err != nil {
		return err
	}
	org, names, err := sr.setup(ctx, s, e)
	if err != nil {
		return err
	}
	pub := newPublisher(org, sr.cfg.PayloadBytes)
	batch := min(sr.cfg.Batch, 100)
	prof := sr.profileCPU(ctx, s, estimate(sr.cfg.FanoutEvents*e), "cpu")
	res, err := sr.phase(ctx, "publish", s, pub, names, e, func(ctx context.Context) {
		pub.closedLoop(ctx, sr.cfg.FanoutEvents, 4, batch)
	})
	prof()
	sr.add("publish_rate", fmt.Sprintf("publish rate (batches of %d, %d deliveries each event)", batch, e), "/s", res.pubRate(), nil)
	if res.st != nil {
		sr.add("delivery_rate", fmt.Sprintf("delivery rate (1 event → %d endpoints)", e), "/s", res.tot.rate(), sr.deliveryTarget())
		sr.vsRaw(ctx, res.tot.rate(), nil)
		sr.add("e2e_p50_ms", "publish→receive latency p50", "ms", res.st.Latency.P50, nil)
		sr.add("e2e_p99_ms", "publish→receive latency p99", "ms", res.st.Latency.P99, nil)
	}
	return err
}

// badReceiver measures healthy endpoints' delivery rate without, then with,
// an endpoint that hangs or fails.
func (sr *scenarioRun) badReceiver(ctx context.Context) error {
	if err := sr.measureRaw(ctx, badHealthy); err != nil {
		return err
	}
	s, err := sr.newSet(ctx, "", "all")
	if err != nil {
		return err
	}
	org, names, err := sr.setup(ctx, s, badHealthy)
	if err != nil {
		return err
	}
	publish := func(pub *publisher) func(context.Context) {
		return func(ctx context.Context) { pub.closedLoop(ctx, sr.cfg.BadEvents, 4, sr.cfg.Batch) }
	}
	pub := newPublisher(org, sr.cfg.PayloadBytes)
	alone, err := sr.phase(ctx, "healthy-only", s, pub, names, badHealthy, publish(pub))
	if err != nil {
		return err
	}
	rateAlone := alone.tot.rate()
	sr.add("healthy_rate_alone", fmt.Sprintf("healthy endpoints' delivery rate (%d endpoints alone)", badHealthy), "/s", rateAlone, nil)
	sr.vsRaw(ctx, rateAlone, nil)
	if err := sr.reset(ctx); err != nil {
		return err
	}
	bad, err := sr.addEndpoints(ctx, org, sr.cfg.Bad, "bad", 1)
	if err != nil {
		return err
	}
	pub = newPublisher(org, sr.cfg.PayloadBytes)
	prof := sr.profileCPU(ctx, s, estimate(sr.cfg.BadEvents*badHealthy), "cpu")
	with, err := sr.phase(ctx, "with-"+sr.cfg.Bad, s, pub, names, badHealthy, publish(pub))
	prof()
	if with.st != nil {
		rateWith := with.tot.rate()
		sr.add("healthy_rate_with_bad", fmt.Sprintf("healthy endpoints' delivery rate (beside one that %ss)", sr.cfg.Bad), "/s", rateWith, nil)
		if rateAlone > 0 {
			sr.add("healthy_ratio", "healthy rate with / without the bad endpoint", "x", rateWith/rateAlone, atLeast(0.9, ""))
		}
		sr.add("bad_attempts", "attempts to the bad endpoint meanwhile", "", float64(with.st.sum(bad).Requests), nil)
	}
	return err
}

// backlog compares draining a large backlog with draining a small one, and
// publish latency on an empty store with publish latency beside the backlog.
func (sr *scenarioRun) backlog(ctx context.Context) error {
	if sr.cfg.Target != "" {
		return errors.New("backlog restarts hookd, so it cannot run against --target")
	}
	if err := sr.measureRaw(ctx, backlogEndpoints); err != nil {
		return err
	}
	base, err := sr.backlogPass(ctx, "baseline", sr.cfg.BacklogBaseline)
	if err != nil {
		return err
	}
	full, err := sr.backlogPass(ctx, "backlog", sr.cfg.Backlog)
	sr.add("baseline_drain_rate", fmt.Sprintf("drain rate, %s pending (baseline)", thousands(base.pending)), "/s", base.drainRate, nil)
	sr.add("drain_rate", fmt.Sprintf("drain rate, %s pending", thousands(full.pending)), "/s", full.drainRate, nil)
	if base.drainRate > 0 && full.drainRate > 0 {
		sr.add("drain_ratio", "drain rate: backlog / baseline", "x", full.drainRate/base.drainRate, atLeast(0.8, ""))
	}
	sr.vsRaw(ctx, full.drainRate, nil)
	sr.add("fill_rate", "deliveries stored per second while filling (batch route)", "/s", full.fillRate, nil)
	sr.add("publish_p99_empty_ms", "publish latency p99 at 1,000/s, empty store", "ms", full.p99Empty, nil)
	sr.add("publish_p99_backlog_ms", fmt.Sprintf("publish latency p99 at 1,000/s, %s pending", thousands(full.pendingAtProbe)), "ms", full.p99Full, nil)
	if full.p99Empty > 0 && full.p99Full > 0 {
		sr.add("publish_p99_ratio", "publish latency p99: backlog / empty", "x", full.p99Full/full.p99Empty, atMost(2, ""))
	}
	return err
}

// passResult is what one pass of backlog measured.
type passResult struct {
	pending, pendingAtProbe int64
	fillRate, drainRate     float64
	p99Empty, p99Full       float64 // ms
}

// backlogPass runs one pass of backlog on a fresh hookd: warm-up, latency
// probe, filling with deliveries pending deliveries (hookd of role api), probe
// again, then restart with role all and drain.
func (sr *scenarioRun) backlogPass(ctx context.Context, label string, deliveries int) (passResult, error) {
	var pr passResult
	ctx, cancel := context.WithTimeout(ctx, sr.cfg.Timeout)
	defer cancel()
	s, err := sr.newSet(ctx, label, "api")
	if err != nil {
		return pr, err
	}
	defer sr.closeSet(ctx, s)
	org, err := s.adminAPI().setupOrg(ctx, "bench "+sr.name+" "+sr.id+" "+label)
	if err != nil {
		return pr, err
	}
	names, err := sr.addEndpoints(ctx, org, "ok", label, backlogEndpoints)
	if err != nil {
		return pr, err
	}
	probe := func(phase string) (*publisher, error) {
		flushDisks()
		pub := newPublisher(org, sr.cfg.PayloadBytes)
		_, err := sr.phase(ctx, label+"/"+phase, s, pub, names, 0, func(ctx context.Context) { pub.paced(ctx, 1000, sr.cfg.BacklogProbe) })
		return pub, err
	}
	warm, err := sr.warmUp(ctx, s, org, names, 0, 1000, sr.cfg.BacklogProbe)
	if err != nil {
		return pr, err
	}
	empty, err := probe("probe-empty")
	if err != nil {
		return pr, err
	}
	pr.p99Empty = ms(empty.lat.Quantile(0.99))
	fill := newPublisher(org, sr.cfg.PayloadBytes)
	fr, err := sr.phase(ctx, label+"/fill", s, fill, names, 0, func(ctx context.Context) {
		fill.closedLoop(ctx, max(deliveries/backlogEndpoints, 1), 4, sr.cfg.Batch)
	})
	pr.fillRate = fr.pubRate() * backlogEndpoints
	if err != nil {
		return pr, err
	}
	pr.pendingAtProbe = (warm + empty.acked.Load() + fill.acked.Load()) * backlogEndpoints
	full, err := probe("probe-full")
	if err != nil {
		return pr, err
	}
	pr.p99Full = ms(full.lat.Quantile(0.99))
	pr.pending = pr.pendingAtProbe + full.acked.Load()*backlogEndpoints
	sr.r.logf("%s/%s: %s deliveries pending; restarting hookd with --role all to drain them", sr.name, label, thousands(pr.pending))
	if err := s.stop(); err != nil {
		return pr, err
	}
	if err := sr.reset(ctx); err != nil {
		return pr, err
	}
	flushDisks()
	if err := s.start(ctx, "all"); err != nil {
		return pr, err
	}
	var prof func()
	if label == "backlog" {
		prof = sr.profileCPU(ctx, s, estimate(int(pr.pending)), "cpu")
	}
	_, tot, err := sr.await(ctx, label+"/drain", s, names, pr.pending)
	if prof != nil {
		prof()
	}
	pr.drainRate = tot.rate()
	return pr, err
}
