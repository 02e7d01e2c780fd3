package app_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hookd/hookd/app"
	"github.com/hookd/hookd/cli"
	"github.com/hookd/hookd/hookdtest"
)

// The server's timeouts and limits, each proven on a real hookd on 127.0.0.1
// by a client that crosses it and by one that stays just within it. Timeouts
// are configured short here; no assertion depends on how fast the machine is:
// a client that dribbles bytes can only be slower than planned, so it always
// outlasts the short timeout, and the generous one is minutes long.

// rawConn is a raw TCP connection to hookd, for requests net/http's client
// would not send (dribbled headers and bodies).
type rawConn struct {
	t    *testing.T
	conn net.Conn
	rd   *bufio.Reader
}

func dialRaw(t *testing.T, h *hookdtest.Hookd) *rawConn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(h.URL(), "http://"), 10*time.Second)
	if err != nil {
		t.Fatalf("dial hookd: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return &rawConn{t: t, conn: conn, rd: bufio.NewReader(conn)}
}

// write sends s at once.
func (c *rawConn) write(s string) error {
	c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := io.WriteString(c.conn, s)
	return err
}

// dribble sends parts one at a time, every interval, and stops at the first
// write error (the server closed the connection), which it returns.
func (c *rawConn) dribble(parts []string, interval time.Duration) error {
	for _, p := range parts {
		if err := c.write(p); err != nil {
			return err
		}
		time.Sleep(interval)
	}
	return nil
}

// response reads one answer, or returns the error that ended the connection
// first; it gives up after 30 s.
func (c *rawConn) response() (*http.Response, []byte, error) {
	c.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(c.rd, nil)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

// closedByServer waits up to 30 s for the server to close the connection and
// fails the test if it does not, or if it answers something first.
func (c *rawConn) closedByServer(what string) {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	got, err := io.ReadAll(c.rd)
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		c.t.Fatalf("%s: the server kept the connection open for 30 s", what)
	case len(got) > 0:
		c.t.Errorf("%s: the server answered %q before closing, want a plain close", what, got)
	}
}

// slowParts splits s into n pieces.
func slowParts(s string, n int) []string {
	var parts []string
	size := (len(s) + n - 1) / n
	for len(s) > size {
		parts, s = append(parts, s[:size]), s[size:]
	}
	return append(parts, s)
}

// TestReadHeaderTimeout: a client dribbling its headers (slow loris) for 2 s
// is cut off by a 500 ms read-header timeout without an answer, and served
// under a generous one.
func TestReadHeaderTimeout(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		timeout time.Duration
		served  bool
	}{
		{"cut off", 500 * time.Millisecond, false},
		{"within", 5 * time.Minute, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			h := hookdtest.Start(t, func(cfg *app.Config) {
				cfg.ReadHeaderTimeout, cfg.ReadTimeout = c.timeout, 10*time.Minute
			})
			conn := dialRaw(t, h)
			var lines []string
			for i := range 20 { // 20 lines 100 ms apart: 2 s at least
				lines = append(lines, fmt.Sprintf("X-Slow-%d: loris\r\n", i))
			}
			start := time.Now()
			werr := conn.dribble(append([]string{"GET /api/health HTTP/1.1\r\nHost: hookd\r\n"}, append(lines, "\r\n")...), 100*time.Millisecond)
			if !c.served {
				conn.closedByServer("headers dribbled past the read-header timeout")
				if took := time.Since(start); took > 5*time.Minute {
					t.Errorf("closed after %s", took)
				}
				return
			}
			if werr != nil {
				t.Fatalf("dribbling headers within the timeout: %v", werr)
			}
			resp, body, err := conn.response()
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("headers dribbled within the timeout: %v %v %s, want 200", err, resp, body)
			}
		})
	}
}

// TestReadTimeout: a body dribbled over 2.6 s answers 408 request_timeout under
// a 1 s read timeout (and nothing is stored), and is accepted under a generous
// one.
func TestReadTimeout(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		timeout time.Duration
		status  int
		code    string
	}{
		{"cut off", time.Second, http.StatusRequestTimeout, "request_timeout"},
		{"within", 5 * time.Minute, http.StatusAccepted, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := setup(t, func(cfg *app.Config) {
				cfg.ReadHeaderTimeout, cfg.ReadTimeout = 500*time.Millisecond, c.timeout
			})
			body := `{"id":"slow-body","type":"slow.body","data":{}}`
			conn := dialRaw(t, e.h)
			head := fmt.Sprintf("POST /api/events HTTP/1.1\r\nHost: hookd\r\nAuthorization: Bearer %s\r\n"+
				"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n", e.key, len(body))
			if err := conn.write(head); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- conn.dribble(slowParts(body, 26), 100*time.Millisecond) }() // 2.6 s at least
			resp, answer, err := conn.response()
			if err != nil {
				t.Fatalf("read the answer: %v", err)
			}
			var m map[string]any
			json.Unmarshal(answer, &m)
			if resp.StatusCode != c.status || (c.code != "" && errorCode(m) != c.code) {
				t.Fatalf("body dribbled over 2.6 s with read timeout %s = %d %s, want %d %s", c.timeout, resp.StatusCode, answer, c.status, c.code)
			}
			if c.code != "" {
				conn.closedByServer("after the 408")
				conn.conn.Close() // ends the dribble
			}
			<-done
			status, _ := e.h.Do(t, http.MethodGet, "/api/events/slow-body", e.key, nil)
			if stored := status == http.StatusOK; stored != (c.code == "") {
				t.Errorf("GET the event after %d = %d", resp.StatusCode, status)
			}
		})
	}
}

// TestIdleTimeout: a keep-alive connection idle past a 500 ms idle timeout is
// closed; under a generous one it serves a second request after 1.5 s idle.
func TestIdleTimeout(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		timeout time.Duration
		kept    bool
	}{
		{"closed", 500 * time.Millisecond, false},
		{"kept", 5 * time.Minute, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			h := hookdtest.Start(t, func(cfg *app.Config) { cfg.IdleTimeout = c.timeout })
			conn := dialRaw(t, h)
			const get = "GET /api/health HTTP/1.1\r\nHost: hookd\r\n\r\n"
			if err := conn.write(get); err != nil {
				t.Fatal(err)
			}
			if resp, body, err := conn.response(); err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("first request: %v %v %s", err, resp, body)
			}
			if !c.kept {
				conn.closedByServer("idle past the idle timeout")
				return
			}
			time.Sleep(1500 * time.Millisecond) // the idleness under test
			if err := conn.write(get); err != nil {
				t.Fatalf("second request after 1.5 s idle: %v", err)
			}
			if resp, body, err := conn.response(); err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("second request after 1.5 s idle: %v %v %s", err, resp, body)
			}
		})
	}
}

// TestWriteTimeout: POST /api/webhooks/{id}/test to a receiver answering after
// 4 s gets no answer under a 3 s write timeout (the connection is closed), and
// its answer under the default one, which exceeds the attempt timeout.
func TestWriteTimeout(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		timeout time.Duration // 0: the default
	}{
		{"cut off", 3 * time.Second},
		{"default", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := setup(t, func(cfg *app.Config) {
				cfg.Engine.AttemptTimeout, cfg.WriteTimeout = 30*time.Second, c.timeout
			})
			r := hookdtest.NewReceiver(t)
			r.Respond(hookdtest.Delay(4*time.Second, hookdtest.Always(http.StatusOK)))
			ep := e.endpoint(t, r.URL(), nil)
			req, err := http.NewRequest(http.MethodPost, e.h.URL()+"/api/webhooks/"+str(ep, "id")+"/test", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+e.key)
			client := &http.Client{Transport: &http.Transport{}, Timeout: 2 * time.Minute}
			defer client.CloseIdleConnections()
			resp, err := client.Do(req)
			if c.timeout > 0 {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("a test attempt of 4 s under a %s write timeout answered %d, want the connection closed", c.timeout, resp.StatusCode)
				}
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !strings.Contains(err.Error(), "EOF") && !strings.Contains(err.Error(), "reset") {
					t.Errorf("error = %v, want the connection closed", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("a test attempt of 4 s under the default write timeout: %v", err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("test attempt = %d, want 200", resp.StatusCode)
			}
		})
	}
}

// TestHeaderLimit: headers past the limit answer 431 (JSON header_too_large up to
// twice the limit, net/http's own 431 beyond) before authentication, and store
// nothing; headers within it are served.
func TestHeaderLimit(t *testing.T) {
	t.Parallel()
	const limit = 8 << 10
	e := setup(t, func(cfg *app.Config) { cfg.MaxHeaderBytes = limit })
	for _, c := range []struct {
		name   string
		method string
		path   string
		pad    int // bytes of an X-Pad header
		key    bool
		status int
		json   bool // a JSON header_too_large answer
	}{
		{"within", http.MethodGet, "/api/health", limit - 1024, false, http.StatusOK, false},
		{"over", http.MethodGet, "/api/health", limit + 1, false, http.StatusRequestHeaderFieldsTooLarge, true},
		{"over, authenticated publish", http.MethodPost, "/api/events", limit + 1, true, http.StatusRequestHeaderFieldsTooLarge, true},
		{"over, unauthenticated", http.MethodGet, "/api/webhooks", 2 * limit, false, http.StatusRequestHeaderFieldsTooLarge, true},
		{"far over", http.MethodGet, "/api/health", 16 * limit, false, http.StatusRequestHeaderFieldsTooLarge, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			conn := dialRaw(t, e.h)
			var b strings.Builder
			fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: hookd\r\nX-Pad: %s\r\n", c.method, c.path, strings.Repeat("p", c.pad))
			body := fmt.Sprintf(`{"id":"pad-%d","type":"pad.test","data":{}}`, c.pad)
			if c.key {
				fmt.Fprintf(&b, "Authorization: Bearer %s\r\n", e.key)
			}
			if c.method == http.MethodPost {
				fmt.Fprintf(&b, "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
			} else {
				b.WriteString("\r\n")
			}
			// Past what net/http reads, the server stops reading: send while
			// reading the answer.
			sent := make(chan error, 1)
			go func() { sent <- conn.write(b.String()) }()
			resp, answer, err := conn.response()
			conn.conn.Close()
			if werr := <-sent; werr != nil && c.json {
				t.Errorf("send: %v", werr)
			}
			if err != nil && !c.json && c.status != http.StatusOK && strings.Contains(err.Error(), "reset") {
				// net/http answered and closed at once; the reset overtook the answer.
				t.Logf("%d-byte header: connection reset before the answer was read: %v", c.pad, err)
				return
			}
			if err != nil {
				t.Fatalf("read the answer: %v", err)
			}
			if resp.StatusCode != c.status {
				t.Fatalf("%d-byte header = %d %s, want %d", c.pad, resp.StatusCode, answer, c.status)
			}
			if c.json {
				var m map[string]any
				if err := json.Unmarshal(answer, &m); err != nil || errorCode(m) != "header_too_large" || str(obj(m, "error"), "message") == "" {
					t.Errorf("answer %s, want a JSON header_too_large error", answer)
				}
			}
			if c.method == http.MethodPost {
				if status, _ := e.h.Do(t, http.MethodGet, fmt.Sprintf("/api/events/pad-%d", c.pad), e.key, nil); status != http.StatusNotFound {
					t.Errorf("GET the event of a rejected request = %d, want 404", status)
				}
			}
		})
	}
}

// TestBodyLimit: a body one byte past the limit answers 413 payload_too_large
// (SPEC §1) on every kind of request, with or without a Content-Length, and
// stores nothing; a body at the limit is accepted.
func TestBodyLimit(t *testing.T) {
	t.Parallel()
	const limit = 1024
	e := setup(t, func(cfg *app.Config) { cfg.MaxBodyBytes = limit })
	// event returns an event body of exactly size bytes.
	event := func(id string, size int) []byte {
		b := fmt.Appendf(nil, `{"id":%q,"type":"limit.test","data":{"pad":""}}`, id)
		return fmt.Appendf(nil, `{"id":%q,"type":"limit.test","data":{"pad":%q}}`, id, strings.Repeat("p", size-len(b)))
	}
	batch := func(id string, size int) []byte {
		b := fmt.Appendf(nil, `{"events":[{"id":%q,"type":"limit.test","data":{"pad":""}}]}`, id)
		return fmt.Appendf(nil, `{"events":[{"id":%q,"type":"limit.test","data":{"pad":%q}}]}`, id, strings.Repeat("p", size-len(b)))
	}
	for _, c := range []struct {
		name    string
		path    string
		body    []byte
		chunked bool // no Content-Length
		status  int
		stored  string // an event id stored by the request, or not stored if it failed
	}{
		{"event at the limit", "/api/events", event("at", limit), false, http.StatusAccepted, "at"},
		{"event past the limit", "/api/events", event("past", limit+1), false, http.StatusRequestEntityTooLarge, "past"},
		{"event past the limit, chunked", "/api/events", event("past-chunked", limit+1), true, http.StatusRequestEntityTooLarge, "past-chunked"},
		{"batch at the limit", "/api/events/batch", batch("batch-at", limit), false, http.StatusAccepted, "batch-at"},
		{"batch past the limit", "/api/events/batch", batch("batch-past", limit+1), false, http.StatusRequestEntityTooLarge, "batch-past"},
		{"endpoint past the limit", "/api/webhooks", fmt.Appendf(nil, `{"url":"http://127.0.0.1:1/","description":%q}`, strings.Repeat("d", limit)), false,
			http.StatusRequestEntityTooLarge, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if c.status == http.StatusAccepted && len(c.body) != limit {
				t.Fatalf("test body is %d bytes, want %d", len(c.body), limit)
			}
			var rd io.Reader = bytes.NewReader(c.body)
			if c.chunked {
				rd = io.MultiReader(rd) // hides the length: sent chunked
			}
			req, err := http.NewRequest(http.MethodPost, e.h.URL()+c.path, rd)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+e.key)
			status, _, answer := e.h.Send(t, req)
			if status != c.status {
				t.Fatalf("POST %s with %d bytes = %d %s, want %d", c.path, len(c.body), status, answer, c.status)
			}
			if c.status == http.StatusRequestEntityTooLarge {
				var m map[string]any
				if err := json.Unmarshal(answer, &m); err != nil || errorCode(m) != "payload_too_large" || !strings.Contains(str(obj(m, "error"), "message"), strconv.Itoa(limit)) {
					t.Errorf("answer %s, want SPEC's error shape with code payload_too_large naming the limit", answer)
				}
			}
			if c.path == "/api/webhooks" {
				if eps := hookdtest.Items(e.h.Get(t, e.key, "/api/webhooks")); len(eps) != 0 {
					t.Errorf("an endpoint past the body limit was stored: %v", eps)
				}
			}
			if c.stored != "" {
				status, _ := e.h.Do(t, http.MethodGet, "/api/events/"+c.stored, e.key, nil)
				if want := map[bool]int{true: 200, false: 404}[c.status == http.StatusAccepted]; status != want {
					t.Errorf("GET /api/events/%s = %d, want %d", c.stored, status, want)
				}
			}
		})
	}
}

// TestBatchLimit: a batch of 1,000 events (SPEC §4) is accepted; one of 1,001
// answers 400 invalid_field naming "events" and stores none of them.
func TestBatchLimit(t *testing.T) {
	t.Parallel()
	e := setup(t)
	for _, c := range []struct {
		n      int
		status int
	}{{1000, http.StatusAccepted}, {1001, http.StatusBadRequest}} {
		evs := make([]map[string]any, c.n)
		for i := range evs {
			evs[i] = map[string]any{"id": fmt.Sprintf("b%d-%d", c.n, i), "type": "batch.limit", "data": map[string]any{}}
		}
		status, m := e.h.Do(t, http.MethodPost, "/api/events/batch", e.key, map[string]any{"events": evs})
		if status != c.status {
			t.Fatalf("batch of %d = %d %v, want %d", c.n, status, m, c.status)
		}
		if c.status == http.StatusAccepted {
			if got := len(hookdtest.Items(m)); got != c.n {
				t.Errorf("batch of %d answered %d results", c.n, got)
			}
			continue
		}
		if errorCode(m) != "invalid_field" || errorField(m) != "events" {
			t.Errorf("batch of %d = %v, want invalid_field naming events", c.n, m)
		}
		for _, i := range []int{0, c.n - 1} {
			if status, _ := e.h.Do(t, http.MethodGet, fmt.Sprintf("/api/events/b%d-%d", c.n, i), e.key, nil); status != http.StatusNotFound {
				t.Errorf("event %d of the rejected batch: GET = %d, want 404", i, status)
			}
		}
	}
}

// TestKeyRateLimit: each API key has a token bucket per budget (management,
// publishing): past its burst a key gets 429 rate_limited with Retry-After and
// X-RateLimit headers, other keys and the other budget are unaffected, and
// after Retry-After seconds the key passes again.
func TestKeyRateLimit(t *testing.T) {
	t.Parallel()
	list := func(e env, key string) (int, http.Header, []byte) {
		return e.h.Raw(t, http.MethodGet, "/api/webhooks", key, nil, nil)
	}
	publish := func(e env, key string) (int, http.Header, []byte) {
		return e.h.Raw(t, http.MethodPost, "/api/events", key, nil, []byte(`{"type":"rate.test","data":{}}`))
	}
	const rate = 0.5
	for _, c := range []struct {
		name         string
		burst        int
		limited      func(env, string) (int, http.Header, []byte)
		limitedOK    int
		other        func(env, string) (int, http.Header, []byte) // the other budget
		otherOK      int
		configureKey func(*app.Config)
	}{
		{"management", 5, list, http.StatusOK, publish, http.StatusAccepted,
			func(c *app.Config) { c.KeyRateLimit, c.KeyRateBurst = rate, 5 }},
		{"publishing", 3, publish, http.StatusAccepted, list, http.StatusOK,
			func(c *app.Config) { c.PublishRateLimit, c.PublishRateBurst = rate, 3 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := setup(t, c.configureKey)
			_, otherKey := e.h.CreateOrg(t)
			start := time.Now()
			ok := 0
			var header http.Header
			var answer []byte
			for {
				status, h, body := c.limited(e, e.key)
				if status == http.StatusTooManyRequests {
					header, answer = h, body
					break
				}
				if status != c.limitedOK {
					t.Fatalf("request %d = %d %s, want %d", ok+1, status, body, c.limitedOK)
				}
				ok++
				if want := strconv.Itoa(c.burst); h.Get("X-RateLimit-Limit") != want {
					t.Errorf("X-RateLimit-Limit = %q, want %q", h.Get("X-RateLimit-Limit"), want)
				}
				if ok == 1 && h.Get("X-RateLimit-Remaining") != strconv.Itoa(c.burst-1) {
					t.Errorf("first request: X-RateLimit-Remaining = %q, want %d", h.Get("X-RateLimit-Remaining"), c.burst-1)
				}
				if ok > c.burst+100 {
					t.Fatalf("%d requests passed; the bucket of burst %d never ran out", ok, c.burst)
				}
			}
			// Tokens come back at rate per second while the loop runs.
			if most := c.burst + int(rate*time.Since(start).Seconds()) + 1; ok < c.burst || ok > most {
				t.Errorf("%d requests passed before the first 429, want %d to %d", ok, c.burst, most)
			}
			var m map[string]any
			if err := json.Unmarshal(answer, &m); err != nil || errorCode(m) != "rate_limited" || str(obj(m, "error"), "message") == "" {
				t.Errorf("429 answer %s, want SPEC's error shape with code rate_limited", answer)
			}
			retry, err := strconv.Atoi(header.Get("Retry-After"))
			if err != nil || retry < 1 || retry > int(1/rate)+1 {
				t.Errorf("Retry-After = %q, want whole seconds from 1 to %d", header.Get("Retry-After"), int(1/rate)+1)
			}
			if header.Get("X-RateLimit-Remaining") != "0" || header.Get("X-RateLimit-Limit") != strconv.Itoa(c.burst) {
				t.Errorf("429 X-RateLimit-Limit/Remaining = %q/%q, want %d/0", header.Get("X-RateLimit-Limit"), header.Get("X-RateLimit-Remaining"), c.burst)
			}
			if status, _, body := c.limited(e, otherKey); status != c.limitedOK {
				t.Errorf("another key while this one is limited = %d %s, want %d", status, body, c.limitedOK)
			}
			if status, _, body := c.other(e, e.key); status != c.otherOK {
				t.Errorf("the same key on the other budget = %d %s, want %d", status, body, c.otherOK)
			}
			time.Sleep(time.Duration(retry) * time.Second) // what Retry-After asks
			if status, _, body := c.limited(e, e.key); status != c.limitedOK {
				t.Errorf("after waiting Retry-After (%d s) = %d %s, want %d", retry, status, body, c.limitedOK)
			}
		})
	}
	t.Run("defaults", func(t *testing.T) {
		t.Parallel()
		e := setup(t)
		_, h, _ := list(e, e.key)
		if got := h.Get("X-RateLimit-Limit"); got != strconv.Itoa(2*app.DefaultKeyRateLimit) {
			t.Errorf("default management bucket: X-RateLimit-Limit = %q, want %d", got, 2*app.DefaultKeyRateLimit)
		}
		if _, h, _ := publish(e, e.key); h.Get("X-RateLimit-Limit") != "" {
			t.Errorf("publishing is limited by default: X-RateLimit-Limit = %q", h.Get("X-RateLimit-Limit"))
		}
	})
	t.Run("disabled", func(t *testing.T) {
		t.Parallel()
		e := setup(t, func(c *app.Config) { c.KeyRateLimit = -1 })
		if _, h, _ := list(e, e.key); h.Get("X-RateLimit-Limit") != "" {
			t.Errorf("a negative KeyRateLimit still limits: X-RateLimit-Limit = %q", h.Get("X-RateLimit-Limit"))
		}
	})
}

// TestLimitFlags: serve refuses timeouts and limits that cannot work, naming
// the flag.
func TestLimitFlags(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--read-header-timeout", "0s"}, "--read-header-timeout"},
		{[]string{"--read-timeout=-1s"}, "--read-timeout"},
		{[]string{"--idle-timeout", "0s"}, "--idle-timeout"},
		{[]string{"--max-header-size", "0"}, "--max-header-size"},
		{[]string{"--max-body-size", "0"}, "--max-body-size"},
		{[]string{"--read-header-timeout", "2m", "--read-timeout", "1m"}, "--read-header-timeout"},
		{[]string{"--write-timeout", "15s"}, "--write-timeout"}, // not above the 15 s attempt timeout
		{[]string{"--attempt-timeout", "1m", "--write-timeout", "30s"}, "--write-timeout"},
		{[]string{"--api-rate-limit=-1"}, "rate"},
		{[]string{"--publish-rate-burst=-5"}, "rate"},
		{[]string{"--audit-failure-rate=-1"}, "rate"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			t.Parallel()
			dataDir := filepath.Join(t.TempDir(), "data")
			var out, errOut bytes.Buffer
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // were it to start, it would stop at once
			args := append([]string{"serve", "--data-dir", dataDir, "--addr", "127.0.0.1:0"}, c.args...)
			err := cli.Run(ctx, args, &out, &errOut)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("serve %s = %v, want an error naming %s", strings.Join(c.args, " "), err, c.want)
			}
			if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
				t.Errorf("serve %s created the data dir despite the bad flags", strings.Join(c.args, " "))
			}
		})
	}
}
