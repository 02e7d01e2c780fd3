package app_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookd/hookd/app"
	"github.com/hookd/hookd/hookdtest"
)

// fastRetry is an endpoint retry schedule that keeps tests quick. An endpoint
// whose deliveries are meant to fail should not subscribe to "*": it would also
// receive the delivery.failed events about itself.
func fastRetry(maxAttempts int) map[string]any {
	return map[string]any{"max_attempts": maxAttempts, "initial_interval": 0.05, "max_interval": 0.2}
}

func TestFanOutAndFilters(t *testing.T) {
	t.Parallel()
	e := setup(t)
	patterns := []string{"*", "invoice.paid", "invoice.*", "other.thing"}
	recv := make([]*hookdtest.Receiver, len(patterns))
	for i, p := range patterns {
		recv[i] = hookdtest.NewReceiver(t)
		e.endpoint(t, recv[i].URL(), map[string]any{"events": []string{p}})
	}
	_, keyB := e.h.CreateOrg(t)
	otherOrg := hookdtest.NewReceiver(t)
	e.h.CreateEndpoint(t, keyB, map[string]any{"url": otherOrg.URL(), "events": []string{"*"}})

	published := []struct {
		typ        string
		deliveries int
	}{
		{"invoice.paid", 3},         // "*", "invoice.paid", "invoice.*"
		{"invoice", 1},              // "*" only: "invoice.*" needs something after the dot
		{"invoice.item.created", 2}, // "*", "invoice.*"
	}
	ids := map[string]string{}
	for _, p := range published {
		res := e.publish(t, "", p.typ, map[string]any{"type": p.typ})
		if got := num(res, "deliveries"); got != float64(p.deliveries) {
			t.Errorf("publish %s: deliveries = %v, want %d", p.typ, got, p.deliveries)
		}
		ids[p.typ] = str(res, "id")
	}

	want := [][]string{
		{"invoice.paid", "invoice", "invoice.item.created"},
		{"invoice.paid"},
		{"invoice.paid", "invoice.item.created"},
		nil,
	}
	for i, r := range recv {
		if len(want[i]) > 0 {
			r.Wait(t, len(want[i]), 5*time.Second)
		}
	}
	recv[0].NoMoreThan(t, len(want[0]), 300*time.Millisecond) // let strays arrive
	for i, r := range recv {
		var got []string
		for _, req := range r.NoMoreThan(t, len(want[i]), 0) {
			ev := decodeEnvelope(t, req.Body)
			if ev.ID != ids[ev.Type] || req.Header.Get("Webhook-Id") != ev.ID {
				t.Errorf("endpoint %q got event %s (webhook-id %s) of type %s, want %s", patterns[i], ev.ID,
					req.Header.Get("Webhook-Id"), ev.Type, ids[ev.Type])
			}
			got = append(got, ev.Type)
		}
		slices.Sort(got)
		w := slices.Sorted(slices.Values(want[i]))
		if !slices.Equal(got, w) {
			t.Errorf("endpoint subscribed to %q received %v, want each of %v once", patterns[i], got, w)
		}
	}
	otherOrg.NoMoreThan(t, 0, 0)
	if ds := hookdtest.Items(e.h.Get(t, keyB, "/api/deliveries")); len(ds) != 0 {
		t.Errorf("the other organization has %d deliveries, want 0: %s", len(ds), hookdtest.JSON(ds))
	}
}

func TestRetryUntilSuccess(t *testing.T) {
	t.Parallel()
	e := setup(t)
	r := hookdtest.NewReceiver(t)
	r.Respond(hookdtest.FailFirst(2, http.StatusInternalServerError))
	ep := e.endpoint(t, r.URL(), map[string]any{"retry": fastRetry(3)})
	res := e.publish(t, "", "order.created", map[string]any{"n": 1})

	reqs := r.Wait(t, 3, 10*time.Second)
	for _, req := range reqs {
		if got := req.Header.Get("Webhook-Id"); got != str(res, "id") {
			t.Errorf("attempt %d: webhook-id = %q, want the event id %q", req.N, got, str(res, "id"))
		}
		verifyStandard(t, str(ep, "secret"), req)
	}
	d := e.h.DeliveryFor(t, e.key, str(res, "id"), str(ep, "id"))
	d = e.h.WaitDeliveryStatus(t, e.key, str(d, "id"), "succeeded", 5*time.Second)
	if num(d, "attempt_count") != 3 {
		t.Errorf("attempt_count = %v, want 3", d["attempt_count"])
	}
	as := attempts(d)
	if len(as) != 3 {
		t.Fatalf("got %d attempts, want 3: %s", len(as), hookdtest.JSON(d))
	}
	for i, a := range as {
		if num(a, "number") != float64(i+1) {
			t.Errorf("attempt %d: number = %v", i+1, a["number"])
		}
		if dur := num(a, "duration"); dur < 0 {
			t.Errorf("attempt %d: duration = %v, want seconds", i+1, a["duration"])
		}
		if h := obj(a, "request_headers"); len(h) == 0 {
			t.Errorf("attempt %d: no request_headers", i+1)
		}
		if i < 2 {
			if num(a, "response_status") != 500 || str(a, "response_body") != fmt.Sprintf("failure %d", i+1) ||
				str(a, "error") == "" || a["success"] != false {
				t.Errorf("failed attempt %d = %s, want response_status 500, response_body %q, an error, success false",
					i+1, hookdtest.JSON(a), fmt.Sprintf("failure %d", i+1))
			}
		} else if num(a, "response_status") != 200 || a["error"] != nil || a["success"] != true || str(a, "response_body") != "ok" {
			t.Errorf("last attempt = %s, want response_status 200, error null, success true", hookdtest.JSON(a))
		}
	}
	r.NoMoreThan(t, 3, 300*time.Millisecond)
}

func TestRetryExhaustionEmitsDeliveryFailed(t *testing.T) {
	t.Parallel()
	e := setup(t)
	failing := hookdtest.NewReceiver(t)
	failing.Respond(hookdtest.Always(http.StatusInternalServerError))
	watcher := hookdtest.NewReceiver(t)
	ep := e.endpoint(t, failing.URL(), map[string]any{"events": []string{"order.created"}, "retry": fastRetry(3)})
	e.endpoint(t, watcher.URL(), map[string]any{"events": []string{"delivery.failed"}})

	res := e.publish(t, "", "order.created", map[string]any{"n": 1})
	failing.Wait(t, 3, 10*time.Second)
	d := e.h.DeliveryFor(t, e.key, str(res, "id"), str(ep, "id"))
	d = e.h.WaitDeliveryStatus(t, e.key, str(d, "id"), "failed", 5*time.Second)
	if num(d, "attempt_count") != 3 || len(attempts(d)) != 3 {
		t.Errorf("failed delivery: attempt_count = %v with %d attempts, want 3", d["attempt_count"], len(attempts(d)))
	}

	reqs := watcher.Wait(t, 1, 5*time.Second)
	ev := decodeEnvelope(t, reqs[0].Body)
	if ev.Type != "delivery.failed" || ev.Organization != e.org {
		t.Errorf("watcher got %s in %s, want delivery.failed in %s", ev.Type, ev.Organization, e.org)
	}
	var data map[string]any
	if err := json.Unmarshal(ev.Data, &data); err != nil {
		t.Fatalf("delivery.failed data: %v", err)
	}
	if str(data, "delivery") != str(d, "id") || str(data, "event") != str(res, "id") ||
		str(data, "webhook") != str(ep, "id") || num(data, "attempts") != 3 || str(data, "event_type") != "order.created" {
		t.Errorf("delivery.failed data = %s, want delivery %s, event %s, webhook %s, attempts 3",
			ev.Data, str(d, "id"), str(res, "id"), str(ep, "id"))
	}
	failing.NoMoreThan(t, 3, 300*time.Millisecond)
	watcher.NoMoreThan(t, 1, 0)
}

func TestManualRetry(t *testing.T) {
	t.Parallel()
	e := setup(t)
	r := hookdtest.NewReceiver(t)
	r.Respond(hookdtest.Always(http.StatusInternalServerError))
	ep := e.endpoint(t, r.URL(), map[string]any{"events": []string{"order.created"}, "retry": fastRetry(1)})
	res := e.publish(t, "", "order.created", map[string]any{"n": 1})
	d := e.h.DeliveryFor(t, e.key, str(res, "id"), str(ep, "id"))
	e.h.WaitDeliveryStatus(t, e.key, str(d, "id"), "failed", 5*time.Second)
	r.NoMoreThan(t, 1, 200*time.Millisecond)

	r.Respond(hookdtest.Always(http.StatusOK))
	status, m := e.h.Do(t, http.MethodPost, "/api/deliveries/"+str(d, "id")+"/retry", e.key, nil)
	if status != http.StatusAccepted && status != http.StatusOK {
		t.Fatalf("retry = %d %v, want 202", status, m)
	}
	reqs := r.Wait(t, 2, 5*time.Second)
	if reqs[1].Header.Get("Webhook-Id") != str(res, "id") {
		t.Errorf("retried webhook-id = %q, want %q", reqs[1].Header.Get("Webhook-Id"), str(res, "id"))
	}
	d = e.h.WaitDeliveryStatus(t, e.key, str(d, "id"), "succeeded", 5*time.Second)
	if num(d, "attempt_count") != 2 {
		t.Errorf("attempt_count = %v, want 2", d["attempt_count"])
	}
	r.NoMoreThan(t, 2, 200*time.Millisecond)
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	e := setup(t)
	firstAnswers := func(status int, retryAfter string) hookdtest.Script {
		return func(n int, _ *http.Request) (int, http.Header, string) {
			if n == 1 {
				return status, http.Header{"Retry-After": {retryAfter}}, "slow down"
			}
			return http.StatusOK, nil, "ok"
		}
	}
	honoured := hookdtest.NewReceiver(t)
	honoured.Respond(firstAnswers(http.StatusTooManyRequests, "1"))
	e.endpoint(t, honoured.URL(), map[string]any{"retry": map[string]any{"max_attempts": 5, "initial_interval": 0.05, "max_interval": 5}})
	capped := hookdtest.NewReceiver(t)
	capped.Respond(firstAnswers(http.StatusServiceUnavailable, "3600"))
	e.endpoint(t, capped.URL(), map[string]any{"retry": map[string]any{"max_attempts": 5, "initial_interval": 0.05, "max_interval": 0.3}})

	e.publish(t, "", "order.created", map[string]any{"n": 1})

	reqs := honoured.Wait(t, 2, 10*time.Second)
	if gap := reqs[1].Time.Sub(reqs[0].Time); gap < 990*time.Millisecond || gap > 3*time.Second {
		t.Errorf("429 with Retry-After: 1: next attempt %s later, want about 1s (never sooner)", gap)
	}
	reqs = capped.Wait(t, 2, 5*time.Second)
	// The wait is min(Retry-After, max_interval) = 0.3 s: longer than the
	// 50 ms backoff (so Retry-After was read), far shorter than an hour.
	if gap := reqs[1].Time.Sub(reqs[0].Time); gap < 250*time.Millisecond || gap > 2*time.Second {
		t.Errorf("503 with Retry-After: 3600 and max_interval 0.3: next attempt %s later, want about 0.3s", gap)
	}
}

func TestGoneDisablesEndpoint(t *testing.T) {
	t.Parallel()
	e := setup(t)
	gone := hookdtest.NewReceiver(t)
	gone.Respond(hookdtest.Always(http.StatusGone))
	watcher := hookdtest.NewReceiver(t)
	ep := e.endpoint(t, gone.URL(), map[string]any{"events": []string{"order.created"}, "retry": fastRetry(5)})
	e.endpoint(t, watcher.URL(), map[string]any{"events": []string{"endpoint.disabled"}})

	res := e.publish(t, "", "order.created", map[string]any{"n": 1})
	gone.Wait(t, 1, 5*time.Second)
	d := e.h.DeliveryFor(t, e.key, str(res, "id"), str(ep, "id"))
	d = e.h.WaitDeliveryStatus(t, e.key, str(d, "id"), "failed", 5*time.Second)
	if num(d, "attempt_count") != 1 {
		t.Errorf("attempt_count = %v, want 1 (410 is not retried)", d["attempt_count"])
	}
	got := e.h.Get(t, e.key, "/api/webhooks/"+str(ep, "id"))
	if got["enabled"] != false || str(got, "disabled_reason") == "" {
		t.Errorf("after 410: enabled = %v, disabled_reason = %v; want false and a reason", got["enabled"], got["disabled_reason"])
	}

	reqs := watcher.Wait(t, 1, 5*time.Second)
	ev := decodeEnvelope(t, reqs[0].Body)
	var data map[string]any
	json.Unmarshal(ev.Data, &data)
	if ev.Type != "endpoint.disabled" || str(data, "webhook") != str(ep, "id") {
		t.Errorf("watcher got %s %s, want endpoint.disabled for %s", ev.Type, ev.Data, str(ep, "id"))
	}
	gone.NoMoreThan(t, 1, 300*time.Millisecond)

	res = e.publish(t, "", "order.created", map[string]any{"n": 2})
	if d := e.h.DeliveryFor(t, e.key, str(res, "id"), str(ep, "id")); str(d, "status") != "skipped" {
		t.Errorf("delivery to the disabled endpoint: status %v, want skipped", d["status"])
	}
	gone.NoMoreThan(t, 1, 200*time.Millisecond)
	watcher.NoMoreThan(t, 1, 0)
}

func TestDisabledEndpointSkipsAndReplay(t *testing.T) {
	t.Parallel()
	e := setup(t)
	r := hookdtest.NewReceiver(t)
	ep := e.endpoint(t, r.URL(), map[string]any{"headers": map[string]string{"X-Team": "billing"}, "description": "kept"})
	id := str(ep, "id")
	since := time.Now().UTC().Add(-time.Minute).Format(time.RFC3339)

	status, m := e.h.Do(t, http.MethodPatch, "/api/webhooks/"+id, e.key, map[string]any{"enabled": false})
	if status != http.StatusOK || m["enabled"] != false {
		t.Fatalf("PATCH enabled=false = %d %v", status, m)
	}
	got := e.h.Get(t, e.key, "/api/webhooks/"+id)
	if got["url"] != ep["url"] || got["description"] != "kept" || str(obj(got, "headers"), "X-Team") != "billing" {
		t.Errorf("disabled endpoint lost its configuration: %s", hookdtest.JSON(got))
	}
	res := e.publish(t, "", "order.created", map[string]any{"n": 1})
	if num(res, "deliveries") != 1 {
		t.Errorf("deliveries = %v, want 1 (a skipped one)", res["deliveries"])
	}
	d := e.h.DeliveryFor(t, e.key, str(res, "id"), id)
	if str(d, "status") != "skipped" {
		t.Errorf("delivery status = %v, want skipped", d["status"])
	}
	r.NoMoreThan(t, 0, 300*time.Millisecond)

	if status, m := e.h.Do(t, http.MethodPatch, "/api/webhooks/"+id, e.key, map[string]any{"enabled": true}); status != http.StatusOK || m["enabled"] != true {
		t.Fatalf("PATCH enabled=true = %d %v", status, m)
	}
	r.NoMoreThan(t, 0, 200*time.Millisecond) // skipped deliveries wait for a replay

	status, m = e.h.Do(t, http.MethodPost, "/api/webhooks/"+id+"/replay", e.key, map[string]any{"since": since})
	if (status != http.StatusAccepted && status != http.StatusOK) || num(m, "replayed") != 1 {
		t.Fatalf("replay = %d %v, want 202 with replayed 1", status, m)
	}
	reqs := r.Wait(t, 1, 5*time.Second)
	if reqs[0].Header.Get("Webhook-Id") != str(res, "id") {
		t.Errorf("replayed webhook-id = %q, want %q", reqs[0].Header.Get("Webhook-Id"), str(res, "id"))
	}
	e.h.WaitDeliveryStatus(t, e.key, str(d, "id"), "succeeded", 5*time.Second)
	r.NoMoreThan(t, 1, 200*time.Millisecond)
}

func TestDisabledEndpointRetryWaits(t *testing.T) {
	t.Parallel()
	e := setup(t)
	r := hookdtest.NewReceiver(t)
	arrived, proceed := make(chan struct{}), make(chan struct{})
	r.Respond(func(n int, req *http.Request) (int, http.Header, string) {
		if n > 1 {
			return http.StatusOK, nil, "ok"
		}
		close(arrived)
		select {
		case <-proceed:
		case <-req.Context().Done():
		}
		return http.StatusInternalServerError, nil, "first attempt fails"
	})
	ep := e.endpoint(t, r.URL(), map[string]any{"retry": map[string]any{"max_attempts": 5, "initial_interval": 0.05, "max_interval": 0.1}})
	id := str(ep, "id")
	res := e.publish(t, "", "order.created", map[string]any{"n": 1})
	d := e.h.DeliveryFor(t, e.key, str(res, "id"), id)

	<-arrived
	if status, m := e.h.Do(t, http.MethodPatch, "/api/webhooks/"+id, e.key, map[string]any{"enabled": false}); status != http.StatusOK {
		t.Fatalf("PATCH enabled=false = %d %v", status, m)
	}
	close(proceed)
	e.h.WaitDelivery(t, e.key, str(d, "id"), 5*time.Second, func(d map[string]any) bool { return num(d, "attempt_count") == 1 })
	r.NoMoreThan(t, 1, 500*time.Millisecond) // the retry is due after 50 ms but waits
	if d := e.h.Get(t, e.key, "/api/deliveries/"+str(d, "id")); str(d, "status") != "pending" {
		t.Errorf("while disabled: delivery status %v, want pending", d["status"])
	}

	enabledAt := time.Now()
	if status, m := e.h.Do(t, http.MethodPatch, "/api/webhooks/"+id, e.key, map[string]any{"enabled": true}); status != http.StatusOK {
		t.Fatalf("PATCH enabled=true = %d %v", status, m)
	}
	reqs := r.Wait(t, 2, 5*time.Second)
	if wait := reqs[1].Time.Sub(enabledAt); wait > time.Second {
		t.Errorf("the waiting retry came %s after enabling, want it promptly", wait)
	}
	e.h.WaitDeliveryStatus(t, e.key, str(d, "id"), "succeeded", 5*time.Second)
}

func TestTestSend(t *testing.T) {
	t.Parallel()
	e := setup(t)
	r := hookdtest.NewReceiver(t)
	ep := e.endpoint(t, r.URL(), map[string]any{"events": []string{"order.created"}})
	path := "/api/webhooks/" + str(ep, "id") + "/test"

	status, m := e.h.Do(t, http.MethodPost, path, e.key, nil)
	if status != http.StatusOK {
		t.Fatalf("POST %s = %d %v", path, status, m)
	}
	a := obj(m, "attempt")
	if num(a, "response_status") != 200 || a["success"] != true || num(a, "duration") < 0 {
		t.Errorf("test attempt = %s, want response_status 200, success true and a duration", hookdtest.JSON(a))
	}
	reqs := r.Wait(t, 1, 5*time.Second)
	ev := decodeEnvelope(t, reqs[0].Body)
	if ev.Type != "webhook.test" || ev.ID != str(m, "event") || reqs[0].Header.Get("Webhook-Id") != ev.ID {
		t.Errorf("receiver got %s %s (webhook-id %s), want webhook.test %s", ev.Type, ev.ID, reqs[0].Header.Get("Webhook-Id"), str(m, "event"))
	}
	verifyStandard(t, str(ep, "secret"), reqs[0])

	r.Respond(func(int, *http.Request) (int, http.Header, string) {
		return http.StatusInternalServerError, nil, "nope"
	})
	status, m = e.h.Do(t, http.MethodPost, path, e.key, nil)
	a = obj(m, "attempt")
	if status != http.StatusOK || num(a, "response_status") != 500 || a["success"] != false || str(a, "error") == "" ||
		str(a, "response_body") != "nope" {
		t.Errorf("test to a failing receiver = %d %s, want the attempt with response_status 500, response_body, error, success false",
			status, hookdtest.JSON(m))
	}
	big := strings.Repeat("x", 10000)
	r.Respond(func(int, *http.Request) (int, http.Header, string) { return http.StatusOK, nil, big })
	status, m = e.h.Do(t, http.MethodPost, path, e.key, nil)
	if a := obj(m, "attempt"); status != http.StatusOK || str(a, "response_body") != big[:4096] || a["success"] != true {
		t.Errorf("test to a receiver answering 10,000 bytes: %d, response_body of %d bytes, success %v; want the first 4 KiB",
			status, len(str(a, "response_body")), a["success"])
	}
	r.NoMoreThan(t, 3, 200*time.Millisecond) // a test is one attempt, never retried
}

func TestAttemptTimeout(t *testing.T) {
	t.Parallel()
	e := setup(t, func(c *app.Config) { c.Engine.AttemptTimeout = 300 * time.Millisecond })
	r := hookdtest.NewReceiver(t)
	r.Respond(func(n int, req *http.Request) (int, http.Header, string) {
		if n == 1 {
			return hookdtest.Delay(5*time.Second, hookdtest.Always(http.StatusOK))(n, req)
		}
		return http.StatusOK, nil, "ok"
	})
	ep := e.endpoint(t, r.URL(), map[string]any{"retry": fastRetry(3)})
	res := e.publish(t, "", "order.created", map[string]any{"n": 1})
	r.Wait(t, 2, 5*time.Second)
	d := e.h.DeliveryFor(t, e.key, str(res, "id"), str(ep, "id"))
	d = e.h.WaitDeliveryStatus(t, e.key, str(d, "id"), "succeeded", 5*time.Second)
	as := attempts(d)
	if len(as) != 2 || !strings.Contains(str(as[0], "error"), "timed out") || as[0]["response_status"] != nil ||
		num(as[0], "duration") > 2 {
		t.Errorf("attempts = %s, want a first one that timed out after 0.3 s, then a success", hookdtest.JSON(as))
	}
}

func TestEndpointRateLimit(t *testing.T) {
	t.Parallel()
	e := setup(t)
	r := hookdtest.NewReceiver(t)
	e.endpoint(t, r.URL(), map[string]any{"rate_limit_per_s": 4})
	events := make([]map[string]any, 8)
	for i := range events {
		events[i] = map[string]any{"type": "order.created", "data": map[string]any{"n": i}}
	}
	if status, m := e.h.Do(t, http.MethodPost, "/api/events/batch", e.key, map[string]any{"events": events}); status != http.StatusAccepted {
		t.Fatalf("batch = %d %v", status, m)
	}
	reqs := r.Wait(t, 8, 10*time.Second)
	// 4 per second with a burst of 4: the last 4 need about a second more.
	if span := reqs[7].Time.Sub(reqs[0].Time); span < 750*time.Millisecond {
		t.Errorf("8 deliveries at rate_limit_per_s 4 arrived within %s, want at least about 1 s", span)
	}
}

func TestFIFOOrdering(t *testing.T) {
	t.Parallel()
	e := setup(t)
	r := hookdtest.NewReceiver(t)
	r.Respond(func(n int, req *http.Request) (int, http.Header, string) {
		if n == 1 { // slow, then failing: the others must wait for its retry
			return hookdtest.Delay(200*time.Millisecond, hookdtest.Always(http.StatusInternalServerError))(n, req)
		}
		return hookdtest.Delay(20*time.Millisecond, hookdtest.Always(http.StatusOK))(n, req)
	})
	e.endpoint(t, r.URL(), map[string]any{"ordering": "fifo", "retry": fastRetry(5)})
	var want []string
	for i := 1; i <= 5; i++ {
		id := fmt.Sprintf("fifo-%d", i)
		e.publish(t, id, "order.created", map[string]any{"n": i})
		want = append(want, id)
	}
	want = append([]string{"fifo-1"}, want...) // event 1 is attempted twice

	reqs := r.Wait(t, len(want), 10*time.Second)
	var got []string
	for _, req := range reqs {
		got = append(got, req.Header.Get("Webhook-Id"))
	}
	if !slices.Equal(got, want) {
		t.Errorf("FIFO endpoint received %v, want %v", got, want)
	}
	if n := r.MaxInFlight(); n != 1 {
		t.Errorf("FIFO endpoint had %d requests in flight at once, want 1", n)
	}
	r.NoMoreThan(t, len(want), 200*time.Millisecond)
}

func TestFIFOContinuesAfterFailure(t *testing.T) {
	t.Parallel()
	e := setup(t)
	r := hookdtest.NewReceiver(t)
	r.Respond(func(_ int, req *http.Request) (int, http.Header, string) {
		if req.Header.Get("Webhook-Id") == "fifo-1" {
			return http.StatusInternalServerError, nil, "never"
		}
		return http.StatusOK, nil, "ok"
	})
	ep := e.endpoint(t, r.URL(), map[string]any{"events": []string{"order.created"}, "ordering": "fifo", "retry": fastRetry(2)})
	for i := 1; i <= 3; i++ {
		e.publish(t, fmt.Sprintf("fifo-%d", i), "order.created", map[string]any{"n": i})
	}
	reqs := r.Wait(t, 4, 10*time.Second)
	var got []string
	for _, req := range reqs {
		got = append(got, req.Header.Get("Webhook-Id"))
	}
	if want := []string{"fifo-1", "fifo-1", "fifo-2", "fifo-3"}; !slices.Equal(got, want) {
		t.Errorf("FIFO endpoint received %v, want %v: a failed delivery lets the next ones go", got, want)
	}
	d := e.h.DeliveryFor(t, e.key, "fifo-3", str(ep, "id"))
	e.h.WaitDeliveryStatus(t, e.key, str(d, "id"), "succeeded", 5*time.Second)
	r.NoMoreThan(t, 4, 200*time.Millisecond)
}

func TestFIFOSwitchedToUnordered(t *testing.T) {
	t.Parallel()
	e := setup(t)
	r := hookdtest.NewReceiver(t)
	release := make(chan struct{})
	r.Respond(func(n int, req *http.Request) (int, http.Header, string) {
		if n == 1 {
			select {
			case <-release:
			case <-req.Context().Done():
			}
		}
		return http.StatusOK, nil, "ok"
	})
	ep := e.endpoint(t, r.URL(), map[string]any{"ordering": "fifo"})
	for i := 1; i <= 3; i++ {
		e.publish(t, fmt.Sprintf("fifo-%d", i), "order.created", map[string]any{"n": i})
	}
	r.Wait(t, 1, 5*time.Second)
	r.NoMoreThan(t, 1, 200*time.Millisecond) // the others wait behind the first

	if status, m := e.h.Do(t, http.MethodPatch, "/api/webhooks/"+str(ep, "id"), e.key, map[string]any{"ordering": "unordered"}); status != http.StatusOK {
		t.Fatalf("PATCH ordering = %d %v", status, m)
	}
	// No longer ordered: the waiting events go while the first is still in flight.
	reqs := r.Wait(t, 3, 5*time.Second)
	close(release)
	var got []string
	for _, req := range reqs {
		got = append(got, req.Header.Get("Webhook-Id"))
	}
	slices.Sort(got)
	if want := []string{"fifo-1", "fifo-2", "fifo-3"}; !slices.Equal(got, want) {
		t.Errorf("received %v, want %v", got, want)
	}
}

func TestSlowEndpointDoesNotDelayOthers(t *testing.T) {
	t.Parallel()
	e := setup(t)
	slow := hookdtest.NewReceiver(t)
	slow.Respond(hookdtest.Delay(1500*time.Millisecond, hookdtest.Always(http.StatusOK)))
	fast := hookdtest.NewReceiver(t)
	e.endpoint(t, slow.URL(), map[string]any{"max_in_flight": 2})
	e.endpoint(t, fast.URL(), nil)

	events := make([]map[string]any, 20)
	for i := range events {
		events[i] = map[string]any{"type": "order.created", "data": map[string]any{"n": i}}
	}
	start := time.Now()
	status, m := e.h.Do(t, http.MethodPost, "/api/events/batch", e.key, map[string]any{"events": events})
	if status != http.StatusAccepted {
		t.Fatalf("batch = %d %v", status, m)
	}
	fast.Wait(t, 20, 5*time.Second)
	took := time.Since(start)
	// The slow endpoint needs 15 s for its 20 (1.5 s each, 2 at a time); the
	// fast one must not wait behind it.
	if n := slow.Count(); n > 4 || took > 3*time.Second {
		t.Errorf("the fast endpoint got 20 events in %s while the slow one had %d requests; want them well before the slow one finishes",
			took, n)
	}
	slow.Wait(t, 4, 5*time.Second)
	if n := slow.MaxInFlight(); n != 2 {
		t.Errorf("slow endpoint with max_in_flight 2 had %d requests in flight at once", n)
	}
	if strings.Contains(hookdtest.JSON(m), `"deliveries": 0`) {
		t.Errorf("batch answer has events without deliveries: %s", hookdtest.JSON(m))
	}
}
