package cli_test

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hookd/hookd/cli"
)

// buildHookd builds hookd into a temporary directory of the test (without
// -race: the bench measures it, and the receiver's code is race-tested in
// package bench).
func buildHookd(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "hookd")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/hookd").CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/hookd: %v\n%s", err, out)
	}
	return bin
}

// runBench builds hookd and runs "hookd bench" in process with args, writing
// the JSON summary to a file; it returns stdout and the parsed summary.
func runBench(t *testing.T, args ...string) (string, map[string]any) {
	t.Helper()
	bin := buildHookd(t)
	jsonFile := filepath.Join(t.TempDir(), "summary.json")
	var o, e syncBuffer
	args = append([]string{"bench", "--hookd-bin", bin, "--json", jsonFile, "--raw-duration", "300ms", "--timeout", "90s", "--verify"}, args...)
	if err := cli.Run(context.Background(), args, &o, &e); err != nil {
		t.Fatalf("hookd %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, o.String(), e.String())
	}
	b, err := os.ReadFile(jsonFile)
	if err != nil {
		t.Fatal(err)
	}
	var sum map[string]any
	if err := json.Unmarshal(b, &sum); err != nil {
		t.Fatalf("the JSON summary does not parse: %v\n%s", err, b)
	}
	if !strings.Contains(o.String(), string(b)) {
		t.Errorf("stdout does not end with the JSON summary of the file")
	}
	return o.String(), sum
}

// figures returns a scenario's figures (the medians) by name, failing the
// test if the scenario is missing, failed or incomplete.
func figures(t *testing.T, sum map[string]any, scenario string) map[string]float64 {
	t.Helper()
	scs, _ := sum["scenarios"].([]any)
	for _, s := range scs {
		sc := s.(map[string]any)
		if sc["name"] != scenario {
			continue
		}
		if sc["error"] != nil || sc["incomplete"] != false {
			t.Errorf("%s: error %v, incomplete %v", scenario, sc["error"], sc["incomplete"])
		}
		if runs, _ := sc["runs"].([]any); len(runs) != 1 {
			t.Errorf("%s: %d runs in the JSON, want 1", scenario, len(runs))
		}
		fs := map[string]float64{}
		for _, f := range sc["figures"].([]any) {
			f := f.(map[string]any)
			fs[f["name"].(string)] = f["value"].(float64)
		}
		return fs
	}
	t.Fatalf("scenario %s is not in the summary", scenario)
	return nil
}

// checkDeliveries checks what every scenario must show: every expected
// delivery arrived, signatures verified, no publish failed, at least one
// attempt per delivery, hookd's memory and the raw capacity measured.
func checkDeliveries(t *testing.T, scenario string, fs map[string]float64, wantExpected float64) {
	t.Helper()
	if fs["expected"] != wantExpected || fs["delivered"] != wantExpected {
		t.Errorf("%s: expected %v, delivered %v deliveries; want %v of each", scenario, fs["expected"], fs["delivered"], wantExpected)
	}
	for _, name := range []string{"bad_signatures", "publish_errors"} {
		if v, ok := fs[name]; !ok || v != 0 {
			t.Errorf("%s: %s = %v (present: %v), want 0", scenario, name, v, ok)
		}
	}
	for _, name := range []string{"attempts_per_delivery"} {
		if fs[name] < 1 {
			t.Errorf("%s: %s = %v, want ≥ 1", scenario, name, fs[name])
		}
	}
	for _, name := range []string{"peak_rss_mib", "cpu_seconds", "raw_rate", "delivery_vs_raw"} {
		if fs[name] <= 0 {
			t.Errorf("%s: %s = %v, want > 0", scenario, name, fs[name])
		}
	}
}

// TestBench runs tiny versions of the scenarios against the real binary, with
// every signature verified by the receiver.
func TestBench(t *testing.T) {
	t.Parallel()
	out, sum := runBench(t, "--scenario", "steady,burst,fanout,bad-receiver",
		"--rate", "200", "--duration", "1s", "--events", "200", "--fanout-events", "10",
		"--bad-events", "100", "--bad", "fail")

	if !strings.Contains(out, "SCENARIO") || !strings.Contains(out, "PASS") {
		t.Errorf("stdout has no table with targets:\n%s", out)
	}
	if _, ok := sum["timestamp"].(string); !ok {
		t.Errorf("summary has no timestamp")
	}
	m, _ := sum["machine"].(map[string]any)
	for _, k := range []string{"cpus", "os", "arch", "go_version", "kernel", "cpu_model"} {
		if _, ok := m[k]; !ok {
			t.Errorf("machine info lacks %q: %v", k, m)
		}
	}
	if m["cpus"].(float64) < 1 || m["go_version"] == "" || m["kernel"] == "" {
		t.Errorf("machine info is empty: %v", m)
	}
	if h, _ := sum["hookd"].(map[string]any); h["version"] == "" || h["store"] != "sqlite" {
		t.Errorf("hookd info = %v, want a version and store sqlite", h)
	}

	steady := figures(t, sum, "steady")
	checkDeliveries(t, "steady", steady, 200+200) // warm-up and measured second
	for _, name := range []string{"publish_p50_ms", "publish_p99_ms", "e2e_p50_ms", "e2e_p90_ms", "e2e_p99_ms", "e2e_max_ms", "delivery_rate"} {
		if steady[name] <= 0 {
			t.Errorf("steady: %s = %v, want > 0", name, steady[name])
		}
	}
	if steady["e2e_p50_ms"] > steady["e2e_p99_ms"] || steady["e2e_p99_ms"] > steady["e2e_max_ms"] {
		t.Errorf("steady: latency quantiles out of order: %v", steady)
	}

	burst := figures(t, sum, "burst")
	checkDeliveries(t, "burst", burst, 2*200*4)
	for _, name := range []string{"publish_rate", "batch_publish_rate", "delivery_rate", "single_delivery_rate", "raw_rate", "raw_rate_after"} {
		if burst[name] <= 0 {
			t.Errorf("burst: %s = %v, want > 0", name, burst[name])
		}
	}
	// The ratio to raw capacity uses the mean of the measurements before and
	// after the phase.
	if want := burst["delivery_rate"] / ((burst["raw_rate"] + burst["raw_rate_after"]) / 2); math.Abs(burst["delivery_vs_raw"]-want) > 1e-9*want {
		t.Errorf("burst: delivery_vs_raw = %v, want %v (delivery rate / mean of raw before and after)", burst["delivery_vs_raw"], want)
	}

	fanout := figures(t, sum, "fanout")
	checkDeliveries(t, "fanout", fanout, 10*100)
	if fanout["delivery_rate"] <= 0 {
		t.Errorf("fanout: delivery_rate = %v, want > 0", fanout["delivery_rate"])
	}

	bad := figures(t, sum, "bad-receiver")
	checkDeliveries(t, "bad-receiver", bad, 2*100*4)
	for _, name := range []string{"healthy_rate_alone", "healthy_rate_with_bad", "healthy_ratio", "bad_attempts"} {
		if bad[name] <= 0 {
			t.Errorf("bad-receiver: %s = %v, want > 0", name, bad[name])
		}
	}
}

// TestBenchBacklog runs a tiny backlog: hookd of role api stores, then one of
// role all on the same data dir drains.
func TestBenchBacklog(t *testing.T) {
	t.Parallel()
	_, sum := runBench(t, "--scenario", "backlog", "--backlog", "1000", "--backlog-baseline", "500", "--backlog-probe", "50ms")
	fs := figures(t, sum, "backlog")
	// Each pass: its backlog plus a warm-up and two probes of 50 events, to 10
	// endpoints.
	checkDeliveries(t, "backlog", fs, 1000+500+2*3*50*10)
	for _, name := range []string{"baseline_drain_rate", "drain_rate", "drain_ratio", "fill_rate",
		"publish_p99_empty_ms", "publish_p99_backlog_ms", "publish_p99_ratio"} {
		if fs[name] <= 0 {
			t.Errorf("backlog: %s = %v, want > 0", name, fs[name])
		}
	}
}

// TestBenchHelp: the bench's flags are documented; the receiver is hidden.
func TestBenchHelp(t *testing.T) {
	t.Parallel()
	out, _, err := runCLI(t, "bench", "--help")
	if err != nil {
		t.Fatalf("Run(bench --help) = %v", err)
	}
	for _, flag := range []string{"scenario", "runs", "hookd-bin", "serve-arg", "target", "admin-key", "pid", "database-url",
		"workers", "rate", "duration", "events", "clients", "batch", "endpoints", "fanout-events", "backlog",
		"backlog-baseline", "bad", "payload-bytes", "max-in-flight", "raw-duration", "timeout", "verify", "json", "profile"} {
		if !strings.Contains(out, "--"+flag) {
			t.Errorf("bench --help does not list --%s", flag)
		}
	}
	top, _, _ := runCLI(t, "--help")
	if !strings.Contains(top, "bench") || strings.Contains(top, "bench-receiver") {
		t.Errorf("hookd --help should list bench and hide bench-receiver:\n%s", top)
	}
	if _, _, err := runCLI(t, "bench", "--scenario", "nope", "--hookd-bin", "/nonexistent"); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("bench --scenario nope = %v, want an error naming it", err)
	}
}
