// Package netguard keeps outbound webhook requests away from private networks (SSRF protection).
//
// A target is checked twice: [Policy.CheckURL] when an endpoint is saved, and
// the dialer of [Policy.Transport] on every connection, so a name that later
// resolves somewhere else (DNS rebinding) is still refused.
package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"code.dny.dev/ssrf"
)

// MaxURLLength is the longest target URL, in bytes, that [Policy.CheckURL] accepts.
const MaxURLLength = 2048

// ErrPrivateAddress is matched, through [errors.Is], by the error of a
// connection that [Policy.Transport] refused because the address is not
// public, and by the error of [Policy.CheckURL] for a target that resolves to
// such an address. It survives the wrapping of net/http: errors.Is on the
// error returned by [http.Client.Do] finds it.
var ErrPrivateAddress = errors.New("netguard: non-public address refused")

// guardian classifies addresses. Any port is allowed: webhook receivers
// listen where they like. Networks stay limited to tcp4 and tcp6.
var guardian = ssrf.New(ssrf.WithAnyPort())

// Policy says which targets are allowed. The zero value is the strict
// default: https only, public addresses only, [net.DefaultResolver].
// A Policy is a plain value, safe to copy and to use concurrently.
type Policy struct {
	// AllowHTTP permits http:// URLs. By default only https:// is accepted.
	AllowHTTP bool
	// AllowPrivate permits loopback, private, link-local and other non-public
	// addresses, both in CheckURL and when dialing. Meant for local work.
	AllowPrivate bool
	// Resolver resolves host names, both in CheckURL and when dialing.
	// Nil means net.DefaultResolver.
	Resolver *net.Resolver
}

// TargetError is the error CheckURL returns for a URL it refuses. Its message
// is a sentence fit to show an API user, such as "url must use https".
type TargetError struct {
	// Reason is the sentence returned by Error.
	Reason string
	// Err is the underlying cause, if any: ErrPrivateAddress for a non-public
	// address, or the resolver's error for a name that does not resolve.
	Err error
}

// Error returns e.Reason.
func (e *TargetError) Error() string { return e.Reason }

// Unwrap returns e.Err.
func (e *TargetError) Unwrap() error { return e.Err }

func refuse(err error, format string, args ...any) *TargetError {
	return &TargetError{Reason: fmt.Sprintf(format, args...), Err: err}
}

// CheckURL validates a webhook target URL when it is saved and returns it
// parsed. The URL must be absolute, at most MaxURLLength bytes, use https (or
// http when p.AllowHTTP) and name a host with a valid port. Unless
// p.AllowPrivate, a literal IP must be public (see IsPublic), "localhost" and
// names under ".localhost" are refused, and a host name must resolve, through
// p.Resolver, to public addresses only; with p.AllowPrivate the name is not
// resolved at all. Fragments and user info are allowed (net/http never sends
// a fragment).
//
// A refused URL gives a *TargetError whose message can be shown to the user;
// its errors.Is matches ErrPrivateAddress when an address is not public. If
// ctx ends during resolution, the error wraps ctx.Err() instead and is not a
// *TargetError. CheckURL is safe for concurrent use.
func (p Policy) CheckURL(ctx context.Context, raw string) (*url.URL, error) {
	if strings.TrimSpace(raw) == "" {
		return nil, refuse(nil, "url is required")
	}
	if len(raw) > MaxURLLength {
		return nil, refuse(nil, "url must be at most %d characters", MaxURLLength)
	}
	u, err := url.Parse(raw)
	if err != nil {
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			err = urlErr.Err // without the URL, which may be long
		}
		return nil, refuse(err, "url is not a valid URL (%v)", err)
	}
	if !u.IsAbs() {
		return nil, refuse(nil, "url must be absolute, such as https://example.com/webhooks")
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && p.AllowHTTP:
	case p.AllowHTTP:
		return nil, refuse(nil, "url must use http or https")
	default:
		return nil, refuse(nil, "url must use https")
	}
	host := u.Hostname()
	if u.Opaque != "" || host == "" {
		return nil, refuse(nil, "url must have a host")
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return nil, refuse(nil, "url has an invalid port %q", port)
		}
	}
	if p.AllowPrivate {
		return u, nil
	}

	if ip, err := netip.ParseAddr(host); err == nil {
		if !IsPublic(ip) {
			return nil, refuse(ErrPrivateAddress, "url host is a private address (%s)", ip.WithZone(""))
		}
		return u, nil
	}
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		return nil, refuse(ErrPrivateAddress, "url host %q is a private address", host)
	}
	addrs, err := p.resolver().LookupNetIP(ctx, "ip", host)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("resolve url host %q: %w", host, ctxErr)
		}
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
			return nil, refuse(err, "url host %q does not resolve", host)
		}
		return nil, refuse(err, "url host %q could not be resolved", host)
	}
	if len(addrs) == 0 {
		return nil, refuse(nil, "url host %q does not resolve", host)
	}
	for _, ip := range addrs {
		if !IsPublic(ip) {
			return nil, refuse(ErrPrivateAddress, "url resolves to a private address (%s)", ip.Unmap().WithZone(""))
		}
	}
	return u, nil
}

func (p Policy) resolver() *net.Resolver {
	if p.Resolver != nil {
		return p.Resolver
	}
	return net.DefaultResolver
}

// Transport returns a new *http.Transport for webhook delivery. It never uses
// a proxy (none is taken from the environment), resolves names with
// p.Resolver, and, unless p.AllowPrivate, refuses at connect time any address
// that is not public, on any port, so DNS rebinding cannot reach a private
// network. A refused dial fails with an error matching ErrPrivateAddress.
//
// Dial and TLS handshake time out after 10 s; response headers are limited to
// 1 MiB; up to 64 idle connections per host are kept for 90 s; HTTP/2 is used
// when the server offers it. There is no overall request timeout: bound each
// request with its context. The scheme is not checked here (that is
// CheckURL's job), nor are redirects, which are the client's business; see
// Client. Each call returns a new Transport, which the caller owns.
func (p Policy) Transport() *http.Transport {
	dialer := &net.Dialer{
		Timeout:   10 * time.Second,
		KeepAlive: 30 * time.Second,
		Resolver:  p.Resolver,
	}
	if !p.AllowPrivate {
		dialer.Control = control
	}
	return &http.Transport{
		Proxy:                  nil,
		DialContext:            dialer.DialContext,
		ForceAttemptHTTP2:      true,
		TLSHandshakeTimeout:    10 * time.Second,
		MaxIdleConns:           1024,
		MaxIdleConnsPerHost:    64,
		IdleConnTimeout:        90 * time.Second,
		ExpectContinueTimeout:  1 * time.Second,
		MaxResponseHeaderBytes: 1 << 20,
	}
}

// Client returns an *http.Client that uses p.Transport() and never follows
// redirects: a 3xx answer is returned as the response, as SPEC requires for
// webhook delivery. It has no Timeout; bound each request with its context.
func (p Policy) Client() *http.Client {
	return &http.Client{
		Transport: p.Transport(),
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// control is the net.Dialer Control function: it runs after the name was
// resolved, just before connect(2), with the numeric address.
func control(network, address string, c syscall.RawConn) error {
	err := guardian.Safe(network, address, c)
	if errors.Is(err, ssrf.ErrProhibitedIP) {
		return ErrPrivateAddress // net.Dialer wraps it in a *net.OpError naming the address
	}
	if err != nil {
		return fmt.Errorf("netguard: %w", err)
	}
	return nil
}

// IsPublic reports whether ip is a globally routable unicast address. It is
// false for the invalid zero Addr, loopback, unspecified, private (RFC 1918,
// IPv6 ULA), link-local (including the 169.254.169.254 cloud metadata
// address), multicast, broadcast, shared CGNAT space (100.64.0.0/10),
// documentation, benchmarking and other IANA special-purpose ranges, and IPv6
// outside 2000::/3 (so NAT64, IPv4-compatible and site-local addresses too).
// An IPv4-mapped IPv6 address is judged as the IPv4 address it maps.
func IsPublic(ip netip.Addr) bool {
	if !ip.IsValid() {
		return false
	}
	return guardian.SafeAddr(ip.Unmap().WithZone("")) == nil
}
