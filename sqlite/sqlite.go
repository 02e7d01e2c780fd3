// Package sqlite is hookd's embedded store: a hookd.Store on one SQLite file (pure
// Go, no cgo) in WAL mode, with every write going through one writer goroutine that
// commits concurrent writes together (group commit).
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pressly/goose/v3"
	"golang.org/x/sync/singleflight"
	_ "modernc.org/sqlite" // the database/sql driver "sqlite"

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
	// Path is the database file; it is created if missing. Required.
	Path string
	// Sealer seals endpoint secrets. Required.
	Sealer Sealer
	// MaxBatch caps how many writes share one transaction. Default 512.
	MaxBatch int
	// Readers is the size of the read connection pool. Default 8.
	Readers int
	// DeleteChunk is how many of an endpoint's deliveries (with their
	// attempts) DeleteEndpoint deletes per write. Default 1,000.
	DeleteChunk int
}

// DB is a hookd.Store on SQLite. It assumes it is the only process using the file
// (the caller holds the data directory's lock): Open releases every lease left by a
// previous run, so deliveries interrupted by a crash resume at once.
type DB struct {
	cfg Config
	hb  heartbeat // Ping's write check
	w   *sql.DB   // one connection, used only by the writer goroutine
	wc  *sql.Conn // that connection
	r   *sql.DB   // read-only pool

	stmts  map[string]*sql.Stmt // prepared on wc; used only by the writer goroutine
	leases *leases              // every lease: this process's own
	// rstmts holds the hot read statements, prepared once on the reader pool
	// (database/sql prepares each on a connection the first time it runs there).
	rmu    sync.Mutex
	rstmts map[string]*sql.Stmt
	// subs caches each organization's endpoints for fan-out; used only by the
	// writer goroutine, dropped for an organization whenever one of its endpoints
	// is written, and dropped whole whenever a write fails.
	subs map[string][]subscriber
	// quotas caches each organization's quota settings for usage counting; used
	// only by the writer goroutine, dropped for an organization when it is
	// updated, and whole whenever a write fails.
	quotas map[string]hookd.Organization
	// health caches what recording an attempt needs of each endpoint (its
	// ordering and its run of failures), so that an attempt that changes
	// neither costs no statement; used only by the writer goroutine, dropped
	// for an endpoint when it is updated, deleted or disabled, and whole
	// whenever a write fails.
	health map[string]endpointHealth

	// syncFull is whether the writer connection runs with synchronous=FULL
	// (else NORMAL); used only by the writer goroutine.
	syncFull bool

	// gen counts the committed batches that may have added due deliveries:
	// those with a write that is not relaxed, or that stored pending
	// deliveries or made one due (moreDue; used only by the writer
	// goroutine). See dueEndpoints.
	gen     atomic.Uint64
	moreDue bool
	// due is what claims keep between them: the last summary of the
	// endpoints with pending work, and the deliveries read ahead. mu guards
	// it, and is held by a claim while it chooses and leases (see
	// ClaimDeliveries).
	due struct {
		mu      sync.Mutex
		gen     uint64 // db.gen when it was read
		at      time.Time
		eps     []dueEndpoint
		ttl     time.Duration // dueTTL; tests change it
		queries atomic.Int64  // summaries read from the database (tests)
		// ahead holds, per unordered endpoint, due deliveries read ahead by
		// an earlier claim, oldest due first (see dueSeqs).
		ahead map[string][]int64
		reads atomic.Int64 // endpoints' due deliveries read from the database (tests)
	}

	// keys caches APIKeyByHash's answers that found a key (see APIKeyByHash).
	keys struct {
		mu     sync.Mutex
		gen    uint64 // bumped, and byHash cleared, once a key is deleted
		byHash map[string]hookd.APIKey
		reads  atomic.Int64 // keys read from the database (tests)
		// read, if set, is called by APIKeyByHash between its read and
		// its caching of the key (tests).
		read func()
	}

	// deleted, if set, is called by DeleteEndpoint after each chunk of
	// deliveries it deleted, while more may remain (tests).
	deleted func()

	mu     sync.RWMutex // guards closed against sends on ops
	closed bool
	ops    chan writeOp
	done   chan struct{}
}

type writeOp struct {
	fn   func(tx wtx) error
	done chan error
	// relaxed marks a write whose loss in a power failure costs nothing but a
	// repeated attempt (leases, attempt outcomes): a batch of only such writes
	// commits without fsync; it becomes durable with the next batch that
	// fsyncs. A crash of the process loses none of it (the WAL is written).
	// Nor does such a batch refresh the claims' summary of due work at once
	// (see dueEndpoints).
	relaxed bool
	// rerun marks a write whose fn may run again after a rollback of its
	// transaction: it changes nothing outside the transaction but the
	// writer's caches (which a rollback clears) and results that a second run
	// overwrites. A batch of only such writes runs without a savepoint around
	// each (see runBatch).
	rerun bool
}

// wtx is the writer's open transaction. Its Exec, Query and QueryRow run
// statements prepared once on the writer connection and reused by every later
// transaction, so hot statements are not parsed again on each write.
type wtx struct{ db *DB }

func (t wtx) stmt(q string) (*sql.Stmt, error) {
	if st, ok := t.db.stmts[q]; ok {
		return st, nil
	}
	st, err := t.db.wc.PrepareContext(context.Background(), q)
	if err != nil {
		return nil, err
	}
	t.db.stmts[q] = st
	return st, nil
}

// Exec runs a statement in the transaction.
func (t wtx) Exec(q string, args ...any) (sql.Result, error) {
	st, err := t.stmt(q)
	if err != nil {
		return nil, err
	}
	return st.Exec(args...)
}

// Query runs a query in the transaction.
func (t wtx) Query(q string, args ...any) (*sql.Rows, error) {
	st, err := t.stmt(q)
	if err != nil {
		return nil, err
	}
	return st.Query(args...)
}

// QueryRow runs a single-row query in the transaction.
func (t wtx) QueryRow(q string, args ...any) *sql.Row {
	st, err := t.stmt(q)
	if err != nil {
		return t.db.wc.QueryRowContext(context.Background(), q, args...) // reports the same error on Scan
	}
	return st.QueryRow(args...)
}

// rstmt returns q prepared on the reader pool, preparing it the first time. Use
// it only for constant statements on hot paths: the cache is never pruned.
func (db *DB) rstmt(ctx context.Context, q string) (*sql.Stmt, error) {
	db.rmu.Lock()
	defer db.rmu.Unlock()
	if st, ok := db.rstmts[q]; ok {
		return st, nil
	}
	st, err := db.r.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	db.rstmts[q] = st
	return st, nil
}

// rquery runs the constant query q on the reader pool, prepared once.
func (db *DB) rquery(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	st, err := db.rstmt(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// rqueryRow runs the constant single-row query q on the reader pool, prepared once.
func (db *DB) rqueryRow(ctx context.Context, q string, args ...any) *sql.Row {
	st, err := db.rstmt(ctx, q)
	if err != nil {
		return db.r.QueryRowContext(ctx, q, args...) // reports the same error on Scan
	}
	return st.QueryRowContext(ctx, args...)
}

var errClosed = errors.New("sqlite: store is closed")

// walSizeLimit is the size the writer trims the WAL file back to when it
// starts it over. The WAL grows past SQLite's checkpoint threshold (1,000
// pages) while a read (a claim, a listing) holds an older snapshot, since a
// checkpoint cannot start it over then; without a limit the file would keep
// its largest size for good.
//
// (Checkpointing every 8,192 pages instead cut hookd's CPU time by a tenth,
// but a checkpoint runs inside the writer's commit and syncs the database
// file: with a million deliveries pending, copying 32 MiB of scattered pages
// held every write for ~100 ms, and publish latency p99 rose 5×. See
// docs/performance.md, seventh round.)
const walSizeLimit = 64 << 20

// Open opens (creating and migrating if needed) the database at cfg.Path and starts
// its writer. Call Close to stop it.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	if cfg.Path == "" {
		return nil, errors.New("sqlite: Config.Path is required")
	}
	if cfg.Sealer == nil {
		return nil, errors.New("sqlite: Config.Sealer is required")
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 512
	}
	if cfg.Readers <= 0 {
		cfg.Readers = 8
	}
	if cfg.DeleteChunk <= 0 {
		cfg.DeleteChunk = 1000
	}
	// SQLite gives its -wal and -shm files the database file's mode: create it
	// private, since it holds event payloads.
	f, err := os.OpenFile(cfg.Path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create sqlite database: %w", err)
	}
	f.Close()
	dsn := func(extra string) string {
		return "file:" + url.PathEscape(cfg.Path) + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)" +
			"&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)&_pragma=temp_store(MEMORY)" + extra
	}
	// The writer's page cache holds what a large group commit (a batch of
	// events fanned out to many endpoints) dirties, so that it does not spill
	// pages to the WAL before the commit: 32 MiB at most, used only as needed.
	// It trims the WAL back to walSizeLimit when it starts it over.
	w, err := sql.Open("sqlite", dsn(fmt.Sprintf("&_pragma=cache_size(-32768)&_pragma=journal_size_limit(%d)", walSizeLimit)))
	if err != nil {
		return nil, fmt.Errorf("open sqlite writer: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	if err := migrate(ctx, w); err != nil {
		w.Close()
		return nil, err
	}
	r, err := sql.Open("sqlite", dsn("&_pragma=query_only(1)"))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open sqlite readers: %w", err)
	}
	r.SetMaxOpenConns(cfg.Readers)
	r.SetMaxIdleConns(cfg.Readers)
	if err := checkSealer(ctx, w, cfg.Sealer); err != nil {
		w.Close()
		r.Close()
		return nil, err
	}
	wc, err := w.Conn(ctx)
	if err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("open sqlite writer: %w", err)
	}
	db := &DB{cfg: cfg, syncFull: true, w: w, wc: wc, r: r, stmts: map[string]*sql.Stmt{}, rstmts: map[string]*sql.Stmt{}, leases: newLeases(), subs: map[string][]subscriber{}, quotas: map[string]hookd.Organization{}, health: map[string]endpointHealth{}, ops: make(chan writeOp, cfg.MaxBatch), done: make(chan struct{})}
	if _, err := wc.ExecContext(ctx, `UPDATE deliveries SET lease = NULL, lease_until = NULL
		WHERE status = 'pending' AND lease IS NOT NULL`); err != nil {
		w.Close()
		r.Close()
		wc.Close()
		return nil, fmt.Errorf("release leases of the previous run: %w", err)
	}
	db.due.ttl = dueTTL
	db.due.ahead = map[string][]int64{}
	db.keys.byHash = map[string]hookd.APIKey{}
	go db.writeLoop()
	return db, nil
}

func migrate(ctx context.Context, db *sql.DB) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, fsys)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate sqlite: %w", err)
	}
	return nil
}

// ErrWrongMasterKey means the database's secrets were sealed with another key.
var ErrWrongMasterKey = errors.New("sqlite: the master key does not open this database's secrets " +
	"(HOOKD_MASTER_KEY or master.key differs from the key they were sealed with)")

// sealerCheck is sealed into the database on first open; reopening with a sealer
// that cannot open it fails at once instead of failing every delivery later.
const sealerCheck = "hookd sealer check"

func checkSealer(ctx context.Context, w *sql.DB, s Sealer) error {
	var sealed []byte
	err := w.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'sealer_check'`).Scan(&sealed)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		// No check yet: a database from before it existed may hold secrets
		// already, and they must open with this key.
		var existing []byte
		err := w.QueryRowContext(ctx, `SELECT secret FROM endpoints UNION ALL SELECT secret FROM partners LIMIT 1`).Scan(&existing)
		switch {
		case err == nil:
			if _, err := s.Open(existing); err != nil {
				return ErrWrongMasterKey
			}
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("read a sealed secret: %w", err)
		}
		if sealed, err = s.Seal([]byte(sealerCheck)); err != nil {
			return fmt.Errorf("seal the master key check: %w", err)
		}
		if _, err := w.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES ('sealer_check', ?)`, sealed); err != nil {
			return fmt.Errorf("store the master key check: %w", err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("read the master key check: %w", err)
	}
	plain, err := s.Open(sealed)
	if err != nil || string(plain) != sealerCheck {
		return ErrWrongMasterKey
	}
	return nil
}

// Close stops the writer after the writes already submitted and closes the database.
// It is safe to call more than once.
func (db *DB) Close() error {
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return nil
	}
	db.closed = true
	close(db.ops)
	db.mu.Unlock()
	<-db.done
	for _, st := range db.stmts {
		st.Close()
	}
	db.rmu.Lock()
	for _, st := range db.rstmts {
		st.Close()
	}
	db.rmu.Unlock()
	return errors.Join(db.r.Close(), db.wc.Close(), db.w.Close())
}

// heartbeatEvery is how long the result of the write Ping makes holds: checks
// within it share that write, so that no number of health checks adds more
// than one write a second.
const heartbeatEvery = time.Second

// heartbeat is the write check that Ping shares.
type heartbeat struct {
	flight singleflight.Group // the running check, joined by concurrent ones
	mu     sync.Mutex
	at     time.Time // when the last check ended
	err    error     // and its result
}

// Ping checks that the reader pool answers and that the writer can write: it
// writes a heartbeat row, so that a disk that refuses writes fails the check
// (at most once per heartbeatEvery; checks meanwhile share the last result).
// The writer may be busy with other work; the caller's deadline still holds.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.r.PingContext(ctx); err != nil {
		return fmt.Errorf("ping sqlite: %w", err)
	}
	hb := &db.hb
	hb.mu.Lock()
	if !hb.at.IsZero() && time.Since(hb.at) < heartbeatEvery {
		err := hb.err
		hb.mu.Unlock()
		return err
	}
	hb.mu.Unlock()
	// The write runs to its end even if this caller stops waiting: its
	// result serves the checks that come after.
	ch := hb.flight.DoChan("heartbeat", func() (any, error) {
		err := db.write(context.Background(), func(tx wtx) error {
			_, err := tx.Exec(`INSERT INTO meta (key, value) VALUES ('health', ?)
				ON CONFLICT (key) DO UPDATE SET value = excluded.value`, []byte(time.Now().UTC().Format(time.RFC3339Nano)))
			return err
		})
		if err != nil {
			err = fmt.Errorf("ping sqlite writer: %w", err)
		}
		hb.mu.Lock()
		hb.at, hb.err = time.Now(), err
		hb.mu.Unlock()
		return nil, err
	})
	select {
	case r := <-ch:
		return r.Err
	case <-ctx.Done():
		return fmt.Errorf("ping sqlite writer: %w", ctx.Err())
	}
}

// write runs fn in a write transaction shared with other concurrent writes and
// returns once that transaction is committed (nil) or fn's changes are rolled back
// (fn's error, or the commit's). fn must not block on anything but the database.
func (db *DB) write(ctx context.Context, fn func(tx wtx) error) error {
	return db.submit(ctx, writeOp{fn: fn})
}

// writeRelaxed is write for writes whose loss in a power failure only makes a
// delivery be attempted again (see writeOp.relaxed).
func (db *DB) writeRelaxed(ctx context.Context, fn func(tx wtx) error) error {
	return db.submit(ctx, writeOp{fn: fn, relaxed: true})
}

// submit queues op for the writer and waits for its outcome (op.done is made
// here).
func (db *DB) submit(ctx context.Context, op writeOp) error {
	op.done = make(chan error, 1)
	db.mu.RLock()
	if db.closed {
		db.mu.RUnlock()
		return errClosed
	}
	select {
	case db.ops <- op:
	case <-ctx.Done():
		db.mu.RUnlock()
		return ctx.Err()
	}
	db.mu.RUnlock()
	return <-op.done
}

func (db *DB) writeLoop() {
	defer close(db.done)
	for op := range db.ops {
		batch := []writeOp{op}
	fill:
		for len(batch) < db.cfg.MaxBatch {
			select {
			case op, ok := <-db.ops:
				if !ok {
					break fill
				}
				batch = append(batch, op)
			default:
				break fill
			}
		}
		db.runBatch(batch)
	}
}

// forget drops the writer's caches.
func (db *DB) forget() {
	clear(db.subs)
	clear(db.quotas)
	clear(db.health)
}

// explain adds to err, when the disk refused a write, what the operating system
// says of the store's files (see diskFault).
func (db *DB) explain(err error) error {
	if err == nil {
		return nil
	}
	if cause := diskFault(err, db.cfg.Path, db.cfg.Path+"-wal", db.cfg.Path+"-shm"); cause != "" {
		return fmt.Errorf("%w (%s)", err, cause)
	}
	return err
}

// runBatch runs every op of batch in one transaction and commits once; one op's
// failure undoes only its own changes.
//
// That takes a savepoint around each op, and a savepoint costs more than its
// two statements: the first change of each page inside it copies the page to
// the sub-journal first (a fifth of the cost of storing a delivery row, in
// the profile of single-event publishes). So a batch of one op runs without
// (rolling the transaction back undoes the op alone), and so does a batch of
// ops that can all run again (writeOp.rerun): if one of them fails (a publish
// over its quota, say), the transaction is rolled back and the batch runs
// again without that op, whose caller gets its error. The ops before it do
// what they did; those after it see what savepoints would have shown them.
// After maxReruns such failures the batch runs with savepoints.
func (db *DB) runBatch(batch []writeOp) {
	guard := len(batch) > 1 && slices.ContainsFunc(batch, func(op writeOp) bool { return !op.rerun })
	left := make([]error, len(batch)) // the errors of the ops left out
	for try := 0; !db.runOnce(batch, left, guard); try++ {
		guard = try+1 >= maxReruns
	}
}

// maxReruns bounds how many times runBatch runs a batch again without
// savepoints, each time without an op that failed.
const maxReruns = 3

// runOnce runs in one transaction the ops of batch not left out (left[i] is
// nil), each inside a savepoint if guard, and tells each op's caller how it
// went (those left out get left[i]). Unguarded, a failed op rolls the whole
// transaction back: runOnce then records its error in left and returns false,
// having told no caller anything, to be run again.
func (db *DB) runOnce(batch []writeOp, left []error, guard bool) bool {
	errs := slices.Clone(left)
	finish := func(shared error) bool {
		shared = db.explain(shared)
		for i, op := range batch {
			// An op left out was in no run that could commit: its own error
			// is its outcome, whatever became of this run.
			if shared != nil && left[i] == nil {
				op.done <- shared
			} else {
				op.done <- db.explain(errs[i])
			}
		}
		return true
	}
	if !slices.Contains(left, nil) {
		return finish(nil)
	}
	tx := wtx{db: db}
	full := false
	for i, op := range batch {
		full = full || (left[i] == nil && !op.relaxed)
	}
	if full != db.syncFull {
		mode := "NORMAL"
		if full {
			mode = "FULL"
		}
		if _, err := tx.Exec("PRAGMA synchronous = " + mode); err != nil {
			return finish(fmt.Errorf("set synchronous: %w", err))
		}
		db.syncFull = full
	}
	rollback := func() error {
		db.forget() // the caches may hold what the rollback undoes
		// A failed COMMIT may have rolled back already: that is no news.
		if _, err := tx.Exec("ROLLBACK"); err != nil && !strings.Contains(err.Error(), "no transaction is active") {
			return fmt.Errorf("rollback: %w", err)
		}
		return nil
	}
	abort := func(what string, err error) bool {
		return finish(fmt.Errorf("%s: %w", what, errors.Join(err, rollback())))
	}
	db.moreDue = false
	if _, err := tx.Exec("BEGIN IMMEDIATE"); err != nil {
		return finish(fmt.Errorf("begin: %w", err))
	}
	for i, op := range batch {
		if left[i] != nil {
			continue
		}
		if !guard {
			err := op.fn(tx)
			if err == nil {
				continue
			}
			if rbErr := rollback(); rbErr != nil {
				// The transaction may still be open: no op can run. The op
				// that failed hears both why.
				left[i] = errors.Join(err, rbErr)
				errs[i] = left[i]
				return finish(fmt.Errorf("after a failed write: %w", rbErr))
			}
			left[i] = err
			return false
		}
		if _, err := tx.Exec("SAVEPOINT op"); err != nil {
			return abort("savepoint", err)
		}
		errs[i] = op.fn(tx)
		if errs[i] != nil {
			db.forget() // the caches may hold what the rollback undoes
			if _, err := tx.Exec("ROLLBACK TO op"); err != nil {
				return abort("rollback to savepoint", err)
			}
		}
		if _, err := tx.Exec("RELEASE op"); err != nil {
			return abort("release savepoint", err)
		}
	}
	if _, err := tx.Exec("COMMIT"); err != nil {
		return abort("commit", err)
	}
	if full || db.moreDue {
		db.gen.Add(1) // before any caller hears of it: its next claim sees the new work
	}
	db.moreDue = false
	return finish(nil)
}
