package cli_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hookd/hookd/app"
	"github.com/hookd/hookd/cli"
	"github.com/hookd/hookd/internal/pgtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// syncBuffer is a bytes.Buffer safe for concurrent use that signals wrote
// after each write.
type syncBuffer struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	wrote chan struct{}
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.wrote != nil {
		select {
		case b.wrote <- struct{}{}:
		default:
		}
	}
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func runCLI(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var o, e syncBuffer
	err = cli.Run(context.Background(), args, &o, &e)
	return o.String(), e.String(), err
}

func TestVersion(t *testing.T) {
	t.Parallel()
	out, _, err := runCLI(t, "version")
	if err != nil {
		t.Fatalf("Run(version) = %v", err)
	}
	if want := "hookd " + app.Version + "\n"; out != want {
		t.Errorf("Run(version) printed %q, want %q", out, want)
	}
}

// TestServeHelp: --help returns nil (exit 0) and names each flag's HOOKD_* variable.
func TestServeHelp(t *testing.T) {
	t.Parallel()
	out, _, err := runCLI(t, "serve", "--help")
	if err != nil {
		t.Fatalf("Run(serve --help) = %v", err)
	}
	for _, flag := range []string{"addr", "data-dir", "master-key", "admin-key", "dev", "allow-http", "allow-private-targets",
		"max-body-size", "attempt-timeout", "retry-max-attempts", "retry-initial-interval", "retry-max-interval",
		"concurrency", "max-in-flight", "shutdown-timeout", "log-format", "log-level", "trusted-proxies", "gc-heap-floor"} {
		env := "$HOOKD_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
		if !strings.Contains(out, "--"+flag) || !strings.Contains(out, env) {
			t.Errorf("serve --help does not show --%s with %s", flag, env)
		}
	}
}

// TestBadCommandLine: Run returns an error (and never exits) for bad input.
func TestBadCommandLine(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		args []string
		want string // in the error or stderr
	}{
		{"no_command", nil, ""},
		{"unknown_command", []string{"frobnicate"}, "frobnicate"},
		{"unknown_flag", []string{"serve", "--nope"}, "--nope"},
		{"bad_int", []string{"serve", "--max-body-size", "big"}, "max-body-size"},
		{"bad_duration", []string{"serve", "--attempt-timeout", "soon"}, "attempt-timeout"},
		{"bad_enum", []string{"serve", "--log-level", "loud"}, "log-level"},
		{"retry_attempts_zero", []string{"serve", "--retry-max-attempts", "0"}, "retry"},
		{"retry_attempts_too_many", []string{"serve", "--retry-max-attempts", "101"}, "retry"},
		{"retry_initial_over_max", []string{"serve", "--retry-initial-interval", "2h", "--retry-max-interval", "1h"}, "retry"},
		{"retry_negative", []string{"serve", "--retry-initial-interval", "-1s"}, "retry"},
		{"master_key_short", []string{"serve", "--master-key", "abcd"}, "master"},
		{"admin_key_short", []string{"serve", "--admin-key", "short-admin-key"}, "32 characters"},
		{"shutdown_timeout_zero", []string{"serve", "--shutdown-timeout", "0s"}, "shutdown-timeout"},
		{"trusted_proxy_bad", []string{"serve", "--trusted-proxies", "10.0.0.0/8,not-an-ip"}, "trusted-proxies"},
		{"role_bad", []string{"serve", "--role", "boss"}, "role"},
		{"role_worker_without_database", []string{"serve", "--role", "worker"}, "--database-url"},
		{"lease_not_over_attempt_timeout", []string{"serve", "--attempt-timeout", "10s", "--lease", "10s"}, "--lease"},
		{"lease_negative", []string{"serve", "--lease", "-1s"}, "--lease"},
		{"gc_heap_floor_negative", []string{"serve", "--gc-heap-floor", "-1"}, "--gc-heap-floor"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dataDir := filepath.Join(t.TempDir(), "data")
			out, errOut, err := runCLI(t, append(c.args, "--data-dir", dataDir, "--addr", "127.0.0.1:0")...)
			if err == nil {
				t.Fatalf("Run(%q) = nil, want an error\nstdout: %s", c.args, out)
			}
			if got := err.Error() + "\n" + errOut; !strings.Contains(got, c.want) {
				t.Errorf("Run(%q): error and stderr do not mention %q:\n%s", c.args, c.want, got)
			}
			if strings.Contains(out, "listening") {
				t.Errorf("Run(%q) started serving", c.args)
			}
			if _, err := os.Stat(dataDir); c.name != "no_command" && !os.IsNotExist(err) {
				t.Errorf("Run(%q) created the data dir despite the bad command line", c.args)
			}
		})
	}
}

// TestEnvironmentErrors: bad HOOKD_* values are errors naming the variable,
// without echoing a secret value.
func TestEnvironmentErrors(t *testing.T) {
	badKey := "00112233445566778899aabbccddeeffSECRET-BUT-INVALID"
	for _, c := range []struct{ env, value, want string }{
		{"HOOKD_DEV", "maybe", "dev"},
		{"HOOKD_MAX_BODY_SIZE", "lots", "max-body-size"},
		{"HOOKD_MASTER_KEY", badKey, "HOOKD_MASTER_KEY"},
		{"HOOKD_LOG_FORMAT", "xml", "log-format"},
	} {
		t.Run(c.env, func(t *testing.T) {
			t.Setenv(c.env, c.value)
			out, errOut, err := runCLI(t, "serve", "--data-dir", filepath.Join(t.TempDir(), "data"), "--addr", "127.0.0.1:0")
			if err == nil {
				t.Fatalf("%s=%s: Run = nil, want an error", c.env, c.value)
			}
			all := err.Error() + "\n" + errOut
			if !strings.Contains(all, c.want) {
				t.Errorf("%s=%s: error does not mention %q:\n%s", c.env, c.value, c.want, all)
			}
			if c.value == badKey && strings.Contains(all+out, badKey) {
				t.Errorf("the master key value is echoed:\n%s", all)
			}
		})
	}
}

// TestServe: serve listens, reports where the admin key is, and returns nil
// once its context is cancelled; environment variables act like flags.
func TestServe(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	t.Setenv("HOOKD_DATA_DIR", dataDir)
	t.Setenv("HOOKD_DEV", "true")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, errOut := syncBuffer{wrote: make(chan struct{}, 1)}, syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- cli.Run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--shutdown-timeout", "5s"}, &out, &errOut)
	}()

	listening := regexp.MustCompile(`hookd \S+ listening on http://127\.0\.0\.1:\d+\n`)
	timeout := time.After(10 * time.Second)
	for !listening.MatchString(out.String()) {
		select {
		case <-out.wrote:
		case err := <-done:
			t.Fatalf("Run returned %v before listening\nstdout: %s\nstderr: %s", err, out.String(), errOut.String())
		case <-timeout:
			t.Fatalf("not listening after 10s\nstdout: %s\nstderr: %s", out.String(), errOut.String())
		}
	}
	// serve keeps the GC's heap goal at --gc-heap-floor (64 MiB by default)
	// while the live heap is small, unless GOGC or GOMEMLIMIT is set.
	// The floor follows the live heap the last collection measured, which may
	// still count an earlier test's data: collect until it is gone.
	tuned := os.Getenv("GOGC") == "" && os.Getenv("GOMEMLIMIT") == ""
	if tuned {
		p := gcPercent()
		for deadline := time.Now().Add(5 * time.Second); p <= 100 && time.Now().Before(deadline); p = gcPercent() {
			runtime.GC()
			time.Sleep(10 * time.Millisecond) // the floor is set after the collection
		}
		if p <= 100 {
			t.Errorf("GOGC while serving = %d, want above 100 (a heap floor of 64 MiB)", p)
		}
	}
	keyFile := filepath.Join(dataDir, "admin.key")
	if !strings.Contains(out.String(), keyFile) {
		t.Errorf("stdout does not name %s:\n%s", keyFile, out.String())
	}
	if !strings.Contains(out.String(), "development mode") {
		t.Errorf("HOOKD_DEV=true: no development mode warning:\n%s", out.String())
	}
	key, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String()+errOut.String(), strings.TrimSpace(string(key))) {
		t.Errorf("the admin key appears in the output")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after cancel = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10s of cancel")
	}
	if p := gcPercent(); tuned && p != 100 {
		t.Errorf("GOGC after serve returned = %d, want 100 again", p)
	}
}

// gcPercent returns the process's GOGC without changing it.
func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

// TestMigrate: migrate applies the schema to PostgreSQL, again as a no-op, and
// fails clearly on an unreachable database.
func TestMigrate(t *testing.T) {
	t.Parallel()
	u := pgtest.URL(t)
	for range 2 {
		out, errOut, err := runCLI(t, "migrate", "--database-url", u)
		if err != nil {
			t.Fatalf("migrate: %v\n%s", err, errOut)
		}
		if !strings.Contains(out, "up to date") {
			t.Errorf("migrate printed %q", out)
		}
	}
	if _, errOut, err := runCLI(t, "migrate"); err == nil || !strings.Contains(errOut, "database-url") {
		t.Errorf("migrate without a URL = %v, stderr %q; want an error naming --database-url", err, errOut)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var o, e syncBuffer
	err := cli.Run(ctx, []string{"migrate", "--database-url", "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=2"}, &o, &e)
	if err == nil || !strings.Contains(err.Error(), "postgres") {
		t.Errorf("migrate of an unreachable database = %v, want an error naming postgres", err)
	}
}
