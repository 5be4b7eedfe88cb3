package rollout_test

import (
	"context"
	"fmt"
	"time"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/rollout"
)

func ExampleNewPlan() {
	// A small fleet: two metros, one of them with a server in repair.
	var nodes []*disposition.Node
	for i, m := range []struct{ metro, region, tz string }{
		{"DEN", "na-west", "America/Denver"},
		{"LHR", "eu-west", "Europe/London"},
	} {
		for j := range 4 {
			nodes = append(nodes, &disposition.Node{
				ID:     fmt.Sprintf("edge-%d%d", i, j),
				Region: m.region, Metro: m.metro, Site: m.metro + "1", Cluster: m.metro + "1-c1",
				Timezone: m.tz, Role: "edge",
				State: disposition.StateInService, Health: disposition.HealthHealthy,
				CapacityGbps: 100, TrafficGbps: 40,
			})
		}
	}
	nodes[7].State = disposition.StateRepair
	ix := disposition.NewIndex()
	if _, err := ix.Apply(context.Background(), disposition.Batch{Upserts: nodes}); err != nil {
		panic(err)
	}

	spec, err := rollout.ParseSpec("spec.yaml", []byte(`
name: example
select: role=edge
deploy: 30m
budgets: {metro: 50%}
capacity: {headroom: 0.25}
windows: [{start: "01:00", end: "05:00", tz: metro}]
growth: {steps: [1, 4], bake: 30m}
`))
	if err != nil {
		panic(err)
	}
	start := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	plan, err := rollout.NewPlan(context.Background(), spec, ix.Snapshot(), start)
	if err != nil {
		panic(err)
	}
	fmt.Print(plan.Text())
	fmt.Println(plan.Explain("edge-12"))
	// Output:
	// example: 7 servers in 5 waves, 2026-01-05 00:00 UTC to 2026-01-05 10:00 UTC (10h0m0s)
	// bounds: min 5 waves (disjoint:DEN+LHR), min 10h0m0s; ratio 1.000 waves, 1.000 time
	//
	// wave 1 (growth): 1 server (step 1, bound by growth), 2026-01-05 01:00 UTC to 2026-01-05 02:00 UTC, deploy 30m0s + bake 30m0s
	//     metro   region               local start  servers  out Gbps  capacity Gbps    dip  forecast Gbps
	//       LHR  eu-west  Mon 2026-01-05 01:00 GMT        1     100.0          300.0  33.3%           93.3
	//
	// wave 2 (growth): 1 server (step 4, bound by window:DEN), 2026-01-05 02:00 UTC to 2026-01-05 03:00 UTC, deploy 30m0s + bake 30m0s
	//     metro   region               local start  servers  out Gbps  capacity Gbps    dip  forecast Gbps
	//       LHR  eu-west  Mon 2026-01-05 02:00 GMT        1     100.0          300.0  33.3%           70.0
	//
	// wave 3 (growth): 1 server (step 4, bound by window:DEN), 2026-01-05 03:00 UTC to 2026-01-05 04:00 UTC, deploy 30m0s + bake 30m0s
	//     metro   region               local start  servers  out Gbps  capacity Gbps    dip  forecast Gbps
	//       LHR  eu-west  Mon 2026-01-05 03:00 GMT        1     100.0          300.0  33.3%           53.3
	//
	// wave 4 (growth): 2 servers (step 4, bound by budget:metro:DEN), 2026-01-05 08:00 UTC to 2026-01-05 09:00 UTC, deploy 30m0s + bake 30m0s
	//     metro   region               local start  servers  out Gbps  capacity Gbps    dip  forecast Gbps
	//       DEN  na-west  Mon 2026-01-05 01:00 MST        2     200.0          400.0  50.0%          121.1
	//
	// wave 5 (growth): 2 servers (step 4, bound by remaining), 2026-01-05 09:00 UTC to 2026-01-05 10:00 UTC, deploy 30m0s + bake 30m0s
	//     metro   region               local start  servers  out Gbps  capacity Gbps    dip  forecast Gbps
	//       DEN  na-west  Mon 2026-01-05 02:00 MST        2     200.0          400.0  50.0%           90.8
	//
	// skipped: 1
	//        1  lifecycle state is repair
	// edge-12 is in wave 3 of 5 (growth): 1 server of metro LHR (eu-west), 1 in all.
	// It is out of service from 2026-01-05 03:00 UTC to 2026-01-05 03:30 UTC (starting Mon 2026-01-05 03:00 GMT local time), then bakes until 2026-01-05 04:00 UTC.
	// The wave's size was set by window:DEN (growth step 4).
	// Metro LHR loses 100.0 of 300.0 Gbps (33.3%) against a forecast of 53.3 Gbps.
	// Metro LHR was in 2 earlier waves; a wave starts when the previous one's bake ends or, later, when the metros it takes servers from are next open.
}

func ExampleParseSpec_error() {
	_, err := rollout.ParseSpec("spec.yaml", []byte("growth: {steps: [1]}\nbudgets:\n  metro: 12x\n"))
	fmt.Println(err)
	// Output:
	// spec.yaml:3: budgets.metro: "12x" is not a count or percentage
}
