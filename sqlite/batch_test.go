package sqlite

import (
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/ids"
)

// batchFixture is a store with a scratch table, and a way to have the writer
// take several writes in one batch.
type batchFixture struct {
	t  *testing.T
	db *DB
}

func newBatchFixture(t *testing.T) *batchFixture {
	t.Helper()
	db := openTest(t, Config{})
	if err := db.write(t.Context(), func(tx wtx) error {
		_, err := tx.Exec(`CREATE TABLE scratch (v TEXT)`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return &batchFixture{t: t, db: db}
}

// scratchOp is a write that inserts v into scratch, counting its runs, calls
// also (if set) with its run's number, and then fails with fail if set.
type scratchOp struct {
	v     string
	rerun bool
	fail  error
	also  func(tx wtx, run int32)
	runs  atomic.Int32
	told  atomic.Bool // its caller has its result
}

// together runs calls, each a write, while the writer is held by another
// write, so that the writer takes them all, in their order, in its next batch,
// and returns each call's result.
func (f *batchFixture) together(calls ...func() error) []error {
	f.t.Helper()
	started, release := make(chan struct{}), make(chan struct{})
	held := make(chan error, 1)
	go func() {
		held <- f.db.write(f.t.Context(), func(tx wtx) error {
			close(started)
			<-release
			return nil
		})
	}()
	<-started
	errs := make([]error, len(calls))
	var wg sync.WaitGroup
	for i, call := range calls {
		wg.Go(func() { errs[i] = call() })
		// One at a time, so that the batch runs them in this order.
		for deadline := time.Now().Add(5 * time.Second); len(f.db.ops) < i+1; {
			if time.Now().After(deadline) {
				f.t.Fatalf("%d of %d writes queued", len(f.db.ops), i+1)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
	close(release)
	wg.Wait()
	if err := <-held; err != nil {
		f.t.Fatal(err)
	}
	return errs
}

// batch runs ops in one batch (see together) and returns each op's result.
func (f *batchFixture) batch(ops ...*scratchOp) []error {
	f.t.Helper()
	calls := make([]func() error, len(ops))
	for i, o := range ops {
		calls[i] = func() error {
			defer o.told.Store(true)
			return f.db.submit(f.t.Context(), writeOp{rerun: o.rerun, fn: func(tx wtx) error {
				run := o.runs.Add(1)
				if _, err := tx.Exec(`INSERT INTO scratch (v) VALUES (?)`, o.v); err != nil {
					return err
				}
				if o.also != nil {
					o.also(tx, run)
				}
				return o.fail
			}})
		}
	}
	return f.together(calls...)
}

// stored returns the values in scratch, sorted.
func (f *batchFixture) stored() []string {
	f.t.Helper()
	rows, err := f.db.r.QueryContext(f.t.Context(), `SELECT v FROM scratch ORDER BY v`)
	if err != nil {
		f.t.Fatal(err)
	}
	defer rows.Close()
	var vs []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			f.t.Fatal(err)
		}
		vs = append(vs, v)
	}
	if err := rows.Err(); err != nil {
		f.t.Fatal(err)
	}
	return vs
}

// TestBatchFailureUndoesOnlyItsOp: whichever way the writer runs a batch (a
// savepoint around each op; or none, and on a failure the batch again without
// the op that failed, and with savepoints after maxReruns failures), an op
// that fails leaves nothing behind and its caller gets its error, while the
// others commit once each; no caller hears anything before the run that
// commits.
func TestBatchFailureUndoesOnlyItsOp(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	for _, c := range []struct {
		name  string
		rerun bool
		fail  string  // the ops that fail
		runs  []int32 // how often each op runs
		store []string
	}{
		// a and b run, b fails; then a and c.
		{"ops that can run again: again without the one that failed", true, "b", []int32{2, 1, 1}, []string{"a", "c"}},
		// a, b (fails); a, c (fails); a, d (fails); then with savepoints: a, e (fails), f.
		{"after maxReruns failures: with savepoints", true, "bcde", []int32{4, 1, 1, 1, 1, 1}, []string{"a", "f"}},
		{"ops that cannot: savepoints from the start", false, "b", []int32{1, 1, 1}, []string{"a", "c"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newBatchFixture(t)
			var ops []*scratchOp
			for i := range c.runs {
				o := &scratchOp{v: string(rune('a' + i)), rerun: c.rerun}
				if strings.Contains(c.fail, o.v) {
					o.fail = boom
				}
				ops = append(ops, o)
			}
			var toldEarly atomic.Bool
			last := ops[len(ops)-1]
			last.also = func(wtx, int32) {
				// A caller told before this run commits would have its result
				// within microseconds: give it 50 ms.
				for deadline := time.Now().Add(50 * time.Millisecond); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
					for _, o := range ops {
						toldEarly.Store(toldEarly.Load() || o.told.Load())
					}
				}
			}
			errs := f.batch(ops...)
			for i, o := range ops {
				if !errors.Is(errs[i], o.fail) {
					t.Errorf("op %s: %v, want %v", o.v, errs[i], o.fail)
				}
				if o.runs.Load() != c.runs[i] {
					t.Errorf("op %s ran %d times, want %d", o.v, o.runs.Load(), c.runs[i])
				}
			}
			if toldEarly.Load() {
				t.Error("a caller had its result before the run that committed")
			}
			if got := f.stored(); !slices.Equal(got, c.store) {
				t.Fatalf("stored %q, want %q", got, c.store)
			}
		})
	}
}

// TestBatchRerunForgetsTheCaches: what a run that was rolled back put in the
// writer's caches is gone before the batch runs again.
func TestBatchRerunForgetsTheCaches(t *testing.T) {
	t.Parallel()
	f := newBatchFixture(t)
	probe := &scratchOp{v: "a", rerun: true, also: func(tx wtx, run int32) {
		if run == 1 {
			tx.db.quotas["org_rolled_back"] = hookd.Organization{ID: "org_rolled_back"}
		}
	}}
	f.batch(probe, &scratchOp{v: "b", rerun: true, fail: errors.New("boom")})
	var cached bool
	if err := f.db.write(t.Context(), func(tx wtx) error {
		_, cached = tx.db.quotas["org_rolled_back"]
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if cached {
		t.Fatal("the writer's cache kept what a rolled-back run put in it")
	}
}

// TestBatchesWithoutFailureRunOnce: a batch of ops that can run again, none
// failing, runs each op once (without savepoints) and commits them all; so
// does a batch of one op, and one op that fails leaves nothing behind and the
// writer ready for the next.
func TestBatchesWithoutFailureRunOnce(t *testing.T) {
	t.Parallel()
	f := newBatchFixture(t)
	ops := []*scratchOp{{v: "a", rerun: true}, {v: "b", rerun: true}, {v: "c", rerun: true}}
	for i, err := range f.batch(ops...) {
		if err != nil || ops[i].runs.Load() != 1 {
			t.Errorf("op %s: %v after %d runs, want nil after 1", ops[i].v, err, ops[i].runs.Load())
		}
	}
	boom := errors.New("boom")
	alone := &scratchOp{v: "d", fail: boom}
	if errs := f.batch(alone); !errors.Is(errs[0], boom) || alone.runs.Load() != 1 {
		t.Errorf("a failing op alone: %v after %d runs, want boom after 1", errs[0], alone.runs.Load())
	}
	next := &scratchOp{v: "e"}
	if errs := f.batch(next); errs[0] != nil {
		t.Errorf("the op after it: %v", errs[0])
	}
	if got := f.stored(); !slices.Equal(got, []string{"a", "b", "c", "e"}) {
		t.Fatalf("stored %q, want [a b c e]", got)
	}
}

// TestBatchLeftOutOpKeepsItsError: an op left out of a batch (it failed and
// the batch ran again without it) gets its own error, even if the run without
// it then fails as a whole (here at COMMIT, on a deferred foreign key); the
// others get that run's error, and nothing is stored.
func TestBatchLeftOutOpKeepsItsError(t *testing.T) {
	t.Parallel()
	f := newBatchFixture(t)
	if err := f.db.write(t.Context(), func(tx wtx) error {
		_, err := tx.Exec(`CREATE TABLE parent (id TEXT PRIMARY KEY);
			CREATE TABLE child (p TEXT REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	orphan := &scratchOp{v: "b", rerun: true, also: func(tx wtx, _ int32) {
		if _, err := tx.Exec(`INSERT INTO child (p) VALUES ('none')`); err != nil {
			t.Error(err)
		}
	}}
	errs := f.batch(&scratchOp{v: "a", rerun: true, fail: boom}, orphan)
	if !errors.Is(errs[0], boom) {
		t.Errorf("the op left out: %v, want its own error", errs[0])
	}
	if errs[1] == nil || !strings.Contains(errs[1].Error(), "commit") {
		t.Errorf("the op whose run failed at COMMIT: %v, want the commit's error", errs[1])
	}
	if got := f.stored(); len(got) != 0 {
		t.Fatalf("stored %q, want nothing", got)
	}
}

// TestBatchOfPublishesOverQuota: publishes in one batch, some of them past
// their organization's quota (SPEC §8): those answer EQUOTA and store nothing,
// the others are stored once, usage counts each of them once, and each
// threshold's usage_threshold event is emitted once, however often the batch
// ran again.
func TestBatchOfPublishesOverQuota(t *testing.T) {
	t.Parallel()
	f := newBatchFixture(t)
	ctx := t.Context()
	now := time.Now().Truncate(time.Microsecond)
	org := &hookd.Organization{ID: ids.New("org"), Name: "Acme", MonthlyQuota: 3, CreatedAt: now}
	if err := f.db.CreateOrganization(ctx, org); err != nil {
		t.Fatal(err)
	}
	calls := make([]func() error, 5)
	for i := range calls {
		calls[i] = func() error {
			ev := &hookd.Event{ID: ids.New("evt"), OrgID: org.ID, Type: "invoice.paid", Data: json.RawMessage(`{}`), CreatedAt: now}
			_, err := f.db.Publish(ctx, []*hookd.Event{ev})
			return err
		}
	}
	for i, err := range f.together(calls...) {
		var he *hookd.Error
		switch {
		case i < 3 && err != nil:
			t.Errorf("publish %d: %v, want it stored", i, err)
		case i >= 3 && (!errors.As(err, &he) || he.Code != hookd.EQUOTA):
			t.Errorf("publish %d: %v, want %s", i, err, hookd.EQUOTA)
		}
	}
	u, err := f.db.Usage(ctx, org.ID, hookd.UsagePeriod(now))
	if err != nil || u.Events != 3 {
		t.Fatalf("usage = %+v, %v; want 3 events", u, err)
	}
	evs, _, err := f.db.ListEvents(ctx, hookd.EventFilter{OrgID: org.ID, Page: hookd.Page{Limit: 100}})
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]int{}
	for _, ev := range evs {
		types[ev.Type]++
	}
	if want := map[string]int{"invoice.paid": 3, hookd.EventUsageThreshold: len(hookd.UsageThresholds)}; !maps.Equal(types, want) {
		t.Fatalf("events stored: %v, want %v", types, want)
	}
}
