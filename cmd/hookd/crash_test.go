package main

// The crash suite: events are published steadily to several endpoints while
// hookd processes are killed with SIGKILL at random moments and restarted on
// the same store. At the end every event the API acknowledged with a 2xx must
// be in the store and must have reached every endpoint subscribed to it, with a
// valid signature (SPEC §4: "An accepted event is never lost, also across a
// crash or kill -9 of any hookd process at any moment"; §9).
//
// The kill moments come from a seed that the test logs; HOOKD_CRASH_SEED=<seed>
// replays them. HOOKD_LONG=1 runs the long version (more kills, more events).

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookd/hookd/internal/pgtest"
	"github.com/hookd/hookd/signature"
)

// crashEndpoint is an endpoint of the crash suite: its receiver path, how it
// signs, what it subscribes to, and (written down separately, not computed
// by hookd's matcher) which of crashTypes it must receive.
type crashEndpoint struct {
	path   string
	scheme signature.Scheme
	events string   // JSON array for POST /api/webhooks
	gets   []string // event types it must receive
}

// crashTypes are the event types published, alternately.
var crashTypes = []string{"order.created", "invoice.paid"}

var crashEndpoints = []crashEndpoint{
	{"/all-standard", signature.StandardWebhooks, `["*"]`, []string{"order.created", "invoice.paid"}},
	{"/all-hmac", signature.HMACSHA256, `["*"]`, []string{"order.created", "invoice.paid"}},
	{"/orders-timestamped", signature.Timestamped, `["order.*"]`, []string{"order.created"}},
	{"/invoices-standard", signature.StandardWebhooks, `["invoice.paid"]`, []string{"invoice.paid"}},
}

// crashPlan sizes a crash run.
type crashPlan struct {
	kills      int           // SIGKILLs in all
	rate       int           // publish requests per second (a batch counts as one)
	publishers int           // concurrent publishing clients
	minUp      time.Duration // an instance lives at least this long after it listens…
	maxUp      time.Duration // …and at most this long before the next kill
	maxDown    time.Duration // a killed instance is restarted after up to this long
	drain      time.Duration // time allowed for every delivery to arrive after the last kill
}

func crashPlanFor(long bool) crashPlan {
	if long {
		return crashPlan{kills: 12, rate: 200, publishers: 6, minUp: 100 * time.Millisecond, maxUp: 4 * time.Second,
			maxDown: 500 * time.Millisecond, drain: 5 * time.Minute}
	}
	return crashPlan{kills: 3, rate: 100, publishers: 4, minUp: 300 * time.Millisecond, maxUp: 1500 * time.Millisecond,
		maxDown: 200 * time.Millisecond, drain: 3 * time.Minute}
}

// crashSeed returns HOOKD_CRASH_SEED, or a new seed.
func crashSeed(t *testing.T) uint64 {
	t.Helper()
	if s := os.Getenv("HOOKD_CRASH_SEED"); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("HOOKD_CRASH_SEED=%q: %v", s, err)
		}
		return seed
	}
	return uint64(time.Now().UnixNano())
}

// TestCrashKill9: under steady publishing to four endpoints, hookd is killed
// with SIGKILL at random moments (3 times; 12 with HOOKD_LONG=1) and
// restarted on the same store: one process on SQLite, and on PostgreSQL three
// instances (roles all, api and worker) of which a random one is killed each
// time. Every event acknowledged with a 2xx is in the store (GET
// /api/events/{id}) with a succeeded delivery per subscribed endpoint, and
// reached each of those endpoints at least once with a valid signature; no
// endpoint receives an event it does not subscribe to. Duplicates are counted
// and logged (SPEC §4 at-least-once, §9).
func TestCrashKill9(t *testing.T) {
	t.Parallel()
	long := os.Getenv("HOOKD_LONG") != ""
	plan := crashPlanFor(long)
	seed := crashSeed(t)
	t.Logf("crash seed %d (replay with HOOKD_CRASH_SEED=%d), long=%v", seed, seed, long)
	for _, c := range []struct {
		name  string
		roles []string
		args  []string
	}{
		{"sqlite", []string{"all"}, []string{"--attempt-timeout", "2s"}},
		// Leases short enough that a killed instance's claims are taken over
		// soon, with headroom over the attempt timeout on a loaded machine.
		{"postgres", []string{"all", "api", "worker"}, []string{"--attempt-timeout", "2s", "--lease", "6s"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			runCrash(t, seed, plan, c.roles, c.args)
		})
	}
}

// crashNode is one hookd instance of a crash run, restarted on the same data
// directory (and database) after every kill.
type crashNode struct {
	role    string
	dataDir string
	p       *proc // nil while down; guarded by crashCluster.mu
	up      time.Time
}

// crashCluster is the set of instances of a crash run.
type crashCluster struct {
	t     *testing.T
	env   []string
	args  []string
	mu    sync.Mutex
	nodes []*crashNode
}

// start starts node i and waits until it listens. Test goroutine only.
func (c *crashCluster) start(i int) *proc {
	c.t.Helper()
	n := c.nodes[i]
	p := serve(c.t, n.dataDir, c.env, append([]string{"--role", n.role}, c.args...)...)
	c.mu.Lock()
	n.p, n.up = p, time.Now()
	c.mu.Unlock()
	return p
}

// kill marks node i down and kills it with SIGKILL. Test goroutine only.
func (c *crashCluster) kill(i int) (pid int, up time.Duration) {
	c.t.Helper()
	n := c.nodes[i]
	c.mu.Lock()
	p := n.p
	n.p = nil
	c.mu.Unlock()
	pid, up = p.cmd.Process.Pid, time.Since(n.up)
	p.kill9()
	return pid, up
}

// api returns a random live instance that serves the API, or -1 and nil.
func (c *crashCluster) api() (int, *proc) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var live []int
	for i, n := range c.nodes {
		if n.p != nil && n.role != "worker" {
			live = append(live, i)
		}
	}
	if len(live) == 0 {
		return -1, nil
	}
	i := live[rand.IntN(len(live))]
	return i, c.nodes[i].p
}

// crashLedger is what the publishers learnt: which events they tried to
// publish and which the API acknowledged.
type crashLedger struct {
	mu       sync.Mutex
	tried    map[string]string // event id → type
	acked    map[string]string // event id → type, once a 2xx said so
	onRetry  int               // events acknowledged as duplicates, on a retry after a failed request
	connErrs int               // requests that got no answer
	failures []string          // answers that were neither 2xx nor a lost connection
}

// crashJob is one publish request: a single event, or a batch.
type crashJob struct {
	ids, types []string
}

// body returns the request's path and body.
func (j crashJob) body() (string, []byte) {
	ev := func(i int) map[string]any {
		return map[string]any{"id": j.ids[i], "type": j.types[i], "data": map[string]any{"id": j.ids[i], "n": i}}
	}
	if len(j.ids) == 1 {
		e := ev(0)
		e["organization"] = "acme"
		b, _ := json.Marshal(e)
		return "/api/events", b
	}
	evs := make([]map[string]any, len(j.ids))
	for i := range evs {
		evs[i] = ev(i)
	}
	b, _ := json.Marshal(map[string]any{"organization": "acme", "events": evs})
	return "/api/events/batch", b
}

// wantDeliveries is how many endpoints must receive an event of type typ.
func wantDeliveries(typ string) int {
	n := 0
	for _, ep := range crashEndpoints {
		if slices.Contains(ep.gets, typ) {
			n++
		}
	}
	return n
}

// publishedResult is one event in a publish answer.
type publishedResult struct {
	ID         string `json:"id"`
	Deliveries int    `json:"deliveries"`
	Duplicate  bool   `json:"duplicate"`
}

// publishJob sends job until an instance acknowledges it, trying the live API
// instances in turn while requests fail for lack of an answer (the instance
// was killed). A retry may find the events stored by the lost request; then
// the API answers that they are duplicates, which acknowledges them too. It
// gives up once giveUp has passed, leaving the job unacknowledged.
func publishJob(c *crashCluster, client *http.Client, key string, job crashJob, led *crashLedger, giveUp time.Time) {
	path, body := job.body()
	led.mu.Lock()
	for i, id := range job.ids {
		led.tried[id] = job.types[i]
	}
	led.mu.Unlock()
	unanswered := 0 // requests sent that got no answer
	for time.Now().Before(giveUp) {
		node, p := c.api()
		if p == nil {
			time.Sleep(10 * time.Millisecond) // every API instance is down: wait for a restart
			continue
		}
		req, err := http.NewRequest("POST", p.url+path, bytes.NewReader(body))
		if err != nil {
			panic(err)
		}
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		var b []byte
		if err == nil {
			b, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		if err != nil { // no answer: not acknowledged; try again, maybe elsewhere
			led.mu.Lock()
			led.connErrs++
			led.mu.Unlock()
			unanswered++
			time.Sleep(10 * time.Millisecond)
			continue
		}
		results, dup, err := checkPublishAnswer(job, resp.StatusCode, b, unanswered > 0)
		led.mu.Lock()
		if err != nil {
			led.failures = append(led.failures, fmt.Sprintf("POST %s %v via instance %d (after %d unanswered requests): %v", path, job.ids, node, unanswered, err))
		} else {
			for i, r := range results {
				led.acked[r.ID] = job.types[i]
			}
			if dup {
				led.onRetry += len(results)
			}
		}
		led.mu.Unlock()
		return
	}
}

// checkPublishAnswer checks the API's answer to job and returns the events it
// acknowledges and whether they were duplicates. retry tells whether an
// earlier request of the job went unanswered (only then may they be
// duplicates). A batch is atomic: all of it is new, or all of it duplicate.
func checkPublishAnswer(job crashJob, status int, body []byte, retry bool) ([]publishedResult, bool, error) {
	var results []publishedResult
	if len(job.ids) == 1 {
		var r publishedResult
		if status/100 == 2 {
			if err := json.Unmarshal(body, &r); err != nil {
				return nil, false, fmt.Errorf("%d: decode %s: %w", status, body, err)
			}
		}
		switch {
		case status == http.StatusAccepted && !r.Duplicate:
		case status == http.StatusOK && r.Duplicate:
		default:
			return nil, false, fmt.Errorf("answered %d %s, want 202 or (a duplicate) 200", status, body)
		}
		results = []publishedResult{r}
	} else {
		var out struct{ Data []publishedResult }
		if status != http.StatusAccepted {
			return nil, false, fmt.Errorf("answered %d %s, want 202", status, body)
		}
		if err := json.Unmarshal(body, &out); err != nil {
			return nil, false, fmt.Errorf("%d: decode %s: %w", status, body, err)
		}
		results = out.Data
	}
	if len(results) != len(job.ids) {
		return nil, false, fmt.Errorf("%d results for %d events: %s", len(results), len(job.ids), body)
	}
	dup := results[0].Duplicate
	for i, r := range results {
		switch {
		case r.ID != job.ids[i]:
			return nil, false, fmt.Errorf("result %d is event %q, want %q", i, r.ID, job.ids[i])
		case r.Duplicate != dup:
			return nil, false, fmt.Errorf("a batch stored in part: result %d duplicate=%v, result 0 duplicate=%v: %s", i, r.Duplicate, dup, body)
		case r.Duplicate && !retry:
			return nil, false, fmt.Errorf("event %s is a duplicate on the first request", r.ID)
		case !r.Duplicate && r.Deliveries != wantDeliveries(job.types[i]):
			return nil, false, fmt.Errorf("event %s (%s) got %d deliveries, want %d", r.ID, job.types[i], r.Deliveries, wantDeliveries(job.types[i]))
		}
	}
	return results, dup, nil
}

// verifyDelivery checks a request's signature with the endpoint's scheme and
// secret, and that its envelope is the event named by webhook-id.
func verifyDelivery(secrets map[string]string, req *http.Request, body []byte) error {
	for _, ep := range crashEndpoints {
		if ep.path != req.URL.Path {
			continue
		}
		if err := signature.Verify(ep.scheme, "", secrets[ep.path], req.Header, body, signature.VerifyOptions{}); err != nil {
			return fmt.Errorf("%s signature: %w", ep.scheme, err)
		}
		var env struct {
			ID   string
			Type string
			Data struct{ ID string }
		}
		if err := json.Unmarshal(body, &env); err != nil {
			return fmt.Errorf("decode body %q: %w", body, err)
		}
		if id := req.Header.Get("webhook-id"); env.ID != id || env.Data.ID != id {
			return fmt.Errorf("body is of event %q (data %q), webhook-id %q", env.ID, env.Data.ID, id)
		}
		if !slices.Contains(ep.gets, env.Type) {
			return fmt.Errorf("event of type %q, which %s does not subscribe to", env.Type, ep.path)
		}
		return nil
	}
	return errors.New("no such endpoint")
}

// runCrash runs one crash run with one instance per role.
func runCrash(t *testing.T, seed uint64, plan crashPlan, roles, args []string) {
	rng := rand.New(rand.NewPCG(seed, uint64(len(roles))))
	fail := func(format string, a ...any) {
		t.Helper()
		t.Errorf(format+"\n(crash seed %d: replay with HOOKD_CRASH_SEED=%d)", append(a, seed, seed)...)
	}

	key := randomKey("hk_admin_")
	masterKey := hex.EncodeToString([]byte(randomKey("")[:32]))
	env := []string{"HOOKD_MASTER_KEY=" + masterKey, "HOOKD_ADMIN_KEY=" + key}
	if len(roles) > 1 {
		env = append(env, "HOOKD_DATABASE_URL="+pgtest.URL(t)) // first, so that dropping the schema runs last
	}
	rcv := newHub(t, 2*time.Millisecond) // a short hold, so that kills catch attempts in flight
	c := &crashCluster{t: t, env: env, args: append(slices.Clone(args), devArgs...)}
	for _, role := range roles {
		c.nodes = append(c.nodes, &crashNode{role: role, dataDir: t.TempDir()})
	}
	for i := range c.nodes {
		c.start(i)
	}

	_, p := c.api()
	p.must("POST", "/api/organizations", key, `{"id":"acme","name":"Acme"}`, http.StatusCreated, nil)
	secrets := map[string]string{}
	for _, ep := range crashEndpoints {
		var out struct{ Secret string }
		p.must("POST", "/api/webhooks", key, fmt.Sprintf(`{"organization":"acme","url":%q,"events":%s,"signature":{"scheme":%q}}`,
			rcv.srv.URL+ep.path, ep.events, ep.scheme), http.StatusCreated, &out)
		if out.Secret == "" {
			t.Fatalf("POST /api/webhooks %s: no secret in the answer", ep.path)
		}
		secrets[ep.path] = out.Secret
	}
	rcv.mu.Lock()
	rcv.check = func(req *http.Request, body []byte) error { return verifyDelivery(secrets, req, body) }
	rcv.mu.Unlock()

	// Publishers: a pacer hands out jobs at plan.rate; every eighth is a batch
	// of five events, the others single events.
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: plan.publishers}}
	t.Cleanup(client.CloseIdleConnections)
	led := &crashLedger{tried: map[string]string{}, acked: map[string]string{}}
	stop := make(chan struct{})
	jobs := make(chan crashJob)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(jobs)
		tick := time.NewTicker(time.Second / time.Duration(plan.rate))
		defer tick.Stop()
		n := 0
		for j := 0; ; j++ {
			size := 1
			if j%8 == 7 {
				size = 5
			}
			var job crashJob
			for range size {
				job.ids = append(job.ids, fmt.Sprintf("c-%d", n))
				job.types = append(job.types, crashTypes[n%len(crashTypes)])
				n++
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			select {
			case <-stop:
				return
			case jobs <- job:
			}
		}
	})
	for range plan.publishers {
		wg.Go(func() {
			for job := range jobs {
				publishJob(c, client, key, job, led, time.Now().Add(time.Minute))
			}
		})
	}
	acked := func() int {
		led.mu.Lock()
		defer led.mu.Unlock()
		return len(led.acked)
	}

	// The killer: wait a random time, kill a random instance (every instance
	// once in the first rounds; with several instances, now and then two at the
	// same moment), restart it after a random pause.
	start := time.Now()
	between := func(lo, hi time.Duration) time.Duration { return lo + time.Duration(rng.Int64N(int64(hi-lo)+1)) }
	var kills []string
	var ackedAt []int // events acknowledged at each round of kills
	order := rng.Perm(len(c.nodes))
	for killed := 0; killed < plan.kills; {
		time.Sleep(between(plan.minUp, plan.maxUp)) // a random moment, from the seed
		victims := []int{rng.IntN(len(c.nodes))}
		if len(ackedAt) < len(order) {
			victims[0] = order[len(ackedAt)]
		}
		if len(c.nodes) > 1 && plan.kills-killed >= 2 && rng.IntN(4) == 0 {
			victims = append(victims, (victims[0]+1+rng.IntN(len(c.nodes)-1))%len(c.nodes))
		}
		down := between(0, plan.maxDown)
		ackedAt = append(ackedAt, acked())
		at := time.Since(start)
		var what []string
		for _, i := range victims {
			pid, up := c.kill(i)
			what = append(what, fmt.Sprintf("instance %d (role %s, pid %d, up %s)", i, c.nodes[i].role, pid, up.Round(time.Millisecond)))
		}
		killed += len(victims)
		kills = append(kills, fmt.Sprintf("at %s: killed %s with %d events acknowledged so far; restarted after %s",
			at.Round(time.Millisecond), strings.Join(what, " and "), ackedAt[len(ackedAt)-1], down.Round(time.Millisecond)))
		time.Sleep(down)
		for _, i := range victims {
			c.start(i)
		}
	}
	time.Sleep(between(plan.minUp, plan.maxUp)) // publishing goes on for a while after the last restart
	close(stop)
	wg.Wait()
	published := time.Since(start)
	t.Logf("kills:\n%s", strings.Join(kills, "\n"))

	led.mu.Lock()
	defer led.mu.Unlock()
	for _, f := range led.failures {
		fail("%s", f)
	}
	if ackedAt[len(ackedAt)-1] <= ackedAt[0] || len(led.acked) <= ackedAt[len(ackedAt)-1] {
		fail("publishing did not go on between the kills: %d events acknowledged at the first kill, %d at the last, %d in all",
			ackedAt[0], ackedAt[len(ackedAt)-1], len(led.acked))
	}
	// Every acknowledged event, at every endpoint that subscribes to it.
	var want []pair
	for id, typ := range led.acked {
		for _, ep := range crashEndpoints {
			if slices.Contains(ep.gets, typ) {
				want = append(want, pair{ep.path, id})
			}
		}
	}
	missing := want
	arrived := rcv.await(plan.drain, func() bool {
		missing = slices.DeleteFunc(missing, func(k pair) bool { return len(rcv.arrivals[k]) > 0 })
		return len(missing) == 0
	})
	drained := time.Since(start) - published
	rcv.mu.Lock()
	missing = slices.DeleteFunc(missing, func(k pair) bool { return len(rcv.arrivals[k]) > 0 })
	rcv.mu.Unlock()
	if !arrived || len(missing) > 0 {
		sort.Slice(missing, func(i, j int) bool { return missing[i].id < missing[j].id })
		_, p := c.api()
		var lines []string
		for _, k := range missing[:min(len(missing), 20)] {
			status, b := p.call("GET", "/api/events/"+k.id, key, "")
			lines = append(lines, fmt.Sprintf("  %s never arrived at %s; GET /api/events/%s = %d %s", k.id, k.path, k.id, status, bytes.TrimSpace(b)))
		}
		fail("%d of %d acknowledged deliveries did not arrive within %s of the end of publishing, e.g.:\n%s\nkills:\n%s",
			len(missing), len(want), plan.drain, strings.Join(lines, "\n"), strings.Join(kills, "\n"))
	}

	// The store agrees: nothing is pending once everything has arrived (the
	// last outcomes may still be being recorded), and every acknowledged event
	// is there, with a succeeded delivery per subscribed endpoint.
	_, p = c.api()
	deadline := time.Now().Add(time.Minute)
	for len(pendingDeliveries(p, key)) > 0 && arrived {
		if time.Now().After(deadline) {
			fail("deliveries still pending a minute after every one arrived, e.g. %+v", pendingDeliveries(p, key))
			break
		}
		time.Sleep(100 * time.Millisecond) // the store has no change feed to wait on
	}
	settled := time.Since(start) - published
	endpointPaths := endpointPathsByID(p, key)
	lost, badStore := checkStore(c, client, key, led.acked, endpointPaths)
	if len(badStore) > 0 {
		sort.Strings(badStore)
		fail("%d problems with acknowledged events in the store, e.g.:\n  %s", len(badStore), strings.Join(badStore[:min(len(badStore), 20)], "\n  "))
	}
	if len(lost) > 0 {
		sort.Strings(lost)
		fail("%d acknowledged events are missing from the store: %v\nkills:\n%s", len(lost), lost[:min(len(lost), 50)], strings.Join(kills, "\n"))
	}
	var unacked []string
	for id := range led.tried {
		if _, ok := led.acked[id]; !ok {
			unacked = append(unacked, id)
		}
	}
	storedAnyway := 0
	for _, id := range unacked {
		if status, _ := p.call("GET", "/api/events/"+id, key, ""); status == http.StatusOK {
			storedAnyway++
		}
	}

	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if len(rcv.rejected) > 0 {
		fail("the receiver rejected %d of %d requests, e.g.:\n  %s", len(rcv.rejected), rcv.total, strings.Join(rcv.rejected[:min(len(rcv.rejected), 20)], "\n  "))
	}
	dups, extra := 0, 0
	for k, at := range rcv.arrivals {
		if _, ok := led.tried[k.id]; !ok {
			fail("%s received event %q, which was never published (%d times)", k.path, k.id, len(at))
		}
		if len(at) > 1 {
			dups++
			extra += len(at) - 1
		}
	}
	t.Logf("%s: %d kills in %d rounds; %d events published, %d acknowledged (%d of them as duplicates on a retry), "+
		"%d unacknowledged (%d of those stored anyway), %d publish requests without an answer; "+
		"%d acknowledged events lost, %d acknowledged deliveries missing; %d deliveries (%d requests), %d received more than once (%d extra requests); "+
		"published for %s; every acknowledged delivery arrived %s and nothing was pending %s after publishing stopped; %s in all (seed %d)",
		strings.Join(roles, "+"), plan.kills, len(kills), len(led.tried), len(led.acked), led.onRetry,
		len(unacked), storedAnyway, led.connErrs,
		len(lost), len(missing), len(want), rcv.total, dups, extra,
		published.Round(time.Millisecond), drained.Round(time.Millisecond), settled.Round(time.Millisecond), time.Since(start).Round(time.Millisecond), seed)
}

// pendingDeliveries returns up to ten pending deliveries.
func pendingDeliveries(p *proc, key string) []webhookDelivery {
	p.t.Helper()
	var l struct{ Data []webhookDelivery }
	p.must("GET", "/api/deliveries?status=pending&limit=10", key, "", http.StatusOK, &l)
	return l.Data
}

// endpointPathsByID maps the endpoint ids of organization acme to their
// receiver paths.
func endpointPathsByID(p *proc, key string) map[string]string {
	p.t.Helper()
	var l struct {
		Data []struct{ ID, URL string }
	}
	p.must("GET", "/api/webhooks?limit=500", key, "", http.StatusOK, &l)
	out := map[string]string{}
	for _, ep := range l.Data {
		for _, c := range crashEndpoints {
			if strings.HasSuffix(ep.URL, c.path) {
				out[ep.ID] = c.path
			}
		}
	}
	return out
}

// checkStore reads every acknowledged event with GET /api/events/{id} from
// the live API instances, four requests at a time, and returns the events
// that are missing and the problems found with the others (deliveries not
// one succeeded per subscribed endpoint).
func checkStore(c *crashCluster, client *http.Client, key string, acked map[string]string, paths map[string]string) (lost, problems []string) {
	var mu sync.Mutex
	ids := make(chan string)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for id := range ids {
				l, p := checkEvent(c, client, key, id, acked[id], paths)
				mu.Lock()
				if l {
					lost = append(lost, id)
				}
				problems = append(problems, p...)
				mu.Unlock()
			}
		})
	}
	for id := range acked {
		ids <- id
	}
	close(ids)
	wg.Wait()
	return lost, problems
}

// checkEvent reads event id (of type typ) and reports whether it is missing,
// and what is wrong with it otherwise.
func checkEvent(c *crashCluster, client *http.Client, key, id, typ string, paths map[string]string) (bool, []string) {
	_, p := c.api()
	req, err := http.NewRequest("GET", p.url+"/api/events/"+id, nil)
	if err != nil {
		return false, []string{err.Error()}
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := client.Do(req)
	if err != nil {
		return false, []string{fmt.Sprintf("GET /api/events/%s: %v", id, err)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return false, []string{fmt.Sprintf("GET /api/events/%s: %v", id, err)}
	}
	if resp.StatusCode == http.StatusNotFound {
		return true, nil
	}
	var ev struct {
		ID, Type   string
		Deliveries []webhookDelivery
	}
	if resp.StatusCode != http.StatusOK {
		return false, []string{fmt.Sprintf("GET /api/events/%s = %d %s", id, resp.StatusCode, b)}
	}
	if err := json.Unmarshal(b, &ev); err != nil {
		return false, []string{fmt.Sprintf("GET /api/events/%s: decode %s: %v", id, b, err)}
	}
	var problems []string
	if ev.ID != id || ev.Type != typ {
		problems = append(problems, fmt.Sprintf("GET /api/events/%s is event %q of type %q, want type %q", id, ev.ID, ev.Type, typ))
	}
	var got []string
	for _, d := range ev.Deliveries {
		got = append(got, paths[d.Webhook])
		if d.Status != "succeeded" {
			problems = append(problems, fmt.Sprintf("event %s: delivery %s to %s is %s after %d attempts", id, d.ID, paths[d.Webhook], d.Status, d.AttemptCount))
		}
	}
	var want []string
	for _, ep := range crashEndpoints {
		if slices.Contains(ep.gets, typ) {
			want = append(want, ep.path)
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		problems = append(problems, fmt.Sprintf("event %s (%s) has deliveries to %v, want one to each of %v", id, typ, got, want))
	}
	return false, problems
}
