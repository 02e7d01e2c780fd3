package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hookd/hookd/signature"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestSentAt(t *testing.T) {
	t.Parallel()
	tests := []struct {
		body string
		want int64
		ok   bool
	}{
		{`{"id":"evt_1","type":"bench.event","timestamp":"2026-11-24T00:00:00Z","organization":"org_1","data":{"sent_at":1795000000123456789,"pad":"xx"}}`, 1795000000123456789, true},
		{`{"data":{"sent_at": 42,"pad":""}}`, 42, true},
		{`{"data":{"sent_at":` + "\n\t 7}}", 7, true},
		{`{"sent_at":0}`, 0, true},
		{`{"sent_at":-5}`, 0, false},
		{`{"sent_at":"12"}`, 0, false},
		{`{"sent_at":}`, 0, false},
		{`{"sent_at":99999999999999999999}`, 0, false}, // overflows int64
		{`{"sent_at":9223372036854775807}`, 9223372036854775807, true},
		{`{"data":{"pad":"x"}}`, 0, false},
		{``, 0, false},
		{`"sent_at":`, 0, false},
	}
	for _, tt := range tests {
		got, ok := sentAt([]byte(tt.body))
		if got != tt.want || ok != tt.ok {
			t.Errorf("sentAt(%q) = %d, %v, want %d, %v", tt.body, got, ok, tt.want, tt.ok)
		}
	}
}

func FuzzSentAt(f *testing.F) {
	f.Add([]byte(`{"data":{"sent_at":1795000000123456789,"pad":"xx"}}`))
	f.Add([]byte(`{"sent_at": 42}`))
	f.Add([]byte(`{"sent_at":99999999999999999999}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		v, ok := sentAt(body)
		if !ok {
			return
		}
		if v < 0 || !bytes.Contains(body, []byte(strconv.FormatInt(v, 10))) {
			t.Errorf("sentAt(%q) = %d, which is not in the body", body, v)
		}
	})
}

// startReceiver runs RunReceiver for the test and returns its URL.
func startReceiver(t *testing.T, cfg ReceiverConfig) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- RunReceiver(ctx, cfg, pw)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("read the receiver's URL: %v", err)
	}
	go io.Copy(io.Discard, pr)
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("RunReceiver: %v", err)
		}
	})
	return strings.TrimSpace(line)
}

// TestReceiver: counts, uniqueness per (webhook-id, endpoint), latency from
// sent_at, signature checks, and the answers of /ok, /fail and /hang.
func TestReceiver(t *testing.T) {
	t.Parallel()
	base := startReceiver(t, ReceiverConfig{Verify: true})
	hc := newClient(8)
	t.Cleanup(hc.CloseIdleConnections)
	ctl := &api{base: base, hc: hc}
	ctx := context.Background()
	secret := signature.NewSecret()
	if err := ctl.call(ctx, "POST", "/_secrets", map[string]string{"a": secret, "c": secret}, nil); err != nil {
		t.Fatal(err)
	}
	send := func(path, id, sigSecret string, sent time.Time) int {
		t.Helper()
		body := appendData([]byte(`{"id":"`+id+`","data":`), sent.UnixNano(), "pad")
		body = append(body, '}')
		req, _ := http.NewRequest("POST", base+path, bytes.NewReader(body))
		now := time.Now()
		req.Header.Set("webhook-id", id)
		req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
		sig, err := signature.Sign(signature.StandardWebhooks, "", []string{sigSecret}, signature.Message{ID: id, Timestamp: now, Body: body})
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range sig {
			req.Header[k] = v
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	now := time.Now()
	for _, tt := range []struct {
		path, id, secret string
		sent             time.Time
		want             int
	}{
		{"/ok/a", "evt_1", secret, now.Add(-10 * time.Millisecond), 200},
		{"/ok/a", "evt_1", secret, now.Add(-20 * time.Millisecond), 200}, // a retry
		{"/ok/a", "evt_2", signature.NewSecret(), now.Add(-30 * time.Millisecond), 200},
		{"/fail/b", "evt_1", secret, now.Add(-40 * time.Millisecond), 500}, // no secret given: not checked
	} {
		if got := send(tt.path, tt.id, tt.secret, tt.sent); got != tt.want {
			t.Errorf("POST %s = %d, want %d", tt.path, got, tt.want)
		}
	}
	// A hanging request ends with 503 once released.
	var wg sync.WaitGroup
	wg.Go(func() {
		if got := send("/hang/c", "evt_3", secret, now.Add(-50*time.Millisecond)); got != 503 {
			t.Errorf("POST /hang/c = %d, want 503 after /_release", got)
		}
	})
	for {
		var st receiverStats
		if err := ctl.call(ctx, "GET", "/_stats", nil, &st); err != nil {
			t.Fatal(err)
		}
		if st.Endpoints["c"].Requests == 1 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := ctl.call(ctx, "POST", "/_release", nil, nil); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	var st receiverStats
	if err := ctl.call(ctx, "GET", "/_stats", nil, &st); err != nil {
		t.Fatal(err)
	}
	if st.Requests != 5 || st.Unique != 4 || st.BadSignatures != 1 {
		t.Errorf("stats: requests %d, unique %d, bad signatures %d; want 5, 4, 1", st.Requests, st.Unique, st.BadSignatures)
	}
	if !strings.Contains(st.FirstBad, "evt_2") {
		t.Errorf("first bad signature = %q, want it to name evt_2", st.FirstBad)
	}
	if a := st.Endpoints["a"]; a.Requests != 3 || a.Unique != 2 || a.First == 0 || a.Last < a.First {
		t.Errorf("endpoint a: %+v, want 3 requests, 2 unique, first ≤ last", a)
	}
	if st.Latency.Count != 5 || st.Latency.Max < 50 || st.Latency.P50 < 10 {
		t.Errorf("latency %+v: want 5 values, p50 ≥ 10 ms, max ≥ 50 ms", st.Latency)
	}
	if err := ctl.call(ctx, "POST", "/_reset", nil, nil); err != nil {
		t.Fatal(err)
	}
	var empty receiverStats
	if err := ctl.call(ctx, "GET", "/_stats", nil, &empty); err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(empty); empty.Requests != 0 || len(empty.Endpoints) != 0 || empty.Latency.Count != 0 {
		t.Errorf("after /_reset: %s, want nothing counted", b)
	}
}
