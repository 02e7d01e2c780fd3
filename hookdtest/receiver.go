package hookdtest

import (
	"context"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Script decides how a Receiver answers its n-th request (1 for the first).
// It runs in the request's handler, so it may block; req's context ends when
// the client goes away or the Receiver closes. The body was already read:
// use Request values from the Receiver to inspect it.
type Script func(n int, req *http.Request) (status int, header http.Header, body string)

// Request is one request a Receiver got.
type Request struct {
	N      int         // arrival number, 1 for the first
	Method string      //
	Path   string      // URL path and query as sent
	Header http.Header // as received
	Body   []byte      // raw body, byte for byte
	Time   time.Time   // when the request's body had been read
}

// Receiver is a webhook receiver: a real HTTP server on 127.0.0.1 that records
// every request and answers it by a programmable Script (default: 200 with an
// empty body).
// Its methods are safe for concurrent use.
type Receiver struct {
	srv    *httptest.Server
	ctx    context.Context // ends when the Receiver closes
	cancel context.CancelFunc

	mu          sync.Mutex
	script      Script
	reqs        []*Request
	arrived     chan struct{} // closed and replaced at every arrival
	inFlight    int
	maxInFlight int
}

// NewReceiver starts a Receiver on http://127.0.0.1:0. It is closed when the
// test ends: scripts blocked on the request's context are released first.
func NewReceiver(t testing.TB) *Receiver {
	t.Helper()
	return newReceiver(t, false)
}

// NewTLSReceiver starts a Receiver on https://127.0.0.1:0 with httptest's
// certificate, which hookd trusts only if the test binary called
// TrustTLSReceivers first.
func NewTLSReceiver(t testing.TB) *Receiver {
	t.Helper()
	return newReceiver(t, true)
}

// TrustTLSReceivers makes this process (and the processes it starts) trust the
// certificate of TLS receivers, by pointing SSL_CERT_FILE at it: hookd's
// delivery client uses the system roots. Call it from TestMain before any TLS
// connection is made, since Go reads the system roots once. Other roots are no
// longer trusted. The returned func removes the file.
func TrustTLSReceivers() (func(), error) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	cert := srv.Certificate()
	srv.Close()
	f, err := os.CreateTemp("", "hookdtest-ca-*.pem")
	if err != nil {
		return nil, err
	}
	remove := func() { os.Remove(f.Name()) }
	err = pem.Encode(f, &pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Setenv("SSL_CERT_FILE", f.Name())
	}
	if err != nil {
		remove()
		return nil, err
	}
	return remove, nil
}

func newReceiver(t testing.TB, useTLS bool) *Receiver {
	t.Helper()
	r := &Receiver{arrived: make(chan struct{}), script: Always(http.StatusOK)}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	if useTLS {
		r.srv = httptest.NewTLSServer(http.HandlerFunc(r.serve))
	} else {
		r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	}
	t.Cleanup(func() {
		r.cancel()
		r.srv.Close()
	})
	return r
}

// URL returns the receiver's base URL, such as "http://127.0.0.1:41234" (https
// for a TLS receiver).
func (r *Receiver) URL() string { return r.srv.URL }

// Respond replaces the script that answers the following requests.
func (r *Receiver) Respond(s Script) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.script = s
}

func (r *Receiver) serve(w http.ResponseWriter, hr *http.Request) {
	ctx, cancel := context.WithCancel(hr.Context())
	defer cancel()
	defer context.AfterFunc(r.ctx, cancel)()
	body, err := io.ReadAll(hr.Body)
	if err != nil {
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}

	r.mu.Lock()
	req := &Request{N: len(r.reqs) + 1, Method: hr.Method, Path: hr.URL.RequestURI(), Header: hr.Header.Clone(),
		Body: body, Time: time.Now()}
	r.reqs = append(r.reqs, req)
	close(r.arrived)
	r.arrived = make(chan struct{})
	r.inFlight++
	r.maxInFlight = max(r.maxInFlight, r.inFlight)
	script := r.script
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.inFlight--
		r.mu.Unlock()
	}()

	status, header, text := script(req.N, hr.WithContext(ctx))
	for k, vs := range header {
		w.Header()[http.CanonicalHeaderKey(k)] = vs
	}
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	io.WriteString(w, text)
}

// Requests returns the requests received so far, in arrival order.
func (r *Receiver) Requests() []*Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*Request(nil), r.reqs...)
}

// Count returns how many requests arrived so far.
func (r *Receiver) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.reqs)
}

// MaxInFlight returns the largest number of requests that were being answered
// at the same time.
func (r *Receiver) MaxInFlight() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.maxInFlight
}

// Wait blocks until at least n requests arrived and returns all of them, in
// arrival order. It fails the test if they do not arrive within timeout.
func (r *Receiver) Wait(t testing.TB, n int, timeout time.Duration) []*Request {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		r.mu.Lock()
		got, arrived := len(r.reqs), r.arrived
		if got >= n {
			reqs := append([]*Request(nil), r.reqs...)
			r.mu.Unlock()
			return reqs
		}
		r.mu.Unlock()
		select {
		case <-arrived:
		case <-timer.C:
			t.Fatalf("receiver %s: got %d requests within %s, want %d", r.URL(), got, timeout, n)
			return nil
		}
	}
}

// NoMoreThan watches the receiver for d and fails the test as soon as more than
// n requests have arrived. It returns the requests received.
func (r *Receiver) NoMoreThan(t testing.TB, n int, d time.Duration) []*Request {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		r.mu.Lock()
		got, arrived := len(r.reqs), r.arrived
		reqs := append([]*Request(nil), r.reqs...)
		r.mu.Unlock()
		if got > n {
			t.Fatalf("receiver %s: got %d requests, want at most %d", r.URL(), got, n)
			return reqs
		}
		select {
		case <-arrived:
		case <-timer.C:
			return reqs
		}
	}
}

// Always is a Script that answers every request with status and an empty body.
func Always(status int) Script {
	return func(int, *http.Request) (int, http.Header, string) { return status, nil, "" }
}

// FailFirst is a Script that answers the first n requests with status and the
// body "failure <n>", and later ones with 200 "ok".
func FailFirst(n, status int) Script {
	return func(i int, _ *http.Request) (int, http.Header, string) {
		if i <= n {
			return status, nil, "failure " + strconv.Itoa(i)
		}
		return http.StatusOK, nil, "ok"
	}
}

// Delay is a Script that waits d (or until the request is abandoned) and then
// answers as s does.
func Delay(d time.Duration, s Script) Script {
	return func(n int, req *http.Request) (int, http.Header, string) {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-req.Context().Done():
			return http.StatusServiceUnavailable, nil, "abandoned"
		}
		return s(n, req)
	}
}
