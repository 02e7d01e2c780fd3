// Package postgres is hookd's shared store on PostgreSQL, for any number of hookd
// instances using one database (SPEC §9). It opens a connection pool and applies
// its embedded, versioned migrations under a session lock, so that instances
// starting together migrate once.
//
// Work in progress (issue 4): the schema mirrors the SQLite store's; the
// hookd.Store methods are not implemented yet, so nothing uses this package.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Config configures Open.
type Config struct {
	// URL is the database, e.g. postgres://user@host:5432/db?sslmode=disable.
	// A search_path parameter selects the schema. Required.
	URL string
}

// DB is a PostgreSQL connection pool with hookd's schema. Safe for concurrent use.
type DB struct {
	pool *pgxpool.Pool
}

// Open connects to cfg.URL and applies every pending migration.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	if cfg.URL == "" {
		return nil, errors.New("postgres: Config.URL is required")
	}
	pool, err := pgxpool.New(ctx, cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return &DB{pool: pool}, nil
}

// migrate applies the embedded migrations, holding a PostgreSQL advisory lock so
// that concurrent starts apply each migration once.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	// Probe for the lock every second (goose's default is every 5 s), for up to 5 min.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys, goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate postgres: %w", err)
	}
	return nil
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping postgres: %w", err)
	}
	return nil
}

// Close closes the pool. It waits for connections in use to be returned.
func (db *DB) Close() error {
	db.pool.Close()
	return nil
}
