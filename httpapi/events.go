package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/ids"
)

// eventRequest is one event in POST /api/events or /api/events/batch.
type eventRequest struct {
	ID           *string         `json:"id"`
	Type         *string         `json:"type"`
	Data         json.RawMessage `json:"data"`
	Organization *string         `json:"organization"`
}

// event turns the request into a domain event, naming fields with prefix.
func (s *Server) event(req *eventRequest, p principal, prefix, idemKey string) (*hookd.Event, error) {
	org, err := owner(p, req.Organization)
	if err != nil {
		return nil, prefixed(prefix, err)
	}
	if req.Type == nil {
		return nil, hookd.FieldError(prefix+"type", "is required")
	}
	if !utf8.Valid(req.Data) {
		// encoding/json keeps a RawMessage's bytes as sent: stored, they would
		// be delivered as a body that is not JSON (RFC 8259 §8.1).
		return nil, hookd.Errorf(hookd.EINVALIDJSON, "the body is not valid JSON: %sdata holds bytes that are not UTF-8", prefix)
	}
	now := s.now()
	ev := &hookd.Event{ID: ids.NewAt("evt", now), OrgID: org, Type: *req.Type, Data: req.Data, IdempotencyKey: idemKey, CreatedAt: now}
	if req.ID != nil {
		ev.ID = *req.ID
		if strings.HasPrefix(ev.ID, "ptn_") {
			return nil, hookd.FieldError(prefix+"id", "the ptn_ prefix is reserved for events sent by partners")
		}
	}
	if err := ev.Validate(); err != nil {
		return nil, prefixed(prefix, err)
	}
	return ev, nil
}

// prefixed renames the field of an EINVALID error, e.g. "type" → "events[3].type".
func prefixed(prefix string, err error) error {
	if e, ok := err.(*hookd.Error); ok && prefix != "" && e.Field != "" {
		msg, _ := strings.CutPrefix(e.Message, e.Field+": ")
		return hookd.FieldError(prefix+e.Field, "%s", msg)
	}
	return err
}

type publishJSON struct {
	ID           string  `json:"id"`
	Type         string  `json:"type"`
	Organization string  `json:"organization"`
	Deliveries   int     `json:"deliveries"`
	Duplicate    bool    `json:"duplicate,omitempty"`
	CreatedAt    *string `json:"created_at"`
}

func toPublishJSON(r hookd.PublishResult) publishJSON {
	return publishJSON{ID: r.Event.ID, Type: r.Event.Type, Organization: r.Event.OrgID, Deliveries: r.Deliveries,
		Duplicate: r.Duplicate, CreatedAt: timeJSON(r.Event.CreatedAt)}
}

// idempotencyKey returns the request's Idempotency-Key header, validated.
func idempotencyKey(r *http.Request) (string, error) {
	k, ok := r.Header["Idempotency-Key"]
	if !ok {
		return "", nil
	}
	if len(k) != 1 {
		return "", hookd.FieldError("Idempotency-Key", "must be given once")
	}
	return k[0], hookd.ValidateIdempotencyKey(k[0])
}

func (s *Server) publishEvent(w http.ResponseWriter, r *http.Request, p principal) error {
	var req eventRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	idem, err := idempotencyKey(r)
	if err != nil {
		return err
	}
	ev, err := s.event(&req, p, "", idem)
	if err != nil {
		return err
	}
	res, err := s.cfg.Store.Publish(r.Context(), []*hookd.Event{ev})
	if err != nil {
		return err
	}
	status := http.StatusAccepted
	if res[0].Duplicate {
		status = http.StatusOK
	} else if res[0].Deliveries > 0 {
		s.cfg.Engine.Notify()
	}
	writeJSON(w, status, toPublishJSON(res[0]))
	return nil
}

func (s *Server) publishBatch(w http.ResponseWriter, r *http.Request, p principal) error {
	var req struct {
		Events       *[]json.RawMessage `json:"events"`
		Organization *string            `json:"organization"`
	}
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	if req.Events == nil || len(*req.Events) == 0 {
		return hookd.FieldError("events", "must hold 1 to %d events", hookd.MaxBatchEvents)
	}
	if len(*req.Events) > hookd.MaxBatchEvents {
		return hookd.FieldError("events", "must hold at most %d events", hookd.MaxBatchEvents)
	}
	idem, err := idempotencyKey(r)
	if err != nil {
		return err
	}
	evs := make([]*hookd.Event, len(*req.Events))
	for i, raw := range *req.Events {
		prefix := fmt.Sprintf("events[%d].", i)
		var er eventRequest
		if err := decodeJSON(raw, &er); err != nil {
			if hookd.ErrorCode(err) == hookd.EINVALIDJSON {
				return hookd.FieldError(fmt.Sprintf("events[%d]", i), "must be an event object")
			}
			return prefixed(prefix, err)
		}
		if er.Organization == nil {
			er.Organization = req.Organization
		}
		key := ""
		if idem != "" {
			key = hookd.BatchIdempotencyKey(idem, i)
		}
		ev, err := s.event(&er, p, prefix, key)
		if err != nil {
			return err
		}
		evs[i] = ev
	}
	res, err := s.cfg.Store.Publish(r.Context(), evs)
	if err != nil {
		return err
	}
	out := make([]publishJSON, len(res))
	for i, r := range res {
		out[i] = toPublishJSON(r)
	}
	s.cfg.Engine.Notify()
	writeJSON(w, http.StatusAccepted, map[string]any{"data": out})
	return nil
}

type eventJSON struct {
	ID           string          `json:"id"`
	Type         string          `json:"type"`
	Organization string          `json:"organization"`
	Data         json.RawMessage `json:"data"`
	CreatedAt    *string         `json:"created_at"`
	Deliveries   *[]deliveryJSON `json:"deliveries,omitempty"`
}

func toEventJSON(ev *hookd.Event) eventJSON {
	return eventJSON{ID: ev.ID, Type: ev.Type, Organization: ev.OrgID, Data: ev.Data, CreatedAt: timeJSON(ev.CreatedAt)}
}

func (s *Server) getEvent(w http.ResponseWriter, r *http.Request, p principal) error {
	ev, ds, err := s.cfg.Store.Event(r.Context(), scope(r, p), r.PathValue("id"))
	if err != nil {
		return err
	}
	j := toEventJSON(ev)
	dj := make([]deliveryJSON, len(ds))
	for i, d := range ds {
		dj[i] = toDeliveryJSON(d)
	}
	j.Deliveries = &dj
	writeJSON(w, http.StatusOK, j)
	return nil
}

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request, p principal) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	f := hookd.EventFilter{OrgID: scope(r, p), Type: r.URL.Query().Get("type"), Page: pg}
	if v := r.URL.Query().Get("since"); v != "" {
		if f.Since, err = parseTime("since", v); err != nil {
			return err
		}
	}
	evs, next, err := s.cfg.Store.ListEvents(r.Context(), f)
	if err != nil {
		return err
	}
	out := make([]eventJSON, len(evs))
	for i, ev := range evs {
		out[i] = toEventJSON(ev)
	}
	writeJSON(w, http.StatusOK, newList(out, next))
	return nil
}

// deliveryJSON is a delivery as the API shows it.
type deliveryJSON struct {
	ID             string         `json:"id"`
	Event          string         `json:"event"`
	EventType      string         `json:"event_type"`
	Webhook        string         `json:"webhook"`
	Organization   string         `json:"organization"`
	Status         string         `json:"status"`
	AttemptCount   int            `json:"attempt_count"`
	NextAttemptAt  *string        `json:"next_attempt_at"`
	LastStatusCode *int           `json:"last_status_code"`
	LastError      *string        `json:"last_error"`
	CreatedAt      *string        `json:"created_at"`
	UpdatedAt      *string        `json:"updated_at"`
	Attempts       *[]attemptJSON `json:"attempts,omitempty"`
}

func toDeliveryJSON(d *hookd.Delivery) deliveryJSON {
	j := deliveryJSON{ID: d.ID, Event: d.EventID, EventType: d.EventType, Webhook: d.EndpointID, Organization: d.OrgID,
		Status: d.Status, AttemptCount: d.Attempts, CreatedAt: timeJSON(d.CreatedAt), UpdatedAt: timeJSON(d.UpdatedAt)}
	if d.Status == hookd.DeliveryPending {
		j.NextAttemptAt = timeJSON(d.NextAttemptAt)
	}
	if d.LastStatusCode != 0 {
		j.LastStatusCode = &d.LastStatusCode
	}
	if d.LastError != "" {
		j.LastError = &d.LastError
	}
	return j
}

func (s *Server) listDeliveries(w http.ResponseWriter, r *http.Request, p principal) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := hookd.DeliveryFilter{OrgID: scope(r, p), EndpointID: q.Get("webhook"), EventID: q.Get("event"), Status: q.Get("status"), Page: pg}
	if f.Status != "" && !hookd.ValidDeliveryStatus(f.Status) {
		return hookd.FieldError("status", "must be pending, succeeded, failed or skipped")
	}
	ds, next, err := s.cfg.Store.ListDeliveries(r.Context(), f)
	if err != nil {
		return err
	}
	out := make([]deliveryJSON, len(ds))
	for i, d := range ds {
		out[i] = toDeliveryJSON(d)
	}
	writeJSON(w, http.StatusOK, newList(out, next))
	return nil
}

func (s *Server) getDelivery(w http.ResponseWriter, r *http.Request, p principal) error {
	d, as, err := s.cfg.Store.Delivery(r.Context(), p.orgID, r.PathValue("id"))
	if err != nil {
		return err
	}
	j := toDeliveryJSON(d)
	aj := make([]attemptJSON, len(as))
	for i, a := range as {
		aj[i] = toAttemptJSON(a)
	}
	j.Attempts = &aj
	writeJSON(w, http.StatusOK, j)
	return nil
}

func (s *Server) retryDelivery(w http.ResponseWriter, r *http.Request, p principal) error {
	d, err := s.cfg.Store.RetryDelivery(r.Context(), p.orgID, r.PathValue("id"), s.now())
	if err != nil {
		return err
	}
	noteTarget(r, d.OrgID, d.ID)
	s.cfg.Engine.Notify()
	writeJSON(w, http.StatusAccepted, toDeliveryJSON(d))
	return nil
}
