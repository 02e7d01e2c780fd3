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
	store := openStore(t)
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
	for _, r := range allAudit(t, store) {
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

// openStore opens a real SQLite store in a temporary directory.
func openStore(t *testing.T) *sqlite.DB {
	t.Helper()
	sealer, err := secret.NewSealer(secret.NewKey())
	if err != nil {
		t.Fatal(err)
	}
	store, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "hookd.db"), Sealer: sealer})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

// allAudit returns every audit record of store, newest first.
func allAudit(t *testing.T, store hookd.Store) []*hookd.AuditRecord {
	t.Helper()
	var out []*hookd.AuditRecord
	for cursor := ""; ; {
		page, next, err := store.ListAudit(context.Background(), hookd.AuditFilter{Page: hookd.Page{Limit: 500, Cursor: cursor}})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page...)
		if next == "" {
			return out
		}
		cursor = next
	}
}

// TestFailureLogKeepsWhoFailed: a client without a valid key cannot make a kind
// per request by varying the path's target, and once a flood from many
// addresses fills the kinds, a failure of a known partner is still summed under
// its organization and partner (only its address is left out).
func TestFailureLogKeepsWhoFailed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := openStore(t)
	l := newFailureLog(store, slog.New(slog.NewTextHandler(io.Discard, nil)), 0.001, time.Hour)
	now := time.Now()
	for i := range 3 * maxSummed {
		l.append(ctx, hookd.AuditRecord{Time: now, ActorType: hookd.ActorAnonymous, Action: "endpoint.update",
			Result: hookd.AuditFailure, Reason: "unauthorized", Status: 401, ClientIP: "203.0.113.5",
			Target: fmt.Sprintf("ep_%d", i)})
	}
	l.mu.Lock()
	kinds := len(l.summed)
	l.mu.Unlock()
	if kinds != 1 {
		t.Errorf("%d kinds after wrong keys at %d targets from one address, want 1", kinds, 3*maxSummed)
	}
	for i := range maxSummed {
		l.append(ctx, hookd.AuditRecord{Time: now, ActorType: hookd.ActorAnonymous, Action: "inbound.event",
			Result: hookd.AuditFailure, Reason: "invalid_api_key", Status: 401, ClientIP: fmt.Sprintf("10.0.%d.%d", i/256, i%256)})
	}
	l.append(ctx, hookd.AuditRecord{Time: now, OrgID: "org_b", ActorType: hookd.ActorPartner, Actor: "ptn_b", Action: "inbound.event",
		Target: "ptn_b:e1", Result: hookd.AuditFailure, Reason: "invalid_signature", Status: 401, ClientIP: "198.51.100.9"})
	l.close()
	var found bool
	for _, r := range allAudit(t, store) {
		switch r.Action + " " + r.Reason {
		case "endpoint.update unauthorized":
			if r.Count > 1 && (r.Target != "" || r.Count < 3*maxSummed-1) { // the first one was written alone
				t.Errorf("wrong keys at many targets: record with target %q and count %d", r.Target, r.Count)
			}
		case "inbound.event invalid_signature":
			found = true
			if r.OrgID != "org_b" || r.Actor != "ptn_b" || r.ActorType != hookd.ActorPartner || r.Count != 1 {
				t.Errorf("the partner's failure past the bound: %+v, want organization org_b, partner ptn_b, count 1", *r)
			}
		}
	}
	if !found {
		t.Error("the partner's failure past the bound is not in the audit log")
	}
	if recs, _, err := store.ListAudit(ctx, hookd.AuditFilter{OrgID: "org_b"}); err != nil || len(recs) != 1 {
		t.Errorf("organization org_b sees %d records (%v), want its partner's failure", len(recs), err)
	}
}

// TestFailureLogRetriesFailedWrite: a failure's record whose write fails (the
// store is closed), written alone or summed, is kept and written, counts
// intact, by the next flush.
func TestFailureLogRetriesFailedWrite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	broken, healthy := openStore(t), openStore(t)
	broken.Close()
	l := newFailureLog(broken, slog.New(slog.NewTextHandler(io.Discard, nil)), 0.001, time.Hour)
	now := time.Now().Truncate(time.Microsecond)
	for i := range 50 {
		l.append(ctx, hookd.AuditRecord{Time: now.Add(time.Duration(i) * time.Millisecond), ActorType: hookd.ActorAnonymous,
			Action: "inbound.event", Result: hookd.AuditFailure, Reason: "invalid_api_key", Status: 401, ClientIP: "203.0.113.5"})
	}
	l.flush() // fails: the store is closed
	l.append(ctx, hookd.AuditRecord{Time: now.Add(time.Second), ActorType: hookd.ActorAnonymous,
		Action: "inbound.event", Result: hookd.AuditFailure, Reason: "invalid_api_key", Status: 401, ClientIP: "203.0.113.5"})
	l.store = healthy
	l.close()
	total := 0
	for _, r := range allAudit(t, healthy) {
		total += r.Count
		if !r.Time.Equal(now) && r.Count > 1 {
			t.Errorf("summed record's time %s, want its first attempt's %s", r.Time, now)
		}
	}
	if total != 51 {
		t.Errorf("the records written after a failed write count %d attempts, want 51", total)
	}
}
