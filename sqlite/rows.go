package sqlite

import (
	"database/sql"
	"encoding/base64"
	"errors"
	"strconv"
	"time"

	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/hookd/hookd"
)

// parked is the next_attempt_at of a FIFO endpoint's pending delivery that waits
// behind an older one: outside every due range, so the queue index never yields
// it; it is promoted to "due now" when the deliveries ahead of it finish.
const parked int64 = 1 << 62

// dueOrParked is the next_attempt_at of a re-queued delivery (retry, replay): the
// first parameter if its endpoint is enabled, else the second (parked), so that a
// disabled endpoint's deliveries wait outside the due range until it is enabled.
const dueOrParked = `CASE WHEN EXISTS (SELECT 1 FROM endpoints e WHERE e.id = deliveries.endpoint_id AND e.enabled = 1)
	THEN ? ELSE ? END`

// Times are stored as Unix microseconds.
func us(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromUS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}

// Cursors are the opaque form of the last row's sequence number.
func encodeCursor(seq int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(seq, 10)))
}

// decodeBefore reads the cursor of a newest-first list: the sequence number its
// next page starts below (all of them for the first page).
func decodeBefore(c string) (int64, error) {
	before, err := decodeCursor(c)
	if before == 0 && err == nil {
		before = 1<<63 - 1
	}
	return before, err
}

func decodeCursor(c string) (int64, error) {
	if c == "" {
		return 0, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err == nil {
		var n int64
		if n, err = strconv.ParseInt(string(b), 10, 64); err == nil && n > 0 {
			return n, nil
		}
	}
	return 0, hookd.FieldError("cursor", "is not a cursor returned by this list")
}

func pageLimit(p hookd.Page) int {
	switch {
	case p.Limit <= 0:
		return hookd.DefaultPageLimit
	case p.Limit > hookd.MaxPageLimit:
		return hookd.MaxPageLimit
	}
	return p.Limit
}

func isUnique(err error) bool {
	var e *sqlite.Error
	return errors.As(err, &e) && (e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || e.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)
}

func notFoundIf(err error, kind, id string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return hookd.NotFound(kind, id)
	}
	return err
}

// scanner is *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// decodeError is a row that was read but whose content cannot be decoded (bad JSON,
// a secret the sealer cannot open): a problem of that row, not of the database.
type decodeError struct{ err error }

func (e *decodeError) Error() string { return e.err.Error() }
func (e *decodeError) Unwrap() error { return e.err }

// collectPage reads one page of a list from rows, which must hold up to limit+1
// rows ordered by their sequence key: it returns at most limit items, scanned by
// scan (which also returns the row's key), and the cursor of the next page, "" at
// the end. full, if not nil, ends the page early once it reports true.
func collectPage[T any](rows *sql.Rows, limit int, scan func(*sql.Rows) (T, int64, error), full func(T) bool) ([]T, string, error) {
	defer rows.Close()
	var out []T
	var last int64
	stop := false
	for rows.Next() {
		if len(out) == limit || stop {
			return out, encodeCursor(last), nil
		}
		item, key, err := scan(rows)
		if err != nil {
			return nil, "", err
		}
		out, last = append(out, item), key
		stop = full != nil && full(item)
	}
	return out, "", rows.Err()
}
