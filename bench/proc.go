package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is a child process of the bench: a hookd instance or the receiver.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string // its stderr
	exited  chan struct{}
	waitErr error // set before exited closes

	url     string // from its banner
	pprof   string // base URL of /debug/pprof/, if announced
	version string // hookd's version, from its banner

	peakRSS int64   // VmHWM in bytes, read by stop
	cpu     float64 // CPU seconds, read by stop
}

// procSpec describes a process to start.
type procSpec struct {
	name    string
	bin     string
	args    []string
	env     []string // added to the bench's environment without HOOKD_* variables
	logPath string
	// banner parses the lines of the process's stdout until it returns true:
	// the process is ready.
	banner func(p *proc, line string) (ready bool)
}

// startProc starts a process and waits until spec.ready accepts a line of its
// stdout, it exits, or ctx ends.
func startProc(ctx context.Context, spec procSpec) (*proc, error) {
	logf, err := os.Create(spec.logPath)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.name, err)
	}
	defer logf.Close() // the child keeps its own descriptor
	cmd := exec.Command(spec.bin, spec.args...)
	cmd.Env = append(childEnv(), spec.env...)
	cmd.Stderr = logf
	setParentDeathSignal(cmd)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.name, err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s (%s): %w", spec.name, spec.bin, err)
	}
	p := &proc{name: spec.name, cmd: cmd, logPath: spec.logPath, exited: make(chan struct{})}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if spec.banner(p, sc.Text()) {
				close(ready)
				break
			}
		}
		io.Copy(io.Discard, stdout)
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	t := time.NewTimer(30 * time.Second)
	defer t.Stop()
	select {
	case <-ready:
		return p, nil
	case <-p.exited:
		return nil, fmt.Errorf("start %s: it exited (%v) before it was ready%s", spec.name, p.waitErr, logTail(spec.logPath))
	case <-t.C:
		p.kill()
		return nil, fmt.Errorf("start %s: not ready after 30s%s", spec.name, logTail(spec.logPath))
	case <-ctx.Done():
		p.kill()
		return nil, fmt.Errorf("start %s: %w", spec.name, ctx.Err())
	}
}

// childEnv is the bench's environment without HOOKD_* variables, so that
// every hookd it starts is configured by the bench's flags alone.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HOOKD_") {
			env = append(env, kv)
		}
	}
	return env
}

// kill ends the process at once and waits for it.
func (p *proc) kill() {
	p.cmd.Process.Kill()
	<-p.exited
}

// stop reads the process's peak RSS and CPU time, sends it SIGTERM and waits
// until it exits; after grace it kills it. It returns an error if the process
// had already exited or did not exit cleanly.
func (p *proc) stop(grace time.Duration) error {
	select {
	case <-p.exited:
		return fmt.Errorf("%s exited early: %v%s", p.name, p.waitErr, logTail(p.logPath))
	default:
	}
	if u, err := readUsage(p.cmd.Process.Pid); err == nil {
		p.peakRSS, p.cpu = u.peakRSS, u.cpu
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("stop %s: %w", p.name, err)
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.exited:
	case <-t.C:
		p.kill()
		return fmt.Errorf("stop %s: still running %s after SIGTERM; killed it", p.name, grace)
	}
	if p.waitErr != nil {
		return fmt.Errorf("%s exited with %v after SIGTERM%s", p.name, p.waitErr, logTail(p.logPath))
	}
	return nil
}

// logTail returns the last lines of a log file, formatted to end an error
// message ("" if there are none).
func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil || len(bytes.TrimSpace(b)) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 10 {
		lines = lines[len(lines)-10:]
	}
	return "; its last output (" + filepath.Base(path) + "):\n  " + strings.Join(lines, "\n  ")
}

// usage is a process's resource use so far.
type usage struct {
	rss     int64   // current resident set, bytes (VmRSS)
	peakRSS int64   // peak resident set, bytes (VmHWM)
	cpu     float64 // user + system CPU seconds
}

// clockTicks is the unit of utime and stime in /proc/<pid>/stat (USER_HZ,
// 100 on every Linux platform Go supports).
const clockTicks = 100

// readUsage reads a process's memory and CPU time from /proc (Linux only).
func readUsage(pid int) (usage, error) {
	var u usage
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, fmt.Errorf("read process status: %w", err)
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch k {
		case "VmRSS":
			u.rss = parseKB(v)
		case "VmHWM":
			u.peakRSS = parseKB(v)
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return u, fmt.Errorf("read process stat: %w", err)
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return u, errors.New("read process stat: unexpected format")
	}
	f := strings.Fields(string(stat[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return u, errors.New("read process stat: unexpected format")
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	u.cpu = float64(ut+st) / clockTicks
	return u, nil
}

// parseKB parses "  1234 kB" into bytes.
func parseKB(s string) int64 {
	f := strings.Fields(s)
	if len(f) == 0 {
		return 0
	}
	n, _ := strconv.ParseInt(f[0], 10, 64)
	return n << 10
}
