package sqlite

import (
	"database/sql"
	"errors"
	"io/fs"
	"os"
	"strings"

	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/internal/sqlrow"
)

// dueOrParked is the next_attempt_at of a re-queued delivery (retry, replay): the
// first parameter if its endpoint is enabled, else the second (parked), so that a
// disabled endpoint's deliveries wait outside the due range until it is enabled.
const dueOrParked = `CASE WHEN EXISTS (SELECT 1 FROM endpoints e WHERE e.id = deliveries.endpoint_id AND e.enabled = 1)
	THEN ? ELSE ? END`

func isUnique(err error) bool {
	var e *sqlite.Error
	return errors.As(err, &e) && (e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || e.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)
}

// diskFault returns, for an error of SQLite that says the disk refused it (an
// I/O error, a read-only or full database, a file that cannot be opened),
// what the operating system says when the database's files are opened for
// writing now ("operation not permitted", "read-only file system"…), so that
// the log names the cause rather than SQLite's "disk I/O error" alone; "" for
// any other error, or when the files open.
func diskFault(err error, paths ...string) string {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return ""
	}
	switch e.Code() & 0xff {
	case sqlite3.SQLITE_IOERR, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN:
	default:
		return ""
	}
	var causes []string
	for _, p := range paths {
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				causes = append(causes, err.Error())
			}
			continue
		}
		f.Close()
	}
	if len(causes) == 0 {
		return ""
	}
	return "the store's files refuse writes: " + strings.Join(causes, "; ")
}

func notFoundIf(err error, kind, id string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return hookd.NotFound(kind, id)
	}
	return err
}

// The row forms both SQL stores share.
const parked = sqlrow.Parked

var (
	us          = sqlrow.US
	fromUS      = sqlrow.FromUS
	nextAttempt = sqlrow.NextAttempt
)

// scanner is *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// collectPage reads one page of a list from rows and closes them; see
// sqlrow.CollectPage.
func collectPage[T any](rows *sql.Rows, limit int, scan func(*sql.Rows) (T, int64, error), full func(T) bool) ([]T, string, error) {
	defer rows.Close()
	return sqlrow.CollectPage(rows, limit, func() (T, int64, error) { return scan(rows) }, full)
}
