package app_test

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/hookd/hookd/hookdtest"
)

func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	a := setup(t)
	orgB, keyB := a.h.CreateOrg(t)
	b := env{h: a.h, org: orgB, key: keyB}

	ra, rb := hookdtest.NewReceiver(t), hookdtest.NewReceiver(t)
	rb.Respond(hookdtest.Always(http.StatusInternalServerError))
	a.endpoint(t, ra.URL(), nil)
	epB := b.endpoint(t, rb.URL(), map[string]any{"events": []string{"order.created"}, "retry": fastRetry(1)})
	evA := a.publish(t, "shared-id", "order.created", map[string]any{"org": "a"})
	evB := b.publish(t, "shared-id", "order.created", map[string]any{"org": "b"}) // the same id in another organization is another event
	evB2 := b.publish(t, "only-b", "order.created", map[string]any{"org": "b"})
	dB := b.h.DeliveryFor(t, keyB, str(evB2, "id"), str(epB, "id"))
	b.h.WaitDeliveryStatus(t, keyB, str(dB, "id"), "failed", 5*time.Second)
	if num(evB, "deliveries") != 1 || num(evA, "deliveries") != 1 {
		t.Fatalf("publishes: A %v, B %v; want 1 delivery each", evA, evB)
	}
	ra.Wait(t, 1, 5*time.Second)
	rb.Wait(t, 2, 5*time.Second)
	bCalls := rb.Count()

	since := time.Now().UTC().Add(-time.Hour).Format(time.RFC3339)
	epPath, dPath := "/api/webhooks/"+str(epB, "id"), "/api/deliveries/"+str(dB, "id")
	notFound := []struct {
		method, path string
		body         any
	}{
		{http.MethodGet, epPath, nil},
		{http.MethodPatch, epPath, map[string]any{"enabled": false}},
		{http.MethodPatch, epPath, map[string]any{"url": ra.URL()}},
		{http.MethodDelete, epPath, nil},
		{http.MethodGet, epPath + "/secret", nil},
		{http.MethodPost, epPath + "/secret/rotate", map[string]any{"grace_period": 0}},
		{http.MethodPost, epPath + "/test", nil},
		{http.MethodPost, epPath + "/replay", map[string]any{"since": since}},
		{http.MethodGet, "/api/events/only-b", nil},
		{http.MethodGet, "/api/events/only-b?organization=" + orgB, nil},
		{http.MethodGet, dPath, nil},
		{http.MethodPost, dPath + "/retry", nil},
		{http.MethodGet, "/api/organizations/" + orgB, nil},
		{http.MethodPost, "/api/organizations/" + orgB + "/keys", nil},
		{http.MethodPost, "/api/webhooks", map[string]any{"url": ra.URL(), "events": []string{"*"}, "organization": orgB}},
		{http.MethodPost, "/api/events", map[string]any{"type": "x.y", "data": map[string]any{}, "organization": orgB}},
	}
	for _, c := range notFound {
		status, m := a.h.Do(t, c.method, c.path, a.key, c.body)
		if status != http.StatusNotFound || errorCode(m) != "not_found" {
			t.Errorf("A's key: %s %s = %d %v, want 404 not_found", c.method, c.path, status, m)
		}
	}

	// B's objects are untouched.
	got := a.h.Get(t, keyB, epPath)
	if got["enabled"] != true || got["url"] != rb.URL() {
		t.Errorf("B's endpoint changed: %s", hookdtest.JSON(got))
	}
	if s := a.h.Get(t, keyB, epPath+"/secret"); str(s, "secret") != str(epB, "secret") {
		t.Errorf("B's secret changed to %v", s["secret"])
	}
	if d := a.h.Get(t, keyB, dPath); str(d, "status") != "failed" {
		t.Errorf("B's delivery was re-queued: %s", hookdtest.JSON(d))
	}
	rb.NoMoreThan(t, bCalls, 200*time.Millisecond) // no test send, replay or retry reached B
	if ev := a.h.Get(t, a.key, "/api/events/shared-id"); str(ev, "organization") != a.org {
		t.Errorf("A's GET /api/events/shared-id = %s, want A's event", hookdtest.JSON(ev))
	}

	ids := func(key, path string) []string {
		var out []string
		for _, it := range hookdtest.Items(a.h.Get(t, key, path)) {
			out = append(out, str(it, "organization"))
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	for _, path := range []string{"/api/webhooks", "/api/events", "/api/deliveries", "/api/events?organization=" + orgB} {
		if orgs := ids(a.key, path); !slices.Equal(orgs, []string{a.org}) {
			t.Errorf("A's GET %s shows organizations %v, want only %s", path, orgs, a.org)
		}
		if orgs := ids(keyB, path); !slices.Equal(orgs, []string{orgB}) {
			t.Errorf("B's GET %s shows organizations %v, want only %s", path, orgs, orgB)
		}
	}
	want := []string{a.org, orgB}
	slices.Sort(want)
	for _, path := range []string{"/api/webhooks", "/api/events", "/api/deliveries"} {
		if orgs := ids(a.h.AdminKey, path); !slices.Equal(orgs, want) {
			t.Errorf("admin GET %s shows organizations %v, want %v", path, orgs, want)
		}
	}
	for _, path := range []string{"/api/organizations/" + a.org, "/api/organizations/" + orgB, epPath, dPath} {
		if status, m := a.h.Do(t, http.MethodGet, path, a.h.AdminKey, nil); status != http.StatusOK {
			t.Errorf("admin GET %s = %d %v, want 200", path, status, m)
		}
	}
	if status, m := a.h.Do(t, http.MethodPost, "/api/organizations", a.key, map[string]any{"name": "mine"}); status != http.StatusForbidden {
		t.Errorf("an organization key creating an organization = %d %v, want 403", status, m)
	}
	if status, _ := a.h.Do(t, http.MethodGet, "/api/webhooks", "", nil); status != http.StatusUnauthorized {
		t.Errorf("GET /api/webhooks without a key = %d, want 401", status)
	}
	if status, _ := a.h.Do(t, http.MethodGet, "/api/webhooks", "hk_wrong", nil); status != http.StatusUnauthorized {
		t.Errorf("GET /api/webhooks with a wrong key = %d, want 401", status)
	}
}
