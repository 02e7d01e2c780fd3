package app_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hookd/hookd/app"
	"github.com/hookd/hookd/hookdtest"
)

// TestFailingEndpointIsDisabled: an endpoint whose every attempt fails for the
// configured window (here 400 ms) is disabled with a reason, endpoint.disabled is
// delivered to its subscribers, and its waiting deliveries wait until it is
// enabled again; an endpoint that fails but recovers within the window stays.
func TestFailingEndpointIsDisabled(t *testing.T) {
	t.Parallel()
	e := setup(t, func(c *app.Config) { c.Engine.DisableAfter = 400 * time.Millisecond })
	down := hookdtest.NewReceiver(t)
	down.Respond(hookdtest.Always(http.StatusInternalServerError))
	flaky := hookdtest.NewReceiver(t)
	flaky.Respond(hookdtest.FailFirst(1, http.StatusServiceUnavailable))
	watcher := hookdtest.NewReceiver(t)
	retry := map[string]any{"max_attempts": 20, "initial_interval": 1, "max_interval": 1}
	ep := e.endpoint(t, down.URL(), map[string]any{"events": []string{"order.created"}, "retry": retry})
	ok := e.endpoint(t, flaky.URL(), map[string]any{"events": []string{"order.created"}, "retry": fastRetry(5)})
	e.endpoint(t, watcher.URL(), map[string]any{"events": []string{"endpoint.disabled"}})

	res := e.publish(t, "", "order.created", map[string]any{"n": 1})
	reqs := watcher.Wait(t, 1, 15*time.Second)
	ev := decodeEnvelope(t, reqs[0].Body)
	var data map[string]any
	json.Unmarshal(ev.Data, &data)
	if ev.Type != "endpoint.disabled" || str(data, "webhook") != str(ep, "id") || !strings.Contains(str(data, "reason"), "failed since") {
		t.Errorf("watcher got %s %s, want endpoint.disabled for %s with the reason", ev.Type, ev.Data, str(ep, "id"))
	}
	got := e.h.Get(t, e.key, "/api/webhooks/"+str(ep, "id"))
	if got["enabled"] != false || !strings.Contains(str(got, "disabled_reason"), "failed since") {
		t.Errorf("after the window: enabled = %v, disabled_reason = %v", got["enabled"], got["disabled_reason"])
	}
	attempts := down.Count()
	if attempts < 2 {
		t.Errorf("disabled after %d attempts; the window needs failures spanning it", attempts)
	}
	// The delivery waits, not failed: it resumes when the endpoint is enabled.
	d := e.h.DeliveryFor(t, e.key, str(res, "id"), str(ep, "id"))
	if str(d, "status") != "pending" {
		t.Errorf("the disabled endpoint's delivery is %v, want pending (parked until enabled)", d["status"])
	}
	down.NoMoreThan(t, attempts, 300*time.Millisecond)

	// The flaky endpoint recovered within the window and stays enabled.
	fd := e.h.DeliveryFor(t, e.key, str(res, "id"), str(ok, "id"))
	e.h.WaitDeliveryStatus(t, e.key, str(fd, "id"), "succeeded", 10*time.Second)
	if got := e.h.Get(t, e.key, "/api/webhooks/"+str(ok, "id")); got["enabled"] != true {
		t.Errorf("the endpoint that recovered was disabled: %v", got["disabled_reason"])
	}
	watcher.NoMoreThan(t, 1, 0)
}
