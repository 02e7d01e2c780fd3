// Package storetest is the contract every hookd.Store must pass.
//
// A store's test calls Run with a function that opens a fresh, empty store (and
// registers its own cleanup). Every case runs as a parallel subtest on its own store
// and tests only what store.go's doc comments and SPEC promise, so that every backend
// (SQLite, PostgreSQL) passes the same suite.
//
// Where store.go is silent the suite assumes what the rest of hookd relies on: a
// published event's deliveries are created and first due at the event's CreatedAt
// (the store takes no clock; publishers set CreatedAt to the current time), and the
// times a store keeps are exact to the microsecond.
package storetest

import (
	"testing"

	"github.com/hookd/hookd"
)

// test is one contract case; it gets a fresh store.
type test struct {
	name string
	run  func(t *testing.T, s hookd.Store)
}

// group is a named set of cases about one part of the Store interface.
type group struct {
	name  string
	tests []test
}

// groups lists every contract case, by part of the interface.
func groups() []group {
	return []group{
		{"Organization", organizationTests},
		{"APIKey", apiKeyTests},
		{"Endpoint", endpointTests},
		{"Publish", publishTests},
		{"Event", eventTests},
		{"List", listTests},
		{"Delivery", deliveryTests},
		{"Claim", claimTests},
		{"Complete", completeTests},
		{"StaleOutcome", staleTests},
		{"Release", releaseTests},
		{"Retry", retryTests},
		{"ClaimCap", capTests},
		{"Replay", replayTests},
		{"RecordTest", recordTestTests},
		{"Partner", partnerTests},
		{"AcceptInbound", acceptInboundTests},
		{"RetryEvent", retryEventTests},
		{"TakeToken", takeTokenTests},
		{"Audit", auditTests},
		{"Usage", usageTests},
		{"EndpointHealth", healthTests},
		{"Ping", pingTests},
	}
}

// Run runs every contract case against stores made by open, each case as a parallel
// subtest with a fresh store. open must return an empty store and register its
// cleanup (closing the store) with t.Cleanup.
func Run(t *testing.T, open func(t *testing.T) hookd.Store) {
	t.Helper()
	for _, g := range groups() {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					tc.run(t, open(t))
				})
			}
		})
	}
}
