package delivery

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
	"weak"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/ids"
	"github.com/hookd/hookd/netguard"
	"github.com/hookd/hookd/secret"
	"github.com/hookd/hookd/signature"
	"github.com/hookd/hookd/sqlite"
)

// watchedStore is a real store that keeps a weak pointer to the payload of
// every delivery it hands out.
type watchedStore struct {
	*sqlite.DB
	mu       sync.Mutex
	payloads []weak.Pointer[byte]
}

func (s *watchedStore) ClaimDeliveries(ctx context.Context, p hookd.ClaimParams) ([]*hookd.Claim, error) {
	cs, err := s.DB.ClaimDeliveries(ctx, p)
	s.mu.Lock()
	for _, c := range cs {
		s.payloads = append(s.payloads, weak.Make(&c.Event.Data[0]))
	}
	s.mu.Unlock()
	return cs, err
}

// TestIdleWorkersKeepNoPayload: a worker waiting for its next attempt keeps
// nothing of its last one (a claim holds its event's payload, up to the size
// limit, and idle workers may wait for seconds).
func TestIdleWorkersKeepNoPayload(t *testing.T) {
	t.Parallel()
	sealer, err := secret.NewSealer(secret.NewKey())
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Open(t.Context(), sqlite.Config{Path: filepath.Join(t.TempDir(), "hookd.db"), Sealer: sealer})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx := t.Context()
	org := &hookd.Organization{ID: ids.New("org"), Name: "o", CreatedAt: time.Now()}
	if err := db.CreateOrganization(ctx, org); err != nil {
		t.Fatal(err)
	}
	const events = 8
	got := make(chan struct{}, events)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got <- struct{}{} }))
	t.Cleanup(srv.Close)
	ep := &hookd.Endpoint{ID: ids.New("ep"), OrgID: org.ID, URL: srv.URL, Events: []string{"*"}, Enabled: true,
		SignatureScheme: string(signature.StandardWebhooks), Payload: hookd.PayloadEnvelope,
		Ordering: hookd.OrderingUnordered, Secret: signature.NewSecret(), CreatedAt: time.Now(), UpdatedAt: time.Now()}
	if err := db.CreateEndpoint(ctx, ep); err != nil {
		t.Fatal(err)
	}
	for range events {
		ev := &hookd.Event{ID: ids.New("evt"), OrgID: org.ID, Type: "a.b", Data: []byte(`{"n":1}`), CreatedAt: time.Now()}
		if _, err := db.Publish(ctx, []*hookd.Event{ev}); err != nil {
			t.Fatal(err)
		}
	}
	s := &watchedStore{DB: db}
	e, err := New(Config{Store: s, Policy: netguard.Policy{AllowHTTP: true, AllowPrivate: true}, PollInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	e.idle = time.Hour
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Stop(context.Background()) })
	for range events {
		select {
		case <-got:
		case <-time.After(time.Minute):
			t.Fatal("deliveries did not arrive")
		}
	}
	// Wait for the outcomes, then for every worker to be idle.
	deadline := time.Now().Add(time.Minute)
	for e.free() < e.cfg.Concurrency && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if live := e.workers.live.Load(); live == 0 {
		t.Fatal("no idle worker to check")
	}
	var kept int
	for range 10 { // a weak pointer clears at the collection that finds its object unreachable
		runtime.GC()
		kept = 0
		s.mu.Lock()
		for _, p := range s.payloads {
			if p.Value() != nil {
				kept++
			}
		}
		s.mu.Unlock()
		if kept == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if kept > 0 {
		t.Errorf("%d of %d payloads still reachable with every worker idle", kept, events)
	}
}
