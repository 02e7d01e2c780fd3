package hookdtest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"
)

// Partner is a partner of SPEC §6 as POST /api/partners created it, with the
// API key and secret it answered once.
type Partner struct {
	ID     string // ptn_…
	Org    string // the organization its events go to
	APIKey string // the x-api-key
	Secret string // the signing secret
}

// CreatePartner creates a partner (POST /api/partners) with key and body,
// failing the test unless it answers 201 with an id, an API key and a secret.
func (h *Hookd) CreatePartner(t testing.TB, key string, body map[string]any) Partner {
	t.Helper()
	m := h.must(t, http.StatusCreated, http.MethodPost, "/api/partners", key, body)
	p := Partner{}
	p.ID, _ = m["id"].(string)
	p.Org, _ = m["organization"].(string)
	p.APIKey, _ = m["api_key"].(string)
	p.Secret, _ = m["secret"].(string)
	if p.ID == "" || p.Org == "" || p.APIKey == "" || p.Secret == "" {
		t.Fatalf("create partner: answer %s lacks an id, organization, api_key or secret", JSON(m))
	}
	return p
}

// PartnerSignature returns the x-webhook-signature of SPEC §6 for a request
// whose x-timestamp is timestamp: "sha256=" + lowercase hex of
// HMAC-SHA256(secret, timestamp + "." + body).
func PartnerSignature(secret, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(timestamp + "."))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Header returns the headers of a request to POST /api/webhooks/events by p,
// signed with p's secret at ts: x-api-key, x-timestamp,
// x-webhook-signature and Content-Type: application/json.
func (p Partner) Header(ts time.Time, body []byte) http.Header {
	return SignedHeader(p.APIKey, p.Secret, ts.Unix(), body)
}

// SignedHeader returns the headers of a partner request with apiKey, signed
// with secret at unix seconds ts.
func SignedHeader(apiKey, secret string, ts int64, body []byte) http.Header {
	raw := strconv.FormatInt(ts, 10)
	return http.Header{
		"X-Api-Key":           {apiKey},
		"X-Timestamp":         {raw},
		"X-Webhook-Signature": {PartnerSignature(secret, raw, body)},
		"Content-Type":        {"application/json"},
	}
}

// PartnerEventBody returns the JSON body {"id", "type", "data"} of a partner
// event.
func PartnerEventBody(t testing.TB, id, typ string, data any) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"id": id, "type": typ, "data": data})
	if err != nil {
		t.Fatalf("encode partner event: %v", err)
	}
	return b
}

// Inbound sends body with header to POST /api/webhooks/events and returns the
// answer's status, header and JSON object (nil if it is not one). Content-Type
// defaults to application/json. It fails the test on a transport error.
func (h *Hookd) Inbound(t testing.TB, header http.Header, body []byte) (int, http.Header, map[string]any) {
	t.Helper()
	status, rh, raw := h.Raw(t, http.MethodPost, "/api/webhooks/events", "", header, body)
	return status, rh, decodeObject(raw)
}

// SendPartnerEvent sends the event {id, typ, data} as p, signed now, and
// returns the answer's status, header and JSON object.
func (h *Hookd) SendPartnerEvent(t testing.TB, p Partner, id, typ string, data any) (int, http.Header, map[string]any) {
	t.Helper()
	body := PartnerEventBody(t, id, typ, data)
	return h.Inbound(t, p.Header(time.Now(), body), body)
}

// InboundStatus queries GET /api/webhooks/status?eventId=eventID with apiKey
// as the x-api-key ("" for none) and returns the answer's status and JSON object.
func (h *Hookd) InboundStatus(t testing.TB, apiKey, eventID string) (int, map[string]any) {
	t.Helper()
	var hd http.Header
	if apiKey != "" {
		hd = http.Header{"X-Api-Key": {apiKey}}
	}
	status, _, raw := h.Raw(t, http.MethodGet, "/api/webhooks/status?"+url.Values{"eventId": {eventID}}.Encode(), "", hd, nil)
	return status, decodeObject(raw)
}

// InboundRetry asks POST /api/webhooks/events/{eventID}/retry with apiKey as
// the x-api-key and returns the answer's status and JSON object.
func (h *Hookd) InboundRetry(t testing.TB, apiKey, eventID string) (int, map[string]any) {
	t.Helper()
	status, _, raw := h.Raw(t, http.MethodPost, "/api/webhooks/events/"+url.PathEscape(eventID)+"/retry", "",
		http.Header{"X-Api-Key": {apiKey}}, nil)
	return status, decodeObject(raw)
}

// WaitInboundStatus polls the status of a partner's event every 50 ms (each
// poll takes a token from the partner's rate limit) until ok accepts an answer
// of 200, and returns it. It fails the test after timeout, showing the last
// answer.
func (h *Hookd) WaitInboundStatus(t testing.TB, apiKey, eventID string, timeout time.Duration, ok func(st map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		status, st := h.InboundStatus(t, apiKey, eventID)
		if status == http.StatusOK && ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("status of event %s: condition not met within %s; last: %d %s", eventID, timeout, status, JSON(st))
		}
		<-tick.C
	}
}

// Audit returns the raw answer of GET /api/audit?query with key, failing the
// test unless it answers 200, and its records, newest first (at most 500).
func (h *Hookd) Audit(t testing.TB, key string, query url.Values) ([]byte, []map[string]any) {
	t.Helper()
	q := url.Values{"limit": {"500"}}
	for k, vs := range query {
		q[k] = vs
	}
	status, _, raw := h.Raw(t, http.MethodGet, "/api/audit?"+q.Encode(), key, nil, nil)
	if status != http.StatusOK {
		t.Fatalf("GET /api/audit?%s = %d %s, want 200", q.Encode(), status, raw)
	}
	return raw, Items(decodeObject(raw))
}

// Send sends req with the Hookd's client (whose idle connections are closed
// when the test ends) and returns the answer's status, header and body. The
// request's URL must start with URL(). It fails the test on a transport error.
func (h *Hookd) Send(t testing.TB, req *http.Request) (int, http.Header, []byte) {
	t.Helper()
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read answer: %v", req.Method, req.URL, err)
	}
	return resp.StatusCode, resp.Header, b
}

func decodeObject(raw []byte) map[string]any {
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil
	}
	return m
}
