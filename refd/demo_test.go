package refd

import (
	"context"
	"math"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/testkit/fleet"
)

// TestTrafficSourceFollowsTheDiurnalCurve checks every node's simulated
// traffic against its metro's utilisation at the given time.
func TestTrafficSourceFollowsTheDiurnalCurve(t *testing.T) {
	f, err := fleet.Generate(fleet.Config{Size: 2000, Seed: 9})
	require.NoError(t, err)
	ix := disposition.NewIndex()
	for _, at := range []time.Time{
		time.Date(2026, 1, 5, 4, 30, 0, 0, time.UTC),
		time.Date(2026, 7, 5, 20, 30, 0, 0, time.UTC),
	} {
		src := &trafficSource{fleet: f, ix: ix, now: func() time.Time { return at }}
		obs, err := src.Fetch(context.Background())
		require.NoError(t, err)
		require.Len(t, obs, len(f.Nodes))
		for i, o := range obs {
			n := f.Nodes[i]
			require.Equal(t, n.ID, o.ID)
			require.True(t, o.Known.Has(disposition.FieldTraffic))
			require.Equal(t, o.Known, o.Known&(1<<disposition.FieldTraffic), "traffic only")
			if n.State != disposition.StateInService || n.Health == disposition.HealthDown {
				require.Zero(t, o.Values.TrafficGbps, n.ID)
				continue
			}
			u := f.Metro(n.Metro).Utilisation(at)
			lo, hi := n.CapacityGbps*u*0.9, n.CapacityGbps*u*1.1
			require.True(t, o.Values.TrafficGbps >= math.Floor(lo*100)/100 && o.Values.TrafficGbps <= math.Ceil(hi*100)/100,
				"%s: %v not in [%v, %v]", n.ID, o.Values.TrafficGbps, lo, hi)
		}
	}
	// A node drained in the index carries no traffic.
	n := f.Nodes[0].Clone()
	n.State = disposition.StateDrained
	_, err = ix.Apply(context.Background(), disposition.Batch{Upserts: []*disposition.Node{n}})
	require.NoError(t, err)
	src := &trafficSource{fleet: f, ix: ix, now: time.Now}
	obs, err := src.Fetch(context.Background())
	require.NoError(t, err)
	require.Zero(t, obs[0].Values.TrafficGbps)
}

func TestNewDemoServesAndKeepsItsToken(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d, err := NewDemo(ctx, DemoConfig{DataDir: dir, Size: 300})
	require.NoError(t, err)
	require.NotEmpty(t, d.AdminToken)
	hash, err := os.ReadFile(filepath.Join(dir, DemoTokenFile))
	require.NoError(t, err)
	require.Equal(t, HashToken(d.AdminToken)+"\n", string(hash), "only the hash is kept")
	_, err = os.Stat(filepath.Join(dir, DemoInventoryFile))
	require.NoError(t, err)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- d.Server.Serve(ctx, ln) }()
	require.Eventually(t, d.Server.Ready, 20*time.Second, 10*time.Millisecond)
	require.Equal(t, 300, d.Server.cfg.Index.Snapshot().Len())
	// The traffic source may land after the inventory.
	require.Eventually(t, func() bool {
		g, err := d.Server.cfg.Index.Snapshot().Aggregate(disposition.Query{})
		return err == nil && g[0].TrafficGbps > 0
	}, 20*time.Second, 10*time.Millisecond)
	require.NoError(t, d.Server.cfg.Index.Snapshot().Scan(disposition.Query{}, func(n *disposition.Node) bool {
		if o := n.Provenance.Of(disposition.FieldTraffic); o != nil {
			require.Equal(t, "traffic", o.Source, "the inventory has no traffic column")
		}
		return true
	}))
	require.NoError(t, d.Server.Close())
	require.NoError(t, <-done)
	require.NoError(t, d.Close())

	again, err := NewDemo(ctx, DemoConfig{DataDir: dir, Size: 300})
	require.NoError(t, err)
	require.Empty(t, again.AdminToken, "the token is made once")
	require.NoError(t, again.Close())

	require.NoError(t, os.WriteFile(filepath.Join(dir, DemoTokenFile), []byte("garbage"), 0o600))
	_, err = NewDemo(ctx, DemoConfig{DataDir: dir, Size: 300})
	require.ErrorContains(t, err, DemoTokenFile)
}

// TestDemoWithoutGit: with no git command the demo runs, without formulas.
func TestDemoWithoutGit(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	d, err := NewDemo(t.Context(), DemoConfig{DataDir: t.TempDir(), Size: 200})
	require.NoError(t, err)
	defer d.Close()
	require.Nil(t, d.Server.cfg.Formulas)
	require.NotNil(t, d.Server.cfg.Runner)
}
