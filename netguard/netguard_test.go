package netguard_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hookd/hookd/netguard"
	"github.com/hookd/hookd/netguard/dnstest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestIsPublic(t *testing.T) {
	t.Parallel()
	tests := []struct {
		ip   string
		want bool
	}{
		{"127.0.0.1", false},
		{"127.255.255.254", false},
		{"::1", false},
		{"10.0.0.1", false},
		{"10.255.255.255", false},
		{"172.16.0.1", false},
		{"172.31.255.255", false},
		{"192.168.1.1", false},
		{"169.254.169.254", false},
		{"169.254.0.1", false},
		{"fe80::1", false},
		{"fe80::1%eth0", false},
		{"fc00::1", false},
		{"fd12:3456:789a::1", false},
		{"224.0.0.1", false},
		{"239.255.255.250", false},
		{"ff02::1", false},
		{"0.0.0.0", false},
		{"0.1.2.3", false},
		{"::", false},
		{"255.255.255.255", false},
		{"100.64.0.1", false},
		{"100.127.255.255", false},
		{"192.0.2.1", false},
		{"198.51.100.1", false},
		{"203.0.113.1", false},
		{"198.18.0.1", false},
		{"240.0.0.1", false},
		{"2001:db8::1", false},
		{"3fff::1", false},
		{"2002:7f00:1::", false},    // 6to4 embedding 127.0.0.1
		{"64:ff9b::7f00:1", false},  // NAT64 of 127.0.0.1
		{"::127.0.0.1", false},      // IPv4-compatible
		{"fec0::1", false},          // site-local
		{"::ffff:127.0.0.1", false}, // IPv4-mapped loopback
		{"::ffff:10.0.0.1", false},  // IPv4-mapped private
		{"::ffff:169.254.169.254", false},
		{"8.8.8.8", true},
		{"1.1.1.1", true},
		{"100.63.255.255", true},
		{"100.128.0.0", true},
		{"172.15.255.255", true},
		{"172.32.0.0", true},
		{"::ffff:8.8.8.8", true},
		{"2606:4700::1111", true},
		{"2a00:1450:4001:80e::200e", true},
	}
	for _, tt := range tests {
		if got := netguard.IsPublic(netip.MustParseAddr(tt.ip)); got != tt.want {
			t.Errorf("IsPublic(%q) = %v, want %v", tt.ip, got, tt.want)
		}
	}
	if got := netguard.IsPublic(netip.Addr{}); got {
		t.Errorf("IsPublic(%q) = %v, want %v", "invalid", got, false)
	}
}

// testRecords are the names the test DNS server knows.
var testRecords = map[string][]netip.Addr{
	"internal.test.": {netip.MustParseAddr("10.1.2.3")},
	"rebind.test.":   {netip.MustParseAddr("127.0.0.1")},
	"metadata.test.": {netip.MustParseAddr("169.254.169.254")},
	"ula.test.":      {netip.MustParseAddr("fd00::1")},
	"public.test.":   {netip.MustParseAddr("8.8.8.8"), netip.MustParseAddr("2606:4700::1111")},
	"mixed.test.":    {netip.MustParseAddr("8.8.8.8"), netip.MustParseAddr("192.168.0.10")},
}

func TestCheckURL(t *testing.T) {
	t.Parallel()
	resolver := dnstest.NewServer(t, testRecords)
	strict := netguard.Policy{Resolver: resolver}
	withHTTP := netguard.Policy{Resolver: resolver, AllowHTTP: true}
	dev := netguard.Policy{Resolver: resolver, AllowHTTP: true, AllowPrivate: true}

	tests := []struct {
		name    string
		policy  netguard.Policy
		url     string
		wantErr string // "" means accepted
		private bool   // the error must match ErrPrivateAddress
	}{
		{"https public literal", strict, "https://8.8.8.8/hooks", "", false},
		{"https public v6 literal", strict, "https://[2606:4700::1111]:8443/hooks", "", false},
		{"https public name", strict, "https://public.test/hooks?x=1", "", false},
		{"name with trailing dot", strict, "https://public.test./hooks", "", false},
		{"fragment kept", strict, "https://public.test/hooks#frag", "", false},
		{"any port", strict, "https://public.test:9/hooks", "", false},
		{"upper-case scheme", strict, "HTTPS://public.test/", "", false},
		{"http refused", strict, "http://public.test/hooks", "url must use https", false},
		{"http allowed", withHTTP, "http://public.test/hooks", "", false},
		{"ftp refused", strict, "ftp://public.test/file", "url must use https", false},
		{"ftp refused with http", withHTTP, "ftp://public.test/file", "url must use http or https", false},
		{"javascript refused", strict, "javascript:alert(1)", "url must use https", false},
		{"opaque https", strict, "https:public.test", "url must have a host", false},
		{"relative", strict, "/hooks", "url must be absolute, such as https://example.com/webhooks", false},
		{"scheme-relative", strict, "//public.test/hooks", "url must be absolute, such as https://example.com/webhooks", false},
		{"empty", strict, "", "url is required", false},
		{"blank", strict, "  ", "url is required", false},
		{"no host", strict, "https:///hooks", "url must have a host", false},
		{"only port", strict, "https://:443/hooks", "url must have a host", false},
		{"bad port", strict, "https://public.test:99999/", `url has an invalid port "99999"`, false},
		{"zero port", strict, "https://public.test:0/", `url has an invalid port "0"`, false},
		{"unparsable", strict, "https://public test/", `url is not a valid URL (invalid character " " in host name)`, false},
		{"too long", strict, "https://public.test/" + strings.Repeat("a", 2048), "url must be at most 2048 characters", false},
		{"loopback literal", strict, "https://127.0.0.1/", "url host is a private address (127.0.0.1)", true},
		{"loopback v6 literal", strict, "https://[::1]:8443/", "url host is a private address (::1)", true},
		{"mapped loopback literal", strict, "https://[::ffff:127.0.0.1]/", "url host is a private address (::ffff:127.0.0.1)", true},
		{"private literal", strict, "https://10.0.0.1/", "url host is a private address (10.0.0.1)", true},
		{"rfc1918 172", strict, "https://172.16.5.4/", "url host is a private address (172.16.5.4)", true},
		{"link-local literal", strict, "https://[fe80::1%25eth0]/", "url host is a private address (fe80::1)", true},
		{"metadata literal", strict, "http://169.254.169.254/latest/meta-data/", "url must use https", false},
		{"metadata literal https", withHTTP, "http://169.254.169.254/latest/meta-data/", "url host is a private address (169.254.169.254)", true},
		{"unspecified literal", strict, "https://0.0.0.0/", "url host is a private address (0.0.0.0)", true},
		{"localhost", strict, "https://localhost/", `url host "localhost" is a private address`, true},
		{"localhost with port", strict, "https://LOCALHOST.:8443/", `url host "LOCALHOST." is a private address`, true},
		{"localhost subdomain", strict, "https://api.localhost/", `url host "api.localhost" is a private address`, true},
		{"name to private", strict, "https://internal.test/", "url resolves to a private address (10.1.2.3)", true},
		{"name to loopback", strict, "https://rebind.test/", "url resolves to a private address (127.0.0.1)", true},
		{"name to metadata", strict, "https://metadata.test/", "url resolves to a private address (169.254.169.254)", true},
		{"name to ula", strict, "https://ula.test/", "url resolves to a private address (fd00::1)", true},
		{"one private among public", strict, "https://mixed.test/", "url resolves to a private address (192.168.0.10)", true},
		{"unknown name", strict, "https://nowhere.test/", `url host "nowhere.test" does not resolve`, false},
		{"dev allows loopback", dev, "http://127.0.0.1:8080/hooks", "", false},
		{"dev allows localhost", dev, "http://localhost:8080/hooks", "", false},
		{"dev allows private name", dev, "https://internal.test/", "", false},
		{"dev does not resolve", dev, "https://nowhere.test/", "", false},
		{"dev still refuses ftp", dev, "ftp://127.0.0.1/", "url must use http or https", false},
	}
	for _, tt := range tests {
		u, err := tt.policy.CheckURL(context.Background(), tt.url)
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("%s: CheckURL(%q) = %v, want nil", tt.name, tt.url, err)
			} else if u == nil || u.String() != mustParse(t, tt.url).String() {
				t.Errorf("%s: CheckURL(%q) = %v, want the parsed URL", tt.name, tt.url, u)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: CheckURL(%q) = nil, want %q", tt.name, tt.url, tt.wantErr)
			continue
		}
		if err.Error() != tt.wantErr {
			t.Errorf("%s: CheckURL(%q) = %q, want %q", tt.name, tt.url, err, tt.wantErr)
		}
		var te *netguard.TargetError
		if !errors.As(err, &te) {
			t.Errorf("%s: CheckURL(%q) = %T, want *netguard.TargetError", tt.name, tt.url, err)
		}
		if got := errors.Is(err, netguard.ErrPrivateAddress); got != tt.private {
			t.Errorf("%s: errors.Is(CheckURL(%q), ErrPrivateAddress) = %v, want %v", tt.name, tt.url, got, tt.private)
		}
	}
}

func mustParse(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestCheckURLCanceled(t *testing.T) {
	t.Parallel()
	p := netguard.Policy{Resolver: dnstest.NewServer(t, testRecords)}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := p.CheckURL(ctx, "https://public.test/")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("CheckURL(canceled ctx) = %v, want context.Canceled", err)
	}
	var te *netguard.TargetError
	if errors.As(err, &te) {
		t.Errorf("CheckURL(canceled ctx) = %T, want not a *netguard.TargetError", err)
	}
}

// newCountingServer starts an HTTP server on 127.0.0.1 that counts requests.
func newCountingServer(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

// newClient returns a client using p.Transport and closes its idle
// connections when the test ends.
func newClient(t *testing.T, p netguard.Policy) *http.Client {
	t.Helper()
	c := p.Client()
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func TestTransportRefusesPrivateAtConnect(t *testing.T) {
	t.Parallel()
	srv, hits := newCountingServer(t)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	resolver := dnstest.NewServer(t, testRecords)

	tests := []struct {
		name   string
		policy netguard.Policy
		url    string
		wantOK bool
	}{
		{"literal loopback refused", netguard.Policy{AllowHTTP: true}, srv.URL, false},
		{"literal loopback allowed", netguard.Policy{AllowHTTP: true, AllowPrivate: true}, srv.URL, true},
		{"rebinding name refused", netguard.Policy{AllowHTTP: true, Resolver: resolver}, "http://rebind.test:" + port + "/", false},
		{"rebinding name allowed", netguard.Policy{AllowHTTP: true, AllowPrivate: true, Resolver: resolver}, "http://rebind.test:" + port + "/", true},
		{"localhost refused", netguard.Policy{AllowHTTP: true}, "http://localhost:" + port + "/", false},
	}
	for _, tt := range tests {
		before := hits.Load()
		req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, tt.url, strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := newClient(t, tt.policy).Do(req)
		if tt.wantOK {
			if err != nil {
				t.Errorf("%s: Do(%q) = %v, want success", tt.name, tt.url, err)
				continue
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("%s: Do(%q) status = %d, want 200", tt.name, tt.url, resp.StatusCode)
			}
			continue
		}
		if err == nil {
			resp.Body.Close()
			t.Errorf("%s: Do(%q) = %d, want an error", tt.name, tt.url, resp.StatusCode)
			continue
		}
		if !errors.Is(err, netguard.ErrPrivateAddress) {
			t.Errorf("%s: errors.Is(Do(%q), ErrPrivateAddress) = false, want true; err = %v", tt.name, tt.url, err)
		}
		var opErr *net.OpError
		if !errors.As(err, &opErr) || opErr.Op != "dial" {
			t.Errorf("%s: Do(%q) = %v, want a dial *net.OpError inside", tt.name, tt.url, err)
		}
		if n := hits.Load() - before; n != 0 {
			t.Errorf("%s: server saw %d requests, want 0", tt.name, n)
		}
		t.Logf("%s: %v", tt.name, err)
	}
}

func TestTransportHTTP2(t *testing.T) {
	t.Parallel()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Proto)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)

	tr := netguard.Policy{AllowPrivate: true}.Transport()
	t.Cleanup(tr.CloseIdleConnections)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	tr.TLSClientConfig = &tls.Config{RootCAs: pool}

	resp, err := (&http.Client{Transport: tr}).Get(srv.URL)
	if err != nil {
		t.Fatalf("Get(%q) = %v", srv.URL, err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Errorf("Get(%q) proto = %q, want HTTP/2.0", srv.URL, resp.Proto)
	}

	// The same TLS server is refused without AllowPrivate, before any handshake.
	strict := netguard.Policy{}.Transport()
	t.Cleanup(strict.CloseIdleConnections)
	strict.TLSClientConfig = &tls.Config{RootCAs: pool}
	_, err = (&http.Client{Transport: strict}).Get(srv.URL)
	if !errors.Is(err, netguard.ErrPrivateAddress) {
		t.Errorf("Get(%q) with strict policy = %v, want ErrPrivateAddress", srv.URL, err)
	}
}

func TestTransportSettings(t *testing.T) {
	t.Parallel()
	tr := netguard.Policy{}.Transport()
	if tr.Proxy != nil {
		t.Error("Transport().Proxy != nil, want nil (never a proxy from the environment)")
	}
	if tr.MaxIdleConnsPerHost < 32 {
		t.Errorf("Transport().MaxIdleConnsPerHost = %d, want at least 32", tr.MaxIdleConnsPerHost)
	}
	if tr.TLSHandshakeTimeout == 0 {
		t.Error("Transport().TLSHandshakeTimeout = 0, want a timeout")
	}
	if !tr.ForceAttemptHTTP2 {
		t.Error("Transport().ForceAttemptHTTP2 = false, want true")
	}
	if tr.DialContext == nil {
		t.Error("Transport().DialContext = nil, want the guarded dialer")
	}
}

func TestClientDoesNotFollowRedirects(t *testing.T) {
	t.Parallel()
	var followed atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/target" {
			followed.Store(true)
			return
		}
		http.Redirect(w, r, "/target", http.StatusFound)
	}))
	t.Cleanup(srv.Close)

	resp, err := newClient(t, netguard.Policy{AllowHTTP: true, AllowPrivate: true}).Get(srv.URL + "/start")
	if err != nil {
		t.Fatalf("Get = %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Errorf("Get status = %d, want %d", resp.StatusCode, http.StatusFound)
	}
	if followed.Load() {
		t.Error("client followed the redirect, want not")
	}
}

func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{
		"https://public.test/hooks", "http://public.test/", "https://8.8.8.8/", "https://[::1]/",
		"https://127.0.0.1/", "https://localhost/", "ftp://x/", "/rel", "https:opaque",
		"https://[fe80::1%25eth0]/", "https://rebind.test:8443/x#y", "https://[::ffff:10.0.0.1]/",
		"https://0x7f.1/", "https://2130706433/", "https://user:pw@public.test/",
	} {
		f.Add(s)
	}
	resolver := dnstest.NewServer(f, testRecords)
	p := netguard.Policy{Resolver: resolver}
	f.Fuzz(func(t *testing.T, raw string) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		u, err := p.CheckURL(ctx, raw)
		if ctx.Err() != nil {
			t.Fatalf("CheckURL(%q) took too long: %v", raw, err)
		}
		if err != nil {
			var te *netguard.TargetError
			if !errors.As(err, &te) || te.Reason == "" {
				t.Fatalf("CheckURL(%q) = %v (%T), want a *TargetError", raw, err, err)
			}
			return
		}
		if len(raw) > netguard.MaxURLLength {
			t.Fatalf("CheckURL(%q) accepted %d bytes", raw, len(raw))
		}
		if u.Scheme != "https" || u.Hostname() == "" {
			t.Fatalf("CheckURL(%q) accepted scheme %q host %q", raw, u.Scheme, u.Hostname())
		}
		if ip, err := netip.ParseAddr(u.Hostname()); err == nil && !netguard.IsPublic(ip) {
			t.Fatalf("CheckURL(%q) accepted non-public %v", raw, ip)
		}
	})
}
