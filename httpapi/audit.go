package httpapi

import (
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/hookd/hookd"
)

// auditNote is a management action's audit record in the making; handlers name
// the organization and object they acted on with noteTarget.
type auditNote struct {
	rec  hookd.AuditRecord
	code string // the error code answered, if any
}

type auditKey struct{}

// noteTarget records, for the audit log, which organization and object the
// request acted on. It does nothing on routes that are not audited.
func noteTarget(r *http.Request, orgID, target string) {
	if n, ok := r.Context().Value(auditKey{}).(*auditNote); ok {
		if orgID != "" {
			n.rec.OrgID = orgID
		}
		n.rec.Target = target
	}
}

// statusWriter remembers the status code written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// failAudited answers err and notes its code for the audit record.
func (s *Server) failAudited(w http.ResponseWriter, r *http.Request, note *auditNote, err error) {
	if note != nil {
		note.code = hookd.ErrorCode(err)
	}
	s.fail(w, r, err)
}

// audit appends a management action's record. The request's own context may be
// cancelled by now; the record is written regardless.
func (s *Server) audit(r *http.Request, note *auditNote, status int) {
	rec := note.rec
	rec.Status = status
	rec.Result = hookd.AuditSuccess
	if status >= 400 || note.code != "" {
		rec.Result, rec.Reason = hookd.AuditFailure, note.code
	}
	if rec.Target == "" {
		rec.Target = r.PathValue("id")
		if rec.Target == "" {
			rec.Target = r.PathValue("org")
		}
	}
	s.auditLog.append(r.Context(), rec)
}

// clientIP returns the request's client address: the TCP peer, or, when the peer
// is a trusted proxy, the nearest address in X-Forwarded-For that is not one.
func (s *Server) clientIP(r *http.Request) netip.Addr {
	peer := peerAddr(r)
	if !s.trusted(peer) {
		return peer
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		h := strings.TrimSpace(hops[i])
		if h == "" {
			continue
		}
		a, ok := parseHop(h)
		if !ok {
			// A hop we cannot read: the client is unknown, and no allowlist admits it.
			return netip.Addr{}
		}
		client = a.Unmap()
		if !s.trusted(client) {
			return client
		}
	}
	return client
}

// ipString is an address for the audit log: "" when the client is unknown.
func ipString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// parseHop reads one X-Forwarded-For entry: an address, possibly with a port or in
// brackets ("203.0.113.7", "203.0.113.7:4711", "[2001:db8::1]:4711").
func parseHop(h string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(strings.Trim(h, "[]")); err == nil {
		return a, true
	}
	if ap, err := netip.ParseAddrPort(h); err == nil {
		return ap.Addr(), true
	}
	return netip.Addr{}, false
}

func peerAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

func (s *Server) trusted(a netip.Addr) bool {
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

type auditJSON struct {
	ID           string  `json:"id"`
	Organization *string `json:"organization"`
	Time         *string `json:"time"`
	ActorType    string  `json:"actor_type"`
	Actor        *string `json:"actor"`
	Action       string  `json:"action"`
	Target       *string `json:"target"`
	Result       string  `json:"result"`
	Reason       *string `json:"reason"`
	ClientIP     string  `json:"client_ip"`
	Status       int     `json:"status"`
	Count        int     `json:"count"`
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func (s *Server) listAudit(w http.ResponseWriter, r *http.Request, p principal) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := hookd.AuditFilter{OrgID: scope(r, p), Action: q.Get("action"), Actor: q.Get("actor"), Page: pg}
	if v := q.Get("since"); v != "" {
		if f.Since, err = parseTime("since", v); err != nil {
			return err
		}
	}
	recs, next, err := s.cfg.Store.ListAudit(r.Context(), f)
	if err != nil {
		return err
	}
	out := make([]auditJSON, len(recs))
	for i, rec := range recs {
		out[i] = auditJSON{ID: rec.ID, Organization: optional(rec.OrgID), Time: timeJSON(rec.Time), ActorType: rec.ActorType,
			Actor: optional(rec.Actor), Action: rec.Action, Target: optional(rec.Target), Result: rec.Result,
			Reason: optional(rec.Reason), ClientIP: rec.ClientIP, Status: rec.Status, Count: rec.Count}
	}
	writeJSON(w, http.StatusOK, newList(out, next))
	return nil
}
