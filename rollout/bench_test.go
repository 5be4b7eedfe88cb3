package rollout_test

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/rollout"
	"github.com/fleetkit/fleetkit/testkit/fleet"
)

// fullSpec has every constraint on: budgets at every level with a global
// cap and one metro per region, capacity headroom, overnight windows in
// each metro's zone with a stricter metro override, a regional blackout,
// a canary, explicit growth and ordering preferences; and it asks for
// packing (waves held up to 12h for fuller ones).
const fullSpec = `
name: cdn-app-3.2.0
component: cdn-app
version: 3.2.0
select: role=edge,mid
exclude: release_state=frozen
deploy: 20m
horizon: 21d
pack: 12h
budgets:
  global: 5%
  region: 20%
  metro: 10%
  site: 15%
  cluster: 25%
  metros_per_region: 1
capacity:
  headroom: 0.2
windows:
  - start: "22:00"
    end: "06:00"
  - metro: NYC
    days: [mon, tue, wed, thu]
    start: "23:00"
    end: "05:00"
blackouts:
  - region: eu-west
    from: 2026-01-07T00:00:00Z
    to: 2026-01-08T00:00:00Z
    reason: regional sales event
canary:
  count: 2
  where: release_state=nrt
  bake: 1h
growth:
  steps: [1, 5, "1%", "5%", "10%"]
  bake: 30m
order:
  - by: release_state
    first: [trial, nrt]
  - by: metro_utilisation
`

// fullSpec2 is fullSpec with two metros per region: a wave may then hold
// two metros of a region, which the overlap bound and the planner's focus
// count up to that capacity.
var fullSpec2 = strings.Replace(fullSpec, "metros_per_region: 1", "metros_per_region: 2", 1)

// fast drops the pack from a spec: every wave starts as soon as it can,
// for the soonest end.
func fast(spec string) string { return strings.Replace(spec, "pack: 12h\n", "", 1) }

// budgetSpec is fullSpec without windows, blackouts and exclusions: the
// budgets, growth and capacity alone.
const budgetSpec = `
name: budgets-only
component: cdn-app
version: 3.2.0
select: role=edge,mid
deploy: 20m
budgets:
  global: 5%
  region: 20%
  metro: 10%
  site: 15%
  cluster: 25%
capacity:
  headroom: 0.2
canary:
  count: 2
growth:
  steps: [1, 5, "1%", "5%", "10%"]
  bake: 30m
`

type benchFleet struct {
	fleet *fleet.Fleet
	snap  *disposition.Snapshot
}

func buildFleet(tb testing.TB, size int, seed int64) benchFleet {
	tb.Helper()
	return buildFleetAt(tb, size, seed, time.Time{})
}

func buildFleetAt(tb testing.TB, size int, seed int64, start time.Time) benchFleet {
	tb.Helper()
	f, err := fleet.Generate(fleet.Config{Size: size, Seed: seed, Start: start})
	if err != nil {
		tb.Fatal(err)
	}
	ix := disposition.NewIndex()
	if _, err := ix.Apply(context.Background(), disposition.Batch{Upserts: f.Nodes}); err != nil {
		tb.Fatal(err)
	}
	return benchFleet{fleet: f, snap: ix.Snapshot()}
}

func mustSpec(tb testing.TB, yaml string) *rollout.Spec {
	tb.Helper()
	s, err := rollout.ParseSpec("bench.yaml", []byte(yaml))
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// naivePlan is the baseline: a greedy that takes the targets in ID order
// into waves of the growth sizes, checking the budgets with maps keyed by
// domain name, and ignores capacity, windows, blackouts and preferences.
func naivePlan(spec *rollout.Spec, snap *disposition.Snapshot) ([][]string, error) {
	q, err := disposition.ParseQuery(spec.Select)
	if err != nil {
		return nil, err
	}
	nodes, err := snap.Query(q)
	if err != nil {
		return nil, err
	}
	inSvc := [4]map[string]int{{}, {}, {}, {}}
	fleetIn := 0
	_ = snap.Scan(disposition.Query{}, func(n *disposition.Node) bool {
		if n.State == disposition.StateInService {
			fleetIn++
			for lv, d := range [4]string{n.Region, n.Metro, n.Site, n.Cluster} {
				inSvc[lv][d]++
			}
		}
		return true
	})
	var todo []*disposition.Node
	for _, n := range nodes {
		if n.State == disposition.StateInService && n.Health == disposition.HealthHealthy && n.Versions[spec.Component] != spec.Version {
			todo = append(todo, n)
		}
	}
	b := spec.Budgets
	amounts := [4]*rollout.Amount{b.Region, b.Metro, b.Site, b.Cluster}
	limit := func(a *rollout.Amount, n int) int {
		switch {
		case a == nil:
			return math.MaxInt
		case a.Percent:
			return max(1, int(a.Pct*float64(n)/100))
		}
		return a.Count
	}
	capN := limit(b.Global, fleetIn)
	var waves [][]string
	total := len(todo)
	for k := 0; len(todo) > 0; k++ {
		st := spec.Growth.Steps[min(k, len(spec.Growth.Steps)-1)]
		size := st.Count
		if st.Percent {
			size = max(1, int(math.Ceil(st.Pct*float64(total)/100)))
		}
		size = min(size, capN)
		counts := [4]map[string]int{{}, {}, {}, {}}
		var wave []string
		rest := todo[:0]
		for _, n := range todo {
			ok := len(wave) < size
			d := [4]string{n.Region, n.Metro, n.Site, n.Cluster}
			for lv := range d {
				if ok && counts[lv][d[lv]] >= limit(amounts[lv], inSvc[lv][d[lv]]) {
					ok = false
				}
			}
			if !ok {
				rest = append(rest, n)
				continue
			}
			for lv := range d {
				counts[lv][d[lv]]++
			}
			wave = append(wave, n.ID)
		}
		todo = rest
		waves = append(waves, wave)
	}
	return waves, nil
}

func BenchmarkPlan(b *testing.B) {
	for _, size := range []int{20_000, 1_000_000} {
		if testing.Short() && size > 20_000 {
			continue
		}
		bf := buildFleet(b, size, 1)
		start := bf.fleet.Config.Start
		for _, sc := range []struct {
			name string
			yaml string
		}{{"full", fullSpec}, {"full-fast", fast(fullSpec)}, {"full-mpr2", fullSpec2}, {"budgets", budgetSpec}} {
			spec := mustSpec(b, sc.yaml)
			b.Run(fmt.Sprintf("%s/%s", sizeName(size), sc.name), func(b *testing.B) {
				b.ReportAllocs()
				var plan *rollout.Plan
				cpu0 := cpuTime()
				for b.Loop() {
					var err error
					if plan, err = rollout.NewPlan(context.Background(), spec, bf.snap, start); err != nil {
						b.Fatal(err)
					}
				}
				reportCPU(b, cpu0)
				b.ReportMetric(float64(len(plan.Waves)), "waves")
				b.ReportMetric(plan.Bounds.WaveRatio, "wave-ratio")
				b.ReportMetric(plan.Bounds.DurationRatio, "time-ratio")
			})
		}
		// scan is the floor every plan pays: one pass over the snapshot.
		b.Run(sizeName(size)+"/scan", func(b *testing.B) {
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				n := 0
				if err := bf.snap.Scan(disposition.Query{}, func(*disposition.Node) bool { n++; return true }); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, cpu0)
		})
		spec := mustSpec(b, budgetSpec)
		b.Run(sizeName(size)+"/naive", func(b *testing.B) {
			b.ReportAllocs()
			var waves [][]string
			cpu0 := cpuTime()
			for b.Loop() {
				var err error
				if waves, err = naivePlan(spec, bf.snap); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, cpu0)
			b.ReportMetric(float64(len(waves)), "waves")
		})
	}
}

// reportCPU reports the process CPU time per operation since cpu0: on
// a shared machine wall time includes waiting for a core, CPU time less
// so (it still counts GC and the planner's concurrent work).
func reportCPU(b *testing.B, cpu0 time.Duration) {
	if d := cpuTime() - cpu0; d > 0 && b.N > 0 {
		b.ReportMetric(float64(d)/float64(b.N)/1e6, "cpu-ms/op")
	}
}

func sizeName(n int) string {
	if n >= 1_000_000 {
		return fmt.Sprintf("%dM", n/1_000_000)
	}
	return fmt.Sprintf("%dK", n/1000)
}

// TestPlanQuality reports the wave and time ratios against the lower
// bounds on generated fleets, and holds the budgets-only and the full
// spec (which packs waves for up to 12h) to the 1.05 wave ratio the
// design asks for. The others do not meet it (1.09-1.14 with two metros
// per region; 1.24-1.33 and 1.50-1.55 without packing, see
// BENCHMARKS.md); their limits keep them from getting worse.
func TestPlanQuality(t *testing.T) {
	for _, seed := range []int64{1, 2, 3} {
		bf := buildFleet(t, 20_000, seed)
		for _, sc := range []struct {
			name string
			yaml string
			max  float64
		}{
			{"budgets", budgetSpec, 1.05},
			{"full", fullSpec, 1.05}, {"full-mpr2", fullSpec2, 1.16},
			{"full-fast", fast(fullSpec), 1.36}, {"full-mpr2-fast", fast(fullSpec2), 1.56},
		} {
			spec := mustSpec(t, sc.yaml)
			start := time.Now()
			plan, err := rollout.NewPlan(context.Background(), spec, bf.snap, bf.fleet.Config.Start)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("seed %d %s: %d waves, %s (%v)", seed, sc.name, len(plan.Waves), plan.Bounds, time.Since(start))
			if sc.max > 0 && plan.Bounds.WaveRatio > sc.max {
				t.Errorf("seed %d %s: wave ratio %.3f > %.2f", seed, sc.name, plan.Bounds.WaveRatio, sc.max)
			}
		}
	}
}
