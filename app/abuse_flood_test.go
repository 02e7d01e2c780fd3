package app_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookd/hookd/app"
	"github.com/hookd/hookd/hookdtest"
)

// floodResult is what one flood of wrong keys did.
type floodResult struct {
	inbound, management int64 // wrong-key requests sent to each door
	elapsed             time.Duration
}

// floodWrongKeys sends n requests with wrong keys from workers goroutines,
// alternating between the partner door (x-api-key) and an audited management
// route (Bearer), and fails the test unless every one answers 401 with its
// door's code.
func floodWrongKeys(t *testing.T, h *hookdtest.Hookd, n, workers int) floodResult {
	t.Helper()
	body := hookdtest.PartnerEventBody(t, "flood", "order.created", map[string]any{})
	create, _ := json.Marshal(map[string]any{"url": "http://127.0.0.1:1/x", "events": []string{"*"}})
	var next, inbound, mgmt atomic.Int64
	var wrong sync.Map // first wrong answer per door
	start := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				key := fmt.Sprintf("hk_wrong_%040d", i)
				var req *http.Request
				var wantCode string
				if i%2 == 0 {
					req, _ = http.NewRequest(http.MethodPost, h.URL()+"/api/webhooks/events", bytes.NewReader(body))
					req.Header = hookdtest.SignedHeader(key, "whsec_wrong", time.Now().Unix(), body)
					wantCode = "invalid_api_key"
					inbound.Add(1)
				} else {
					req, _ = http.NewRequest(http.MethodPost, h.URL()+"/api/webhooks", bytes.NewReader(create))
					req.Header.Set("Authorization", "Bearer "+key)
					req.Header.Set("Content-Type", "application/json")
					wantCode = "unauthorized"
					mgmt.Add(1)
				}
				status, _, raw := h.Send(t, req)
				var e struct{ Error struct{ Code string } }
				if json.Unmarshal(raw, &e); status != http.StatusUnauthorized || e.Error.Code != wantCode {
					wrong.LoadOrStore(wantCode, fmt.Sprintf("%d %s", status, raw))
				}
			}
		})
	}
	wg.Wait()
	wrong.Range(func(k, v any) bool {
		t.Errorf("a wrong key (%s expected) answered %s, want 401 %s", k, v, k)
		return true
	})
	return floodResult{inbound: inbound.Load(), management: mgmt.Load(), elapsed: time.Since(start)}
}

// failureTally sums the audit log's failure records of action and reason.
type failureTally struct {
	attempts int64 // the records' counts summed
	records  int   // records
	summed   int   // records that stand for more than one attempt
}

// tallyFailures reads the whole audit log (admin key) for action and sums the
// failures with reason.
func tallyFailures(t *testing.T, h *hookdtest.Hookd, action, reason string) failureTally {
	t.Helper()
	var tally failureTally
	q := url.Values{"action": {action}}
	for pages := 0; ; pages++ {
		status, _, raw := h.Raw(t, http.MethodGet, "/api/audit?limit=500&"+q.Encode(), h.AdminKey, nil, nil)
		var list struct {
			Data []struct {
				Result, Reason string
				Count          int64
			}
			NextCursor *string `json:"next_cursor"`
		}
		if status != http.StatusOK || json.Unmarshal(raw, &list) != nil || pages > 100 {
			t.Fatalf("GET /api/audit?%s = %d %s", q.Encode(), status, raw)
		}
		for _, r := range list.Data {
			if r.Result != "failure" || r.Reason != reason {
				continue
			}
			if r.Count < 1 {
				t.Errorf("audit record with count %d, want ≥ 1", r.Count)
			}
			tally.attempts += r.Count
			tally.records++
			if r.Count > 1 {
				tally.summed++
			}
		}
		if list.NextCursor == nil || *list.NextCursor == "" {
			return tally
		}
		q.Set("cursor", *list.NextCursor)
	}
}

// waitTally polls the audit log until the failures of action and reason add up
// to want, or fails the test after timeout.
func waitTally(t *testing.T, h *hookdtest.Hookd, action, reason string, want int64, timeout time.Duration) failureTally {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := tallyFailures(t, h, action, reason)
		if got.attempts == want || time.Now().After(deadline) {
			if got.attempts != want {
				t.Errorf("%s failures (%s) in the audit log add up to %d attempts, want %d", action, reason, got.attempts, want)
			}
			return got
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestAbuseWrongKeyFlood floods both doors with wrong keys while a partner and
// an organization keep working. Every wrong key answers 401; the legitimate
// requests are all accepted and audited one by one; the audit log accounts for
// every failed attempt, failures beyond --audit-failure-rate summed into records
// with a count, so the store writes a bounded number of records whatever the
// flood's rate. hookd stopped right after a flood still writes what it summed.
func TestAbuseWrongKeyFlood(t *testing.T) {
	t.Parallel()
	const rate = 20 // failure records per second one by one (bursts of 40)
	n := 1200
	if testing.Short() {
		n = 400
	}
	e := setup(t, func(c *app.Config) { c.AuditFailureRate = rate; c.KeyRateLimit = -1 })
	r := hookdtest.NewReceiver(t)
	e.endpoint(t, r.URL(), nil)
	p := e.partner(t, nil)

	// Legitimate traffic beside the flood.
	var legit sync.WaitGroup
	var lat []time.Duration
	var latMu sync.Mutex
	const partnerEvents, orgEvents = 40, 40
	legit.Go(func() {
		for i := range partnerEvents {
			start := time.Now()
			status, _, m := e.h.SendPartnerEvent(t, p, "legit-"+strconv.Itoa(i), "order.created", map[string]any{"i": i})
			latMu.Lock()
			lat = append(lat, time.Since(start))
			latMu.Unlock()
			if status != http.StatusAccepted {
				t.Errorf("legitimate partner event %d during the flood = %d %v, want 202", i, status, m)
			}
		}
	})
	legit.Go(func() {
		for i := range orgEvents {
			start := time.Now()
			status, m := e.h.Do(t, http.MethodPost, "/api/events", e.key,
				map[string]any{"id": "org-" + strconv.Itoa(i), "type": "order.created", "data": map[string]any{"i": i}})
			latMu.Lock()
			lat = append(lat, time.Since(start))
			latMu.Unlock()
			if status != http.StatusAccepted {
				t.Errorf("legitimate publish %d during the flood = %d %v, want 202", i, status, m)
			}
		}
	})
	f := floodWrongKeys(t, e.h, n, 16)
	legit.Wait()

	// The ticker writes the sums within a second or so.
	in := waitTally(t, e.h, "inbound.event", "invalid_api_key", f.inbound, 10*time.Second)
	mg := waitTally(t, e.h, "endpoint.create", "unauthorized", f.management, 10*time.Second)
	for _, c := range []struct {
		door string
		n    int64
		got  failureTally
	}{{"partner door", f.inbound, in}, {"management API", f.management, mg}} {
		// At most the burst and the rate one by one, plus one summed record per
		// flush while the flood ran (one kind: same action, reason and address).
		secs := f.elapsed.Seconds() + 2
		limit := 2*rate + int(rate*secs) + int(secs) + 1
		if c.got.records > limit || c.got.summed == 0 {
			t.Errorf("%s: %d wrong keys in %s left %d audit records (%d summed), want at most %d with some summed",
				c.door, c.n, f.elapsed.Round(time.Millisecond), c.got.records, c.got.summed, limit)
		}
	}
	// Successes are never summed: one record per accepted partner event.
	ok := 0
	_, recs := e.h.Audit(t, e.h.AdminKey, url.Values{"action": {"inbound.event"}})
	for _, rec := range recs {
		if str(rec, "result") == "success" {
			ok++
			if num(rec, "count") != 1 {
				t.Errorf("success record with count %v, want 1: %s", rec["count"], hookdtest.JSON(rec))
			}
		}
	}
	if ok != partnerEvents {
		t.Errorf("%d success records of inbound.event, want %d (one per accepted event)", ok, partnerEvents)
	}
	r.Wait(t, partnerEvents+orgEvents, 10*time.Second)
	slices.Sort(lat)
	t.Logf("flood: %d wrong keys in %s (%.0f/s) → %d + %d audit records (%d + %d summed); legitimate requests beside it: p50 %s, max %s",
		n, f.elapsed.Round(time.Millisecond), float64(n)/f.elapsed.Seconds(), in.records, mg.records, in.summed, mg.summed,
		lat[len(lat)/2].Round(time.Microsecond), lat[len(lat)-1].Round(time.Microsecond))

	// A flood cut short by a shutdown: Stop writes what was summed.
	f2 := floodWrongKeys(t, e.h, 200, 8)
	e.h.Restart(t)
	waitTally(t, e.h, "inbound.event", "invalid_api_key", f.inbound+f2.inbound, 0)
	waitTally(t, e.h, "endpoint.create", "unauthorized", f.management+f2.management, 0)
}
