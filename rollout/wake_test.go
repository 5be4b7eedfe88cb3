package rollout_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/rollout"
)

// wakesLateClock is a clock whose sleepers wake a few milliseconds after
// the time they asked for, as a real clock's do.
type wakesLateClock struct{ *rollout.FakeClock }

func (c wakesLateClock) After(d time.Duration) <-chan time.Time {
	return c.FakeClock.After(d + 7*time.Millisecond)
}

// TestRunnerStartsAWaveItWokeUpForJustAfterItsStart runs a rollout on a
// clock that wakes late: each wave starts when the runner wakes for it,
// rather than being re-planned as late (which, plans being in whole
// seconds, moved it a second on and so for ever).
func TestRunnerStartsAWaveItWokeUpForJustAfterItsStart(t *testing.T) {
	ix := disposition.NewIndex()
	var nodes []*disposition.Node
	for _, id := range []string{"a", "b", "c", "d", "e", "f"} {
		nodes = append(nodes, &disposition.Node{ID: id, Metro: "DEN", Cluster: "den-c1", Role: "edge",
			State: disposition.StateInService, Health: disposition.HealthHealthy})
	}
	_, err := ix.Apply(context.Background(), disposition.Batch{Upserts: nodes})
	require.NoError(t, err)
	fake := rollout.NewFakeClock(time.Date(2026, 1, 5, 12, 0, 0, 500_000_000, time.UTC))
	fake.SetAuto(true)
	deployer := rollout.DeployerFunc(func(_ context.Context, req rollout.DeployRequest) ([]rollout.ServerResult, error) {
		res := make([]rollout.ServerResult, len(req.Servers))
		for i, s := range req.Servers {
			res[i] = rollout.ServerResult{Server: s, OK: true}
		}
		return res, nil
	})
	r, err := rollout.NewRunner(rollout.RunnerConfig{Store: rollout.NewMemStore(), Fleet: ix, Deployer: deployer, Clock: wakesLateClock{fake}})
	require.NoError(t, err)
	spec, err := rollout.ParseSpec("spec.yaml", []byte("select: role=edge\ndeploy: 5s\ngrowth: {steps: [1, 2], bake: 5s}\n"))
	require.NoError(t, err)
	ctx := context.Background()
	_, err = r.Create(ctx, "late", spec)
	require.NoError(t, err)
	// A Run that re-plans for ever ends with the deadline instead.
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	require.NoError(t, r.Run(rctx, "late"))
	st, err := r.State(ctx, "late")
	require.NoError(t, err)
	require.Equal(t, rollout.StatusCompleted, st.Status)
	require.Zero(t, st.Replans, "no wave was late")
	require.Len(t, st.Waves, 4)
}
