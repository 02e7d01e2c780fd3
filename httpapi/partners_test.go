package httpapi_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// partnerOut is a partner as the API shows it (SPEC §6).
type partnerOut struct {
	ID           string   `json:"id"`
	Organization string   `json:"organization"`
	Name         string   `json:"name"`
	IPAllowlist  []string `json:"ip_allowlist"`
	RateLimit    struct {
		PerSecond float64 `json:"per_second"`
		Burst     int     `json:"burst"`
	} `json:"rate_limit"`
	Enabled   bool   `json:"enabled"`
	APIKey    string `json:"api_key"`
	Secret    string `json:"secret"`
	CreatedAt string `json:"created_at"`
	UpdatedAt string `json:"updated_at"`
}

// The formats of docs/decisions.md: API keys and secrets are a prefix and 43
// base62 characters.
var (
	partnerIDPattern     = regexp.MustCompile(`^ptn_[0-9A-Za-z]+$`)
	partnerKeyPattern    = regexp.MustCompile(`^pk_[0-9A-Za-z]{43}$`)
	partnerSecretPattern = regexp.MustCompile(`^psec_[0-9A-Za-z]{43}$`)
)

// createPartner creates a partner with key and body, failing the test unless it
// answers 201, and returns it with the raw answer.
func (f *fixture) createPartner(key, body string) (partnerOut, response) {
	f.t.Helper()
	var p partnerOut
	r := f.mustDo("POST", "/api/partners", key, body, http.StatusCreated, &p)
	return p, r
}

// getPartner reads a partner with key, failing the test unless it answers 200.
func (f *fixture) getPartner(key, id string) (partnerOut, response) {
	f.t.Helper()
	var p partnerOut
	r := f.mustDo("GET", "/api/partners/"+id, key, "", http.StatusOK, &p)
	return p, r
}

// checkNoCredentials fails the test if a partner answer other than the create
// answer shows the API key or the secret, by field name or by value.
func checkNoCredentials(t *testing.T, what string, r response, creds ...string) {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("%s: %s is not a JSON object: %v", what, r.body, err)
	}
	for _, k := range []string{"api_key", "secret", "api_key_hash", "previous_secret"} {
		if _, ok := m[k]; ok {
			t.Errorf("%s shows %q: %s", what, k, r.body)
		}
	}
	for _, c := range creds {
		if c != "" && strings.Contains(string(r.body), c) {
			t.Errorf("%s shows the credential %q: %s", what, c, r.body)
		}
	}
}

// checkTime fails the test unless s is an RFC 3339 UTC time, and returns it.
func mustRFC3339(t *testing.T, what, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || !strings.HasSuffix(s, "Z") {
		t.Errorf("%s = %q, want an RFC 3339 UTC time", what, s)
	}
	return tm
}

// partnerTable reads the partners table straight from the fixture's database
// file: the API has no partner list, and a rejected request must store nothing
// (SPEC §1).
type partnerTable struct {
	t  *testing.T
	db *sql.DB
}

// openPartnerTable opens the database of the fixture that setup(t, …) made for
// this very test: setup put it in the test's first t.TempDir, and every TempDir
// of one test shares a parent.
func openPartnerTable(t *testing.T) *partnerTable {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(filepath.Dir(t.TempDir()), "*", "hookd.db"))
	if err != nil || len(matches) != 1 {
		t.Fatalf("find the fixture's database: %v, %v (call openPartnerTable once, after setup, in the test that called setup)", matches, err)
	}
	db, err := sql.Open("sqlite", "file:"+url.PathEscape(matches[0])+"?_pragma=busy_timeout(10000)&_pragma=query_only(1)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &partnerTable{t: t, db: db}
}

// rows returns every stored partner, each column as text, sealed secrets included
// (a rotation that was refused must not have stored a new secret).
func (pt *partnerTable) rows() string {
	pt.t.Helper()
	rows, err := pt.db.Query(`SELECT id, org_id, name, api_key_hash, hex(secret), hex(previous_secret), previous_secret_expires,
		ip_allowlist, rate_per_second, rate_burst, enabled, created_at, updated_at FROM partners ORDER BY id`)
	if err != nil {
		pt.t.Fatalf("read partners: %v", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		cols := make([]any, 13)
		for i := range cols {
			cols[i] = new(sql.NullString)
		}
		if err := rows.Scan(cols...); err != nil {
			pt.t.Fatalf("read partners: %v", err)
		}
		var line []string
		for _, c := range cols {
			line = append(line, c.(*sql.NullString).String)
		}
		out = append(out, strings.Join(line, " | "))
	}
	if err := rows.Err(); err != nil {
		pt.t.Fatalf("read partners: %v", err)
	}
	return strings.Join(out, "\n")
}

// count returns how many partners are stored.
func (pt *partnerTable) count() int {
	pt.t.Helper()
	var n int
	if err := pt.db.QueryRow(`SELECT count(*) FROM partners`).Scan(&n); err != nil {
		pt.t.Fatalf("count partners: %v", err)
	}
	return n
}

// partnerBody is a partner create body for acme with the keys of over set (or
// deleted by omit).
func partnerBody(over map[string]any) string {
	return with(map[string]any{"organization": orgID, "name": "Billing partner"}, over)
}

func prefixList(n int) []string {
	l := make([]string, n)
	for i := range l {
		l[i] = fmt.Sprintf("10.%d.%d.0/24", i/256, i%256)
	}
	return l
}

// TestPartnerLifecycle: create, read, update, rotate and delete a partner
// (SPEC §6), with the API key and secret shown once.
func TestPartnerLifecycle(t *testing.T) {
	t.Parallel()
	f := setup(t, options{})
	start := time.Now().UTC().Add(-time.Second)

	// The minimal form, with the organization key: the organization is implied,
	// the rate limit is the default (docs/decisions.md: 10/s, burst 20).
	p, r := f.createPartner(f.orgKey, `{"name":"Partner One"}`)
	if !partnerIDPattern.MatchString(p.ID) || p.Organization != orgID || p.Name != "Partner One" || !p.Enabled {
		t.Errorf("created partner = %s, want id ptn_…, organization %s, name Partner One, enabled", r.body, orgID)
	}
	if p.RateLimit.PerSecond != 10 || p.RateLimit.Burst != 20 {
		t.Errorf("default rate_limit = %+v, want per_second 10, burst 20", p.RateLimit)
	}
	if p.IPAllowlist == nil || len(p.IPAllowlist) != 0 || !strings.Contains(string(r.body), `"ip_allowlist":[]`) {
		t.Errorf("ip_allowlist = %v in %s, want []", p.IPAllowlist, r.body)
	}
	if !partnerKeyPattern.MatchString(p.APIKey) || !partnerSecretPattern.MatchString(p.Secret) {
		t.Errorf("api_key = %q, secret = %q; want pk_ and psec_ with 43 base62 characters", p.APIKey, p.Secret)
	}
	created := mustRFC3339(t, "created_at", p.CreatedAt)
	if p.UpdatedAt != p.CreatedAt || created.Before(start) || created.After(time.Now().Add(time.Second)) {
		t.Errorf("created_at = %s, updated_at = %s; want equal and now", p.CreatedAt, p.UpdatedAt)
	}

	// GET shows the same partner without its credentials.
	got, r := f.getPartner(f.orgKey, p.ID)
	checkNoCredentials(t, "GET /api/partners/{id}", r, p.APIKey, p.Secret)
	want := p
	want.APIKey, want.Secret = "", ""
	if !partnerEqual(got, want) {
		t.Errorf("GET = %+v, want the created partner %+v", got, want)
	}

	// The admin key names the organization; addresses are normalized.
	q, r := f.createPartner(f.adminKey, partnerBody(map[string]any{
		"ip_allowlist": []string{"203.0.113.7", "2001:db8::1", "198.51.100.17/24", "2001:db8:abcd::/48", "::ffff:192.0.2.1", "192.0.2.128/25"},
		"rate_limit":   map[string]any{"per_second": 2.5},
	}))
	wantList := []string{"203.0.113.7/32", "2001:db8::1/128", "198.51.100.0/24", "2001:db8:abcd::/48", "192.0.2.1/32", "192.0.2.128/25"}
	if !slices.Equal(q.IPAllowlist, wantList) {
		t.Errorf("ip_allowlist = %q, want %q", q.IPAllowlist, wantList)
	}
	if q.RateLimit.PerSecond != 2.5 || q.RateLimit.Burst != 5 {
		t.Errorf("rate_limit with per_second 2.5 alone = %+v, want burst 5 (twice per_second)", q.RateLimit)
	}
	if q.Organization != orgID || q.APIKey == p.APIKey || q.Secret == p.Secret || q.ID == p.ID {
		t.Errorf("second partner = %s, want organization %s and its own id, key and secret", r.body, orgID)
	}
	if got, _ := f.getPartner(f.adminKey, q.ID); !slices.Equal(got.IPAllowlist, wantList) {
		t.Errorf("GET ip_allowlist = %q, want %q", got.IPAllowlist, wantList)
	}

	// PATCH changes only the fields it names and never shows credentials.
	patch := func(body string) partnerOut {
		t.Helper()
		var out partnerOut
		r := f.mustDo("PATCH", "/api/partners/"+p.ID, f.orgKey, body, http.StatusOK, &out)
		checkNoCredentials(t, "PATCH "+body, r, p.APIKey, p.Secret)
		if read, _ := f.getPartner(f.orgKey, p.ID); !partnerEqual(read, out) {
			t.Errorf("after PATCH %s: GET = %+v, PATCH answered %+v", body, read, out)
		}
		return out
	}
	cur := want
	steps := []struct {
		body   string
		change func(*partnerOut)
	}{
		{`{"name":"Partner Renamed"}`, func(p *partnerOut) { p.Name = "Partner Renamed" }},
		{`{"ip_allowlist":["203.0.113.0/24","2001:db8::5"]}`, func(p *partnerOut) { p.IPAllowlist = []string{"203.0.113.0/24", "2001:db8::5/128"} }},
		{`{"rate_limit":{"per_second":50,"burst":70}}`, func(p *partnerOut) { p.RateLimit.PerSecond, p.RateLimit.Burst = 50, 70 }},
		{`{"rate_limit":{"burst":80}}`, func(p *partnerOut) { p.RateLimit.Burst = 80 }},
		{`{"enabled":false}`, func(p *partnerOut) { p.Enabled = false }},
		{`{}`, func(*partnerOut) {}},
		{`{"ip_allowlist":[]}`, func(p *partnerOut) { p.IPAllowlist = []string{} }},
		{`{"enabled":true,"name":"Partner One"}`, func(p *partnerOut) { p.Enabled, p.Name = true, "Partner One" }},
	}
	for _, s := range steps {
		s.change(&cur)
		out := patch(s.body)
		if mustRFC3339(t, "updated_at", out.UpdatedAt).Before(mustRFC3339(t, "updated_at", cur.UpdatedAt)) || out.CreatedAt != p.CreatedAt {
			t.Errorf("PATCH %s: created_at %s, updated_at %s; want created_at kept and updated_at not earlier than %s", s.body, out.CreatedAt, out.UpdatedAt, cur.UpdatedAt)
		}
		cur.UpdatedAt = out.UpdatedAt
		if !partnerEqual(out, cur) {
			t.Errorf("PATCH %s = %+v, want %+v", s.body, out, cur)
		}
	}

	// Rotation: a new secret; the old one stays valid for the grace period.
	type rotation struct {
		Secret                  string  `json:"secret"`
		PreviousSecretExpiresAt *string `json:"previous_secret_expires_at"`
	}
	rotate := func(body string, wantGrace time.Duration) rotation {
		t.Helper()
		var rot rotation
		before := time.Now()
		r := f.mustDo("POST", "/api/partners/"+p.ID+"/secret/rotate", f.orgKey, body, http.StatusOK, &rot)
		if strings.Contains(string(r.body), p.APIKey) || strings.Contains(string(r.body), "api_key") {
			t.Errorf("rotate %s shows the API key: %s", body, r.body)
		}
		if rot.Secret == "" || rot.Secret == p.Secret {
			t.Errorf("rotate %s: secret = %q, want a new one", body, rot.Secret)
		}
		switch {
		case wantGrace == 0 && rot.PreviousSecretExpiresAt != nil:
			t.Errorf("rotate %s: previous_secret_expires_at = %s, want none with no grace period", body, *rot.PreviousSecretExpiresAt)
		case wantGrace > 0 && rot.PreviousSecretExpiresAt == nil:
			t.Errorf("rotate %s: no previous_secret_expires_at in %s, want one %v from now", body, r.body, wantGrace)
		case wantGrace > 0:
			exp := mustRFC3339(t, "previous_secret_expires_at", *rot.PreviousSecretExpiresAt)
			if exp.Before(before.Add(wantGrace-time.Second)) || exp.After(time.Now().Add(wantGrace+time.Second)) {
				t.Errorf("rotate %s: previous_secret_expires_at = %s, want now + %v", body, exp, wantGrace)
			}
		}
		checkNoCredentials(t, "GET after rotate", f.mustDo("GET", "/api/partners/"+p.ID, f.orgKey, "", http.StatusOK, nil), rot.Secret, p.APIKey)
		return rot
	}
	old := p.Secret
	rot := rotate("", 24*time.Hour) // no body: the default grace period (docs/decisions.md)
	checkInboundSecrets(t, f, p.APIKey, []string{rot.Secret, old}, nil)
	p.Secret = rot.Secret
	rot = rotate(`{"grace_period":60}`, time.Minute)
	p.Secret = rot.Secret
	rot = rotate(`{"grace_period":0}`, 0)
	checkInboundSecrets(t, f, p.APIKey, []string{rot.Secret}, []string{p.Secret, old})
	p.Secret = rot.Secret
	given := strings.Repeat("G", 16) + "-given-secret_0123"
	rot = rotate(`{"secret":"`+given+`","grace_period":0}`, 0)
	if rot.Secret != given {
		t.Errorf("rotate with a given secret: secret = %q, want %q", rot.Secret, given)
	}
	checkInboundSecrets(t, f, p.APIKey, []string{given}, []string{p.Secret})

	// DELETE: 204 without a body, then 404 everywhere, and the key no longer opens the door.
	r = f.mustDo("DELETE", "/api/partners/"+p.ID, f.orgKey, "", http.StatusNoContent, nil)
	if len(r.body) != 0 {
		t.Errorf("DELETE answered a body: %s", r.body)
	}
	for _, c := range []struct{ method, body string }{{"GET", ""}, {"PATCH", `{"name":"x"}`}, {"DELETE", ""}} {
		checkError(t, f.do(c.method, "/api/partners/"+p.ID, f.orgKey, c.body), http.StatusNotFound, "not_found")
	}
	checkError(t, f.do("POST", "/api/partners/"+p.ID+"/secret/rotate", f.orgKey, ""), http.StatusNotFound, "not_found")
	checkError(t, f.do("GET", "/api/partners/"+p.ID, f.adminKey, ""), http.StatusNotFound, "not_found")
	r = sendPartnerEvent(f, p.APIKey, given, `{"id":"after-delete","type":"invoice.paid","data":{}}`)
	checkError(t, r, http.StatusUnauthorized, "invalid_api_key")
	// The other partner is untouched.
	f.getPartner(f.orgKey, q.ID)
}

// partnerEqual compares two partners as GET shows them.
func partnerEqual(a, b partnerOut) bool {
	return a.ID == b.ID && a.Organization == b.Organization && a.Name == b.Name && slices.Equal(a.IPAllowlist, b.IPAllowlist) &&
		a.RateLimit == b.RateLimit && a.Enabled == b.Enabled && a.APIKey == b.APIKey && a.Secret == b.Secret &&
		a.CreatedAt == b.CreatedAt && a.UpdatedAt == b.UpdatedAt
}

// signedInbound sends an event to the partner door signed with sec (SPEC §6).
func sendPartnerEvent(f *fixture, apiKey, sec, body string) response {
	f.t.Helper()
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	m := hmac.New(sha256.New, []byte(sec))
	m.Write([]byte(ts + "." + body))
	return f.do("POST", "/api/webhooks/events", "", body, "X-Api-Key: "+apiKey, "X-Timestamp: "+ts,
		"X-Webhook-Signature: sha256="+hex.EncodeToString(m.Sum(nil)))
}

// checkInboundSecrets checks that the partner door accepts events signed with
// each of valid and refuses those signed with each of invalid: the rotation
// took effect.
func checkInboundSecrets(t *testing.T, f *fixture, apiKey string, valid, invalid []string) {
	t.Helper()
	for _, sec := range valid {
		body := fmt.Sprintf(`{"id":"rot-%d","type":"invoice.paid","data":{}}`, time.Now().UnixNano())
		if r := sendPartnerEvent(f, apiKey, sec, body); r.status != http.StatusAccepted {
			t.Errorf("event signed with %q = %d %s, want 202", sec, r.status, r.body)
		}
	}
	for _, sec := range invalid {
		body := fmt.Sprintf(`{"id":"rot-%d","type":"invoice.paid","data":{}}`, time.Now().UnixNano())
		checkError(t, sendPartnerEvent(f, apiKey, sec, body), http.StatusUnauthorized, "invalid_signature")
	}
}

// TestPartnerAcceptedAtTheLimits: values at the edge of every partner limit
// are accepted as given.
func TestPartnerAcceptedAtTheLimits(t *testing.T) {
	t.Parallel()
	f := setup(t, options{})
	cases := []struct {
		name  string
		over  map[string]any
		check func(t *testing.T, p partnerOut)
	}{
		{"name_200", map[string]any{"name": strings.Repeat("n", 200)}, nil},
		{"name_1", map[string]any{"name": "n"}, nil},
		{"allowlist_100", map[string]any{"ip_allowlist": prefixList(100)}, func(t *testing.T, p partnerOut) {
			if !slices.Equal(p.IPAllowlist, prefixList(100)) {
				t.Errorf("ip_allowlist has %d entries, want the 100 given", len(p.IPAllowlist))
			}
		}},
		{"allowlist_all_v4_v6", map[string]any{"ip_allowlist": []string{"0.0.0.0/0", "::/0"}}, nil},
		{"rate_max", map[string]any{"rate_limit": map[string]any{"per_second": 100000, "burst": 100000}}, nil},
		{"rate_min", map[string]any{"rate_limit": map[string]any{"per_second": 0.001, "burst": 1}}, nil},
		{"rate_empty_object", map[string]any{"rate_limit": map[string]any{}}, func(t *testing.T, p partnerOut) {
			if p.RateLimit.PerSecond != 10 || p.RateLimit.Burst != 20 {
				t.Errorf("rate_limit {} = %+v, want the default 10/20", p.RateLimit)
			}
		}},
		{"rate_null", map[string]any{"rate_limit": nil}, func(t *testing.T, p partnerOut) {
			if p.RateLimit.PerSecond != 10 || p.RateLimit.Burst != 20 {
				t.Errorf("rate_limit null = %+v, want the default 10/20", p.RateLimit)
			}
		}},
		{"burst_alone", map[string]any{"rate_limit": map[string]any{"burst": 5}}, func(t *testing.T, p partnerOut) {
			if p.RateLimit.PerSecond != 10 || p.RateLimit.Burst != 5 {
				t.Errorf("rate_limit with burst alone = %+v, want per_second 10, burst 5", p.RateLimit)
			}
		}},
		{"per_second_fraction_alone", map[string]any{"rate_limit": map[string]any{"per_second": 0.2}}, func(t *testing.T, p partnerOut) {
			if p.RateLimit.PerSecond != 0.2 || p.RateLimit.Burst != 1 {
				t.Errorf("rate_limit with per_second 0.2 alone = %+v, want burst 1 (at least one token)", p.RateLimit)
			}
		}},
		// per_second alone derives the burst (twice per_second); at the maximum rate
		// that burst must still be one the API accepts.
		{"per_second_max_alone", map[string]any{"rate_limit": map[string]any{"per_second": 100000}}, func(t *testing.T, p partnerOut) {
			if p.RateLimit.PerSecond != 100000 || p.RateLimit.Burst < 1 || p.RateLimit.Burst > 100000 {
				t.Errorf("rate_limit with per_second 100000 alone = %+v, want a burst within 1–100000", p.RateLimit)
			}
		}},
		{"disabled", map[string]any{"enabled": false}, func(t *testing.T, p partnerOut) {
			if p.Enabled {
				t.Error("enabled = true, want false as given")
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f.t = t
			r := f.do("POST", "/api/partners", f.adminKey, partnerBody(c.over))
			if r.status != http.StatusCreated {
				t.Fatalf("POST /api/partners %s = %d %s, want 201", partnerBody(c.over), r.status, r.body)
			}
			var p partnerOut
			if err := json.Unmarshal(r.body, &p); err != nil {
				t.Fatal(err)
			}
			if c.check != nil {
				c.check(t, p)
			}
			got, _ := f.getPartner(f.adminKey, p.ID)
			p.APIKey, p.Secret = "", ""
			if !partnerEqual(got, p) {
				t.Errorf("GET = %+v, want the created %+v", got, p)
			}
		})
	}
}

// TestPartnerAllowlistMappedPrefix: an IPv4-mapped IPv6 prefix is stored as
// the IPv4 prefix it covers, or refused; never stored as something the API can
// no longer read.
func TestPartnerAllowlistMappedPrefix(t *testing.T) {
	t.Parallel()
	f := setup(t, options{})
	for _, c := range []struct{ entry, want string }{
		{"::ffff:192.0.2.0/120", "192.0.2.0/24"},
		{"::ffff:192.0.2.7/128", "192.0.2.7/32"},
		{"::ffff:0.0.0.0/96", "0.0.0.0/0"},
		{"::ffff:0.0.0.0/95", ""}, // wider than the mapped range
		{"::ffff:192.0.2.0/64", ""},
	} {
		t.Run(c.entry, func(t *testing.T) {
			f.t = t
			r := f.do("POST", "/api/partners", f.adminKey, partnerBody(map[string]any{"ip_allowlist": []string{c.entry}}))
			if r.status == http.StatusBadRequest {
				if e := checkError(t, r, http.StatusBadRequest, "invalid_field"); e.Error.Field != "ip_allowlist" {
					t.Errorf("error.field = %q, want ip_allowlist", e.Error.Field)
				}
				return
			}
			if r.status != http.StatusCreated {
				t.Fatalf("POST ip_allowlist [%q] = %d %s, want 201 or 400", c.entry, r.status, r.body)
			}
			var p partnerOut
			json.Unmarshal(r.body, &p)
			if len(p.IPAllowlist) != 1 || (c.want != "" && p.IPAllowlist[0] != c.want) || strings.Contains(p.IPAllowlist[0], "invalid") {
				want := c.want
				if want == "" {
					want = "a valid CIDR prefix"
				}
				t.Errorf("ip_allowlist [%q] stored as %q, want [%s] or 400 invalid_field", c.entry, p.IPAllowlist, want)
			}
			if g := f.do("GET", "/api/partners/"+p.ID, f.adminKey, ""); g.status != http.StatusOK {
				t.Errorf("GET the partner = %d %s, want 200", g.status, g.body)
			}
		})
	}
}

// partnerReject is a request about partners that the API must refuse without
// storing anything.
type partnerReject struct {
	name   string
	method string // default POST
	path   string // default /api/partners; "{p}" is acme's partner, "{o}" other's, "{pk}" acme's partner's API key
	key    int    // asAdmin unless given
	body   string
	status int
	code   string
	field  string // "a|b" accepts either

	headers []string // "Name: value"
}

// runPartnerRejects runs each case on one fixture, one after the other, and
// checks that neither the partners nor anything else changed.
func runPartnerRejects(t *testing.T, cases []partnerReject) {
	t.Helper()
	f := setup(t, options{})
	pt := openPartnerTable(t)
	acmeP, _ := f.createPartner(f.orgKey, `{"name":"Acme partner","ip_allowlist":["203.0.113.0/24"],"rate_limit":{"per_second":5,"burst":9}}`)
	otherP, _ := f.createPartner(f.otherKey, `{"name":"Other partner"}`)
	last := f.snapshot()
	rows := pt.rows()
	seen := map[string]bool{}
	for _, c := range cases {
		if seen[c.name] {
			t.Fatalf("duplicate case name %q", c.name)
		}
		seen[c.name] = true
		t.Run(c.name, func(t *testing.T) {
			path := c.path
			if path == "" {
				path = "/api/partners"
			}
			rp := strings.NewReplacer("{p}", acmeP.ID, "{o}", otherP.ID, "{pk}", acmeP.APIKey)
			path = rp.Replace(path)
			var headers []string
			for _, h := range c.headers {
				headers = append(headers, rp.Replace(h))
			}
			b := badRequest{name: c.name, method: c.method, path: path, key: c.key, body: c.body, headers: headers,
				status: c.status, code: c.code, field: c.field}
			last = b.run(t, f, "", last)
			if now := pt.rows(); now != rows {
				t.Errorf("partners changed:\nbefore: %s\nafter:  %s", rows, now)
				rows = now
			}
		})
	}
	if n := pt.count(); n != 2 {
		t.Errorf("%d partners stored, want the 2 of the fixture", n)
	}
}

// TestPartnerCreateRejects covers POST /api/partners (SPEC §1, §2, §6).
func TestPartnerCreateRejects(t *testing.T) {
	t.Parallel()
	bad := func(name string, over map[string]any, field string) partnerReject {
		return partnerReject{name: name, body: partnerBody(over), status: 400, code: "invalid_field", field: field}
	}
	rate := func(v map[string]any) map[string]any { return map[string]any{"rate_limit": v} }
	cases := []partnerReject{
		// Missing or out of range names.
		bad("no_name", map[string]any{"name": omit}, "name"),
		bad("null_name", map[string]any{"name": nil}, "name"),
		bad("empty_name", map[string]any{"name": ""}, "name"),
		bad("name_201", map[string]any{"name": strings.Repeat("n", 201)}, "name"),
		// Wrong types.
		bad("name_number", map[string]any{"name": 5}, "name"),
		bad("name_object", map[string]any{"name": map[string]any{}}, "name"),
		bad("organization_number", map[string]any{"organization": 5}, "organization"),
		bad("allowlist_string", map[string]any{"ip_allowlist": "10.0.0.1"}, "ip_allowlist"),
		bad("allowlist_numbers", map[string]any{"ip_allowlist": []int{1}}, "ip_allowlist|ip_allowlist[0]"),
		bad("rate_limit_number", map[string]any{"rate_limit": 10}, "rate_limit"),
		bad("rate_limit_array", map[string]any{"rate_limit": []int{10, 20}}, "rate_limit"),
		bad("per_second_string", rate(map[string]any{"per_second": "10"}), "rate_limit.per_second"),
		bad("per_second_overflow", rate(map[string]any{"per_second": json.RawMessage(`1e400`)}), "rate_limit.per_second"),
		bad("burst_string", rate(map[string]any{"burst": "20"}), "rate_limit.burst"),
		bad("burst_fraction", rate(map[string]any{"burst": 1.5}), "rate_limit.burst"),
		bad("enabled_string", map[string]any{"enabled": "yes"}, "enabled"),
		bad("enabled_number", map[string]any{"enabled": 1}, "enabled"),
		// Unknown fields, with their full path.
		bad("unknown_field", map[string]any{"allowlist": []string{}}, "allowlist"),
		bad("unknown_api_key", map[string]any{"api_key": "pk_chosen"}, "api_key"),
		bad("unknown_secret", map[string]any{"secret": strings.Repeat("s", 32)}, "secret"),
		bad("unknown_id", map[string]any{"id": "ptn_mine"}, "id"),
		bad("unknown_nested", rate(map[string]any{"x": 1}), "rate_limit.x"),
		bad("unknown_nested_rate", rate(map[string]any{"per_second": 1, "rate": 1}), "rate_limit.rate"),
		// IP allowlists.
		bad("cidr_bits_33", map[string]any{"ip_allowlist": []string{"10.0.0.0/33"}}, "ip_allowlist"),
		bad("cidr_bits_129", map[string]any{"ip_allowlist": []string{"2001:db8::/129"}}, "ip_allowlist"),
		bad("cidr_no_bits", map[string]any{"ip_allowlist": []string{"10.0.0.0/"}}, "ip_allowlist"),
		bad("ip_octet_300", map[string]any{"ip_allowlist": []string{"300.1.1.1"}}, "ip_allowlist"),
		bad("ip_short", map[string]any{"ip_allowlist": []string{"10.1"}}, "ip_allowlist"),
		bad("hostname", map[string]any{"ip_allowlist": []string{"partner.example.com"}}, "ip_allowlist"),
		bad("empty_entry", map[string]any{"ip_allowlist": []string{""}}, "ip_allowlist"),
		bad("spaces", map[string]any{"ip_allowlist": []string{" 10.0.0.1"}}, "ip_allowlist"),
		bad("range", map[string]any{"ip_allowlist": []string{"10.0.0.1-10.0.0.9"}}, "ip_allowlist"),
		bad("second_invalid", map[string]any{"ip_allowlist": []string{"10.0.0.1", "nope"}}, "ip_allowlist"),
		bad("ipv6_zone", map[string]any{"ip_allowlist": []string{"fe80::1%eth0"}}, "ip_allowlist"),
		bad("ipv6_zone_prefix", map[string]any{"ip_allowlist": []string{"fe80::1%eth0/64"}}, "ip_allowlist"),
		bad("allowlist_101", map[string]any{"ip_allowlist": prefixList(101)}, "ip_allowlist"),
		bad("allowlist_null_entry", map[string]any{"ip_allowlist": []any{nil}}, "ip_allowlist|ip_allowlist[0]"),
		// Rate limits.
		bad("per_second_zero", rate(map[string]any{"per_second": 0}), "rate_limit.per_second"),
		bad("per_second_zero_with_burst", rate(map[string]any{"per_second": 0, "burst": 5}), "rate_limit.per_second"),
		bad("per_second_negative", rate(map[string]any{"per_second": -1}), "rate_limit.per_second"),
		bad("per_second_too_big", rate(map[string]any{"per_second": 100001, "burst": 10}), "rate_limit.per_second"),
		bad("burst_zero", rate(map[string]any{"per_second": 1, "burst": 0}), "rate_limit.burst"),
		bad("burst_zero_alone", rate(map[string]any{"burst": 0}), "rate_limit.burst"),
		bad("burst_negative", rate(map[string]any{"burst": -3}), "rate_limit.burst"),
		bad("burst_too_big", rate(map[string]any{"per_second": 1, "burst": 100001}), "rate_limit.burst"),
		// Organizations (SPEC §2).
		bad("admin_without_organization", map[string]any{"organization": omit}, "organization"),
		bad("admin_empty_organization", map[string]any{"organization": ""}, "organization"),
		bad("admin_null_organization", map[string]any{"organization": nil}, "organization"),
		{name: "admin_unknown_organization", body: partnerBody(map[string]any{"organization": "nope"}), status: 404, code: "not_found"},
		{name: "org_key_naming_other_org", key: asOrg, body: partnerBody(map[string]any{"organization": otherOrgID}), status: 404, code: "not_found"},
		{name: "org_key_naming_unknown_org", key: asOrg, body: partnerBody(map[string]any{"organization": "nope"}), status: 404, code: "not_found"},
		// Keys and bodies.
		{name: "no_key", key: asNone, body: partnerBody(nil), status: 401, code: "unauthorized"},
		{name: "wrong_key", key: asNone, body: partnerBody(nil), headers: []string{"Authorization: Bearer hk_wrong"}, status: 401, code: "unauthorized"},
		{name: "partner_key", key: asNone, body: partnerBody(nil), headers: []string{"Authorization: Bearer {pk}"}, status: 401, code: "unauthorized"},
		{name: "invalid_json", body: `{"name":`, status: 400, code: "invalid_json"},
		{name: "array_body", body: `[]`, status: 400, code: "invalid_json"},
		{name: "empty_body", body: ``, status: 400, code: "invalid_json"},
	}
	runPartnerRejects(t, cases)
}

// TestPartnerChangeRejects covers PATCH, DELETE and rotate, including another
// organization's partner (SPEC §2: 404, not 403).
func TestPartnerChangeRejects(t *testing.T) {
	t.Parallel()
	patch := func(name, body, field string) partnerReject {
		return partnerReject{name: "patch/" + name, method: "PATCH", path: "/api/partners/{p}", key: asOrg, body: body,
			status: 400, code: "invalid_field", field: field}
	}
	rotate := func(name, body, field string) partnerReject {
		return partnerReject{name: "rotate/" + name, path: "/api/partners/{p}/secret/rotate", key: asOrg, body: body,
			status: 400, code: "invalid_field", field: field}
	}
	cases := []partnerReject{
		patch("organization_same", `{"organization":"acme"}`, "organization"),
		patch("organization_other", `{"organization":"other"}`, "organization"),
		patch("organization_with_name", `{"name":"x","organization":"other"}`, "organization"),
		patch("name_empty", `{"name":""}`, "name"),
		patch("name_201", `{"name":"`+strings.Repeat("n", 201)+`"}`, "name"),
		patch("name_number", `{"name":1}`, "name"),
		patch("allowlist_invalid", `{"ip_allowlist":["10.0.0.0/33"]}`, "ip_allowlist"),
		patch("allowlist_zone", `{"ip_allowlist":["fe80::1%eth0"]}`, "ip_allowlist"),
		patch("allowlist_101", with(map[string]any{"ip_allowlist": prefixList(101)}, nil), "ip_allowlist"),
		patch("per_second_zero", `{"rate_limit":{"per_second":0}}`, "rate_limit.per_second"),
		patch("per_second_negative", `{"rate_limit":{"per_second":-5}}`, "rate_limit.per_second"),
		patch("per_second_too_big", `{"rate_limit":{"per_second":100001,"burst":1}}`, "rate_limit.per_second"),
		patch("burst_zero", `{"rate_limit":{"burst":0}}`, "rate_limit.burst"),
		patch("burst_too_big", `{"rate_limit":{"burst":100001}}`, "rate_limit.burst"),
		patch("valid_then_invalid", `{"name":"changed","rate_limit":{"burst":0}}`, "rate_limit.burst"),
		patch("enabled_string", `{"enabled":"no"}`, "enabled"),
		patch("unknown_field", `{"nmae":"x"}`, "nmae"),
		patch("unknown_nested", `{"rate_limit":{"per_second":1,"x":1}}`, "rate_limit.x"),
		patch("api_key", `{"api_key":"pk_chosen"}`, "api_key"),
		patch("secret", `{"secret":"`+strings.Repeat("s", 32)+`"}`, "secret"),
		{name: "patch/invalid_json", method: "PATCH", path: "/api/partners/{p}", key: asOrg, body: `{`, status: 400, code: "invalid_json"},
		{name: "patch/unknown_partner", method: "PATCH", path: "/api/partners/ptn_nope", key: asOrg, body: `{"name":"x"}`, status: 404, code: "not_found"},

		rotate("secret_too_short", `{"secret":"short"}`, "secret"),
		rotate("secret_15", `{"secret":"`+strings.Repeat("s", 15)+`"}`, "secret"),
		rotate("secret_513", `{"secret":"`+strings.Repeat("s", 513)+`"}`, "secret"),
		rotate("secret_space", `{"secret":"a secret with spaces in it"}`, "secret"),
		rotate("secret_empty", `{"secret":""}`, "secret"),
		rotate("secret_number", `{"secret":12345678901234567890}`, "secret"),
		rotate("grace_negative", `{"grace_period":-1}`, "grace_period"),
		rotate("grace_too_long", `{"grace_period":2592001}`, "grace_period"),
		rotate("grace_string", `{"grace_period":"60"}`, "grace_period"),
		rotate("unknown_field", `{"grace":60}`, "grace"),
		{name: "rotate/invalid_json", path: "/api/partners/{p}/secret/rotate", key: asOrg, body: `{"grace_period":`, status: 400, code: "invalid_json"},
		{name: "rotate/unknown_partner", path: "/api/partners/ptn_nope/secret/rotate", key: asOrg, status: 404, code: "not_found"},
		{name: "delete/unknown_partner", method: "DELETE", path: "/api/partners/ptn_nope", key: asOrg, status: 404, code: "not_found"},
		{name: "get/unknown_partner", method: "GET", path: "/api/partners/ptn_nope", key: asOrg, status: 404, code: "not_found"},

		// Keys.
		{name: "no_key/patch", method: "PATCH", path: "/api/partners/{p}", key: asNone, body: `{"name":"x"}`, status: 401, code: "unauthorized"},
		{name: "no_key/delete", method: "DELETE", path: "/api/partners/{p}", key: asNone, status: 401, code: "unauthorized"},
		{name: "no_key/rotate", path: "/api/partners/{p}/secret/rotate", key: asNone, status: 401, code: "unauthorized"},
		{name: "no_key/get", method: "GET", path: "/api/partners/{p}", key: asNone, status: 401, code: "unauthorized"},
	}
	// Tenant isolation: each organization's key gets 404 for the other's partner.
	for _, c := range []struct{ key int }{{asOther}, {asOrg}} {
		path := "/api/partners/{p}"
		if c.key == asOrg {
			path = "/api/partners/{o}"
		}
		for _, rt := range []struct{ method, suffix, body string }{
			{"GET", "", ""},
			{"PATCH", "", `{"name":"stolen","enabled":false}`},
			{"DELETE", "", ""},
			{"POST", "/secret/rotate", ""},
			{"POST", "/secret/rotate", `{"grace_period":0}`},
			{"POST", "/secret/rotate", `{"secret":"` + strings.Repeat("x", 32) + `"}`},
		} {
			cases = append(cases, partnerReject{name: fmt.Sprintf("isolation/key%d/%s%s/%d", c.key, rt.method, rt.suffix, len(rt.body)),
				method: rt.method, path: path + rt.suffix, key: c.key, body: rt.body, status: 404, code: "not_found"})
		}
	}
	runPartnerRejects(t, cases)
}

// TestPartnerAdminSeesEveryOrganization: the admin key reads and changes the
// partners of every organization; each organization key only its own.
func TestPartnerAdminSeesEveryOrganization(t *testing.T) {
	t.Parallel()
	f := setup(t, options{})
	a, _ := f.createPartner(f.orgKey, `{"name":"A"}`)
	b, _ := f.createPartner(f.adminKey, `{"organization":"other","name":"B"}`)
	if b.Organization != otherOrgID {
		t.Errorf("admin-created partner organization = %q, want %q", b.Organization, otherOrgID)
	}
	for _, c := range []struct {
		key string
		p   partnerOut
	}{{f.adminKey, a}, {f.adminKey, b}, {f.orgKey, a}, {f.otherKey, b}} {
		got, _ := f.getPartner(c.key, c.p.ID)
		if got.ID != c.p.ID || got.Organization != c.p.Organization {
			t.Errorf("GET %s = %+v, want organization %s", c.p.ID, got, c.p.Organization)
		}
	}
	var out partnerOut
	f.mustDo("PATCH", "/api/partners/"+b.ID, f.adminKey, `{"name":"B2","enabled":false}`, http.StatusOK, &out)
	if out.Name != "B2" || out.Enabled || out.Organization != otherOrgID {
		t.Errorf("admin PATCH = %+v, want name B2, disabled, organization other", out)
	}
	var rot struct{ Secret string }
	f.mustDo("POST", "/api/partners/"+a.ID+"/secret/rotate", f.adminKey, `{"grace_period":0}`, http.StatusOK, &rot)
	if rot.Secret == "" || rot.Secret == a.Secret {
		t.Errorf("admin rotate: secret %q, want a new one", rot.Secret)
	}
	f.mustDo("DELETE", "/api/partners/"+a.ID, f.adminKey, "", http.StatusNoContent, nil)
	checkError(t, f.do("GET", "/api/partners/"+a.ID, f.orgKey, ""), http.StatusNotFound, "not_found")
	f.getPartner(f.otherKey, b.ID)

	// An organization key cannot create a partner for the other organization,
	// and a partner's organization never changes.
	checkError(t, f.do("POST", "/api/partners", f.otherKey, `{"organization":"acme","name":"x"}`), http.StatusNotFound, "not_found")
	if got, _ := f.getPartner(f.adminKey, b.ID); got.Organization != otherOrgID {
		t.Errorf("partner %s now in %q, want %q", b.ID, got.Organization, otherOrgID)
	}
}
