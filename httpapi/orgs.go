package httpapi

import (
	"net/http"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/ids"
	"github.com/hookd/hookd/secret"
)

type orgRequest struct {
	ID           *string `json:"id"`
	Name         *string `json:"name"`
	MonthlyQuota *int64  `json:"monthly_quota"`
}

type orgJSON struct {
	ID           string  `json:"id"`
	Name         string  `json:"name"`
	MonthlyQuota int64   `json:"monthly_quota"`
	CreatedAt    *string `json:"created_at"`
}

func toOrgJSON(o *hookd.Organization) orgJSON {
	return orgJSON{ID: o.ID, Name: o.Name, MonthlyQuota: o.MonthlyQuota, CreatedAt: timeJSON(o.CreatedAt)}
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
