package main

// Scale-out: several hookd processes share one PostgreSQL schema, and one of
// them is killed with SIGKILL while it holds deliveries in flight (SPEC §4
// at-least-once, §9 "no delivery attempted twice at once; a crashed instance's
// claims are picked up by others after a lease expires").

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hookd/hookd/internal/pgtest"
)

// pgDefaultURL is the local server of the development and CI machines.
const pgDefaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// pair is one (endpoint, event) delivery as a receiver sees it: the endpoint by
// its URL path, the event by its webhook-id. One event goes to every endpoint
// with the same webhook-id, so overlap is judged per pair, not per webhook-id.
type pair struct{ path, id string }

// arrival is one request of a pair: when it arrived, and from which local port
// of its sender (which names the sending process).
type arrival struct {
	at   time.Time
	port int
}

// heldRequest is a request the hub is holding.
type heldRequest struct {
	pair
	port int
}

// hub is a webhook receiver on 127.0.0.1 serving several endpoint paths. It
// holds every request for a few milliseconds, so that two concurrent attempts of
// one delivery would overlap, records every arrival, and counts a violation when
// a pair is received twice at the same moment. It answers 200, unless its gate
// is closed: then answers wait until it opens.
type hub struct {
	srv  *httptest.Server
	port int
	hold time.Duration

	mu       sync.Mutex
	arrivals map[pair][]arrival
	inFlight map[pair]int
	held     map[int64]heldRequest // requests not answered yet, by arrival number
	gate     chan struct{}         // while not nil, answers wait until it is closed
	overlaps []pair                // pairs received while already in flight
	total    int64                 // requests received
	distinct int                   // pairs received
	changed  chan struct{}         // signalled at the start and end of every request
	// check, if set (under mu, before the first request), vets every request
	// and its body as it arrives; its errors are collected in rejected.
	check    func(req *http.Request, body []byte) error
	rejected []string
}

func newHub(t *testing.T, hold time.Duration) *hub {
	t.Helper()
	h := &hub{hold: hold, arrivals: map[pair][]arrival{}, inFlight: map[pair]int{}, held: map[int64]heldRequest{},
		changed: make(chan struct{}, 1)}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		k := pair{req.URL.Path, req.Header.Get("webhook-id")}
		_, p, _ := net.SplitHostPort(req.RemoteAddr)
		port, _ := strconv.Atoi(p)
		h.mu.Lock()
		if h.check != nil {
			if err == nil {
				err = h.check(req, body)
			}
			if err != nil {
				h.rejected = append(h.rejected, fmt.Sprintf("%s at %s: %v", k.id, k.path, err))
			}
		}
		h.total++
		n := h.total
		h.arrivals[k] = append(h.arrivals[k], arrival{time.Now(), port})
		if len(h.arrivals[k]) == 1 {
			h.distinct++
		}
		h.inFlight[k]++
		if h.inFlight[k] > 1 {
			h.overlaps = append(h.overlaps, k)
		}
		h.held[n] = heldRequest{k, port}
		h.mu.Unlock()
		h.signal()
		time.Sleep(h.hold) // not cut short when the sender goes away: the pair stays in flight
		h.mu.Lock()
		gate := h.gate
		h.mu.Unlock()
		if gate != nil {
			<-gate
		}
		h.mu.Lock()
		h.inFlight[k]--
		delete(h.held, n)
		h.mu.Unlock()
		w.WriteHeader(http.StatusOK)
		h.signal()
	}))
	t.Cleanup(func() {
		h.setGate(false)
		h.srv.Close()
	})
	h.port = h.srv.Listener.Addr().(*net.TCPAddr).Port
	return h
}

// setGate closes the gate (closed: answers wait) or opens it.
func (h *hub) setGate(closed bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case closed && h.gate == nil:
		h.gate = make(chan struct{})
	case !closed && h.gate != nil:
		close(h.gate)
		h.gate = nil
	}
}

func (h *hub) signal() {
	select {
	case h.changed <- struct{}{}:
	default:
	}
}

// waitFor waits up to d for cond, evaluated under the hub's lock at the start
// and end of every request.
func (h *hub) waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	if !h.await(d, cond) {
		h.mu.Lock()
		n := h.total
		h.mu.Unlock()
		t.Fatalf("receiver: %s did not happen within %s (%d requests received)", what, d, n)
	}
}

// await is waitFor reporting whether cond came true within d.
func (h *hub) await(d time.Duration, cond func() bool) bool {
	deadline := time.After(d)
	for {
		h.mu.Lock()
		ok := cond()
		h.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-h.changed:
		case <-deadline:
			return false
		}
	}
}

// freezeHolding stops p with SIGSTOP while h holds at least one of p's
// requests unanswered, trying up to tries times. It closes h's gate first, so
// that p's requests arriving meanwhile stay unanswered, and waits (briefly)
// for one. It returns, with p stopped and the gate still closed, the local
// ports of p's connections to h and the pairs h holds from them: p cannot
// have recorded those attempts, so if p is killed now they are attempted but
// unrecorded. If no try caught one, held is empty. Linux only (it reads /proc).
func freezeHolding(t *testing.T, p *proc, h *hub, tries int) (ports map[int]bool, held []pair) {
	t.Helper()
	pid := p.cmd.Process.Pid
	for i := range tries {
		ports = peerPorts(t, pid, h.port)
		h.setGate(true)
		h.await(500*time.Millisecond, func() bool {
			for _, r := range h.held {
				if ports[r.port] {
					return true
				}
			}
			return false
		})
		if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatalf("SIGSTOP: %v", err)
		}
		waitStopped(t, pid)
		ports = peerPorts(t, pid, h.port) // now final
		h.mu.Lock()
		for _, r := range h.held {
			if ports[r.port] {
				held = append(held, r.pair)
			}
		}
		h.mu.Unlock()
		if len(held) > 0 || i == tries-1 {
			t.Logf("stopped the worker %d times to catch it with requests in flight", i+1)
			return ports, held
		}
		if err := p.cmd.Process.Signal(syscall.SIGCONT); err != nil {
			t.Fatalf("SIGCONT: %v", err)
		}
		h.setGate(false)
	}
	return ports, nil
}

// waitStopped waits until every thread of process pid is stopped.
func waitStopped(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		if err != nil {
			t.Fatalf("threads of %d: %v", pid, err)
		}
		stopped := true
		for _, task := range tasks {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, task.Name()))
			if err != nil {
				stopped = false // a thread that just ended, or just began
				break
			}
			// "tid (comm) S …": the state follows the last parenthesis.
			rest := string(b[bytes.LastIndexByte(b, ')')+1:])
			if f := strings.Fields(rest); len(f) == 0 || (f[0] != "T" && f[0] != "t") {
				stopped = false
				break
			}
		}
		if stopped {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d did not stop within 10s of SIGSTOP", pid)
		}
		time.Sleep(time.Millisecond) // the kernel has no notification for this
	}
}

// peerPorts returns the local ports of process pid's TCP connections to
// 127.0.0.1:port.
func peerPorts(t *testing.T, pid, port int) map[int]bool {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatalf("files of %d: %v", pid, err)
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if inode, ok := strings.CutPrefix(link, "socket:["); err == nil && ok {
			inodes[strings.TrimSuffix(inode, "]")] = true
		}
	}
	ports := map[int]bool{}
	for _, table := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			t.Fatalf("sockets of %d: %v", pid, err)
		}
		// "sl local_address rem_address st … uid timeout inode …", addresses as
		// HEXADDR:HEXPORT.
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || !inodes[f[9]] {
				continue
			}
			local, remote := hexPort(f[1]), hexPort(f[2])
			if remote == port && local > 0 {
				ports[local] = true
			}
		}
	}
	return ports
}

// hexPort returns the port of a /proc/net/tcp address such as 0100007F:C350.
func hexPort(addr string) int {
	_, p, _ := strings.Cut(addr, ":")
	n, _ := strconv.ParseInt(p, 16, 32)
	return int(n)
}

// publishBatch publishes events ids of type order.created to organization acme
// with POST /api/events/batch, and checks that each got want deliveries. It
// does not touch p.t, so that it can run on any goroutine.
func publishBatch(p *proc, key string, ids []string, want int) error {
	type ev struct {
		ID   string         `json:"id"`
		Type string         `json:"type"`
		Data map[string]any `json:"data"`
	}
	evs := make([]ev, len(ids))
	for i, id := range ids {
		evs[i] = ev{ID: id, Type: "order.created", Data: map[string]any{"id": id}}
	}
	body, err := json.Marshal(map[string]any{"organization": "acme", "events": evs})
	if err != nil {
		return err
	}
	req, err := http.NewRequest("POST", p.url+"/api/events/batch", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("publish %s…: %w", ids[0], err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("publish %s…: %w", ids[0], err)
	}
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("POST /api/events/batch (%s…) = %d %s, want 202", ids[0], resp.StatusCode, b)
	}
	var out struct {
		Data []struct {
			ID         string `json:"id"`
			Deliveries int    `json:"deliveries"`
			Duplicate  bool   `json:"duplicate"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return fmt.Errorf("POST /api/events/batch: decode %s: %w", b, err)
	}
	if len(out.Data) != len(ids) {
		return fmt.Errorf("POST /api/events/batch answered %d results for %d events", len(out.Data), len(ids))
	}
	for i, r := range out.Data {
		if r.ID != ids[i] || r.Deliveries != want || r.Duplicate {
			return fmt.Errorf("POST /api/events/batch result %d = %+v, want id %s with %d deliveries", i, r, ids[i], want)
		}
	}
	return nil
}

// webhookDelivery is a delivery as GET /api/deliveries lists it.
type webhookDelivery struct {
	deliveryJSON
	Webhook string `json:"webhook"`
}

// allDeliveries pages through GET /api/deliveries?query.
func (p *proc) allDeliveries(key, query string) []webhookDelivery {
	p.t.Helper()
	var all []webhookDelivery
	cursor := ""
	for {
		var l struct {
			Data       []webhookDelivery `json:"data"`
			NextCursor *string           `json:"next_cursor"`
		}
		path := "/api/deliveries?limit=500&" + query
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		p.must("GET", path, key, "", http.StatusOK, &l)
		all = append(all, l.Data...)
		if l.NextCursor == nil {
			return all
		}
		cursor = *l.NextCursor
	}
}

// TestScaleOutKill9: three instances share one PostgreSQL (two with role all,
// one worker); the worker is killed with SIGKILL mid-run. Every event reaches
// every endpoint, no delivery is ever in flight twice at once, and the only
// duplicates are the killed worker's attempts in flight, re-attempted by the
// others once its leases expired (SPEC §4, §9).
func TestScaleOutKill9(t *testing.T) {
	t.Parallel()
	const (
		events      = 3000
		endpoints   = 4
		batchSize   = 250
		concurrency = 32
		lease       = 10 * time.Second // headroom over --attempt-timeout for claims and outcomes slowed by load
	)
	deliveries := events * endpoints

	dbURL := pgtest.URL(t) // first, so that its cleanup (dropping the schema) runs last
	rcv := newHub(t, 5*time.Millisecond)
	key := randomKey("hk_admin_")
	masterKey := hex.EncodeToString([]byte(randomKey("")[:32]))
	env := []string{"HOOKD_DATABASE_URL=" + dbURL, "HOOKD_MASTER_KEY=" + masterKey, "HOOKD_ADMIN_KEY=" + key}
	args := append([]string{"--attempt-timeout", "2s", "--lease", lease.String(), "--concurrency", fmt.Sprint(concurrency)}, devArgs...)

	apiA := serve(t, t.TempDir(), env, append([]string{"--role", "all"}, args...)...)
	apiB := serve(t, t.TempDir(), env, append([]string{"--role", "all"}, args...)...)
	worker := serve(t, t.TempDir(), env, append([]string{"--role", "worker"}, args...)...)
	if status, body := worker.call("POST", "/api/organizations", key, `{"id":"x","name":"X"}`); status != http.StatusNotFound {
		t.Errorf("worker: POST /api/organizations = %d %s, want 404 (a worker serves only /api/health)", status, body)
	}
	worker.must("GET", "/api/health", "", "", http.StatusOK, nil)

	apiA.must("POST", "/api/organizations", key, `{"id":"acme","name":"Acme"}`, http.StatusCreated, nil)
	paths := map[string]string{} // endpoint id → receiver path
	for i := range endpoints {
		path := fmt.Sprintf("/ep%d", i)
		var ep struct{ ID string }
		// Endpoints made on B are seen by A: one store.
		apiB.must("POST", "/api/webhooks", key, `{"organization":"acme","url":"`+rcv.srv.URL+path+`","events":["order.created"]}`,
			http.StatusCreated, &ep)
		paths[ep.ID] = path
	}

	// Publish in batches, alternating between the two API instances, two
	// publishers on each.
	ids := make([]string, events)
	for i := range ids {
		ids[i] = fmt.Sprintf("e-%d", i)
	}
	start := time.Now()
	var batches [][]string
	for i := 0; i < events; i += batchSize {
		batches = append(batches, ids[i:min(i+batchSize, events)])
	}
	errs := make(chan error, len(batches))
	var wg sync.WaitGroup
	for w := range 4 {
		p := []*proc{apiA, apiB}[w%2]
		wg.Go(func() {
			for i := w; i < len(batches); i += 4 {
				errs <- publishBatch(p, key, batches[i], endpoints)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	published := time.Since(start)

	// Once ~30% of the deliveries have arrived, kill the worker while the
	// receiver holds some of its requests. It is stopped first, to learn which
	// connections are its and which requests it has in flight; for hookd that is
	// the same as kill -9 at that instant.
	rcv.waitFor(t, 2*time.Minute, "30% of the deliveries", func() bool { return rcv.total >= int64(deliveries)*3/10 })
	var workerPorts map[int]bool // nil: unknown (not Linux)
	var held []pair              // the worker's requests in flight at the kill
	if runtime.GOOS == "linux" {
		workerPorts, held = freezeHolding(t, worker, rcv, 20)
		if len(held) == 0 {
			t.Errorf("the receiver never held a request of the worker when it was stopped (it had %d connections to it)", len(workerPorts))
		}
	}
	rcv.mu.Lock()
	atKill := rcv.total
	rcv.mu.Unlock()
	killStart := time.Now() // no attempt made after this can be the worker's
	worker.kill9()
	killDone := time.Now() // every attempt by the worker arrived before this
	rcv.setGate(false)
	t.Logf("killed the worker after %d of %d deliveries arrived (%.0f%%), %s after the first publish, with %d of its requests in flight",
		atKill, deliveries, 100*float64(atKill)/float64(deliveries), killStart.Sub(start).Round(time.Millisecond), len(held))

	rcv.waitFor(t, 3*time.Minute, "every delivery, and the worker's unrecorded ones again", func() bool {
		for _, k := range held {
			if len(rcv.arrivals[k]) < 2 {
				return false
			}
		}
		return rcv.distinct >= deliveries
	})
	drain := time.Since(killDone)

	// The store agrees: nothing is left pending (so nothing more will be sent),
	// failed or skipped; every pair succeeded once. The last outcomes may still
	// be being recorded.
	deadline := time.Now().Add(30 * time.Second)
	for len(apiB.deliveries(key, "status=pending")) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("deliveries still pending 30s after every one arrived: %+v", apiB.deliveries(key, "status=pending"))
		}
		time.Sleep(100 * time.Millisecond) // the store has no change feed to wait on
	}
	for _, status := range []string{"failed", "skipped"} {
		if ds := apiA.deliveries(key, "status="+status); len(ds) > 0 {
			t.Errorf("%d deliveries %s, e.g. %+v", len(ds), status, ds[0])
		}
	}
	succeeded := apiA.allDeliveries(key, "status=succeeded")
	if len(succeeded) != deliveries {
		t.Errorf("GET /api/deliveries?status=succeeded lists %d deliveries, want %d", len(succeeded), deliveries)
	}
	attempts := 0
	seen := map[pair]bool{}
	for _, d := range succeeded {
		attempts += d.AttemptCount
		k := pair{paths[d.Webhook], d.Event}
		if k.path == "" || seen[k] {
			t.Errorf("unexpected or repeated delivery %+v", d)
		}
		seen[k] = true
	}

	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	for _, path := range paths {
		for _, id := range ids {
			if len(rcv.arrivals[pair{path, id}]) == 0 {
				t.Errorf("%s never arrived at %s", id, path)
			}
		}
	}
	known := map[string]bool{}
	for _, path := range paths {
		known[path] = true
	}
	var dups []pair
	byWorker := 0 // first arrivals from the worker
	for k, at := range rcv.arrivals {
		if !known[k.path] || !strings.HasPrefix(k.id, "e-") {
			t.Errorf("unexpected delivery %q to %s (%d times)", k.id, k.path, len(at))
		}
		if workerPorts[at[0].port] && at[0].at.Before(killStart) {
			byWorker++
		}
		if len(at) > 1 {
			dups = append(dups, k)
		}
	}
	sort.Slice(dups, func(i, j int) bool { return rcv.arrivals[dups[i]][0].at.Before(rcv.arrivals[dups[j]][0].at) })
	for _, k := range dups {
		at := rcv.arrivals[k]
		// The first arrival was the killed worker's, in flight when it died; the
		// second came from another instance once the lease had passed.
		fromWorker := workerPorts == nil || workerPorts[at[0].port]
		if !at[0].at.Before(killDone) || !at[1].at.After(killStart) || len(at) > 2 || !fromWorker {
			t.Errorf("%s at %s arrived %d times, at %v after the kill, first from the worker: %v; want twice: once from the worker before the kill, once after",
				k.id, k.path, len(at), offsets(at, killStart), fromWorker)
		}
	}
	if len(dups) > concurrency {
		t.Errorf("%d deliveries arrived more than once, want at most %d (the killed worker's --concurrency)", len(dups), concurrency)
	}
	if len(rcv.overlaps) > 0 {
		t.Errorf("%d deliveries were received while another attempt of them was in flight, e.g. %s at %s",
			len(rcv.overlaps), rcv.overlaps[0].id, rcv.overlaps[0].path)
	}
	if workerPorts != nil && byWorker == 0 {
		t.Errorf("the worker delivered nothing before it was killed")
	}

	t.Logf("%d events, %d deliveries over %d endpoints: %d requests, %d recorded attempts, %d by the worker before the kill, %d duplicates (%d of them in flight at the receiver at the kill); published in %s, drained %s after the kill, %s in all",
		events, deliveries, endpoints, rcv.total, attempts, byWorker, len(dups), len(held), published.Round(time.Millisecond),
		drain.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

// offsets shows arrival times relative to t0.
func offsets(as []arrival, t0 time.Time) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.at.Sub(t0).Round(time.Millisecond).String()
	}
	return out
}
