package httpapi

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/hookd/hookd"
)

// DefaultAuditFailureRate is Config.AuditFailureRate's default: failure records
// per second written one by one before failures are summed.
const DefaultAuditFailureRate = 100

// maxSummed bounds the kinds of failure summed between two flushes. Past it, a
// new kind is summed without its target and client address, so a flood from
// many addresses holds a bounded map.
const maxSummed = 1024

// failureLog writes failed attempts' audit records. While they come no faster
// than its rate, each gets a record of its own; past it, failures are summed per
// kind (action, reason, status, organization, actor, client address, and the
// target if a valid key or partner failed) and each kind is written once a
// second as one record with its Count, whose Time is its first attempt's; a
// write that fails is retried with the next. A flood of wrong keys thus costs
// the store a write per kind and second instead of one per request, and the log
// still accounts for every attempt. Safe for concurrent use.
type failureLog struct {
	store  hookd.Store
	logger *slog.Logger
	// lim paces the records written one by one (in real time, not the API's
	// clock); nil writes every record alone.
	lim *rate.Limiter

	mu     sync.Mutex
	summed map[failureKind]*hookd.AuditRecord
	closed bool

	stop chan struct{}
	done chan struct{}
}

// failureKind is what records summed into one have in common.
type failureKind struct {
	action, reason          string
	status                  int
	orgID, actorType, actor string
	target, clientIP        string
}

// newFailureLog returns a failureLog writing perSecond records one by one (with
// bursts of twice that, at least 1) and flushing the sums every interval; with
// perSecond negative, it writes every record alone.
func newFailureLog(store hookd.Store, logger *slog.Logger, perSecond float64, interval time.Duration) *failureLog {
	l := &failureLog{store: store, logger: logger}
	if perSecond < 0 {
		return l
	}
	l.lim = rate.NewLimiter(rate.Limit(perSecond), max(1, int(2*perSecond)))
	l.summed, l.stop, l.done = map[failureKind]*hookd.AuditRecord{}, make(chan struct{}), make(chan struct{})
	go l.run(interval)
	return l
}

// append writes rec or, if it is a failure's record coming faster than the
// rate, sums it into its kind's record of this interval. It returns once rec is
// durable or summed.
func (l *failureLog) append(ctx context.Context, rec hookd.AuditRecord) {
	if rec.Result != hookd.AuditFailure || l.lim == nil || l.lim.Allow() {
		if err := l.write(ctx, &rec); err != nil && rec.Result == hookd.AuditFailure && l.lim != nil {
			l.restore([]*hookd.AuditRecord{&rec}) // retried with the next sums
		}
		return
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		if err := l.write(ctx, &rec); err != nil {
			l.restore([]*hookd.AuditRecord{&rec}) // logs it, field by field
		}
		return
	}
	defer l.mu.Unlock()
	if rec.Actor == "" {
		// Without a valid key the target is whatever the client put in the
		// path: summed per target, it would make a kind per request.
		rec.Target = ""
	}
	rec.Count = 1
	l.sumLocked(&rec)
}

// sumLocked adds rec (which may stand for several attempts) to its kind's
// record. Past maxSummed kinds, what a client chooses freely (the target, its
// address) is left out of a new kind; who failed (organization, key or
// partner) is kept: there are no more of those than keys and partners.
func (l *failureLog) sumLocked(rec *hookd.AuditRecord) {
	k := failureKind{action: rec.Action, reason: rec.Reason, status: rec.Status, orgID: rec.OrgID,
		actorType: rec.ActorType, actor: rec.Actor, target: rec.Target, clientIP: rec.ClientIP}
	sum := l.summed[k]
	if sum == nil && len(l.summed) >= maxSummed {
		k.target, k.clientIP = "", ""
		sum = l.summed[k]
	}
	if sum == nil {
		c := *rec
		c.ID, c.Target, c.ClientIP, c.Count = "", k.target, k.clientIP, 0
		sum = &c
		l.summed[k] = sum
	}
	sum.Count += max(rec.Count, 1)
	if rec.Time.Before(sum.Time) {
		sum.Time = rec.Time
	}
}

// write appends one record, logging a failure to do so. The request's own
// context may be cancelled by now; the record is written regardless.
func (l *failureLog) write(ctx context.Context, rec *hookd.AuditRecord) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err := l.store.AppendAudit(ctx, rec)
	if err != nil {
		l.logger.Error("append audit record", "action", rec.Action, "err", err)
	}
	return err
}

func (l *failureLog) run(interval time.Duration) {
	defer close(l.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			l.flush()
		case <-l.stop:
			return
		}
	}
}

// flush writes the records summed so far, in one call.
func (l *failureLog) flush() {
	l.mu.Lock()
	if len(l.summed) == 0 {
		l.mu.Unlock()
		return
	}
	recs := make([]*hookd.AuditRecord, 0, len(l.summed))
	for _, r := range l.summed {
		recs = append(recs, r)
	}
	l.summed = map[failureKind]*hookd.AuditRecord{}
	l.mu.Unlock()
	slices.SortFunc(recs, func(a, b *hookd.AuditRecord) int { return a.Time.Compare(b.Time) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.store.AppendAudit(ctx, recs...); err != nil {
		l.logger.Error("append summed audit records; retrying with the next ones", "records", len(recs), "err", err)
		l.restore(recs)
	}
}

// restore puts back records whose write failed, to be written with the next
// flush; once closed, it logs each of them instead, so that what they counted
// is not lost without a trace.
func (l *failureLog) restore(recs []*hookd.AuditRecord) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range recs {
		if l.closed {
			l.logger.Error("audit record lost", "time", r.Time, "action", r.Action, "reason", r.Reason, "status", r.Status,
				"organization", r.OrgID, "actor_type", r.ActorType, "actor", r.Actor, "target", r.Target,
				"client_ip", r.ClientIP, "count", r.Count)
			continue
		}
		l.sumLocked(r)
	}
}

// close stops summing, writes what is summed and returns when it is written.
func (l *failureLog) close() {
	if l.lim == nil {
		return
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	l.mu.Unlock()
	close(l.stop)
	<-l.done
	l.flush()
}
