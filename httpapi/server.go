// Package httpapi serves hookd's management API (SPEC §1–§4): routes, JSON shapes,
// authentication, and the one table that maps domain error codes to HTTP statuses.
package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/netguard"
	"github.com/hookd/hookd/secret"
)

// Engine is what the API needs of the delivery engine.
type Engine interface {
	// Notify says that deliveries may have become due.
	Notify()
	// EndpointChanged says that an endpoint's settings changed.
	EndpointChanged(id string)
	// Send makes one attempt now, outside the queue.
	Send(ctx context.Context, c *hookd.Claim) hookd.Attempt
}

// Config configures a Server. Zero values mean the documented defaults.
type Config struct {
	// Store is the storage backend. Required.
	Store hookd.Store
	// Engine is told about new work and sends test events. Required.
	Engine Engine
	// Policy checks endpoint URLs when they are saved. Zero value: https and public
	// addresses only.
	Policy netguard.Policy
	// MaxBodyBytes caps request bodies: past it, 413 payload_too_large. Default
	// 1 MiB.
	MaxBodyBytes int64
	// MaxHeaderBytes caps the request line and header fields of a request, as
	// sent: past it, 431 header_too_large. Default 64 KiB. The http.Server must
	// read at least that much (its MaxHeaderBytes, which answers a plain-text 431
	// of its own when exceeded, should be larger: see HeaderReadLimit).
	MaxHeaderBytes int
	// KeyRate is how many requests per second each API key may make, on
	// average, on the management routes other than publishing; KeyBurst is how
	// many it may make at once (default 2×KeyRate, at least 1). Past them: 429
	// rate_limited with Retry-After. The buckets live in this process. Zero or
	// negative: unlimited (the default).
	KeyRate  float64
	KeyBurst int
	// PublishRate and PublishBurst are the same per key for POST /api/events and
	// POST /api/events/batch (one request each, however many events it holds),
	// which have a budget of their own. Zero or negative: unlimited (the default).
	PublishRate  float64
	PublishBurst int
	// AuditFailureRate is how many failed attempts per second (with bursts of
	// twice that) get an audit record each; failures beyond it are summed per
	// kind and client address into one record a second with their count, so a
	// flood of wrong keys cannot load the store with a write per request.
	// Successes are always recorded one by one. Default
	// DefaultAuditFailureRate; negative: every failure alone.
	AuditFailureRate float64
	// Retry is the default retry schedule, shown for endpoints that set none.
	// Default hookd.DefaultRetryPolicy.
	Retry hookd.RetryPolicy
	// TrustedProxies are the peers whose X-Forwarded-For is believed when finding a
	// client's address (for partner IP allowlists and the audit log). Default none.
	TrustedProxies []netip.Prefix
	// InboundTolerance is how far a partner's x-timestamp may be from the server
	// clock. Default 300s (SPEC §6).
	InboundTolerance time.Duration
	// Version is reported by the health check.
	Version string
	// HealthOnly serves GET /api/health alone (a worker instance); every other
	// route answers 404 not_found.
	HealthOnly bool
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives internal errors. Default slog.Default().
	Logger *slog.Logger
}

// Server is an http.Handler for the API. Safe for concurrent use.
type Server struct {
	cfg Config
	mux *http.ServeMux
	// keyLimit and publishLimit are the per-key buckets of the management and
	// publishing routes (nil: unlimited).
	keyLimit, publishLimit *keyLimiter
	// auditLog writes every audit record, summing failures that come too fast.
	auditLog *failureLog
}

// HTTP-level error codes, answered by the server itself rather than by the domain.
const (
	codeHeaderTooLarge = "header_too_large"
	codeRequestTimeout = "request_timeout"
)

// DefaultMaxHeaderBytes is Config.MaxHeaderBytes's default: 64 KiB, as AWS's load
// balancers allow.
const DefaultMaxHeaderBytes = 64 << 10

// HeaderReadLimit returns the http.Server MaxHeaderBytes that lets a Server with
// the header limit maxHeaderBytes (0: the default) answer every header above its
// limit, up to twice that, with its JSON 431. Beyond it, net/http cuts the
// request with a plain 431 before a Handler sees it, which bounds the memory a
// connection may hold while its header arrives.
func HeaderReadLimit(maxHeaderBytes int) int {
	if maxHeaderBytes <= 0 {
		maxHeaderBytes = DefaultMaxHeaderBytes
	}
	return 2 * maxHeaderBytes
}

// New returns a Server, or an error naming a missing Config field.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("httpapi: Config.Store is required")
	}
	if cfg.Engine == nil {
		return nil, errors.New("httpapi: Config.Engine is required")
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.MaxHeaderBytes <= 0 {
		cfg.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if cfg.KeyBurst <= 0 {
		cfg.KeyBurst = int(math.Ceil(2 * cfg.KeyRate))
	}
	if cfg.PublishBurst <= 0 {
		cfg.PublishBurst = int(math.Ceil(2 * cfg.PublishRate))
	}
	cfg.Retry = cfg.Retry.Or(hookd.DefaultRetryPolicy)
	if cfg.InboundTolerance <= 0 {
		cfg.InboundTolerance = 300 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.AuditFailureRate == 0 {
		cfg.AuditFailureRate = DefaultAuditFailureRate
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux(),
		keyLimit: newKeyLimiter(cfg.KeyRate, cfg.KeyBurst), publishLimit: newKeyLimiter(cfg.PublishRate, cfg.PublishBurst),
		auditLog: newFailureLog(cfg.Store, cfg.Logger, cfg.AuditFailureRate, time.Second)}
	s.routes()
	return s, nil
}

// Close writes the audit records of failures summed so far. Call it once the
// HTTP server has stopped serving requests, before closing the store; failures
// recorded after Close are written one by one.
func (s *Server) Close() {
	s.auditLog.close()
}

func (s *Server) routes() {
	m := s.mux
	m.HandleFunc("GET /api/health", s.health)
	if s.cfg.HealthOnly {
		return
	}

	m.Handle("POST /api/organizations", s.auth("organization.create", s.createOrganization))
	m.Handle("GET /api/organizations/{org}", s.auth("", s.getOrganization))
	m.Handle("PATCH /api/organizations/{org}", s.auth("organization.update", s.updateOrganization))
	m.Handle("GET /api/usage", s.auth("", s.getUsage))
	m.Handle("POST /api/organizations/{org}/keys", s.auth("key.create", s.createKey))
	m.Handle("DELETE /api/organizations/{org}/keys/{id}", s.auth("key.delete", s.deleteKey))

	m.Handle("POST /api/webhooks", s.auth("endpoint.create", s.createEndpoint))
	m.Handle("GET /api/webhooks", s.auth("", s.listEndpoints))
	m.Handle("GET /api/webhooks/{id}", s.auth("", s.getEndpoint))
	m.Handle("PATCH /api/webhooks/{id}", s.auth("endpoint.update", s.patchEndpoint))
	m.Handle("DELETE /api/webhooks/{id}", s.auth("endpoint.delete", s.deleteEndpoint))
	m.Handle("GET /api/webhooks/{id}/secret", s.auth("endpoint.secret.read", s.getSecret))
	m.Handle("POST /api/webhooks/{id}/secret/rotate", s.auth("endpoint.secret.rotate", s.rotateSecret))
	m.Handle("POST /api/webhooks/{id}/test", s.auth("endpoint.test", s.testEndpoint))
	m.Handle("POST /api/webhooks/{id}/replay", s.auth("endpoint.replay", s.replayEndpoint))

	m.Handle("POST /api/events", s.authPublish(s.publishEvent))
	m.Handle("POST /api/events/batch", s.authPublish(s.publishBatch))
	m.Handle("GET /api/events", s.auth("", s.listEvents))
	m.Handle("GET /api/events/{id}", s.auth("", s.getEvent))

	m.Handle("GET /api/deliveries", s.auth("", s.listDeliveries))
	m.Handle("GET /api/deliveries/{id}", s.auth("", s.getDelivery))
	m.Handle("POST /api/deliveries/{id}/retry", s.auth("delivery.retry", s.retryDelivery))

	m.Handle("POST /api/partners", s.auth("partner.create", s.createPartner))
	m.Handle("GET /api/partners/{id}", s.auth("", s.getPartner))
	m.Handle("PATCH /api/partners/{id}", s.auth("partner.update", s.patchPartner))
	m.Handle("DELETE /api/partners/{id}", s.auth("partner.delete", s.deletePartner))
	m.Handle("POST /api/partners/{id}/secret/rotate", s.auth("partner.secret.rotate", s.rotatePartnerSecret))

	m.HandleFunc("POST /api/webhooks/events", s.inboundEvent)
	m.HandleFunc("GET /api/webhooks/status", s.inboundStatus)
	m.HandleFunc("POST /api/webhooks/events/{id}/retry", s.inboundRetry)

	m.Handle("GET /api/audit", s.auth("", s.listAudit))
}

var probeMethods = []string{http.MethodGet, http.MethodPost, http.MethodPatch, http.MethodDelete, http.MethodPut}

// ServeHTTP routes r, answering unknown routes and methods with JSON errors, and
// headers above the limit with 431.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if n := headerSize(r); n > s.cfg.MaxHeaderBytes {
		w.Header().Set("Connection", "close")
		writeError(w, http.StatusRequestHeaderFieldsTooLarge, codeHeaderTooLarge,
			fmt.Sprintf("the request line and headers take %d bytes; at most %d are accepted", n, s.cfg.MaxHeaderBytes))
		return
	}
	if _, pattern := s.mux.Handler(r); pattern != "" {
		s.mux.ServeHTTP(w, r)
		return
	}
	var allow []string
	for _, m := range probeMethods {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, p := s.mux.Handler(probe); p != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" is not allowed here")
		return
	}
	writeError(w, http.StatusNotFound, hookd.ENOTFOUND, "no such route: "+r.URL.Path)
}

// statusOf is the one table from error codes to HTTP statuses.
var statusOf = map[string]int{
	hookd.EINVALID:      http.StatusBadRequest,
	hookd.EINVALIDJSON:  http.StatusBadRequest,
	hookd.ENOTFOUND:     http.StatusNotFound,
	hookd.ECONFLICT:     http.StatusConflict,
	hookd.EUNAUTHORIZED: http.StatusUnauthorized,
	hookd.EFORBIDDEN:    http.StatusForbidden,
	hookd.ETOOLARGE:     http.StatusRequestEntityTooLarge,
	hookd.EQUOTA:        http.StatusTooManyRequests,
	hookd.ERATELIMIT:    http.StatusTooManyRequests,
	hookd.EMEDIATYPE:    http.StatusUnsupportedMediaType,
	hookd.EINTERNAL:     http.StatusInternalServerError,
	codeHeaderTooLarge:  http.StatusRequestHeaderFieldsTooLarge,
	codeRequestTimeout:  http.StatusRequestTimeout,
}

// headerSize returns the size of r's request line and header fields as sent
// (without line folding or extra spaces, which net/http does not keep).
func headerSize(r *http.Request) int {
	n := len(r.Method) + 1 + len(r.RequestURI) + 1 + len(r.Proto) + 2
	if r.Host != "" {
		n += len("Host: ") + len(r.Host) + 2 // net/http moves it out of Header
	}
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + 2 + len(v) + 2
		}
	}
	return n + 2
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field,omitempty"`
	} `json:"error"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	var b errorBody
	b.Error.Code, b.Error.Message = code, msg
	writeJSON(w, status, b)
}

// fail answers with err: a domain error with its code and message, anything else as
// an internal error whose detail is logged, not shown.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := hookd.ErrorCode(err)
	if code == hookd.EINTERNAL {
		s.cfg.Logger.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	var b errorBody
	b.Error.Code, b.Error.Message = code, hookd.ErrorMessage(err)
	var de *hookd.Error
	if errors.As(err, &de) {
		b.Error.Field = de.Field
	}
	writeJSON(w, statusOf[code], b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// decode reads r's body as JSON into dst, whatever its Content-Type (so that
// curl -d works as written): 413 past the size limit, invalid_json for
// malformed JSON, invalid_field naming the field for a wrong type or unknown field.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, dst any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		return s.bodyError(err)
	}
	return decodeJSON(body, dst)
}

// bodyError classifies a failure to read a request body: 413 past the size
// limit, 408 when the body did not arrive within the server's read timeout, 400
// when it ended before its Content-Length; anything else is internal.
func (s *Server) bodyError(err error) error {
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return hookd.Errorf(hookd.ETOOLARGE, "the body exceeds %d bytes", s.cfg.MaxBodyBytes)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return hookd.Errorf(codeRequestTimeout, "the request body did not arrive in time")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return hookd.Errorf(hookd.EINVALIDJSON, "the body ended before its Content-Length")
	default:
		return fmt.Errorf("read body: %w", err)
	}
}

func decodeJSON(body []byte, dst any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return hookd.Errorf(hookd.EINVALIDJSON, "the body is empty; a JSON object is required")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	err := dec.Decode(dst)
	if err == nil && dec.More() {
		err = errors.New("trailing data")
	}
	if err == nil {
		if _, tErr := dec.Token(); tErr != io.EOF {
			err = errors.New("trailing data after the JSON value")
		}
	}
	var te *json.UnmarshalTypeError
	switch {
	case err == nil:
		// encoding/json matches keys without regard to case; the API does not.
		if !mayFoldCase(body, reflect.TypeOf(dst)) {
			return nil
		}
		if field := unknownField(body, reflect.TypeOf(dst), ""); field != "" {
			return hookd.FieldError(field, "is not a known field")
		}
		return nil
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			return hookd.Errorf(hookd.EINVALIDJSON, "the body must be a JSON object")
		}
		return hookd.FieldError(field, "must be of type %s", jsonType(te.Type.Kind().String()))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := unknownField(body, reflect.TypeOf(dst), "")
		if field == "" {
			field = strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		}
		return hookd.FieldError(field, "is not a known field")
	default:
		return hookd.Errorf(hookd.EINVALIDJSON, "the body is not valid JSON: %v", err)
	}
}

// fieldNames caches, per type, the JSON names of its struct fields, nested
// ones included (see mayFoldCase).
var fieldNames sync.Map // reflect.Type → []string

func jsonNames(t reflect.Type) []string {
	if v, ok := fieldNames.Load(t); ok {
		return v.([]string)
	}
	seen := map[reflect.Type]bool{}
	var names []string
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || seen[t] {
			return
		}
		seen[t] = true
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" {
				name = f.Name
			}
			names = append(names, name)
			walk(f.Type)
		}
	}
	walk(t)
	fieldNames.Store(t, names)
	return names
}

// mayFoldCase reports whether body might hold a key that encoding/json matched
// to one of t's fields without regard to case: a quoted string equal to a field
// name in ASCII case-insensitive comparison but not byte for byte, or anything
// it cannot judge that cheaply (non-ASCII bytes, escapes). When it reports
// false, no key was folded; when true, unknownField decides.
func mayFoldCase(body []byte, t reflect.Type) bool {
	lower := make([]byte, len(body))
	for i, c := range body {
		switch {
		case c >= 0x80 || c == '\\':
			return true
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		lower[i] = c
	}
	for _, name := range jsonNames(t) {
		want := `"` + name + `"`
		needle := []byte(strings.ToLower(want))
		for off := 0; ; {
			i := bytes.Index(lower[off:], needle)
			if i < 0 {
				break
			}
			if string(body[off+i:off+i+len(want)]) != want {
				return true
			}
			off += i + len(needle)
		}
	}
	return false
}

// unknownField returns the full path (such as "retry.max") of the first field in
// the JSON value body that type t has no place for, or "".
func unknownField(body []byte, t reflect.Type, path string) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		var obj map[string]json.RawMessage
		if json.Unmarshal(body, &obj) != nil {
			return ""
		}
		known := map[string]reflect.Type{}
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" {
				name = f.Name
			}
			known[name] = f.Type
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			ft, ok := known[k]
			if !ok {
				return join(path, k)
			}
			if f := unknownField(obj[k], ft, join(path, k)); f != "" {
				return f
			}
		}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 || t.Elem() == reflect.TypeFor[json.RawMessage]() {
			return "" // json.RawMessage, or a list of them: checked by whoever decodes them
		}
		var items []json.RawMessage
		if json.Unmarshal(body, &items) != nil {
			return ""
		}
		for i, item := range items {
			if f := unknownField(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); f != "" {
				return f
			}
		}
	}
	return ""
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func jsonType(kind string) string {
	switch kind {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "slice", "array":
		return "array"
	case "map", "struct":
		return "object"
	case "ptr", "interface":
		return "value"
	default:
		return "number"
	}
}

// now returns the current time as the store keeps it (UTC, microseconds), so an
// object shows the same times when created and when read back.
func (s *Server) now() time.Time {
	return s.cfg.Now().UTC().Truncate(time.Microsecond)
}

// health answers 200 when the store answers, 503 otherwise.
func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{"store": "ok"}
	status, code := "ok", http.StatusOK
	if err := s.cfg.Store.Ping(ctx); err != nil {
		s.cfg.Logger.Error("health check", "err", err)
		checks["store"], status, code = "unavailable", "unavailable", http.StatusServiceUnavailable
	}
	writeJSON(w, code, map[string]any{"status": status, "checks": checks, "version": s.cfg.Version})
}

// principal is the authenticated caller.
type principal struct {
	keyID string
	orgID string // "" for the admin key
}

func (p principal) admin() bool { return p.orgID == "" }

type handlerFunc func(w http.ResponseWriter, r *http.Request, p principal) error

// auth authenticates the bearer key, takes a token of the key's management
// bucket and runs h, answering its error. A route with an action is a management
// action: its outcome, successful or not, is appended to the audit log.
func (s *Server) auth(action string, h handlerFunc) http.Handler {
	return s.authLimited(s.keyLimit, action, h)
}

// authPublish is auth for the publishing routes, which have a budget of their
// own (Config.PublishRate) and are not audited.
func (s *Server) authPublish(h handlerFunc) http.Handler {
	return s.authLimited(s.publishLimit, "", h)
}

func (s *Server) authLimited(limit *keyLimiter, action string, h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var note *auditNote
		if action != "" {
			note = &auditNote{rec: hookd.AuditRecord{Time: s.now(), ActorType: hookd.ActorAnonymous, Action: action,
				ClientIP: ipString(s.clientIP(r))}}
			r = r.WithContext(context.WithValue(r.Context(), auditKey{}, note))
			rw := &statusWriter{ResponseWriter: w}
			w = rw
			defer func() { s.audit(r, note, rw.status) }()
		}
		token, ok := bearer(r.Header.Get("Authorization"))
		if !ok {
			s.failAudited(w, r, note, hookd.Errorf(hookd.EUNAUTHORIZED, "an Authorization: Bearer <key> header is required"))
			return
		}
		hash := secret.HashKey(token)
		k, err := s.cfg.Store.APIKeyByHash(r.Context(), hash)
		if hookd.ErrorCode(err) == hookd.ENOTFOUND || (err == nil && !secret.EqualHash(k.Hash, hash)) {
			s.failAudited(w, r, note, hookd.Errorf(hookd.EUNAUTHORIZED, "the API key is not valid"))
			return
		}
		if err != nil {
			s.failAudited(w, r, note, err)
			return
		}
		p := principal{keyID: k.ID, orgID: k.OrgID}
		if note != nil {
			note.rec.Actor, note.rec.OrgID, note.rec.ActorType = k.ID, k.OrgID, hookd.ActorKey
			if p.admin() {
				note.rec.ActorType = hookd.ActorAdmin
			}
		}
		if err := s.takeToken(w, limit, k.ID); err != nil {
			s.failAudited(w, r, note, err)
			return
		}
		if err := h(w, r, p); err != nil {
			s.failAudited(w, r, note, err)
		}
	})
}

// takeToken spends a token of keyID's bucket in limit (nil: unlimited),
// announcing the bucket in X-RateLimit-Limit and X-RateLimit-Remaining as the
// partner routes do (SPEC §6), and returns a rate_limited error, with
// Retry-After in whole seconds, when the bucket is empty.
func (s *Server) takeToken(w http.ResponseWriter, limit *keyLimiter, keyID string) error {
	if limit == nil {
		return nil
	}
	v := limit.take(keyID, s.cfg.Now())
	h := w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(limit.burst))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(v.remaining))
	if v.allowed {
		return nil
	}
	h.Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(v.retryAfter.Seconds())))))
	return hookd.Errorf(hookd.ERATELIMIT, "too many requests with this API key; retry after the Retry-After header's seconds")
}

// bearer returns the token of an "Authorization: Bearer <token>" header; the scheme
// name is case-insensitive (RFC 7235).
func bearer(h string) (string, bool) {
	scheme, token, ok := strings.Cut(h, " ")
	token = strings.TrimSpace(token)
	return token, ok && strings.EqualFold(scheme, "Bearer") && token != ""
}

// scope returns the organization a read is limited to: the key's own, or for the
// admin key the ?organization= parameter ("" = every organization).
func scope(r *http.Request, p principal) string {
	if !p.admin() {
		return p.orgID
	}
	return r.URL.Query().Get("organization")
}

// owner returns the organization an object being created belongs to: the key's own
// (a different "organization" field answers not_found), or for the admin key the
// required "organization" field.
func owner(p principal, field *string) (string, error) {
	switch {
	case !p.admin() && field != nil && *field != p.orgID:
		return "", hookd.NotFound("organization", *field)
	case !p.admin():
		return p.orgID, nil
	case field == nil || *field == "":
		return "", hookd.FieldError("organization", "is required with the admin key")
	default:
		return *field, nil
	}
}

// page reads ?limit= and ?cursor=.
func page(r *http.Request) (hookd.Page, error) {
	q := r.URL.Query()
	p := hookd.Page{Limit: hookd.DefaultPageLimit, Cursor: q.Get("cursor")}
	if v := q.Get("limit"); v != "" {
		var n int
		if _, err := fmt.Sscan(v, &n); err != nil || n < 1 || n > hookd.MaxPageLimit || fmt.Sprint(n) != v {
			return p, hookd.FieldError("limit", "must be an integer from 1 to %d", hookd.MaxPageLimit)
		}
		p.Limit = n
	}
	return p, nil
}

// list is the shape of every list response.
type list[T any] struct {
	Data       []T     `json:"data"`
	NextCursor *string `json:"next_cursor"`
}

func newList[T any](data []T, next string) list[T] {
	l := list[T]{Data: data}
	if l.Data == nil {
		l.Data = []T{}
	}
	if next != "" {
		l.NextCursor = &next
	}
	return l
}

// timeJSON formats t as RFC 3339 UTC, or nil for the zero time.
func timeJSON(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(time.RFC3339Nano)
	return &s
}

// parseTime reads an RFC 3339 time from a query parameter or field.
func parseTime(field, v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, hookd.FieldError(field, "must be an RFC 3339 time such as 2026-01-02T15:04:05Z")
	}
	return t, nil
}
