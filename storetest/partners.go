package storetest

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hookd/hookd"
	"github.com/hookd/hookd/ids"
)

// equatePrefixes compares netip.Prefix values, whose fields are unexported, by value.
var equatePrefixes = cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })

// partnerOpts compares partners: empty and nil allowlists alike, prefixes by value.
var partnerOpts = cmp.Options{equateEmpty, equatePrefixes}

// keyHash returns the hex SHA-256 of key, as partners' API keys are stored.
func keyHash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// newPartner returns an enabled partner of org with a fresh id, API key hash and
// secret and the default rate limit, changed by mutate if it is not nil. It does not
// store it.
func newPartner(org string, mutate func(*hookd.Partner)) *hookd.Partner {
	id := ids.New("ptn")
	p := &hookd.Partner{
		ID:         id,
		OrgID:      org,
		Name:       "Globex",
		APIKeyHash: keyHash("pk_" + id),
		Secret:     "psec_c2VjcmV0LW9mLQ" + id,
		RateLimit:  hookd.DefaultPartnerRateLimit,
		Enabled:    true,
		CreatedAt:  base,
		UpdatedAt:  base,
	}
	if mutate != nil {
		mutate(p)
	}
	return p
}

// mustPartner creates a partner of org; see newPartner.
func mustPartner(t *testing.T, s hookd.Store, org string, mutate func(*hookd.Partner)) *hookd.Partner {
	t.Helper()
	p := newPartner(org, mutate)
	if err := s.CreatePartner(t.Context(), p); err != nil {
		t.Fatalf("CreatePartner: %v", err)
	}
	return p
}

// mustGetPartner returns the partner as the admin sees it.
func mustGetPartner(t *testing.T, s hookd.Store, id string) *hookd.Partner {
	t.Helper()
	p, err := s.Partner(t.Context(), "", id)
	if err != nil {
		t.Fatalf("Partner(%s): %v", id, err)
	}
	return p
}

// allowlist is an IP allowlist with IPv4 and IPv6 prefixes and single addresses.
func allowlist() []netip.Prefix {
	return []netip.Prefix{
		netip.MustParsePrefix("203.0.113.0/24"),
		netip.MustParsePrefix("198.51.100.7/32"),
		netip.MustParsePrefix("2001:db8::/32"),
		netip.MustParsePrefix("2001:db8:1::5/128"),
	}
}

// fullPartner sets every field of a partner to a non-zero value, in the middle of a
// secret rotation, with times that need the microsecond.
func fullPartner(p *hookd.Partner) {
	p.Name = "Globex payments"
	p.Secret = "psec_bmV3LXBhcnRuZXItc2VjcmV0"
	p.PreviousSecret = "psec_b2xkLXBhcnRuZXItc2VjcmV0"
	p.PreviousSecretExpires = base.Add(24*time.Hour + time.Microsecond)
	p.IPAllowlist = allowlist()
	p.RateLimit = hookd.RateLimit{PerSecond: 12.5, Burst: 40}
	p.Enabled = false
	p.CreatedAt = base.Add(-time.Hour)
	p.UpdatedAt = base.Add(-time.Minute + time.Microsecond)
}

// wantPartner fails t unless the store holds want, looked up by id (as its
// organization and as the admin) and by API key hash.
func wantPartner(t *testing.T, s hookd.Store, want *hookd.Partner, what string) {
	t.Helper()
	for _, org := range []string{want.OrgID, ""} {
		got, err := s.Partner(t.Context(), org, want.ID)
		if err != nil {
			t.Fatalf("%s: Partner(%q, id): %v", what, org, err)
		}
		if diff := cmp.Diff(want, got, partnerOpts); diff != "" {
			t.Errorf("%s: Partner(%q, id) (-want +got):\n%s", what, org, diff)
		}
	}
	got, err := s.PartnerByKeyHash(t.Context(), want.APIKeyHash)
	if err != nil {
		t.Fatalf("%s: PartnerByKeyHash: %v", what, err)
	}
	if diff := cmp.Diff(want, got, partnerOpts); diff != "" {
		t.Errorf("%s: PartnerByKeyHash (-want +got):\n%s", what, diff)
	}
}

var partnerTests = []test{
	{"CreateAndGetEveryField", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		for _, tc := range []struct {
			name   string
			mutate func(*hookd.Partner)
		}{
			{"minimal", nil},
			{"full", fullPartner},
		} {
			wantPartner(t, s, mustPartner(t, s, o.ID, tc.mutate), tc.name)
		}
	}},
	{"CreateForUnknownOrganization", func(t *testing.T, s hookd.Store) {
		p := newPartner("no-such-org", nil)
		wantCode(t, s.CreatePartner(t.Context(), p), hookd.ENOTFOUND, "CreatePartner for an unknown organization")
		_, err := s.Partner(t.Context(), "", p.ID)
		wantCode(t, err, hookd.ENOTFOUND, "Partner of the rejected partner")
		_, err = s.PartnerByKeyHash(t.Context(), p.APIKeyHash)
		wantCode(t, err, hookd.ENOTFOUND, "PartnerByKeyHash of the rejected partner")
	}},
	{"DuplicateID", func(t *testing.T, s hookd.Store) {
		o, other := mustOrg(t, s), mustOrg(t, s)
		p := mustPartner(t, s, o.ID, nil)
		for _, org := range []string{o.ID, other.ID} {
			dup := newPartner(org, fullPartner)
			dup.ID = p.ID
			wantCode(t, s.CreatePartner(t.Context(), dup), hookd.ECONFLICT, "CreatePartner with a taken id in organization "+org)
			_, err := s.PartnerByKeyHash(t.Context(), dup.APIKeyHash)
			wantCode(t, err, hookd.ENOTFOUND, "PartnerByKeyHash of the rejected partner")
		}
		wantPartner(t, s, p, "after the conflicts")
	}},
	{"DuplicateKeyHash", func(t *testing.T, s hookd.Store) {
		// PartnerByKeyHash takes no organization: a hash names one partner in the store.
		o, other := mustOrg(t, s), mustOrg(t, s)
		p := mustPartner(t, s, o.ID, nil)
		for _, org := range []string{o.ID, other.ID} {
			dup := newPartner(org, fullPartner)
			dup.APIKeyHash = p.APIKeyHash
			wantCode(t, s.CreatePartner(t.Context(), dup), hookd.ECONFLICT, "CreatePartner with a taken API key hash in organization "+org)
			_, err := s.Partner(t.Context(), "", dup.ID)
			wantCode(t, err, hookd.ENOTFOUND, "Partner of the rejected partner")
		}
		wantPartner(t, s, p, "after the conflicts")
	}},
	{"GetOtherOrganization", func(t *testing.T, s hookd.Store) {
		o, other := mustOrg(t, s), mustOrg(t, s)
		p := mustPartner(t, s, o.ID, nil)
		_, err := s.Partner(t.Context(), other.ID, p.ID)
		wantCode(t, err, hookd.ENOTFOUND, "Partner with another organization")
		_, err = s.Partner(t.Context(), o.ID, "ptn_unknown")
		wantCode(t, err, hookd.ENOTFOUND, "Partner(unknown id)")
		_, err = s.Partner(t.Context(), "", "ptn_unknown")
		wantCode(t, err, hookd.ENOTFOUND, "Partner as admin (unknown id)")
		if _, err := s.Partner(t.Context(), "", p.ID); err != nil {
			t.Errorf("Partner as admin: %v", err)
		}
	}},
	{"ByKeyHash", func(t *testing.T, s hookd.Store) {
		o, other := mustOrg(t, s), mustOrg(t, s)
		ps := []*hookd.Partner{mustPartner(t, s, o.ID, nil), mustPartner(t, s, o.ID, fullPartner), mustPartner(t, s, other.ID, nil)}
		for _, p := range ps {
			got, err := s.PartnerByKeyHash(t.Context(), p.APIKeyHash)
			if err != nil {
				t.Fatalf("PartnerByKeyHash: %v", err)
			}
			if diff := cmp.Diff(p, got, partnerOpts); diff != "" {
				t.Errorf("PartnerByKeyHash (-want +got):\n%s", diff)
			}
		}
		for _, hash := range []string{keyHash("pk_unknown"), "", ps[0].ID} {
			_, err := s.PartnerByKeyHash(t.Context(), hash)
			wantCode(t, err, hookd.ENOTFOUND, "PartnerByKeyHash("+hash+")")
		}
	}},
	{"Update", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		p := mustPartner(t, s, o.ID, nil)

		// A rotation: the current secret stays valid for a day beside the new one.
		want := *p
		want.Name = "Globex (EU)"
		want.PreviousSecret, want.Secret = p.Secret, "psec_cm90YXRlZC1zZWNyZXQ"+p.ID
		want.PreviousSecretExpires = base.Add(24*time.Hour + time.Microsecond)
		want.IPAllowlist = allowlist()
		want.RateLimit = hookd.RateLimit{PerSecond: 0.5, Burst: 3}
		want.Enabled = false
		want.UpdatedAt = base.Add(time.Hour + time.Microsecond)
		got, err := s.UpdatePartner(t.Context(), o.ID, p.ID, func(cur *hookd.Partner) error {
			if diff := cmp.Diff(p, cur, partnerOpts); diff != "" {
				t.Errorf("fn got (-want +got):\n%s", diff)
			}
			cur.Name = want.Name
			cur.PreviousSecret, cur.Secret, cur.PreviousSecretExpires = cur.Secret, want.Secret, want.PreviousSecretExpires
			cur.IPAllowlist = slices.Clone(want.IPAllowlist)
			cur.RateLimit, cur.Enabled, cur.UpdatedAt = want.RateLimit, want.Enabled, want.UpdatedAt
			return nil
		})
		if err != nil {
			t.Fatalf("UpdatePartner: %v", err)
		}
		if diff := cmp.Diff(&want, got, partnerOpts); diff != "" {
			t.Errorf("UpdatePartner returned (-want +got):\n%s", diff)
		}
		wantPartner(t, s, &want, "after the rotation")

		// Ending the rotation clears the previous secret; the admin may update too.
		want.PreviousSecret, want.PreviousSecretExpires, want.IPAllowlist, want.Enabled = "", time.Time{}, nil, true
		want.UpdatedAt = base.Add(2 * time.Hour)
		if _, err := s.UpdatePartner(t.Context(), "", p.ID, func(cur *hookd.Partner) error {
			cur.PreviousSecret, cur.PreviousSecretExpires, cur.IPAllowlist, cur.Enabled = "", time.Time{}, nil, true
			cur.UpdatedAt = want.UpdatedAt
			return nil
		}); err != nil {
			t.Fatalf("UpdatePartner as admin: %v", err)
		}
		wantPartner(t, s, &want, "after the second update")
	}},
	{"UpdateFnError", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		p := mustPartner(t, s, o.ID, fullPartner)
		for _, fnErr := range []error{
			errors.New("plain failure"),
			hookd.FieldError("rate_limit.burst", "is too large"),
		} {
			_, err := s.UpdatePartner(t.Context(), o.ID, p.ID, func(cur *hookd.Partner) error {
				cur.Name = "Changed"
				cur.Secret, cur.PreviousSecret = "psec_Y2hhbmdlZA", cur.Secret
				cur.IPAllowlist = nil
				cur.RateLimit = hookd.RateLimit{PerSecond: 1, Burst: 1}
				cur.Enabled = true
				return fnErr
			})
			if !errors.Is(err, fnErr) {
				t.Errorf("UpdatePartner with fn failing with %v: error %v, want fn's error", fnErr, err)
			}
			if got, want := hookd.ErrorCode(err), hookd.ErrorCode(fnErr); got != want {
				t.Errorf("UpdatePartner with fn failing with %v: code %q, want %q", fnErr, got, want)
			}
			wantPartner(t, s, p, "after a failed update")
		}
	}},
	{"UpdateNotFound", func(t *testing.T, s hookd.Store) {
		o, other := mustOrg(t, s), mustOrg(t, s)
		p := mustPartner(t, s, o.ID, nil)
		for _, tc := range []struct{ org, id string }{{other.ID, p.ID}, {o.ID, "ptn_unknown"}, {"", "ptn_unknown"}} {
			called := false
			_, err := s.UpdatePartner(t.Context(), tc.org, tc.id, func(cur *hookd.Partner) error {
				called = true
				cur.Name, cur.Enabled = "Changed", false
				return nil
			})
			wantCode(t, err, hookd.ENOTFOUND, "UpdatePartner("+tc.org+", "+tc.id+")")
			if called {
				t.Errorf("UpdatePartner(%q, %q) called fn", tc.org, tc.id)
			}
		}
		wantPartner(t, s, p, "after UpdatePartner by another organization")
	}},
	{"Delete", func(t *testing.T, s hookd.Store) {
		o := mustOrg(t, s)
		e := mustEndpoint(t, s, o.ID, nil)
		p := mustPartner(t, s, o.ID, nil)
		kept := mustPartner(t, s, o.ID, nil)
		ev := newInboundEvent(p, "order-1", "invoice.paid", base)
		mustAccept(t, s, ev, inboundAudit(p, ev, 202), inboundAudit(p, ev, 200))
		// A partner's bucket is the one named by its id (httpapi takes its tokens so).
		drain(t, s, p.ID, p.RateLimit, base)
		drain(t, s, kept.ID, kept.RateLimit, base)

		if err := s.DeletePartner(t.Context(), o.ID, p.ID); err != nil {
			t.Fatalf("DeletePartner: %v", err)
		}
		_, err := s.Partner(t.Context(), "", p.ID)
		wantCode(t, err, hookd.ENOTFOUND, "Partner after DeletePartner")
		_, err = s.PartnerByKeyHash(t.Context(), p.APIKeyHash)
		wantCode(t, err, hookd.ENOTFOUND, "PartnerByKeyHash after DeletePartner")
		wantCode(t, s.DeletePartner(t.Context(), o.ID, p.ID), hookd.ENOTFOUND, "DeletePartner twice")
		wantPartner(t, s, kept, "the other partner after DeletePartner")

		// Its events stay, with their deliveries.
		got, ds, err := s.Event(t.Context(), o.ID, ev.ID)
		if err != nil {
			t.Fatalf("Event of a deleted partner: %v", err)
		}
		if diff := cmp.Diff(ev, got, equateEmpty); diff != "" {
			t.Errorf("Event of a deleted partner (-want +got):\n%s", diff)
		}
		if len(ds) != 1 || ds[0].EndpointID != e.ID {
			t.Errorf("Event of a deleted partner has deliveries %v, want one to %s", deliveryIDs(ds), e.ID)
		}

		// Its bucket went with it: one of that name starts full; the other partner's did not.
		if r := mustTake(t, s, p.ID, p.RateLimit, base); !r.Allowed || r.Remaining != p.RateLimit.Burst-1 {
			t.Errorf("TakeToken on a deleted partner's bucket = %+v, want allowed from a full bucket", r)
		}
		if r := mustTake(t, s, kept.ID, kept.RateLimit, base); r.Allowed {
			t.Errorf("TakeToken on the other partner's drained bucket = %+v, want refused", r)
		}

		// Its API key hash is free again.
		again := newPartner(o.ID, nil)
		again.APIKeyHash = p.APIKeyHash
		if err := s.CreatePartner(t.Context(), again); err != nil {
			t.Fatalf("CreatePartner with a deleted partner's key hash: %v", err)
		}
		wantPartner(t, s, again, "a new partner with the deleted one's key hash")
	}},
	{"DeleteNotFound", func(t *testing.T, s hookd.Store) {
		o, other := mustOrg(t, s), mustOrg(t, s)
		p := mustPartner(t, s, o.ID, nil)
		wantCode(t, s.DeletePartner(t.Context(), other.ID, p.ID), hookd.ENOTFOUND, "DeletePartner with another organization")
		wantCode(t, s.DeletePartner(t.Context(), "", "ptn_unknown"), hookd.ENOTFOUND, "DeletePartner(unknown)")
		wantPartner(t, s, p, "after DeletePartner by another organization")
		if err := s.DeletePartner(t.Context(), "", p.ID); err != nil {
			t.Errorf("DeletePartner as admin: %v", err)
		}
		_, err := s.Partner(t.Context(), "", p.ID)
		wantCode(t, err, hookd.ENOTFOUND, "Partner after DeletePartner as admin")
	}},
}
