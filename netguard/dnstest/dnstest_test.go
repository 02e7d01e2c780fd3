package dnstest_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"testing"

	"go.uber.org/goleak"

	"github.com/hookd/hookd/netguard/dnstest"
)

func TestNewServer(t *testing.T) {
	t.Parallel()
	r := dnstest.NewServer(t, map[string][]netip.Addr{
		"internal.test.": {netip.MustParseAddr("10.1.2.3")},
		"Dual.Test":      {netip.MustParseAddr("192.0.2.7"), netip.MustParseAddr("2001:db8::7")},
		"v6only.test":    {netip.MustParseAddr("2001:db8::1")},
	})
	tests := []struct {
		host string
		want []string
	}{
		{"internal.test", []string{"10.1.2.3"}},
		{"internal.test.", []string{"10.1.2.3"}},
		{"INTERNAL.test", []string{"10.1.2.3"}},
		{"dual.test", []string{"192.0.2.7", "2001:db8::7"}},
		{"v6only.test", []string{"2001:db8::1"}},
	}
	for _, tt := range tests {
		addrs, err := r.LookupNetIP(context.Background(), "ip", tt.host)
		if err != nil {
			t.Errorf("LookupNetIP(%q) error: %v", tt.host, err)
			continue
		}
		var got []string
		for _, a := range addrs {
			got = append(got, a.String())
		}
		slices.Sort(got)
		if !slices.Equal(got, tt.want) {
			t.Errorf("LookupNetIP(%q) = %v, want %v", tt.host, got, tt.want)
		}
	}
}

func TestNewServerUnknownName(t *testing.T) {
	t.Parallel()
	r := dnstest.NewServer(t, nil)
	_, err := r.LookupNetIP(context.Background(), "ip", "missing.test")
	var dnsErr *net.DNSError
	if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
		t.Errorf("LookupNetIP(%q) error = %v, want a not-found *net.DNSError", "missing.test", err)
	}
}

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
