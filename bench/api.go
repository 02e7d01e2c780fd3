package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// newClient returns an HTTP client for the bench's own requests (the API and
// the receiver's control routes) keeping up to conns idle connections.
func newClient(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}}
}

// api calls hookd's management API with one key.
type api struct {
	base string // http://127.0.0.1:PORT
	key  string
	hc   *http.Client
}

// apiError is a non-2xx answer.
type apiError struct {
	status int
	body   string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.status, http.StatusText(e.status), strings.TrimSpace(e.body))
}

// call sends a JSON request (body is JSON-encoded unless it is a []byte) and
// decodes a 2xx answer into out (if not nil). A non-2xx answer is an
// *apiError.
func (a *api) call(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if a.key != "" {
		req.Header.Set("Authorization", "Bearer "+a.key)
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return &apiError{status: resp.StatusCode, body: string(b)}
	}
	if out == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode the answer to %s %s: %w", method, path, err)
	}
	return nil
}

// setupOrg creates an organization with the admin key and returns an API
// client using a new key of that organization.
func (a *api) setupOrg(ctx context.Context, name string) (*api, error) {
	var org struct {
		ID string `json:"id"`
	}
	if err := a.call(ctx, "POST", "/api/organizations", map[string]any{"name": name}, &org); err != nil {
		return nil, fmt.Errorf("create an organization: %w", err)
	}
	var key struct {
		Key string `json:"key"`
	}
	if err := a.call(ctx, "POST", "/api/organizations/"+org.ID+"/keys", nil, &key); err != nil {
		return nil, fmt.Errorf("create an organization key: %w", err)
	}
	return &api{base: a.base, key: key.Key, hc: a.hc}, nil
}

// endpointSpec is an endpoint to create.
type endpointSpec struct {
	url         string
	secret      string
	maxInFlight int // 0: hookd's default
}

// createEndpoint registers an endpoint subscribed to every bench event and
// returns its id.
func (a *api) createEndpoint(ctx context.Context, e endpointSpec) (string, error) {
	body := map[string]any{"url": e.url, "events": []string{eventType}, "secret": e.secret}
	if e.maxInFlight > 0 {
		body["max_in_flight"] = e.maxInFlight
	}
	var ep struct {
		ID string `json:"id"`
	}
	if err := a.call(ctx, "POST", "/api/webhooks", body, &ep); err != nil {
		return "", fmt.Errorf("create endpoint %s: %w", e.url, err)
	}
	return ep.ID, nil
}

// version returns the version hookd reports in GET /api/health.
func (a *api) version(ctx context.Context) (string, error) {
	var h struct {
		Version string `json:"version"`
	}
	if err := a.call(ctx, "GET", "/api/health", nil, &h); err != nil {
		return "", fmt.Errorf("check hookd's health: %w", err)
	}
	return h.Version, nil
}

// eventType is the type of every event the bench publishes.
const eventType = "bench.event"

// appendData appends an event's data to b: the send time (unix nanoseconds)
// and padding.
func appendData(b []byte, sentAt int64, pad string) []byte {
	b = append(b, `{"sent_at":`...)
	b = strconv.AppendInt(b, sentAt, 10)
	b = append(b, `,"pad":"`...)
	b = append(b, pad...)
	return append(b, `"}`...)
}

// padFor returns the padding that makes an event's data size bytes long.
func padFor(size int) string {
	n := size - len(appendData(nil, time.Now().UnixNano(), ""))
	return strings.Repeat("x", max(n, 0))
}

// publisher publishes events and counts the outcomes. Its methods are safe for
// concurrent use.
type publisher struct {
	api *api
	pad string
	lat *histogram // round trip of each publish request

	acked    atomic.Int64 // events acknowledged with a 2xx
	failed   atomic.Int64 // requests that got no 2xx
	mu       sync.Mutex
	firstErr string
}

func newPublisher(a *api, payloadBytes int) *publisher {
	return &publisher{api: a, pad: padFor(payloadBytes), lat: newHistogram()}
}

// single publishes one event through POST /api/events.
func (p *publisher) single(ctx context.Context) {
	b := make([]byte, 0, 64+len(p.pad))
	b = append(b, `{"type":"`+eventType+`","data":`...)
	start := time.Now()
	b = appendData(b, start.UnixNano(), p.pad)
	b = append(b, '}')
	p.do(ctx, "/api/events", b, 1, start)
}

// batch publishes n events in one POST /api/events/batch.
func (p *publisher) batch(ctx context.Context, n int) {
	b := make([]byte, 0, 16+n*(64+len(p.pad)))
	b = append(b, `{"events":[`...)
	start := time.Now()
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"type":"`+eventType+`","data":`...)
		b = appendData(b, start.UnixNano(), p.pad)
		b = append(b, '}')
	}
	b = append(b, "]}"...)
	p.do(ctx, "/api/events/batch", b, n, start)
}

func (p *publisher) do(ctx context.Context, path string, body []byte, events int, start time.Time) {
	err := p.api.call(ctx, "POST", path, body, nil)
	if err != nil {
		if ctx.Err() != nil {
			return // the phase ended; not hookd's failure
		}
		p.failed.Add(1)
		p.mu.Lock()
		if p.firstErr == "" {
			p.firstErr = fmt.Sprintf("POST %s: %v", path, err)
		}
		p.mu.Unlock()
		return
	}
	p.lat.Record(time.Since(start))
	p.acked.Add(int64(events))
}

// firstError returns the first failure's description ("" if none).
func (p *publisher) firstError() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.firstErr
}

// closedLoop publishes total events from clients goroutines, each sending the
// next request as soon as the previous one was answered, batchSize events a
// request (1: the single-event route). It returns when all were sent or ctx
// ends.
func (p *publisher) closedLoop(ctx context.Context, total, clients, batchSize int) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for ctx.Err() == nil {
				end := next.Add(int64(batchSize))
				n := min(int64(batchSize), int64(total)-(end-int64(batchSize)))
				if n <= 0 {
					return
				}
				if batchSize == 1 {
					p.single(ctx)
				} else {
					p.batch(ctx, int(n))
				}
			}
		})
	}
	wg.Wait()
}

// paced publishes single events at rate per second for d, open-loop: sends are
// spread evenly on a schedule, each in its own goroutine (up to 4,096 at once),
// so that a slow answer does not delay the next send. A send that is late is
// made as soon as possible, never skipped. It returns when every send was
// answered or ctx ends.
func (p *publisher) paced(ctx context.Context, rate int, d time.Duration) {
	total := int(float64(rate) * d.Seconds())
	interval := time.Second / time.Duration(rate)
	sem := make(chan struct{}, 4096)
	var wg sync.WaitGroup
	defer wg.Wait()
	start := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for i := 0; i < total; {
		due := min(int(time.Since(start)/interval)+1, total)
		for ; i < due; i++ {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			wg.Go(func() {
				defer func() { <-sem }()
				p.single(ctx)
			})
		}
		if i < total {
			timer.Reset(time.Until(start.Add(time.Duration(i) * interval)))
			select {
			case <-timer.C:
			case <-ctx.Done():
				return
			}
		}
	}
}
