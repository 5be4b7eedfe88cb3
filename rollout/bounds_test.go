package rollout_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/rollout"
)

// tiny is a small rollout whose fewest waves exhaustive search can find:
// metros of one or two clusters with a daily UTC window each, one-hour
// waves and no bake, so that waves may as well start on the hour (windows
// open and close on the hour, and moving a wave's start up to the next
// full hour keeps it inside the same windows and after the previous
// wave).
type tiny struct {
	servers [][2]int // per metro: servers of its two clusters (the second may have none)
	region  []int    // per metro
	from    []int    // per metro: the window's first hour
	hours   []int    // per metro: the window's length
	budget  int      // servers per metro per wave
	cluster int      // servers per cluster per wave, 0 for no limit
	mpr     int      // metros per region per wave, 0 for no limit
	first   int      // the first wave's size, 0 for no limit
	horizon int      // hours
	names   []string // per metro
}

func randomTiny(r *rand.Rand) tiny {
	n := 2 + r.IntN(4)
	t := tiny{budget: 1 + r.IntN(3), cluster: r.IntN(3), mpr: r.IntN(3), first: r.IntN(3), horizon: 48 + 24*r.IntN(2)}
	regions := 1 + r.IntN(3)
	// Half of the cases put five metros on a ring of windows around
	// the day, each overlapping its neighbours only: no three share a
	// wave, which the clique of disjoint metros does not see.
	ring := r.IntN(2) == 0
	if ring {
		n, regions, t.horizon = 5, 5, 48
	}
	states := 1
	for i := range n {
		s := [2]int{1 + r.IntN(4), 0}
		if ring {
			s[0] = 1 + r.IntN(3)
		}
		if r.IntN(3) == 0 {
			s = [2]int{1 + r.IntN(3), 1 + r.IntN(2)}
		}
		if states*(s[0]+1)*(s[1]+1) > 2_000 {
			s = [2]int{1, 0} // keep the search small
		}
		states *= (s[0] + 1) * (s[1] + 1)
		t.servers = append(t.servers, s)
		t.region = append(t.region, r.IntN(regions))
		if ring {
			t.from = append(t.from, (5*i+r.IntN(2))%24)
			t.hours = append(t.hours, 6+r.IntN(3))
		} else {
			t.from = append(t.from, r.IntN(24))
			t.hours = append(t.hours, 1+r.IntN(6))
		}
		t.names = append(t.names, string(rune('A'+i))+"AA")
	}
	return t
}

// randomRegionsTiny is a tiny rollout whose regions hold two or three
// metros each, under metros_per_region 2 (sometimes 1): the regions'
// windows lie on a ring around the day, a region's metros a little apart,
// so that a wave may hold two metros of a region and some of its
// neighbours' but not every region's.
func randomRegionsTiny(r *rand.Rand) tiny {
	t := tiny{budget: 1 + r.IntN(2), cluster: r.IntN(2), mpr: 2, first: r.IntN(3), horizon: 48}
	if r.IntN(4) == 0 {
		t.mpr = 1
	}
	regions, per := 3, 2
	if r.IntN(2) == 0 {
		regions, per = 2, 3
	}
	states := 1
	for g := range regions {
		base := 24 * g / regions
		for range per {
			s := [2]int{1 + r.IntN(3), 0}
			if r.IntN(4) == 0 {
				s = [2]int{1 + r.IntN(2), 1}
			}
			if states*(s[0]+1)*(s[1]+1) > 600 {
				s = [2]int{1, 0}
			}
			states *= (s[0] + 1) * (s[1] + 1)
			i := len(t.servers)
			t.servers = append(t.servers, s)
			t.region = append(t.region, g)
			t.from = append(t.from, (base+r.IntN(3))%24)
			t.hours = append(t.hours, 4+r.IntN(24/regions+2))
			t.names = append(t.names, string(rune('A'+i))+"AA")
		}
	}
	return t
}

func (t tiny) open(m, h int) bool {
	return (h-t.from[m]+24)%24 < t.hours[m]
}

// fewest returns the fewest waves that hold every server within the
// horizon, by search over the hours (run a wave or not) and, in a wave,
// over which metros of each region join and how many servers of each of
// their clusters, the first wave taking no more than its growth step. It returns -1 when no plan fits the horizon.
func (t tiny) fewest() int {
	n := len(t.servers)
	radix := make([]int, 2*n)
	size := 1
	for k := range radix {
		radix[k] = size
		size *= t.servers[k/2][k%2] + 1
	}
	const inf = 1 << 30
	memo := make([]int, 2*(t.horizon+1)*size)
	for i := range memo {
		memo[i] = -1
	}
	clusterCap := func(rem int) int {
		if t.cluster > 0 {
			return min(t.cluster, rem)
		}
		return rem
	}
	var f func(h int, rem []int, started int) int
	f = func(h int, rem []int, started int) int {
		key := started * (t.horizon + 1) * size
		limit := 1 << 30 // servers the wave at h may take
		if started == 0 && t.first > 0 {
			limit = t.first
		}
		done := true
		for k, x := range rem {
			key += x * radix[k]
			done = done && x == 0
		}
		if done {
			return 0
		}
		if h >= t.horizon {
			return inf
		}
		if v := memo[key+h*size]; v >= 0 {
			return v
		}
		best := f(h+1, rem, started)
		var cands []int
		for m := range n {
			if rem[2*m]+rem[2*m+1] > 0 && t.open(m, h) {
				cands = append(cands, m)
			}
		}
		next := append([]int(nil), rem...)
		// take tries every amount of each joining metro's clusters.
		var take func(i int)
		take = func(i int) {
			if i == len(cands) {
				taken := 0
				for k := range next {
					taken += rem[k] - next[k]
				}
				if taken > 0 && taken <= limit {
					best = min(best, 1+f(h+1, next, 1))
				}
				return
			}
			m := cands[i]
			for a := 0; a <= clusterCap(rem[2*m]); a++ {
				for b := 0; b <= clusterCap(rem[2*m+1]) && a+b <= t.budget; b++ {
					next[2*m], next[2*m+1] = rem[2*m]-a, rem[2*m+1]-b
					take(i + 1)
				}
			}
			next[2*m], next[2*m+1] = rem[2*m], rem[2*m+1]
		}
		// Every subset of the open metros that respects metros per
		// region joins in turn.
		for mask := 1; mask < 1<<len(cands); mask++ {
			per := map[int]int{}
			var join []int
			for i, m := range cands {
				if mask&(1<<i) != 0 {
					join = append(join, m)
					per[t.region[m]]++
				}
			}
			ok := true
			for _, c := range per {
				ok = ok && (t.mpr == 0 || c <= t.mpr)
			}
			if ok {
				all := cands
				cands = join
				take(0)
				cands = all
			}
		}
		memo[key+h*size] = best
		return best
	}
	rem := make([]int, 2*n)
	for m, s := range t.servers {
		rem[2*m], rem[2*m+1] = s[0], s[1]
	}
	v := f(0, rem, 0)
	if v >= inf {
		return -1
	}
	return v
}

func (t tiny) spec() *rollout.Spec {
	s := &rollout.Spec{
		Name:    "tiny",
		Deploy:  rollout.Duration(time.Hour),
		Horizon: rollout.Duration(time.Duration(t.horizon) * time.Hour),
		Budgets: rollout.Budgets{Metro: rollout.Count(t.budget), MetrosPerRegion: t.mpr},
		Growth:  rollout.Growth{Steps: []rollout.Amount{{Count: 1000}}},
	}
	if t.first > 0 {
		s.Growth.Steps = []rollout.Amount{{Count: t.first}, {Count: 1000}}
	}
	if t.cluster > 0 {
		s.Budgets.Cluster = rollout.Count(t.cluster)
	}
	for m, name := range t.names {
		s.Windows = append(s.Windows, rollout.Window{
			Scope: rollout.Scope{Metro: name}, TZ: "UTC",
			Start: rollout.TimeOfDay(t.from[m] * 60), End: rollout.TimeOfDay((t.from[m] + t.hours[m]) % 24 * 60),
		})
	}
	return s
}

// TestBoundsBelowExhaustiveOptimum checks the wave bound against the
// true fewest waves of many tiny rollouts, found by exhaustive search:
// the bound must never exceed it, and the plan never beat it. It also
// measures the planner against the optimum, without a pack and with one
// of 24h, and holds the packed plans to what they achieved.
func TestBoundsBelowExhaustiveOptimum(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 5))
	n, nRegions := 200, 100
	if testing.Short() {
		n, nRegions = 60, 40
	}
	tight, byOverlap, byDisjoint, byGroups := 0, 0, 0, 0
	// How far the plans are from the optimum, without a pack and with one.
	var planned, optimal, optimalPacked, plannedPacked int
	var excess, excessPacked int
	for i := range n + nRegions {
		tc := randomTiny(r)
		if i >= n {
			tc = randomRegionsTiny(r)
		}
		opt := tc.fewest()
		var h hand
		for m, name := range tc.names {
			for c, k := range tc.servers[m] {
				if k > 0 {
					h.add(k, fmt.Sprintf("r%d", tc.region[m]), name, name+"1", fmt.Sprintf("%s1-c%d", strings.ToLower(name), c+1), "UTC", 10, 1)
				}
			}
		}
		spec := tc.spec()
		require.NoError(t, spec.Validate(), "case %d", i)
		p, err := rollout.NewPlan(context.Background(), spec, h.snap(t), monday)
		if errors.Is(err, rollout.ErrInfeasible) {
			continue // the plan needs more time than the horizon; opt may still exist
		}
		require.NoError(t, err, "case %d", i)
		require.GreaterOrEqual(t, opt, 1, "case %d %+v: the planner fits the horizon, the search does not", i, tc)
		require.LessOrEqual(t, p.Bounds.MinWaves, opt, "case %d %+v: bound %s above the optimum %d", i, tc, p.Bounds, opt)
		require.GreaterOrEqual(t, len(p.Waves), opt, "case %d %+v: plan beats the optimum", i, tc)
		if p.Bounds.MinWaves == opt {
			tight++
		}
		planned++
		excess += len(p.Waves) - opt
		if len(p.Waves) == opt {
			optimal++
		}
		spec.Pack = rollout.Duration(24 * time.Hour)
		if pp, err := rollout.NewPlan(context.Background(), spec, h.snap(t), monday); err == nil {
			require.GreaterOrEqual(t, len(pp.Waves), opt, "case %d %+v: packed plan beats the optimum", i, tc)
			plannedPacked++
			excessPacked += len(pp.Waves) - opt
			if len(pp.Waves) == opt {
				optimalPacked++
			}
		}
		switch {
		case strings.HasPrefix(p.Bounds.MinWavesBy, "overlap:") && tc.mpr > 1:
			byGroups++
			byOverlap++
		case strings.HasPrefix(p.Bounds.MinWavesBy, "overlap:"):
			byOverlap++
		case strings.HasPrefix(p.Bounds.MinWavesBy, "disjoint:"):
			byDisjoint++
		}
	}
	t.Logf("%d cases: bound equals the optimum in %d; set by overlap %d (%d of them under metros_per_region 2), by disjoint metros %d",
		n+nRegions, tight, byOverlap, byGroups, byDisjoint)
	t.Logf("plans: %d of %d optimal, %d waves over the optima in all; with a pack of 24h %d of %d optimal, %d waves over",
		optimal, planned, excess, optimalPacked, plannedPacked, excessPacked)
	// The packed planner's distance from the optimum, measured when this
	// was written (219 of 280 optimal, 70 waves over), with some room: a
	// change that makes plans worse fails here.
	require.GreaterOrEqual(t, float64(optimalPacked), 0.72*float64(plannedPacked), "packed plans optimal too rarely")
	require.LessOrEqual(t, float64(excessPacked), 0.32*float64(plannedPacked), "packed plans too far over the optima")
	require.Positive(t, byOverlap, "no case exercised the overlap bound")
	require.Positive(t, byGroups, "no case exercised the overlap bound under metros_per_region 2")
}
