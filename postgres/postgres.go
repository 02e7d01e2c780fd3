// Package postgres is hookd's shared store on PostgreSQL, for any number of hookd
// instances using one database (SPEC §9). It opens a connection pool and applies
// its embedded, versioned migrations under a session lock, so that instances
// starting together migrate once.
//
// Every write is one READ COMMITTED transaction; the few that must not interleave
// across instances take a row lock (UpdateEndpoint, TakeToken) or a transaction
// advisory lock (a claim holds one per endpoint it claims for, so that per-endpoint
// caps, FIFO order and rate limits hold with many workers). Duplicate events are
// caught by the unique keys, never by a read-then-insert.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/hookd/hookd"
)

//go:embed migrations/*.sql
var migrations embed.FS

var _ hookd.Store = (*DB)(nil)

// Sealer encrypts secrets at rest; see package secret.
type Sealer interface {
	Seal(plaintext []byte) ([]byte, error)
	Open(sealed []byte) ([]byte, error)
}

// Config configures Open.
type Config struct {
	// URL is the database, e.g. postgres://user@host:5432/db?sslmode=disable.
	// A search_path parameter selects the schema; pool_max_conns sizes the pool.
	// Required.
	URL string
	// Sealer seals endpoint and partner secrets. Required, except for Migrate.
	Sealer Sealer
	// DeleteChunk is how many of an endpoint's deliveries (with their
	// attempts) DeleteEndpoint deletes per transaction. Default 1,000.
	DeleteChunk int
}

// DB is a hookd.Store on PostgreSQL. Safe for concurrent use, also by many
// processes sharing the database.
type DB struct {
	cfg  Config
	pool *pgxpool.Pool
	comp gatherer[completeReq]
	pub  gatherer[*publishReq]
	// publishCalls and publishTx count the Publish calls taken and the
	// transactions they were committed in (see PublishStats).
	publishCalls, publishTx atomic.Int64
	kick                    chan struct{} // wake-ups for the notifier (see wakeWorkers)
	stop                    chan struct{} // closed by Close
	done                    sync.WaitGroup
	// closeOnce makes Close safe to call more than once.
	closeOnce sync.Once
	// deleted, if set, is called by DeleteEndpoint after each chunk of
	// deliveries it deleted, while more may remain (tests).
	deleted func()
}

// Open connects to cfg.URL, applies every pending migration and checks that
// cfg.Sealer opens the database's secrets.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	if cfg.Sealer == nil {
		return nil, errors.New("postgres: Config.Sealer is required")
	}
	if cfg.DeleteChunk <= 0 {
		cfg.DeleteChunk = 1000
	}
	pool, err := connect(ctx, cfg.URL)
	if err != nil {
		return nil, err
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	db := &DB{cfg: cfg, pool: pool}
	if err := db.checkSealer(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	db.comp.start(completeFlushers, maxCompleteBatch, db.flushCompletes)
	db.pub.start(publishFlushers, maxPublishGroup, db.flushPublishes)
	db.kick, db.stop = make(chan struct{}, 1), make(chan struct{})
	db.done.Go(func() { db.notify(db.stop) })
	return db, nil
}

// Migrate connects to url and applies every pending migration (hookd migrate).
func Migrate(ctx context.Context, url string) error {
	pool, err := connect(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()
	return migrate(ctx, pool)
}

// planOnce, passed before a statement's arguments, prepares the statement, so
// that PostgreSQL may keep a generic plan for it; for inserts that read no table
// only (values, or unnest of arguments), whose plans do not depend on the
// tables' sizes (see connect).
const planOnce = pgx.QueryExecModeCacheStatement

func connect(ctx context.Context, url string) (*pgxpool.Pool, error) {
	if url == "" {
		return nil, errors.New("postgres: Config.URL is required")
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	// hookd's queries are short and many; JIT compiling them (which PostgreSQL
	// does when it overestimates a queue query's cost) takes longer than running them.
	// These are startup parameters: behind PgBouncer, list them in
	// ignore_startup_parameters (and use session pooling, which LISTEN needs).
	for k, v := range map[string]string{
		"jit": "off",
		// A connection that stalls inside a transaction (a frozen instance) must not
		// hold its locks for long: PostgreSQL ends it after a minute, and notices a
		// vanished client within about a minute too.
		"idle_in_transaction_session_timeout": "60000",
		"tcp_keepalives_idle":                 "30",
		"tcp_keepalives_interval":             "10",
		"tcp_keepalives_count":                "3",
	} {
		if _, set := cfg.ConnConfig.RuntimeParams[k]; !set {
			cfg.ConnConfig.RuntimeParams[k] = v
		}
	}
	// Every statement is planned for its values and the tables' sizes at each
	// execution (unnamed statements), not prepared. A prepared statement's
	// generic plan, which PostgreSQL keeps once chosen, is chosen while the
	// tables are small: a sequential scan then looks cheapest, and stays in use
	// while the table grows to millions of rows, until an analyze happens to
	// invalidate it. Measured: batches of outcomes scanning 160,000 deliveries
	// each, 50 ms apiece, the delivery rate divided by 3.7, and varying from run
	// to run with the moment the plan was chosen. Only the publishing path's
	// inserts, whose plans cannot depend on sizes, are prepared (planOnce):
	// planning them each time cost a third of the publish rate.
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeCacheDescribe
	// pgxpool's default (4, or one per CPU) would queue the API's concurrent
	// requests behind each other's commits; PostgreSQL commits concurrent
	// transactions together, so more connections buy throughput.
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = defaultMaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	return pool, nil
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

// defaultMaxConns is the pool size unless the URL sets pool_max_conns.
const defaultMaxConns = 16

// ErrWrongMasterKey means the database's secrets were sealed with another key.
var ErrWrongMasterKey = errors.New("postgres: the master key does not open this database's secrets " +
	"(HOOKD_MASTER_KEY or master.key differs from the key they were sealed with; every instance must use the same key)")

// sealerCheck is sealed into the database by the first instance; an instance whose
// sealer cannot open it refuses to start instead of failing every delivery later.
const sealerCheck = "hookd sealer check"

func (db *DB) checkSealer(ctx context.Context) error {
	mine, err := db.cfg.Sealer.Seal([]byte(sealerCheck))
	if err != nil {
		return fmt.Errorf("seal the master key check: %w", err)
	}
	// The first instance's check wins; every later one must open it.
	if _, err := db.pool.Exec(ctx, `INSERT INTO meta (key, value) VALUES ('sealer_check', $1) ON CONFLICT (key) DO NOTHING`, mine); err != nil {
		return fmt.Errorf("store the master key check: %w", err)
	}
	var sealed []byte
	if err := db.pool.QueryRow(ctx, `SELECT value FROM meta WHERE key = 'sealer_check'`).Scan(&sealed); err != nil {
		return fmt.Errorf("read the master key check: %w", err)
	}
	plain, err := db.cfg.Sealer.Open(sealed)
	if err != nil || string(plain) != sealerCheck {
		return ErrWrongMasterKey
	}
	return nil
}

// Autovacuum reports whether the server runs autovacuum. hookd's queue tables
// (deliveries, rate_limits) turn over their rows all the time; without
// vacuum their dead rows pile up and every claim walks them, so that delivery
// slows down the longer the server runs.
func (db *DB) Autovacuum(ctx context.Context) (bool, error) {
	var on bool
	if err := db.pool.QueryRow(ctx, `SELECT current_setting('autovacuum')::boolean`).Scan(&on); err != nil {
		return false, fmt.Errorf("read autovacuum setting: %w", err)
	}
	return on, nil
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping postgres: %w", err)
	}
	return nil
}

// Close records the outcomes already submitted, then closes the pool (waiting
// for connections in use to be returned). It is safe to call more than once.
func (db *DB) Close() error {
	db.pub.stop()
	db.comp.stop()
	db.closeOnce.Do(func() { close(db.stop) })
	db.done.Wait()
	db.pool.Close()
	return nil
}

// maxTxTries bounds how often a transaction that lost a deadlock or a
// serialization conflict is run again.
const maxTxTries = 5

// tx runs fn in a READ COMMITTED transaction and commits it, running it again
// (from the start, so fn must set its results afresh) if PostgreSQL aborted it
// for a deadlock or serialization failure.
func (db *DB) tx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	for try := 1; ; try++ {
		err := pgx.BeginFunc(ctx, db.pool, fn)
		if err == nil || try == maxTxTries || !retryable(err) {
			return err
		}
	}
}

func retryable(err error) bool {
	var pe *pgconn.PgError
	// 23503: a foreign key violated by a concurrent delete (an endpoint deleted
	// while a publish fanned out to it); run again, the transaction sees it gone.
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01" || pe.Code == "23503")
}

func isUnique(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}
