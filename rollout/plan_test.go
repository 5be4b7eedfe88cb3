package rollout_test

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/rollout"
	"github.com/fleetkit/fleetkit/testkit/plancheck"
)

// hand builds small fleets node by node.
type hand struct{ nodes []*disposition.Node }

// add adds n healthy in-service servers to a cluster.
func (h *hand) add(n int, region, metro, site, cluster, tz string, capGbps, trafficGbps float64) {
	for i := range n {
		h.nodes = append(h.nodes, &disposition.Node{
			ID:     fmt.Sprintf("%s-%03d", cluster, len(h.nodes)+i),
			Kind:   disposition.KindBaremetal,
			Region: region, Metro: metro, Site: site, Cluster: cluster, Timezone: tz,
			Role: "edge", State: disposition.StateInService, Health: disposition.HealthHealthy,
			ReleaseState: "ga", Versions: map[string]string{"app": "1.0.0"},
			CapacityGbps: capGbps, TrafficGbps: trafficGbps,
		})
	}
}

func (h *hand) snap(t testing.TB) *disposition.Snapshot {
	t.Helper()
	ix := disposition.NewIndex()
	_, err := ix.Apply(context.Background(), disposition.Batch{Upserts: h.nodes})
	require.NoError(t, err)
	return ix.Snapshot()
}

func parse(t testing.TB, y string) *rollout.Spec {
	t.Helper()
	s, err := rollout.ParseSpec("test.yaml", []byte(y))
	require.NoError(t, err)
	return s
}

// planOK plans, checks the plan's invariants and its determinism.
func planOK(t testing.TB, spec *rollout.Spec, snap *disposition.Snapshot, start time.Time) *rollout.Plan {
	t.Helper()
	p, err := rollout.NewPlan(context.Background(), spec, snap, start)
	require.NoError(t, err)
	plancheck.Verify(t, spec, snap, p)
	again, err := rollout.NewPlan(context.Background(), spec, snap, start)
	require.NoError(t, err)
	a, err := json.Marshal(p)
	require.NoError(t, err)
	b, err := json.Marshal(again)
	require.NoError(t, err)
	require.Equal(t, string(a), string(b), "plan is not deterministic")
	require.GreaterOrEqual(t, len(p.Waves), p.Bounds.MinWaves, "lower bound above the plan")
	require.GreaterOrEqual(t, p.End.Sub(p.Start), time.Duration(p.Bounds.MinDuration), "duration bound above the plan")
	return p
}

var monday = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)

func TestClusterOfOne(t *testing.T) {
	var h hand
	h.add(1, "r1", "AAA", "AAA1", "solo", "UTC", 10, 1)
	h.add(8, "r1", "AAA", "AAA1", "eight", "UTC", 10, 1)
	p := planOK(t, parse(t, `
budgets: {cluster: 25%}
growth: {steps: [10]}
`), h.snap(t), monday)
	require.Len(t, p.Waves, 4, "the 8-server cluster takes 2 per wave; the single server fits in the first")
	require.Equal(t, 1, p.Waves[0].Domains.Cluster["solo"], "a cluster of one may lose its one server (25% rounds up to 1)")
	require.Equal(t, 4, p.Bounds.MinWaves)
	require.Equal(t, "budget:cluster:eight", p.Bounds.MinWavesBy)
}

func TestFullBudget(t *testing.T) {
	var h hand
	h.add(10, "r1", "AAA", "AAA1", "c1", "UTC", 10, 1)
	h.add(10, "r2", "BBB", "BBB1", "c2", "UTC", 10, 1)
	p := planOK(t, parse(t, `
budgets: {global: 100%, region: 100%, metro: 100%, site: 100%, cluster: 100%}
growth: {steps: ["100%"]}
`), h.snap(t), monday)
	require.Len(t, p.Waves, 1)
	require.Len(t, p.Waves[0].Servers, 20)
	require.Equal(t, "growth", p.Waves[0].BoundBy)
	require.Equal(t, 1.0, p.Bounds.WaveRatio)
}

func TestBlackoutSpanningWindow(t *testing.T) {
	var h hand
	h.add(6, "r1", "AAA", "AAA1", "c1", "UTC", 10, 1)
	spec := parse(t, `
deploy: 30m
budgets: {metro: 2}
windows: [{start: "02:00", end: "03:00"}]
blackouts:
  - from: 2026-01-05T01:00:00Z
    to: 2026-01-07T04:00:00Z
    reason: freeze
growth: {steps: [2], bake: 30m}
`)
	p := planOK(t, spec, h.snap(t), monday)
	require.Len(t, p.Waves, 3)
	for i, day := range []int{8, 9, 10} {
		require.Equal(t, time.Date(2026, 1, day, 2, 0, 0, 0, time.UTC), p.Waves[i].Start, "wave %d", i+1)
	}
	require.Equal(t, "growth", p.Waves[0].BoundBy)
}

func TestBlackoutWholeHorizonSkips(t *testing.T) {
	var h hand
	h.add(2, "r1", "AAA", "AAA1", "c1", "UTC", 10, 1)
	h.add(2, "r2", "BBB", "BBB1", "c2", "UTC", 10, 1)
	p := planOK(t, parse(t, `
horizon: 2d
blackouts: [{metro: AAA, from: 2026-01-01, to: 2026-02-01, reason: "metro move"}]
growth: {steps: [10]}
`), h.snap(t), monday)
	require.Len(t, p.Skipped, 2)
	require.Contains(t, p.Skipped[0].Reason, "metro AAA is in blackout for the whole horizon: metro move")
	require.Equal(t, 2, p.Total)
}

func TestWindowShorterThanBake(t *testing.T) {
	var h hand
	h.add(3, "r1", "AAA", "AAA1", "c1", "UTC", 10, 1)
	h.add(3, "r1", "BBB", "BBB1", "c2", "UTC", 10, 1)
	p := planOK(t, parse(t, `
deploy: 30m
windows:
  - {metro: AAA, start: "01:00", end: "02:00"}
  - {start: "00:00", end: "24:00"}
growth: {steps: [10], bake: 1h}
`), h.snap(t), monday)
	require.Len(t, p.Unschedulable, 3)
	require.Contains(t, p.Unschedulable[0].Reason, "is shorter than a wave with its bake (1h30m0s)")
	require.Contains(t, p.Explain(p.Unschedulable[0].ID), "cannot be scheduled")
	require.Len(t, p.Waves, 1)
}

func TestImpossibleSpecFailsFast(t *testing.T) {
	var h hand
	h.add(50, "r1", "AAA", "AAA1", "c1", "UTC", 10, 1)
	spec := parse(t, `
horizon: 1d
deploy: 1h
budgets: {metro: 1}
growth: {steps: [1]}
`)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := rollout.NewPlan(ctx, spec, h.snap(t), monday)
	require.ErrorIs(t, err, rollout.ErrInfeasible)
	require.Contains(t, err.Error(), "26 targets could not be placed within the horizon")
	require.Contains(t, err.Error(), "AAA 26 (growth)", "the error names what held the metro back")

	spec = parse(t, "canary: {count: 1, where: metro=ZZZ}\ngrowth: {steps: [1]}\n")
	_, err = rollout.NewPlan(ctx, spec, h.snap(t), monday)
	require.ErrorIs(t, err, rollout.ErrInfeasible)
	require.Contains(t, err.Error(), `canary.where "metro=ZZZ" matches no schedulable target`)
}

// TestInfeasibleSaysWhy checks that running out of horizon names the
// constraint that held each metro back, not its state at the horizon's end.
func TestInfeasibleSaysWhy(t *testing.T) {
	flat := strings.TrimSuffix(strings.Repeat("1, ", 24), ", ")
	var h hand
	// Capacity lets two servers out at a time: three 1h waves place six.
	h.add(10, "r1", "AAA", "AAA1", "c1", "UTC", 10, 6)
	_, err := rollout.NewPlan(context.Background(), parse(t, `
horizon: 3h
deploy: 1h
capacity: {headroom: 0.2, profile: [`+flat+`]}
growth: {steps: [5]}
`), h.snap(t), monday)
	require.ErrorIs(t, err, rollout.ErrInfeasible)
	require.Contains(t, err.Error(), ": AAA 4 (capacity)")

}

func TestSkipReasons(t *testing.T) {
	var h hand
	h.add(5, "r1", "AAA", "AAA1", "c1", "UTC", 10, 1)
	h.nodes[0].State = disposition.StateRepair
	h.nodes[1].Health = disposition.HealthDegraded
	h.nodes[2].Versions = map[string]string{"app": "2.0.0"}
	h.nodes[3].Role = "dns"
	p := planOK(t, parse(t, `
select: role=edge
component: app
version: 2.0.0
growth: {steps: [10]}
`), h.snap(t), monday)
	require.Equal(t, []rollout.Skip{
		{ID: h.nodes[0].ID, Reason: "lifecycle state is repair"},
		{ID: h.nodes[1].ID, Reason: "health is degraded"},
		{ID: h.nodes[2].ID, Reason: "already at app 2.0.0"},
	}, p.Skipped)
	require.Equal(t, []string{h.nodes[4].ID}, p.Waves[0].Servers)
	require.Contains(t, p.Explain(h.nodes[3].ID), "is not a target")
	require.Contains(t, p.Explain(h.nodes[1].ID), "skipped: health is degraded")
}

func TestDSTSpringForwardPlan(t *testing.T) {
	var h hand
	h.add(12, "na-west", "DEN", "DEN1", "den1-c01", "America/Denver", 10, 1)
	spec := parse(t, `
deploy: 20m
budgets: {metro: 2}
windows: [{start: "02:00", end: "03:00", tz: metro}]
growth: {steps: [2], bake: 10m}
`)
	den, _ := time.LoadLocation("America/Denver")
	p := planOK(t, spec, h.snap(t), time.Date(2026, 3, 7, 0, 0, 0, 0, den))
	require.Len(t, p.Waves, 6)
	days := map[int]int{}
	for _, w := range p.Waves {
		days[w.Start.In(den).Day()]++
	}
	require.Equal(t, map[int]int{7: 2, 9: 2, 10: 2}, days, "no 02:00-03:00 on 2026-03-08 in Denver")
}

func TestDSTFallBackPlan(t *testing.T) {
	var h hand
	h.add(20, "na-west", "DEN", "DEN1", "den1-c01", "America/Denver", 10, 1)
	spec := parse(t, `
deploy: 30m
budgets: {metro: 1}
windows: [{start: "01:00", end: "02:00", tz: metro}]
growth: {steps: [1]}
`)
	den, _ := time.LoadLocation("America/Denver")
	p := planOK(t, spec, h.snap(t), time.Date(2026, 10, 31, 12, 0, 0, 0, den))
	days := map[int]int{}
	for _, w := range p.Waves {
		days[w.Start.In(den).Day()]++
	}
	require.Equal(t, 4, days[1], "the repeated hour on 2026-11-01 fits four 30-minute waves")
	require.Equal(t, 2, days[2])
}

func TestMetroEastOfUTC12(t *testing.T) {
	var h hand
	h.add(4, "oc", "CXI", "CXI1", "cxi1-c01", "Pacific/Kiritimati", 10, 1)
	spec := parse(t, `
deploy: 30m
windows: [{days: [mon], start: "01:00", end: "03:00"}]
growth: {steps: [2]}
`)
	p := planOK(t, spec, h.snap(t), time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC))
	require.Len(t, p.Waves, 2)
	require.Equal(t, time.Date(2026, 1, 4, 11, 0, 0, 0, time.UTC), p.Waves[0].Start, "Monday 01:00 at UTC+14 is Sunday 11:00 UTC")
	require.Equal(t, "Mon 2026-01-05 01:00 +14", p.Waves[0].Metros[0].LocalStart)
}

func TestCapacityBinds(t *testing.T) {
	var h hand
	// 10 servers of 10 Gbps carrying 60 Gbps: with 20% headroom a wave
	// may take out at most 100 - 72 = 28 Gbps, two servers.
	h.add(10, "r1", "AAA", "AAA1", "c1", "UTC", 10, 6)
	flat := strings.TrimSuffix(strings.Repeat("1, ", 24), ", ")
	spec := parse(t, `
capacity: {headroom: 0.2, profile: [`+flat+`]}
growth: {steps: [5]}
`)
	p := planOK(t, spec, h.snap(t), monday)
	require.Len(t, p.Waves, 5)
	require.Equal(t, "capacity:AAA", p.Waves[0].BoundBy)
	require.InDelta(t, 0.2, p.Waves[0].Metros[0].Dip, 1e-9)
	require.InDelta(t, 60, p.Waves[0].Metros[0].ForecastGbps, 1e-9)

	// A server larger than any slack can never go: 9x10 + 30 Gbps carry
	// 80, so 120 - 96 = 24 Gbps may be out.
	h.nodes[0].CapacityGbps = 30
	for _, n := range h.nodes {
		n.TrafficGbps = 8
	}
	p = planOK(t, spec, h.snap(t), monday)
	require.Len(t, p.Unschedulable, 1)
	require.Contains(t, p.Unschedulable[0].Reason, "below forecast x 1.2 at every open hour")
}

func TestCapacityFollowsLocalHour(t *testing.T) {
	var h hand
	h.add(10, "r1", "AAA", "AAA1", "c1", "Asia/Tokyo", 10, 10)
	// The metro runs full but at 03:00 local (18:00 UTC), when traffic
	// drops to a tenth.
	prof := make([]string, 24)
	for i := range prof {
		prof[i] = "1"
	}
	prof[3] = "0.1"
	spec := parse(t, `
capacity: {headroom: 0, observed_at: 2026-01-05T03:00:00Z, profile: [`+strings.Join(prof, ",")+`]}
growth: {steps: [100]}
`)
	p := planOK(t, spec, h.snap(t), monday)
	for _, w := range p.Waves {
		require.Equal(t, 3, w.Start.In(time.FixedZone("JST", 9*3600)).Hour(), "wave %d", w.Index)
	}
}

func TestOrderPreferences(t *testing.T) {
	var h hand
	h.add(4, "r1", "AAA", "AAA1", "c1", "UTC", 10, 1)
	h.add(4, "r1", "AAA", "AAA1", "c2", "UTC", 10, 1)
	for _, n := range h.nodes[4:] {
		n.ReleaseState = "trial"
	}
	p := planOK(t, parse(t, `
order: [{by: release_state, first: [trial]}]
growth: {steps: [4]}
`), h.snap(t), monday)
	require.Equal(t, []string{h.nodes[4].ID, h.nodes[5].ID, h.nodes[6].ID, h.nodes[7].ID}, p.Waves[0].Servers)
}

func TestMetrosPerRegion(t *testing.T) {
	var h hand
	h.add(4, "r1", "AAA", "AAA1", "c1", "UTC", 10, 1)
	h.add(4, "r1", "BBB", "BBB1", "c2", "UTC", 10, 1)
	h.add(4, "r2", "CCC", "CCC1", "c3", "UTC", 10, 1)
	p := planOK(t, parse(t, `
budgets: {metros_per_region: 1}
growth: {steps: [100]}
`), h.snap(t), monday)
	require.Len(t, p.Waves, 2)
	require.Equal(t, 2, p.Bounds.MinWaves)
	require.Contains(t, p.Waves[0].BoundBy, "exclusion:region:r1")
}

func TestCanceled(t *testing.T) {
	var h hand
	h.add(4, "r1", "AAA", "AAA1", "c1", "UTC", 10, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := rollout.NewPlan(ctx, parse(t, "growth: {steps: [1]}"), h.snap(t), monday)
	require.ErrorIs(t, err, context.Canceled)
}

func TestExplainScheduled(t *testing.T) {
	var h hand
	h.add(4, "r1", "AAA", "AAA1", "c1", "Europe/Paris", 10, 1)
	p := planOK(t, parse(t, "budgets: {metro: 2}\ngrowth: {steps: [2], bake: 1h}\n"), h.snap(t), monday)
	id := p.Waves[1].Servers[0]
	got := p.Explain(id)
	require.Contains(t, got, id+" is in wave 2 of 2 (growth)")
	require.Contains(t, got, "starting Mon 2026-01-05 02:15 CET local time")
	require.Contains(t, got, "set by growth")
	w, metro := p.Locate(id)
	require.Equal(t, 1, w)
	require.Equal(t, "AAA", metro)
}

func TestDeterministicAcrossProcs(t *testing.T) {
	bf := buildFleet(t, 5000, 9)
	spec := mustSpec(t, fullSpec)
	var want []byte
	for _, procs := range []int{1, 2, 4, 8} {
		prev := runtime.GOMAXPROCS(procs)
		p, err := rollout.NewPlan(context.Background(), spec, bf.snap, bf.fleet.Config.Start)
		runtime.GOMAXPROCS(prev)
		require.NoError(t, err)
		got, err := json.Marshal(p)
		require.NoError(t, err)
		if want == nil {
			want = got
			plancheck.Verify(t, spec, bf.snap, p)
			continue
		}
		require.Equal(t, string(want), string(got), "GOMAXPROCS=%d", procs)
	}

	// A decoded plan explains itself like the original.
	var p rollout.Plan
	require.NoError(t, json.Unmarshal(want, &p))
	id := p.Waves[len(p.Waves)/2].Servers[0]
	orig, err := rollout.NewPlan(context.Background(), spec, bf.snap, bf.fleet.Config.Start)
	require.NoError(t, err)
	require.Equal(t, orig.Explain(id), p.Explain(id))
	require.Equal(t, orig.Text(), p.Text())
}

// Two metros whose windows overlap for two hours a day: waves that wait
// (up to a day, pack) for the overlap hold both, so the rollout takes
// half the waves, over more days.
func TestPackHoldsWavesForFullerOnes(t *testing.T) {
	var h hand
	h.add(4, "r1", "AAA", "AAA1", "aaa1-c1", "UTC", 10, 1)
	h.add(4, "r2", "BBB", "BBB1", "bbb1-c1", "UTC", 10, 1)
	const spec = `
deploy: 1h
horizon: 10d
budgets: {metro: 1}
windows:
  - {metro: AAA, start: "00:00", end: "06:00", tz: UTC}
  - {metro: BBB, start: "04:00", end: "10:00", tz: UTC}
growth: {steps: [100]}
`
	p := planOK(t, parse(t, spec+"pack: 1d\n"), h.snap(t), monday)
	require.Len(t, p.Waves, 4, "every wave holds both metros")
	require.Equal(t, 4, p.Bounds.MinWaves)
	for _, w := range p.Waves {
		require.Len(t, w.Metros, 2, "wave %d", w.Index)
	}

	eager := planOK(t, parse(t, spec+"pack: 0s\n"), h.snap(t), monday)
	require.Len(t, eager.Waves, 8, "without waiting, AAA runs alone before BBB opens")
	require.Less(t, eager.End.Sub(eager.Start), p.End.Sub(p.Start))
}

// A cluster that needs as many waves as its whole metro is in every one
// of them, even when the order puts it last: here the site's budget of 13
// would otherwise go to the preferred nrt cluster for four waves, leaving
// the GA cluster (one server a wave) seven waves of its own.
func TestCriticalClusterInEveryWave(t *testing.T) {
	var h hand
	h.add(57, "r1", "AAA", "AAA1", "a-nrt", "UTC", 10, 1)
	for _, n := range h.nodes {
		n.ReleaseState = "nrt"
	}
	h.add(7, "r1", "AAA", "AAA1", "b-ga", "UTC", 10, 1)
	p := planOK(t, parse(t, `
budgets: {site: 13, cluster: 25%}
growth: {steps: ["100%"]}
order:
  - by: release_state
    first: [nrt]
`), h.snap(t), monday)
	require.Equal(t, 7, p.Bounds.MinWaves)
	require.Len(t, p.Waves, 7, "the GA cluster needs 7 waves; so does the plan")
	for _, w := range p.Waves {
		require.Equal(t, 1, w.Domains.Cluster["b-ga"], "wave %d: the GA cluster takes its one server a wave, and no more", w.Index)
	}
}
