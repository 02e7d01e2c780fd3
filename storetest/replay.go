package storetest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/hookd/hookd"
)

// replayScene is an endpoint with deliveries in every status, created a few minutes
// apart, and a second endpoint of the same organization that replays must not touch.
type replayScene struct {
	e, other *hookd.Endpoint // the replayed endpoint and its neighbour
	d        []*hookd.Delivery
	// d[0] succeeded, created at base; d[1] failed, base+1m; d[2] pending, base+2m;
	// d[3] skipped, base+3m; d[4] failed, base+10m.
}

func newReplayScene(t *testing.T, s hookd.Store) *replayScene {
	t.Helper()
	o := mustOrg(t, s)
	sc := &replayScene{e: mustEndpoint(t, s, o.ID, nil), other: mustEndpoint(t, s, o.ID, nil)}
	e := sc.e
	var others []*hookd.Delivery
	for i, at := range []time.Duration{0, time.Minute, 2 * time.Minute, 3 * time.Minute, 10 * time.Minute} {
		if i == 3 {
			setEnabled(t, s, e, false)
		}
		_, ds := mustPublishOne(t, s, o.ID, "invoice.paid", base.Add(at))
		if i == 3 {
			setEnabled(t, s, e, true)
		}
		sc.d = append(sc.d, ds[e.ID])
		others = append(others, ds[sc.other.ID])
	}
	now := base.Add(20 * time.Minute)
	settle(t, s, sc.d[0], hookd.DeliverySucceeded, now)
	settle(t, s, sc.d[1], hookd.DeliveryFailed, now)
	settle(t, s, sc.d[4], hookd.DeliveryFailed, now)
	for _, d := range others[:4] {
		settle(t, s, d, hookd.DeliveryFailed, now)
	}
	for i, want := range []string{hookd.DeliverySucceeded, hookd.DeliveryFailed, hookd.DeliveryPending, hookd.DeliverySkipped, hookd.DeliveryFailed} {
		if d, _ := mustDelivery(t, s, sc.d[i].ID); d.Status != want {
			t.Fatalf("replay scene: delivery %d is %s, want %s", i, d.Status, want)
		}
	}
	return sc
}

// snapshot returns the organization's deliveries by id.
func snapshot(t *testing.T, s hookd.Store, org string) map[string]*hookd.Delivery {
	t.Helper()
	out := map[string]*hookd.Delivery{}
	for _, d := range allDeliveries(t, s, hookd.DeliveryFilter{OrgID: org}) {
		out[d.ID] = d
	}
	return out
}

var replayTests = []test{
	{"Requeues", func(t *testing.T, s hookd.Store) {
		for _, tc := range []struct {
			name         string
			admin        bool
			since, until time.Duration // from base; until 0 = no bound
			status       string
			want         []int // indexes of the re-queued deliveries
		}{
			{"window, every status but pending", false, 0, 5 * time.Minute, "", []int{0, 1, 3}},
			{"failed only", false, 0, 5 * time.Minute, hookd.DeliveryFailed, []int{1}},
			{"no upper bound", false, time.Minute, 0, hookd.DeliveryFailed, []int{1, 4}},
			{"since inclusive, until exclusive", false, 3 * time.Minute, 10 * time.Minute, "", []int{3}},
			{"empty window", false, 4 * time.Minute, 9 * time.Minute, "", nil},
			{"everything, as admin", true, 0, 0, "", []int{0, 1, 3, 4}},
			{"skipped only", false, 0, 0, hookd.DeliverySkipped, []int{3}},
		} {
			sc := newReplayScene(t, s)
			e := sc.e
			before := snapshot(t, s, e.OrgID)
			p := hookd.ReplayParams{OrgID: e.OrgID, EndpointID: e.ID, Since: base.Add(tc.since), Status: tc.status,
				Now: base.Add(time.Hour)}
			if tc.admin {
				p.OrgID = ""
			}
			if tc.until != 0 {
				p.Until = base.Add(tc.until)
			}
			n, err := s.Replay(t.Context(), p)
			if err != nil {
				t.Fatalf("%s: Replay: %v", tc.name, err)
			}
			if n != len(tc.want) {
				t.Errorf("%s: Replay = %d, want %d", tc.name, n, len(tc.want))
			}
			want := map[string]*hookd.Delivery{}
			for id, d := range before {
				c := *d
				want[id] = &c
			}
			requeued := []*hookd.Delivery{sc.d[2]} // already pending, so due too
			for _, i := range tc.want {
				d := want[sc.d[i].ID]
				d.Status, d.NextAttemptAt, d.CycleAttempts = hookd.DeliveryPending, p.Now, 0
				requeued = append(requeued, d)
			}
			ignore := cmpopts.IgnoreFields(hookd.Delivery{}, "UpdatedAt")
			if diff := cmp.Diff(want, snapshot(t, s, e.OrgID), ignore); diff != "" {
				t.Errorf("%s: deliveries after Replay (-want +got):\n%s", tc.name, diff)
			}
			wantClaimed(t, mustClaimParams(t, s, hookd.ClaimParams{Now: p.Now, Exclude: otherEndpoints(t, s, e)}),
				tc.name+": claim after Replay", requeued...)
		}
	}},
	{"NotFound", func(t *testing.T, s hookd.Store) {
		sc := newReplayScene(t, s)
		stranger := mustOrg(t, s)
		before := snapshot(t, s, sc.e.OrgID)
		for _, p := range []hookd.ReplayParams{
			{OrgID: stranger.ID, EndpointID: sc.e.ID},
			{OrgID: sc.e.OrgID, EndpointID: "ep_unknown"},
			{EndpointID: "ep_unknown"},
		} {
			p.Now = base.Add(time.Hour)
			n, err := s.Replay(t.Context(), p)
			wantCode(t, err, hookd.ENOTFOUND, "Replay(org "+p.OrgID+", endpoint "+p.EndpointID+")")
			if n != 0 {
				t.Errorf("Replay(org %q, endpoint %q) = %d, want 0", p.OrgID, p.EndpointID, n)
			}
		}
		if diff := cmp.Diff(before, snapshot(t, s, sc.e.OrgID)); diff != "" {
			t.Errorf("deliveries after Replay by another organization (-want +got):\n%s", diff)
		}
	}},
}
