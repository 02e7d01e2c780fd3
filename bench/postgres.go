package bench

import (
	"context"
	"fmt"
	"net/url"

	"github.com/jackc/pgx/v5"
)

// createSchema creates a new, empty schema bench_<random> in the database at
// base and returns base with search_path set to it (the convention of
// internal/pgtest) and a function that drops it with everything in it.
func createSchema(ctx context.Context, base string) (string, func(context.Context) error, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", nil, fmt.Errorf("parse the database URL: %w", err)
	}
	schema := "bench_" + randomHex(6)
	exec := func(ctx context.Context, sql string) error {
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			return fmt.Errorf("connect to PostgreSQL: %w", err)
		}
		defer conn.Close(context.Background())
		_, err = conn.Exec(ctx, sql)
		return err
	}
	if err := exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return "", nil, fmt.Errorf("create schema %s: %w", schema, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	drop := func(ctx context.Context) error {
		if err := exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			return fmt.Errorf("drop schema %s: %w", schema, err)
		}
		return nil
	}
	return u.String(), drop, nil
}

// postgresInfo reads the settings of the PostgreSQL server at url that shape
// the numbers.
func postgresInfo(ctx context.Context, url string) (*PostgresInfo, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(context.Background())
	var info PostgresInfo
	if err := conn.QueryRow(ctx, `SELECT current_setting('server_version'), current_setting('autovacuum'),
		current_setting('synchronous_commit')`).Scan(&info.Version, &info.Autovacuum, &info.SynchronousCommit); err != nil {
		return nil, fmt.Errorf("read PostgreSQL settings: %w", err)
	}
	return &info, nil
}
