package hookd

import "time"

// Delivery statuses.
const (
	DeliveryPending   = "pending"   // waiting for its next attempt
	DeliverySucceeded = "succeeded" // an attempt got a 2xx answer
	DeliveryFailed    = "failed"    // attempts exhausted, or the endpoint answered 410 Gone
	DeliverySkipped   = "skipped"   // the endpoint was disabled when the event was published
)

// ValidDeliveryStatus reports whether s is one of the delivery statuses.
func ValidDeliveryStatus(s string) bool {
	switch s {
	case DeliveryPending, DeliverySucceeded, DeliveryFailed, DeliverySkipped:
		return true
	}
	return false
}

// Delivery is one event on its way to one endpoint.
type Delivery struct {
	ID             string
	OrgID          string
	EventID        string
	EventType      string
	EndpointID     string
	Status         string
	Attempts       int       // attempts made in all
	CycleAttempts  int       // attempts since the delivery was last (re)queued; compared to the retry limit
	NextAttemptAt  time.Time // when a pending delivery is due
	LastStatusCode int       // status code of the last attempt, 0 if none or no answer
	LastError      string    // error of the last attempt
	InFlight       bool      // an attempt holds it (leased) right now
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// Attempt is one HTTP request made for a delivery, kept in the delivery log.
type Attempt struct {
	ID             string
	DeliveryID     string
	OrgID          string
	Number         int // 1 for the first attempt of the delivery
	URL            string
	RequestHeaders map[string]string // secrets masked
	StatusCode     int               // 0 when no answer was received
	ResponseBody   string            // the first MaxResponseExcerpt bytes
	Duration       time.Duration
	Error          string // "" on success
	CreatedAt      time.Time
}

// MaxResponseExcerpt is how much of a response body the delivery log keeps.
const MaxResponseExcerpt = 4096

// Claim is a pending delivery leased to one engine for one attempt, with everything
// needed to make it.
type Claim struct {
	Delivery Delivery
	Event    Event
	Endpoint Endpoint
	Lease    string // token that must accompany the outcome
}

// Outcome is the result of an attempt, reported back to the store.
type Outcome struct {
	DeliveryID string
	Lease      string
	Attempt    Attempt
	// Status is the delivery's new status: DeliveryPending (retry at NextAttemptAt),
	// DeliverySucceeded or DeliveryFailed.
	Status        string
	NextAttemptAt time.Time
	// DisableEndpoint disables the delivery's endpoint (410 Gone) with this reason.
	DisableEndpoint string
	// FailingFor, if set, makes DisableEndpoint conditional: the endpoint is
	// disabled only if its stored run of failures (FailingSince) began at least
	// this long before the attempt, so that an attempt that started before the
	// endpoint recovered cannot disable it.
	FailingFor time.Duration
	// Emit are operational events published in the same transaction.
	Emit []*Event
}
