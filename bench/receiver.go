package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/hookd/hookd/signature"
)

// ReceiverConfig configures RunReceiver. The zero value is ready to use.
type ReceiverConfig struct {
	// Addr is the address to listen on. Default "127.0.0.1:0".
	Addr string
	// Verify checks the Standard Webhooks signature of every delivery to an
	// endpoint whose secret was given (POST /_secrets) and counts the
	// failures. Off by default: the receiver measures hookd, not itself.
	Verify bool
	// HangLimit bounds how long /hang/ requests block. Default 120s.
	HangLimit time.Duration
}

// RunReceiver serves the bench's webhook receiver until ctx ends, then shuts
// it down. Once listening it writes its base URL ("http://127.0.0.1:PORT") as
// one line to stdout. Routes:
//
//   - POST /ok/{endpoint} answers 200, /fail/{endpoint} 500, and
//     /hang/{endpoint} blocks until the client goes away, POST /_release, or
//     HangLimit (then 503). Each counts as a delivery attempt to endpoint: its
//     webhook-id makes it unique or a repeat, and its body's "sent_at" (unix
//     nanoseconds) gives the end-to-end latency.
//   - GET /_stats answers the counts and latency quantiles as JSON;
//     POST /_reset forgets them (and releases hanging requests).
//   - POST /_secrets takes {"endpoint": "whsec_…"} for Verify.
//
// It returns an error if it cannot listen or serve.
func RunReceiver(ctx context.Context, cfg ReceiverConfig, stdout io.Writer) error {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.HangLimit <= 0 {
		cfg.HangLimit = 120 * time.Second
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("receiver: listen on %s: %w", cfg.Addr, err)
	}
	rv := newReceiver(cfg)
	srv := &http.Server{Handler: rv.handler(), IdleTimeout: 2 * time.Minute}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "http://%s\n", ln.Addr())
	select {
	case err := <-errc:
		return fmt.Errorf("receiver: serve: %w", err)
	case <-ctx.Done():
	}
	rv.release()
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	<-errc
	return nil
}

// receiver holds the counts. Its methods are safe for concurrent use.
type receiver struct {
	cfg  ReceiverConfig
	seed maphash.Seed
	pool sync.Pool // *bytes.Buffer

	mu        sync.Mutex
	hist      *histogram
	seen      map[uint64]struct{}
	endpoints map[string]*endpointStats
	requests  int64
	unique    int64
	badSigs   int64
	firstBad  string
	first     int64
	last      int64
	secrets   map[string]string
	released  chan struct{} // closed by release
}

func newReceiver(cfg ReceiverConfig) *receiver {
	rv := &receiver{cfg: cfg, seed: maphash.MakeSeed(), secrets: map[string]string{}}
	rv.pool.New = func() any { return new(bytes.Buffer) }
	rv.resetLocked()
	return rv
}

// resetLocked forgets every count and releases hanging requests.
func (rv *receiver) resetLocked() {
	rv.hist = newHistogram()
	rv.seen = map[uint64]struct{}{}
	rv.endpoints = map[string]*endpointStats{}
	rv.requests, rv.unique, rv.badSigs, rv.first, rv.last = 0, 0, 0, 0, 0
	rv.firstBad = ""
	if rv.released != nil {
		close(rv.released)
	}
	rv.released = make(chan struct{})
}

func (rv *receiver) release() {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	close(rv.released)
	rv.released = make(chan struct{})
}

func (rv *receiver) handler() http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("POST /ok/{endpoint}", func(w http.ResponseWriter, r *http.Request) {
		if rv.receive(w, r) {
			w.WriteHeader(http.StatusOK)
		}
	})
	m.HandleFunc("POST /fail/{endpoint}", func(w http.ResponseWriter, r *http.Request) {
		if rv.receive(w, r) {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	m.HandleFunc("POST /hang/{endpoint}", func(w http.ResponseWriter, r *http.Request) {
		if !rv.receive(w, r) {
			return
		}
		rv.mu.Lock()
		released := rv.released
		rv.mu.Unlock()
		t := time.NewTimer(rv.cfg.HangLimit)
		defer t.Stop()
		select {
		case <-r.Context().Done():
		case <-released:
		case <-t.C:
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	m.HandleFunc("GET /_stats", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(rv.stats())
	})
	m.HandleFunc("POST /_reset", func(w http.ResponseWriter, r *http.Request) {
		rv.mu.Lock()
		rv.resetLocked()
		rv.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	m.HandleFunc("POST /_release", func(w http.ResponseWriter, r *http.Request) {
		rv.release()
		w.WriteHeader(http.StatusNoContent)
	})
	m.HandleFunc("POST /_secrets", func(w http.ResponseWriter, r *http.Request) {
		var s map[string]string
		if err := json.NewDecoder(r.Body).Decode(&s); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rv.mu.Lock()
		for k, v := range s {
			rv.secrets[k] = v
		}
		rv.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	return m
}

// receive reads and records one delivery attempt. It reports false if the
// body could not be read (and answered 400).
func (rv *receiver) receive(w http.ResponseWriter, r *http.Request) bool {
	buf := rv.pool.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= 1<<20 {
			buf.Reset()
			rv.pool.Put(buf)
		}
	}()
	buf.Reset()
	if _, err := buf.ReadFrom(r.Body); err != nil {
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return false
	}
	now := time.Now()
	rv.record(r.PathValue("endpoint"), r.Header, buf.Bytes(), now)
	return true
}

// record counts one attempt to endpoint received at now.
func (rv *receiver) record(endpoint string, h http.Header, body []byte, now time.Time) {
	id := h.Get(signature.HeaderWebhookID)
	var mh maphash.Hash
	mh.SetSeed(rv.seed)
	mh.WriteString(id)
	mh.WriteByte(0)
	mh.WriteString(endpoint)
	key := mh.Sum64()
	sent, hasSent := sentAt(body)
	t := now.UnixNano()

	rv.mu.Lock()
	secret := rv.secrets[endpoint]
	if hasSent {
		rv.hist.Record(time.Duration(t - sent))
	}
	ep := rv.endpoints[endpoint]
	if ep == nil {
		ep = &endpointStats{First: t}
		rv.endpoints[endpoint] = ep
	}
	ep.Requests++
	ep.Last = t
	rv.requests++
	if rv.first == 0 {
		rv.first = t
	}
	rv.last = t
	if _, dup := rv.seen[key]; !dup {
		rv.seen[key] = struct{}{}
		rv.unique++
		ep.Unique++
	}
	rv.mu.Unlock()

	if !rv.cfg.Verify || secret == "" {
		return
	}
	if err := signature.Verify(signature.StandardWebhooks, "", secret, h, body, signature.VerifyOptions{}); err != nil {
		rv.mu.Lock()
		rv.badSigs++
		if rv.firstBad == "" {
			rv.firstBad = fmt.Sprintf("endpoint %s, webhook-id %q: %v", endpoint, id, err)
		}
		rv.mu.Unlock()
	}
}

// endpointStats counts the attempts to one endpoint. First and Last are the
// receipt times of the first and last attempt, in unix nanoseconds.
type endpointStats struct {
	Requests int64 `json:"requests"`
	Unique   int64 `json:"unique"`
	First    int64 `json:"first_ns"`
	Last     int64 `json:"last_ns"`
}

// receiverStats is what GET /_stats answers.
type receiverStats struct {
	Requests      int64                    `json:"requests"`
	Unique        int64                    `json:"unique"`
	BadSignatures int64                    `json:"bad_signatures"`
	FirstBad      string                   `json:"first_bad_signature,omitempty"`
	First         int64                    `json:"first_ns"`
	Last          int64                    `json:"last_ns"`
	Endpoints     map[string]endpointStats `json:"endpoints"`
	Latency       latency                  `json:"latency"`
}

func (rv *receiver) stats() receiverStats {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	s := receiverStats{
		Requests: rv.requests, Unique: rv.unique, BadSignatures: rv.badSigs, FirstBad: rv.firstBad,
		First: rv.first, Last: rv.last, Endpoints: make(map[string]endpointStats, len(rv.endpoints)),
		Latency: rv.hist.Summary(),
	}
	for k, v := range rv.endpoints {
		s.Endpoints[k] = *v
	}
	return s
}

// sum adds up the stats of the named endpoints: requests, unique deliveries,
// and the earliest first and latest last receipt among them.
func (s *receiverStats) sum(names []string) endpointStats {
	var t endpointStats
	for _, n := range names {
		e, ok := s.Endpoints[n]
		if !ok {
			continue
		}
		t.Requests += e.Requests
		t.Unique += e.Unique
		if t.First == 0 || e.First < t.First {
			t.First = e.First
		}
		t.Last = max(t.Last, e.Last)
	}
	return t
}

// rate returns unique deliveries per second between the first and the last
// receipt, or 0 if there were fewer than two.
func (e endpointStats) rate() float64 {
	if e.Unique < 2 || e.Last <= e.First {
		return 0
	}
	return float64(e.Unique-1) / (float64(e.Last-e.First) / 1e9)
}

// sentKey is what the bench puts in each event's data before the send time.
var sentKey = []byte(`"sent_at":`)

// sentAt finds `"sent_at":<digits>` in body and returns the number (unix
// nanoseconds), without decoding the JSON.
func sentAt(body []byte) (int64, bool) {
	i := bytes.Index(body, sentKey)
	if i < 0 {
		return 0, false
	}
	b := body[i+len(sentKey):]
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\n' || b[0] == '\r') {
		b = b[1:]
	}
	n := 0
	for n < len(b) && b[n] >= '0' && b[n] <= '9' {
		n++
	}
	if n == 0 || n > 19 {
		return 0, false
	}
	v, err := strconv.ParseInt(string(b[:n]), 10, 64)
	if err != nil {
		return 0, false
	}
	return v, true
}
