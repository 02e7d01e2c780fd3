package httpapi

import (
	"net/http"
	"time"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/ids"
	"github.com/hookd/hookd/secret"
)

type orgRequest struct {
	ID           *string `json:"id"`
	Name         *string `json:"name"`
	MonthlyQuota *int64  `json:"monthly_quota"`
	AllowOverage *bool   `json:"allow_overage"`
}

type orgJSON struct {
	ID           string  `json:"id"`
	Name         string  `json:"name"`
	MonthlyQuota int64   `json:"monthly_quota"`
	AllowOverage bool    `json:"allow_overage"`
	CreatedAt    *string `json:"created_at"`
}

func toOrgJSON(o *hookd.Organization) orgJSON {
	return orgJSON{ID: o.ID, Name: o.Name, MonthlyQuota: o.MonthlyQuota, AllowOverage: o.AllowOverage, CreatedAt: timeJSON(o.CreatedAt)}
}

func (s *Server) createOrganization(w http.ResponseWriter, r *http.Request, p principal) error {
	if !p.admin() {
		return hookd.Errorf(hookd.EFORBIDDEN, "only the admin key can create organizations")
	}
	var req orgRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	if req.Name == nil {
		return hookd.FieldError("name", "is required")
	}
	o := &hookd.Organization{ID: ids.New("org"), Name: *req.Name, CreatedAt: s.now()}
	if req.ID != nil {
		o.ID = *req.ID
	}
	if req.MonthlyQuota != nil {
		o.MonthlyQuota = *req.MonthlyQuota
	}
	if req.AllowOverage != nil {
		o.AllowOverage = *req.AllowOverage
	}
	if err := o.Validate(); err != nil {
		return err
	}
	if err := s.cfg.Store.CreateOrganization(r.Context(), o); err != nil {
		return err
	}
	noteTarget(r, o.ID, o.ID)
	writeJSON(w, http.StatusCreated, toOrgJSON(o))
	return nil
}

// updateOrganization changes an organization's name, quota or overage setting (admin only).
func (s *Server) updateOrganization(w http.ResponseWriter, r *http.Request, p principal) error {
	id := r.PathValue("org")
	if !p.admin() {
		if id != p.orgID {
			return hookd.NotFound("organization", id)
		}
		return hookd.Errorf(hookd.EFORBIDDEN, "only the admin key can change an organization")
	}
	var req orgRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	if req.ID != nil && *req.ID != id {
		return hookd.FieldError("id", "cannot be changed")
	}
	o, err := s.cfg.Store.UpdateOrganization(r.Context(), id, func(o *hookd.Organization) error {
		if req.Name != nil {
			o.Name = *req.Name
		}
		if req.MonthlyQuota != nil {
			o.MonthlyQuota = *req.MonthlyQuota
		}
		if req.AllowOverage != nil {
			o.AllowOverage = *req.AllowOverage
		}
		return o.Validate()
	})
	if err != nil {
		return err
	}
	noteTarget(r, o.ID, o.ID)
	writeJSON(w, http.StatusOK, toOrgJSON(o))
	return nil
}

// getUsage answers an organization's usage of the current month (or ?period=YYYY-MM).
func (s *Server) getUsage(w http.ResponseWriter, r *http.Request, p principal) error {
	org := scope(r, p)
	if org == "" {
		return hookd.FieldError("organization", "is required with the admin key (?organization=…)")
	}
	period := hookd.UsagePeriod(s.now())
	if v := r.URL.Query().Get("period"); v != "" {
		t, err := time.Parse("2006-01", v)
		if err != nil {
			return hookd.FieldError("period", "must be a month as YYYY-MM")
		}
		period = hookd.UsagePeriod(t)
	}
	u, err := s.cfg.Store.Usage(r.Context(), org, period)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"organization": u.OrgID, "period": u.Period, "usage": u.Events, "quota": u.Quota})
	return nil
}

// visibleOrg returns the organization named in the path if p may see it.
func (s *Server) visibleOrg(r *http.Request, p principal) (*hookd.Organization, error) {
	id := r.PathValue("org")
	if !p.admin() && id != p.orgID {
		return nil, hookd.NotFound("organization", id)
	}
	return s.cfg.Store.Organization(r.Context(), id)
}

func (s *Server) getOrganization(w http.ResponseWriter, r *http.Request, p principal) error {
	o, err := s.visibleOrg(r, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toOrgJSON(o))
	return nil
}

// deleteKey revokes an organization key: from the next request on it
// authenticates nothing. The organization's own keys may revoke each other and
// themselves; another organization's key, or an admin key, answers 404.
func (s *Server) deleteKey(w http.ResponseWriter, r *http.Request, p principal) error {
	orgID, id := r.PathValue("org"), r.PathValue("id")
	if !p.admin() && orgID != p.orgID {
		return hookd.NotFound("key", id)
	}
	noteTarget(r, orgID, id)
	if err := s.cfg.Store.DeleteAPIKey(r.Context(), orgID, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) createKey(w http.ResponseWriter, r *http.Request, p principal) error {
	o, err := s.visibleOrg(r, p)
	if err != nil {
		return err
	}
	key := secret.NewAPIKey("hk_")
	k := &hookd.APIKey{ID: ids.New("key"), OrgID: o.ID, Hash: secret.HashKey(key), CreatedAt: s.now()}
	if err := s.cfg.Store.CreateAPIKey(r.Context(), k); err != nil {
		return err
	}
	noteTarget(r, o.ID, k.ID)
	writeJSON(w, http.StatusCreated, map[string]any{
		"id": k.ID, "key": key, "organization": o.ID, "created_at": timeJSON(k.CreatedAt),
	})
	return nil
}
