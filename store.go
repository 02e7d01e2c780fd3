package hookd

import (
	"context"
	"time"
)

// Page selects one page of a list: at most Limit items after the opaque Cursor
// returned with the previous page ("" for the first page). Lists are newest first.
type Page struct {
	Limit  int
	Cursor string
}

// List limits.
const (
	DefaultPageLimit = 50
	MaxPageLimit     = 500
	// MaxPageDataBytes bounds the event data in one page of events: a page ends
	// early (with a cursor) once its events hold this much, so that no list
	// request holds hundreds of large payloads in memory.
	MaxPageDataBytes = 4 << 20
)

// EndpointFilter selects endpoints. An empty OrgID means every organization (admin).
type EndpointFilter struct {
	OrgID string
	Page
}

// EventFilter selects events. Zero fields do not filter.
type EventFilter struct {
	OrgID string
	Type  string
	Since time.Time
	Page
}

// DeliveryFilter selects deliveries. Zero fields do not filter.
type DeliveryFilter struct {
	OrgID      string
	EndpointID string
	EventID    string
	Status     string
	Page
}

// PublishResult is the fate of one published event.
type PublishResult struct {
	Event      *Event // the stored event: the original one for a duplicate
	Deliveries int    // deliveries the event has
	Duplicate  bool   // the id or idempotency key was already used in the organization
}

// ClaimParams says which due deliveries to lease.
type ClaimParams struct {
	Owner   string        // the claiming engine, for diagnostics
	Limit   int           // at most this many
	Now     time.Time     // deliveries due at or before Now, whose lease expired before Now
	Lease   time.Duration // how long the claim is exclusive
	Exclude []string      // endpoint ids not to claim for (saturated or rate-limited)
	// MaxInFlight caps, per endpoint that sets no max_in_flight of its own, how
	// many of its deliveries may be leased at once (0 = no cap).
	MaxInFlight int
	// Caps lowers the cap of some endpoints further (e.g. to their rate limit's
	// tokens).
	Caps map[string]int
	// PerEndpoint, if positive, caps every endpoint's share of this claim.
	PerEndpoint int
}

// Release returns a claimed delivery unattempted, due again at NextAttemptAt.
type Release struct {
	DeliveryID    string
	Lease         string
	NextAttemptAt time.Time
}

// ReplayParams selects an endpoint's deliveries to re-queue.
type ReplayParams struct {
	OrgID      string    // "" = any (admin)
	EndpointID string    //
	Since      time.Time // deliveries created at or after Since
	Until      time.Time // and before Until (zero = no bound)
	Status     string    // only deliveries in this status ("" = every status but pending)
	Now        time.Time // when they become due
}

// Store is hookd's one storage seam. Every method is safe for concurrent use. A method
// that takes an orgID treats "" as "any organization" (the admin key's view) and
// answers ENOTFOUND for objects of another organization. Every write is durable
// (committed) when the method returns nil.
type Store interface {
	// CreateOrganization stores o. ECONFLICT if its id is taken.
	CreateOrganization(ctx context.Context, o *Organization) error
	// Organization returns the organization with id. ENOTFOUND if none.
	Organization(ctx context.Context, id string) (*Organization, error)
	// UpdateOrganization applies fn to the organization inside one transaction and
	// stores its name, quota and overage setting. It returns fn's error (wrapped),
	// or ENOTFOUND.
	UpdateOrganization(ctx context.Context, id string, fn func(*Organization) error) (*Organization, error)
	// Usage returns an organization's count of accepted events in period ("2006-01").
	// ENOTFOUND if there is no such organization.
	Usage(ctx context.Context, orgID, period string) (*Usage, error)

	// CreateAPIKey stores k. ENOTFOUND if k.OrgID names no organization.
	CreateAPIKey(ctx context.Context, k *APIKey) error
	// APIKeyByHash returns the key with that hash. ENOTFOUND if none.
	APIKeyByHash(ctx context.Context, hash string) (*APIKey, error)
	// DeleteAPIKey deletes organization orgID's key id, which authenticates
	// nothing from then on. ENOTFOUND if orgID has no such key (admin keys
	// belong to no organization and are not deleted this way).
	DeleteAPIKey(ctx context.Context, orgID, id string) error
	// CountAdminKeys returns how many admin keys exist.
	CountAdminKeys(ctx context.Context) (int, error)

	// CreateEndpoint stores e, sealing its secrets. ENOTFOUND if its organization does not exist.
	CreateEndpoint(ctx context.Context, e *Endpoint) error
	// Endpoint returns an endpoint with its secrets opened. ENOTFOUND if none.
	Endpoint(ctx context.Context, orgID, id string) (*Endpoint, error)
	// ListEndpoints returns a page of endpoints, oldest first, and the next cursor ("" at the end).
	ListEndpoints(ctx context.Context, f EndpointFilter) ([]*Endpoint, string, error)
	// UpdateEndpoint applies fn to the endpoint inside one transaction and stores the
	// result; fn must not block, and its changes to ID and OrgID are not stored. It returns fn's error (wrapped; errors.Is and
	// ErrorCode see through it), or ENOTFOUND. Changing an endpoint from FIFO to
	// unordered makes every delivery that waited behind its head due at once.
	UpdateEndpoint(ctx context.Context, orgID, id string, fn func(*Endpoint) error) (*Endpoint, error)
	// DeleteEndpoint removes an endpoint and its deliveries. ENOTFOUND if none.
	DeleteEndpoint(ctx context.Context, orgID, id string) error

	// Publish stores events and their deliveries atomically: each event whose id (or
	// idempotency key) is new in its organization gets a pending delivery for every
	// enabled endpoint subscribed to its type and a skipped one for every disabled
	// one; a duplicate creates nothing and returns the original. Each delivery is
	// created, and due, at its event's CreatedAt (a FIFO endpoint's delivery that
	// has older ones pending waits for them instead). ENOTFOUND if an event's
	// organization does not exist; then nothing is stored.
	//
	// Every new event counts in its organization's usage for the month of its
	// CreatedAt. If that takes usage past a monthly quota that allows no overage,
	// Publish fails with EQUOTA and stores nothing. Usage reaching a threshold of
	// the quota (UsageThresholds) for the first time in the month publishes, in the
	// same transaction, a usage_threshold event (which does not count).
	Publish(ctx context.Context, events []*Event) ([]PublishResult, error)
	// Event returns an event and its deliveries. ENOTFOUND if none.
	Event(ctx context.Context, orgID, id string) (*Event, []*Delivery, error)
	// ListEvents returns a page of events, newest first; the page ends early once
	// its events' data reaches MaxPageDataBytes.
	ListEvents(ctx context.Context, f EventFilter) ([]*Event, string, error)

	// Delivery returns a delivery and its attempts, oldest first. ENOTFOUND if none.
	Delivery(ctx context.Context, orgID, id string) (*Delivery, []*Attempt, error)
	// ListDeliveries returns a page of deliveries, newest first.
	ListDeliveries(ctx context.Context, f DeliveryFilter) ([]*Delivery, string, error)
	// RetryDelivery makes a delivery pending and due at now, with a fresh retry
	// budget. ECONFLICT while an attempt of it is in flight (its lease is live).
	RetryDelivery(ctx context.Context, orgID, id string, now time.Time) (*Delivery, error)
	// Replay re-queues an endpoint's deliveries selected by p and returns how many.
	Replay(ctx context.Context, p ReplayParams) (int, error)
	// RecordTest stores a test event sent to one endpoint, its delivery and its attempt.
	RecordTest(ctx context.Context, ev *Event, d *Delivery, a *Attempt) error

	// ClaimDeliveries leases up to p.Limit due, unleased pending deliveries of
	// enabled endpoints, oldest due first, never more of one endpoint than its cap
	// (its max_in_flight, else p.MaxInFlight, lowered by p.Caps and p.PerEndpoint)
	// minus its deliveries already leased. For a FIFO endpoint only its oldest pending delivery can be
	// claimed, and only when no other of its deliveries is leased. A delivery whose
	// endpoint secret cannot be opened is not claimed: it records the error and is
	// due again a minute later.
	ClaimDeliveries(ctx context.Context, p ClaimParams) ([]*Claim, error)
	// CompleteDeliveries records attempts and the deliveries' new states atomically. An
	// outcome whose lease was lost records its attempt but leaves the delivery, its
	// endpoint and its Emit alone. A FIFO delivery that finishes makes the next one
	// of its endpoint due.
	CompleteDeliveries(ctx context.Context, outcomes []Outcome) error
	// ReleaseDeliveries ends leases without an attempt; a release whose lease is no
	// longer the delivery's current one changes nothing.
	ReleaseDeliveries(ctx context.Context, releases []Release) error

	// CreatePartner stores p, sealing its secrets. ENOTFOUND if its organization
	// does not exist; ECONFLICT if its id or API key hash is taken.
	CreatePartner(ctx context.Context, p *Partner) error
	// Partner returns a partner with its secrets opened. ENOTFOUND if none.
	Partner(ctx context.Context, orgID, id string) (*Partner, error)
	// PartnerByKeyHash returns the partner whose API key has that hash. ENOTFOUND if none.
	PartnerByKeyHash(ctx context.Context, hash string) (*Partner, error)
	// UpdatePartner applies fn to the partner inside one transaction and stores the
	// result; fn must not block, and its changes to ID, OrgID and APIKeyHash are not
	// stored. It returns fn's error (wrapped), or ENOTFOUND.
	UpdatePartner(ctx context.Context, orgID, id string, fn func(*Partner) error) (*Partner, error)
	// DeletePartner removes a partner and its rate limit bucket; its events stay.
	// ENOTFOUND if none.
	DeletePartner(ctx context.Context, orgID, id string) error
	// AcceptInbound publishes a partner's event exactly as Publish does (a duplicate
	// creates nothing and returns the original) and, in the same transaction,
	// appends accepted or, for a duplicate, duplicate to the audit log.
	AcceptInbound(ctx context.Context, ev *Event, accepted, duplicate *AuditRecord) (*PublishResult, error)
	// RetryEvent makes every failed delivery of an event pending and due at now, with
	// a fresh retry budget, and returns how many. ENOTFOUND if there is no such event.
	RetryEvent(ctx context.Context, orgID, id string, now time.Time) (int, error)
	// TakeToken takes one token from the bucket named key (created full), refilled
	// by limit up to now. Every process sharing the store shares the bucket.
	TakeToken(ctx context.Context, key string, limit RateLimit, now time.Time) (TokenResult, error)

	// AppendAudit appends records to the audit log, which nothing ever changes or
	// deletes; a record without an ID gets one, and a Count below 1 becomes 1.
	AppendAudit(ctx context.Context, records ...*AuditRecord) error
	// ListAudit returns a page of audit records, newest first.
	ListAudit(ctx context.Context, f AuditFilter) ([]*AuditRecord, string, error)

	// Ping checks that the store answers.
	Ping(ctx context.Context) error
	// Close releases the store's resources.
	Close() error
}
