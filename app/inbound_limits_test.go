package app_test

import (
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookd/hookd/app"
	"github.com/hookd/hookd/hookdtest"
)

// TestInboundConcurrentDuplicates sends one event 20 times at once: it is
// stored and delivered once, and every copy is audited.
func TestInboundConcurrentDuplicates(t *testing.T) {
	t.Parallel()
	e := setup(t)
	r := hookdtest.NewReceiver(t)
	e.endpoint(t, r.URL(), map[string]any{"events": []string{"order.created"}})
	p := e.partner(t, nil)

	const n = 20
	body := hookdtest.PartnerEventBody(t, "dup-1", "order.created", map[string]any{"amount": 1})
	header := p.Header(time.Now(), body)
	statuses := make([]int, n)
	answers := make([]map[string]any, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			statuses[i], _, answers[i] = e.h.Inbound(t, header, body)
		})
	}
	close(start)
	wg.Wait()
	created := 0
	for i := range n {
		switch {
		case statuses[i] == http.StatusAccepted && str(answers[i], "eventId") == "dup-1" && str(answers[i], "status") == "queued":
			created++
		case statuses[i] == http.StatusOK && answers[i]["duplicate"] == true && str(answers[i], "eventId") == "dup-1" &&
			oneOf(str(answers[i], "status"), "queued", "processing", "processed"):
		default:
			t.Errorf("copy %d = %d %v, want 202 queued or 200 duplicate", i, statuses[i], answers[i])
		}
	}
	if created != 1 {
		t.Errorf("%d copies sent at once: %d answered 202, want exactly 1", n, created)
	}
	reqs := r.Wait(t, 1, 5*time.Second)
	reqs = r.NoMoreThan(t, 1, 300*time.Millisecond)
	if got := reqs[0].Header.Get("Webhook-Id"); got != orgEventID(p, "dup-1") {
		t.Errorf("delivered webhook-id %q, want %q", got, orgEventID(p, "dup-1"))
	}
	_, recs := e.h.Audit(t, e.key, url.Values{"action": {"inbound.event"}, "actor": {p.ID}})
	byStatus := map[int]int{}
	for _, rec := range recs {
		if str(rec, "result") != "success" || str(rec, "target") != orgEventID(p, "dup-1") {
			t.Errorf("audit record %s, want a success for %s", hookdtest.JSON(rec), orgEventID(p, "dup-1"))
		}
		byStatus[int(num(rec, "status"))]++
	}
	if len(recs) != n || byStatus[202] != 1 || byStatus[200] != n-1 {
		t.Errorf("audit: %d inbound.event records by status %v, want %d: one 202 and %d 200", len(recs), byStatus, n, n-1)
	}
	if evs := hookdtest.Items(e.h.Get(t, e.key, "/api/events")); len(evs) != 1 {
		t.Errorf("GET /api/events lists %d events, want 1", len(evs))
	}
}

// TestInboundRateLimitBurst sends 12 events at once as a partner allowed 5 per
// second with a burst of 5.
func TestInboundRateLimitBurst(t *testing.T) {
	t.Parallel()
	e := setup(t)
	p := e.partner(t, map[string]any{"rate_limit": map[string]any{"per_second": 5, "burst": 5}})
	if m := e.h.Get(t, e.key, "/api/partners/"+p.ID); num(obj(m, "rate_limit"), "per_second") != 5 || num(obj(m, "rate_limit"), "burst") != 5 {
		t.Fatalf("partner %v, want rate_limit 5/s, burst 5", m)
	}

	const n = 12
	statuses := make([]int, n)
	headers := make([]http.Header, n)
	answers := make([]map[string]any, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			statuses[i], headers[i], answers[i] = e.h.SendPartnerEvent(t, p, "burst-"+strconv.Itoa(i), "order.created", map[string]any{"i": i})
		})
	}
	began := time.Now()
	close(start)
	wg.Wait()
	elapsed := time.Since(began)

	accepted, retryAfter := 0, 0
	for i := range n {
		h := headers[i]
		if h.Get("X-RateLimit-Limit") != "5" {
			t.Errorf("request %d: X-RateLimit-Limit %q, want 5", i, h.Get("X-RateLimit-Limit"))
		}
		switch statuses[i] {
		case http.StatusAccepted:
			accepted++
			if rem, err := strconv.Atoi(h.Get("X-RateLimit-Remaining")); err != nil || rem < 0 || rem > 4 {
				t.Errorf("accepted request %d: X-RateLimit-Remaining %q, want 0–4", i, h.Get("X-RateLimit-Remaining"))
			}
		case http.StatusTooManyRequests:
			ra, err := strconv.Atoi(h.Get("Retry-After"))
			if err != nil || ra < 1 || h.Get("X-RateLimit-Remaining") != "0" || errorCode(answers[i]) != "rate_limited" {
				t.Errorf("refused request %d: %v, Retry-After %q, X-RateLimit-Remaining %q; want rate_limited, ≥ 1, 0",
					i, answers[i], h.Get("Retry-After"), h.Get("X-RateLimit-Remaining"))
			}
			retryAfter = max(retryAfter, ra)
		default:
			t.Errorf("request %d = %d %v, want 202 or 429", i, statuses[i], answers[i])
		}
	}
	// The bucket refills 5 tokens a second while the burst is under way.
	refill := int(elapsed.Seconds()*5) + 1
	if accepted < 5 || accepted > 5+refill {
		t.Errorf("%d requests at once (in %v): %d accepted, want 5 (up to %d with refill)", n, elapsed, accepted, 5+refill)
	}
	if got := countAudit(t, e.h, "inbound.event", p.ID); got != n {
		t.Errorf("audit: %d inbound.event records, want %d", got, n)
	}
	_, recs := e.h.Audit(t, e.key, url.Values{"action": {"inbound.event"}, "actor": {p.ID}})
	limited := 0
	for _, rec := range recs {
		if str(rec, "reason") == "rate_limited" && num(rec, "status") == 429 {
			limited++
		}
	}
	if limited != n-accepted {
		t.Errorf("audit: %d rate_limited records, want %d", limited, n-accepted)
	}

	if retryAfter == 0 {
		t.Fatal("no request was refused")
	}
	time.Sleep(time.Duration(retryAfter) * time.Second)
	if status, h, m := e.h.SendPartnerEvent(t, p, "after-wait", "order.created", map[string]any{}); status != http.StatusAccepted {
		t.Errorf("after waiting Retry-After (%d s) = %d %v (Retry-After %q), want 202", retryAfter, status, m, h.Get("Retry-After"))
	}
}

// TestInboundIPAllowlist checks IPv4 allowlists against a client on 127.0.0.1.
func TestInboundIPAllowlist(t *testing.T) {
	t.Parallel()
	e := setup(t)
	p := e.partner(t, map[string]any{"ip_allowlist": []string{"10.0.0.0/8", "192.0.2.1"}})
	if m := e.h.Get(t, e.key, "/api/partners/"+p.ID); hookdtest.JSON(m["ip_allowlist"]) != hookdtest.JSON([]string{"10.0.0.0/8", "192.0.2.1/32"}) {
		t.Errorf("ip_allowlist %v, want [10.0.0.0/8 192.0.2.1/32]", m["ip_allowlist"])
	}
	n := 0
	send := func(list []string, want int) {
		t.Helper()
		if list != nil {
			if status, m := e.h.Do(t, http.MethodPatch, "/api/partners/"+p.ID, e.key, map[string]any{"ip_allowlist": list}); status != http.StatusOK {
				t.Fatalf("PATCH ip_allowlist %v = %d %v", list, status, m)
			}
		}
		n++
		status, _, m := e.h.SendPartnerEvent(t, p, "ip-"+strconv.Itoa(n), "order.created", map[string]any{})
		if status != want || (want == http.StatusForbidden && errorCode(m) != "ip_not_allowed") {
			t.Errorf("from 127.0.0.1 with allowlist %v = %d %v, want %d", list, status, m, want)
		}
		if want == http.StatusForbidden {
			checkAudit(t, "denied", newestAudit(t, e.h), auditWant{action: "inbound.event", result: "failure", reason: "ip_not_allowed",
				actor: p.ID, org: e.org, clientIP: "127.0.0.1", status: 403})
		}
	}
	send(nil, http.StatusForbidden)
	send([]string{"127.0.0.0/8"}, http.StatusAccepted)
	send([]string{"127.0.0.2/32", "10.0.0.0/8"}, http.StatusForbidden)
	send([]string{"10.0.0.0/8", "127.0.0.1"}, http.StatusAccepted)
	send([]string{"::1/128"}, http.StatusForbidden) // an IPv6 prefix does not hold an IPv4 client
	send([]string{"::ffff:127.0.0.0/104"}, http.StatusAccepted)
	send([]string{}, http.StatusAccepted) // empty: any address
	for _, bad := range []string{"10.0.0.0/33", "not-an-ip", "10.0.0.0/8/8", "fe80::1%eth0"} {
		if status, m := e.h.Do(t, http.MethodPatch, "/api/partners/"+p.ID, e.key, map[string]any{"ip_allowlist": []string{bad}}); status != http.StatusBadRequest ||
			errorCode(m) != "invalid_field" || !strings.Contains(errorField(m), "ip_allowlist") {
			t.Errorf("PATCH ip_allowlist [%q] = %d %v, want 400 invalid_field ip_allowlist", bad, status, m)
		}
	}
}

// TestPartnerAllowlistMappedPrefix saves an IPv4-mapped IPv6 prefix shorter
// than /96. The partner must stay usable: either the entry is refused when
// saved (400 invalid_field), or the partner can be read and its requests answered.
func TestPartnerAllowlistMappedPrefix(t *testing.T) {
	t.Parallel()
	e := setup(t)
	for _, entry := range []string{"::ffff:0:0/64", "::ffff:1.2.3.4/80"} {
		status, m := e.h.Do(t, http.MethodPost, "/api/partners", e.key, map[string]any{"name": "mapped", "ip_allowlist": []string{entry}})
		if status == http.StatusBadRequest && errorCode(m) == "invalid_field" {
			continue
		}
		if status != http.StatusCreated {
			t.Errorf("POST /api/partners with ip_allowlist [%q] = %d %v, want 201 or 400 invalid_field", entry, status, m)
			continue
		}
		p := hookdtest.Partner{ID: str(m, "id"), APIKey: str(m, "api_key"), Secret: str(m, "secret")}
		for _, pfx := range m["ip_allowlist"].([]any) {
			if _, err := netip.ParsePrefix(pfx.(string)); err != nil {
				t.Errorf("ip_allowlist [%q] was saved as %q", entry, pfx)
			}
		}
		if status, m := e.h.Do(t, http.MethodGet, "/api/partners/"+p.ID, e.key, nil); status != http.StatusOK {
			t.Errorf("ip_allowlist [%q]: GET /api/partners/%s = %d %v, want 200", entry, p.ID, status, m)
		}
		if status, _, m := e.h.SendPartnerEvent(t, p, "mapped-1", "order.created", map[string]any{}); status >= 500 {
			t.Errorf("ip_allowlist [%q]: partner event = %d %v, want 202 or 403, not a server error", entry, status, m)
		}
		if status, m := e.h.Do(t, http.MethodDelete, "/api/partners/"+p.ID, e.key, nil); status != http.StatusNoContent {
			t.Errorf("ip_allowlist [%q]: DELETE /api/partners/%s = %d %v, want 204", entry, p.ID, status, m)
		}
	}
}

// TestInboundIPv6 runs hookd on [::1] and checks IPv6 allowlists.
func TestInboundIPv6(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("IPv6 loopback unavailable: %v", err)
	}
	ln.Close()
	e := setup(t, func(c *app.Config) { c.Addr = "[::1]:0" })
	r := hookdtest.NewReceiver(t)
	e.endpoint(t, r.URL(), map[string]any{"events": []string{"order.created"}})
	cases := []struct {
		list []string
		want int
	}{
		{[]string{"::1/128"}, http.StatusAccepted},
		{[]string{"::1"}, http.StatusAccepted},
		{[]string{"2001:db8::/32", "::1/128"}, http.StatusAccepted},
		{[]string{"2001:db8::/32"}, http.StatusForbidden},
		{[]string{"127.0.0.0/8"}, http.StatusForbidden},
	}
	for i, c := range cases {
		p := e.partner(t, map[string]any{"ip_allowlist": c.list})
		status, _, m := e.h.SendPartnerEvent(t, p, "v6-"+strconv.Itoa(i), "order.created", map[string]any{"i": i})
		if status != c.want {
			t.Errorf("from ::1 with allowlist %v = %d %v, want %d", c.list, status, m, c.want)
		}
		rec := newestAudit(t, e.h)
		if c.want == http.StatusForbidden {
			checkAudit(t, "denied", rec, auditWant{action: "inbound.event", result: "failure", reason: "ip_not_allowed",
				actor: p.ID, org: e.org, clientIP: "::1", status: 403})
		} else {
			checkAudit(t, "allowed", rec, auditWant{action: "inbound.event", result: "success", actor: p.ID, org: e.org,
				target: orgEventID(p, "v6-"+strconv.Itoa(i)), clientIP: "::1", status: 202})
		}
	}
	r.Wait(t, 3, 5*time.Second)
}

// TestInboundForwardedFor checks that X-Forwarded-For is believed only from a
// trusted proxy, for the allowlist and the audit log.
func TestInboundForwardedFor(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		trusted bool
		xff     []string // X-Forwarded-For header values
		want    int
		client  string // the audit record's client_ip
	}{
		{"untrusted peer forging an allowed address", false, []string{"203.0.113.7"}, 403, "127.0.0.1"},
		{"untrusted peer, allowed address last in a chain", false, []string{"198.51.100.1, 203.0.113.7"}, 403, "127.0.0.1"},
		{"trusted proxy, allowed client", true, []string{"203.0.113.7"}, 202, "203.0.113.7"},
		{"trusted proxy, denied client", true, []string{"198.51.100.9"}, 403, "198.51.100.9"},
		{"trusted proxy, client forged an allowed address leftmost", true, []string{"203.0.113.7, 198.51.100.9"}, 403, "198.51.100.9"},
		{"trusted proxy, allowed client after a forged one", true, []string{"198.51.100.9, 203.0.113.7"}, 202, "203.0.113.7"},
		{"two trusted proxies", true, []string{"203.0.113.8, 127.0.0.1"}, 202, "203.0.113.8"},
		{"trusted proxy, header repeated", true, []string{"198.51.100.9", "203.0.113.9"}, 202, "203.0.113.9"},
		{"trusted proxy, no header", true, nil, 403, "127.0.0.1"},
		{"trusted proxy, garbage", true, []string{"not-an-address"}, 403, ""},
		{"trusted proxy, hop with a port", true, []string{"203.0.113.11:4711"}, 202, "203.0.113.11"},
		{"trusted proxy, bracketed IPv6 hop", true, []string{"[2001:db8::1]:4711"}, 403, "2001:db8::1"},
		{"trusted proxy, IPv4-mapped client", true, []string{"::ffff:203.0.113.10"}, 202, "203.0.113.10"},
	}
	for _, trusted := range []bool{false, true} {
		var configure []func(*app.Config)
		if trusted {
			configure = append(configure, func(c *app.Config) { c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")} })
		}
		e := setup(t, configure...)
		p := e.partner(t, map[string]any{"ip_allowlist": []string{"203.0.113.0/24"}})
		for i, c := range cases {
			if c.trusted != trusted {
				continue
			}
			id := "xff-" + strconv.Itoa(i)
			body := hookdtest.PartnerEventBody(t, id, "order.created", map[string]any{})
			h := p.Header(time.Now(), body)
			for _, v := range c.xff {
				h.Add("X-Forwarded-For", v)
			}
			status, _, m := e.h.Inbound(t, h, body)
			if status != c.want {
				t.Errorf("%s: %v = %d %v, want %d", c.name, c.xff, status, m, c.want)
			}
			want := auditWant{action: "inbound.event", result: "success", actor: p.ID, org: e.org, target: orgEventID(p, id),
				clientIP: c.client, status: c.want}
			if c.want != http.StatusAccepted {
				want.result, want.reason, want.target = "failure", "ip_not_allowed", ""
			}
			checkAudit(t, c.name, newestAudit(t, e.h), want)
		}
	}
}
