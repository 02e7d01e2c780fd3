package delivery

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/ids"
	"github.com/hookd/hookd/netguard"
	"github.com/hookd/hookd/signature"
)

// result is an attempt plus what the schedule needs to know about its answer.
type result struct {
	attempt    hookd.Attempt
	retryAfter time.Duration
}

// envelope is the default delivery body.
type envelope struct {
	ID           string          `json:"id"`
	Type         string          `json:"type"`
	Timestamp    string          `json:"timestamp"`
	Organization string          `json:"organization"`
	Data         json.RawMessage `json:"data"`
}

// Body returns the request body for ev in the given payload mode.
func Body(ev *hookd.Event, payload string) ([]byte, error) {
	if payload == hookd.PayloadRaw {
		return ev.Data, nil
	}
	ts := ev.CreatedAt.UTC().Format(time.RFC3339) // digits and ASCII separators: plain
	if !verbatim(ev.Data) || !plain(ev.ID) || !plain(ev.Type) || !plain(ev.OrgID) {
		return json.Marshal(envelope{ID: ev.ID, Type: ev.Type, Timestamp: ts, Organization: ev.OrgID, Data: ev.Data})
	}
	// What json.Marshal would write, without scanning the data again: it is
	// valid JSON (checked when the event was published), and json.Marshal would
	// copy it unchanged.
	b := make([]byte, 0, len(ev.Data)+len(ev.ID)+len(ev.Type)+len(ev.OrgID)+len(ts)+64)
	b = append(b, `{"id":"`...)
	b = append(b, ev.ID...)
	b = append(b, `","type":"`...)
	b = append(b, ev.Type...)
	b = append(b, `","timestamp":"`...)
	b = append(b, ts...)
	b = append(b, `","organization":"`...)
	b = append(b, ev.OrgID...)
	b = append(b, `","data":`...)
	b = append(b, ev.Data...)
	return append(b, '}'), nil
}

// verbatim reports whether json.Marshal copies valid JSON data unchanged as a
// json.RawMessage: no whitespace between tokens to compact away, and none of
// the characters it escapes even there (<, > and &, and U+2028 and U+2029,
// whose UTF-8 encodings start with 0xE2, as do a few other characters).
func verbatim(data []byte) bool {
	in := false // inside a string
	for i := 0; i < len(data); i++ {
		switch c := data[i]; {
		case c == '<' || c == '>' || c == '&' || c == 0xe2:
			return false
		case in && c == '\\':
			i++ // the escaped character, ASCII in valid JSON
		case c == '"':
			in = !in
		case !in && c <= ' ':
			return false
		}
	}
	return len(data) > 0
}

// plain reports whether json.Marshal writes s as itself between quotes:
// printable ASCII, none of it escaped.
func plain(s string) bool {
	for i := range len(s) {
		switch c := s[i]; {
		case c < ' ' || c >= 0x7f, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

// drainLimit is how much of a response body is read (and discarded past the
// excerpt) so that the connection can be reused.
const drainLimit = 64 << 10

// attempt sends c once, within ctx's deadline (the caller sets it: the attempt
// timeout, or earlier). It never returns an error: failures are described in
// the attempt's Error.
func (e *Engine) attempt(ctx context.Context, c *hookd.Claim) result {
	start := e.cfg.Now()
	ep := &c.Endpoint
	a := hookd.Attempt{
		ID:         ids.NewAt("att", start),
		DeliveryID: c.Delivery.ID,
		OrgID:      c.Delivery.OrgID,
		Number:     c.Delivery.Attempts + 1,
		URL:        hookd.RedactURL(ep.URL),
		CreatedAt:  start,
	}
	fail := func(format string, args ...any) result {
		a.Error = errorf(format, args...)
		a.Duration = e.cfg.Now().Sub(start)
		return result{attempt: a}
	}
	body, err := Body(&c.Event, ep.Payload)
	if err != nil {
		return fail("build body: %v", err)
	}
	req, err := e.request(ctx, c, body, start)
	if err != nil {
		return fail("%v", err)
	}
	a.RequestHeaders = maskHeaders(req.Header, ep)
	resp, err := e.client.Do(req)
	if err != nil {
		switch {
		case errors.Is(err, netguard.ErrPrivateAddress):
			return fail("refused to connect: the target resolves to a non-public address")
		case errors.Is(err, context.DeadlineExceeded):
			// Usually the attempt timeout; otherwise the end of the lease (see deliver).
			return fail("timed out after %s", e.cfg.Now().Sub(start).Round(time.Millisecond))
		default:
			return fail("request failed: %v", unwrapURLError(err))
		}
	}
	excerpt, readErr := io.ReadAll(io.LimitReader(resp.Body, hookd.MaxResponseExcerpt))
	io.Copy(io.Discard, io.LimitReader(resp.Body, drainLimit))
	resp.Body.Close()
	a.Duration = e.cfg.Now().Sub(start)
	a.StatusCode = resp.StatusCode
	a.ResponseBody = strings.ToValidUTF8(string(excerpt), "\uFFFD")
	r := result{attempt: a}
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		if readErr != nil {
			// The answer was given; a broken body does not undo it.
			r.attempt.ResponseBody += "\n[hookd: reading the response failed: " + readErr.Error() + "]"
		}
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		r.attempt.Error = "the endpoint answered " + resp.Status + "; redirects are not followed"
	default:
		r.attempt.Error = "the endpoint answered " + resp.Status
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
			r.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), e.cfg.Now())
		}
	}
	return r
}

// request builds the signed POST for c.
func (e *Engine) request(ctx context.Context, c *hookd.Claim, body []byte, now time.Time) (*http.Request, error) {
	ep := &c.Endpoint
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(body))
	if err != nil {
		return nil, errors.New("the endpoint URL is invalid")
	}
	u := req.URL
	if u.Scheme != "https" && !(u.Scheme == "http" && e.cfg.Policy.AllowHTTP) {
		return nil, errors.New("refused: the endpoint URL must use https")
	}
	for k, v := range ep.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", e.cfg.UserAgent)
	req.Header.Set("Webhook-Id", c.Event.ID)
	req.Header.Set("Webhook-Timestamp", strconv.FormatInt(now.Unix(), 10))
	scheme, err := signature.ParseScheme(ep.SignatureScheme)
	if err != nil {
		return nil, err
	}
	if scheme == signature.SharedSecret && u.Scheme != "https" {
		return nil, errors.New("refused: the shared-secret scheme sends the secret itself and needs https")
	}
	sig, err := signature.Sign(scheme, ep.SignatureHeader, ep.Secrets(now), signature.Message{ID: c.Event.ID, Timestamp: now, Body: body})
	if err != nil {
		return nil, err
	}
	for k, vs := range sig {
		req.Header[k] = vs
	}
	return req, nil
}

// maskHeaders returns the request headers for the delivery log, with secret values
// masked: the shared-secret header and custom headers whose names suggest a credential.
func maskHeaders(h http.Header, ep *hookd.Endpoint) map[string]string {
	out := make(map[string]string, len(h))
	secretHeader := ""
	if ep.SignatureScheme == string(signature.SharedSecret) {
		secretHeader = http.CanonicalHeaderKey(signature.SharedSecret.DefaultHeader())
		if ep.SignatureHeader != "" {
			secretHeader = http.CanonicalHeaderKey(ep.SignatureHeader)
		}
	}
	previous := signature.PreviousHeader(secretHeader)
	for k, vs := range h {
		v := strings.Join(vs, ", ")
		if (secretHeader != "" && (k == secretHeader || k == previous)) || sensitive(k) {
			v = "********"
		}
		out[k] = v
	}
	return out
}

func sensitive(name string) bool {
	n := strings.ToLower(name)
	for _, s := range []string{"authorization", "token", "secret", "password", "api-key", "apikey", "cookie"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

// parseRetryAfter reads a Retry-After value in seconds or as an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil && s >= 0 {
		return time.Duration(min(s, int64(hookd.MaxRetryInterval/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
