package app_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookd/hookd/hookdtest"
)

func TestIdempotentPublish(t *testing.T) {
	t.Parallel()
	e := setup(t)
	r := hookdtest.NewReceiver(t)
	e.endpoint(t, r.URL(), nil)

	first := e.publish(t, "inv-1", "invoice.paid", map[string]any{"n": 1})
	if str(first, "id") != "inv-1" || num(first, "deliveries") != 1 {
		t.Fatalf("first publish = %v, want id inv-1 with 1 delivery", first)
	}
	status, again := e.h.Do(t, http.MethodPost, "/api/events", e.key,
		map[string]any{"id": "inv-1", "type": "invoice.paid", "data": map[string]any{"n": 2}})
	if status != http.StatusOK || str(again, "id") != "inv-1" || num(again, "deliveries") != 1 {
		t.Errorf("same id again = %d %v, want 200 with the original event (%v) and its 1 delivery", status, again, first)
	}

	keyed := http.Header{"Idempotency-Key": {"order-7-paid"}}
	body := map[string]any{"type": "invoice.paid", "data": map[string]any{"n": 3}}
	status, k1 := e.h.DoHeader(t, http.MethodPost, "/api/events", e.key, keyed, body)
	if status != http.StatusAccepted || str(k1, "id") == "" {
		t.Fatalf("publish with Idempotency-Key = %d %v, want 202", status, k1)
	}
	status, k2 := e.h.DoHeader(t, http.MethodPost, "/api/events", e.key, keyed, body)
	if status != http.StatusOK || str(k2, "id") != str(k1, "id") || num(k2, "deliveries") != num(k1, "deliveries") {
		t.Errorf("same Idempotency-Key again = %d %v, want 200 with id %s", status, k2, str(k1, "id"))
	}

	// A batch with an id repeated inside it and one already used.
	status, batch := e.h.Do(t, http.MethodPost, "/api/events/batch", e.key, map[string]any{"events": []map[string]any{
		{"id": "b-1", "type": "invoice.paid", "data": map[string]any{"n": 4}},
		{"id": "b-1", "type": "invoice.paid", "data": map[string]any{"n": 5}},
		{"id": "inv-1", "type": "invoice.paid", "data": map[string]any{"n": 6}},
	}})
	items := hookdtest.Items(batch)
	if status != http.StatusAccepted || len(items) != 3 {
		t.Fatalf("batch = %d %v, want 202 with 3 results", status, batch)
	}
	for i, want := range []struct {
		id  string
		dup bool
	}{{"b-1", false}, {"b-1", true}, {"inv-1", true}} {
		if str(items[i], "id") != want.id || (items[i]["duplicate"] == true) != want.dup || num(items[i], "deliveries") != 1 {
			t.Errorf("batch result %d = %v, want id %s, duplicate %v, 1 delivery", i, items[i], want.id, want.dup)
		}
	}

	// A batch with an Idempotency-Key: the same batch again creates nothing.
	bk := http.Header{"Idempotency-Key": {"batch-k"}}
	two := map[string]any{"events": []map[string]any{
		{"type": "invoice.paid", "data": map[string]any{"n": 7}},
		{"type": "invoice.paid", "data": map[string]any{"n": 8}},
	}}
	_, kb1 := e.h.DoHeader(t, http.MethodPost, "/api/events/batch", e.key, bk, two)
	_, kb2 := e.h.DoHeader(t, http.MethodPost, "/api/events/batch", e.key, bk, two)
	b1, b2 := hookdtest.Items(kb1), hookdtest.Items(kb2)
	if len(b1) != 2 || len(b2) != 2 || str(b1[0], "id") == str(b1[1], "id") ||
		str(b2[0], "id") != str(b1[0], "id") || str(b2[1], "id") != str(b1[1], "id") || b2[0]["duplicate"] != true || b2[1]["duplicate"] != true {
		t.Errorf("keyed batch twice = %v then %v, want two new events, then the same two as duplicates", kb1, kb2)
	}

	// inv-1, the keyed event, b-1 and the keyed batch's two: one delivery each.
	reqs := r.Wait(t, 5, 5*time.Second)
	reqs = r.NoMoreThan(t, 5, 300*time.Millisecond)
	seen := map[string]int{}
	for _, req := range reqs {
		seen[req.Header.Get("Webhook-Id")]++
	}
	for _, id := range []string{"inv-1", str(k1, "id"), "b-1", str(b1[0], "id"), str(b1[1], "id")} {
		if seen[id] != 1 {
			t.Errorf("receiver got event %s %d times, want once (all: %v)", id, seen[id], seen)
		}
	}
	if ev := e.h.Get(t, e.key, "/api/events/inv-1"); len(hookdtest.Items(map[string]any{"data": ev["deliveries"]})) != 1 {
		t.Errorf("GET /api/events/inv-1 = %s, want 1 delivery", hookdtest.JSON(ev))
	}
	if evs := hookdtest.Items(e.h.Get(t, e.key, "/api/events")); len(evs) != 5 {
		t.Errorf("GET /api/events lists %d events, want 5", len(evs))
	}
}

func TestConcurrentDuplicatePublishes(t *testing.T) {
	t.Parallel()
	e := setup(t)
	r := hookdtest.NewReceiver(t)
	e.endpoint(t, r.URL(), nil)

	const n = 10
	statuses := make([]int, 2*n)
	ids := make([]string, 2*n)
	var wg sync.WaitGroup
	for i := range 2 * n {
		wg.Go(func() {
			var m map[string]any
			if i < n {
				statuses[i], m = e.h.Do(t, http.MethodPost, "/api/events", e.key,
					map[string]any{"id": "race-1", "type": "order.created", "data": map[string]any{"i": i}})
			} else {
				statuses[i], m = e.h.DoHeader(t, http.MethodPost, "/api/events", e.key, http.Header{"Idempotency-Key": {"race-key"}},
					map[string]any{"type": "order.created", "data": map[string]any{"i": i}})
			}
			ids[i] = str(m, "id")
		})
	}
	wg.Wait()
	for _, half := range [][2]int{{0, n}, {n, 2 * n}} {
		created := 0
		for i := half[0]; i < half[1]; i++ {
			switch {
			case statuses[i] == http.StatusAccepted:
				created++
			case statuses[i] != http.StatusOK:
				t.Errorf("concurrent duplicate publish answered %d", statuses[i])
			}
			if ids[i] != ids[half[0]] || ids[i] == "" {
				t.Errorf("concurrent duplicates answered ids %v, want one id", ids[half[0]:half[1]])
				break
			}
		}
		if created != 1 {
			t.Errorf("%d concurrent publishes of one event: %d answered 202, want exactly 1", n, created)
		}
	}
	r.Wait(t, 2, 5*time.Second)
	r.NoMoreThan(t, 2, 300*time.Millisecond)
	if evs := hookdtest.Items(e.h.Get(t, e.key, "/api/events")); len(evs) != 2 {
		t.Errorf("GET /api/events lists %d events, want 2", len(evs))
	}
}

func TestBatchIsAtomic(t *testing.T) {
	t.Parallel()
	e := setup(t)
	r := hookdtest.NewReceiver(t)
	e.endpoint(t, r.URL(), nil)
	events := func(ids ...string) []map[string]any {
		var out []map[string]any
		for _, id := range ids {
			out = append(out, map[string]any{"id": id, "type": "order.created", "data": map[string]any{"id": id}})
		}
		return out
	}

	// One invalid event: nothing is stored.
	bad := events("a-1", "a-2", "a-3")
	bad[1]["id"] = "has.dot"
	status, m := e.h.Do(t, http.MethodPost, "/api/events/batch", e.key, map[string]any{"events": bad})
	if status != http.StatusBadRequest || errorCode(m) != "invalid_field" || !strings.Contains(errorField(m), "events[1].id") {
		t.Errorf("batch with an invalid id = %d %v, want 400 invalid_field naming events[1].id", status, m)
	}
	bad = events("b-1", "b-2", "b-3")
	delete(bad[2], "type")
	status, m = e.h.Do(t, http.MethodPost, "/api/events/batch", e.key, map[string]any{"events": bad})
	if status != http.StatusBadRequest || errorCode(m) != "invalid_field" || !strings.Contains(errorField(m), "events[2].type") {
		t.Errorf("batch without a type = %d %v, want 400 invalid_field naming events[2].type", status, m)
	}
	// An event of an organization that does not exist (admin key): nothing is stored.
	bad = events("c-1", "c-2", "c-3")
	for i := range bad {
		bad[i]["organization"] = e.org
	}
	bad[2]["organization"] = "org_does_not_exist"
	status, m = e.h.Do(t, http.MethodPost, "/api/events/batch", e.h.AdminKey, map[string]any{"events": bad})
	if status < 400 {
		t.Errorf("batch with an unknown organization = %d %v, want an error", status, m)
	}

	if evs := hookdtest.Items(e.h.Get(t, e.key, "/api/events")); len(evs) != 0 {
		t.Errorf("after rejected batches GET /api/events lists %s, want nothing", hookdtest.JSON(evs))
	}
	for _, id := range []string{"a-1", "a-3", "b-1", "c-1"} {
		if status, m := e.h.Do(t, http.MethodGet, "/api/events/"+id, e.key, nil); status != http.StatusNotFound {
			t.Errorf("GET /api/events/%s = %d %v, want 404", id, status, m)
		}
	}
	r.NoMoreThan(t, 0, 200*time.Millisecond)

	// A valid batch of 3 is stored whole.
	status, m = e.h.Do(t, http.MethodPost, "/api/events/batch", e.key, map[string]any{"events": events("d-1", "d-2", "d-3")})
	if status != http.StatusAccepted || len(hookdtest.Items(m)) != 3 {
		t.Fatalf("batch of 3 = %d %v, want 202 with 3 results", status, m)
	}
	if evs := hookdtest.Items(e.h.Get(t, e.key, "/api/events")); len(evs) != 3 {
		t.Errorf("GET /api/events lists %d events, want 3", len(evs))
	}
	r.Wait(t, 3, 5*time.Second)
}

// TestAnswersMatchStoredObjects checks that the object a create or publish
// answers with is the one later reads show: a client comparing them (or the
// 202 and the duplicate 200 of one event) sees the same values.
func TestAnswersMatchStoredObjects(t *testing.T) {
	t.Parallel()
	e := setup(t)
	r := hookdtest.NewReceiver(t)

	ep := e.endpoint(t, r.URL(), nil)
	got := e.h.Get(t, e.key, "/api/webhooks/"+str(ep, "id"))
	for _, k := range []string{"created_at", "updated_at"} {
		if ep[k] != got[k] {
			t.Errorf("endpoint %s: POST /api/webhooks answered %v, GET answers %v", k, ep[k], got[k])
		}
	}

	_, patched := e.h.Do(t, http.MethodPatch, "/api/webhooks/"+str(ep, "id"), e.key, map[string]any{"description": "patched"})
	if got := e.h.Get(t, e.key, "/api/webhooks/"+str(ep, "id")); patched["updated_at"] != got["updated_at"] {
		t.Errorf("endpoint updated_at: PATCH answered %v, GET answers %v", patched["updated_at"], got["updated_at"])
	}

	first := e.publish(t, "same-1", "order.created", map[string]any{"n": 1})
	_, dup := e.h.Do(t, http.MethodPost, "/api/events", e.key, map[string]any{"id": "same-1", "type": "order.created", "data": map[string]any{"n": 1}})
	stored := e.h.Get(t, e.key, "/api/events/same-1")
	if first["created_at"] != stored["created_at"] || dup["created_at"] != stored["created_at"] {
		t.Errorf("event created_at: 202 answer %v, duplicate 200 answer %v, GET %v; want one value",
			first["created_at"], dup["created_at"], stored["created_at"])
	}

	status, org := e.h.Do(t, http.MethodPost, "/api/organizations", e.h.AdminKey, map[string]any{"name": "stored"})
	if status != http.StatusCreated {
		t.Fatalf("create organization = %d %v", status, org)
	}
	if got := e.h.Get(t, e.h.AdminKey, "/api/organizations/"+str(org, "id")); got["created_at"] != org["created_at"] {
		t.Errorf("organization created_at: POST answered %v, GET answers %v", org["created_at"], got["created_at"])
	}
}
