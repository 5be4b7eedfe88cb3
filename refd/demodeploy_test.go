package refd

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/rollout"
)

func TestDemoDeploysAreDeterministicAndIdempotent(t *testing.T) {
	dir := t.TempDir()
	servers := make([]string, 1000)
	for i := range servers {
		servers[i] = fmt.Sprintf("s%04d", i)
	}
	req := rollout.DeployRequest{Rollout: "r1", Wave: 1, IdempotencyKey: "r1/wave/1/1", Component: "app", Version: "2.0", Servers: servers}
	failed := func(res []rollout.ServerResult) map[string]bool {
		out := map[string]bool{}
		for _, r := range res {
			if !r.OK {
				out[r.Server] = true
			}
		}
		return out
	}

	a, err := newDemoDeploys(filepath.Join(dir, "a.json"), 1, 0.2)
	require.NoError(t, err)
	b, err := newDemoDeploys(filepath.Join(dir, "b.json"), 1, 0.2)
	require.NoError(t, err)
	resA, err := a.Deploy(t.Context(), req)
	require.NoError(t, err)
	resB, err := b.Deploy(t.Context(), req)
	require.NoError(t, err)
	require.Equal(t, resA, resB, "the same seed and key fail the same servers")
	n := len(failed(resA))
	require.Greater(t, n, 150)
	require.Less(t, n, 250)
	again, err := a.Deploy(t.Context(), req)
	require.NoError(t, err)
	require.Equal(t, resA, again, "a repeated key is the same deploy")

	other := req
	other.IdempotencyKey = "r1/wave/1/2"
	resO, err := a.Deploy(t.Context(), other)
	require.NoError(t, err)
	require.NotEqual(t, failed(resA), failed(resO), "another attempt draws again")

	// The source reports the versions deployed, the same slice until the
	// next deploy.
	obs, err := a.Fetch(t.Context())
	require.NoError(t, err)
	// Servers failed by both attempts never got the version.
	require.Len(t, obs, len(servers)-len(failed(resA))+onlyIn(failed(resA), failed(resO)))
	obs2, err := a.Fetch(t.Context())
	require.NoError(t, err)
	require.Same(t, &obs[0], &obs2[0])
	require.Equal(t, "2.0", obs[0].Values.Versions["app"])
	require.Equal(t, DemoDeploysSource, a.Name())

	// A rollback always succeeds; to no version it removes the component.
	back := rollout.DeployRequest{Rollout: "r1", IdempotencyKey: "r1/rollback/1", Component: "app", Rollback: true, Servers: servers[:10]}
	res, err := a.Deploy(t.Context(), back)
	require.NoError(t, err)
	require.Empty(t, failed(res))
	obs, err = a.Fetch(t.Context())
	require.NoError(t, err)
	for _, o := range obs {
		require.NotContains(t, servers[:10], o.ID)
	}

	// The versions survive a restart.
	reloaded, err := newDemoDeploys(filepath.Join(dir, "a.json"), 1, 0.2)
	require.NoError(t, err)
	obsR, err := reloaded.Fetch(t.Context())
	require.NoError(t, err)
	require.Equal(t, obs, obsR)

	require.NoError(t, os.WriteFile(filepath.Join(dir, "bad.json"), []byte("{"), 0o600))
	_, err = newDemoDeploys(filepath.Join(dir, "bad.json"), 1, 0)
	require.ErrorContains(t, err, "bad.json")
}

// onlyIn counts the servers in a but not in b.
func onlyIn(a, b map[string]bool) int {
	n := 0
	for s := range a {
		if !b[s] {
			n++
		}
	}
	return n
}
