package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Summary is the result of Run, as printed in JSON.
type Summary struct {
	Timestamp time.Time        `json:"timestamp"`
	Machine   Machine          `json:"machine"`
	Hookd     HookdInfo        `json:"hookd"`
	Settings  Settings         `json:"settings"`
	Scenarios []ScenarioResult `json:"scenarios"`
}

// Machine describes where the bench ran.
type Machine struct {
	CPUs        int    `json:"cpus"`
	OS          string `json:"os"`
	Arch        string `json:"arch"`
	GoVersion   string `json:"go_version"`
	Kernel      string `json:"kernel"`
	CPUModel    string `json:"cpu_model"`
	LoadAverage string `json:"load_average"` // at the start: 1, 5 and 15 minutes
}

// HookdInfo describes the hookd under test.
type HookdInfo struct {
	Version string `json:"version"`
	Store   string `json:"store"`            // sqlite, postgres
	Target  string `json:"target,omitempty"` // a running hookd's URL
	Workers int    `json:"workers,omitempty"`
	// Postgres is the PostgreSQL server's settings that shape the numbers.
	Postgres *PostgresInfo `json:"postgres,omitempty"`
}

// PostgresInfo describes the PostgreSQL server of a bench on PostgreSQL.
type PostgresInfo struct {
	Version           string `json:"version"`
	Autovacuum        string `json:"autovacuum"`
	SynchronousCommit string `json:"synchronous_commit"`
}

// Settings are the Config values that shape the numbers.
type Settings struct {
	Scenarios       []string `json:"scenarios"`
	Runs            int      `json:"runs"`
	ServeArgs       []string `json:"serve_args,omitempty"`
	Rate            int      `json:"rate"`
	Duration        float64  `json:"duration_s"`
	Events          int      `json:"events"`
	Clients         int      `json:"clients"`
	Batch           int      `json:"batch"`
	Endpoints       int      `json:"endpoints"`
	FanoutEvents    int      `json:"fanout_events"`
	FanoutEndpoints int      `json:"fanout_endpoints"`
	Backlog         int      `json:"backlog"`
	BacklogBaseline int      `json:"backlog_baseline"`
	BacklogProbe    float64  `json:"backlog_probe_s"`
	BadEvents       int      `json:"bad_events"`
	Bad             string   `json:"bad"`
	PayloadBytes    int      `json:"payload_bytes"`
	MaxInFlight     int      `json:"max_in_flight"`
	RawDuration     float64  `json:"raw_duration_s"`
	Timeout         float64  `json:"timeout_s"`
	Verify          bool     `json:"verify"`
}

func settingsOf(c Config) Settings {
	return Settings{
		Scenarios: c.Scenarios, Runs: c.Runs, ServeArgs: c.ServeArgs, Rate: c.Rate, Duration: c.Duration.Seconds(),
		Events: c.Events, Clients: c.Clients, Batch: c.Batch, Endpoints: c.Endpoints, FanoutEvents: c.FanoutEvents,
		FanoutEndpoints: c.FanoutEndpoints, Backlog: c.Backlog, BacklogBaseline: c.BacklogBaseline,
		BacklogProbe: c.BacklogProbe.Seconds(), BadEvents: c.BadEvents, Bad: c.Bad, PayloadBytes: c.PayloadBytes,
		MaxInFlight: c.MaxInFlight, RawDuration: c.RawDuration.Seconds(), Timeout: c.Timeout.Seconds(), Verify: c.Verify,
	}
}

// ScenarioResult is one scenario's result: the median of each figure over its
// runs, and the runs.
type ScenarioResult struct {
	Name       string      `json:"name"`
	Incomplete bool        `json:"incomplete"` // some run reached the timeout
	Error      string      `json:"error,omitempty"`
	Skipped    string      `json:"skipped,omitempty"` // why the scenario did not run
	Figures    []Figure    `json:"figures"`
	Runs       []RunResult `json:"runs"`
}

// RunResult is one run of a scenario.
type RunResult struct {
	Started    time.Time `json:"started"`
	Seconds    float64   `json:"seconds"`
	Incomplete bool      `json:"incomplete"`
	Error      string    `json:"error,omitempty"`
	Notes      []string  `json:"notes,omitempty"`
	Figures    []Figure  `json:"figures"`

	hookdVersion string
}

// Figure is one measured number.
type Figure struct {
	Name   string  `json:"name"` // stable, e.g. "delivery_rate"
	Label  string  `json:"label"`
	Unit   string  `json:"unit"` // "/s", "ms", "MiB", "s", "x" (a ratio), "" (a count)
	Value  float64 `json:"value"`
	Target *Target `json:"target,omitempty"`
	Pass   *bool   `json:"pass,omitempty"`
}

// Target is what a figure should be: Op is ">=" or "<=".
type Target struct {
	Op    string  `json:"op"`
	Value float64 `json:"value"`
	Note  string  `json:"note,omitempty"` // the conditions it was set for
}

// check sets f.Pass from its target.
func (f *Figure) check() {
	if f.Target == nil {
		f.Pass = nil
		return
	}
	ok := f.Value >= f.Target.Value
	if f.Target.Op == "<=" {
		ok = f.Value <= f.Target.Value
	}
	if math.IsNaN(f.Value) {
		ok = false
	}
	f.Pass = &ok
}

// Figure returns the figure with that name, or nil.
func (r *ScenarioResult) Figure(name string) *Figure {
	for i := range r.Figures {
		if r.Figures[i].Name == name {
			return &r.Figures[i]
		}
	}
	return nil
}

// Scenario returns the result of the named scenario, or nil.
func (s *Summary) Scenario(name string) *ScenarioResult {
	for i := range s.Scenarios {
		if s.Scenarios[i].Name == name {
			return &s.Scenarios[i]
		}
	}
	return nil
}

// summarize sets the figures to the medians of the runs' figures.
func (r *ScenarioResult) summarize() {
	var names []string
	byName := map[string][]Figure{}
	for _, run := range r.Runs {
		r.Incomplete = r.Incomplete || run.Incomplete
		if run.Error != "" && r.Error == "" {
			r.Error = run.Error
		}
		for _, f := range run.Figures {
			if _, ok := byName[f.Name]; !ok {
				names = append(names, f.Name)
			}
			byName[f.Name] = append(byName[f.Name], f)
		}
	}
	for _, n := range names {
		fs := byName[n]
		vals := make([]float64, len(fs))
		for i, f := range fs {
			vals[i] = f.Value
		}
		f := fs[0]
		f.Value = median(vals)
		f.check()
		r.Figures = append(r.Figures, f)
	}
}

func median(v []float64) float64 {
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// write prints the table and the JSON to w, and the JSON to file if set.
func (s *Summary) write(w io.Writer, file string) error {
	s.writeTable(w)
	j, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode the summary: %w", err)
	}
	j = append(j, '\n')
	fmt.Fprintln(w)
	if _, err := w.Write(j); err != nil {
		return err
	}
	if file != "" {
		if err := os.WriteFile(file, j, 0o644); err != nil {
			return fmt.Errorf("write the JSON summary: %w", err)
		}
	}
	return nil
}

func (s *Summary) writeTable(w io.Writer) {
	fmt.Fprintf(w, "hookd %s, %s store; %d CPUs (%s), %s, %s/%s, kernel %s\n", s.Hookd.Version, s.Hookd.Store,
		s.Machine.CPUs, s.Machine.CPUModel, s.Machine.GoVersion, s.Machine.OS, s.Machine.Arch, s.Machine.Kernel)
	if pg := s.Hookd.Postgres; pg != nil {
		fmt.Fprintf(w, "PostgreSQL %s: autovacuum %s, synchronous_commit %s\n", pg.Version, pg.Autovacuum, pg.SynchronousCommit)
		if pg.Autovacuum != "on" {
			fmt.Fprintln(w, "warning: autovacuum is off, as on no production server: the queue tables fill with dead rows and delivery slows down over the run")
		}
	}
	if s.Settings.Runs > 1 {
		fmt.Fprintf(w, "medians of %d runs\n", s.Settings.Runs)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tFIGURE\tVALUE\tTARGET\tRESULT")
	for _, r := range s.Scenarios {
		if r.Skipped != "" {
			fmt.Fprintf(tw, "%s\tskipped: %s\t\t\t\n", r.Name, r.Skipped)
		}
		if r.Error != "" {
			fmt.Fprintf(tw, "%s\terror: %s\t\t\tERROR\n", r.Name, firstLine(r.Error))
		}
		if r.Incomplete {
			fmt.Fprintf(tw, "%s\tincomplete: the timeout ended a run; its figures cover what arrived\t\t\tINCOMPLETE\n", r.Name)
		}
		for _, f := range r.Figures {
			target, result := "", ""
			if f.Target != nil {
				op := map[string]string{">=": "≥", "<=": "≤"}[f.Target.Op]
				target = op + " " + formatValue(f.Target.Value, f.Unit)
				if f.Target.Note != "" {
					target += " (" + f.Target.Note + ")"
				}
				result = "FAIL"
				if f.Pass != nil && *f.Pass {
					result = "PASS"
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Name, f.Label, formatValue(f.Value, f.Unit), target, result)
		}
	}
	tw.Flush()
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// formatValue formats v for the table.
func formatValue(v float64, unit string) string {
	switch unit {
	case "/s":
		return thousands(int64(math.Round(v))) + "/s"
	case "":
		return thousands(int64(math.Round(v)))
	case "ms":
		return strconv.FormatFloat(v, 'f', 2, 64) + " ms"
	case "x":
		return strconv.FormatFloat(v, 'f', 2, 64) + "×"
	default:
		return strconv.FormatFloat(v, 'f', 1, 64) + " " + unit
	}
}

// thousands formats n with comma separators.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// machineInfo describes this machine.
func machineInfo() Machine {
	m := Machine{CPUs: runtime.NumCPU(), OS: runtime.GOOS, Arch: runtime.GOARCH, GoVersion: runtime.Version()}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			m.LoadAverage = strings.Join(f[:3], " ")
		}
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			if ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}
