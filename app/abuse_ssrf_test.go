package app_test

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hookd/hookd/app"
	"github.com/hookd/hookd/hookdtest"
	"github.com/hookd/hookd/netguard"
	"github.com/hookd/hookd/netguard/dnstest"
)

// ssrfResolver answers the names the SSRF cases use: public.test is public;
// the others resolve to non-public addresses, including the numeric
// spellings that a resolver following inet_aton(3) would read as 127.0.0.1
// (Go's resolver refuses them as names; either way they must not pass).
func ssrfResolver(t *testing.T) *net.Resolver {
	t.Helper()
	lo := netip.MustParseAddr("127.0.0.1")
	return dnstest.NewServer(t, map[string][]netip.Addr{
		"public.test":   {publicAddr},
		"loop.test":     {lo},
		"internal.test": {netip.MustParseAddr("10.1.2.3")},
		"rfc1918.test":  {netip.MustParseAddr("192.168.7.7")},
		"meta.test":     {netip.MustParseAddr("169.254.169.254")},
		"cgnat.test":    {netip.MustParseAddr("100.64.0.1")},
		"zero.test":     {netip.MustParseAddr("0.0.0.0")},
		"v6loop.test":   {netip.MustParseAddr("::1")},
		"v6any.test":    {netip.MustParseAddr("::")},
		"ula.test":      {netip.MustParseAddr("fd00::1")},
		"linklocal6.test": {
			netip.MustParseAddr("fe80::1"),
		},
		"mapped.test":   {netip.MustParseAddr("::ffff:127.0.0.1")},
		"nat64.test":    {netip.MustParseAddr("64:ff9b::7f00:1")},
		"mixed.test":    {publicAddr, netip.MustParseAddr("10.0.0.1")},
		"mixed6.test":   {publicAddr, netip.MustParseAddr("::1")},
		"2130706433":    {lo},
		"0177.0.0.1":    {lo},
		"0x7f.1":        {lo},
		"0x7f000001":    {lo},
		"127.1":         {lo},
		"127.0.1":       {lo},
		"017700000001":  {lo},
		"0":             {netip.MustParseAddr("0.0.0.0")},
		"127.0.0.1.":    {lo},
		"localtest.me":  {lo},
		"a.127.0.0.1.x": {lo},
	})
}

// ssrfSaveCases are target URLs that must be refused when an endpoint is
// created or updated under the strict policy (http allowed, so that the
// scheme is never the reason).
var ssrfSaveCases = []struct{ name, url string }{
	{"IPv4 loopback", "http://127.0.0.1/"},
	{"IPv4 loopback, top of 127/8", "http://127.255.255.254:8080/"},
	{"IPv4 10/8", "http://10.0.0.1/"},
	{"IPv4 172.16/12", "http://172.16.0.1/"},
	{"IPv4 192.168/16", "http://192.168.0.1/"},
	{"cloud metadata", "http://169.254.169.254/latest/meta-data/"},
	{"CGNAT 100.64/10", "http://100.64.0.1/"},
	{"benchmarking 198.18/15", "http://198.18.0.1/"},
	{"multicast", "http://224.0.0.1/"},
	{"broadcast", "http://255.255.255.255/"},
	{"0.0.0.0 (reaches the local host on Linux)", "http://0.0.0.0:8080/"},
	{"0.0.0.0 with a trailing dot", "http://0.0.0.0./"},
	{"this network 0/8", "http://0.1.2.3/"},
	{"IPv6 loopback", "http://[::1]/"},
	{"IPv6 unspecified ::", "http://[::]:8080/"},
	{"IPv6 unspecified, long form", "http://[0:0:0:0:0:0:0:0]/"},
	{"IPv6 link-local with a zone id", "http://[fe80::1%25eth0]/"},
	{"IPv6 loopback with a zone id", "http://[::1%25lo]/"},
	{"IPv6 link-local, zone id in clear", "http://[fe80::1%eth0]/"},
	{"IPv6 ULA fc00::/7", "http://[fc00::1]/"},
	{"IPv6 ULA fd00::", "http://[fd12:3456::1]/"},
	{"IPv6 multicast", "http://[ff02::1]/"},
	{"IPv6 site-local", "http://[fec0::1]/"},
	{"IPv4-mapped loopback, dotted", "http://[::ffff:127.0.0.1]/"},
	{"IPv4-mapped loopback, hex", "http://[::ffff:7f00:1]/"},
	{"IPv4-mapped loopback, long form", "http://[0:0:0:0:0:ffff:7f00:1]/"},
	{"IPv4-mapped private", "http://[::ffff:10.0.0.1]/"},
	{"IPv4-mapped metadata", "http://[::ffff:a9fe:a9fe]/"},
	{"IPv4-compatible loopback", "http://[::127.0.0.1]/"},
	{"NAT64 of loopback", "http://[64:ff9b::7f00:1]/"},
	{"6to4 of loopback", "http://[2002:7f00:1::]/"},
	{"decimal 2130706433", "http://2130706433/"},
	{"decimal with a port", "http://2130706433:8080/"},
	{"octal 0177.0.0.1", "http://0177.0.0.1/"},
	{"octal 017700000001", "http://017700000001/"},
	{"hex 0x7f.1", "http://0x7f.1/"},
	{"hex 0x7f000001", "http://0x7f000001/"},
	{"short form 127.1", "http://127.1/"},
	{"short form 127.0.1", "http://127.0.1/"},
	{"bare 0", "http://0/"},
	{"loopback with a trailing dot", "http://127.0.0.1./"},
	{"percent-encoded loopback", "http://%31%32%37.0.0.1/"},
	{"full-width digits (IDNA maps them to 127.0.0.1)", "http://１２７.０.０.１/"},
	{"localhost", "http://localhost/"},
	{"LOCALHOST with a trailing dot", "http://LOCALHOST./"},
	{"name under .localhost", "http://evil.localhost/"},
	{"user info hiding a loopback host", "http://public.test@127.0.0.1/"},
	{"user info hiding a private host", "http://public.test:443@10.0.0.1/"},
	{"fragment hiding the real host", "http://127.0.0.1#@public.test/"},
	{"name resolving to loopback", "http://loop.test/"},
	{"name resolving to 10/8", "http://internal.test/"},
	{"name resolving to 192.168/16", "http://rfc1918.test/"},
	{"name resolving to metadata", "http://meta.test/"},
	{"name resolving to CGNAT", "http://cgnat.test/"},
	{"name resolving to 0.0.0.0", "http://zero.test/"},
	{"name resolving to ::1", "http://v6loop.test/"},
	{"name resolving to ::", "http://v6any.test/"},
	{"name resolving to a ULA", "http://ula.test/"},
	{"name resolving to fe80::1", "http://linklocal6.test/"},
	{"name resolving to ::ffff:127.0.0.1", "http://mapped.test/"},
	{"name resolving to NAT64 loopback", "http://nat64.test/"},
	{"name resolving to public and private", "http://mixed.test/"},
	{"name resolving to public and ::1", "http://mixed6.test/"},
	{"public-looking name for 127.0.0.1 (localtest.me)", "http://localtest.me/"},
	{"name that does not resolve", "http://nowhere.test/"},
	{"file scheme", "file:///etc/passwd"},
	{"gopher scheme", "gopher://127.0.0.1:6379/_INFO"},
	{"scheme-relative", "//127.0.0.1/"},
}

// TestAbuseSSRFAtSave tries every spelling of a non-public target when
// creating an endpoint and when moving one: each is refused with 400
// invalid_field naming url, and nothing is stored or changed.
func TestAbuseSSRFAtSave(t *testing.T) {
	t.Parallel()
	resolver := ssrfResolver(t)
	e := setup(t, func(c *app.Config) { c.Policy = netguard.Policy{AllowHTTP: true, Resolver: resolver} })
	// Controls: public targets are taken, so a refusal below is the address's.
	ep := e.endpoint(t, "http://public.test:8080/hooks", nil)
	e.endpoint(t, "http://93.184.215.14/hooks", nil)
	epPath := "/api/webhooks/" + str(ep, "id")
	for _, c := range ssrfSaveCases {
		status, m := e.h.Do(t, http.MethodPost, "/api/webhooks", e.key, map[string]any{"url": c.url, "events": []string{"*"}})
		if status != http.StatusBadRequest || errorCode(m) != "invalid_field" || str(obj(m, "error"), "field") != "url" {
			t.Errorf("%s: create endpoint at %s = %d %v, want 400 invalid_field url", c.name, c.url, status, m)
		}
		status, m = e.h.Do(t, http.MethodPatch, epPath, e.key, map[string]any{"url": c.url})
		if status != http.StatusBadRequest || errorCode(m) != "invalid_field" || str(obj(m, "error"), "field") != "url" {
			t.Errorf("%s: PATCH url to %s = %d %v, want 400 invalid_field url", c.name, c.url, status, m)
		}
	}
	if got := e.h.Get(t, e.key, epPath); got["url"] != "http://public.test:8080/hooks" {
		t.Errorf("a refused PATCH changed the url to %v", got["url"])
	}
	if eps := hookdtest.Items(e.h.Get(t, e.key, "/api/webhooks")); len(eps) != 2 {
		t.Errorf("%d endpoints stored, want only the 2 public ones", len(eps))
	}
}

// TestAbuseSSRFAtConnect saves endpoints at many spellings of the local host
// while private targets are allowed, proves that each one reaches a receiver
// on 127.0.0.1, then restarts hookd with the strict policy: every attempt,
// queued or test-sent, is refused at connect time and the receiver hears
// nothing more.
func TestAbuseSSRFAtConnect(t *testing.T) {
	t.Parallel()
	resolver := ssrfResolver(t)
	e := setup(t, func(c *app.Config) {
		c.Policy = netguard.Policy{AllowHTTP: true, AllowPrivate: true, Resolver: resolver}
	})
	r := hookdtest.NewReceiver(t)
	u, _ := url.Parse(r.URL())
	port := u.Port()
	hosts := []string{
		"127.0.0.1",
		"[::ffff:127.0.0.1]",
		"[::ffff:7f00:1]",
		"0.0.0.0",
		"localhost",
		"loop.test",
		"mapped.test",
		"１２７.０.０.１",
	}
	eps := make([]map[string]any, len(hosts))
	for i, h := range hosts {
		eps[i] = e.endpoint(t, fmt.Sprintf("http://%s:%s/ssrf/%d", h, port, i),
			map[string]any{"events": []string{"order.created"}, "retry": fastRetry(1)})
	}
	e.publish(t, "allowed-1", "order.created", map[string]any{})
	reqs := r.Wait(t, len(hosts), 10*time.Second)
	reached := map[string]bool{}
	for _, q := range reqs {
		reached[q.Path] = true
	}
	for i, h := range hosts {
		if !reached[fmt.Sprintf("/ssrf/%d", i)] {
			t.Errorf("control: %s did not reach the receiver on 127.0.0.1 while private targets were allowed", h)
		}
	}

	e.h.Restart(t, func(c *app.Config) { c.Policy = netguard.Policy{AllowHTTP: true, Resolver: resolver} })
	res := e.publish(t, "strict-1", "order.created", map[string]any{})
	for i, ep := range eps {
		d := e.h.DeliveryFor(t, e.key, str(res, "id"), str(ep, "id"))
		d = e.h.WaitDeliveryStatus(t, e.key, str(d, "id"), "failed", 10*time.Second)
		if as := attempts(d); len(as) != 1 || !strings.Contains(str(as[0], "error"), "non-public") || as[0]["response_status"] != nil {
			t.Errorf("%s: attempts %s, want one refused at connect (non-public address), no response", hosts[i], hookdtest.JSON(as))
		}
		status, m := e.h.Do(t, http.MethodPost, "/api/webhooks/"+str(ep, "id")+"/test", e.key, nil)
		at := obj(m, "attempt")
		if status != http.StatusOK || str(m, "status") != "failed" || !strings.Contains(str(at, "error"), "non-public") {
			t.Errorf("%s: test-send = %d %v, want 200, failed, refused at connect", hosts[i], status, m)
		}
	}
	r.NoMoreThan(t, len(hosts), 200*time.Millisecond)
}

// TestAbuseRedirectsToPrivate has an endpoint answer every redirect status
// with a Location on the local host (a receiver that would record the
// request) and on the metadata address: hookd never follows, neither for
// queued deliveries nor for test sends; the attempt is a failure that
// records the 3xx.
func TestAbuseRedirectsToPrivate(t *testing.T) {
	t.Parallel()
	e := setup(t)
	target := hookdtest.NewReceiver(t)
	locations := []string{
		target.URL() + "/followed",
		"http://169.254.169.254/latest/meta-data/",
		"http://[::ffff:127.0.0.1]:" + strings.TrimPrefix(target.URL(), "http://127.0.0.1:") + "/followed",
		"/relative-followed",
	}
	statuses := []int{301, 302, 303, 307, 308}
	for _, code := range statuses {
		for li, loc := range locations {
			redirector := hookdtest.NewReceiver(t)
			redirector.Respond(func(int, *http.Request) (int, http.Header, string) {
				return code, http.Header{"Location": {loc}}, ""
			})
			name := fmt.Sprintf("%d to %s", code, loc)
			ep := e.endpoint(t, redirector.URL(), map[string]any{"events": []string{fmt.Sprintf("redirect.s%d.l%d", code, li)}, "retry": fastRetry(1)})
			res := e.publish(t, "", fmt.Sprintf("redirect.s%d.l%d", code, li), map[string]any{})
			d := e.h.DeliveryFor(t, e.key, str(res, "id"), str(ep, "id"))
			d = e.h.WaitDeliveryStatus(t, e.key, str(d, "id"), "failed", 10*time.Second)
			if as := attempts(d); len(as) != 1 || num(as[0], "response_status") != float64(code) || str(as[0], "error") == "" {
				t.Errorf("%s: attempts %s, want one failed with response_status %d", name, hookdtest.JSON(as), code)
			}
			status, m := e.h.Do(t, http.MethodPost, "/api/webhooks/"+str(ep, "id")+"/test", e.key, nil)
			if at := obj(m, "attempt"); status != http.StatusOK || str(m, "status") != "failed" || num(at, "response_status") != float64(code) {
				t.Errorf("%s: test-send = %d %v, want 200, failed, response_status %d", name, status, m, code)
			}
			redirector.NoMoreThan(t, 2, 0)
		}
	}
	target.NoMoreThan(t, 0, 200*time.Millisecond)
}
