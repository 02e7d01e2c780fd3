// Package dnstest runs a small DNS server on 127.0.0.1 for tests that need
// host names resolving to chosen addresses.
package dnstest

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// NewServer starts a UDP DNS server on 127.0.0.1 that answers A and AAAA
// queries from records and returns a pure-Go *net.Resolver that sends every
// query to it. Record names are matched case-insensitively, with or without
// the trailing dot ("internal.test" and "internal.test." are the same name).
// A name in records gets its IPv4 addresses as A records and its IPv6
// addresses as AAAA records (an IPv4-mapped address counts as IPv4); a name
// not in records gets NXDOMAIN. Names in /etc/hosts, such as "localhost",
// may be answered from that file without asking the server, as Go's resolver
// does.
//
// The server stops when the test ends: NewServer registers t.Cleanup, which
// closes the socket and waits for the serving goroutine. The resolver is safe
// for concurrent use; records must not be modified after the call.
func NewServer(t testing.TB, records map[string][]netip.Addr) *net.Resolver {
	t.Helper()
	s := &server{records: make(map[string][]netip.Addr, len(records))}
	for name, addrs := range records {
		key := canonical(name)
		s.records[key] = append(s.records[key], addrs...)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("dnstest: listen: %v", err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { s.serve(t, pc) })
	t.Cleanup(func() {
		pc.Close()
		wg.Wait()
	})

	addr := pc.LocalAddr().String()
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "udp", addr)
		},
	}
}

type server struct {
	records map[string][]netip.Addr
}

func canonical(name string) string {
	name = strings.ToLower(name)
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	return name
}

func (s *server) serve(t testing.TB, pc net.PacketConn) {
	buf := make([]byte, 65535)
	for {
		n, from, err := pc.ReadFrom(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			t.Logf("dnstest: read: %v", err)
			return
		}
		resp, err := s.answer(buf[:n])
		if err != nil {
			t.Logf("dnstest: bad query from %v: %v", from, err)
			continue
		}
		if _, err := pc.WriteTo(resp, from); err != nil && !errors.Is(err, net.ErrClosed) {
			t.Logf("dnstest: write: %v", err)
		}
	}
}

// answer builds the response to one query message.
func (s *server) answer(query []byte) ([]byte, error) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, err
	}
	q, err := p.Question()
	if err != nil {
		return nil, err
	}

	addrs, known := s.records[strings.ToLower(q.Name.String())]
	rh := dnsmessage.Header{
		ID:                 h.ID,
		Response:           true,
		Authoritative:      true,
		RecursionDesired:   h.RecursionDesired,
		RecursionAvailable: true,
		RCode:              dnsmessage.RCodeSuccess,
	}
	if !known {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(make([]byte, 0, 512), rh)
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	res := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 1}
	for _, a := range addrs {
		a = a.Unmap()
		switch {
		case q.Type == dnsmessage.TypeA && a.Is4():
			res.Type = dnsmessage.TypeA
			err = b.AResource(res, dnsmessage.AResource{A: a.As4()})
		case q.Type == dnsmessage.TypeAAAA && a.Is6():
			res.Type = dnsmessage.TypeAAAA
			err = b.AAAAResource(res, dnsmessage.AAAAResource{AAAA: a.As16()})
		}
		if err != nil {
			return nil, err
		}
	}
	return b.Finish()
}
