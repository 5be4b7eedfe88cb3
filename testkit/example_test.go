package testkit_test

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fleetkit/fleetkit/client"
	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/rollout"
	"github.com/fleetkit/fleetkit/sources"
	"github.com/fleetkit/fleetkit/testkit"
	"github.com/fleetkit/fleetkit/testkit/fleet"
)

// A downstream test that runs refd, fed by the fakes, and checks its API
// and a plan. (Example code that needs Docker is compiled, not run.)
func Example_fixtures() {
	test := func(t *testing.T) {
		fk := testkit.Fakes(t, fleet.Config{Size: 1000, Seed: 1})
		r := testkit.Refd(t, testkit.RefdConfig(fmt.Sprintf(`
sources:
  - {name: netbox, type: netbox, authoritative: true, options: {url: %q, token: %q}}
`, fk.NetBox.InternalURL, fk.NetBox.Token)))
		ctx := context.Background()
		page, err := r.Client.Nodes(ctx, client.NodesQuery{Query: "role=edge state=in-service"})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%d edge servers in service", page.Count)
		testkit.VerifyAPI(t, testkit.API{URL: r.URL, Token: r.Token, ReadToken: r.ReadToken})

		rp, err := testkit.PlanWithRefd(ctx, r.Client, []byte("select: role=edge\ngrowth: {steps: [1, 10%]}\n"), time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		testkit.VerifyPlan(t, rp.Spec, rp.Snapshot, rp.Plan)
	}
	_ = test
}

func ExamplePostgres() {
	test := func(t *testing.T) {
		pg := testkit.Postgres(t)
		t.Log("connect to", pg.DSN) // postgres://postgres@127.0.0.1:<port>/postgres?sslmode=disable
	}
	_ = test
}

// CheckIndex restates how sources merge into an index: here the
// aggregator's index agrees with its two sources until a node is changed
// behind their back.
func ExampleCheckIndex() {
	ctx := context.Background()
	inventory := testkit.SourceObservations{Name: "inventory", Authoritative: true, Observations: []sources.Observation{
		*sources.Observe("edge-den1-001").Metro("DEN").Role("edge"),
		*sources.Observe("edge-nyc1-001").Metro("NYC").Role("edge"),
	}}
	monitoring := testkit.SourceObservations{Name: "monitoring", Observations: []sources.Observation{
		*sources.Observe("edge-den1-001").Health(disposition.HealthDown).Role("cache"),
	}}
	ix := disposition.NewIndex()
	agg, err := sources.NewAggregator(ix, sources.AggregatorConfig{},
		sources.Registered{Source: &staticSource{inventory.Name, inventory.Observations}, Authoritative: true, Interval: time.Hour},
		sources.Registered{Source: &staticSource{monitoring.Name, monitoring.Observations}, Interval: time.Hour},
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := agg.Refresh(ctx); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(testkit.CheckIndex(ix.Snapshot(), nil, inventory, monitoring)), "violations")

	n, _ := ix.Snapshot().Get("edge-nyc1-001")
	n = n.Clone()
	n.Metro = "LAX"
	if _, err := ix.Apply(ctx, disposition.Batch{Upserts: []*disposition.Node{n}}); err != nil {
		fmt.Println(err)
		return
	}
	for _, v := range testkit.CheckIndex(ix.Snapshot(), nil, inventory, monitoring) {
		fmt.Println(v)
	}
	// Output:
	// 0 violations
	// edge-nyc1-001: field: metro is LAX, want NYC (from inventory)
}

func ExampleCheckPlan() {
	ctx := context.Background()
	f, err := fleet.Generate(fleet.Config{Size: 500, Seed: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	snap, err := testkit.SnapshotOf(ctx, f.Nodes)
	if err != nil {
		fmt.Println(err)
		return
	}
	spec, err := rollout.ParseSpec("spec.yaml", []byte(`
select: role=edge
budgets: {metro: 20%, cluster: 25%}
windows: [{start: "22:00", end: "06:00"}]
canary: {count: 1, bake: 1h}
growth: {steps: [1, 5, "25%"], bake: 30m}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	plan, err := rollout.NewPlan(ctx, spec, snap, f.Config.Start)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(testkit.CheckPlan(spec, snap, plan)), "violations")

	// A server scheduled twice.
	last := &plan.Waves[len(plan.Waves)-1]
	last.Servers = append(last.Servers, plan.Waves[0].Servers[0])
	for _, v := range testkit.CheckPlan(spec, snap, plan) {
		if v.Rule == "coverage" {
			fmt.Println(v.Rule, strings.Contains(v.Msg, plan.Waves[0].Servers[0]))
		}
	}
	// Output:
	// 0 violations
	// coverage true
}

func ExampleFleetExporter() {
	f, err := fleet.Generate(fleet.Config{Size: 1, Seed: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := httptest.NewServer(testkit.FleetExporter(f))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/metrics")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "# TYPE") {
			fmt.Println(line)
		}
	}
	// Output:
	// # TYPE fleetkit_fake_node_up gauge
	// # TYPE fleetkit_fake_node_traffic_gbps gauge
	// # TYPE fleetkit_fake_node_capacity_gbps gauge
}

func ExamplePrometheusScrapeConfig() {
	fmt.Print(testkit.PrometheusScrapeConfig("fleetkit-fakes-1234-a1b2c3-2:8080"))
	// Output:
	// global:
	//   scrape_interval: 1s
	//   scrape_timeout: 1s
	//   evaluation_interval: 1s
	// scrape_configs:
	//   - job_name: fleet
	//     honor_labels: true
	//     metrics_path: /metrics
	//     static_configs:
	//       - targets:
	//           - "fleetkit-fakes-1234-a1b2c3-2:8080"
}
