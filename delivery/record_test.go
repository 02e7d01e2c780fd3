package delivery

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"

	"github.com/hookd/hookd"
)

// callStore is a Store whose CompleteDeliveries notes each call's outcomes, can
// hold the first call until released, and fails every call that holds the
// delivery named bad (a fault a real store gives no way to aim at one outcome).
type callStore struct {
	Store
	bad     string
	hold    chan struct{} // the first call waits on it, if not nil
	holding chan struct{} // closed when the first call is waiting
	mu      sync.Mutex
	calls   [][]string
	ok      map[string]bool
}

func (s *callStore) CompleteDeliveries(ctx context.Context, outs []hookd.Outcome) error {
	s.mu.Lock()
	first := len(s.calls) == 0
	var ids []string
	for _, o := range outs {
		ids = append(ids, o.DeliveryID)
	}
	s.calls = append(s.calls, ids)
	s.mu.Unlock()
	if first && s.hold != nil {
		close(s.holding)
		<-s.hold
	}
	if slices.Contains(ids, s.bad) {
		return errors.New("injected failure")
	}
	s.mu.Lock()
	for _, id := range ids {
		s.ok[id] = true
	}
	s.mu.Unlock()
	return nil
}

// TestRecorderBatchesAndIsolatesFailures: outcomes that arrive while a store
// call runs are recorded together in the next call; when a batch fails, each
// of its outcomes is tried on its own, so only the failing one reports an error.
func TestRecorderBatchesAndIsolatesFailures(t *testing.T) {
	t.Parallel()
	s := &callStore{bad: "dlv_bad", hold: make(chan struct{}), holding: make(chan struct{}), ok: map[string]bool{}}
	r := newRecorder(s)
	r.start()
	defer r.stop()

	first := make(chan error, 1)
	go func() { first <- r.record(hookd.Outcome{DeliveryID: "dlv_first"}) }()
	<-s.holding // the first call is in the store: the next ones queue up

	ids := []string{"dlv_bad"}
	for i := range 20 {
		ids = append(ids, fmt.Sprintf("dlv_%02d", i))
	}
	errs := make(map[string]error)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Go(func() {
			err := r.record(hookd.Outcome{DeliveryID: id})
			mu.Lock()
			errs[id] = err
			mu.Unlock()
		})
	}
	for len(r.in) < len(ids) { // every outcome handed over while the store is busy
		runtime.Gosched()
	}
	close(s.hold)
	if err := <-first; err != nil {
		t.Fatalf("first outcome: %v", err)
	}
	wg.Wait()

	for _, id := range ids {
		if id == "dlv_bad" {
			if errs[id] == nil {
				t.Errorf("record(%s) = nil, want the store's error", id)
			}
			continue
		}
		if errs[id] != nil || !s.ok[id] {
			t.Errorf("record(%s) = %v, recorded %v; want nil and recorded although another outcome of its batch failed", id, errs[id], s.ok[id])
		}
	}
	if len(s.calls) < 2 || len(s.calls[1]) != len(ids) {
		t.Fatalf("calls = %v, want the %d queued outcomes in one second call", s.calls, len(ids))
	}
}
