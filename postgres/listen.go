package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// dueChannel names the LISTEN/NOTIFY channel on which a transaction that made
// deliveries due (a publish, a retry, a replay, an endpoint enabled, a FIFO
// delivery promoted) wakes every listening worker when it commits. Channels are
// database-wide, so the name includes the schema: deployments in other schemas of
// the same database do not wake each other.
func dueChannel(schema string) string {
	return "hookd_due:" + schema
}

// notifyDue queues a wake-up for when tx commits. PostgreSQL folds identical
// notifications of one transaction into one.
func notifyDue(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `SELECT pg_notify('hookd_due:' || current_schema(), '')`); err != nil {
		return fmt.Errorf("notify workers: %w", err)
	}
	return nil
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
