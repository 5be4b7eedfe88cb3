package testkit_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/client"
	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/sources/netbox"
	"github.com/fleetkit/fleetkit/sources/prometheus"
	"github.com/fleetkit/fleetkit/testkit"
	"github.com/fleetkit/fleetkit/testkit/fleet"
)

// TestEndToEnd runs fleetkit from fixtures only: a fake NetBox and a
// real Prometheus scraping the fakes' exporter, a refd container reading
// both over the containers' network; then it checks the API's contract,
// that refd's index agrees with its sources, and that a rollout refd
// plans keeps every invariant.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	cfg := fleet.Config{Size: 2000, Seed: 7}
	f, err := fleet.Generate(cfg)
	require.NoError(t, err)
	exported := 0 // nodes with an up series
	for _, n := range f.Nodes {
		if n.Health != disposition.HealthUnknown && n.State != disposition.StateDecommissioned {
			exported++
		}
	}

	fk := testkit.Fakes(t, cfg)
	prom := testkit.Prometheus(t, testkit.PrometheusScrapeConfig(fk.ExporterTarget))
	prom.WaitForSeries(t, testkit.MetricNodeUp, exported)

	r := testkit.Refd(t, testkit.RefdConfig(fmt.Sprintf(`
sources:
  - name: netbox
    type: netbox
    authoritative: true
    interval: 5s
    options: {url: %q, token: %q}
  - name: prometheus
    type: prometheus
    interval: 2s
    options:
      url: %q
      up: %s
      traffic: %s
precedence:
  health: [prometheus]
`, fk.NetBox.InternalURL, fk.NetBox.Token, prom.InternalURL, testkit.MetricNodeUp, testkit.MetricNodeTraffic)))

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Ready means the authoritative source is in; wait for Prometheus's.
	waitFor(t, ctx, func() error {
		st, err := r.Client.Sources(ctx)
		if err != nil {
			return err
		}
		for _, s := range st.Sources {
			if s.Name == "prometheus" && s.Observations == exported && s.LastError == "" {
				return nil
			}
		}
		return fmt.Errorf("prometheus source not loaded yet: %+v", st.Sources)
	})

	t.Run("api", func(t *testing.T) {
		testkit.VerifyAPI(t, testkit.API{URL: r.URL, Token: r.Token, ReadToken: r.ReadToken})
	})

	t.Run("index agrees with sources", func(t *testing.T) {
		// Read what refd reads, from the test process.
		nb, err := netbox.New("netbox", netbox.Options{URL: fk.NetBox.URL, Token: fk.NetBox.Token})
		require.NoError(t, err)
		nbObs, err := nb.Fetch(ctx)
		require.NoError(t, err)
		pm, err := prometheus.New("prometheus", prometheus.Options{URL: prom.URL, Up: testkit.MetricNodeUp, Traffic: testkit.MetricNodeTraffic})
		require.NoError(t, err)
		pmObs, err := pm.Fetch(ctx)
		require.NoError(t, err)
		require.Len(t, pmObs, exported)

		fields := []string{"provenance"}
		for _, fl := range disposition.Fields() {
			fields = append(fields, fl.String())
		}
		page, err := r.Client.Nodes(ctx, client.NodesQuery{Fields: fields})
		require.NoError(t, err)
		require.Len(t, page.Nodes, len(f.Nodes))
		snap, err := testkit.SnapshotOf(ctx, page.Nodes)
		require.NoError(t, err)
		testkit.VerifyIndex(t, snap, map[disposition.Field][]string{disposition.FieldHealth: {"prometheus"}},
			testkit.SourceObservations{Name: "netbox", Authoritative: true, Observations: nbObs},
			testkit.SourceObservations{Name: "prometheus", Observations: pmObs},
			testkit.SourceObservations{Name: "overrides"},
		)
		// And with the generated fleet, through both systems. Up says
		// nothing of degradation: a degraded node is up, so healthy.
		for _, want := range f.Nodes {
			got, ok := snap.Get(want.ID)
			require.True(t, ok, want.ID)
			require.Equal(t, want.Metro, got.Metro, want.ID)
			require.Equal(t, want.Cluster, got.Cluster, want.ID)
			health, traffic := disposition.HealthHealthy, want.TrafficGbps
			switch {
			case want.Health == disposition.HealthUnknown || want.State == disposition.StateDecommissioned:
				health, traffic = disposition.HealthUnknown, 0
			case want.Health == disposition.HealthDown:
				health, traffic = disposition.HealthDown, 0
			}
			require.Equal(t, health, got.Health, want.ID)
			require.Equal(t, traffic, got.TrafficGbps, want.ID)
		}
	})

	t.Run("plan", func(t *testing.T) {
		rp, err := testkit.PlanWithRefd(ctx, r.Client, []byte(planSpec), cfg.Start)
		require.NoError(t, err)
		require.NotEmpty(t, rp.Plan.Waves)
		scheduled := 0
		for _, w := range rp.Plan.Waves {
			scheduled += len(w.Servers)
		}
		require.Equal(t, rp.Plan.Total, scheduled)
		testkit.VerifyPlan(t, rp.Spec, rp.Snapshot, rp.Plan)
	})
}

// waitFor polls cond until it returns nil or ctx ends, which fails t.
func waitFor(t *testing.T, ctx context.Context, cond func() error) {
	t.Helper()
	for {
		err := cond()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("gave up waiting: %v", err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}
