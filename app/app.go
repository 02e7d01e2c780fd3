// Package app assembles hookd: it opens the store (embedded SQLite, or PostgreSQL
// shared by several instances), bootstraps the admin key, and runs the delivery
// engine and the HTTP API as its role asks, with an orderly shutdown. The CLI and
// end-to-end tests both run it.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/delivery"
	"github.com/hookd/hookd/httpapi"
	"github.com/hookd/hookd/ids"
	"github.com/hookd/hookd/netguard"
	"github.com/hookd/hookd/postgres"
	"github.com/hookd/hookd/secret"
	"github.com/hookd/hookd/sqlite"
)

// Roles an instance can play (Config.Role).
const (
	RoleAll    = "all"    // serve the API and deliver
	RoleAPI    = "api"    // serve the API: accept and store; deliver nothing
	RoleWorker = "worker" // deliver; serve only the health check
)

// DefaultKeyRateLimit is Config.KeyRateLimit's default, requests per second and
// API key on the management API: Stripe's default per account.
const DefaultKeyRateLimit = 100

// Version is hookd's version, sent in User-Agent and reported by the health check.
var Version = "0.1.0"

// Config configures an App. Zero values mean the documented defaults.
type Config struct {
	// Addr is the HTTP listen address. Default ":8080"; use "127.0.0.1:0" in tests.
	Addr string
	// DataDir holds the SQLite database, the master key file and the admin key
	// file. Default "./hookd-data".
	DataDir string
	// DatabaseURL, if set, keeps everything in this PostgreSQL database instead of
	// the embedded store, so that several instances can share it. Every instance
	// must then have the same master key (one that differs is refused at start).
	DatabaseURL string
	// Role is RoleAll (default), RoleAPI or RoleWorker. A worker needs
	// DatabaseURL. An API instance on the embedded store accepts and stores
	// events but delivers none until an instance of role all runs on the data
	// directory (maintenance, or building a backlog to measure a drain).
	Role string
	// MasterKey seals secrets at rest (32 bytes). Nil: read or create
	// <DataDir>/master.key (mode 0600).
	MasterKey []byte
	// AdminKey, if set, is registered as an admin key instead of generating one.
	AdminKey string
	// Policy decides which webhook targets are allowed (SSRF protection).
	Policy netguard.Policy
	// MaxBodyBytes caps request bodies: past it, 413 payload_too_large. Default
	// 1 MiB (SPEC §1).
	MaxBodyBytes int64
	// MaxHeaderBytes caps a request's line and header fields: past it, 431
	// header_too_large (JSON up to twice the limit; beyond, net/http's own plain
	// 431 before the request is read any further). Default 64 KiB.
	MaxHeaderBytes int
	// ReadHeaderTimeout bounds the time from a request's first byte (or a
	// connection's accept) to the end of its header. Default 10s.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds the time to read a whole request, body included; a body
	// that has not arrived by then answers 408 request_timeout. Default 60s.
	// Must not be shorter than ReadHeaderTimeout.
	ReadTimeout time.Duration
	// WriteTimeout bounds the time from the end of a request's header to the end
	// of its answer: the body's arrival, the handler and the answer's writing.
	// Past it the connection is closed, answered or not. It should exceed
	// Engine.AttemptTimeout, which POST /api/webhooks/{id}/test waits for.
	// Default ReadTimeout + the attempt timeout + 15s (90s with the defaults).
	WriteTimeout time.Duration
	// IdleTimeout is how long a keep-alive connection may wait for its next
	// request. Default 120s: longer than the idle timeout of common load
	// balancers (60s), so that they, not hookd, close idle connections.
	IdleTimeout time.Duration
	// KeyRateLimit is the requests per second each API key may sustain on the
	// management routes other than publishing, in bursts of KeyRateBurst (default
	// twice the rate). Past it: 429 rate_limited with Retry-After. Default 100;
	// negative: unlimited. The buckets live in each instance: with several
	// instances behind a load balancer a key may make up to that many times more.
	KeyRateLimit float64
	KeyRateBurst int
	// PublishRateLimit and PublishRateBurst are the same per key for POST
	// /api/events and /api/events/batch (a request each). Default (zero or
	// negative): unlimited; monthly quotas bound publishing.
	PublishRateLimit float64
	PublishRateBurst int
	// AuditFailureRate is how many failed attempts per second get an audit
	// record each; beyond it, failures are summed per kind and client address
	// into one record a second with their count (httpapi.Config.AuditFailureRate).
	// Default 100; negative: a record for every failure.
	AuditFailureRate float64
	// TrustedProxies are the peers whose X-Forwarded-For is believed. Default none.
	TrustedProxies []netip.Prefix
	// Engine tunes the delivery engine; its Store, Policy, Now, Logger and UserAgent
	// are set by the App.
	Engine delivery.Config
	// PprofAddr, if set, serves Go's profiles (net/http/pprof, /debug/pprof/) on
	// this address, without authentication: give it a loopback address. Default
	// off.
	PprofAddr string
	// ShutdownTimeout bounds Stop when its context has no deadline. Default 30s.
	ShutdownTimeout time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives the server's log. Default slog.Default().
	Logger *slog.Logger
}

// App is a running hookd. Create with New, then Start; Stop once.
type App struct {
	cfg    Config
	lock   *os.File
	store  hookd.Store
	engine *delivery.Engine
	// stopListen ends the PostgreSQL wake-up listener, if one runs.
	stopListen context.CancelFunc
	listening  chan struct{}
	srv        *http.Server
	api        *httpapi.Server
	ln         net.Listener
	served     chan error
	pprof      *http.Server
	pprofLn    net.Listener

	// AdminKeyFile is the path of the generated admin key file, or "" when the
	// admin key came from Config.AdminKey or already existed.
	AdminKeyFile string
}

// New validates cfg and returns an App that has not started.
func New(cfg Config) (*App, error) {
	switch cfg.Role {
	case "":
		cfg.Role = RoleAll
	case RoleAll, RoleAPI, RoleWorker:
	default:
		return nil, fmt.Errorf("app: role %q is not one of all, api, worker", cfg.Role)
	}
	if cfg.Role == RoleWorker && cfg.DatabaseURL == "" {
		return nil, fmt.Errorf("app: role %s needs a PostgreSQL database (--database-url): the embedded store serves one process", cfg.Role)
	}
	if cfg.Addr == "" {
		cfg.Addr = ":8080"
	}
	if cfg.DataDir == "" {
		cfg.DataDir = "./hookd-data"
	}
	if cfg.MasterKey != nil && len(cfg.MasterKey) != 32 {
		return nil, errors.New("app: Config.MasterKey must be 32 bytes")
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.MaxHeaderBytes <= 0 {
		cfg.MaxHeaderBytes = httpapi.DefaultMaxHeaderBytes
	}
	if cfg.ReadHeaderTimeout <= 0 {
		cfg.ReadHeaderTimeout = 10 * time.Second
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = 60 * time.Second
	}
	if cfg.ReadHeaderTimeout > cfg.ReadTimeout {
		return nil, fmt.Errorf("app: ReadHeaderTimeout (%s) must not exceed ReadTimeout (%s), which covers the header too", cfg.ReadHeaderTimeout, cfg.ReadTimeout)
	}
	if cfg.WriteTimeout <= 0 {
		attempt := cfg.Engine.AttemptTimeout
		if attempt <= 0 {
			attempt = 15 * time.Second // the engine's default
		}
		cfg.WriteTimeout = cfg.ReadTimeout + attempt + 15*time.Second
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 120 * time.Second
	}
	switch {
	case cfg.KeyRateLimit == 0:
		cfg.KeyRateLimit = DefaultKeyRateLimit
	case cfg.KeyRateLimit < 0:
		cfg.KeyRateLimit = 0 // unlimited
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &App{cfg: cfg}, nil
}

// Start opens the data directory and store, bootstraps the admin key, starts the
// engine and begins serving HTTP. On error everything already started is stopped.
func (a *App) Start(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			a.close()
		}
	}()
	if err := os.MkdirAll(a.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	if a.cfg.DatabaseURL == "" {
		// The embedded store serves one process.
		if a.lock, err = lockDir(a.cfg.DataDir); err != nil {
			return err
		}
	}
	key := a.cfg.MasterKey
	if key == nil {
		if key, err = secret.LoadOrCreateKeyFile(filepath.Join(a.cfg.DataDir, "master.key")); err != nil {
			return fmt.Errorf("master key: %w", err)
		}
	}
	sealer, err := secret.NewSealer(key)
	if err != nil {
		return fmt.Errorf("master key: %w", err)
	}
	// Each store is opened into its own variable: a nil *DB in a.store would
	// not be a nil hookd.Store, and close would call its Close.
	var pg *postgres.DB
	if a.cfg.DatabaseURL != "" {
		if pg, err = postgres.Open(ctx, postgres.Config{URL: a.cfg.DatabaseURL, Sealer: sealer}); err != nil {
			return err
		}
		a.store = pg
		on, err := pg.Autovacuum(ctx)
		if err != nil {
			return err
		}
		if !on {
			a.cfg.Logger.Warn("postgres runs with autovacuum off: hookd's queue tables fill with dead rows and delivery slows down over time; turn autovacuum on")
		}
	} else {
		lite, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(a.cfg.DataDir, "hookd.db"), Sealer: sealer})
		if err != nil {
			return err
		}
		a.store = lite
	}
	if err := a.bootstrapAdmin(ctx); err != nil {
		return err
	}
	ec := a.cfg.Engine
	ec.Store, ec.Policy, ec.Now, ec.Logger = a.store, a.cfg.Policy, a.cfg.Now, a.cfg.Logger
	ec.UserAgent = "hookd/" + Version
	if a.engine, err = delivery.New(ec); err != nil {
		return err
	}
	api, err := httpapi.New(httpapi.Config{
		Store: a.store, Engine: a.engine, Policy: a.cfg.Policy, MaxBodyBytes: a.cfg.MaxBodyBytes, TrustedProxies: a.cfg.TrustedProxies,
		MaxHeaderBytes: a.cfg.MaxHeaderBytes, KeyRate: a.cfg.KeyRateLimit, KeyBurst: a.cfg.KeyRateBurst,
		PublishRate: a.cfg.PublishRateLimit, PublishBurst: a.cfg.PublishRateBurst, AuditFailureRate: a.cfg.AuditFailureRate,
		Retry: a.cfg.Engine.Retry, Version: Version, Now: a.cfg.Now, Logger: a.cfg.Logger,
		HealthOnly: a.cfg.Role == RoleWorker, // a worker answers only its health check
	})
	if err != nil {
		return err
	}
	a.api = api
	if a.ln, err = net.Listen("tcp", a.cfg.Addr); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if a.cfg.Role != RoleAPI {
		// An API instance keeps its engine unstarted: it only sends test events.
		if err := a.engine.Start(ctx); err != nil {
			return err
		}
		if pg != nil {
			lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
			a.stopListen, a.listening = cancel, make(chan struct{})
			go func() {
				defer close(a.listening)
				pg.Listen(lctx, a.engine.Notify, func(err error) { a.cfg.Logger.Warn("postgres wake-ups lost; polling until back", "err", err) })
			}()
		}
	}
	a.srv = &http.Server{
		Handler:           api,
		ReadHeaderTimeout: a.cfg.ReadHeaderTimeout,
		ReadTimeout:       a.cfg.ReadTimeout,
		WriteTimeout:      a.cfg.WriteTimeout,
		IdleTimeout:       a.cfg.IdleTimeout,
		// The API answers headers above MaxHeaderBytes with a JSON 431; net/http
		// reads up to this much (plus 4 KiB) before cutting one off itself.
		MaxHeaderBytes: httpapi.HeaderReadLimit(a.cfg.MaxHeaderBytes),
		ErrorLog:       slog.NewLogLogger(a.cfg.Logger.Handler(), slog.LevelWarn),
	}
	if a.cfg.PprofAddr != "" {
		if a.pprofLn, err = net.Listen("tcp", a.cfg.PprofAddr); err != nil {
			return fmt.Errorf("listen for pprof: %w", err)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		a.pprof = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go a.pprof.Serve(a.pprofLn) // ends when close closes it
	}
	a.served = make(chan error, 1)
	go func() { a.served <- a.srv.Serve(a.ln) }()
	storeName := "sqlite"
	if pg != nil {
		storeName = "postgres"
	}
	a.cfg.Logger.Info("hookd started", "addr", a.Addr(), "role", a.cfg.Role, "store", storeName, "data_dir", a.cfg.DataDir, "version", Version)
	return nil
}

// PprofAddr returns the address the profiles are served on, or "" if none.
func (a *App) PprofAddr() string {
	if a.pprofLn == nil {
		return ""
	}
	return a.pprofLn.Addr().String()
}

// Addr returns the address the API listens on, such as "127.0.0.1:8080".
func (a *App) Addr() string {
	if a.ln == nil {
		return ""
	}
	return a.ln.Addr().String()
}

// bootstrapAdmin registers Config.AdminKey, or on a store with no admin key
// generates one into <DataDir>/admin.key (mode 0600) and logs the file's path.
func (a *App) bootstrapAdmin(ctx context.Context) error {
	now := a.cfg.Now().UTC()
	if a.cfg.AdminKey != "" {
		hash := secret.HashKey(a.cfg.AdminKey)
		if _, err := a.store.APIKeyByHash(ctx, hash); err == nil {
			return nil
		}
		err := a.store.CreateAPIKey(ctx, &hookd.APIKey{ID: ids.New("key"), Hash: hash, CreatedAt: now})
		if hookd.ErrorCode(err) == hookd.ECONFLICT {
			return nil // another instance sharing the store registered it just now
		}
		return err
	}
	n, err := a.store.CountAdminKeys(ctx)
	if err != nil || n > 0 {
		return err
	}
	key := secret.NewAPIKey("hk_admin_")
	path := filepath.Join(a.cfg.DataDir, "admin.key")
	if err := writeFileSync(path, []byte(key+"\n")); err != nil {
		return fmt.Errorf("write admin key: %w", err)
	}
	if err := a.store.CreateAPIKey(ctx, &hookd.APIKey{ID: ids.New("key"), Hash: secret.HashKey(key), CreatedAt: now}); err != nil {
		return err
	}
	a.AdminKeyFile = path
	a.cfg.Logger.Info("created the admin key", "file", path)
	return nil
}

// Stop shuts down in order: stop accepting HTTP and finish requests, stop claiming
// and finish (or, past the deadline, release) attempts in flight, close the store.
func (a *App) Stop(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, a.cfg.ShutdownTimeout)
		defer cancel()
	}
	var errs []error
	if a.srv != nil {
		if err := a.srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("shut down http: %w", err))
		}
		if err := <-a.served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, fmt.Errorf("serve http: %w", err))
		}
		a.srv = nil
	}
	if a.engine != nil {
		if err := a.engine.Stop(ctx); errors.Is(err, context.DeadlineExceeded) {
			// Nothing is lost: the cut-short attempts were released and will run again.
			a.cfg.Logger.Warn("shutdown deadline passed: attempts still in flight were released unattempted")
		} else if err != nil {
			errs = append(errs, fmt.Errorf("stop engine: %w", err))
		}
	}
	errs = append(errs, a.close())
	return errors.Join(errs...)
}

// close releases the store, the listener and the directory lock.
func (a *App) close() error {
	var errs []error
	if a.stopListen != nil {
		a.stopListen()
		<-a.listening
		a.stopListen = nil
	}
	if a.ln != nil && a.srv == nil {
		a.ln.Close()
	}
	if a.pprof != nil {
		a.pprof.Close() // closes its listener
		a.pprof = nil
	} else if a.pprofLn != nil {
		a.pprofLn.Close()
	}
	if a.api != nil {
		a.api.Close() // writes the summed audit records, before the store closes
		a.api = nil
	}
	if a.store != nil {
		errs = append(errs, a.store.Close())
		a.store = nil
	}
	if a.lock != nil {
		errs = append(errs, a.lock.Close())
		a.lock = nil
	}
	return errors.Join(errs...)
}

// lockDir takes an exclusive lock on dir, so that two processes never share one
// embedded store. The lock goes with the process, even on kill -9.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock data dir: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("data dir %s is in use by another hookd process: %w", dir, err)
	}
	return f, nil
}

// writeFileSync writes data to path (mode 0600) through a synced temporary file and
// a rename, then syncs the directory, so that the file is whole after a crash.
func writeFileSync(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
