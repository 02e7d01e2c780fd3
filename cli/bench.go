package cli

import (
	"time"

	"github.com/hookd/hookd/bench"
)

// benchCmds are the load tool's subcommands.
type benchCmds struct {
	Bench         benchCmd         `cmd:"" help:"Measure hookd under load: start it (or target a running one) and a receiver, publish events in fixed scenarios, and print a table and a JSON summary."`
	BenchReceiver benchReceiverCmd `cmd:"" hidden:"" help:"The webhook receiver that hookd bench runs in a process of its own."`
}

type benchCmd struct {
	Scenario []string `default:"all" sep:"," help:"Scenarios to run, comma-separated: steady, burst, fanout, backlog, bad-receiver, or all."`
	Runs     int      `default:"1" help:"Run each scenario this many times (a fresh hookd each time) and report the medians."`

	HookdBin    string   `name:"hookd-bin" type:"path" help:"hookd executable to measure (it also runs the receiver). Default: this one."`
	ServeArg    []string `name:"serve-arg" sep:"none" help:"Extra argument for every 'hookd serve' the bench starts (repeat for several, e.g. --serve-arg=--concurrency=512)."`
	Target      string   `help:"URL of a running hookd to measure instead of starting one per scenario. It must run with --dev, on this machine. Needs --admin-key; backlog cannot run."`
	AdminKey    string   `help:"Admin key of --target."`
	PID         int      `name:"pid" help:"Process id of --target, to report its memory and CPU time."`
	DatabaseURL string   `name:"database-url" help:"Run hookd on this PostgreSQL database (a new schema per scenario, dropped at its end) instead of the embedded store."`
	Workers     int      `default:"2" help:"With --database-url: instances of role worker beside one of role api; 0 runs one instance of role all."`

	Rate            int           `default:"1000" help:"steady: events published per second."`
	Duration        time.Duration `default:"10s" help:"steady: how long to publish."`
	Events          int           `default:"100000" help:"burst: events published in each phase (single events, then batches)."`
	Clients         int           `default:"64" help:"burst: concurrent clients publishing single events."`
	Batch           int           `default:"1000" help:"Events per batch on the batch route (at most 1000)."`
	Endpoints       int           `default:"4" help:"burst: endpoints every event goes to."`
	FanoutEvents    int           `default:"1000" help:"fanout: events published."`
	FanoutEndpoints int           `default:"100" help:"fanout: endpoints every event goes to."`
	Backlog         int           `default:"1000000" help:"backlog: pending deliveries (on 10 endpoints) to build up, then drain."`
	BacklogBaseline int           `default:"100000" help:"backlog: the small backlog to compare with."`
	BacklogProbe    time.Duration `default:"3s" help:"backlog: how long publish latency is measured (at 1,000 events/s) before and after building the backlog."`
	BadEvents       int           `default:"25000" help:"bad-receiver: events published in each phase (to 4 healthy endpoints)."`
	Bad             string        `default:"hang" enum:"hang,fail" help:"bad-receiver: what the bad endpoint does: hang (until the attempt times out) or fail (500)."`
	PayloadBytes    int           `default:"256" help:"Size of each event's data in bytes."`
	MaxInFlight     int           `help:"max_in_flight of every endpoint. Default: hookd's."`
	RawDuration     time.Duration `default:"3s" help:"How long the raw loopback HTTP capacity is measured at the start of each scenario."`
	Timeout         time.Duration `default:"5m" help:"Time limit of each scenario run (of each backlog pass); a run that reaches it is reported as incomplete."`
	Verify          bool          `help:"Make the receiver verify every delivery's signature (and report bad ones)."`
	JSON            string        `name:"json" type:"path" help:"Also write the JSON summary to this file."`
	Profile         string        `type:"path" help:"Write CPU and heap profiles of hookd for each scenario to this directory (hookd runs with --pprof-addr)."`
}

// Run runs the bench until it finishes or rc.ctx is cancelled.
func (c *benchCmd) Run(rc runContext) error {
	_, err := bench.Run(rc.ctx, bench.Config{
		Scenarios:       c.Scenario,
		Runs:            c.Runs,
		HookdBinary:     c.HookdBin,
		ServeArgs:       c.ServeArg,
		Target:          c.Target,
		AdminKey:        c.AdminKey,
		PID:             c.PID,
		DatabaseURL:     c.DatabaseURL,
		Workers:         c.Workers,
		Rate:            c.Rate,
		Duration:        c.Duration,
		Events:          c.Events,
		Clients:         c.Clients,
		Batch:           c.Batch,
		Endpoints:       c.Endpoints,
		FanoutEvents:    c.FanoutEvents,
		FanoutEndpoints: c.FanoutEndpoints,
		Backlog:         c.Backlog,
		BacklogBaseline: c.BacklogBaseline,
		BacklogProbe:    c.BacklogProbe,
		BadEvents:       c.BadEvents,
		Bad:             c.Bad,
		PayloadBytes:    c.PayloadBytes,
		MaxInFlight:     c.MaxInFlight,
		RawDuration:     c.RawDuration,
		Timeout:         c.Timeout,
		Verify:          c.Verify,
		JSONFile:        c.JSON,
		ProfileDir:      c.Profile,
	}, rc.stdout, rc.stderr)
	return err
}

type benchReceiverCmd struct {
	Addr   string `default:"127.0.0.1:0" help:"Address to listen on."`
	Verify bool   `help:"Verify the signature of every delivery to an endpoint whose secret was given."`
}

// Run serves the receiver until rc.ctx is cancelled.
func (c *benchReceiverCmd) Run(rc runContext) error {
	return bench.RunReceiver(rc.ctx, bench.ReceiverConfig{Addr: c.Addr, Verify: c.Verify}, rc.stdout)
}
