package rollout_test

import (
	"testing"

	"github.com/fleetkit/fleetkit/rollout"
	"github.com/fleetkit/fleetkit/rollout/storetest"
)

func TestMemStore(t *testing.T) {
	storetest.Run(t, func(*testing.T) rollout.Store { return rollout.NewMemStore() })
}
