package rollout

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/testkit/fleet"
)

// TestMatcherAgreesWithQuery checks the planner's one-pass matcher against
// Snapshot.Query on a generated fleet.
func TestMatcherAgreesWithQuery(t *testing.T) {
	f, err := fleet.Generate(fleet.Config{Size: 3000, Seed: 3})
	require.NoError(t, err)
	ix := disposition.NewIndex()
	_, err = ix.Apply(context.Background(), disposition.Batch{Upserts: f.Nodes})
	require.NoError(t, err)
	snap := ix.Snapshot()
	for _, q := range []string{
		"", "role=edge", "role=edge,mid", "role!=edge", "metro=NYC,LHR role=mid",
		"state=in-service health!=down", "health=unknown", "kind=vm,container", "kind!=baremetal",
		"label.tier=1", "label.tier!=1", "label.missing=x", "label.missing!=x",
		"version.cdn-app=3.2.0", "version.cdn-app!=3.2.0", "version.cdn-app<3.2.0", "version.cdn-app>=3.1.4",
		"version.knot>3.3.8", "version.knot<=3.3.9 kind=vm", "release_state=trial,nrt platform=debian-11",
		"id=" + f.Nodes[7].ID, "rack!=x site=NYC1", "timezone=Europe/London", "region=na-east cluster!=x",
	} {
		pq, err := disposition.ParseQuery(q)
		require.NoError(t, err, q)
		want, err := snap.Query(pq)
		require.NoError(t, err, q)
		m, err := compileMatcher(pq)
		require.NoError(t, err, q)
		var got []*disposition.Node
		require.NoError(t, snap.Scan(disposition.Query{}, func(n *disposition.Node) bool {
			if m.match(n) {
				got = append(got, n)
			}
			return true
		}))
		require.Equal(t, len(want), len(got), q)
		for i := range want {
			require.Same(t, want[i], got[i], q)
		}
	}
}
