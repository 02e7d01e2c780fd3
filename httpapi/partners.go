package httpapi

import (
	"math"
	"net/http"
	"net/netip"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/ids"
	"github.com/hookd/hookd/secret"
	"github.com/hookd/hookd/signature"
)

type rateLimitJSON struct {
	PerSecond *float64 `json:"per_second"`
	Burst     *int     `json:"burst"`
}

// partnerRequest is the body of POST and PATCH /api/partners.
type partnerRequest struct {
	Organization *string        `json:"organization"`
	Name         *string        `json:"name"`
	IPAllowlist  *[]string      `json:"ip_allowlist"`
	RateLimit    *rateLimitJSON `json:"rate_limit"`
	Enabled      *bool          `json:"enabled"`
}

type partnerJSON struct {
	ID           string   `json:"id"`
	Organization string   `json:"organization"`
	Name         string   `json:"name"`
	IPAllowlist  []string `json:"ip_allowlist"`
	RateLimit    struct {
		PerSecond float64 `json:"per_second"`
		Burst     int     `json:"burst"`
	} `json:"rate_limit"`
	Enabled   bool    `json:"enabled"`
	APIKey    string  `json:"api_key,omitempty"`
	Secret    string  `json:"secret,omitempty"`
	CreatedAt *string `json:"created_at"`
	UpdatedAt *string `json:"updated_at"`
}

func toPartnerJSON(p *hookd.Partner) partnerJSON {
	j := partnerJSON{ID: p.ID, Organization: p.OrgID, Name: p.Name, IPAllowlist: []string{}, Enabled: p.Enabled,
		CreatedAt: timeJSON(p.CreatedAt), UpdatedAt: timeJSON(p.UpdatedAt)}
	for _, pfx := range p.IPAllowlist {
		j.IPAllowlist = append(j.IPAllowlist, pfx.String())
	}
	j.RateLimit.PerSecond, j.RateLimit.Burst = p.RateLimit.PerSecond, p.RateLimit.Burst
	return j
}

// parseAllowlist reads CIDR prefixes or single addresses (IPv4 or IPv6).
func parseAllowlist(entries []string) ([]netip.Prefix, error) {
	if len(entries) > hookd.MaxAllowlist {
		return nil, hookd.FieldError("ip_allowlist", "must have at most %d entries", hookd.MaxAllowlist)
	}
	out := make([]netip.Prefix, 0, len(entries))
	for _, e := range entries {
		pfx, err := netip.ParsePrefix(e)
		if err != nil {
			a, aErr := netip.ParseAddr(e)
			if aErr != nil || a.Zone() != "" {
				return nil, hookd.FieldError("ip_allowlist", "%q is not an IP address or CIDR prefix such as 203.0.113.0/24", e)
			}
			pfx = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		if pfx.Addr().Is4In6() {
			if pfx.Bits() < 96 {
				return nil, hookd.FieldError("ip_allowlist", "%q mixes IPv4-mapped and plain IPv6 addresses; give an IPv4 or IPv6 prefix", e)
			}
			pfx = netip.PrefixFrom(pfx.Addr().Unmap(), pfx.Bits()-96)
		}
		if pfx = pfx.Masked(); !pfx.IsValid() {
			return nil, hookd.FieldError("ip_allowlist", "%q is not an IP address or CIDR prefix such as 203.0.113.0/24", e)
		}
		out = append(out, pfx)
	}
	return out, nil
}

// apply copies the fields present in req onto p.
func (req *partnerRequest) apply(p *hookd.Partner) error {
	if req.Name != nil {
		p.Name = *req.Name
	}
	if req.IPAllowlist != nil {
		list, err := parseAllowlist(*req.IPAllowlist)
		if err != nil {
			return err
		}
		p.IPAllowlist = list
	}
	if req.RateLimit != nil {
		if req.RateLimit.PerSecond != nil {
			if v := *req.RateLimit.PerSecond; math.IsNaN(v) || math.IsInf(v, 0) {
				return hookd.FieldError("rate_limit.per_second", "must be a number")
			}
			p.RateLimit.PerSecond = *req.RateLimit.PerSecond
			if req.RateLimit.Burst == nil {
				p.RateLimit.Burst = min(hookd.MaxPartnerBurst, max(1, int(math.Ceil(2*p.RateLimit.PerSecond))))
			}
		}
		if req.RateLimit.Burst != nil {
			p.RateLimit.Burst = *req.RateLimit.Burst
		}
	}
	if req.Enabled != nil {
		p.Enabled = *req.Enabled
	}
	return p.Validate()
}

func (s *Server) createPartner(w http.ResponseWriter, r *http.Request, pr principal) error {
	var req partnerRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	org, err := owner(pr, req.Organization)
	if err != nil {
		return err
	}
	if req.Name == nil {
		return hookd.FieldError("name", "is required")
	}
	now := s.now()
	apiKey, sec := secret.NewAPIKey("pk_"), newPartnerSecret()
	p := &hookd.Partner{ID: ids.NewAt("ptn", now), OrgID: org, APIKeyHash: secret.HashKey(apiKey), Secret: sec,
		RateLimit: hookd.DefaultPartnerRateLimit, Enabled: true, CreatedAt: now, UpdatedAt: now}
	if err := req.apply(p); err != nil {
		return err
	}
	if err := s.cfg.Store.CreatePartner(r.Context(), p); err != nil {
		return err
	}
	noteTarget(r, p.OrgID, p.ID)
	j := toPartnerJSON(p)
	j.APIKey, j.Secret = apiKey, sec
	writeJSON(w, http.StatusCreated, j)
	return nil
}

func (s *Server) getPartner(w http.ResponseWriter, r *http.Request, pr principal) error {
	p, err := s.cfg.Store.Partner(r.Context(), pr.orgID, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toPartnerJSON(p))
	return nil
}

func (s *Server) patchPartner(w http.ResponseWriter, r *http.Request, pr principal) error {
	var req partnerRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	if req.Organization != nil {
		return hookd.FieldError("organization", "cannot be changed")
	}
	p, err := s.cfg.Store.UpdatePartner(r.Context(), pr.orgID, r.PathValue("id"), func(p *hookd.Partner) error {
		if err := req.apply(p); err != nil {
			return err
		}
		p.UpdatedAt = s.now()
		return nil
	})
	if err != nil {
		return err
	}
	noteTarget(r, p.OrgID, p.ID)
	writeJSON(w, http.StatusOK, toPartnerJSON(p))
	return nil
}

func (s *Server) deletePartner(w http.ResponseWriter, r *http.Request, pr principal) error {
	id := r.PathValue("id")
	p, err := s.cfg.Store.Partner(r.Context(), pr.orgID, id)
	if err != nil {
		return err
	}
	if err := s.cfg.Store.DeletePartner(r.Context(), pr.orgID, id); err != nil {
		return err
	}
	noteTarget(r, p.OrgID, id)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) rotatePartnerSecret(w http.ResponseWriter, r *http.Request, pr principal) error {
	rot, err := s.decodeRotation(w, r)
	if err != nil {
		return err
	}
	next, err := rot.next(signature.Timestamped, newPartnerSecret)
	if err != nil {
		return err
	}
	p, err := s.cfg.Store.UpdatePartner(r.Context(), pr.orgID, r.PathValue("id"), func(p *hookd.Partner) error {
		p.UpdatedAt = s.now()
		hookd.Rotate(&p.Secret, &p.PreviousSecret, &p.PreviousSecretExpires, next, p.UpdatedAt, rot.grace)
		return nil
	})
	if err != nil {
		return err
	}
	noteTarget(r, p.OrgID, p.ID)
	j := secretJSON{Secret: p.Secret}
	if p.PreviousSecret != "" {
		j.PreviousSecretExpiresAt = timeJSON(p.PreviousSecretExpires)
	}
	writeJSON(w, http.StatusOK, j)
	return nil
}

// newPartnerSecret returns a fresh partner signing secret: base62, so that it can
// be passed to openssl -hmac unquoted.
func newPartnerSecret() string { return secret.NewAPIKey("psec_") }
