package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/secret"
	"github.com/hookd/hookd/signature"
)

// Inbound error codes (SPEC §6), beyond the shared ones.
const (
	codeMissingAPIKey    = "missing_api_key"
	codeInvalidAPIKey    = "invalid_api_key"
	codeInvalidSignature = "invalid_signature"
	codeStaleTimestamp   = "stale_timestamp"
	codeIPNotAllowed     = "ip_not_allowed"
	codePartnerDisabled  = "partner_disabled"
)

// Inbound headers.
const (
	headerAPIKey    = "X-Api-Key"
	headerTimestamp = "X-Timestamp"
	headerSignature = "X-Webhook-Signature"
)

// inboundError is a failed partner request: its status, code and message.
type inboundError struct {
	status        int
	code, message string
}

func (e *inboundError) Error() string { return e.code + ": " + e.message }

func inboundFail(status int, code, msg string) *inboundError {
	return &inboundError{status: status, code: code, message: msg}
}

// inbound is one partner request on its way through the checks, with the audit
// record it will leave.
type inbound struct {
	s       *Server
	w       http.ResponseWriter
	r       *http.Request
	partner *hookd.Partner
	rec     hookd.AuditRecord
}

func (s *Server) newInbound(w http.ResponseWriter, r *http.Request, action string) *inbound {
	return &inbound{s: s, w: w, r: r, rec: hookd.AuditRecord{Time: s.now(), ActorType: hookd.ActorAnonymous,
		Action: action, ClientIP: ipString(s.clientIP(r))}}
}

// fail answers err and appends the failure's audit record. Domain errors keep
// their codes; anything else is an internal error.
func (in *inbound) fail(err error) {
	status, code, msg := http.StatusInternalServerError, hookd.EINTERNAL, "internal error"
	var ie *inboundError
	var de *hookd.Error
	switch {
	case errors.As(err, &ie):
		status, code, msg = ie.status, ie.code, ie.message
	case errors.As(err, &de):
		status, code, msg = statusOf[de.Code], de.Code, de.Message
	default:
		in.s.cfg.Logger.Error("inbound request failed", "action", in.rec.Action, "err", err)
	}
	in.rec.Result, in.rec.Reason, in.rec.Status = hookd.AuditFailure, code, status
	in.appendAudit()
	var b errorBody
	b.Error.Code, b.Error.Message = code, msg
	if de != nil {
		b.Error.Field = de.Field
	}
	writeJSON(in.w, status, b)
}

func (in *inbound) appendAudit() {
	in.s.auditLog.append(in.r.Context(), in.rec)
}

// succeed answers v and appends the success's audit record.
func (in *inbound) succeed(status int, v any) {
	in.rec.Result, in.rec.Status = hookd.AuditSuccess, status
	in.appendAudit()
	writeJSON(in.w, status, v)
}

// authenticate runs the key, IP and rate checks, in that order (SPEC §6).
func (in *inbound) authenticate() error {
	key := in.r.Header.Get(headerAPIKey)
	if key == "" {
		return inboundFail(http.StatusUnauthorized, codeMissingAPIKey, "the x-api-key header is required")
	}
	hash := secret.HashKey(key)
	p, err := in.s.cfg.Store.PartnerByKeyHash(in.r.Context(), hash)
	if hookd.ErrorCode(err) == hookd.ENOTFOUND || (err == nil && !secret.EqualHash(p.APIKeyHash, hash)) {
		return inboundFail(http.StatusUnauthorized, codeInvalidAPIKey, "the x-api-key is not valid")
	}
	if err != nil {
		return err
	}
	in.partner = p
	in.rec.ActorType, in.rec.Actor, in.rec.OrgID = hookd.ActorPartner, p.ID, p.OrgID
	if !p.Enabled {
		return inboundFail(http.StatusForbidden, codePartnerDisabled, "this partner is disabled")
	}
	if ip := in.s.clientIP(in.r); !p.Allows(ip) {
		from := "requests from " + ip.String()
		if !ip.IsValid() {
			from = "requests whose X-Forwarded-For cannot be read"
		}
		return inboundFail(http.StatusForbidden, codeIPNotAllowed, from+" are not allowed for this partner")
	}
	tok, err := in.s.cfg.Store.TakeToken(in.r.Context(), p.ID, p.RateLimit, in.s.cfg.Now())
	if err != nil {
		return err
	}
	h := in.w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(p.RateLimit.Burst))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(tok.Remaining))
	if !tok.Allowed {
		h.Set("Retry-After", strconv.Itoa(int(math.Ceil(tok.RetryAfter.Seconds()))))
		return inboundFail(http.StatusTooManyRequests, hookd.ERATELIMIT, "too many requests; retry after the Retry-After header's seconds")
	}
	return nil
}

// verify runs the timestamp and signature checks (SPEC §6): x-timestamp within the
// tolerance, and x-webhook-signature = sha256=hex(HMAC-SHA256(secret, ts + "." + body))
// under the current secret or, during a rotation, the previous one.
func (in *inbound) verify(body []byte) error {
	now := in.s.cfg.Now()
	raw := in.r.Header.Get(headerTimestamp)
	ts, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || raw[0] == '+' || raw[0] == '-' || (len(raw) > 1 && raw[0] == '0') {
		return inboundFail(http.StatusUnauthorized, codeStaleTimestamp, "the x-timestamp header must be unix seconds")
	}
	if d := now.Sub(time.Unix(ts, 0)); d > in.s.cfg.InboundTolerance || d < -in.s.cfg.InboundTolerance {
		return inboundFail(http.StatusUnauthorized, codeStaleTimestamp, "the x-timestamp is more than "+
			strconv.Itoa(int(in.s.cfg.InboundTolerance.Seconds()))+" seconds from the server's clock")
	}
	if in.r.Header.Get(headerSignature) == "" {
		return inboundFail(http.StatusUnauthorized, codeInvalidSignature, "the x-webhook-signature header is required")
	}
	opts := signature.VerifyOptions{Tolerance: in.s.cfg.InboundTolerance, Now: in.s.cfg.Now}
	for _, sec := range in.partner.Secrets(now) {
		if signature.Verify(signature.Timestamped, headerSignature, sec, in.r.Header, body, opts) == nil {
			return nil
		}
	}
	return inboundFail(http.StatusUnauthorized, codeInvalidSignature,
		`the x-webhook-signature does not match: expected sha256=<hex HMAC-SHA256(secret, "{x-timestamp}.{raw body}")>`)
}

// inboundRequest is the body of POST /api/webhooks/events.
type inboundRequest struct {
	ID   *string         `json:"id"`
	Type *string         `json:"type"`
	Data json.RawMessage `json:"data"`
}

func (s *Server) inboundEvent(w http.ResponseWriter, r *http.Request) {
	in := s.newInbound(w, r, "inbound.event")
	// 1. size
	if r.ContentLength > s.cfg.MaxBodyBytes {
		in.fail(hookd.Errorf(hookd.ETOOLARGE, "the body exceeds %d bytes", s.cfg.MaxBodyBytes))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			err = hookd.Errorf(hookd.ETOOLARGE, "the body exceeds %d bytes", s.cfg.MaxBodyBytes)
		}
		in.fail(err)
		return
	}
	// 2–4. key, IP, rate; 5–6. timestamp, signature
	if err := in.authenticate(); err != nil {
		in.fail(err)
		return
	}
	if err := in.verify(body); err != nil {
		in.fail(err)
		return
	}
	// 7. body
	ev, err := s.inboundBody(in, body)
	if err != nil {
		in.fail(err)
		return
	}
	in.rec.Target, in.rec.Result = ev.ID, hookd.AuditSuccess
	accepted, duplicate := in.rec, in.rec
	accepted.Status, duplicate.Status = http.StatusAccepted, http.StatusOK
	res, err := s.cfg.Store.AcceptInbound(r.Context(), ev, &accepted, &duplicate)
	if err != nil {
		in.fail(err)
		return
	}
	if !res.Duplicate {
		s.cfg.Engine.Notify()
		writeJSON(w, http.StatusAccepted, map[string]any{
			"eventId": in.partnerEventID(ev.ID), "status": hookd.InboundQueued, "receivedAt": timeJSON(ev.CreatedAt),
		})
		return
	}
	st, err := s.inboundState(r.Context(), in)
	if err != nil {
		s.fail(w, r, err) // the event is stored and the audit record written; only the answer failed
		return
	}
	st.Duplicate = true
	writeJSON(w, http.StatusOK, st)
}

// inboundBody checks the body's media type and fields and returns the event.
func (s *Server) inboundBody(in *inbound, body []byte) (*hookd.Event, error) {
	mt, _, err := mime.ParseMediaType(in.r.Header.Get("Content-Type"))
	if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return nil, hookd.Errorf(hookd.EMEDIATYPE, "the body must be sent as Content-Type: application/json")
	}
	if !utf8.Valid(body) {
		// The raw body is signed and its data kept byte for byte: bytes that
		// are not UTF-8 would be delivered as a body that is not JSON.
		return nil, hookd.Errorf(hookd.EINVALIDJSON, "the body is not valid JSON: it holds bytes that are not UTF-8")
	}
	var req inboundRequest
	if err := decodeJSON(body, &req); err != nil {
		return nil, err
	}
	switch {
	case req.ID == nil:
		return nil, hookd.FieldError("id", "is required")
	case req.Type == nil:
		return nil, hookd.FieldError("type", "is required")
	}
	ev := &hookd.Event{ID: *req.ID, OrgID: in.partner.OrgID, Type: *req.Type, Data: req.Data, CreatedAt: s.now()}
	if err := ev.Validate(); err != nil { // the partner's own id, before it is namespaced
		return nil, err
	}
	ev.ID = hookd.InboundEventID(in.partner.ID, ev.ID)
	return ev, nil
}

func (in *inbound) partnerEventID(id string) string {
	return strings.TrimPrefix(id, in.partner.ID+":")
}

// inboundStateJSON is an inbound event's status (SPEC §6).
type inboundStateJSON struct {
	EventID     string                `json:"eventId"`
	Type        string                `json:"type"`
	Status      string                `json:"status"`
	ReceivedAt  *string               `json:"receivedAt"`
	ProcessedAt *string               `json:"processedAt"`
	Attempts    int                   `json:"attempts"`
	Error       *string               `json:"error"`
	Deliveries  []inboundDeliveryJSON `json:"deliveries"`
	Duplicate   bool                  `json:"duplicate,omitempty"`
}

type inboundDeliveryJSON struct {
	ID             string  `json:"id"`
	Webhook        string  `json:"webhook"`
	Status         string  `json:"status"`
	Attempts       int     `json:"attempts"`
	NextAttemptAt  *string `json:"nextAttemptAt"`
	LastStatusCode *int    `json:"lastStatusCode"`
	LastError      *string `json:"lastError"`
}

// inboundState reads the current state of the partner's event named by
// in.rec.Target.
func (s *Server) inboundState(ctx context.Context, in *inbound) (*inboundStateJSON, error) {
	ev, ds, err := s.cfg.Store.Event(ctx, in.partner.OrgID, in.rec.Target)
	if err != nil {
		if hookd.ErrorCode(err) == hookd.ENOTFOUND {
			return nil, hookd.NotFound("event", in.partnerEventID(in.rec.Target))
		}
		return nil, err
	}
	ie := hookd.InboundEvent{PartnerID: in.partner.ID, EventID: in.partnerEventID(ev.ID), Event: *ev, ReceivedAt: ev.CreatedAt, Deliveries: ds}
	st := &inboundStateJSON{EventID: ie.EventID, Type: ev.Type, Status: ie.Status(), ReceivedAt: timeJSON(ie.ReceivedAt),
		ProcessedAt: timeJSON(ie.ProcessedAt()), Attempts: ie.Attempts(), Error: optional(ie.Error()),
		Deliveries: make([]inboundDeliveryJSON, len(ds))}
	for i, d := range ds {
		dj := inboundDeliveryJSON{ID: d.ID, Webhook: d.EndpointID, Status: d.Status, Attempts: d.Attempts, LastError: optional(d.LastError)}
		if d.Status == hookd.DeliveryPending {
			dj.NextAttemptAt = timeJSON(d.NextAttemptAt)
		}
		if d.LastStatusCode != 0 {
			dj.LastStatusCode = &d.LastStatusCode
		}
		st.Deliveries[i] = dj
	}
	return st, nil
}

// partnerEvent authenticates a status or retry request and names its event.
func (in *inbound) partnerEvent(eventID string) error {
	if err := in.authenticate(); err != nil {
		return err
	}
	if eventID == "" {
		return hookd.FieldError("eventId", "is required")
	}
	if err := hookd.ValidateEventID(eventID); err != nil {
		return hookd.NotFound("event", eventID)
	}
	in.rec.Target = hookd.InboundEventID(in.partner.ID, eventID)
	return nil
}

func (s *Server) inboundStatus(w http.ResponseWriter, r *http.Request) {
	in := s.newInbound(w, r, "inbound.status")
	if err := in.partnerEvent(r.URL.Query().Get("eventId")); err != nil {
		in.fail(err)
		return
	}
	st, err := s.inboundState(r.Context(), in)
	if err != nil {
		in.fail(err)
		return
	}
	in.succeed(http.StatusOK, st)
}

func (s *Server) inboundRetry(w http.ResponseWriter, r *http.Request) {
	in := s.newInbound(w, r, "inbound.retry")
	if err := in.partnerEvent(r.PathValue("id")); err != nil {
		in.fail(err)
		return
	}
	st, err := s.inboundState(r.Context(), in)
	if err != nil {
		in.fail(err)
		return
	}
	if st.Status != hookd.InboundFailed {
		in.fail(hookd.Errorf(hookd.ECONFLICT, "only a failed event can be retried; this one is %s", st.Status))
		return
	}
	if _, err := s.cfg.Store.RetryEvent(r.Context(), in.partner.OrgID, in.rec.Target, s.now()); err != nil {
		in.fail(err)
		return
	}
	s.cfg.Engine.Notify()
	if st, err = s.inboundState(r.Context(), in); err != nil {
		in.fail(err)
		return
	}
	in.succeed(http.StatusAccepted, st)
}
