package postgres

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// dueChannel names the LISTEN/NOTIFY channel on which a transaction that made
// deliveries due (a publish, a retry, a replay, an endpoint enabled, a FIFO
// delivery promoted) wakes every listening worker when it commits. Channels are
// database-wide, so the name includes the schema: deployments in other schemas of
// the same database do not wake each other.
// A hash of the schema keeps the name within PostgreSQL's 63 bytes.
func dueChannel(schema string) string {
	sum := md5.Sum([]byte(schema))
	return "hookd_due_" + hex.EncodeToString(sum[:8])
}

// notifyGap is the least time between two wake-ups one instance sends: writes
// that make deliveries due within it share one notification.
const notifyGap = 10 * time.Millisecond

// wakeWorkers asks the notifier to wake every listening worker (soon, and once
// for all the calls that arrive meanwhile). It never blocks. The notification
// goes out after the write committed and outside its transaction: a transaction
// that sends NOTIFY takes a database-wide lock at commit, which would make
// every such commit wait for the others.
func (db *DB) wakeWorkers() {
	select {
	case db.kick <- struct{}{}:
	default:
	}
}

// notify sends the wake-ups wakeWorkers asks for until stop is closed. A lost
// wake-up only delays delivery until the workers' next poll.
func (db *DB) notify(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-db.kick:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := db.pool.Exec(ctx, `SELECT pg_notify('hookd_due_' || left(md5(current_schema()), 16), '')`)
		cancel()
		_ = err // best effort: the workers poll
		select {
		case <-stop:
			return
		case <-time.After(notifyGap):
		}
	}
}

// Listen calls wake whenever an instance sharing the database commits
// deliveries that are due, until ctx ends. It holds one connection of its own,
// reconnecting after a second if it is lost (reporting the error to onError, if
// not nil), and calls wake after every (re)connection, since work may have become
// due while nobody listened. wake must not block.
func (db *DB) Listen(ctx context.Context, wake func(), onError func(error)) {
	for ctx.Err() == nil {
		err := db.listen(ctx, wake)
		if ctx.Err() != nil {
			return
		}
		if onError != nil {
			onError(err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (db *DB) listen(ctx context.Context, wake func()) error {
	c, err := db.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("listen for due deliveries: %w", err)
	}
	// The listening connection leaves the pool: no query may share it, and it must
	// not go back to the pool still listening.
	conn := c.Hijack()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn.Close(ctx)
	}()
	var schema string
	if err := conn.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return fmt.Errorf("listen for due deliveries: %w", err)
	}
	if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{dueChannel(schema)}.Sanitize()); err != nil {
		return fmt.Errorf("listen for due deliveries: %w", err)
	}
	wake()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return fmt.Errorf("listen for due deliveries: %w", err)
		}
		wake()
	}
}
