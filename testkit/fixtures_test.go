package testkit_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/client"
	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/sources"
	"github.com/fleetkit/fleetkit/sources/netbox"
	"github.com/fleetkit/fleetkit/sources/postgres"
	"github.com/fleetkit/fleetkit/testkit"
	"github.com/fleetkit/fleetkit/testkit/fleet"
)

func testkitQuery(q string) client.NodesQuery { return client.NodesQuery{Query: q} }

func TestRefdDemoFixture(t *testing.T) {
	t.Parallel()
	r := testkit.Refd(t, testkit.RefdDemo(600))
	require.True(t, strings.HasPrefix(r.URL, "http://127.0.0.1:"), r.URL)
	require.True(t, strings.HasPrefix(r.InternalURL, "http://"+r.Name+":"), r.InternalURL)

	ctx := context.Background()
	page, err := r.Client.Nodes(ctx, testkitQuery("role=edge"))
	require.NoError(t, err)
	require.NotZero(t, page.Count)
	all, err := r.Client.Nodes(ctx, testkitQuery(""))
	require.NoError(t, err)
	require.Equal(t, 600, all.Count)
	testkit.VerifyAPI(t, testkit.API{URL: r.URL, Token: r.Token})

	logs, err := r.Logs(ctx, 0)
	require.NoError(t, err)
	require.Contains(t, logs, `"msg":"listening"`)

	// Published on loopback only, and labelled for the reaper.
	ci, err := testkit.Docker(t).Client().InspectContainer(r.ID)
	require.NoError(t, err)
	bindings := ci.NetworkSettings.Ports["8080/tcp"]
	require.NotEmpty(t, bindings)
	for _, b := range bindings {
		require.Equal(t, "127.0.0.1", b.HostIP)
	}
	require.Equal(t, "1", ci.Config.Labels[testkit.LabelTestkit])
	require.Equal(t, strconv.Itoa(os.Getpid()), ci.Config.Labels[testkit.LabelPID])
}

// sortedObs sorts observations by node ID, for comparing fetches.
func sortedObs(obs []sources.Observation) []sources.Observation {
	slices.SortFunc(obs, func(a, b sources.Observation) int { return strings.Compare(a.ID, b.ID) })
	return obs
}

// TestFakesFixture checks that the fakes container serves what the
// in-process fakes serve for the same fleet.
func TestFakesFixture(t *testing.T) {
	t.Parallel()
	cfg := fleet.Config{Size: 300, Seed: 11}
	f, err := fleet.Generate(cfg)
	require.NoError(t, err)
	ctr := testkit.Fakes(t, cfg)
	local := testkit.FakesServer(t, f)
	require.NotNil(t, ctr.Container)
	require.Nil(t, local.Container)

	ctx := context.Background()
	fetch := func(svc testkit.Service) []sources.Observation {
		src, err := netbox.New("netbox", netbox.Options{URL: svc.URL, Token: svc.Token})
		require.NoError(t, err)
		obs, err := src.Fetch(ctx)
		require.NoError(t, err)
		return sortedObs(obs)
	}
	fromContainer := fetch(ctr.NetBox)
	require.Len(t, fromContainer, len(f.Nodes))
	require.Equal(t, fetch(local.NetBox), fromContainer)

	get := func(url string) string {
		resp, err := http.Get(url)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return string(b)
	}
	require.Equal(t, get(local.Exporter.URL), get(ctr.Exporter.URL))
	up := 0
	for _, n := range f.Nodes {
		if n.Health != disposition.HealthUnknown && n.State != disposition.StateDecommissioned {
			up++
		}
	}
	require.Equal(t, up, strings.Count(get(ctr.Exporter.URL), "\n"+testkit.MetricNodeUp+"{"))

	// A second fixture from the image the first one built.
	again := testkit.Fakes(t, cfg, testkit.WithImage(ctr.Container.Image))
	require.NotEqual(t, ctr.Container.Name, again.Container.Name)
	require.Equal(t, fromContainer, fetch(again.NetBox))
}

func TestPrometheusFixture(t *testing.T) {
	t.Parallel()
	p := testkit.Prometheus(t, "")
	n, err := p.Series(context.Background(), `vector(1)`)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	_, err = p.Series(context.Background(), `this is not promql`)
	require.Error(t, err)
}

func TestPostgresFixture(t *testing.T) {
	t.Parallel()
	pg := testkit.Postgres(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pg.DSN)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `create table inventory (host text primary key, dc text, role text);
		insert into inventory values ('a.fleet.example', 'DEN', 'edge'), ('b.fleet.example', 'NYC', 'mid'), ('c.fleet.example', null, 'dns')`)
	require.NoError(t, err)

	src, err := postgres.New("pg", postgres.Options{DSN: pg.DSN, Query: `select host as id, dc as metro, role from inventory order by host`})
	require.NoError(t, err)
	obs, err := src.Fetch(ctx)
	require.NoError(t, err)
	require.Len(t, obs, 3)
	require.Equal(t, "DEN", obs[0].Values.Metro)
	require.Equal(t, "mid", obs[1].Values.Role)
	require.False(t, obs[2].Known.Has(disposition.FieldMetro), "NULL is unknown")
	require.Contains(t, pg.InternalDSN, pg.Name+":5432")
}
