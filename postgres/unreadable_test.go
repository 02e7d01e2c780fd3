package postgres_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd"
)

// TestClaimSetsAsideUnreadableRow: a delivery whose endpoint secret cannot be
// opened does not stop the claim of the others: it is left out, with the reason
// recorded, and due again a minute later.
func TestClaimSetsAsideUnreadableRow(t *testing.T) {
	t.Parallel()
	db, u := openStoreURL(t)
	org := multiOrg(t, db)
	good := multiEndpoint(t, db, org, nil)
	bad := multiEndpoint(t, db, org, nil)
	multiPublish(t, db, oneEvent(org, "a.b", multiBase))
	conn, err := pgx.Connect(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), `UPDATE endpoints SET secret = '\x0102030405'::bytea WHERE id = $1`, bad.ID); err != nil {
		t.Fatal(err)
	}
	now := multiBase.Add(time.Second)
	cs, err := db.ClaimDeliveries(t.Context(), multiClaimParams(now, 10))
	if err != nil || len(cs) != 1 || cs[0].Endpoint.ID != good.ID {
		t.Fatalf("claimed %v, %v; want only the readable endpoint's delivery", claimedEndpoints(cs), err)
	}
	ds, _, err := db.ListDeliveries(t.Context(), hookd.DeliveryFilter{EndpointID: bad.ID})
	if err != nil || len(ds) != 1 {
		t.Fatalf("ListDeliveries = %v, %v", ds, err)
	}
	if d := ds[0]; d.Status != hookd.DeliveryPending || d.InFlight || !strings.Contains(d.LastError, "secret") ||
		!d.NextAttemptAt.After(now.Add(30*time.Second)) {
		t.Errorf("unreadable delivery: status %q, in flight %v, error %q, next %v; want pending, released, the reason, due a minute later",
			d.Status, d.InFlight, d.LastError, d.NextAttemptAt)
	}
}
