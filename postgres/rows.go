package postgres

import (
	"errors"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd"
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

// collectPage reads one page of a list from rows and closes them; see
// sqlrow.CollectPage.
func collectPage[T any](rows pgx.Rows, limit int, scan func(pgx.Rows) (T, int64, error), full func(T) bool) ([]T, string, error) {
	defer rows.Close()
	return sqlrow.CollectPage(rows, limit, func() (T, int64, error) { return scan(rows) }, full)
}
