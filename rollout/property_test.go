package rollout_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/rollout"
	"github.com/fleetkit/fleetkit/testkit/fleet"
)

// randomAmount returns nil, a count or a percentage.
func randomAmount(r *rand.Rand, maxCount int) *rollout.Amount {
	switch r.IntN(3) {
	case 0:
		return nil
	case 1:
		return rollout.Count(1 + r.IntN(maxCount))
	}
	return rollout.Percent(float64(1 + r.IntN(60)))
}

// randomSpec draws a spec over f's metros and regions.
func randomSpec(r *rand.Rand, f *fleet.Fleet, start time.Time) *rollout.Spec {
	metro := func() *fleet.Metro { return &f.Metros[r.IntN(len(f.Metros))] }
	s := &rollout.Spec{
		Name:    "random",
		Select:  []string{"", "role=edge", "role=edge,mid", "release_state!=trial"}[r.IntN(4)],
		Deploy:  rollout.Duration(time.Duration(5+r.IntN(40)) * time.Minute),
		Horizon: rollout.Duration(60 * 24 * time.Hour),
	}
	if r.IntN(2) == 0 {
		s.Exclude = "label.tier=" + fmt.Sprint(1+r.IntN(3))
	}
	if r.IntN(2) == 0 {
		s.Component, s.Version = "cdn-app", "3.2.0"
	}
	s.Budgets = rollout.Budgets{
		Global: randomAmount(r, 200), Region: randomAmount(r, 50), Metro: randomAmount(r, 20),
		Site: randomAmount(r, 10), Cluster: randomAmount(r, 5),
	}
	if r.IntN(3) == 0 {
		s.Budgets.MetrosPerRegion = 1 + r.IntN(2)
	}
	if r.IntN(4) == 0 {
		s.Budgets.SitesPerMetro = 1 + r.IntN(2)
	}
	if r.IntN(4) == 0 {
		s.Budgets.ClustersPerSite = 1 + r.IntN(3)
	}
	if r.IntN(2) == 0 {
		s.Capacity = &rollout.Capacity{Headroom: r.Float64() * 0.4}
	}
	switch r.IntN(4) {
	case 1:
		s.Windows = []rollout.Window{{Start: 22 * 60, End: 6 * 60}}
	case 2:
		s.Windows = []rollout.Window{
			{Days: []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday}, Start: rollout.TimeOfDay(r.IntN(6) * 60), End: rollout.TimeOfDay((6 + r.IntN(6)) * 60)},
			{Scope: rollout.Scope{Region: metro().Region}, Start: 60, End: 4 * 60, TZ: "UTC"},
		}
	case 3:
		s.Windows = []rollout.Window{{Start: rollout.TimeOfDay(r.IntN(24*4) * 15), End: rollout.TimeOfDay(r.IntN(24*4)*15 + 15)}}
		if s.Windows[0].Start == s.Windows[0].End {
			s.Windows[0].End = (s.Windows[0].End + 120) % 1440
		}
		if s.Windows[0].End == 0 {
			s.Windows[0].End = 1440
		}
		s.Windows = append(s.Windows, rollout.Window{Scope: rollout.Scope{Metro: metro().Code}, Start: 0, End: 1440})
	}
	for range r.IntN(3) {
		from := start.Add(time.Duration(r.IntN(72)) * time.Hour)
		b := rollout.Blackout{From: from, To: from.Add(time.Duration(1+r.IntN(48)) * time.Hour), Reason: "random freeze"}
		switch r.IntN(3) {
		case 1:
			b.Region = metro().Region
		case 2:
			b.Metro = metro().Code
		}
		s.Blackouts = append(s.Blackouts, b)
	}
	if r.IntN(2) == 0 {
		s.Canary = rollout.Canary{Count: 1 + r.IntN(3), Bake: rollout.Duration(time.Duration(r.IntN(3)) * time.Hour)}
		if r.IntN(2) == 0 {
			s.Canary.Where = "region=" + metro().Region
		}
	}
	switch r.IntN(3) {
	case 0:
		s.Growth.Steps = []rollout.Amount{{Count: 1}, {Count: 1 + r.IntN(10)}, {Pct: float64(1 + r.IntN(30)), Percent: true}}
	case 1:
		s.Growth.Exponential = &rollout.Exponential{Start: rollout.Amount{Count: 1 + r.IntN(3)}, Factor: 1.5 + r.Float64()*2, Cap: randomAmount(r, 500)}
	default:
		s.Growth.Linear = &rollout.Linear{Start: rollout.Amount{Count: 1 + r.IntN(5)}, Step: rollout.Amount{Pct: float64(1 + r.IntN(20)), Percent: true}}
	}
	s.Growth.Bake = rollout.Duration(time.Duration(r.IntN(4)*15) * time.Minute)
	if r.IntN(2) == 0 {
		// Packing waits for fuller waves: the focus and its holds.
		s.Pack = rollout.Duration(time.Duration(1+r.IntN(12)) * time.Hour)
	}
	switch r.IntN(3) {
	case 1:
		s.Order = []rollout.Preference{{By: rollout.ByMetroUtilisation}}
	case 2:
		s.Order = []rollout.Preference{{By: "release_state", First: []string{"trial", "nrt"}}, {By: rollout.ByMetroSize, Desc: true}}
	}
	return s
}

// TestPlanProperties plans random specs over random generated fleets and
// checks every plan with plancheck: budgets, capacity, windows,
// blackouts, coverage, growth, ordering; plus determinism and that the
// lower bounds are below the plan.
func TestPlanProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	n := 40
	if testing.Short() {
		n = 10
	}
	planned, infeasible := 0, 0
	for i := range n {
		size := 50 + r.IntN(1500)
		seed := r.Int64N(1000)
		// Start around daylight-saving changes in both hemispheres too.
		base := []time.Time{
			time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC), time.Date(2026, 3, 6, 0, 0, 0, 0, time.UTC),
			time.Date(2026, 3, 27, 0, 0, 0, 0, time.UTC), time.Date(2026, 4, 3, 0, 0, 0, 0, time.UTC),
			time.Date(2026, 10, 2, 0, 0, 0, 0, time.UTC), time.Date(2026, 10, 30, 0, 0, 0, 0, time.UTC),
		}[r.IntN(6)]
		bf := buildFleetAt(t, size, seed, base)
		start := base.Add(time.Duration(r.IntN(4*24*60)) * time.Minute)
		spec := randomSpec(r, bf.fleet, start)
		require.NoError(t, spec.Validate(), "case %d", i)
		t.Run(fmt.Sprintf("%d/size=%d/seed=%d", i, size, seed), func(t *testing.T) {
			p, err := rollout.NewPlan(context.Background(), spec, bf.snap, start)
			if errors.Is(err, rollout.ErrInfeasible) {
				infeasible++
				t.Logf("infeasible: %v", err)
				return
			}
			require.NoError(t, err)
			planned++
			planOK(t, spec, bf.snap, start)
			require.NotEmpty(t, p.Text())
			if len(p.Waves) > 0 {
				w := p.Waves[len(p.Waves)-1]
				require.Contains(t, p.Explain(w.Servers[0]), fmt.Sprintf("wave %d of %d", w.Index, len(p.Waves)))
			}
		})
	}
	t.Logf("%d planned, %d infeasible", planned, infeasible)
	require.Greater(t, planned, n*3/4, "most random specs should be feasible")
}
