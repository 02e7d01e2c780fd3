package app_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hookd/hookd/app"
	"github.com/hookd/hookd/hookdtest"
)

func TestRestartResumesPendingDelivery(t *testing.T) {
	t.Parallel()
	e := setup(t)
	r := hookdtest.NewReceiver(t)
	r.Respond(hookdtest.FailFirst(1, http.StatusServiceUnavailable))
	ep := e.endpoint(t, r.URL(), map[string]any{"retry": map[string]any{"max_attempts": 5, "initial_interval": 1, "max_interval": 1}})
	res := e.publish(t, "", "order.created", map[string]any{"n": 1})
	d := e.h.DeliveryFor(t, e.key, str(res, "id"), str(ep, "id"))
	e.h.WaitDelivery(t, e.key, str(d, "id"), 5*time.Second, func(d map[string]any) bool {
		return num(d, "attempt_count") == 1 && str(d, "status") == "pending"
	})
	r.NoMoreThan(t, 1, 0)

	e.h.Restart(t)
	reqs := r.Wait(t, 2, 5*time.Second)
	if reqs[1].Header.Get("Webhook-Id") != str(res, "id") {
		t.Errorf("after restart: webhook-id %q, want %q", reqs[1].Header.Get("Webhook-Id"), str(res, "id"))
	}
	d = e.h.WaitDeliveryStatus(t, e.key, str(d, "id"), "succeeded", 5*time.Second)
	if num(d, "attempt_count") != 2 {
		t.Errorf("attempt_count = %v, want 2 (one before the restart, one after)", d["attempt_count"])
	}
	r.NoMoreThan(t, 2, 200*time.Millisecond)
}

func TestGracefulShutdownFinishesAttempt(t *testing.T) {
	t.Parallel()
	e := setup(t)
	r := hookdtest.NewReceiver(t)
	r.Respond(hookdtest.Delay(500*time.Millisecond, hookdtest.Always(http.StatusOK)))
	ep := e.endpoint(t, r.URL(), nil)
	res := e.publish(t, "", "order.created", map[string]any{"n": 1})
	d := e.h.DeliveryFor(t, e.key, str(res, "id"), str(ep, "id"))
	arrived := r.Wait(t, 1, 5*time.Second)[0].Time

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.h.Stop(ctx); err != nil {
		t.Fatalf("Stop with an attempt in flight: %v", err)
	}
	if took := time.Since(arrived); took < 450*time.Millisecond {
		t.Errorf("Stop returned %s after the attempt started, before the receiver answered (500 ms)", took)
	}

	e.h.Restart(t)
	got := e.h.Get(t, e.key, "/api/deliveries/"+str(d, "id"))
	if str(got, "status") != "succeeded" || num(got, "attempt_count") != 1 {
		t.Errorf("after a graceful stop: delivery %s, want succeeded with 1 attempt", hookdtest.JSON(got))
	}
	r.NoMoreThan(t, 1, 300*time.Millisecond)
}

func TestStopPastDeadlineReleasesAttempt(t *testing.T) {
	t.Parallel()
	e := setup(t)
	r := hookdtest.NewReceiver(t)
	r.Respond(func(n int, req *http.Request) (int, http.Header, string) {
		if n == 1 { // hang until hookd gives up
			<-req.Context().Done()
			return http.StatusServiceUnavailable, nil, "abandoned"
		}
		return http.StatusOK, nil, "ok"
	})
	ep := e.endpoint(t, r.URL(), nil)
	res := e.publish(t, "", "order.created", map[string]any{"n": 1})
	d := e.h.DeliveryFor(t, e.key, str(res, "id"), str(ep, "id"))
	r.Wait(t, 1, 5*time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	stopping := time.Now()
	// Past the deadline Stop gives up on the attempt; it may say so, or not,
	// since nothing is lost.
	if err := e.h.Stop(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Stop past its deadline = %v, want nil or context.DeadlineExceeded", err)
	}
	if took := time.Since(stopping); took > 3*time.Second {
		t.Errorf("Stop with a 300 ms deadline took %s", took)
	}

	e.h.Restart(t)
	r.Wait(t, 2, 5*time.Second)
	got := e.h.WaitDeliveryStatus(t, e.key, str(d, "id"), "succeeded", 5*time.Second)
	if num(got, "attempt_count") != 1 {
		t.Errorf("attempt_count = %v, want 1: the attempt cut short by Stop does not count", got["attempt_count"])
	}
	r.NoMoreThan(t, 2, 200*time.Millisecond)
}

// child is a hookd running in another process on a data directory.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	base  string
}

// startChild runs this test binary as a hookd on dir (see runChild).
func startChild(t *testing.T, dir string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childDataDirEnv+"="+dir)
	cmd.Stderr = &bytes.Buffer{}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child hookd: %v", err)
	}
	c := &child{cmd: cmd, stdin: stdin}
	t.Cleanup(func() {
		c.kill()
		if t.Failed() {
			t.Logf("child hookd log:\n%s", cmd.Stderr)
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "addr ")
	if err != nil || !ok {
		t.Fatalf("child hookd: read address: %q, %v\n%s", line, err, cmd.Stderr)
	}
	c.base = "http://" + addr
	return c
}

// kill sends SIGKILL and waits for the process.
func (c *child) kill() {
	if c.cmd.ProcessState != nil {
		return
	}
	c.cmd.Process.Kill()
	c.cmd.Wait()
}

// do calls the child's API.
func (c *child) do(t *testing.T, method, path, key string, body any) (int, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, c.base+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func TestCrashReleasesLeases(t *testing.T) {
	t.Parallel()
	if hookdtest.OnPostgres() {
		t.Skip("embedded store only: on PostgreSQL a crashed instance's leases expire (cmd/hookd's TestScaleOutKill9)")
	}
	dir := t.TempDir()
	r := hookdtest.NewReceiver(t)
	r.Respond(func(n int, req *http.Request) (int, http.Header, string) {
		if n == 1 { // in flight when hookd is killed
			<-req.Context().Done()
			return http.StatusServiceUnavailable, nil, "abandoned"
		}
		return http.StatusOK, nil, "ok"
	})

	c := startChild(t, dir)
	status, org := c.do(t, http.MethodPost, "/api/organizations", hookdtest.AdminKey, map[string]any{"name": "crash"})
	if status != http.StatusCreated {
		t.Fatalf("create organization = %d %v", status, org)
	}
	status, ep := c.do(t, http.MethodPost, "/api/webhooks", hookdtest.AdminKey,
		map[string]any{"organization": str(org, "id"), "url": r.URL(), "events": []string{"*"}})
	if status != http.StatusCreated {
		t.Fatalf("create endpoint = %d %v", status, ep)
	}
	status, res := c.do(t, http.MethodPost, "/api/events", hookdtest.AdminKey,
		map[string]any{"organization": str(org, "id"), "type": "order.created", "data": map[string]any{"n": 1}})
	if status != http.StatusAccepted {
		t.Fatalf("publish = %d %v", status, res)
	}
	r.Wait(t, 1, 5*time.Second) // claimed, leased for AttemptTimeout + 30 s, in flight
	c.kill()

	start := time.Now()
	h := hookdtest.Start(t, func(cfg *app.Config) { cfg.DataDir = dir })
	reqs := r.Wait(t, 2, 5*time.Second)
	if took := reqs[1].Time.Sub(start); took > 3*time.Second {
		t.Errorf("the delivery leased by the killed process came back after %s, want at once", took)
	}
	if reqs[1].Header.Get("Webhook-Id") != str(res, "id") {
		t.Errorf("webhook-id = %q, want %q", reqs[1].Header.Get("Webhook-Id"), str(res, "id"))
	}
	d := h.DeliveryFor(t, h.AdminKey, str(res, "id"), str(ep, "id"))
	d = h.WaitDeliveryStatus(t, h.AdminKey, str(d, "id"), "succeeded", 5*time.Second)
	if num(d, "attempt_count") != 1 {
		t.Errorf("attempt_count = %v, want 1 (the killed attempt was never recorded)", d["attempt_count"])
	}
}
