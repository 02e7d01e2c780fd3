// Package bench is hookd's load tool: it runs hookd and a webhook receiver as separate processes and measures publishing, delivery, latency and resource use in fixed scenarios.
package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hookd/hookd/signature"
)

// Scenario names, in the order "all" runs them.
const (
	Steady      = "steady"
	Burst       = "burst"
	Fanout      = "fanout"
	Backlog     = "backlog"
	BadReceiver = "bad-receiver"
)

// Scenarios lists every scenario in the order "all" runs them.
var Scenarios = []string{Steady, Burst, Fanout, Backlog, BadReceiver}

// Config configures Run. The zero value of every field means its documented
// default.
type Config struct {
	// Scenarios to run, in this order; "all" stands for every one.
	// Default all.
	Scenarios []string
	// Runs repeats each scenario, with a fresh hookd each time; the report
	// gives each figure's median. Default 1.
	Runs int

	// HookdBinary is the hookd executable to start, for both hookd and the
	// receiver ("hookd bench-receiver"). Default: this executable.
	HookdBinary string
	// ServeArgs are added to every "hookd serve" command line.
	ServeArgs []string
	// Target is the URL of a running hookd to measure instead of starting one
	// per scenario; it needs AdminKey and must allow http and loopback
	// targets (--dev). The backlog scenario cannot run against a target.
	Target string
	// AdminKey is Target's admin key.
	AdminKey string
	// PID is Target's process id, for its memory and CPU time. Default: not
	// reported.
	PID int
	// DatabaseURL makes every hookd the bench starts use this PostgreSQL
	// database, each scenario in a schema of its own that is dropped at its
	// end.
	DatabaseURL string
	// Workers is, with DatabaseURL, how many hookd instances of role worker
	// run beside one of role api (which the bench publishes to). 0 runs one
	// instance of role all.
	Workers int

	// Rate is steady's publish rate, events per second. Default 1,000.
	Rate int
	// Duration is how long steady publishes. Default 10s.
	Duration time.Duration
	// Events is how many events burst publishes in each of its phases.
	// Default 100,000.
	Events int
	// Clients is how many goroutines publish single events in burst.
	// Default 64.
	Clients int
	// Batch is the batch size of the batch route (at most 1,000).
	// Default 1,000.
	Batch int
	// Endpoints is burst's number of endpoints. Default 4.
	Endpoints int
	// FanoutEvents is how many events fanout publishes. Default 1,000.
	FanoutEvents int
	// FanoutEndpoints is fanout's number of endpoints. Default 100.
	FanoutEndpoints int
	// Backlog is how many pending deliveries backlog builds up before it
	// drains them (on 10 endpoints). Default 1,000,000.
	Backlog int
	// BacklogBaseline is the small backlog it compares with. Default 100,000.
	BacklogBaseline int
	// BacklogProbe is how long backlog measures publish latency (at 1,000
	// events/s) before and after building the backlog. Default 3s.
	BacklogProbe time.Duration
	// BadEvents is how many events bad-receiver publishes in each phase (to
	// 4 healthy endpoints). Default 25,000.
	BadEvents int
	// Bad is how bad-receiver's bad endpoint misbehaves: "hang" (answers
	// nothing until the attempt times out) or "fail" (500). Default hang.
	Bad string
	// PayloadBytes is the size of each event's data. Default 256.
	PayloadBytes int
	// MaxInFlight is every endpoint's max_in_flight. Default: hookd's.
	MaxInFlight int
	// RawDuration is how long the raw loopback capacity is measured at the
	// start of each scenario. Default 3s.
	RawDuration time.Duration
	// Timeout bounds each run of a scenario (each of backlog's two passes);
	// a run that reaches it is reported as incomplete. Default 5m.
	Timeout time.Duration
	// Verify makes the receiver check every delivery's signature.
	Verify bool
	// JSONFile, if set, receives the JSON summary too.
	JSONFile string
	// ProfileDir, if set, receives CPU and heap profiles of hookd for each
	// scenario (hookd runs with --pprof-addr).
	ProfileDir string
}

// withDefaults returns c with defaults filled in, or an error naming the
// first invalid field.
func (c Config) withDefaults() (Config, error) {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Runs, 1)
	def(&c.Rate, 1000)
	defDur(&c.Duration, 10*time.Second)
	def(&c.Events, 100_000)
	def(&c.Clients, 64)
	def(&c.Batch, 1000)
	def(&c.Endpoints, 4)
	def(&c.FanoutEvents, 1000)
	def(&c.FanoutEndpoints, 100)
	def(&c.Backlog, 1_000_000)
	def(&c.BacklogBaseline, 100_000)
	defDur(&c.BacklogProbe, 3*time.Second)
	def(&c.BadEvents, 25_000)
	def(&c.PayloadBytes, 256)
	defDur(&c.RawDuration, 3*time.Second)
	defDur(&c.Timeout, 5*time.Minute)
	if c.Bad == "" {
		c.Bad = "hang"
	}
	if len(c.Scenarios) == 0 {
		c.Scenarios = []string{"all"}
	}
	var names []string
	for _, s := range c.Scenarios {
		s = strings.TrimSpace(s)
		switch {
		case s == "all":
			names = append(names, Scenarios...)
		case slices.Contains(Scenarios, s):
			names = append(names, s)
		default:
			return c, fmt.Errorf("scenario %q is unknown (want all or some of %s)", s, strings.Join(Scenarios, ","))
		}
	}
	c.Scenarios = names
	for _, f := range []struct {
		name string
		v    int
	}{{"runs", c.Runs}, {"rate", c.Rate}, {"events", c.Events}, {"clients", c.Clients}, {"batch", c.Batch},
		{"endpoints", c.Endpoints}, {"fanout-events", c.FanoutEvents}, {"fanout-endpoints", c.FanoutEndpoints},
		{"backlog", c.Backlog}, {"backlog-baseline", c.BacklogBaseline}, {"bad-events", c.BadEvents},
		{"payload-bytes", c.PayloadBytes}} {
		if f.v < 1 {
			return c, fmt.Errorf("%s must be positive", f.name)
		}
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{{"duration", c.Duration}, {"backlog-probe", c.BacklogProbe}, {"raw-duration", c.RawDuration}, {"timeout", c.Timeout}} {
		if f.v < 0 {
			return c, fmt.Errorf("%s must be positive", f.name)
		}
	}
	switch {
	case c.Batch > 1000:
		return c, errors.New("batch must be at most 1000 (hookd's batch limit)")
	case c.Bad != "hang" && c.Bad != "fail":
		return c, fmt.Errorf("bad must be hang or fail, not %q", c.Bad)
	case c.MaxInFlight < 0:
		return c, errors.New("max-in-flight must not be negative")
	case c.Workers < 0:
		return c, errors.New("workers must not be negative")
	case c.Target != "" && c.AdminKey == "":
		return c, errors.New("target needs admin-key")
	case c.Target != "" && c.DatabaseURL != "":
		return c, errors.New("target and database-url exclude each other: the bench starts hookd only without target")
	case c.PID != 0 && c.Target == "":
		return c, errors.New("pid is only for target (the bench knows the processes it starts)")
	}
	c.Target = strings.TrimRight(c.Target, "/")
	if c.HookdBinary == "" {
		exe, err := os.Executable()
		if err != nil {
			return c, fmt.Errorf("find the hookd executable: %w", err)
		}
		c.HookdBinary = exe
	}
	return c, nil
}

// hookdDefaults are hookd serve's defaults that size the raw measurement.
const (
	hookdConcurrency = 256
	hookdMaxInFlight = 32
)

// runner runs the scenarios of one Run.
type runner struct {
	cfg    Config
	out    io.Writer
	logMu  sync.Mutex
	log    io.Writer
	hc     *http.Client // the API and the receiver's control routes
	recv   *proc
	rawKey string // the secret signing the raw measurement's requests
	seq    int    // numbers the scenario runs
}

// logf writes a progress line to stderr.
func (r *runner) logf(format string, args ...any) {
	r.logMu.Lock()
	defer r.logMu.Unlock()
	fmt.Fprintf(r.log, "bench: "+format+"\n", args...)
}

// Run runs cfg's scenarios, writes progress to stderr and the report (a
// table, then the JSON summary) to stdout, and returns the summary. A scenario
// that fails is reported with its error and the others still run; Run then
// returns an error too, as it does for an invalid cfg or when ctx ends.
func Run(ctx context.Context, cfg Config, stdout, stderr io.Writer) (*Summary, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if cfg.ProfileDir != "" {
		if err := os.MkdirAll(cfg.ProfileDir, 0o755); err != nil {
			return nil, fmt.Errorf("create the profile directory: %w", err)
		}
	}
	r := &runner{cfg: cfg, out: stdout, log: stderr, hc: newClient(512), rawKey: signature.NewSecret()}
	defer r.hc.CloseIdleConnections()
	dir, err := os.MkdirTemp("", "hookd-bench-")
	if err != nil {
		return nil, fmt.Errorf("create a temporary directory: %w", err)
	}
	defer os.RemoveAll(dir)
	if err := r.startReceiver(ctx, dir); err != nil {
		return nil, err
	}
	defer r.recv.stop(10 * time.Second)

	sum := &Summary{Timestamp: time.Now().UTC(), Machine: machineInfo(), Settings: settingsOf(cfg)}
	if cfg.DatabaseURL != "" {
		if sum.Hookd.Postgres, err = postgresInfo(ctx, cfg.DatabaseURL); err != nil {
			return nil, err
		}
		if sum.Hookd.Postgres.Autovacuum != "on" {
			r.logf("warning: PostgreSQL runs with autovacuum off; delivery will slow down as dead rows pile up")
		}
	}
	var failed []string
	for _, name := range cfg.Scenarios {
		res := ScenarioResult{Name: name}
		if name == Backlog && cfg.Target != "" {
			res.Skipped = "it restarts hookd, so it cannot run against a target"
			r.logf("%s: skipped: %s", name, res.Skipped)
			sum.Scenarios = append(sum.Scenarios, res)
			continue
		}
		for i := range cfg.Runs {
			if ctx.Err() != nil {
				break
			}
			run := r.runScenario(ctx, dir, name, i+1)
			if run.Error != "" {
				r.logf("%s: %s", name, run.Error)
			}
			if sum.Hookd.Version == "" {
				sum.Hookd.Version = run.hookdVersion
			}
			res.Runs = append(res.Runs, run)
		}
		res.summarize()
		if res.Error != "" {
			failed = append(failed, name)
		}
		sum.Scenarios = append(sum.Scenarios, res)
	}
	sum.Hookd.Store, sum.Hookd.Target, sum.Hookd.Workers = "sqlite", cfg.Target, 0
	if cfg.DatabaseURL != "" {
		sum.Hookd.Store, sum.Hookd.Workers = "postgres", cfg.Workers
	}
	if cfg.Target != "" {
		sum.Hookd.Store = "unknown (target)"
	}
	if err := sum.write(stdout, cfg.JSONFile); err != nil {
		return sum, err
	}
	switch {
	case ctx.Err() != nil:
		return sum, ctx.Err()
	case len(failed) > 0:
		return sum, fmt.Errorf("scenarios failed: %s", strings.Join(failed, ", "))
	}
	return sum, nil
}

// startReceiver starts "hookd bench-receiver" and tells it the raw
// measurement's secret.
func (r *runner) startReceiver(ctx context.Context, dir string) error {
	args := []string{"bench-receiver", "--addr", "127.0.0.1:0"}
	if r.cfg.Verify {
		args = append(args, "--verify")
	}
	p, err := startProc(ctx, procSpec{
		name: "receiver", bin: r.cfg.HookdBinary, args: args, logPath: dir + "/receiver.log",
		banner: func(p *proc, line string) bool {
			if strings.HasPrefix(line, "http://") {
				p.url = strings.TrimSpace(line)
				return true
			}
			return false
		},
	})
	if err != nil {
		return err
	}
	r.recv = p
	return r.receiverCall(ctx, "POST", "/_secrets", map[string]string{rawEndpoint: r.rawKey}, nil)
}

// receiverCall calls one of the receiver's control routes.
func (r *runner) receiverCall(ctx context.Context, method, path string, body, out any) error {
	a := &api{base: r.recv.url, hc: r.hc}
	if err := a.call(ctx, method, path, body, out); err != nil {
		return fmt.Errorf("receiver %s %s: %w", method, path, err)
	}
	return nil
}

// receiverStats fetches the receiver's counts.
func (r *runner) receiverStats(ctx context.Context) (*receiverStats, error) {
	var s receiverStats
	if err := r.receiverCall(ctx, "GET", "/_stats", nil, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
