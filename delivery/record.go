package delivery

import (
	"context"
	"sync"
	"time"

	"github.com/hookd/hookd"
)

// maxRecordBatch caps the outcomes recorded in one store call.
const maxRecordBatch = 256

// recordTimeout bounds one store call recording outcomes.
const recordTimeout = 30 * time.Second

// recorder records attempt outcomes in batches: whatever outcomes arrive while
// a store call is running go together in the next one, so that a store pays for
// one call (one transaction) per batch instead of one per attempt.
type recorder struct {
	store Store
	in    chan pendingOutcome
	done  chan struct{}
	once  sync.Once
}

type pendingOutcome struct {
	out  hookd.Outcome
	done chan error
}

func newRecorder(store Store) *recorder {
	return &recorder{store: store, in: make(chan pendingOutcome, maxRecordBatch), done: make(chan struct{})}
}

// start starts the recording goroutine; stop ends it.
func (r *recorder) start() { go r.loop() }

// stop waits for the outcomes already handed over to be recorded and ends the
// recording goroutine. Nothing may call record after stop.
func (r *recorder) stop() {
	r.once.Do(func() { close(r.in) })
	<-r.done
}

// record hands o over and waits until it is recorded (nil) or its store call
// failed.
func (r *recorder) record(o hookd.Outcome) error {
	p := pendingOutcome{out: o, done: make(chan error, 1)}
	r.in <- p
	return <-p.done
}

func (r *recorder) loop() {
	defer close(r.done)
	batch := make([]pendingOutcome, 0, maxRecordBatch)
	outs := make([]hookd.Outcome, 0, maxRecordBatch)
	for p := range r.in {
		batch = append(batch[:0], p)
	fill:
		for len(batch) < maxRecordBatch {
			select {
			case p, ok := <-r.in:
				if !ok {
					break fill
				}
				batch = append(batch, p)
			default:
				break fill
			}
		}
		outs = outs[:0]
		for _, p := range batch {
			outs = append(outs, p.out)
		}
		err := r.complete(outs)
		if err != nil && len(batch) > 1 {
			// One outcome may have failed the whole call: record each on its
			// own, so that the others are not lost with it.
			for _, p := range batch {
				p.done <- r.complete([]hookd.Outcome{p.out})
			}
			continue
		}
		for _, p := range batch {
			p.done <- err
		}
	}
}

func (r *recorder) complete(outs []hookd.Outcome) error {
	ctx, cancel := context.WithTimeout(context.Background(), recordTimeout)
	defer cancel()
	return r.store.CompleteDeliveries(ctx, outs)
}
