package postgres

import (
	"errors"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/internal/cursor"
	"github.com/hookd/hookd/internal/sqlrow"
)

// The row forms both SQL stores share.
const parked = sqlrow.Parked

var (
	us          = sqlrow.US
	fromUS      = sqlrow.FromUS
	nextAttempt = sqlrow.NextAttempt
)

// args collects a query's parameters; add returns the placeholder of the value it
// appends, so that optional filters can be added in any order.
type args []any

func (a *args) add(v any) string {
	*a = append(*a, v)
	return "$" + strconv.Itoa(len(*a))
}

// orgClause restricts a query to one organization unless orgID is "" (admin).
func orgClause(col, orgID string, a *args) string {
	if orgID == "" {
		return ""
	}
	return " AND " + col + " = " + a.add(orgID)
}

func notFoundIf(err error, kind, id string) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return hookd.NotFound(kind, id)
	}
	return err
}

// collectPage reads one page of a list from rows, which must hold up to limit+1
// rows ordered by their sequence key: it returns at most limit items, scanned by
// scan (which also returns the row's key), and the cursor of the next page, "" at
// the end. full, if not nil, ends the page early once it reports true.
func collectPage[T any](rows pgx.Rows, limit int, scan func(pgx.Rows) (T, int64, error), full func(T) bool) ([]T, string, error) {
	defer rows.Close()
	var out []T
	var last int64
	stop := false
	for rows.Next() {
		if len(out) == limit || stop {
			return out, cursor.Encode(last), nil
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
