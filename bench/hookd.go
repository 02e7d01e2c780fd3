package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// stopGrace is how long a hookd may take to exit after SIGTERM (its default
// --shutdown-timeout is 30s) before it is killed.
const stopGrace = 60 * time.Second

// hookdSet is the hookd under test in one part of a scenario run: the
// processes the bench started on one data dir or database schema (one
// instance, or one of role api and the workers), or a running target.
type hookdSet struct {
	r      *runner
	label  string // "" or a name for profile files, e.g. "baseline"
	dir    string
	dbURL  string                          // with the schema's search_path
	drop   func(ctx context.Context) error // drops the schema
	admin  string
	master string
	url    string // the API's base URL
	ver    string // hookd's version

	mu      sync.Mutex
	live    []*proc
	peakRSS int64   // max VmHWM of the stopped processes
	cpu     float64 // CPU seconds of the stopped processes
	cpu0    float64 // a target's CPU time at the start

	curRSS     atomic.Int64 // sampled total VmRSS of the live processes
	sampledMax atomic.Int64 // the largest sample
	stopSample context.CancelFunc
	sampleDone chan struct{}
}

// newSet prepares and starts the hookd of a scenario run: with role "all"
// (delivering) or "api" (storing only), in a new directory under dir.
func (r *runner) newSet(ctx context.Context, dir, label, role string) (*hookdSet, error) {
	s := &hookdSet{r: r, label: label, admin: r.cfg.AdminKey, sampleDone: make(chan struct{})}
	var sctx context.Context
	sctx, s.stopSample = context.WithCancel(context.Background())
	if r.cfg.Target != "" {
		s.url = r.cfg.Target
		ver, err := s.adminAPI().version(ctx)
		if err != nil {
			return nil, err
		}
		s.ver = ver
		if r.cfg.PID != 0 {
			u, err := readUsage(r.cfg.PID)
			if err != nil {
				return nil, fmt.Errorf("read the usage of process %d (--pid): %w", r.cfg.PID, err)
			}
			s.cpu0 = u.cpu
		}
		go s.sample(sctx)
		return s, nil
	}
	var err error
	if s.dir, err = os.MkdirTemp(dir, "hookd-"); err != nil {
		return nil, fmt.Errorf("create a data directory: %w", err)
	}
	s.admin = randomHex(20) // 40 characters
	s.master = randomHex(32)
	if r.cfg.DatabaseURL != "" {
		if s.dbURL, s.drop, err = createSchema(ctx, r.cfg.DatabaseURL); err != nil {
			return nil, err
		}
	}
	go s.sample(sctx)
	if err := s.start(ctx, role); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// adminAPI returns an API client with the admin key.
func (s *hookdSet) adminAPI() *api { return &api{base: s.url, key: s.admin, hc: s.r.hc} }

// start starts the processes for role: on the embedded store one instance of
// that role; on PostgreSQL one of role api for "api", and for "all" one of
// role all (Workers 0) or one of role api and Workers of role worker.
func (s *hookdSet) start(ctx context.Context, role string) error {
	type inst struct{ name, role string }
	insts := []inst{{"hookd", role}}
	if s.dbURL != "" && role == "all" && s.r.cfg.Workers > 0 {
		insts = []inst{{"api", "api"}}
		for i := range s.r.cfg.Workers {
			insts = append(insts, inst{fmt.Sprintf("worker%d", i+1), "worker"})
		}
	}
	for i, in := range insts {
		dataDir := filepath.Join(s.dir, "data")
		if s.dbURL != "" {
			dataDir = filepath.Join(s.dir, "data-"+in.name)
		}
		// No per-key limit on the management API: the bench creates endpoints
		// and reads the log as fast as it can.
		args := []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dataDir, "--dev", "--api-rate-limit", "0"}
		if in.role != "all" {
			args = append(args, "--role", in.role)
		}
		if s.dbURL != "" {
			args = append(args, "--database-url", s.dbURL)
		}
		if s.r.cfg.ProfileDir != "" {
			args = append(args, "--pprof-addr", "127.0.0.1:0")
		}
		args = append(args, s.r.cfg.ServeArgs...)
		profile := s.r.cfg.ProfileDir != ""
		p, err := startProc(ctx, procSpec{
			name: in.name, bin: s.r.cfg.HookdBinary, args: args,
			env:     []string{"HOOKD_ADMIN_KEY=" + s.admin, "HOOKD_MASTER_KEY=" + s.master},
			logPath: filepath.Join(s.dir, fmt.Sprintf("%s-%d.log", in.name, time.Now().UnixNano())),
			banner: func(p *proc, line string) bool {
				// "hookd <version> listening on http://127.0.0.1:PORT"
				if f := strings.Fields(line); p.url == "" && len(f) >= 5 && f[0] == "hookd" && f[2] == "listening" {
					p.version, p.url = f[1], f[4]
				}
				// "pprof listening on http://ADDR/debug/pprof/"
				if rest, ok := strings.CutPrefix(line, "pprof listening on "); ok {
					p.pprof = strings.TrimSuffix(strings.TrimSpace(rest), "/debug/pprof/")
				}
				return p.url != "" && (!profile || p.pprof != "")
			},
		})
		if err != nil {
			return err
		}
		s.mu.Lock()
		s.live = append(s.live, p)
		s.mu.Unlock()
		if i == 0 {
			s.url, s.ver = p.url, p.version
		}
	}
	return nil
}

// stop stops every live process, recording its peak RSS and CPU time first.
func (s *hookdSet) stop() error {
	s.mu.Lock()
	live := s.live
	s.live = nil
	s.mu.Unlock()
	if len(live) == 0 {
		return nil
	}
	// Hanging deliveries would hold up hookd's shutdown.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	s.r.receiverCall(ctx, "POST", "/_release", nil, nil)
	cancel()
	errs := make([]error, len(live))
	var wg sync.WaitGroup
	for i, p := range live {
		wg.Go(func() { errs[i] = p.stop(stopGrace) })
	}
	wg.Wait()
	s.mu.Lock()
	for _, p := range live {
		s.peakRSS = max(s.peakRSS, p.peakRSS)
		s.cpu += p.cpu
	}
	s.mu.Unlock()
	return errors.Join(errs...)
}

// close stops the processes and the sampler and drops the schema. Calls
// after the first do nothing.
func (s *hookdSet) close() error {
	err := s.stop()
	s.stopSample()
	<-s.sampleDone
	if s.drop != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err = errors.Join(err, s.drop(ctx))
		s.drop = nil
	}
	return err
}

// usage returns the peak RSS in bytes (the largest VmHWM of any process; a
// target's largest sampled VmRSS) and the CPU seconds used (summed over the
// processes; a target's since the set was made). Both are 0 for a target
// without a PID.
func (s *hookdSet) usage() (peak int64, cpu float64) {
	if s.r.cfg.Target != "" {
		if s.r.cfg.PID == 0 {
			return 0, 0
		}
		if u, err := readUsage(s.r.cfg.PID); err == nil {
			cpu = u.cpu - s.cpu0
		}
		return s.sampledMax.Load(), cpu
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	peak, cpu = s.peakRSS, s.cpu
	for _, p := range s.live {
		if u, err := readUsage(p.cmd.Process.Pid); err == nil {
			peak = max(peak, u.peakRSS)
			cpu += u.cpu
		}
	}
	return peak, cpu
}

// sample reads the total VmRSS every 500 ms until ctx ends.
func (s *hookdSet) sample(ctx context.Context) {
	defer close(s.sampleDone)
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		var total int64
		if s.r.cfg.Target != "" {
			if s.r.cfg.PID != 0 {
				u, _ := readUsage(s.r.cfg.PID)
				total = u.rss
			}
		} else {
			s.mu.Lock()
			for _, p := range s.live {
				u, _ := readUsage(p.cmd.Process.Pid)
				total += u.rss
			}
			s.mu.Unlock()
		}
		s.curRSS.Store(total)
		if total > s.sampledMax.Load() {
			s.sampledMax.Store(total)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// procs returns the live processes.
func (s *hookdSet) procs() []*proc {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.live)
}

// serveArg returns the value of --name in the serve arguments, or def.
func serveArg(args []string, name string, def int) int {
	v := def
	for i, a := range args {
		var s string
		if rest, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			s = rest
		} else if a == "--"+name && i+1 < len(args) {
			s = args[i+1]
		} else {
			continue
		}
		if n, err := strconv.Atoi(s); err == nil {
			v = n
		}
	}
	return v
}
