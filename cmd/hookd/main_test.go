package main

// These tests build the real hookd binary once and run it as a subprocess, the
// way operators do: flags and HOOKD_* variables, a data directory, signals and
// kill -9, with a real webhook receiver on 127.0.0.1.

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// hookdBin is the binary built by TestMain.
var hookdBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hookd-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	hookdBin = filepath.Join(dir, "hookd")
	args := []string{"build", "-o", hookdBin}
	if raceEnabled() {
		args = append(args, "-race") // the subprocess gets the race detector too
	}
	build := exec.Command("go", append(args, ".")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build hookd:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// raceEnabled reports whether this test binary was built with -race.
func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" && s.Value == "true" {
			return true
		}
	}
	return false
}

// output collects a process's output and wakes waiters on every write.
type output struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	wrote chan struct{}
}

func newOutput() *output { return &output{wrote: make(chan struct{}, 1)} }

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf.Write(p)
	select {
	case o.wrote <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// proc is a hookd process.
type proc struct {
	t       *testing.T
	cmd     *exec.Cmd
	dataDir string
	url     string // http://127.0.0.1:port, once listening
	version string
	stdout  *output
	stderr  *output
	exited  chan struct{} // closed when the process has exited
	client  *http.Client
}

// childEnv is the test's environment without any HOOKD_* variable, plus env.
// A race-enabled hookd does not pause a second before exiting.
func childEnv(env ...string) []string {
	out := []string{"GORACE=atexit_sleep_ms=0"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HOOKD_") && !strings.HasPrefix(kv, "GORACE=") {
			out = append(out, kv)
		}
	}
	return append(out, env...)
}

// run starts hookd with args and env (HOOKD_* variables are not inherited).
// The process is killed at the end of the test if it is still running.
func run(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, stdout: newOutput(), stderr: newOutput(), exited: make(chan struct{})}
	p.cmd = exec.Command(hookdBin, args...)
	p.cmd.Env = childEnv(env...)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start hookd: %v", err)
	}
	go func() {
		p.cmd.Wait()
		close(p.exited)
	}()
	p.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
	t.Cleanup(func() {
		p.client.CloseIdleConnections()
		select {
		case <-p.exited:
		default:
			p.cmd.Process.Kill()
			<-p.exited
		}
		if strings.Contains(p.stderr.String(), "WARNING: DATA RACE") {
			t.Errorf("hookd reported a data race:\n%s", p.stderr)
		}
		if t.Failed() {
			t.Logf("hookd %v\nstdout:\n%s\nstderr:\n%s", args, p.stdout, p.stderr)
		}
	})
	return p
}

var listening = regexp.MustCompile(`(?m)^hookd (\S+) listening on (http://\S+)$`)

// serve starts "hookd serve --addr 127.0.0.1:0 --data-dir dataDir args..." and
// waits until it listens.
func serve(t *testing.T, dataDir string, env []string, args ...string) *proc {
	t.Helper()
	p := run(t, env, append([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dataDir}, args...)...)
	p.dataDir = dataDir
	p.waitListening()
	return p
}

// waitListening waits for the line announcing the address.
func (p *proc) waitListening() {
	p.t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		if m := listening.FindStringSubmatch(p.stdout.String()); m != nil {
			p.version, p.url = m[1], m[2]
			return
		}
		select {
		case <-p.stdout.wrote:
		case <-p.exited:
			p.t.Fatalf("hookd exited with %v before listening\nstdout:\n%s\nstderr:\n%s", p.cmd.ProcessState, p.stdout, p.stderr)
		case <-timeout:
			p.t.Fatalf("hookd did not announce its address within 20s\nstdout:\n%s\nstderr:\n%s", p.stdout, p.stderr)
		}
	}
}

// wait waits up to d for the process to exit and returns its exit code.
func (p *proc) wait(d time.Duration) int {
	p.t.Helper()
	select {
	case <-p.exited:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(d):
		p.t.Fatalf("hookd did not exit within %s", d)
		return 0
	}
}

// kill9 kills the process with SIGKILL and waits for it.
func (p *proc) kill9() {
	p.t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		p.t.Fatalf("kill -9: %v", err)
	}
	<-p.exited
	p.client.CloseIdleConnections()
}

// terminate sends SIGTERM and returns the exit code, failing past timeout.
func (p *proc) terminate(timeout time.Duration) int {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatalf("SIGTERM: %v", err)
	}
	code := p.wait(timeout)
	p.client.CloseIdleConnections()
	return code
}

// call sends a JSON request with the bearer key and returns the status and body.
func (p *proc) call(method, path, key, body string) (int, []byte) {
	p.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, p.url+path, rd)
	if err != nil {
		p.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp.StatusCode, b
}

// must is call that fails unless the status is want, decoding the body into out.
func (p *proc) must(method, path, key, body string, want int, out any) {
	p.t.Helper()
	status, b := p.call(method, path, key, body)
	if status != want {
		p.t.Fatalf("%s %s = %d %s, want %d", method, path, status, b, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			p.t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
}

// receiver is a webhook receiver on 127.0.0.1 that records deliveries by
// webhook-id.
type receiver struct {
	srv *httptest.Server

	mu        sync.Mutex
	status    int           // answer; default 200
	delay     time.Duration // wait before answering
	attempts  map[string]int
	succeeded map[string]int // attempts answered 2xx
	changed   chan struct{}  // signalled on every request start and end
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	r := &receiver{status: http.StatusOK, attempts: map[string]int{}, succeeded: map[string]int{}, changed: make(chan struct{}, 1)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		io.Copy(io.Discard, req.Body)
		id := req.Header.Get("webhook-id")
		r.mu.Lock()
		r.attempts[id]++
		status, delay := r.status, r.delay
		r.mu.Unlock()
		r.signal()
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-req.Context().Done(): // hookd gave up
				return
			}
		}
		w.WriteHeader(status)
		if status/100 == 2 {
			r.mu.Lock()
			r.succeeded[id]++
			r.mu.Unlock()
		}
		r.signal()
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) signal() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *receiver) set(status int, delay time.Duration) {
	r.mu.Lock()
	r.status, r.delay = status, delay
	r.mu.Unlock()
}

// waitFor waits up to d for cond, evaluated under the receiver's lock after
// every request.
func (r *receiver) waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(d)
	for {
		r.mu.Lock()
		ok := cond()
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-r.changed:
		case <-deadline:
			t.Fatalf("receiver: %s did not happen within %s", what, d)
		}
	}
}

func randomKey(prefix string) string {
	b := make([]byte, 16)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// devArgs makes retries fast, allows the receiver on 127.0.0.1 and lifts the
// management API's per-key rate limit (the tests read every event they check).
var devArgs = []string{"--dev", "--retry-initial-interval", "100ms", "--retry-max-interval", "500ms", "--retry-max-attempts", "100",
	"--api-rate-limit", "0"}

// subscribe creates organization acme and an endpoint for every event to url.
func subscribe(p *proc, key, url string) string {
	p.t.Helper()
	p.must("POST", "/api/organizations", key, `{"id":"acme","name":"Acme"}`, http.StatusCreated, nil)
	var ep struct{ ID string }
	p.must("POST", "/api/webhooks", key, `{"organization":"acme","url":"`+url+`","events":["*"]}`, http.StatusCreated, &ep)
	return ep.ID
}

// publish publishes events e-0 … e-(n-1) with 8 concurrent clients; each must
// answer 202.
func publish(p *proc, key string, n int) []string {
	p.t.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("e-%d", i)
	}
	var wg sync.WaitGroup
	errs := make(chan string, n)
	next := make(chan string, n)
	for _, id := range ids {
		next <- id
	}
	close(next)
	for range 8 {
		wg.Go(func() {
			for id := range next {
				req, _ := http.NewRequest("POST", p.url+"/api/events", strings.NewReader(
					`{"organization":"acme","id":"`+id+`","type":"order.created","data":{"id":"`+id+`"}}`))
				req.Header.Set("Authorization", "Bearer "+key)
				resp, err := p.client.Do(req)
				if err != nil {
					errs <- fmt.Sprintf("publish %s: %v", id, err)
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					errs <- fmt.Sprintf("publish %s = %d %s, want 202", id, resp.StatusCode, b)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		p.t.Error(e)
	}
	if p.t.Failed() {
		p.t.FailNow()
	}
	return ids
}

type deliveryJSON struct {
	ID           string `json:"id"`
	Event        string `json:"event"`
	Status       string `json:"status"`
	AttemptCount int    `json:"attempt_count"`
}

// deliveries lists every delivery (at most 500).
func (p *proc) deliveries(key, query string) []deliveryJSON {
	p.t.Helper()
	var l struct {
		Data       []deliveryJSON `json:"data"`
		NextCursor *string        `json:"next_cursor"`
	}
	p.must("GET", "/api/deliveries?limit=500&"+query, key, "", http.StatusOK, &l)
	if l.NextCursor != nil {
		p.t.Fatalf("more than 500 deliveries")
	}
	return l.Data
}

// waitAllSucceeded waits until GET /api/deliveries shows a succeeded delivery
// for each of ids and no other status.
func (p *proc) waitAllSucceeded(key string, ids []string, d time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(d)
	for {
		ds := p.deliveries(key, "")
		byEvent := map[string]string{}
		for _, dl := range ds {
			byEvent[dl.Event] = dl.Status
		}
		done := len(ds) == len(ids)
		for _, id := range ids {
			if byEvent[id] != "succeeded" {
				done = false
			}
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("deliveries not all succeeded after %s: %v", d, byEvent)
		}
		time.Sleep(50 * time.Millisecond) // the store has no change feed to wait on
	}
}

func fileMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("stat: %v", err)
	}
	return fi.Mode().Perm()
}

// TestFirstStart: hookd creates the admin key file (0600) and the master key
// file (0600), logs the file's path but never the key, and the key works
// (SPEC §2, §9).
func TestFirstStart(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(t.TempDir(), "data")
	p := serve(t, dataDir, nil)

	if !strings.HasPrefix(p.url, "http://127.0.0.1:") || strings.HasSuffix(p.url, ":0") {
		t.Errorf("listen address = %q, want http://127.0.0.1:<port>", p.url)
	}
	keyFile := filepath.Join(dataDir, "admin.key")
	if !strings.Contains(p.stdout.String(), keyFile) {
		t.Errorf("stdout does not name the admin key file %s:\n%s", keyFile, p.stdout)
	}
	if m := fileMode(t, keyFile); m != 0o600 {
		t.Errorf("admin.key mode = %v, want 0600", m)
	}
	if m := fileMode(t, filepath.Join(dataDir, "master.key")); m != 0o600 {
		t.Errorf("master.key mode = %v, want 0600", m)
	}
	b, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	key := strings.TrimSpace(string(b))
	if len(key) < 32 {
		t.Fatalf("admin key %q is too short", key)
	}

	p.must("POST", "/api/organizations", key, `{"id":"acme","name":"Acme"}`, http.StatusCreated, nil)
	p.must("GET", "/api/health", "", "", http.StatusOK, nil)
	if status, body := p.call("GET", "/api/webhooks", "hk_admin_wrong", ""); status != http.StatusUnauthorized {
		t.Errorf("wrong key: GET /api/webhooks = %d %s, want 401", status, body)
	}

	if code := p.terminate(10 * time.Second); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0", code)
	}
	for name, out := range map[string]string{"stdout": p.stdout.String(), "stderr": p.stderr.String()} {
		if strings.Contains(out, key) {
			t.Errorf("the admin key appears in %s", name)
		}
	}

	// A second start keeps the key and does not write a new one.
	p2 := serve(t, dataDir, nil)
	if b2, _ := os.ReadFile(keyFile); !bytes.Equal(b, b2) {
		t.Errorf("admin.key changed on restart")
	}
	var org struct{ Name string }
	p2.must("GET", "/api/organizations/acme", key, "", http.StatusOK, &org)
	if org.Name != "Acme" {
		t.Errorf("organization after restart = %+v", org)
	}
	if strings.Contains(p2.stdout.String()+p2.stderr.String(), key) {
		t.Errorf("the admin key appears in the output of the second start")
	}
}

// TestCommandLine: --help lists every flag with its HOOKD_* variable; bad
// command lines exit non-zero with a message (SPEC §9).
func TestCommandLine(t *testing.T) {
	t.Parallel()
	t.Run("help", func(t *testing.T) {
		t.Parallel()
		p := run(t, nil, "serve", "--help")
		if code := p.wait(10 * time.Second); code != 0 {
			t.Fatalf("hookd serve --help exited %d", code)
		}
		help := p.stdout.String()
		for _, env := range []string{"HOOKD_DATA_DIR", "HOOKD_DEV", "HOOKD_MASTER_KEY", "HOOKD_ADMIN_KEY", "HOOKD_ADDR",
			"HOOKD_ALLOW_HTTP", "HOOKD_ALLOW_PRIVATE_TARGETS", "HOOKD_MAX_BODY_SIZE", "HOOKD_RETRY_MAX_ATTEMPTS",
			"HOOKD_RETRY_INITIAL_INTERVAL", "HOOKD_RETRY_MAX_INTERVAL", "HOOKD_SHUTDOWN_TIMEOUT", "HOOKD_ATTEMPT_TIMEOUT"} {
			if !strings.Contains(help, "$"+env) {
				t.Errorf("hookd serve --help does not mention %s", env)
			}
		}
		// Every flag but --help has an environment variable.
		flags := regexp.MustCompile(`(?m)^ {1,8}(?:-\w, +)?--([a-z-]+)`).FindAllStringSubmatch(help, -1)
		envs := regexp.MustCompile(`\(\$HOOKD_[A-Z_]+\)`).FindAllString(help, -1)
		if len(flags) < 10 || len(envs) != len(flags)-1 {
			t.Errorf("--help shows %d flags and %d HOOKD_* variables, want one variable per flag but --help:\n%s", len(flags), len(envs), help)
		}
	})
	for _, c := range []struct {
		name string
		env  []string
		args []string
		want string // in stderr
	}{
		{"unknown_flag", nil, []string{"serve", "--nope"}, "--nope"},
		{"unknown_command", nil, []string{"frobnicate"}, "frobnicate"},
		{"bad_duration", nil, []string{"serve", "--retry-initial-interval", "soon"}, "retry-initial-interval"},
		{"bad_retry_attempts", nil, []string{"serve", "--retry-max-attempts", "0"}, "retry"},
		{"bad_log_format", nil, []string{"serve", "--log-format", "xml"}, "log-format"},
		{"bad_env_bool", []string{"HOOKD_DEV=maybe"}, []string{"serve"}, "dev"},
		{"bad_master_key", []string{"HOOKD_MASTER_KEY=0123456789abcdef0123456789abcdefNOTHEX"}, []string{"serve"}, "HOOKD_MASTER_KEY"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dataDir := filepath.Join(t.TempDir(), "data")
			p := run(t, c.env, append(c.args, "--addr", "127.0.0.1:0", "--data-dir", dataDir)...)
			if code := p.wait(10 * time.Second); code == 0 {
				t.Fatalf("hookd %v exited 0, want non-zero", c.args)
			}
			if stderr := p.stderr.String(); !strings.Contains(strings.ToLower(stderr), strings.ToLower(c.want)) {
				t.Errorf("stderr does not mention %q:\n%s", c.want, stderr)
			}
			if listening.MatchString(p.stdout.String()) {
				t.Errorf("hookd listened despite the bad command line")
			}
			for _, kv := range c.env {
				if _, v, _ := strings.Cut(kv, "="); strings.Contains(p.stdout.String()+p.stderr.String(), v) && len(v) > 16 {
					t.Errorf("the value of %s is echoed in the output", kv)
				}
			}
		})
	}
	t.Run("version", func(t *testing.T) {
		t.Parallel()
		p := run(t, nil, "version")
		if code := p.wait(10 * time.Second); code != 0 {
			t.Fatalf("hookd version exited %d", code)
		}
		if !regexp.MustCompile(`^hookd \S+\n$`).MatchString(p.stdout.String()) {
			t.Errorf("hookd version printed %q", p.stdout)
		}
	})
}

// TestDataDirLocked: a second hookd on the same data directory fails with a
// clear error, and the first keeps serving.
func TestDataDirLocked(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	key := randomKey("hk_admin_")
	first := serve(t, dataDir, []string{"HOOKD_ADMIN_KEY=" + key})
	second := run(t, []string{"HOOKD_ADMIN_KEY=" + key}, "serve", "--addr", "127.0.0.1:0", "--data-dir", dataDir)
	if code := second.wait(10 * time.Second); code == 0 {
		t.Fatalf("second hookd on the same data dir exited 0")
	}
	if stderr := second.stderr.String(); !strings.Contains(stderr, "in use") || !strings.Contains(stderr, dataDir) {
		t.Errorf("second hookd's error does not say that %s is in use:\n%s", dataDir, stderr)
	}
	first.must("GET", "/api/health", "", "", http.StatusOK, nil)
	first.must("POST", "/api/organizations", key, `{"id":"acme","name":"Acme"}`, http.StatusCreated, nil)
}

// TestKill9LosesNothing: events acknowledged with 202 survive kill -9 and are
// all delivered after a restart (SPEC §4).
func TestKill9LosesNothing(t *testing.T) {
	t.Parallel()
	const n = 50
	for _, c := range []struct {
		name      string
		waitFirst bool // wait for every event to have failed once before the kill
	}{
		{"during_retries", true},
		{"right_after_202", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			rcv := newReceiver(t)
			rcv.set(http.StatusServiceUnavailable, 0)
			dataDir := t.TempDir()
			key := randomKey("hk_admin_")
			env := []string{"HOOKD_ADMIN_KEY=" + key}

			p := serve(t, dataDir, env, devArgs...)
			subscribe(p, key, rcv.srv.URL+"/hook")
			ids := publish(p, key, n)
			if c.waitFirst {
				rcv.waitFor(t, 20*time.Second, "a first attempt for every event", func() bool { return len(rcv.attempts) == n })
			}
			p.kill9()

			rcv.set(http.StatusOK, 0)
			p2 := serve(t, dataDir, env, devArgs...)
			rcv.waitFor(t, 30*time.Second, "a 200 for every event", func() bool {
				for _, id := range ids {
					if rcv.succeeded[id] == 0 {
						return false
					}
				}
				return true
			})
			rcv.mu.Lock()
			for id := range rcv.attempts {
				if !strings.HasPrefix(id, "e-") {
					t.Errorf("unexpected delivery with webhook-id %q", id)
				}
			}
			rcv.mu.Unlock()
			p2.waitAllSucceeded(key, ids, 20*time.Second)
			var evs struct {
				Data []json.RawMessage `json:"data"`
			}
			p2.must("GET", "/api/events?limit=500", key, "", http.StatusOK, &evs)
			if len(evs.Data) != n {
				t.Errorf("GET /api/events: %d events, want %d", len(evs.Data), n)
			}
		})
	}
}

// TestSIGTERMFinishesInFlight: SIGTERM waits for an attempt in flight, records
// it and exits 0; after a restart that delivery is succeeded, not retried
// (SPEC §9).
func TestSIGTERMFinishesInFlight(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t)
	rcv.set(http.StatusOK, 300*time.Millisecond)
	dataDir := t.TempDir()
	key := randomKey("hk_admin_")
	env := []string{"HOOKD_ADMIN_KEY=" + key}

	p := serve(t, dataDir, env, append(devArgs, "--shutdown-timeout", "10s")...)
	subscribe(p, key, rcv.srv.URL+"/hook")
	publish(p, key, 1)
	rcv.waitFor(t, 10*time.Second, "the attempt", func() bool { return rcv.attempts["e-0"] == 1 })
	start := time.Now()
	if code := p.terminate(10 * time.Second); code != 0 {
		t.Fatalf("exit code after SIGTERM = %d, want 0\nstderr:\n%s", code, p.stderr)
	}
	t.Logf("shut down in %s", time.Since(start))
	rcv.mu.Lock()
	ok := rcv.succeeded["e-0"]
	rcv.mu.Unlock()
	if ok != 1 {
		t.Fatalf("the receiver answered %d attempts with 200 before hookd exited, want 1", ok)
	}

	rcv.set(http.StatusOK, 0)
	p2 := serve(t, dataDir, env, devArgs...)
	ds := p2.deliveries(key, "event=e-0")
	if len(ds) != 1 || ds[0].Status != "succeeded" || ds[0].AttemptCount != 1 {
		t.Fatalf("after restart, deliveries of e-0 = %+v, want one succeeded after 1 attempt", ds)
	}
	var d struct {
		Attempts []struct {
			ResponseStatus *int    `json:"response_status"`
			Error          *string `json:"error"`
		} `json:"attempts"`
	}
	p2.must("GET", "/api/deliveries/"+ds[0].ID, key, "", http.StatusOK, &d)
	if len(d.Attempts) != 1 || d.Attempts[0].ResponseStatus == nil || *d.Attempts[0].ResponseStatus != 200 {
		t.Errorf("attempts = %+v, want one answered 200", d.Attempts)
	}
	// A published event proves the engine of the new process is running; once
	// it arrives, e-0 would have been retried already had it been pending.
	p2.must("POST", "/api/events", key, `{"organization":"acme","id":"probe","type":"order.created","data":{}}`, http.StatusAccepted, nil)
	rcv.waitFor(t, 10*time.Second, "the probe event", func() bool { return rcv.succeeded["probe"] == 1 })
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if n := rcv.attempts["e-0"]; n != 1 {
		t.Errorf("e-0 was sent %d times, want 1", n)
	}
}

// TestSIGTERMReleasesPastTimeout: an attempt still in flight when the
// shutdown timeout ends is released, hookd exits, and the delivery is made
// after a restart (SPEC §4 at-least-once, §9).
func TestSIGTERMReleasesPastTimeout(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t)
	rcv.set(http.StatusOK, time.Minute)
	dataDir := t.TempDir()
	key := randomKey("hk_admin_")
	env := []string{"HOOKD_ADMIN_KEY=" + key}

	p := serve(t, dataDir, env, append(devArgs, "--shutdown-timeout", "300ms")...)
	subscribe(p, key, rcv.srv.URL+"/hook")
	publish(p, key, 1)
	rcv.waitFor(t, 10*time.Second, "the attempt", func() bool { return rcv.attempts["e-0"] == 1 })
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	code := p.wait(5 * time.Second)
	t.Logf("exit code after a shutdown that timed out: %d", code)

	rcv.set(http.StatusOK, 0)
	p2 := serve(t, dataDir, env, devArgs...)
	rcv.waitFor(t, 10*time.Second, "a 200 for e-0", func() bool { return rcv.succeeded["e-0"] == 1 })
	p2.waitAllSucceeded(key, []string{"e-0"}, 10*time.Second)
}

// TestStrictTargetsWithoutDev: without --dev, an endpoint on 127.0.0.1 or over
// http is refused with 400 invalid_field url (SPEC §3).
func TestStrictTargetsWithoutDev(t *testing.T) {
	t.Parallel()
	key := randomKey("hk_admin_")
	p := serve(t, t.TempDir(), []string{"HOOKD_ADMIN_KEY=" + key})
	p.must("POST", "/api/organizations", key, `{"id":"acme","name":"Acme"}`, http.StatusCreated, nil)
	for _, url := range []string{"http://127.0.0.1:9/hook", "https://127.0.0.1:9/hook", "https://10.0.0.1/hook", "https://localhost/hook"} {
		status, body := p.call("POST", "/api/webhooks", key, `{"organization":"acme","url":"`+url+`","events":["*"]}`)
		var e struct {
			Error struct{ Code, Field string }
		}
		json.Unmarshal(body, &e)
		if status != http.StatusBadRequest || e.Error.Code != "invalid_field" || e.Error.Field != "url" {
			t.Errorf("POST /api/webhooks %s = %d %s, want 400 invalid_field url", url, status, body)
		}
	}
	if strings.Contains(p.stdout.String(), "development mode") {
		t.Errorf("hookd announced development mode without --dev")
	}
}

// TestEnvironment: HOOKD_* variables work like their flags; HOOKD_MASTER_KEY
// seals the secrets and no master.key file is made (SPEC §9).
func TestEnvironment(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	key := randomKey("hk_admin_")
	masterKey := hex.EncodeToString([]byte(randomKey("")[:32]))
	env := []string{"HOOKD_DEV=true", "HOOKD_MASTER_KEY=" + masterKey, "HOOKD_ADMIN_KEY=" + key,
		"HOOKD_DATA_DIR=" + dataDir, "HOOKD_ADDR=127.0.0.1:0", "HOOKD_RETRY_INITIAL_INTERVAL=100ms"}
	p := run(t, env, "serve")
	p.waitListening()

	ep := subscribe(p, key, rcv.srv.URL+"/hook") // http on 127.0.0.1: needs HOOKD_DEV
	var sec struct{ Secret string }
	p.must("GET", "/api/webhooks/"+ep+"/secret", key, "", http.StatusOK, &sec)
	p.must("POST", "/api/events", key, `{"organization":"acme","id":"env-1","type":"order.created","data":{}}`, http.StatusAccepted, nil)
	rcv.waitFor(t, 10*time.Second, "delivery of env-1", func() bool { return rcv.succeeded["env-1"] == 1 })
	for _, name := range []string{"master.key", "admin.key"} {
		if _, err := os.Stat(filepath.Join(dataDir, name)); !os.IsNotExist(err) {
			t.Errorf("%s exists (err %v), want none with HOOKD_MASTER_KEY and HOOKD_ADMIN_KEY", name, err)
		}
	}
	if strings.Contains(p.stdout.String()+p.stderr.String(), masterKey) {
		t.Errorf("the master key appears in the output")
	}
	if code := p.terminate(10 * time.Second); code != 0 {
		t.Fatalf("exit code after SIGTERM = %d, want 0", code)
	}

	// Another master key cannot open the sealed secrets: hookd refuses to start
	// (rather than failing every delivery later); the right one works.
	other := append([]string{}, env...)
	other[1] = "HOOKD_MASTER_KEY=" + hex.EncodeToString([]byte(randomKey("")[:32]))
	p2 := run(t, other, "serve")
	if code := p2.wait(10 * time.Second); code == 0 {
		t.Errorf("with another master key, hookd exited %d, want a failure", code)
	}
	if stderr := p2.stderr.String(); !strings.Contains(stderr, "master key") {
		t.Errorf("with another master key, stderr does not name the master key:\n%s", stderr)
	}
	p3 := run(t, env, "serve")
	p3.waitListening()
	var sec3 struct{ Secret string }
	p3.must("GET", "/api/webhooks/"+ep+"/secret", key, "", http.StatusOK, &sec3)
	if sec3.Secret != sec.Secret {
		t.Errorf("secret after restart = %q, want %q", sec3.Secret, sec.Secret)
	}
}
