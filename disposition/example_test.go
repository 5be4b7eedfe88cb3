package disposition_test

import (
	"context"
	"fmt"

	"github.com/fleetkit/fleetkit/disposition"
)

func Example() {
	ctx := context.Background()
	ix := disposition.NewIndex()
	_, err := ix.Apply(ctx, disposition.Batch{Upserts: []*disposition.Node{
		{ID: "edge-den1-001", Metro: "DEN", Role: "edge", State: disposition.StateInService, Health: disposition.HealthHealthy, TrafficGbps: 40},
		{ID: "edge-den1-002", Metro: "DEN", Role: "edge", State: disposition.StateInService, Health: disposition.HealthDown},
		{ID: "edge-nyc1-001", Metro: "NYC", Role: "edge", State: disposition.StateRepair, Health: disposition.HealthDegraded, TrafficGbps: 10},
		{ID: "dns-nyc1-001", Metro: "NYC", Role: "dns", State: disposition.StateInService, Health: disposition.HealthHealthy, TrafficGbps: 1},
	}})
	if err != nil {
		fmt.Println(err)
		return
	}
	snap := ix.Snapshot()
	q, err := disposition.ParseQuery("metro=DEN,NYC role=edge health!=down")
	if err != nil {
		fmt.Println(err)
		return
	}
	nodes, _ := snap.Query(q)
	for _, n := range nodes {
		fmt.Println(n.ID, n.State, n.Health)
	}
	groups, _ := snap.Aggregate(disposition.Query{}, "metro", "health")
	for _, g := range groups {
		fmt.Printf("%v count=%d traffic=%.0f\n", g.Key, g.Count, g.TrafficGbps)
	}
	fmt.Println("version", snap.Version())
	// Output:
	// edge-den1-001 in-service healthy
	// edge-nyc1-001 repair degraded
	// [DEN down] count=1 traffic=0
	// [DEN healthy] count=1 traffic=40
	// [NYC degraded] count=1 traffic=10
	// [NYC healthy] count=1 traffic=1
	// version 1
}

func ExampleParseQuery_error() {
	_, err := disposition.ParseQuery("metro=DEN helth!=down")
	fmt.Println(err)
	// Output:
	// invalid query: term 2 "helth!=down": unknown field "helth" (valid: id, kind, region, metro, site, cluster, rack, timezone, role, platform, state, release_state, health, label.<key>, version.<component>)
}

func ExampleIndex_Watch() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ix := disposition.NewIndex()
	changes := ix.Watch(ctx)
	_, _ = ix.Apply(ctx, disposition.Batch{Upserts: []*disposition.Node{{ID: "a"}}})
	fmt.Println("version", <-changes)
	// Output: version 1
}
