package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/app"
	"github.com/hookd/hookd/delivery"
	"github.com/hookd/hookd/internal/heapfloor"
	"github.com/hookd/hookd/netguard"
	"github.com/hookd/hookd/secret"
)

type serveCmd struct {
	Addr                string        `default:":8080" env:"HOOKD_ADDR" help:"Address the API listens on."`
	DataDir             string        `default:"./hookd-data" env:"HOOKD_DATA_DIR" type:"path" help:"Directory of the embedded store, the master key file and the admin key file."`
	DatabaseURL         string        `name:"database-url" env:"HOOKD_DATABASE_URL" help:"PostgreSQL URL (postgres://user:pass@host:5432/db): store everything there instead of the embedded store, so that several instances share it. Every instance needs the same master key (HOOKD_MASTER_KEY, or the same master.key file)."`
	Role                string        `default:"all" enum:"all,api,worker" env:"HOOKD_ROLE" help:"What this instance does: all (API and delivery), api (accept and store), worker (deliver; serves only /api/health). worker needs --database-url; api on the embedded store delivers nothing until an instance of role all runs on the data dir."`
	MasterKey           string        `env:"HOOKD_MASTER_KEY" help:"Master key sealing secrets at rest: 64 hex characters or base64 of 32 bytes. Default: <data-dir>/master.key, created on first start."`
	AdminKey            string        `env:"HOOKD_ADMIN_KEY" help:"Use this admin API key instead of generating <data-dir>/admin.key."`
	Dev                 bool          `env:"HOOKD_DEV" help:"Local development: shorthand for --allow-http --allow-private-targets."`
	AllowHTTP           bool          `name:"allow-http" env:"HOOKD_ALLOW_HTTP" help:"Allow http:// webhook URLs."`
	AllowPrivateTargets bool          `env:"HOOKD_ALLOW_PRIVATE_TARGETS" help:"Allow webhook URLs on loopback, private and link-local addresses."`
	TrustedProxies      []string      `env:"HOOKD_TRUSTED_PROXIES" sep:"," help:"Comma-separated addresses or CIDR prefixes of proxies whose X-Forwarded-For is believed (for partner IP allowlists and the audit log)."`
	MaxBodySize         int64         `default:"1048576" env:"HOOKD_MAX_BODY_SIZE" help:"Largest request body accepted, in bytes (413 above); a batch of events counts as one body."`
	MaxHeaderSize       int           `default:"65536" env:"HOOKD_MAX_HEADER_SIZE" help:"Largest request line and headers accepted, in bytes (431 above)."`
	ReadHeaderTimeout   time.Duration `default:"10s" env:"HOOKD_READ_HEADER_TIMEOUT" help:"Time a client has to send a request's headers; slower connections are closed (slow-loris)."`
	ReadTimeout         time.Duration `default:"60s" env:"HOOKD_READ_TIMEOUT" help:"Time a client has to send a whole request, body included (408 for a body still arriving)."`
	WriteTimeout        time.Duration `env:"HOOKD_WRITE_TIMEOUT" help:"Time from the end of a request's headers to the end of its answer; the connection is closed past it. Must exceed --attempt-timeout (the test route waits for an attempt). Default: read timeout + attempt timeout + 15s (90s)."`
	IdleTimeout         time.Duration `default:"120s" env:"HOOKD_IDLE_TIMEOUT" help:"How long a keep-alive connection may wait for its next request."`
	APIRateLimit        float64       `name:"api-rate-limit" default:"100" env:"HOOKD_API_RATE_LIMIT" help:"Requests per second each API key may make on the management API, publishing excepted (429 above); per instance. 0: unlimited."`
	APIRateBurst        int           `name:"api-rate-burst" env:"HOOKD_API_RATE_BURST" help:"Requests an API key may make at once on the management API. Default: twice --api-rate-limit."`
	PublishRateLimit    float64       `default:"0" env:"HOOKD_PUBLISH_RATE_LIMIT" help:"Publishing requests (POST /api/events, /api/events/batch) per second each API key may make (429 above); per instance. 0: unlimited."`
	PublishRateBurst    int           `env:"HOOKD_PUBLISH_RATE_BURST" help:"Publishing requests an API key may make at once. Default: twice --publish-rate-limit."`
	AuditFailureRate    float64       `default:"100" env:"HOOKD_AUDIT_FAILURE_RATE" help:"Failed attempts per second (partner door, audited management routes) that get an audit record each; beyond it, failures are summed per kind and client address into one record a second with their count; per instance. 0: a record for every failure."`
	AttemptTimeout      time.Duration `default:"15s" env:"HOOKD_ATTEMPT_TIMEOUT" help:"Time limit of one delivery attempt."`
	Lease               time.Duration `env:"HOOKD_LEASE" help:"How long a claimed delivery belongs to the instance that claimed it; if that instance dies, others attempt the delivery once this has passed. Must exceed --attempt-timeout; attempts are cut short min(10s, lease/4) before the lease ends. Default: attempt timeout + 30s."`
	RetryMaxAttempts    int           `default:"5" env:"HOOKD_RETRY_MAX_ATTEMPTS" help:"Attempts per delivery, the first included, unless an endpoint sets its own."`
	RetryInitial        time.Duration `name:"retry-initial-interval" default:"5s" env:"HOOKD_RETRY_INITIAL_INTERVAL" help:"Wait after the first failed attempt; each later wait is 6 times longer, with jitter."`
	RetryMax            time.Duration `name:"retry-max-interval" default:"1h" env:"HOOKD_RETRY_MAX_INTERVAL" help:"Longest wait between attempts (also caps Retry-After)."`
	DisableAfter        time.Duration `default:"120h" env:"HOOKD_DISABLE_AFTER" help:"Disable an endpoint (and emit endpoint.disabled) once every attempt to it has failed for this long; 0 never disables."`
	Concurrency         int           `default:"256" env:"HOOKD_CONCURRENCY" help:"Delivery attempts in flight at once, across all endpoints."`
	MaxInFlight         int           `default:"32" env:"HOOKD_MAX_IN_FLIGHT" help:"Default attempts in flight per endpoint."`
	ShutdownTimeout     time.Duration `default:"30s" env:"HOOKD_SHUTDOWN_TIMEOUT" help:"How long SIGTERM waits for requests and attempts in flight."`
	GCHeapFloor         int           `name:"gc-heap-floor" default:"64" env:"HOOKD_GC_HEAP_FLOOR" help:"Heap, in MiB, that Go's garbage collector lets grow before it runs, while the live heap is under half of it (beyond, Go's default: twice the live heap). hookd's live heap is a few MiB, and Go's default goal of twice that made it collect dozens of times a second under load. 0: Go's default. GOGC or GOMEMLIMIT in the environment take precedence."`
	PprofAddr           string        `name:"pprof-addr" env:"HOOKD_PPROF_ADDR" help:"Serve Go's profiles (/debug/pprof/) on this address, e.g. 127.0.0.1:6060. Unauthenticated: use a loopback address. Default off."`
	LogFormat           string        `default:"text" enum:"text,json" env:"HOOKD_LOG_FORMAT" help:"Log format: text or json."`
	LogLevel            string        `default:"info" enum:"debug,info,warn,error" env:"HOOKD_LOG_LEVEL" help:"Log level."`
}

// config turns the flags into an app.Config.
func (c *serveCmd) config(rc runContext) (app.Config, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return app.Config{}, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(rc.stderr, opts)
	if c.LogFormat == "json" {
		h = slog.NewJSONHandler(rc.stderr, opts)
	}
	cfg := app.Config{
		Addr:              c.Addr,
		DataDir:           c.DataDir,
		DatabaseURL:       c.DatabaseURL,
		Role:              c.Role,
		AdminKey:          c.AdminKey,
		Policy:            netguard.Policy{AllowHTTP: c.Dev || c.AllowHTTP, AllowPrivate: c.Dev || c.AllowPrivateTargets},
		MaxBodyBytes:      c.MaxBodySize,
		MaxHeaderBytes:    c.MaxHeaderSize,
		ReadHeaderTimeout: c.ReadHeaderTimeout,
		ReadTimeout:       c.ReadTimeout,
		WriteTimeout:      c.WriteTimeout,
		IdleTimeout:       c.IdleTimeout,
		KeyRateLimit:      c.APIRateLimit,
		KeyRateBurst:      c.APIRateBurst,
		PublishRateLimit:  c.PublishRateLimit,
		PublishRateBurst:  c.PublishRateBurst,
		AuditFailureRate:  c.AuditFailureRate,
		ShutdownTimeout:   c.ShutdownTimeout,
		PprofAddr:         c.PprofAddr,
		Logger:            slog.New(h),
		Engine: delivery.Config{
			Concurrency:    c.Concurrency,
			MaxInFlight:    c.MaxInFlight,
			AttemptTimeout: c.AttemptTimeout,
			Lease:          c.Lease,
			DisableAfter:   c.DisableAfter,
			Retry:          hookd.RetryPolicy{MaxAttempts: c.RetryMaxAttempts, InitialInterval: c.RetryInitial, MaxInterval: c.RetryMax},
		},
	}
	if c.Lease < 0 || (c.Lease > 0 && c.Lease <= c.AttemptTimeout) {
		return cfg, fmt.Errorf("--lease must be longer than --attempt-timeout (%s), or an instance could lose a delivery it is still attempting", c.AttemptTimeout)
	}
	switch {
	case c.DisableAfter < 0:
		return cfg, fmt.Errorf("--disable-after must not be negative (0 never disables)")
	case c.DisableAfter == 0:
		cfg.Engine.DisableAfter = -1 // never
	}
	if c.ShutdownTimeout <= 0 {
		return cfg, fmt.Errorf("--shutdown-timeout must be positive")
	}
	if err := c.checkLimits(); err != nil {
		return cfg, err
	}
	if c.APIRateLimit == 0 {
		cfg.KeyRateLimit = -1 // unlimited
	}
	if c.AuditFailureRate == 0 {
		cfg.AuditFailureRate = -1 // a record for every failure
	}
	if c.AdminKey != "" && len(c.AdminKey) < 32 {
		return cfg, fmt.Errorf("HOOKD_ADMIN_KEY must be at least 32 characters (it is stored as a fast hash, so it must not be guessable)")
	}
	if err := cfg.Engine.Retry.Validate(); err != nil || c.RetryMaxAttempts < 1 {
		return cfg, fmt.Errorf("invalid retry flags: attempts must be 1–%d and intervals 0–%s with initial ≤ max", hookd.MaxRetryAttempts, hookd.MaxRetryInterval)
	}
	for _, v := range c.TrustedProxies {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		pfx, err := netip.ParsePrefix(v)
		if err != nil {
			a, aErr := netip.ParseAddr(v)
			if aErr != nil {
				return cfg, fmt.Errorf("--trusted-proxies: %q is not an address or CIDR prefix", v)
			}
			pfx = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		if pfx.Addr().Is4In6() && pfx.Bits() >= 96 {
			pfx = netip.PrefixFrom(pfx.Addr().Unmap(), pfx.Bits()-96)
		}
		cfg.TrustedProxies = append(cfg.TrustedProxies, pfx.Masked())
	}
	if c.Role == app.RoleWorker && c.DatabaseURL == "" {
		return cfg, fmt.Errorf("--role %s needs --database-url (HOOKD_DATABASE_URL): the embedded store serves one process", c.Role)
	}
	if c.MasterKey != "" {
		key, err := secret.ParseKey(c.MasterKey)
		if err != nil {
			return cfg, fmt.Errorf("HOOKD_MASTER_KEY: %w", err)
		}
		cfg.MasterKey = key
	}
	return cfg, nil
}

// checkLimits validates the server's timeouts and limits.
func (c *serveCmd) checkLimits() error {
	for _, f := range []struct {
		name string
		v    int64
	}{{"--max-body-size", c.MaxBodySize}, {"--max-header-size", int64(c.MaxHeaderSize)},
		{"--read-header-timeout", int64(c.ReadHeaderTimeout)}, {"--read-timeout", int64(c.ReadTimeout)}, {"--idle-timeout", int64(c.IdleTimeout)}} {
		if f.v <= 0 {
			return fmt.Errorf("%s must be positive", f.name)
		}
	}
	switch {
	case c.ReadHeaderTimeout > c.ReadTimeout:
		return fmt.Errorf("--read-header-timeout (%s) must not exceed --read-timeout (%s), which covers the headers too", c.ReadHeaderTimeout, c.ReadTimeout)
	case c.WriteTimeout < 0 || (c.WriteTimeout > 0 && c.WriteTimeout <= c.AttemptTimeout):
		return fmt.Errorf("--write-timeout must be longer than --attempt-timeout (%s): POST /api/webhooks/{id}/test waits for one attempt before it answers", c.AttemptTimeout)
	case c.GCHeapFloor < 0 || c.GCHeapFloor > 1<<20:
		return fmt.Errorf("--gc-heap-floor must be 0 (Go's default) to 1048576 MiB")
	case c.APIRateLimit < 0 || c.APIRateBurst < 0 || c.PublishRateLimit < 0 || c.PublishRateBurst < 0 || c.AuditFailureRate < 0:
		return fmt.Errorf("rate limits and bursts must not be negative (a rate of 0 is unlimited)")
	}
	return nil
}

// Run serves until rc.ctx is cancelled (SIGINT or SIGTERM), then shuts down.
func (c *serveCmd) Run(rc runContext) error {
	cfg, err := c.config(rc)
	if err != nil {
		return err
	}
	defer heapfloor.Keep(int64(c.GCHeapFloor) << 20)()
	a, err := app.New(cfg)
	if err != nil {
		return err
	}
	if err := a.Start(rc.ctx); err != nil {
		return err
	}
	// One write, so that whoever sees the address sees the rest of the banner too.
	var banner strings.Builder
	fmt.Fprintf(&banner, "hookd %s listening on %s\n", app.Version, displayURL(a.Addr()))
	if c.DatabaseURL != "" {
		fmt.Fprintf(&banner, "store: postgres, role: %s\n", c.Role)
	} else if c.Role == app.RoleAPI {
		fmt.Fprintln(&banner, "role: api: events are stored, not delivered, until hookd runs with --role all on this data dir")
	}
	if addr := a.PprofAddr(); addr != "" {
		fmt.Fprintf(&banner, "pprof listening on http://%s/debug/pprof/\n", addr)
	}
	if a.AdminKeyFile != "" {
		abs, _ := filepath.Abs(a.AdminKeyFile)
		fmt.Fprintf(&banner, "admin key written to %s\n", abs)
	} else if path := filepath.Join(cfg.DataDir, "admin.key"); c.AdminKey == "" && fileExists(path) {
		abs, _ := filepath.Abs(path)
		fmt.Fprintf(&banner, "admin key file: %s\n", abs)
	}
	if cfg.Policy.AllowHTTP || cfg.Policy.AllowPrivate {
		fmt.Fprintln(&banner, "warning: development mode: http and private-network targets are allowed")
	}
	fmt.Fprint(rc.stdout, banner.String())
	<-rc.ctx.Done()
	fmt.Fprintln(rc.stdout, "shutting down")
	ctx, cancel := context.WithTimeout(context.Background(), c.ShutdownTimeout)
	defer cancel()
	return a.Stop(ctx)
}

// displayURL turns a listen address into a URL to show: an unspecified host
// (":8080", "[::]:8080") is shown as localhost, noting every interface.
func displayURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		return "http://localhost:" + port + " (all interfaces)"
	}
	return "http://" + net.JoinHostPort(host, port)
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
