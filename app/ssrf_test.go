package app_test

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookd/hookd/app"
	"github.com/hookd/hookd/hookdtest"
	"github.com/hookd/hookd/netguard"
	"github.com/hookd/hookd/netguard/dnstest"
)

// publicAddr is a public address the tests never connect to.
var publicAddr = netip.MustParseAddr("93.184.215.14")

func TestSSRFRefusedAtSave(t *testing.T) {
	t.Parallel()
	resolver := dnstest.NewServer(t, map[string][]netip.Addr{
		"public.test":   {publicAddr},
		"internal.test": {netip.MustParseAddr("10.1.2.3")},
		"mixed.test":    {publicAddr, netip.MustParseAddr("127.0.0.1")},
		"meta.test":     {netip.MustParseAddr("169.254.169.254")},
		"v6local.test":  {netip.MustParseAddr("fd00::1")},
	})
	e := setup(t, func(c *app.Config) { c.Policy = netguard.Policy{AllowHTTP: true, Resolver: resolver} })
	r := hookdtest.NewReceiver(t)

	refused := []string{
		r.URL() + "/hooks",
		"http://10.0.0.1/",
		"http://169.254.169.254/latest/meta-data",
		"http://[::1]:80/",
		"http://192.168.1.1/",
		"http://0.0.0.0:8080/",
		"http://[::ffff:127.0.0.1]/",
		"http://localhost:8080/",
		"http://internal.test/hooks",
		"http://mixed.test/hooks",
		"http://meta.test/latest/meta-data",
		"http://v6local.test/",
		"ftp://public.test/",
	}
	for _, u := range refused {
		status, m := e.h.Do(t, http.MethodPost, "/api/webhooks", e.key, map[string]any{"url": u, "events": []string{"*"}})
		if status != http.StatusBadRequest || errorCode(m) != "invalid_field" || !strings.Contains(errorField(m), "url") {
			t.Errorf("create endpoint at %s = %d %v, want 400 invalid_field url", u, status, m)
		}
	}
	ep := e.endpoint(t, "http://public.test:8080/hooks", nil) // a public target is fine
	for _, u := range []string{"http://10.0.0.1/", "http://internal.test/"} {
		status, m := e.h.Do(t, http.MethodPatch, "/api/webhooks/"+str(ep, "id"), e.key, map[string]any{"url": u})
		if status != http.StatusBadRequest || !strings.Contains(errorField(m), "url") {
			t.Errorf("PATCH url to %s = %d %v, want 400 invalid_field url", u, status, m)
		}
	}
	if got := e.h.Get(t, e.key, "/api/webhooks/"+str(ep, "id")); got["url"] != "http://public.test:8080/hooks" {
		t.Errorf("refused PATCH changed the url to %v", got["url"])
	}
	if eps := hookdtest.Items(e.h.Get(t, e.key, "/api/webhooks")); len(eps) != 1 {
		t.Errorf("%d endpoints stored, want only the public one", len(eps))
	}
	r.NoMoreThan(t, 0, 0)
}

func TestHTTPRefusedByDefault(t *testing.T) {
	t.Parallel()
	resolver := dnstest.NewServer(t, map[string][]netip.Addr{"public.test": {publicAddr}})
	e := setup(t, func(c *app.Config) { c.Policy = netguard.Policy{Resolver: resolver} })
	status, m := e.h.Do(t, http.MethodPost, "/api/webhooks", e.key, map[string]any{"url": "http://public.test/hooks", "events": []string{"*"}})
	if status != http.StatusBadRequest || errorCode(m) != "invalid_field" || !strings.Contains(errorField(m), "url") {
		t.Errorf("create endpoint at http://public.test/hooks = %d %v, want 400 invalid_field url", status, m)
	}
	e.endpoint(t, "https://public.test/hooks", nil)
}

// switchResolver returns a resolver that asks first's server until the
// returned func is called, and second's after.
func switchResolver(first, second *net.Resolver) (*net.Resolver, func()) {
	var cur atomic.Pointer[net.Resolver]
	cur.Store(first)
	r := &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
			return cur.Load().Dial(ctx, network, address)
		},
	}
	return r, func() { cur.Store(second) }
}

func TestSSRFRefusedAtConnect(t *testing.T) {
	t.Parallel()
	// DNS rebinding: the name resolves to a public address when the endpoint is
	// saved and to 127.0.0.1, where a receiver listens, when it is delivered to.
	resolver, rebind := switchResolver(
		dnstest.NewServer(t, map[string][]netip.Addr{"hooks.rebind.test": {publicAddr}}),
		dnstest.NewServer(t, map[string][]netip.Addr{"hooks.rebind.test": {netip.MustParseAddr("127.0.0.1")}}),
	)
	e := setup(t, func(c *app.Config) { c.Policy = netguard.Policy{AllowHTTP: true, Resolver: resolver} })
	r := hookdtest.NewReceiver(t)
	u, _ := url.Parse(r.URL())
	ep := e.endpoint(t, "http://hooks.rebind.test:"+u.Port()+"/hooks", map[string]any{"events": []string{"order.created"}, "retry": fastRetry(1)})
	rebind()

	res := e.publish(t, "", "order.created", map[string]any{"n": 1})
	d := e.h.DeliveryFor(t, e.key, str(res, "id"), str(ep, "id"))
	d = e.h.WaitDeliveryStatus(t, e.key, str(d, "id"), "failed", 5*time.Second)
	if as := attempts(d); len(as) != 1 || !strings.Contains(str(as[0], "error"), "non-public") {
		t.Errorf("attempts = %s, want one refused because of a non-public address", hookdtest.JSON(as))
	}
	r.NoMoreThan(t, 0, 100*time.Millisecond)
}

func TestSSRFRefusedAfterRestartWithStrictPolicy(t *testing.T) {
	t.Parallel()
	e := setup(t) // development policy: the receiver on 127.0.0.1 is allowed
	r := hookdtest.NewReceiver(t)
	ep := e.endpoint(t, r.URL(), map[string]any{"events": []string{"order.created"}, "retry": fastRetry(1)})
	e.h.Restart(t, func(c *app.Config) { c.Policy = netguard.Policy{AllowHTTP: true} })

	res := e.publish(t, "", "order.created", map[string]any{"n": 1})
	d := e.h.DeliveryFor(t, e.key, str(res, "id"), str(ep, "id"))
	d = e.h.WaitDeliveryStatus(t, e.key, str(d, "id"), "failed", 5*time.Second)
	if as := attempts(d); len(as) != 1 || !strings.Contains(str(as[0], "error"), "non-public") {
		t.Errorf("attempts = %s, want one refused because of a non-public address", hookdtest.JSON(as))
	}
	r.NoMoreThan(t, 0, 100*time.Millisecond)
}

func TestRedirectsNotFollowed(t *testing.T) {
	t.Parallel()
	e := setup(t)
	target := hookdtest.NewReceiver(t)
	redirector := hookdtest.NewReceiver(t)
	redirector.Respond(func(int, *http.Request) (int, http.Header, string) {
		return http.StatusFound, http.Header{"Location": {target.URL() + "/elsewhere"}}, ""
	})
	ep := e.endpoint(t, redirector.URL(), map[string]any{"events": []string{"order.created"}, "retry": fastRetry(1)})
	res := e.publish(t, "", "order.created", map[string]any{"n": 1})
	d := e.h.DeliveryFor(t, e.key, str(res, "id"), str(ep, "id"))
	d = e.h.WaitDeliveryStatus(t, e.key, str(d, "id"), "failed", 5*time.Second)
	as := attempts(d)
	if len(as) != 1 || num(as[0], "response_status") != 302 || str(as[0], "error") == "" {
		t.Errorf("attempts = %s, want one failed with response_status 302", hookdtest.JSON(as))
	}
	redirector.NoMoreThan(t, 1, 0)
	target.NoMoreThan(t, 0, 100*time.Millisecond)
}
