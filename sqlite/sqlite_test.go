package sqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.uber.org/goleak"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/ids"
	"github.com/hookd/hookd/secret"
	"github.com/hookd/hookd/sqlite"
	"github.com/hookd/hookd/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// base is the tests' fixed "now", truncated to the microsecond as the store keeps it.
var base = time.Date(2025, time.March, 4, 5, 6, 7, 123456000, time.UTC)

// testKey is the master key of every test store, so that a file can be reopened.
var testKey = bytes.Repeat([]byte{0x5a}, 32)

// openAt opens the store at path and closes it when the test ends.
func openAt(t *testing.T, path string) *sqlite.DB {
	t.Helper()
	s, err := secret.NewSealer(testKey)
	if err != nil {
		t.Fatalf("NewSealer: %v", err)
	}
	db, err := sqlite.Open(t.Context(), sqlite.Config{Path: path, Sealer: s})
	if err != nil {
		t.Fatalf("sqlite.Open(%s): %v", path, err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

func TestStore(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) hookd.Store {
		return openAt(t, filepath.Join(t.TempDir(), "hookd.db"))
	})
}

// fixture is an organization with one endpoint, subscribed to everything.
type fixture struct {
	org *hookd.Organization
	ep  *hookd.Endpoint
}

func newFixture(t *testing.T, db hookd.Store) fixture {
	t.Helper()
	ctx := t.Context()
	o := &hookd.Organization{ID: ids.New("org"), Name: "Acme", CreatedAt: base}
	if err := db.CreateOrganization(ctx, o); err != nil {
		t.Fatalf("CreateOrganization: %v", err)
	}
	id := ids.New("ep")
	e := &hookd.Endpoint{
		ID: id, OrgID: o.ID, URL: "https://receiver.example.com/" + id, Events: []string{"*"}, Enabled: true,
		Headers: map[string]string{"X-Team": "billing"}, SignatureScheme: "standard-webhooks",
		Payload: hookd.PayloadEnvelope, Ordering: hookd.OrderingUnordered,
		Retry:  hookd.RetryPolicy{MaxAttempts: 3, InitialInterval: time.Second, MaxInterval: time.Minute},
		Secret: "whsec_" + "Q1VSUkVOVC1TRUNSRVQtTUFSS0VS" + id, PreviousSecret: "whsec_UFJFVklPVVMtU0VDUkVU" + id,
		PreviousSecretExpires: base.Add(time.Hour), CreatedAt: base, UpdatedAt: base,
	}
	if err := db.CreateEndpoint(ctx, e); err != nil {
		t.Fatalf("CreateEndpoint: %v", err)
	}
	return fixture{org: o, ep: e}
}

func (f fixture) event(typ string, at time.Time) *hookd.Event {
	id := ids.New("evt")
	return &hookd.Event{ID: id, OrgID: f.org.ID, Type: typ, Data: json.RawMessage(`{"id":"` + id + `"}`), CreatedAt: at}
}

func mustPublish(t *testing.T, db hookd.Store, evs ...*hookd.Event) {
	t.Helper()
	if _, err := db.Publish(t.Context(), evs); err != nil {
		t.Fatalf("Publish: %v", err)
	}
}

func mustClaim(t *testing.T, db hookd.Store, now time.Time, lease time.Duration) []*hookd.Claim {
	t.Helper()
	cs, err := db.ClaimDeliveries(t.Context(), hookd.ClaimParams{Owner: "test", Limit: 100, Now: now, Lease: lease})
	if err != nil {
		t.Fatalf("ClaimDeliveries: %v", err)
	}
	return cs
}

// state is everything the tests read back from a store about one fixture.
type state struct {
	Org        *hookd.Organization
	Key        *hookd.APIKey
	Endpoint   *hookd.Endpoint
	Events     []*hookd.Event
	Deliveries []*hookd.Delivery
	Attempts   map[string][]*hookd.Attempt
}

func readState(t *testing.T, db hookd.Store, f fixture, keyHash string) state {
	t.Helper()
	ctx := t.Context()
	var st state
	var err error
	if st.Org, err = db.Organization(ctx, f.org.ID); err != nil {
		t.Fatalf("Organization: %v", err)
	}
	if st.Key, err = db.APIKeyByHash(ctx, keyHash); err != nil {
		t.Fatalf("APIKeyByHash: %v", err)
	}
	if st.Endpoint, err = db.Endpoint(ctx, f.org.ID, f.ep.ID); err != nil {
		t.Fatalf("Endpoint: %v", err)
	}
	if st.Events, _, err = db.ListEvents(ctx, hookd.EventFilter{OrgID: f.org.ID, Page: hookd.Page{Limit: hookd.MaxPageLimit}}); err != nil {
		t.Fatalf("ListEvents: %v", err)
	}
	if st.Deliveries, _, err = db.ListDeliveries(ctx, hookd.DeliveryFilter{OrgID: f.org.ID, Page: hookd.Page{Limit: hookd.MaxPageLimit}}); err != nil {
		t.Fatalf("ListDeliveries: %v", err)
	}
	st.Attempts = map[string][]*hookd.Attempt{}
	for _, d := range st.Deliveries {
		_, as, err := db.Delivery(ctx, f.org.ID, d.ID)
		if err != nil {
			t.Fatalf("Delivery: %v", err)
		}
		st.Attempts[d.ID] = as
	}
	return st
}

func TestReopenKeepsEverything(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "hookd.db")
	db := openAt(t, path)
	f := newFixture(t, db)
	key := &hookd.APIKey{ID: ids.New("key"), OrgID: f.org.ID, Hash: "hash-" + ids.New("k"), CreatedAt: base}
	if err := db.CreateAPIKey(t.Context(), key); err != nil {
		t.Fatalf("CreateAPIKey: %v", err)
	}
	mustPublish(t, db, f.event("invoice.paid", base), f.event("invoice.created", base.Add(time.Second)))
	cs := mustClaim(t, db, base.Add(time.Minute), time.Minute)
	if len(cs) != 2 {
		t.Fatalf("claimed %d deliveries, want 2", len(cs))
	}
	if err := db.CompleteDeliveries(t.Context(), []hookd.Outcome{{
		DeliveryID: cs[0].Delivery.ID, Lease: cs[0].Lease, Status: hookd.DeliveryPending, NextAttemptAt: base.Add(time.Hour),
		Attempt: hookd.Attempt{ID: ids.New("att"), DeliveryID: cs[0].Delivery.ID, OrgID: f.org.ID, Number: 1, URL: f.ep.URL,
			RequestHeaders: map[string]string{"Webhook-Id": cs[0].Event.ID}, StatusCode: 503, ResponseBody: "busy",
			Duration: 250 * time.Millisecond, Error: "503 Service Unavailable", CreatedAt: base.Add(time.Minute)},
	}}); err != nil {
		t.Fatalf("CompleteDeliveries: %v", err)
	}
	if err := db.ReleaseDeliveries(t.Context(), []hookd.Release{{DeliveryID: cs[1].Delivery.ID, Lease: cs[1].Lease, NextAttemptAt: base.Add(2 * time.Hour)}}); err != nil {
		t.Fatalf("ReleaseDeliveries: %v", err)
	}
	before := readState(t, db, f, key.Hash)
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	again := openAt(t, path)
	after := readState(t, again, f, key.Hash)
	if diff := cmp.Diff(before, after, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("state after reopening (-before +after):\n%s", diff)
	}
	wantEp := *f.ep
	wantEp.FailingSince = base.Add(time.Minute) // its failed attempt began a run of failures
	if diff := cmp.Diff(&wantEp, after.Endpoint, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("endpoint after reopening, secrets opened (-want +got):\n%s", diff)
	}
	if len(after.Events) != 2 || len(after.Deliveries) != 2 || len(after.Attempts[cs[0].Delivery.ID]) != 1 {
		t.Errorf("after reopening: %d events, %d deliveries, %d attempts; want 2, 2, 1",
			len(after.Events), len(after.Deliveries), len(after.Attempts[cs[0].Delivery.ID]))
	}
}

func TestReopenReleasesLeases(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "hookd.db")
	db := openAt(t, path)
	f := newFixture(t, db)
	ev := f.event("invoice.paid", base)
	mustPublish(t, db, ev)
	cs := mustClaim(t, db, base, time.Hour)
	if len(cs) != 1 {
		t.Fatalf("claimed %d deliveries, want 1", len(cs))
	}
	if got := mustClaim(t, db, base.Add(time.Minute), time.Hour); len(got) != 0 {
		t.Fatalf("claimed %d deliveries within the lease", len(got))
	}
	if err := db.Close(); err != nil { // as if the process stopped mid-attempt
		t.Fatalf("Close: %v", err)
	}

	again := openAt(t, path)
	got := mustClaim(t, again, base.Add(time.Minute), time.Hour)
	if len(got) != 1 || got[0].Delivery.ID != cs[0].Delivery.ID {
		t.Fatalf("after reopening, claimed %d deliveries, want the interrupted one at once", len(got))
	}
	if got[0].Lease == cs[0].Lease {
		t.Errorf("the new claim kept the old lease %q", cs[0].Lease)
	}
	if got[0].Delivery.Attempts != 0 || got[0].Delivery.Status != hookd.DeliveryPending {
		t.Errorf("interrupted delivery: status %s, %d attempts; want pending, 0", got[0].Delivery.Status, got[0].Delivery.Attempts)
	}
}

func TestSecretsSealedAtRest(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "hookd.db")
	db := openAt(t, path)
	f := newFixture(t, db)
	// A rotation stores a sealed previous secret through the update path too.
	rotated := "whsec_Uk9UQVRFRC1TRUNSRVQ" + ids.New("x")
	if _, err := db.UpdateEndpoint(t.Context(), "", f.ep.ID, func(e *hookd.Endpoint) error {
		e.PreviousSecret, e.Secret = e.Secret, rotated
		return nil
	}); err != nil {
		t.Fatalf("UpdateEndpoint: %v", err)
	}
	secrets := []string{f.ep.Secret, f.ep.PreviousSecret, rotated}

	// Through SQL: the columns hold neither the secrets nor anything containing them.
	raw, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatalf("sql.Open: %v", err)
	}
	defer raw.Close()
	var dump string
	if err := raw.QueryRowContext(t.Context(), `SELECT group_concat(quote(secret) || ' ' || quote(previous_secret) || ' ' ||
		CAST(secret AS TEXT) || ' ' || CAST(COALESCE(previous_secret, '') AS TEXT), ' ') FROM endpoints`).Scan(&dump); err != nil {
		t.Fatalf("query endpoints: %v", err)
	}
	for _, s := range secrets {
		if bytes.Contains([]byte(dump), []byte(s)) {
			t.Errorf("the endpoints table holds the secret %q in plaintext", s)
		}
	}
	raw.Close()

	// In the files: after Close, no file in the directory holds a secret, though it does
	// hold the endpoint's URL (so that the search means something).
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var all []byte
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	if !bytes.Contains(all, []byte(f.ep.URL)) {
		t.Fatalf("the database files do not contain the endpoint's URL %q: the search is broken", f.ep.URL)
	}
	for _, s := range secrets {
		if bytes.Contains(all, []byte(s)) {
			t.Errorf("the database files contain the secret %q in plaintext", s)
		}
	}

	// And the store still opens them.
	again := openAt(t, path)
	e, err := again.Endpoint(t.Context(), "", f.ep.ID)
	if err != nil {
		t.Fatalf("Endpoint: %v", err)
	}
	if e.Secret != rotated || e.PreviousSecret != f.ep.Secret {
		t.Errorf("secrets after reopening: %q, %q; want %q, %q", e.Secret, e.PreviousSecret, rotated, f.ep.Secret)
	}
}

func TestConcurrentPublish(t *testing.T) {
	t.Parallel()
	db := openAt(t, filepath.Join(t.TempDir(), "hookd.db"))
	f := newFixture(t, db)
	const writers, perWriter = 32, 20
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		want = map[string]bool{}
	)
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				ev := f.event("invoice.paid", base.Add(time.Duration(w*perWriter+i)*time.Millisecond))
				batch := []*hookd.Event{ev}
				if i%5 == 0 { // some batches, some single events
					batch = append(batch, f.event("invoice.created", ev.CreatedAt))
				}
				res, err := db.Publish(t.Context(), batch)
				if err != nil {
					t.Errorf("Publish: %v", err)
					return
				}
				mu.Lock()
				for j, r := range res {
					if r.Duplicate || r.Deliveries != 1 {
						t.Errorf("Publish result %+v, want a new event with 1 delivery", r)
					}
					want[batch[j].ID] = true
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()

	got := map[string]bool{}
	f2 := hookd.EventFilter{OrgID: f.org.ID, Page: hookd.Page{Limit: hookd.MaxPageLimit}}
	for {
		evs, next, err := db.ListEvents(t.Context(), f2)
		if err != nil {
			t.Fatalf("ListEvents: %v", err)
		}
		for _, ev := range evs {
			if got[ev.ID] {
				t.Errorf("event %s listed twice", ev.ID)
			}
			got[ev.ID] = true
		}
		if next == "" {
			break
		}
		f2.Cursor = next
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("published vs listed events (-want +got):\n%s", diff)
	}
	n := 0
	for _, c := range mustClaimAll(t, db) {
		if c.Delivery.EndpointID == f.ep.ID {
			n++
		}
	}
	if n != len(want) {
		t.Errorf("claimed %d deliveries, want %d", n, len(want))
	}
}

// mustClaimAll claims every due delivery.
func mustClaimAll(t *testing.T, db hookd.Store) []*hookd.Claim {
	t.Helper()
	var out []*hookd.Claim
	for {
		cs, err := db.ClaimDeliveries(t.Context(), hookd.ClaimParams{Owner: "test", Limit: 500, Now: base.Add(time.Hour), Lease: time.Hour})
		if err != nil {
			t.Fatalf("ClaimDeliveries: %v", err)
		}
		if len(cs) == 0 {
			return out
		}
		out = append(out, cs...)
	}
}

// within runs fn and fails t if it does not return within d.
func within(t *testing.T, d time.Duration, what string, fn func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("%s did not return within %v", what, d)
		return nil
	}
}

func TestWriteAfterClose(t *testing.T) {
	t.Parallel()
	db := openAt(t, filepath.Join(t.TempDir(), "hookd.db"))
	f := newFixture(t, db)
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute) // not the reason to return
	defer cancel()
	for _, tc := range []struct {
		name string
		fn   func() error
	}{
		{"CreateOrganization", func() error {
			return db.CreateOrganization(ctx, &hookd.Organization{ID: "late", Name: "Late", CreatedAt: base})
		}},
		{"Publish", func() error { _, err := db.Publish(ctx, []*hookd.Event{f.event("invoice.paid", base)}); return err }},
		{"ClaimDeliveries", func() error {
			_, err := db.ClaimDeliveries(ctx, hookd.ClaimParams{Limit: 1, Now: base, Lease: time.Minute})
			return err
		}},
		{"UpdateEndpoint", func() error {
			_, err := db.UpdateEndpoint(ctx, "", f.ep.ID, func(*hookd.Endpoint) error { return nil })
			return err
		}},
		{"Ping", func() error { return db.Ping(ctx) }},
	} {
		err := within(t, 10*time.Second, tc.name+" after Close", tc.fn)
		if err == nil {
			t.Errorf("%s after Close succeeded, want an error", tc.name)
		}
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			t.Errorf("%s after Close: %v, want a closed-store error, not the context's", tc.name, err)
		}
	}
	if err := within(t, 10*time.Second, "a second Close", db.Close); err != nil {
		t.Errorf("second Close: %v, want nil", err)
	}
}

// TestCloseDuringWrites closes the store while writers are busy: every write either
// fails or is durable, and none hangs.
func TestCloseDuringWrites(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "hookd.db")
	db := openAt(t, path)
	f := newFixture(t, db)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		written []string
		started = make(chan struct{}, 16)
	)
	for range 16 {
		wg.Go(func() {
			for i := 0; ; i++ {
				ev := f.event("invoice.paid", base)
				if _, err := db.Publish(t.Context(), []*hookd.Event{ev}); err != nil {
					return
				}
				mu.Lock()
				written = append(written, ev.ID)
				mu.Unlock()
				if i == 2 {
					started <- struct{}{}
				}
			}
		})
	}
	for range 16 {
		<-started
	}
	if err := within(t, 30*time.Second, "Close during writes", db.Close); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := within(t, 30*time.Second, "writers after Close", func() error { wg.Wait(); return nil }); err != nil {
		t.Fatal(err)
	}

	again := openAt(t, path)
	for _, id := range written {
		if _, _, err := again.Event(t.Context(), f.org.ID, id); err != nil {
			t.Errorf("event %s, acknowledged before Close, after reopening: %v", id, err)
		}
	}
}
