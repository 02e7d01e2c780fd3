// Benchmarks of event-type matching, which publishing pays for every endpoint
// of the event's organization: MatchEventType for each kind of pattern (exact,
// prefix "a.*", "*"), matching and not; and the stores' fan-out, which picks an
// event's subscribers among an organization's endpoints with
// Endpoint.Subscribes, over 100 endpoints of mixed patterns and over 100
// endpoints of MaxEventPatterns patterns each (the worst an organization can
// configure). ns/endpoint is the fan-out's cost per endpoint looked at.
//
//	go test -run '^$' -bench . -benchmem .
//	go test -run '^$' -bench 'Subscribers' -benchmem -count 6 .
package hookd_test

import (
	"fmt"
	"testing"

	"github.com/hookd/hookd"
)

func BenchmarkMatchEventType(b *testing.B) {
	tests := []struct {
		name, pattern, typ string
	}{
		{"exact", "invoice.paid", "invoice.paid"},
		{"exact-miss", "invoice.paid", "invoice.created"},
		{"prefix", "invoice.*", "invoice.item.created"},
		{"prefix-miss", "invoice.*", "customer.created"},
		{"wildcard", "*", "invoice.paid"},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				hookd.MatchEventType(tt.pattern, tt.typ)
			}
		})
	}
}

// BenchmarkSubscribers measures picking the subscribers of one event among an
// organization's 100 endpoints the way both stores' publishers do: a
// hookd.Endpoint holding only the stored patterns, asked Subscribes.
func BenchmarkSubscribers(b *testing.B) {
	const endpoints = 100
	nouns := []string{"invoice", "customer", "subscription", "payment", "order", "refund", "payout", "dispute"}
	verbs := []string{"created", "updated", "paid", "failed", "deleted"}
	// mixed: of every 10 endpoints, 1 takes "*", 4 take a prefix ("invoice.*"),
	// and 5 take one to three exact types.
	mixed := make([][]string, endpoints)
	for i := range mixed {
		noun := nouns[i%len(nouns)]
		switch {
		case i%10 == 0:
			mixed[i] = []string{"*"}
		case i%10 < 5:
			mixed[i] = []string{noun + ".*"}
		default:
			for j := range i%3 + 1 {
				mixed[i] = append(mixed[i], noun+"."+verbs[(i+j)%len(verbs)])
			}
		}
	}
	// full: every endpoint has MaxEventPatterns patterns, none of which
	// matches but the last of every tenth endpoint's.
	full := make([][]string, endpoints)
	for i := range full {
		for j := range hookd.MaxEventPatterns - 1 {
			full[i] = append(full[i], fmt.Sprintf("%s.%s%d", nouns[j%len(nouns)], verbs[j%len(verbs)], j))
		}
		last := "audit.*"
		if i%10 == 0 {
			last = "invoice.*"
		}
		full[i] = append(full[i], last)
	}
	for _, bench := range []struct {
		name     string
		patterns [][]string
	}{{"mixed", mixed}, {"patterns=100", full}} {
		b.Run(fmt.Sprintf("endpoints=%d/%s", endpoints, bench.name), func(b *testing.B) {
			b.ReportAllocs()
			var subscribers int
			for b.Loop() {
				subscribers = 0
				for _, p := range bench.patterns {
					ep := hookd.Endpoint{Events: p}
					if ep.Subscribes("invoice.paid") {
						subscribers++
					}
				}
			}
			if subscribers == 0 {
				b.Fatal("no endpoint subscribes to invoice.paid")
			}
			b.ReportMetric(float64(subscribers), "subscribers")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/endpoints, "ns/endpoint")
		})
	}
}
