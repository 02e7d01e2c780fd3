package hookd

import "time"

// Actor types of audit records.
const (
	ActorAdmin     = "admin"     // the admin key
	ActorKey       = "key"       // an organization key
	ActorPartner   = "partner"   // a partner's API key
	ActorAnonymous = "anonymous" // no valid credential
)

// Audit results.
const (
	AuditSuccess = "success"
	AuditFailure = "failure"
)

// AuditRecord is one entry of the append-only audit log: an inbound authentication
// attempt or a management action. It never holds a secret or a key, only their ids.
type AuditRecord struct {
	ID        string    // aud_…
	OrgID     string    // the organization concerned, "" if none is known
	Time      time.Time //
	ActorType string    // ActorAdmin, ActorKey, ActorPartner or ActorAnonymous
	Actor     string    // key or partner id, "" if anonymous
	Action    string    // e.g. "inbound.authenticate", "endpoint.create"
	Target    string    // the object acted on, e.g. an endpoint id
	Result    string    // AuditSuccess or AuditFailure
	Reason    string    // for a failure: the error code
	ClientIP  string    //
	Status    int       // the HTTP status answered
	// Count is how many attempts alike the record stands for: failures that
	// came faster than they could be logged one by one are summed into one
	// record per kind and client (see httpapi.Config.AuditFailureRate). Zero
	// is stored as 1.
	Count int
}

// AuditFilter selects audit records. Zero fields do not filter.
type AuditFilter struct {
	OrgID  string
	Since  time.Time
	Action string
	Actor  string
	Page
}
