package httpapi

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/secret"
	"github.com/hookd/hookd/sqlite"
)

// TestFailureLogBoundsWhatItSums floods a failureLog (1 record a second one by
// one, no flush until close) with failures from more client addresses than it
// keeps apart, beside successes. It keeps at most maxSummed kinds plus one for
// the rest, never sums a success, writes every sum on close, and writes one by
// one after close; the counts add up to every attempt.
func TestFailureLogBoundsWhatItSums(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sealer, err := secret.NewSealer(secret.NewKey())
	if err != nil {
		t.Fatal(err)
	}
	store, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "hookd.db"), Sealer: sealer})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	l := newFailureLog(store, slog.New(slog.NewTextHandler(io.Discard, nil)), 1, time.Hour)

	const addrs, perAddr, successes = maxSummed + 500, 3, 50
	now := time.Now()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < addrs; i += 8 {
				for range perAddr {
					l.append(ctx, hookd.AuditRecord{Time: now, ActorType: hookd.ActorAnonymous, Action: "inbound.event",
						Result: hookd.AuditFailure, Reason: "invalid_api_key", Status: 401,
						ClientIP: fmt.Sprintf("10.%d.%d.1", i/256, i%256)})
				}
			}
		})
	}
	wg.Go(func() {
		for range successes {
			l.append(ctx, hookd.AuditRecord{Time: now, ActorType: hookd.ActorPartner, Actor: "ptn_1", Action: "inbound.event",
				Result: hookd.AuditSuccess, Status: 202, ClientIP: "203.0.113.1"})
		}
	})
	wg.Wait()
	l.mu.Lock()
	kinds := len(l.summed)
	l.mu.Unlock()
	if kinds != maxSummed+1 {
		t.Errorf("%d kinds summed, want %d (maxSummed, and one for the addresses past it)", kinds, maxSummed+1)
	}
	l.close()
	l.append(ctx, hookd.AuditRecord{Time: now, ActorType: hookd.ActorAnonymous, Action: "inbound.event",
		Result: hookd.AuditFailure, Reason: "missing_api_key", Status: 401, ClientIP: "10.0.0.1"})

	var attempts, records, ok, rest, missing int
	for cursor := ""; ; {
		page, next, err := store.ListAudit(ctx, hookd.AuditFilter{Page: hookd.Page{Limit: 500, Cursor: cursor}})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page {
			switch {
			case r.Result == hookd.AuditSuccess:
				ok++
				if r.Count != 1 {
					t.Errorf("a success summed: count %d", r.Count)
				}
			case r.Reason == "missing_api_key":
				missing++
			default:
				attempts += r.Count
				records++
				if r.ClientIP == "" {
					rest += r.Count
				}
			}
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if attempts != addrs*perAddr {
		t.Errorf("failure records add up to %d attempts, want %d", attempts, addrs*perAddr)
	}
	if records > maxSummed+1+3 { // the kinds summed, and the burst of 2 (and a token more) one by one
		t.Errorf("%d failure records, want at most %d", records, maxSummed+4)
	}
	if rest < (addrs-maxSummed)*perAddr-3 {
		t.Errorf("the record without an address stands for %d attempts, want at least %d", rest, (addrs-maxSummed)*perAddr-3)
	}
	if ok != successes || missing != 1 {
		t.Errorf("%d success records and %d after close, want %d and 1", ok, missing, successes)
	}
}
