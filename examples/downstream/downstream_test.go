package downstream_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/examples/downstream"
	"github.com/fleetkit/fleetkit/sources/netbox"
	"github.com/fleetkit/fleetkit/testkit"
	"github.com/fleetkit/fleetkit/testkit/fakes"
	"github.com/fleetkit/fleetkit/testkit/fleet"
)

// The fleet every test here runs against: the same Config always gives
// the same fleet, in the containers and in the test.
var fleetConfig = fleet.Config{Size: 800, Seed: 42}

// refdWithFakes is this suite's shared fixture: refd reading a fake
// NetBox (the inventory) and the fakes' Prometheus API (health and
// traffic), as production reads the real ones.
func refdWithFakes(t *testing.T) *testkit.RefdContainer {
	t.Helper()
	fk := testkit.Fakes(t, fleetConfig)
	return testkit.Refd(t, testkit.RefdConfig(fmt.Sprintf(`
sources:
  - name: netbox
    type: netbox
    authoritative: true
    options: {url: %q, token: %q}
  - name: prometheus
    type: prometheus
    options:
      url: %q
      up: up{job="node"}
      traffic: sum by (instance) (rate(node_network_transmit_bytes_total[5m])) * 8
      traffic_scale: 1e-9
`, fk.NetBox.InternalURL, fk.NetBox.Token, fk.Prometheus.InternalURL)))
}

func TestDrainCandidatesAgainstRefd(t *testing.T) {
	r := refdWithFakes(t)
	f, err := fleet.Generate(fleetConfig)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// Readiness waits for the authoritative inventory only; wait for
	// the Prometheus source too.
	waitForSource(t, ctx, r, "prometheus")

	metro := f.Nodes[0].Metro
	keep := 2
	got, err := downstream.DrainCandidates(ctx, r.Client, metro, "edge", keep)
	require.NoError(t, err)

	// The expectation, computed from the fleet itself.
	healthy := 0
	for _, n := range f.Nodes {
		if n.Metro == metro && n.Role == "edge" && n.State == disposition.StateInService &&
			(n.Health == disposition.HealthHealthy || n.Health == disposition.HealthDegraded) {
			healthy++ // up in Prometheus: healthy to refd
		}
	}
	require.Len(t, got, max(0, healthy-keep))
	for i := 1; i < len(got); i++ {
		require.LessOrEqual(t, got[i-1].TrafficGbps, got[i].TrafficGbps)
	}

	// The refd we tested against keeps its API contract.
	testkit.VerifyAPI(t, testkit.API{URL: r.URL, Token: r.Token, ReadToken: r.ReadToken})
}

// waitForSource waits until refd has read the named source.
func waitForSource(t *testing.T, ctx context.Context, r *testkit.RefdContainer, name string) {
	t.Helper()
	for {
		st, err := r.Client.Sources(ctx)
		require.NoError(t, err)
		for _, s := range st.Sources {
			if s.Name == name && s.Observations > 0 && s.LastError == "" {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("refd has not read source %s", name)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// In-process fakes need no Docker: a unit test of the NetBox side.
func TestInventoryFromFakeNetBox(t *testing.T) {
	f, err := fleet.Generate(fleetConfig)
	require.NoError(t, err)
	nb := testkit.FakeNetBoxServer(t, f)
	src, err := netbox.New("netbox", netbox.Options{URL: nb.URL, Token: nb.Token})
	require.NoError(t, err)
	obs, err := src.Fetch(context.Background())
	require.NoError(t, err)
	require.Len(t, obs, len(f.Nodes))

	// And how the tool copes when NetBox fails: the source reports it.
	nb.Faults.Inject(fakes.Fault{Status: http.StatusServiceUnavailable})
	_, err = src.Fetch(context.Background())
	require.Error(t, err)
}
