package hookd

import (
	"encoding/json"
	"fmt"
	"regexp"
	"time"
)

// Operational event types that hookd itself emits.
const (
	EventEndpointDisabled = "endpoint.disabled" // hookd disabled an endpoint
	EventDeliveryFailed   = "delivery.failed"   // a delivery exhausted its attempts
	EventWebhookTest      = "webhook.test"      // sent by POST /api/webhooks/{id}/test
)

// Limits on events.
const (
	MaxEventIDLength   = 128
	MaxEventTypeLength = 128
	MaxBatchEvents     = 1000
	MaxIdempotencyKey  = 255
)

// Event is something that happened in an organization, fanned out to every
// subscribed, enabled endpoint.
type Event struct {
	ID             string          // client-supplied or evt_…; unique within the organization
	OrgID          string          //
	Type           string          // e.g. invoice.paid
	Data           json.RawMessage // the published data, byte for byte
	IdempotencyKey string          // from the Idempotency-Key header (see BatchIdempotencyKey), if any
	CreatedAt      time.Time       //
}

var (
	eventIDPattern   = regexp.MustCompile(`^[A-Za-z0-9_:-]{1,128}$`)
	eventTypePattern = regexp.MustCompile(`^[A-Za-z0-9_:-]+(\.[A-Za-z0-9_:-]+)*$`)
)

// ValidateEventID checks a client-supplied event id: 1–128 characters of
// A–Z a–z 0–9 _ - : (no ".", which signed content uses as a separator).
func ValidateEventID(id string) error {
	if !eventIDPattern.MatchString(id) {
		return FieldError("id", "must be 1–128 characters of A–Z a–z 0–9 _ - :")
	}
	return nil
}

// ValidateEventType checks an event type: dot-separated words of A–Z a–z 0–9 _ - :,
// at most 128 characters.
func ValidateEventType(t string) error {
	if len(t) > MaxEventTypeLength || !eventTypePattern.MatchString(t) {
		return FieldError("type", "must be 1–128 characters: dot-separated words of A–Z a–z 0–9 _ - :")
	}
	return nil
}

// Validate reports the first invalid field of an event published by a client or
// a partner as an EINVALID *Error: its id, its type (which must not be one hookd
// reserves for itself) and its data (any JSON value but null).
func (e *Event) Validate() error {
	if err := ValidateEventID(e.ID); err != nil {
		return err
	}
	if err := ValidateEventType(e.Type); err != nil {
		return err
	}
	if Reserved(e.Type) {
		return FieldError("type", "%q is reserved for events hookd emits itself", e.Type)
	}
	switch {
	case len(e.Data) == 0 || string(e.Data) == "null":
		return FieldError("data", "is required")
	case !json.Valid(e.Data):
		return FieldError("data", "must be JSON")
	}
	return nil
}

// ValidateIdempotencyKey checks an Idempotency-Key header: 1–255 printable ASCII
// characters.
func ValidateIdempotencyKey(k string) error {
	if k == "" || len(k) > MaxIdempotencyKey {
		return FieldError("Idempotency-Key", "must be 1–%d characters", MaxIdempotencyKey)
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return FieldError("Idempotency-Key", "must be printable ASCII")
		}
	}
	return nil
}

// BatchIdempotencyKey derives the key of the i-th event of a batch sent with the
// Idempotency-Key header key. It contains a control character, which a header key
// cannot, so derived keys never collide with keys clients send.
func BatchIdempotencyKey(key string, i int) string {
	return fmt.Sprintf("%s\x1fbatch\x1f%d", key, i)
}

// NewEndpointDisabledEvent returns the endpoint.disabled operational event for an
// endpoint that hookd disabled, with id evtID.
func NewEndpointDisabledEvent(evtID, orgID, endpointID, url, reason string, now time.Time) *Event {
	data, _ := json.Marshal(map[string]any{
		"webhook": endpointID, "url": url, "reason": reason, "disabled_at": now.UTC().Format(time.RFC3339),
	})
	return &Event{ID: evtID, OrgID: orgID, Type: EventEndpointDisabled, Data: data, CreatedAt: now}
}

// NewDeliveryFailedEvent returns the delivery.failed operational event for a delivery
// that exhausted its attempts, with id evtID.
func NewDeliveryFailedEvent(evtID string, d *Delivery, attempts int, lastErr string, now time.Time) *Event {
	data, _ := json.Marshal(map[string]any{
		"delivery": d.ID, "event": d.EventID, "event_type": d.EventType, "webhook": d.EndpointID,
		"attempts": attempts, "error": lastErr, "failed_at": now.UTC().Format(time.RFC3339),
	})
	return &Event{ID: evtID, OrgID: d.OrgID, Type: EventDeliveryFailed, Data: data, CreatedAt: now}
}

// EventUsageThreshold is the type of the event hookd emits when an organization's
// usage crosses a threshold of its monthly quota.
const EventUsageThreshold = "usage_threshold"

// NewUsageThresholdEvent returns the usage_threshold event of an organization whose
// usage reached percent of its quota, with id evtID. SPEC §8's fields (event,
// organization, usage, threshold) come with the percent, quota and period.
func NewUsageThresholdEvent(evtID, orgID string, usage, quota int64, percent int, period string, now time.Time) *Event {
	data, _ := json.Marshal(map[string]any{
		"event": EventUsageThreshold, "organization": orgID, "usage": usage,
		"threshold": UsageThreshold(quota, percent), "percent": percent, "quota": quota, "period": period,
	})
	return &Event{ID: evtID, OrgID: orgID, Type: EventUsageThreshold, Data: data, CreatedAt: now}
}

// Reserved reports whether t is a type only hookd itself may emit (the
// operational types); clients and partners cannot publish them. usage_threshold is
// not reserved: applications publish it too (the brief's own example).
func Reserved(t string) bool {
	return Operational(t)
}

// NoFollowUp reports whether a failure delivering an event of type t must emit no
// delivery.failed: hookd's operational events and usage_threshold (which
// hookd emits too), so that operational events never beget more about themselves.
func NoFollowUp(t string) bool {
	return Operational(t) || t == EventUsageThreshold
}

// Operational reports whether t is an operational event type that hookd emits about
// deliveries; failures delivering those emit no further operational events.
func Operational(t string) bool {
	return t == EventEndpointDisabled || t == EventDeliveryFailed || t == EventWebhookTest
}
