package storetest

import (
	"testing"
	"time"

	"github.com/hookd/hookd"
)

// failedOutcome is an outcome of c whose attempt at at failed, still pending.
func failedOutcome(c *hookd.Claim, at time.Time) hookd.Outcome {
	out := outcome(c, hookd.DeliveryPending, at)
	out.NextAttemptAt = at
	out.Attempt.StatusCode, out.Attempt.Error = 500, "500 Internal Server Error"
	return out
}

// failingSince returns the stored endpoint's FailingSince.
func failingSince(t *testing.T, s hookd.Store, e *hookd.Endpoint) time.Time {
	t.Helper()
	got, err := s.Endpoint(t.Context(), "", e.ID)
	if err != nil {
		t.Fatalf("Endpoint: %v", err)
	}
	return got.FailingSince
}

var healthTests = []test{
	{"RunOfFailures", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		e := mustEndpoint(t, s, o.ID, nil)
		mustPublishOne(t, s, o.ID, "invoice.paid", base)
		t1, t2, t3, t4 := base.Add(time.Second), base.Add(time.Minute), base.Add(time.Hour), base.Add(2*time.Hour)

		mustComplete(t, s, failedOutcome(mustClaim(t, s, t1)[0], t1))
		if got := failingSince(t, s, e); !got.Equal(t1) {
			t.Fatalf("after a failed attempt FailingSince = %v, want %v", got, t1)
		}
		c := mustClaim(t, s, t2)[0]
		if !c.Endpoint.FailingSince.Equal(t1) {
			t.Errorf("the claim's endpoint FailingSince = %v, want %v (the engine decides on it)", c.Endpoint.FailingSince, t1)
		}
		mustComplete(t, s, failedOutcome(c, t2))
		if got := failingSince(t, s, e); !got.Equal(t1) {
			t.Errorf("after a second failure FailingSince = %v, want still %v (the run began then)", got, t1)
		}
		mustComplete(t, s, outcome(mustClaim(t, s, t3)[0], hookd.DeliverySucceeded, t3))
		if got := failingSince(t, s, e); !got.IsZero() {
			t.Errorf("after a success FailingSince = %v, want zero", got)
		}
		mustPublishOne(t, s, o.ID, "invoice.paid", t4)
		mustComplete(t, s, failedOutcome(mustClaim(t, s, t4)[0], t4))
		if got := failingSince(t, s, e); !got.Equal(t4) {
			t.Errorf("a new run: FailingSince = %v, want %v", got, t4)
		}
		// Disabling keeps the run; enabling again starts afresh.
		for _, enabled := range []bool{false, true} {
			if _, err := s.UpdateEndpoint(t.Context(), "", e.ID, func(e *hookd.Endpoint) error { e.Enabled = enabled; return nil }); err != nil {
				t.Fatal(err)
			}
		}
		if got := failingSince(t, s, e); !got.IsZero() {
			t.Errorf("after enabling FailingSince = %v, want zero", got)
		}
	}},
	{"LostLeaseChangesNothing", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		e := mustEndpoint(t, s, o.ID, nil)
		mustPublishOne(t, s, o.ID, "invoice.paid", base)
		c := mustClaim(t, s, base)[0]
		out := failedOutcome(c, base)
		out.Lease = "lease_lost"
		mustComplete(t, s, out)
		if got := failingSince(t, s, e); !got.IsZero() {
			t.Errorf("an outcome whose lease was lost set FailingSince = %v", got)
		}
	}},
	{"WindowDisableIsConditional", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		e := mustEndpoint(t, s, o.ID, nil)
		mustPublishOne(t, s, o.ID, "invoice.paid", base)
		mustComplete(t, s, failedOutcome(mustClaim(t, s, base)[0], base)) // the run begins at base
		mustPublishOne(t, s, o.ID, "invoice.paid", base)
		later := base.Add(2 * time.Hour)
		cs := mustClaim(t, s, later)
		if len(cs) != 2 {
			t.Fatalf("claimed %d, want 2", len(cs))
		}
		// One attempt succeeds (the endpoint recovered); the other, begun before,
		// fails and asks to disable on the run that began at base.
		mustComplete(t, s, outcome(cs[0], hookd.DeliverySucceeded, later))
		late := failedOutcome(cs[1], later.Add(time.Second))
		late.DisableEndpoint, late.FailingFor = "failing for an hour", time.Hour
		mustComplete(t, s, late)
		if got, err := s.Endpoint(t.Context(), "", e.ID); err != nil || !got.Enabled {
			t.Fatalf("a failure begun before the recovery disabled the endpoint: %+v, %v", got, err)
		}
		// A run that has lasted the window does disable.
		c := mustClaim(t, s, later.Add(2*time.Hour))[0]
		out := failedOutcome(c, later.Add(2*time.Hour))
		out.DisableEndpoint, out.FailingFor = "failing for an hour", time.Hour
		mustComplete(t, s, out)
		if got, err := s.Endpoint(t.Context(), "", e.ID); err != nil || got.Enabled || got.DisabledReason != "failing for an hour" {
			t.Errorf("after a run of two hours: %+v, %v; want disabled", got, err)
		}
	}},
}
