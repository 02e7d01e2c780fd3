package delivery

import (
	"context"

	"github.com/hookd/hookd"
)

// nopStore satisfies Store for tests of pure rules that never reach the store.
type nopStore struct{}

func (nopStore) ClaimDeliveries(context.Context, hookd.ClaimParams) ([]*hookd.Claim, error) {
	return nil, nil
}
func (nopStore) CompleteDeliveries(context.Context, []hookd.Outcome) error { return nil }
func (nopStore) ReleaseDeliveries(context.Context, []hookd.Release) error  { return nil }
