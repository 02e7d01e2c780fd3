package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/ids"
	"github.com/hookd/hookd/netguard"
	"github.com/hookd/hookd/signature"
)

type signatureJSON struct {
	Scheme *string `json:"scheme"`
	Header *string `json:"header"`
}

type retryJSON struct {
	MaxAttempts     *int     `json:"max_attempts"`
	InitialInterval *float64 `json:"initial_interval"`
	MaxInterval     *float64 `json:"max_interval"`
}

// endpointRequest is the body of POST and PATCH /api/webhooks.
type endpointRequest struct {
	Organization *string            `json:"organization"`
	URL          *string            `json:"url"`
	Event        *string            `json:"event"`
	Events       *[]string          `json:"events"`
	Secret       *string            `json:"secret"`
	Description  *string            `json:"description"`
	Enabled      *bool              `json:"enabled"`
	Headers      *map[string]string `json:"headers"`
	Signature    *signatureJSON     `json:"signature"`
	Payload      *string            `json:"payload"`
	Retry        *retryJSON         `json:"retry"`
	RateLimit    *float64           `json:"rate_limit_per_s"`
	MaxInFlight  *int               `json:"max_in_flight"`
	Ordering     *string            `json:"ordering"`
}

// endpointJSON is an endpoint as the API shows it.
type endpointJSON struct {
	ID             string            `json:"id"`
	Organization   string            `json:"organization"`
	URL            string            `json:"url"`
	Events         []string          `json:"events"`
	Description    string            `json:"description"`
	Enabled        bool              `json:"enabled"`
	DisabledReason *string           `json:"disabled_reason"`
	Headers        map[string]string `json:"headers"`
	Signature      struct {
		Scheme string  `json:"scheme"`
		Header *string `json:"header"`
	} `json:"signature"`
	Payload string `json:"payload"`
	Retry   struct {
		MaxAttempts     int     `json:"max_attempts"`
		InitialInterval float64 `json:"initial_interval"`
		MaxInterval     float64 `json:"max_interval"`
	} `json:"retry"`
	RateLimit   float64 `json:"rate_limit_per_s"`
	MaxInFlight int     `json:"max_in_flight"`
	Ordering    string  `json:"ordering"`
	Secret      string  `json:"secret,omitempty"`
	CreatedAt   *string `json:"created_at"`
	UpdatedAt   *string `json:"updated_at"`
}

func (s *Server) toEndpointJSON(e *hookd.Endpoint, withSecret bool) endpointJSON {
	j := endpointJSON{ID: e.ID, Organization: e.OrgID, URL: hookd.RedactURL(e.URL), Events: e.Events, Description: e.Description,
		Enabled: e.Enabled, Headers: e.Headers, Payload: e.Payload, RateLimit: e.RateLimit, MaxInFlight: e.MaxInFlight,
		Ordering: e.Ordering, CreatedAt: timeJSON(e.CreatedAt), UpdatedAt: timeJSON(e.UpdatedAt)}
	if e.DisabledReason != "" && !e.Enabled {
		j.DisabledReason = &e.DisabledReason
	}
	if j.Headers == nil {
		j.Headers = map[string]string{}
	}
	j.Signature.Scheme = e.SignatureScheme
	if e.SignatureHeader != "" {
		j.Signature.Header = &e.SignatureHeader
	}
	rp := e.Retry.Or(s.cfg.Retry)
	j.Retry.MaxAttempts, j.Retry.InitialInterval, j.Retry.MaxInterval = rp.MaxAttempts, rp.InitialInterval.Seconds(), rp.MaxInterval.Seconds()
	if withSecret {
		j.Secret = e.Secret
	}
	return j
}

func seconds(field string, v float64) (time.Duration, error) {
	if math.IsNaN(v) || v < 0 || v > hookd.MaxRetryInterval.Seconds() {
		return 0, hookd.FieldError(field, "must be between 0 and %d seconds", int(hookd.MaxRetryInterval.Seconds()))
	}
	return time.Duration(v * float64(time.Second)), nil
}

// apply copies the fields present in req onto e.
func (req *endpointRequest) apply(e *hookd.Endpoint) error {
	if req.URL != nil {
		e.URL = *req.URL
	}
	switch {
	case req.Event != nil && req.Events != nil:
		return hookd.FieldError("event", "give either event or events, not both")
	case req.Event != nil:
		if err := hookd.ValidateEventPattern(*req.Event); err != nil {
			return hookd.FieldError("event", "must be an event type, \"*\" or \"prefix.*\"")
		}
		e.Events = []string{*req.Event}
	case req.Events != nil:
		e.Events = *req.Events
	}
	if req.Description != nil {
		e.Description = *req.Description
	}
	if req.Enabled != nil {
		e.Enabled = *req.Enabled
		if e.Enabled {
			e.DisabledReason = ""
		}
	}
	if req.Headers != nil {
		e.Headers = *req.Headers
	}
	if req.Signature != nil {
		scheme := ""
		if req.Signature.Scheme != nil {
			scheme = *req.Signature.Scheme
		}
		sc, err := signature.ParseScheme(scheme)
		if err != nil {
			return hookd.FieldError("signature.scheme", "must be one of standard-webhooks, hmac-sha256, timestamped, shared-secret")
		}
		if string(sc) != e.SignatureScheme && e.PreviousSecret != "" {
			// The old secret belongs to the old scheme and may not even be usable
			// with the new one: a scheme change ends the rotation's grace period.
			e.PreviousSecret, e.PreviousSecretExpires = "", time.Time{}
		}
		e.SignatureScheme, e.SignatureHeader = string(sc), ""
		if req.Signature.Header != nil {
			e.SignatureHeader = *req.Signature.Header
		}
		if sc == signature.StandardWebhooks && e.SignatureHeader != "" {
			return hookd.FieldError("signature.header", "cannot be changed for the standard-webhooks scheme")
		}
	}
	if req.Payload != nil {
		e.Payload = *req.Payload
	}
	if req.Retry != nil {
		var err error
		if req.Retry.MaxAttempts != nil {
			if *req.Retry.MaxAttempts < 1 {
				return hookd.FieldError("retry.max_attempts", "must be between 1 and %d", hookd.MaxRetryAttempts)
			}
			e.Retry.MaxAttempts = *req.Retry.MaxAttempts
		}
		if req.Retry.InitialInterval != nil {
			if e.Retry.InitialInterval, err = seconds("retry.initial_interval", *req.Retry.InitialInterval); err != nil {
				return err
			}
		}
		if req.Retry.MaxInterval != nil {
			if e.Retry.MaxInterval, err = seconds("retry.max_interval", *req.Retry.MaxInterval); err != nil {
				return err
			}
		}
	}
	if req.RateLimit != nil {
		e.RateLimit = *req.RateLimit
	}
	if req.MaxInFlight != nil {
		e.MaxInFlight = *req.MaxInFlight
	}
	if req.Ordering != nil {
		e.Ordering = *req.Ordering
	}
	if req.Secret != nil {
		e.Secret = *req.Secret
	}
	return nil
}

// validateEndpoint checks everything about e, its target and its secret included.
func (s *Server) validateEndpoint(ctx context.Context, e *hookd.Endpoint, checkURL bool) error {
	if err := e.Validate(); err != nil {
		return err
	}
	sc, _ := signature.ParseScheme(e.SignatureScheme)
	if e.SignatureHeader != "" {
		if err := signature.ValidateHeader(sc, e.SignatureHeader); err != nil {
			return hookd.FieldError("signature.header", "%v", err)
		}
	}
	if err := signature.ValidateSecret(sc, e.Secret); err != nil {
		return hookd.FieldError("secret", "%v", err)
	}
	if sc == signature.SharedSecret && !strings.HasPrefix(strings.ToLower(e.URL), "https://") {
		return hookd.FieldError("signature.scheme", "shared-secret sends the secret itself, so it needs an https url")
	}
	if checkURL {
		return s.checkURL(ctx, e.URL)
	}
	return nil
}

// checkURL applies the target policy to a URL being saved: a refused target is the
// caller's invalid_field; any other failure (such as a cancelled request) is not.
func (s *Server) checkURL(ctx context.Context, raw string) error {
	_, err := s.cfg.Policy.CheckURL(ctx, raw)
	var te *netguard.TargetError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &te):
		return &hookd.Error{Code: hookd.EINVALID, Field: "url", Message: te.Reason}
	default:
		return fmt.Errorf("check url: %w", err)
	}
}

func (s *Server) createEndpoint(w http.ResponseWriter, r *http.Request, p principal) error {
	var req endpointRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	org, err := owner(p, req.Organization)
	if err != nil {
		return err
	}
	if req.URL == nil {
		return hookd.FieldError("url", "is required")
	}
	if req.Event == nil && req.Events == nil {
		return hookd.FieldError("events", "is required (or give a single \"event\")")
	}
	now := s.now()
	e := &hookd.Endpoint{
		ID: ids.New("ep"), OrgID: org, Enabled: true, SignatureScheme: string(signature.StandardWebhooks),
		Payload: hookd.PayloadEnvelope, Ordering: hookd.OrderingUnordered, CreatedAt: now, UpdatedAt: now,
	}
	if err := req.apply(e); err != nil {
		return err
	}
	if req.Secret == nil {
		e.Secret = signature.NewSecret()
	}
	if err := s.validateEndpoint(r.Context(), e, true); err != nil {
		return err
	}
	if err := s.cfg.Store.CreateEndpoint(r.Context(), e); err != nil {
		return err
	}
	noteTarget(r, e.OrgID, e.ID)
	writeJSON(w, http.StatusCreated, s.toEndpointJSON(e, true))
	return nil
}

func (s *Server) listEndpoints(w http.ResponseWriter, r *http.Request, p principal) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	eps, next, err := s.cfg.Store.ListEndpoints(r.Context(), hookd.EndpointFilter{OrgID: scope(r, p), Page: pg})
	if err != nil {
		return err
	}
	out := make([]endpointJSON, len(eps))
	for i, e := range eps {
		out[i] = s.toEndpointJSON(e, false)
	}
	writeJSON(w, http.StatusOK, newList(out, next))
	return nil
}

func (s *Server) getEndpoint(w http.ResponseWriter, r *http.Request, p principal) error {
	e, err := s.cfg.Store.Endpoint(r.Context(), p.orgID, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.toEndpointJSON(e, false))
	return nil
}

func (s *Server) patchEndpoint(w http.ResponseWriter, r *http.Request, p principal) error {
	var req endpointRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	if req.Organization != nil {
		return hookd.FieldError("organization", "cannot be changed")
	}
	if req.Secret != nil {
		return hookd.FieldError("secret", "cannot be patched; use POST /api/webhooks/{id}/secret/rotate")
	}
	id := r.PathValue("id")
	// The target check resolves DNS, so it runs before the update's transaction.
	if req.URL != nil {
		if _, err := s.cfg.Store.Endpoint(r.Context(), p.orgID, id); err != nil {
			return err
		}
		if err := s.checkURL(r.Context(), *req.URL); err != nil {
			return err
		}
	}
	e, err := s.cfg.Store.UpdateEndpoint(r.Context(), p.orgID, id, func(e *hookd.Endpoint) error {
		if err := req.apply(e); err != nil {
			return err
		}
		e.UpdatedAt = s.now()
		return s.validateEndpoint(r.Context(), e, false)
	})
	if err != nil {
		return err
	}
	noteTarget(r, e.OrgID, e.ID)
	s.cfg.Engine.EndpointChanged(e.ID) // and if enabled, queued retries resume at once
	writeJSON(w, http.StatusOK, s.toEndpointJSON(e, false))
	return nil
}

func (s *Server) deleteEndpoint(w http.ResponseWriter, r *http.Request, p principal) error {
	e, err := s.cfg.Store.Endpoint(r.Context(), p.orgID, r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := s.cfg.Store.DeleteEndpoint(r.Context(), p.orgID, e.ID); err != nil {
		return err
	}
	noteTarget(r, e.OrgID, e.ID)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type secretJSON struct {
	Secret                  string  `json:"secret"`
	PreviousSecretExpiresAt *string `json:"previous_secret_expires_at"`
}

func (s *Server) secretJSON(e *hookd.Endpoint) secretJSON {
	j := secretJSON{Secret: e.Secret}
	if e.PreviousSecret != "" && s.cfg.Now().Before(e.PreviousSecretExpires) {
		j.PreviousSecretExpiresAt = timeJSON(e.PreviousSecretExpires)
	}
	return j
}

func (s *Server) getSecret(w http.ResponseWriter, r *http.Request, p principal) error {
	e, err := s.cfg.Store.Endpoint(r.Context(), p.orgID, r.PathValue("id"))
	if err != nil {
		return err
	}
	noteTarget(r, e.OrgID, e.ID)
	writeJSON(w, http.StatusOK, s.secretJSON(e))
	return nil
}

// Rotation grace periods.
const (
	defaultGrace = 24 * time.Hour
	maxGrace     = 30 * 24 * time.Hour
)

// gracePeriod reads a rotation's grace_period in seconds (default 24 h).
func gracePeriod(v *float64) (time.Duration, error) {
	if v == nil {
		return defaultGrace, nil
	}
	if g := *v; math.IsNaN(g) || g < 0 || g > maxGrace.Seconds() {
		return 0, hookd.FieldError("grace_period", "must be between 0 and %d seconds", int(maxGrace.Seconds()))
	}
	return time.Duration(*v * float64(time.Second)), nil
}

// rotation is the body of a secret rotation: an optional new secret and the grace
// period of the one it replaces.
type rotation struct {
	secret *string
	grace  time.Duration
}

// decodeRotation reads {"secret"?, "grace_period"?}; an empty body is allowed.
func (s *Server) decodeRotation(w http.ResponseWriter, r *http.Request) (rotation, error) {
	var req struct {
		Secret      *string  `json:"secret"`
		GracePeriod *float64 `json:"grace_period"`
	}
	if r.ContentLength != 0 {
		if err := s.decode(w, r, &req); err != nil {
			return rotation{}, err
		}
	}
	grace, err := gracePeriod(req.GracePeriod)
	return rotation{secret: req.Secret, grace: grace}, err
}

// next returns the rotation's new secret, valid for scheme, or a generated one.
func (rot rotation) next(scheme signature.Scheme, generate func() string) (string, error) {
	if rot.secret == nil {
		return generate(), nil
	}
	if err := signature.ValidateSecret(scheme, *rot.secret); err != nil {
		return "", hookd.FieldError("secret", "%v", err)
	}
	return *rot.secret, nil
}

func (s *Server) rotateSecret(w http.ResponseWriter, r *http.Request, p principal) error {
	rot, err := s.decodeRotation(w, r)
	if err != nil {
		return err
	}
	e, err := s.cfg.Store.UpdateEndpoint(r.Context(), p.orgID, r.PathValue("id"), func(e *hookd.Endpoint) error {
		sc, _ := signature.ParseScheme(e.SignatureScheme)
		next, err := rot.next(sc, signature.NewSecret)
		if err != nil {
			return err
		}
		e.UpdatedAt = s.now()
		hookd.Rotate(&e.Secret, &e.PreviousSecret, &e.PreviousSecretExpires, next, e.UpdatedAt, rot.grace)
		return nil
	})
	if err != nil {
		return err
	}
	noteTarget(r, e.OrgID, e.ID)
	writeJSON(w, http.StatusOK, s.secretJSON(e))
	return nil
}

// attemptJSON is an attempt as the API shows it.
type attemptJSON struct {
	ID             string            `json:"id"`
	Delivery       string            `json:"delivery"`
	Number         int               `json:"number"`
	URL            string            `json:"url"`
	RequestHeaders map[string]string `json:"request_headers"`
	ResponseStatus *int              `json:"response_status"`
	ResponseBody   string            `json:"response_body"`
	Duration       float64           `json:"duration"`
	Error          *string           `json:"error"`
	Success        bool              `json:"success"`
	CreatedAt      *string           `json:"created_at"`
}

func toAttemptJSON(a *hookd.Attempt) attemptJSON {
	j := attemptJSON{ID: a.ID, Delivery: a.DeliveryID, Number: a.Number, URL: a.URL, RequestHeaders: a.RequestHeaders,
		ResponseBody: a.ResponseBody, Duration: a.Duration.Seconds(), Success: a.Error == "", CreatedAt: timeJSON(a.CreatedAt)}
	if a.StatusCode != 0 {
		j.ResponseStatus = &a.StatusCode
	}
	if a.Error != "" {
		j.Error = &a.Error
	}
	if j.RequestHeaders == nil {
		j.RequestHeaders = map[string]string{}
	}
	return j
}

func (s *Server) testEndpoint(w http.ResponseWriter, r *http.Request, p principal) error {
	e, err := s.cfg.Store.Endpoint(r.Context(), p.orgID, r.PathValue("id"))
	if err != nil {
		return err
	}
	now := s.now()
	data, _ := json.Marshal(map[string]string{"webhook": e.ID, "message": "This is a test event from hookd."})
	ev := &hookd.Event{ID: ids.NewAt("evt", now), OrgID: e.OrgID, Type: hookd.EventWebhookTest, Data: data, CreatedAt: now}
	d := &hookd.Delivery{ID: ids.NewAt("dlv", now), OrgID: e.OrgID, EventID: ev.ID, EventType: ev.Type, EndpointID: e.ID,
		Status: hookd.DeliveryPending, NextAttemptAt: now, CreatedAt: now, UpdatedAt: now}
	noteTarget(r, e.OrgID, e.ID)
	a := s.cfg.Engine.Send(r.Context(), &hookd.Claim{Delivery: *d, Event: *ev, Endpoint: *e})
	a.CreatedAt = a.CreatedAt.UTC().Truncate(time.Microsecond) // as the store keeps it
	d.Status = hookd.DeliverySucceeded
	if a.Error != "" {
		d.Status = hookd.DeliveryFailed
	}
	if err := s.cfg.Store.RecordTest(context.WithoutCancel(r.Context()), ev, d, &a); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"event": ev.ID, "status": d.Status, "attempt": toAttemptJSON(&a)})
	return nil
}

func (s *Server) replayEndpoint(w http.ResponseWriter, r *http.Request, p principal) error {
	var req struct {
		Since  *string `json:"since"`
		Until  *string `json:"until"`
		Status *string `json:"status"`
	}
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	if req.Since == nil {
		return hookd.FieldError("since", "is required")
	}
	rp := hookd.ReplayParams{OrgID: p.orgID, EndpointID: r.PathValue("id"), Now: s.now()}
	e, err := s.cfg.Store.Endpoint(r.Context(), p.orgID, rp.EndpointID)
	if err != nil {
		return err
	}
	if rp.Since, err = parseTime("since", *req.Since); err != nil {
		return err
	}
	if req.Until != nil {
		if rp.Until, err = parseTime("until", *req.Until); err != nil {
			return err
		}
		if !rp.Until.After(rp.Since) {
			return hookd.FieldError("until", "must be after since")
		}
	}
	if req.Status != nil {
		if !hookd.ValidDeliveryStatus(*req.Status) || *req.Status == hookd.DeliveryPending {
			return hookd.FieldError("status", `must be "failed", "succeeded" or "skipped"`)
		}
		rp.Status = *req.Status
	}
	n, err := s.cfg.Store.Replay(r.Context(), rp)
	if err != nil {
		return err
	}
	noteTarget(r, e.OrgID, e.ID)
	s.cfg.Engine.Notify()
	writeJSON(w, http.StatusAccepted, map[string]int{"replayed": n})
	return nil
}
