package sqlite

import (
	"maps"
	"slices"
	"testing"

	"github.com/hookd/hookd"
)

func TestLeases(t *testing.T) {
	l := newLeases()
	chosen := []chosenDelivery{{1, "ep_a"}, {2, "ep_a"}, {3, "ep_b"}}

	// Taking leases each free delivery; a live lease is not taken again.
	if got := l.take(chosen, "L1", 100, 0); len(got) != 3 {
		t.Fatalf("take = %v, want 3 seqs", got)
	}
	if got := l.take(chosen, "L2", 100, 50); len(got) != 0 {
		t.Fatalf("second take within the lease = %v, want none", got)
	}
	got := l.live(50)
	slices.Sort(got["ep_a"])
	if want := map[string][]int64{"ep_a": {1, 2}, "ep_b": {3}}; !maps.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("live = %v, want %v", got, want)
	}

	// Loading names the deliveries; one not loaded (gone) loses its lease, one
	// broken is kept for setting aside.
	l.loaded([]int64{1, 2, 3}, map[int64]*hookd.Delivery{1: {ID: "dlv_1", OrgID: "org_1"}}, map[int64]bool{3: true}, "L1")
	if l.has(2) {
		t.Error("seq 2 was not loaded but still holds its lease")
	}
	if !l.has(3) {
		t.Error("seq 3 (broken) lost its lease before being set aside")
	}
	if m, ok := l.holds("dlv_1", "L1"); !ok || m.seq != 1 || m.org != "org_1" || m.endpoint != "ep_a" {
		t.Errorf("holds(dlv_1, L1) = %+v, %v; want seq 1 of org_1 and ep_a, true", m, ok)
	}
	if _, ok := l.holds("dlv_1", "L2"); ok {
		t.Error("holds accepted a lease that is not the delivery's")
	}
	if !l.leasedID("dlv_1", 99) || l.leasedID("dlv_1", 100) {
		t.Error("leasedID does not follow the lease's end")
	}

	// Ending with the wrong lease leaves it; with its own, ends it.
	l.end([]string{"dlv_1"}, func(int) string { return "L2" })
	if !l.has(1) {
		t.Fatal("end with another lease ended it")
	}
	l.endSeqs([]int64{3}, "L1")
	if l.has(3) {
		t.Error("endSeqs left seq 3 leased")
	}

	// A lease that ran out still holds (its outcome may yet be recorded) until
	// another claim takes the delivery.
	if _, ok := l.holds("dlv_1", "L1"); !ok {
		t.Fatal("an expired lease no longer holds before anyone took the delivery")
	}
	if got := l.take(chosen[:1], "L3", 300, 200); len(got) != 1 {
		t.Fatalf("take after expiry = %v, want [1]", got)
	}
	if _, ok := l.holds("dlv_1", "L1"); ok {
		t.Error("the old lease still holds after the delivery was taken again")
	}
	if !l.holdsSeq(1, "L3") {
		t.Error("the new lease does not hold seq 1")
	}

	// live forgets leases that ran out, so memory stays bounded by what is in flight.
	if got := l.live(300); len(got) != 0 {
		t.Errorf("live after every lease ran out = %v, want none", got)
	}
	if len(l.seqs) != 0 || len(l.ids) != 0 {
		t.Errorf("expired leases kept: %d by seq, %d by id", len(l.seqs), len(l.ids))
	}
}
