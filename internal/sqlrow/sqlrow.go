// Package sqlrow is the row form of hookd's domain types, shared by the SQL stores
// (SQLite and PostgreSQL keep the same columns): which columns a query selects,
// how a row is scanned into a domain value (opening its sealed secrets), and the
// values an insert or update writes (sealing them).
//
// Times are Unix microseconds; a pending delivery that waits outside the due range
// has next_attempt_at Parked; JSON-valued columns are TEXT.
package sqlrow

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/internal/cursor"
)

// Parked is the next_attempt_at of a pending delivery that waits outside the due
// range: behind an older delivery of its FIFO endpoint, or for its disabled
// endpoint to be enabled again.
const Parked int64 = 1 << 62

// Scanner is a row of either store's driver (*sql.Row, *sql.Rows, pgx.Row, pgx.Rows).
type Scanner interface{ Scan(dest ...any) error }

// Sealer encrypts secrets at rest; see package secret.
type Sealer interface {
	Seal(plaintext []byte) ([]byte, error)
	Open(sealed []byte) ([]byte, error)
}

// DecodeError is a row that was read but whose content cannot be decoded (bad
// JSON, a secret the sealer cannot open): a problem of that row, not of the database.
type DecodeError struct{ Err error }

func (e *DecodeError) Error() string { return e.Err.Error() }
func (e *DecodeError) Unwrap() error { return e.Err }

// US returns t as Unix microseconds, 0 for the zero time.
func US(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// FromUS is the inverse of US, in UTC.
func FromUS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}

// NextAttempt reads next_attempt_at: the zero time for a parked delivery, whose
// time depends on the deliveries ahead of it.
func NextAttempt(v int64) time.Time {
	if v == Parked {
		return time.Time{}
	}
	return FromUS(v)
}

// EndpointColumns returns the columns ScanEndpoint reads, of the endpoints table
// aliased e, led by its sequence column seq.
func EndpointColumns(seq string) string {
	return `e.` + seq + `, e.id, e.org_id, e.url, e.events, e.description, e.enabled, e.disabled_reason,
	e.headers, e.signature_scheme, e.signature_header, e.payload, e.retry_max_attempts, e.retry_initial_us,
	e.retry_max_us, e.rate_limit, e.max_in_flight, e.ordering, e.secret, e.previous_secret,
	e.previous_secret_expires, e.created_at, e.updated_at, e.failing_since`
}

// EndpointSetColumns names, in order, the columns EndpointValues returns values for.
const EndpointSetColumns = `url, events, description, enabled, disabled_reason, headers, signature_scheme,
	signature_header, payload, retry_max_attempts, retry_initial_us, retry_max_us, rate_limit, max_in_flight,
	ordering, secret, previous_secret, previous_secret_expires, created_at, updated_at, failing_since`

// EndpointSetCount is the number of EndpointSetColumns.
const EndpointSetCount = 21

// Placeholders returns n parameter placeholders separated by commas: "?" each,
// or with dollar "$from", "$from+1", … (PostgreSQL).
func Placeholders(n int, dollar bool, from int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		if dollar {
			b.WriteString("$" + strconv.Itoa(from+i))
		} else {
			b.WriteString("?")
		}
	}
	return b.String()
}

// ScanEndpoint reads EndpointColumns, preceded by the extra destinations, into a
// new endpoint and returns it with its sequence number. A row that cannot be
// decoded is a *DecodeError (with the sequence number set).
func ScanEndpoint(s Scanner, sealer Sealer, extra ...any) (*hookd.Endpoint, int64, error) {
	var r endpointRow
	if err := s.Scan(r.dest(extra)...); err != nil {
		return nil, 0, err
	}
	e, err := r.decode(sealer)
	return e, r.seq, err
}

// endpointRow holds EndpointColumns as scanned, before decoding.
type endpointRow struct {
	e                         hookd.Endpoint
	seq                       int64
	events, headers           string
	retryInitial, retryMax    int64
	secret, prev              []byte
	prevExp, created, updated int64
	failing                   int64
}

// dest returns the scan destinations: extra, then EndpointColumns.
func (r *endpointRow) dest(extra []any) []any {
	e := &r.e
	return append(extra, &r.seq, &e.ID, &e.OrgID, &e.URL, &r.events, &e.Description, &e.Enabled, &e.DisabledReason,
		&r.headers, &e.SignatureScheme, &e.SignatureHeader, &e.Payload, &e.Retry.MaxAttempts, &r.retryInitial,
		&r.retryMax, &e.RateLimit, &e.MaxInFlight, &e.Ordering, &r.secret, &r.prev, &r.prevExp, &r.created, &r.updated, &r.failing)
}

// decode decodes the JSON columns and opens the secrets.
func (r *endpointRow) decode(sealer Sealer) (*hookd.Endpoint, error) {
	e := r.e
	if err := json.Unmarshal([]byte(r.events), &e.Events); err != nil {
		return nil, &DecodeError{fmt.Errorf("decode endpoint events: %w", err)}
	}
	if err := json.Unmarshal([]byte(r.headers), &e.Headers); err != nil {
		return nil, &DecodeError{fmt.Errorf("decode endpoint headers: %w", err)}
	}
	e.Retry.InitialInterval = time.Duration(r.retryInitial) * time.Microsecond
	e.Retry.MaxInterval = time.Duration(r.retryMax) * time.Microsecond
	plain, err := sealer.Open(r.secret)
	if err != nil {
		return nil, &DecodeError{fmt.Errorf("open endpoint secret: %w", err)}
	}
	e.Secret = string(plain)
	if len(r.prev) > 0 {
		plain, err := sealer.Open(r.prev)
		if err != nil {
			return nil, &DecodeError{fmt.Errorf("open endpoint previous secret: %w", err)}
		}
		e.PreviousSecret = string(plain)
	}
	e.PreviousSecretExpires, e.CreatedAt, e.UpdatedAt = FromUS(r.prevExp), FromUS(r.created), FromUS(r.updated)
	e.FailingSince = FromUS(r.failing)
	return &e, nil
}

// EndpointValues returns the values of EndpointSetColumns for e, with its secrets sealed.
func EndpointValues(e *hookd.Endpoint, sealer Sealer) ([]any, error) {
	events, err := json.Marshal(e.Events)
	if err != nil {
		return nil, err
	}
	headers := e.Headers
	if headers == nil {
		headers = map[string]string{}
	}
	hdr, err := json.Marshal(headers)
	if err != nil {
		return nil, err
	}
	secret, prev, err := seal(sealer, e.Secret, e.PreviousSecret)
	if err != nil {
		return nil, err
	}
	return []any{e.URL, string(events), e.Description, e.Enabled, e.DisabledReason, string(hdr),
		e.SignatureScheme, e.SignatureHeader, e.Payload, e.Retry.MaxAttempts, e.Retry.InitialInterval.Microseconds(),
		e.Retry.MaxInterval.Microseconds(), e.RateLimit, e.MaxInFlight, e.Ordering, secret, prev,
		US(e.PreviousSecretExpires), US(e.CreatedAt), US(e.UpdatedAt), US(e.FailingSince)}, nil
}

// seal seals a secret and, if there is one, the previous secret (nil if not).
func seal(sealer Sealer, secret, previous string) (sealed, prev []byte, err error) {
	if sealed, err = sealer.Seal([]byte(secret)); err != nil {
		return nil, nil, fmt.Errorf("seal secret: %w", err)
	}
	if previous != "" {
		if prev, err = sealer.Seal([]byte(previous)); err != nil {
			return nil, nil, fmt.Errorf("seal secret: %w", err)
		}
	}
	return sealed, prev, nil
}

// PartnerColumns are the columns ScanPartner reads.
const PartnerColumns = `id, org_id, name, api_key_hash, secret, previous_secret, previous_secret_expires,
	ip_allowlist, rate_per_second, rate_burst, enabled, created_at, updated_at`

// PartnerSetColumns names, in order, the columns PartnerValues returns values for.
const PartnerSetColumns = `name, secret, previous_secret, previous_secret_expires, ip_allowlist,
	rate_per_second, rate_burst, enabled, created_at, updated_at`

// ScanPartner reads PartnerColumns into a new partner.
func ScanPartner(s Scanner, sealer Sealer) (*hookd.Partner, error) {
	var (
		p                         hookd.Partner
		secret, prev              []byte
		allow                     string
		prevExp, created, updated int64
	)
	if err := s.Scan(&p.ID, &p.OrgID, &p.Name, &p.APIKeyHash, &secret, &prev, &prevExp, &allow,
		&p.RateLimit.PerSecond, &p.RateLimit.Burst, &p.Enabled, &created, &updated); err != nil {
		return nil, err
	}
	var prefixes []string
	if err := json.Unmarshal([]byte(allow), &prefixes); err != nil {
		return nil, &DecodeError{fmt.Errorf("decode ip allowlist: %w", err)}
	}
	for _, s := range prefixes {
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, &DecodeError{fmt.Errorf("decode ip allowlist: %w", err)}
		}
		p.IPAllowlist = append(p.IPAllowlist, pfx)
	}
	plain, err := sealer.Open(secret)
	if err != nil {
		return nil, &DecodeError{fmt.Errorf("open partner secret: %w", err)}
	}
	p.Secret = string(plain)
	if len(prev) > 0 {
		if plain, err = sealer.Open(prev); err != nil {
			return nil, &DecodeError{fmt.Errorf("open partner previous secret: %w", err)}
		}
		p.PreviousSecret = string(plain)
	}
	p.PreviousSecretExpires, p.CreatedAt, p.UpdatedAt = FromUS(prevExp), FromUS(created), FromUS(updated)
	return &p, nil
}

// PartnerValues returns the values of PartnerSetColumns for p, with its secrets sealed.
func PartnerValues(p *hookd.Partner, sealer Sealer) ([]any, error) {
	prefixes := make([]string, len(p.IPAllowlist))
	for i, pfx := range p.IPAllowlist {
		prefixes[i] = pfx.String()
	}
	allow, err := json.Marshal(prefixes)
	if err != nil {
		return nil, err
	}
	secret, prev, err := seal(sealer, p.Secret, p.PreviousSecret)
	if err != nil {
		return nil, err
	}
	return []any{p.Name, secret, prev, US(p.PreviousSecretExpires), string(allow), p.RateLimit.PerSecond,
		p.RateLimit.Burst, p.Enabled, US(p.CreatedAt), US(p.UpdatedAt)}, nil
}

// EventColumns are the columns ScanEvent reads.
const EventColumns = `seq, org_id, id, type, data, idempotency_key, created_at`

// ScanEvent reads EventColumns into a new event and returns it with its sequence number.
func ScanEvent(s Scanner) (*hookd.Event, int64, error) {
	var ev hookd.Event
	var seq, created int64
	var idem *string
	var data []byte
	if err := s.Scan(&seq, &ev.OrgID, &ev.ID, &ev.Type, &data, &idem, &created); err != nil {
		return nil, 0, err
	}
	if idem != nil {
		ev.IdempotencyKey = *idem
	}
	ev.Data, ev.CreatedAt = data, FromUS(created)
	return &ev, seq, nil
}

// DeliveryColumns are the columns ScanDelivery reads, of deliveries aliased d
// joined with their events aliased ev.
const DeliveryColumns = `d.seq, d.id, d.org_id, ev.id, ev.type, d.endpoint_id, d.status, d.attempts, d.cycle_attempts,
	d.next_attempt_at, d.last_status_code, d.last_error, d.created_at, d.updated_at, d.lease IS NOT NULL`

// ScanDelivery reads DeliveryColumns, followed by the extra destinations, into a
// new delivery and returns it with its sequence number.
func ScanDelivery(s Scanner, extra ...any) (*hookd.Delivery, int64, error) {
	var d hookd.Delivery
	var seq, next, created, updated int64
	dest := append([]any{&seq, &d.ID, &d.OrgID, &d.EventID, &d.EventType, &d.EndpointID, &d.Status, &d.Attempts,
		&d.CycleAttempts, &next, &d.LastStatusCode, &d.LastError, &created, &updated, &d.InFlight}, extra...)
	if err := s.Scan(dest...); err != nil {
		return nil, 0, err
	}
	d.NextAttemptAt, d.CreatedAt, d.UpdatedAt = NextAttempt(next), FromUS(created), FromUS(updated)
	return &d, seq, nil
}

// ClaimDeliveryColumns are the columns ScanClaimDelivery reads: DeliveryColumns
// and the event's data and time (deliveries d, events ev).
const ClaimDeliveryColumns = DeliveryColumns + `, ev.data, ev.created_at`

// ClaimColumns are the columns CollectClaimsSeq reads: ClaimDeliveryColumns,
// then EndpointColumns(seq) (deliveries d, events ev, endpoints e).
func ClaimColumns(seq string) string {
	return ClaimDeliveryColumns + `, ` + EndpointColumns(seq)
}

// ScanClaimDelivery reads ClaimDeliveryColumns into a claim with the given
// lease and returns the delivery's sequence number. The claim's Endpoint is
// left for the caller to fill in (Delivery.EndpointID names it).
func ScanClaimDelivery(s Scanner, lease string) (*hookd.Claim, int64, error) {
	var r claimRow
	if err := s.Scan(r.dest(nil)...); err != nil {
		return nil, r.seq, err
	}
	return r.claim(lease), r.seq, nil
}

// claimRow holds ClaimDeliveryColumns as scanned.
type claimRow struct {
	c                      hookd.Claim
	seq                    int64
	next, created, updated int64
	data                   []byte
	evCreated              int64
}

// dest returns the scan destinations: ClaimDeliveryColumns, then extra.
func (r *claimRow) dest(extra []any) []any {
	d := &r.c.Delivery
	return append([]any{&r.seq, &d.ID, &d.OrgID, &d.EventID, &d.EventType, &d.EndpointID, &d.Status,
		&d.Attempts, &d.CycleAttempts, &r.next, &d.LastStatusCode, &d.LastError, &r.created, &r.updated, &d.InFlight,
		&r.data, &r.evCreated}, extra...)
}

// claim completes the scanned claim (without its endpoint).
func (r *claimRow) claim(lease string) *hookd.Claim {
	c := &r.c
	d := &c.Delivery
	d.NextAttemptAt, d.CreatedAt, d.UpdatedAt = NextAttempt(r.next), FromUS(r.created), FromUS(r.updated)
	c.Event = hookd.Event{ID: d.EventID, OrgID: d.OrgID, Type: d.EventType, Data: r.data, CreatedAt: FromUS(r.evCreated)}
	c.Lease = lease
	return c
}

// scanClaim reads ClaimColumns into a claim with the given lease and returns
// the delivery's sequence number; a row whose endpoint cannot be decoded is a
// *DecodeError, with the sequence number set. The endpoints already decoded by
// the same query are in seen (by id): rows of one query show each endpoint
// alike, so its columns are decoded, and its secrets opened, once per claim.
func scanClaim(s Scanner, sealer Sealer, lease string, seen map[string]*hookd.Endpoint) (*hookd.Claim, int64, error) {
	var (
		cr claimRow
		r  endpointRow
	)
	if err := s.Scan(cr.dest(r.dest(nil))...); err != nil {
		return nil, cr.seq, err
	}
	e, ok := seen[r.e.ID]
	if !ok {
		var err error
		if e, err = r.decode(sealer); err != nil {
			return nil, cr.seq, err
		}
		seen[r.e.ID] = e
	}
	c := cr.claim(lease)
	c.Endpoint = *e // shares the decoded Events and Headers, which no one changes
	return c, cr.seq, nil
}

// AttemptColumns are the columns ScanAttempt reads.
const AttemptColumns = `id, org_id, number, url, request_headers, status_code, response_body, duration_us, error, created_at`

// ScanAttempt reads AttemptColumns into a new attempt of the delivery deliveryID.
func ScanAttempt(s Scanner, deliveryID string) (*hookd.Attempt, error) {
	a := hookd.Attempt{DeliveryID: deliveryID}
	var headers string
	var dur, created int64
	if err := s.Scan(&a.ID, &a.OrgID, &a.Number, &a.URL, &headers, &a.StatusCode, &a.ResponseBody, &dur,
		&a.Error, &created); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(headers), &a.RequestHeaders); err != nil {
		return nil, &DecodeError{fmt.Errorf("decode attempt headers: %w", err)}
	}
	a.Duration, a.CreatedAt = time.Duration(dur)*time.Microsecond, FromUS(created)
	return &a, nil
}

// AttemptHeaders returns the request_headers value of a.
func AttemptHeaders(a *hookd.Attempt) (string, error) {
	b, err := json.Marshal(a.RequestHeaders)
	return string(b), err
}

// AuditColumns are the columns ScanAudit reads.
const AuditColumns = `seq, id, org_id, time, actor_type, actor, action, target, result, reason, client_ip, status, count`

// ScanAudit reads AuditColumns into a new record and returns it with its sequence number.
func ScanAudit(s Scanner) (*hookd.AuditRecord, int64, error) {
	var r hookd.AuditRecord
	var seq, t int64
	if err := s.Scan(&seq, &r.ID, &r.OrgID, &t, &r.ActorType, &r.Actor, &r.Action, &r.Target, &r.Result,
		&r.Reason, &r.ClientIP, &r.Status, &r.Count); err != nil {
		return nil, 0, err
	}
	r.Time = FromUS(t)
	return &r, seq, nil
}

// Rows is a result set of either store's driver (*sql.Rows, pgx.Rows).
type Rows interface {
	Next() bool
	Err() error
}

// CollectPage reads one page of a list from rows, which must hold up to limit+1
// rows ordered by their sequence key: it returns at most limit items, read by
// scan (which also returns the row's key), and the cursor of the next page, ""
// at the end. full, if not nil, ends the page early once it reports true. The
// caller closes rows.
func CollectPage[T any](rows Rows, limit int, scan func() (T, int64, error), full func(T) bool) ([]T, string, error) {
	var out []T
	var last int64
	stop := false
	for rows.Next() {
		if len(out) == limit || stop {
			return out, cursor.Encode(last), nil
		}
		item, key, err := scan()
		if err != nil {
			return nil, "", err
		}
		out, last = append(out, item), key
		stop = full != nil && full(item)
	}
	return out, "", rows.Err()
}

// Tally counts new events per organization and month, for the usage they add.
type Tally map[UsageKey]*UsageCount

// UsageKey is one organization's month.
type UsageKey struct{ Org, Period string }

// UsageCount is the new events of one organization's month.
type UsageCount struct {
	Events int64
	Last   time.Time // the latest CreatedAt among them
}

// Add counts ev in the usage of its organization and month.
func (t Tally) Add(ev *hookd.Event) {
	k := UsageKey{ev.OrgID, hookd.UsagePeriod(ev.CreatedAt)}
	c := t[k]
	if c == nil {
		c = &UsageCount{}
		t[k] = c
	}
	c.Events++
	if ev.CreatedAt.After(c.Last) {
		c.Last = ev.CreatedAt
	}
}

// Keys returns the counted months in a fixed order, so that concurrent
// transactions lock usage rows in the same order.
func (t Tally) Keys() []UsageKey {
	keys := make([]UsageKey, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b UsageKey) int {
		return cmp.Or(cmp.Compare(a.Org, b.Org), cmp.Compare(a.Period, b.Period))
	})
	return keys
}

// BrokenClaim is a leased delivery whose row cannot be decoded (its endpoint's
// secret does not open): it cannot be attempted.
type BrokenClaim struct {
	Seq int64
	Err string
}

// ScannerRows is a result set whose rows can be scanned.
type ScannerRows interface {
	Rows
	Scanner
}

// CollectClaimsSeq reads every row of ClaimColumns from rows into claims with
// the given lease, with each claim's delivery sequence number (seqs[i] is
// claims[i]'s); rows that cannot be decoded are returned in broken instead. The
// caller closes rows.
func CollectClaimsSeq(rows ScannerRows, sealer Sealer, lease string) (claims []*hookd.Claim, seqs []int64, broken []BrokenClaim, err error) {
	seen := map[string]*hookd.Endpoint{}
	for rows.Next() {
		c, seq, err := scanClaim(rows, sealer, lease, seen)
		var de *DecodeError
		switch {
		case errors.As(err, &de):
			broken = append(broken, BrokenClaim{Seq: seq, Err: de.Error()})
			continue
		case err != nil:
			return nil, nil, nil, err
		}
		claims = append(claims, c)
		seqs = append(seqs, seq)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, nil, err
	}
	return claims, seqs, broken, nil
}
