package httpapi_test

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// clock is a settable clock for the API.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock {
	c := &clock{}
	c.set(t)
	return c
}

func (c *clock) now() time.Time  { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) set(t time.Time) { c.ns.Store(t.UnixNano()) }

type usageJSON struct {
	Organization string `json:"organization"`
	Period       string `json:"period"`
	Usage        int64  `json:"usage"`
	Quota        int64  `json:"quota"`
}

// TestUsageAndQuota: GET /api/usage counts accepted events per UTC month; past
// the quota publishing answers 429 quota_exceeded unless overage is allowed; the
// admin sets both with PATCH /api/organizations/{org}.
func TestUsageAndQuota(t *testing.T) {
	t.Parallel()
	c := newClock(time.Date(2026, time.November, 30, 23, 59, 58, 0, time.UTC))
	f := setup(t, options{now: c.now})
	f.mustDo("PATCH", "/api/organizations/"+orgID, f.adminKey, `{"monthly_quota":3}`, http.StatusOK, nil)

	var u usageJSON
	f.mustDo("GET", "/api/usage", f.orgKey, "", http.StatusOK, &u)
	if u != (usageJSON{orgID, "2026-11", 0, 3}) {
		t.Errorf("usage at the start = %+v", u)
	}
	for range 3 {
		f.mustDo("POST", "/api/events", f.orgKey, `{"type":"invoice.paid","data":{"n":1}}`, http.StatusAccepted, nil)
	}
	r := f.do("POST", "/api/events", f.orgKey, `{"type":"invoice.paid","data":{"n":4}}`)
	checkError(t, r, http.StatusTooManyRequests, "quota_exceeded")
	r = f.do("POST", "/api/events/batch", f.orgKey, `{"events":[{"type":"invoice.paid","data":{}}]}`)
	checkError(t, r, http.StatusTooManyRequests, "quota_exceeded")
	f.mustDo("GET", "/api/usage", f.orgKey, "", http.StatusOK, &u)
	if u.Usage != 3 {
		t.Errorf("usage after refusals = %d, want 3", u.Usage)
	}

	// The organization's key may not raise its own quota; the admin may.
	checkError(t, f.do("PATCH", "/api/organizations/"+orgID, f.orgKey, `{"allow_overage":true}`), http.StatusForbidden, "forbidden")
	checkError(t, f.do("PATCH", "/api/organizations/"+otherOrgID, f.orgKey, `{"allow_overage":true}`), http.StatusNotFound, "not_found")
	var o struct {
		MonthlyQuota int64 `json:"monthly_quota"`
		AllowOverage bool  `json:"allow_overage"`
	}
	f.mustDo("PATCH", "/api/organizations/"+orgID, f.adminKey, `{"allow_overage":true}`, http.StatusOK, &o)
	if o.MonthlyQuota != 3 || !o.AllowOverage {
		t.Errorf("PATCH answered %+v, want quota 3 with overage", o)
	}
	f.mustDo("POST", "/api/events", f.orgKey, `{"type":"invoice.paid","data":{"n":4}}`, http.StatusAccepted, nil)
	f.mustDo("GET", "/api/usage?organization="+orgID, f.adminKey, "", http.StatusOK, &u)
	if u.Usage != 4 {
		t.Errorf("usage with overage = %d, want 4", u.Usage)
	}

	// Two seconds later it is December (UTC): a fresh month.
	c.set(c.now().Add(2 * time.Second))
	f.mustDo("GET", "/api/usage", f.orgKey, "", http.StatusOK, &u)
	if u != (usageJSON{orgID, "2026-12", 0, 3}) {
		t.Errorf("usage in December = %+v", u)
	}
	f.mustDo("GET", "/api/usage?period=2026-11", f.orgKey, "", http.StatusOK, &u)
	if u.Period != "2026-11" || u.Usage != 4 {
		t.Errorf("usage of November asked in December = %+v", u)
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	f := setup(t, options{})
	for _, c := range []struct {
		method, path, key, body string
		status                  int
		code                    string
	}{
		{"GET", "/api/usage", "", "", http.StatusUnauthorized, "unauthorized"},
		{"GET", "/api/usage", f.adminKey, "", http.StatusBadRequest, "invalid_field"},
		{"GET", "/api/usage?organization=nope", f.adminKey, "", http.StatusNotFound, "not_found"},
		{"GET", "/api/usage?period=2026-13", f.orgKey, "", http.StatusBadRequest, "invalid_field"},
		{"GET", "/api/usage?period=november", f.orgKey, "", http.StatusBadRequest, "invalid_field"},
		{"PATCH", "/api/organizations/" + orgID, f.adminKey, `{"monthly_quota":-1}`, http.StatusBadRequest, "invalid_field"},
		{"PATCH", "/api/organizations/" + orgID, f.adminKey, `{"allow_overage":"yes"}`, http.StatusBadRequest, "invalid_field"},
		{"PATCH", "/api/organizations/" + orgID, f.adminKey, `{"id":"renamed"}`, http.StatusBadRequest, "invalid_field"},
		{"PATCH", "/api/organizations/" + orgID, f.adminKey, `{"name":""}`, http.StatusBadRequest, "invalid_field"},
		{"PATCH", "/api/organizations/nope", f.adminKey, `{"monthly_quota":1}`, http.StatusNotFound, "not_found"},
	} {
		checkError(t, f.do(c.method, c.path, c.key, c.body), c.status, c.code)
	}
	// An organization key sees its own usage only, whatever ?organization= says.
	var u usageJSON
	f.mustDo("GET", "/api/usage?organization="+otherOrgID, f.orgKey, "", http.StatusOK, &u)
	if u.Organization != orgID {
		t.Errorf("acme's key asking for other's usage got %+v, want acme's", u)
	}
}
