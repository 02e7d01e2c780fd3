package storetest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/ids"
)

var organizationTests = []test{
	{"CreateAndGet", func(t *testing.T, s hookd.Store) {
		want := &hookd.Organization{ID: ids.New("org"), Name: "Acme Inc.", MonthlyQuota: 1_000_000, CreatedAt: base}
		if err := s.CreateOrganization(t.Context(), want); err != nil {
			t.Fatalf("CreateOrganization: %v", err)
		}
		got, err := s.Organization(t.Context(), want.ID)
		if err != nil {
			t.Fatalf("Organization: %v", err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Organization (-want +got):\n%s", diff)
		}
	}},
	{"DuplicateID", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		dup := &hookd.Organization{ID: o.ID, Name: "Other", CreatedAt: base.Add(time.Hour)}
		wantCode(t, s.CreateOrganization(t.Context(), dup), hookd.ECONFLICT, "CreateOrganization with a taken id")
		got, err := s.Organization(t.Context(), o.ID)
		if err != nil {
			t.Fatalf("Organization: %v", err)
		}
		if diff := cmp.Diff(o, got); diff != "" {
			t.Errorf("Organization after the conflict (-want +got):\n%s", diff)
		}
	}},
	{"Unknown", func(t *testing.T, s hookd.Store) {
		_, err := s.Organization(t.Context(), "no-such-org")
		wantCode(t, err, hookd.ENOTFOUND, "Organization(unknown)")
	}},
}

var apiKeyTests = []test{
	{"CreateAndLookUp", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		for _, k := range []*hookd.APIKey{
			{ID: ids.New("key"), OrgID: "", Hash: "aa01" + ids.New("h"), CreatedAt: base},
			{ID: ids.New("key"), OrgID: o.ID, Hash: "bb02" + ids.New("h"), CreatedAt: base.Add(time.Second)},
		} {
			if err := s.CreateAPIKey(t.Context(), k); err != nil {
				t.Fatalf("CreateAPIKey(org %q): %v", k.OrgID, err)
			}
			got, err := s.APIKeyByHash(t.Context(), k.Hash)
			if err != nil {
				t.Fatalf("APIKeyByHash: %v", err)
			}
			if diff := cmp.Diff(k, got); diff != "" {
				t.Errorf("APIKeyByHash (-want +got):\n%s", diff)
			}
			if got.Admin() != (k.OrgID == "") {
				t.Errorf("key of org %q: Admin() = %v", k.OrgID, got.Admin())
			}
		}
	}},
	{"UnknownHash", func(t *testing.T, s hookd.Store) {
		_, err := s.APIKeyByHash(t.Context(), "0123456789abcdef")
		wantCode(t, err, hookd.ENOTFOUND, "APIKeyByHash(unknown)")
	}},
	{"UnknownOrganization", func(t *testing.T, s hookd.Store) {
		k := &hookd.APIKey{ID: ids.New("key"), OrgID: "no-such-org", Hash: "cc03" + ids.New("h"), CreatedAt: base}
		wantCode(t, s.CreateAPIKey(t.Context(), k), hookd.ENOTFOUND, "CreateAPIKey for an unknown organization")
		_, err := s.APIKeyByHash(t.Context(), k.Hash)
		wantCode(t, err, hookd.ENOTFOUND, "APIKeyByHash of the rejected key")
	}},
	{"Delete", func(t *testing.T, s hookd.Store) {
		a, b := mustOrg(t, s), mustOrg(t, s)
		keys := map[string]*hookd.APIKey{}
		for name, org := range map[string]string{"admin": "", "a1": a.ID, "a2": a.ID, "b1": b.ID} {
			k := &hookd.APIKey{ID: ids.New("key"), OrgID: org, Hash: ids.New("hash"), CreatedAt: base}
			if err := s.CreateAPIKey(t.Context(), k); err != nil {
				t.Fatalf("CreateAPIKey: %v", err)
			}
			keys[name] = k
		}
		// Another organization's key, an admin key, an unknown id: not found, nothing deleted.
		wantCode(t, s.DeleteAPIKey(t.Context(), a.ID, keys["b1"].ID), hookd.ENOTFOUND, "DeleteAPIKey of another organization's key")
		wantCode(t, s.DeleteAPIKey(t.Context(), a.ID, keys["admin"].ID), hookd.ENOTFOUND, "DeleteAPIKey of the admin key")
		wantCode(t, s.DeleteAPIKey(t.Context(), "", keys["admin"].ID), hookd.ENOTFOUND, "DeleteAPIKey of the admin key without organization")
		wantCode(t, s.DeleteAPIKey(t.Context(), a.ID, "key_unknown"), hookd.ENOTFOUND, "DeleteAPIKey(unknown)")
		if err := s.DeleteAPIKey(t.Context(), a.ID, keys["a1"].ID); err != nil {
			t.Fatalf("DeleteAPIKey: %v", err)
		}
		wantCode(t, s.DeleteAPIKey(t.Context(), a.ID, keys["a1"].ID), hookd.ENOTFOUND, "DeleteAPIKey twice")
		for name, k := range keys {
			_, err := s.APIKeyByHash(t.Context(), k.Hash)
			if name == "a1" {
				wantCode(t, err, hookd.ENOTFOUND, "APIKeyByHash of the deleted key")
			} else if err != nil {
				t.Errorf("APIKeyByHash of key %s, not deleted: %v", name, err)
			}
		}
	}},
	{"CountAdminKeys", func(t *testing.T, s hookd.Store) {
		count := func(want int) {
			t.Helper()
			n, err := s.CountAdminKeys(t.Context())
			if err != nil {
				t.Fatalf("CountAdminKeys: %v", err)
			}
			if n != want {
				t.Errorf("CountAdminKeys = %d, want %d", n, want)
			}
		}
		count(0)
		o := mustOrg(t, s)
		for i, org := range []string{"", o.ID, "", o.ID, o.ID} {
			k := &hookd.APIKey{ID: ids.New("key"), OrgID: org, Hash: ids.New("hash"), CreatedAt: base.Add(time.Duration(i) * time.Second)}
			if err := s.CreateAPIKey(t.Context(), k); err != nil {
				t.Fatalf("CreateAPIKey: %v", err)
			}
		}
		count(2)
	}},
}
