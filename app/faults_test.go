package app_test

// The Faults suite (issue 7): receivers that misbehave — fail a fraction of
// requests, hang past the attempt timeout, reset connections, answer byte by
// byte, answer with endless bodies, redirect — and (faults_store_test.go) a
// store that refuses writes. In every case an endpoint beside the faulty one
// keeps receiving promptly, the fault is reported in the delivery log, memory
// stays bounded and delivery resumes when the fault heals.
//
// The short version runs in make test; HOOKD_LONG=1 runs the long one (more
// events, faults held longer).

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/app"
	"github.com/hookd/hookd/hookdtest"
)

// faultsLong reports whether the long versions of the fault suites run.
func faultsLong() bool { return os.Getenv("HOOKD_LONG") != "" }

// fault is how a faultReceiver misbehaves until it heals.
type fault string

const (
	faultFlaky       fault = "flaky"        // 30 % of requests answer 500, for good
	faultHang        fault = "hang"         // no answer: the request hangs past the attempt timeout
	faultReset       fault = "reset"        // the connection is reset (RST) once the request is read
	faultSlowHeaders fault = "slow-headers" // the answer comes a byte every 100 ms, status line included
	faultSlowBody    fault = "slow-body-2xx"
	faultHuge        fault = "huge-body-500" // 500 with an endless body
	faultHuge2xx     fault = "huge-body-2xx" // 200 with an endless body
	faultRedirect    fault = "redirect"      // 301/302/303/307/308 to a trap that must never be reached
)

// hugeCap bounds what a huge answer writes, should hookd read on and on.
const hugeCap = 4 << 30

// faultReceiver is a webhook receiver on 127.0.0.1 that misbehaves in one way
// until Heal, and then answers 200 "ok". It counts what it did. Safe for
// concurrent use.
type faultReceiver struct {
	srv   *httptest.Server
	fault fault
	trap  *hookdtest.Receiver // where redirects point
	stop  chan struct{}       // closed when the test ends: hung answers give up

	healed atomic.Bool

	mu         sync.Mutex
	rng        *rand.Rand
	requests   int
	faults     int            // requests misbehaved on
	ok         map[string]int // webhook-id → 2xx answers
	maxWritten int64          // most body bytes one huge answer got written before hookd hung up
}

func newFaultReceiver(t *testing.T, f fault) *faultReceiver {
	t.Helper()
	r := &faultReceiver{fault: f, stop: make(chan struct{}), ok: map[string]int{},
		rng: rand.New(rand.NewPCG(7, 7))} // fixed: the same decisions every run
	if f == faultRedirect {
		r.trap = hookdtest.NewReceiver(t)
	}
	r.srv = httptest.NewServer(r)
	t.Cleanup(func() {
		close(r.stop)
		r.srv.Close()
	})
	return r
}

// URL returns the receiver's URL.
func (r *faultReceiver) URL() string { return r.srv.URL + "/hook" }

// Heal makes every later request answer 200 "ok".
func (r *faultReceiver) Heal() { r.healed.Store(true) }

// counts returns the requests received, the faults injected and how many
// distinct events got a 2xx answer.
func (r *faultReceiver) counts() (requests, faults, okEvents int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests, r.faults, len(r.ok)
}

func (r *faultReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if _, err := io.Copy(io.Discard, req.Body); err != nil {
		return
	}
	id := req.Header.Get("Webhook-Id")
	r.mu.Lock()
	r.requests++
	n := r.requests
	misbehave := !r.healed.Load()
	if misbehave && r.fault == faultFlaky {
		misbehave = r.rng.Float64() < 0.3
	}
	if misbehave {
		r.faults++
	}
	if !misbehave || r.fault == faultSlowBody || r.fault == faultHuge2xx {
		r.ok[id]++ // a 2xx answer (those two faults answer 200 before misbehaving)
	}
	r.mu.Unlock()
	if !misbehave {
		io.WriteString(w, "ok")
		return
	}
	switch r.fault {
	case faultFlaky:
		http.Error(w, "flaky failure", http.StatusInternalServerError)
	case faultHang:
		select {
		case <-req.Context().Done(): // hookd gave up
		case <-r.stop:
		}
	case faultReset:
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		conn.(*net.TCPConn).SetLinger(0) // close sends RST
		conn.Close()
	case faultSlowHeaders:
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		defer conn.Close()
		r.dribble(buf.Writer, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok")
	case faultSlowBody:
		// 200 at once, then a body that never ends: a byte every 100 ms.
		rc := http.NewResponseController(w)
		w.WriteHeader(http.StatusOK)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			if _, err := io.WriteString(w, "x"); err != nil || rc.Flush() != nil {
				return
			}
			select {
			case <-tick.C:
			case <-req.Context().Done(): // hookd hung up
				return
			case <-r.stop:
				return
			}
		}
	case faultHuge, faultHuge2xx:
		status := http.StatusInternalServerError
		if r.fault == faultHuge2xx {
			status = http.StatusOK
		}
		w.WriteHeader(status)
		chunk := []byte(strings.Repeat("x", 32<<10))
		var written int64
		for written < hugeCap {
			n, err := w.Write(chunk)
			written += int64(n)
			if err != nil {
				break // hookd hung up
			}
		}
		r.mu.Lock()
		r.maxWritten = max(r.maxWritten, written)
		r.mu.Unlock()
	case faultRedirect:
		codes := []int{http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
			http.StatusTemporaryRedirect, http.StatusPermanentRedirect}
		http.Redirect(w, req, r.trap.URL()+"/followed", codes[n%len(codes)])
	}
}

// dribble writes s to w a byte every 100 ms until it is written, a write
// fails (hookd hung up) or the test ends.
func (r *faultReceiver) dribble(w *bufio.Writer, s string) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for i := range len(s) {
		if w.WriteByte(s[i]) != nil || w.Flush() != nil {
			return
		}
		select {
		case <-tick.C:
		case <-r.stop:
			return
		}
	}
}

// memPeak samples the heap until stopped and remembers the peak.
type memPeak struct {
	stop, done chan struct{}
	base, peak uint64 // HeapInuse bytes
}

func startMemPeak() *memPeak {
	m := &memPeak{stop: make(chan struct{}), done: make(chan struct{})}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.base, m.peak = ms.HeapInuse, ms.HeapInuse
	go func() {
		defer close(m.done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-m.stop:
				return
			case <-tick.C:
			}
			runtime.ReadMemStats(&ms)
			m.peak = max(m.peak, ms.HeapInuse)
		}
	}()
	return m
}

// Stop ends the sampling and returns the heap in use at the start and its peak.
func (m *memPeak) Stop() (base, peak uint64) {
	close(m.stop)
	<-m.done
	return m.base, m.peak
}

// faultCase is one misbehaving receiver and what the delivery log must show.
type faultCase struct {
	fault fault
	// events is how many events the case publishes (short version).
	events int
	// heals: the fault stops once every delivery was attempted at least once
	// (the other faults deliver while faulty).
	heals bool
	// errWant is a piece of the error of every attempt the fault answered.
	errWant string
	// statusWant is those attempts' response_status (0: none).
	statusWant func(status int) bool
	// check judges one faulty attempt further ("" if it is right).
	check func(a map[string]any) string
}

func statusIs(want int) func(int) bool { return func(s int) bool { return s == want } }

// faultCases are the receiver faults, all run at once against one hookd.
var faultCases = []faultCase{
	{fault: faultFlaky, events: 40, errWant: "the endpoint answered 500 Internal Server Error",
		statusWant: statusIs(500), check: bodyIs("flaky failure\n")},
	{fault: faultHang, events: 10, heals: true, errWant: "timed out after", statusWant: statusIs(0)},
	{fault: faultReset, events: 10, heals: true, errWant: "request failed: ", statusWant: statusIs(0)},
	{fault: faultSlowHeaders, events: 10, heals: true, errWant: "timed out after", statusWant: statusIs(0)},
	// 200 came at once, so the attempt succeeded; the body is read until
	// the attempt timeout, and the log says it was cut.
	{fault: faultSlowBody, events: 5, statusWant: statusIs(200), check: func(a map[string]any) string {
		if b := str(a, "response_body"); !strings.HasPrefix(b, "xx") ||
			!strings.Contains(b, "[hookd: reading the response failed: context deadline exceeded]") {
			return fmt.Sprintf("response_body %q: want the bytes that came and a note that reading was cut", b)
		}
		return ""
	}},
	{fault: faultHuge, events: 10, heals: true, errWant: "the endpoint answered 500 Internal Server Error",
		statusWant: statusIs(500), check: bodyIs(strings.Repeat("x", hookd.MaxResponseExcerpt))},
	{fault: faultHuge2xx, events: 10, statusWant: statusIs(200), check: bodyIs(strings.Repeat("x", hookd.MaxResponseExcerpt))},
	{fault: faultRedirect, events: 10, heals: true, errWant: "; redirects are not followed",
		statusWant: func(s int) bool { return s >= 301 && s <= 308 }, check: func(a map[string]any) string {
			if e := str(a, "error"); !strings.HasPrefix(e, "the endpoint answered 30") {
				return fmt.Sprintf("error %q does not name the 3xx answer", e)
			}
			return ""
		}},
}

func bodyIs(want string) func(map[string]any) string {
	return func(a map[string]any) string {
		if b := str(a, "response_body"); b != want {
			return fmt.Sprintf("response_body has %d bytes (%.40q…), want %d (%.40q…)", len(b), b, len(want), want)
		}
		return ""
	}
}

// faultAttemptTimeout is the attempt timeout of the receiver fault suite: a
// healthy endpoint's deliveries must arrive sooner than that, so that they
// cannot have waited for a hung attempt.
const faultAttemptTimeout = 4 * time.Second

// TestFaultsReceivers runs every receiver fault at once against one hookd,
// each with a healthy endpoint subscribed to the same events beside it, and
// checks that the healthy endpoints get every event promptly, that every
// attempt the fault answered is in the delivery log with a clear error and
// status, that what hookd keeps and reads of an answer is bounded, that no
// redirect is followed, and that every delivery succeeds once the fault heals.
func TestFaultsReceivers(t *testing.T) {
	t.Parallel()
	e := setup(t, func(c *app.Config) {
		c.Engine.AttemptTimeout = faultAttemptTimeout
		c.KeyRateLimit = -1 // the suite reads every delivery's log, faster than a client would
	})
	scale, hold := 1, time.Duration(0)
	if faultsLong() {
		scale, hold = 10, 10*time.Second
	}
	mem := startMemPeak()
	var (
		mu                                    sync.Mutex
		faults, deliveries, attemptsN, events int
		worstHealthy                          time.Duration
		maxWritten                            int64
	)
	var wg sync.WaitGroup
	for _, fc := range faultCases {
		wg.Go(func() {
			t.Run(string(fc.fault), func(t *testing.T) {
				st := runFaultCase(t, e, fc, fc.events*scale, hold)
				mu.Lock()
				defer mu.Unlock()
				faults += st.faults
				deliveries += st.deliveries
				attemptsN += st.attempts
				events += fc.events * scale
				worstHealthy = max(worstHealthy, st.worstHealthy)
				maxWritten = max(maxWritten, st.maxWritten)
			})
		})
	}
	wg.Wait()
	base, peak := mem.Stop()
	t.Logf("receiver faults: %d cases, %d events, %d faults injected, %d deliveries, %d attempts; "+
		"slowest healthy delivery %s; most bytes of one endless answer written before hookd hung up %d KiB; "+
		"heap in use %d MiB at start, peak %d MiB",
		len(faultCases), events, faults, deliveries, attemptsN, worstHealthy.Round(time.Millisecond),
		maxWritten>>10, base>>20, peak>>20)
	// hookd reads at most an excerpt and a bounded drain of each answer: the
	// endless answers (gigabytes, had it read on) leave the heap flat.
	if limit := base + 256<<20; peak > limit {
		t.Errorf("heap in use peaked at %d MiB (from %d MiB): hookd held on to what receivers sent", peak>>20, base>>20)
	}
}

// faultStats is what one fault case did.
type faultStats struct {
	faults, deliveries, attempts int
	worstHealthy                 time.Duration
	maxWritten                   int64
}

func runFaultCase(t *testing.T, e env, fc faultCase, events int, hold time.Duration) faultStats {
	typ := "fault." + string(fc.fault)
	bad := newFaultReceiver(t, fc.fault)
	healthy := hookdtest.NewReceiver(t)
	retry := map[string]any{"max_attempts": hookd.MaxRetryAttempts, "initial_interval": 0.1, "max_interval": 0.5}
	badEp := e.endpoint(t, bad.URL(), map[string]any{"events": []string{typ}, "retry": retry})
	e.endpoint(t, healthy.URL(), map[string]any{"events": []string{typ}})

	published := map[string]time.Time{}
	for i := range events {
		start := time.Now()
		res := e.publish(t, "", typ, map[string]any{"n": i})
		published[str(res, "id")] = start
	}

	// The healthy endpoint gets every event, each sooner than one attempt
	// timeout: it never waited for the faulty endpoint's attempts.
	var worst time.Duration
	got := map[string]bool{}
	for _, req := range healthy.Wait(t, events, 30*time.Second) {
		id := req.Header.Get("Webhook-Id")
		start, ok := published[id]
		if !ok {
			t.Errorf("healthy endpoint got unknown event %q", id)
			continue
		}
		got[id] = true
		worst = max(worst, req.Time.Sub(start))
	}
	if len(got) != events {
		t.Errorf("healthy endpoint got %d distinct events, want %d", len(got), events)
	}
	if worst >= faultAttemptTimeout {
		t.Errorf("a healthy delivery took %s, more than the attempt timeout %s: it waited behind the %s endpoint",
			worst, faultAttemptTimeout, fc.fault)
	}

	list := func() []map[string]any {
		return hookdtest.Items(e.h.Get(t, e.key, "/api/deliveries?limit=500&webhook="+url.QueryEscape(str(badEp, "id"))))
	}
	if fc.heals {
		// The fault holds until every delivery was attempted (and failed) at
		// least once, and then for hold.
		waitFor(t, 60*time.Second, "every delivery to the "+string(fc.fault)+" endpoint attempted", func() bool {
			ds := list()
			if len(ds) != events {
				return false
			}
			for _, d := range ds {
				if num(d, "attempt_count") < 1 {
					return false
				}
			}
			return true
		})
		time.Sleep(hold)
		if _, _, ok := bad.counts(); ok != 0 {
			t.Errorf("%d events got a 2xx answer before the receiver healed", ok)
		}
		bad.Heal()
	}
	waitFor(t, 60*time.Second, "every delivery to the "+string(fc.fault)+" endpoint succeeded", func() bool {
		for _, d := range list() {
			if str(d, "status") != "succeeded" {
				return false
			}
		}
		return true
	})

	// The log: every attempt but the last is the fault, with its error and
	// status; the last is a success.
	st := faultStats{worstHealthy: worst}
	ds := list()
	st.deliveries = len(ds)
	failed := 0
	for _, d := range ds {
		d = e.h.Get(t, e.key, "/api/deliveries/"+str(d, "id"))
		as := attempts(d)
		st.attempts += len(as)
		if int(num(d, "attempt_count")) != len(as) {
			t.Errorf("delivery %s: attempt_count %v, but %d attempts listed", str(d, "id"), d["attempt_count"], len(as))
		}
		for i, a := range as {
			status := int(num(a, "response_status"))
			if a["response_status"] == nil {
				status = 0
			}
			last := i == len(as)-1
			if last && (a["success"] != true || a["error"] != nil || status < 200 || status > 299) {
				t.Errorf("delivery %s: last attempt %s, want a success", str(d, "id"), hookdtest.JSON(a))
			}
			faulty := !last || !fc.heals && fc.errWant == "" // the 2xx faults succeed while faulty
			if !faulty {
				continue
			}
			if !last {
				failed++
				if a["success"] != false || !strings.Contains(str(a, "error"), fc.errWant) {
					t.Errorf("delivery %s attempt %d: success %v, error %q; want a failure whose error says %q",
						str(d, "id"), i+1, a["success"], str(a, "error"), fc.errWant)
				}
			}
			if !fc.statusWant(status) {
				t.Errorf("delivery %s attempt %d: response_status %v is not what the %s fault answered",
					str(d, "id"), i+1, a["response_status"], fc.fault)
			}
			if fc.check != nil {
				if msg := fc.check(a); msg != "" {
					t.Errorf("delivery %s attempt %d: %s", str(d, "id"), i+1, msg)
				}
			}
		}
	}
	requests, faults, okEvents := bad.counts()
	st.faults = faults
	if okEvents != events {
		t.Errorf("the %s receiver answered 2xx for %d events, want %d", fc.fault, okEvents, events)
	}
	// Every request the receiver got is one attempt in the log.
	if requests != st.attempts {
		t.Errorf("the receiver got %d requests, the log lists %d attempts", requests, st.attempts)
	}
	if faults == 0 {
		t.Errorf("no %s fault was injected", fc.fault)
	}
	if fc.errWant != "" && failed == 0 {
		t.Errorf("no failed attempt is in the log")
	}
	switch fc.fault {
	case faultRedirect:
		if n := bad.trap.Count(); n != 0 {
			t.Errorf("the redirect target got %d requests: redirects were followed", n)
		}
	case faultHuge, faultHuge2xx:
		// hookd reads the excerpt and a bounded drain, then hangs up: what
		// the receiver got written is that plus socket buffers.
		bad.mu.Lock()
		st.maxWritten = bad.maxWritten
		bad.mu.Unlock()
		if st.maxWritten >= 64<<20 {
			t.Errorf("an endless answer got %d MiB written before hookd hung up: it reads without bound", st.maxWritten>>20)
		}
	}
	t.Logf("%s: %d events, %d faults injected, %d attempts, slowest healthy delivery %s",
		fc.fault, events, faults, st.attempts, worst.Round(time.Millisecond))
	return st
}

// waitFor polls cond every 50 ms until it holds, failing the test (naming
// what) after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
