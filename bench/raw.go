package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hookd/hookd/ids"
	"github.com/hookd/hookd/netguard"
	"github.com/hookd/hookd/signature"
)

// rawEndpoint is the receiver endpoint name of the raw loopback measurement.
const rawEndpoint = "raw"

// measureRaw measures the machine's raw loopback HTTP capacity: conc
// goroutines POST delivery-like requests (an envelope body of the size hookd
// sends, signed, with hookd's headers) to the receiver's /ok/raw for d, with
// the HTTP client hookd delivers with. Each goroutine first sends one request
// that is not counted, so that connections are open when the clock starts;
// requests in flight at the end are finished and counted. It returns the
// answered requests per second.
func measureRaw(ctx context.Context, receiverURL, secret string, payloadBytes, conc int, d time.Duration) (float64, error) {
	client := netguard.Policy{AllowHTTP: true, AllowPrivate: true}.Client()
	if t, ok := client.Transport.(*http.Transport); ok {
		// As hookd's engine does: keep every connection its attempts open.
		t.MaxIdleConnsPerHost = max(t.MaxIdleConnsPerHost, conc)
		t.MaxIdleConns = max(t.MaxIdleConns, conc)
	}
	defer client.CloseIdleConnections()
	pad := padFor(payloadBytes)
	org := ids.New("org")
	url := receiverURL + "/ok/" + rawEndpoint
	send := func(body []byte) ([]byte, error) {
		now := time.Now()
		id := ids.NewAt("evt", now)
		body = append(body[:0], `{"id":"`...)
		body = append(body, id...)
		body = append(body, `","type":"`+eventType+`","timestamp":"`...)
		body = now.UTC().AppendFormat(body, time.RFC3339)
		body = append(body, `","organization":"`...)
		body = append(body, org...)
		body = append(body, `","data":`...)
		body = appendData(body, now.UnixNano(), pad)
		body = append(body, '}')
		return body, rawSend(ctx, client, url, secret, id, now, body)
	}
	var (
		ok       atomic.Int64
		stop     atomic.Bool
		errMu    sync.Mutex
		firstErr error
		warm     sync.WaitGroup
		wg       sync.WaitGroup
	)
	fail := func(err error) {
		errMu.Lock()
		defer errMu.Unlock()
		if firstErr == nil {
			firstErr = err
		}
	}
	begin := make(chan struct{})
	warm.Add(conc)
	for range conc {
		wg.Go(func() {
			body, err := send(make([]byte, 0, 256+len(pad)))
			warm.Done()
			if err != nil {
				fail(err)
				return
			}
			<-begin
			for !stop.Load() {
				if body, err = send(body); err != nil {
					fail(err)
					return
				}
				ok.Add(1)
			}
		})
	}
	warm.Wait()
	start := time.Now()
	close(begin)
	t := time.AfterFunc(d, func() { stop.Store(true) })
	defer t.Stop()
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return 0, fmt.Errorf("measure the raw loopback capacity: %w", firstErr)
	}
	return float64(ok.Load()) / elapsed.Seconds(), nil
}

// rawSend makes one request as hookd would.
func rawSend(ctx context.Context, client *http.Client, url, secret, id string, now time.Time, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "hookd-bench")
	req.Header.Set("Webhook-Id", id)
	req.Header.Set("Webhook-Timestamp", strconv.FormatInt(now.Unix(), 10))
	sig, err := signature.Sign(signature.StandardWebhooks, "", []string{secret}, signature.Message{ID: id, Timestamp: now, Body: body})
	if err != nil {
		return err
	}
	for k, vs := range sig {
		req.Header[k] = vs
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the receiver answered %s", resp.Status)
	}
	return nil
}
