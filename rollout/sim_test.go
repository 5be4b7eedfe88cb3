package rollout_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/rollout"
)

// oracleBreaches recomputes, from a finished rollout's waves alone, after
// which waves the failure budgets were exceeded, with the Runner's
// documented rules: a server fails when its deploy failed or it was
// unhealthy after its gate, unless it was unhealthy before its wave;
// percentages are of the scope's servers in the rollout, rounded down;
// resuming after a breach acknowledges the failures counted so far.
func oracleBreaches(st *rollout.State, f rollout.Failure) map[int][]rollout.Breach {
	metroOf, clusterOf := map[string]string{}, map[string]string{}
	totals := map[string]map[string]int{"metro": {}, "cluster": {}}
	all := 0
	for _, w := range st.Waves {
		for _, ws := range w.Servers {
			metroOf[ws.ID], clusterOf[ws.ID] = ws.Metro, ws.Cluster
			totals["metro"][ws.Metro]++
			totals["cluster"][ws.Cluster]++
			all++
		}
	}
	allowed := func(a *rollout.Amount, n int) int {
		if a.Percent {
			return int(math.Floor(a.Pct*float64(n)/100 + 1e-9))
		}
		return a.Count
	}
	counted := map[string]bool{}
	out := map[int][]rollout.Breach{}
	for _, w := range st.Waves {
		if w.Phase != rollout.PhaseCompleted && w.Phase != rollout.PhaseGated {
			continue
		}
		failed := map[string]bool{}
		for _, r := range w.Results {
			if !r.OK {
				failed[r.Server] = true
			}
		}
		for _, id := range w.Unhealthy {
			failed[id] = true
		}
		inWave := 0
		for _, ws := range w.Servers {
			if failed[ws.ID] && !ws.Unhealthy {
				counted[ws.ID] = true
				inWave++
			}
		}
		var bs []rollout.Breach
		if f.Wave != nil && inWave > allowed(f.Wave, len(w.Servers)) {
			bs = append(bs, rollout.Breach{Scope: "wave", Name: fmt.Sprint(w.Number), Failures: inWave, Allowed: allowed(f.Wave, len(w.Servers))})
		}
		for _, sc := range []struct {
			name string
			a    *rollout.Amount
			of   map[string]string
		}{{"cluster", f.Cluster, clusterOf}, {"metro", f.Metro, metroOf}} {
			if sc.a == nil {
				continue
			}
			n := map[string]int{}
			for id := range counted {
				n[sc.of[id]]++
			}
			names := make([]string, 0, len(n))
			for k := range n {
				names = append(names, k)
			}
			sort.Strings(names)
			for _, k := range names {
				if a := allowed(sc.a, totals[sc.name][k]); n[k] > a {
					bs = append(bs, rollout.Breach{Scope: sc.name, Name: k, Failures: n[k], Allowed: a})
				}
			}
		}
		if f.Global != nil && len(counted) > allowed(f.Global, all) {
			bs = append(bs, rollout.Breach{Scope: "global", Failures: len(counted), Allowed: allowed(f.Global, all)})
		}
		if len(bs) > 0 {
			out[w.Number] = bs
			clear(counted) // the operator resumes: acknowledged
		}
	}
	return out
}

func TestSimBudgetBreachPausesAtTheRightWave(t *testing.T) {
	for _, tc := range []struct {
		failure string
		seed    int64
	}{
		{"{wave: 5%}", 1},
		{"{cluster: 1}", 2},
		{"{metro: 5%}", 3},
		{"{global: 4}", 4},
		{"{metro: 10%, cluster: 2, global: 3%}", 5},
	} {
		t.Run(tc.failure, func(t *testing.T) {
			s := newSim(t, simOpts{size: 1000, seed: tc.seed})
			st := s.create("b", `
component: cdn-app
version: 3.3.0
select: role=edge
deploy: 10m
budgets: {metro: 20%}
growth: {steps: [2, 10, 40], bake: 20m}
gate: {min_healthy: 5m, poll: 1m}
failure: `+tc.failure+"\n")
			rnd := rand.New(rand.NewPCG(uint64(tc.seed), 7))
			for _, w := range plannedServers(st) {
				for _, id := range w {
					switch x := rnd.Float64(); {
					case x < 0.03:
						s.dep.fail[id] = "state.apply failed"
					case x < 0.05:
						s.dep.breaks[id] = true
					}
				}
			}
			var pauses []rollout.Event
			err := s.run("b", func(e rollout.Event) {
				if e.Type == rollout.EventPaused {
					require.Equal(t, rollout.CauseBudget, e.Cause)
					pauses = append(pauses, e)
					require.NoError(t, s.runner.Resume(context.Background(), "b", "acknowledged"))
				}
			})
			require.NoError(t, err)
			final := s.state("b")
			require.Equal(t, rollout.StatusCompleted, final.Status)
			checkHistory(t, final, s.dep.deploys())

			want := oracleBreaches(final, final.Spec.Failure)
			require.NotEmpty(t, want, "the injected failures breach a budget")
			evs := s.log("b")
			got := map[int][]rollout.Breach{}
			for i, e := range evs {
				if e.Type != rollout.EventBudgetExceeded {
					continue
				}
				got[e.Wave] = e.Breaches
				// The breach pauses before any other wave starts.
				require.Equal(t, rollout.EventPaused, evs[i+1].Type)
				for _, later := range evs[i+1:] {
					if later.Type == rollout.EventResumed {
						break
					}
					require.NotEqual(t, rollout.EventWaveStarted, later.Type, "a wave started while paused")
				}
			}
			require.Empty(t, cmp.Diff(want, got))
			require.Len(t, pauses, len(want))
		})
	}
}

func TestSimRollbackRestores(t *testing.T) {
	s := newSim(t, simOpts{size: 800, seed: 9})
	st := s.create("rb", `
component: cdn-app
version: 3.3.0
select: role=edge
deploy: 10m
budgets: {metro: 20%}
growth: {steps: [2, 10, 20, 40], bake: 20m}
failure: {metro: 5%, action: rollback, rollback_batch: 25}
`)
	planned := plannedServers(st)
	// Three failures in one metro, from wave 3 on.
	byMetro := map[string][]string{}
	metro := ""
	for _, w := range planned[2:] {
		for _, id := range w {
			m := s.nodes[id].Metro
			byMetro[m] = append(byMetro[m], id)
			if len(byMetro[m]) > len(byMetro[metro]) || len(byMetro[m]) == len(byMetro[metro]) && m < metro {
				metro = m
			}
		}
	}
	inMetro := byMetro[metro]
	require.GreaterOrEqual(t, len(inMetro), 3)
	for _, id := range inMetro[:3] {
		s.dep.fail[id] = "package conflict"
	}
	require.NoError(t, s.run("rb", nil))
	final := s.state("rb")
	require.Equal(t, rollout.StatusRolledBack, final.Status)
	checkHistory(t, final, s.dep.deploys())
	evs := s.log("rb")
	breach := ofType(evs, rollout.EventBudgetExceeded)
	require.Len(t, breach, 1)
	require.Equal(t, "metro", breach[0].Breaches[0].Scope)
	require.Equal(t, metro, breach[0].Breaches[0].Name)
	require.Len(t, final.Waves, breach[0].Wave, "no wave starts after the breach")
	assertRestored(t, s, final, 25)
}

// assertRestored checks that every server a wave was sent to is back at
// its version from before the rollout, through rollback deploys of one
// version each and at most batch servers.
func assertRestored(t *testing.T, s *sim, st *rollout.State, batch int) {
	t.Helper()
	want := map[string]bool{}
	for _, w := range st.Waves {
		for _, ws := range w.Servers {
			want[ws.ID] = true
		}
	}
	got := map[string]bool{}
	for _, d := range s.dep.deploys() {
		if !d.Rollback {
			continue
		}
		require.LessOrEqual(t, len(d.Servers), batch)
		for _, id := range d.Servers {
			require.Equal(t, s.nodes[id].Versions["cdn-app"], d.Version, "server %s goes back to its version", id)
			require.False(t, got[id], "server %s rolled back twice", id)
			got[id] = true
		}
	}
	require.Equal(t, want, got)
	snap := s.ix.Snapshot()
	for id := range want {
		n, _ := snap.Get(id)
		require.Equal(t, s.nodes[id].Versions["cdn-app"], n.Versions["cdn-app"])
	}
}

// Rolling back a completed rollout uses batches larger than its waves:
// four times the largest by default.
func TestSimRollbackAfterCompletion(t *testing.T) {
	s := newSim(t, simOpts{size: 500, seed: 4})
	s.create("rb", `
component: cdn-app
version: 3.3.0
select: role=edge
budgets: {metro: 20%}
growth: {steps: [5, 20]}
`)
	require.NoError(t, s.run("rb", nil))
	require.NoError(t, s.runner.Rollback(context.Background(), "rb", "bad release"))
	require.NoError(t, s.run("rb", nil))
	final := s.state("rb")
	require.Equal(t, rollout.StatusRolledBack, final.Status)
	largest := 0
	for _, w := range final.Waves {
		largest = max(largest, len(w.Servers))
	}
	assertRestored(t, s, final, 4*largest)
	var biggest int
	for _, d := range s.dep.deploys() {
		if d.Rollback {
			biggest = max(biggest, len(d.Servers))
		}
	}
	require.Greater(t, biggest, largest)
	sum := final.Summary()
	require.Equal(t, sum.Deployed, sum.RolledBack, "every deployed server rolled back")
}

func TestSimHealthFlapping(t *testing.T) {
	s := newSim(t, simOpts{size: 400, seed: 3})
	s.create("hf", `
component: cdn-app
version: 3.3.0
select: role=edge
deploy: 10m
budgets: {metro: 20%}
growth: {steps: [4, 8], bake: 20m}
gate: {min_healthy: 5m, poll: 1m}
failure: {global: 5}
`)
	var flapper, slow, down string
	s.dep.after = func(_ context.Context, req rollout.DeployRequest) {
		now := s.clock.Now()
		switch req.Wave {
		case 3:
			flapper, slow = req.Servers[0], req.Servers[1]
			// The flapper is healthy for 90 s at a time, never 5 min;
			// the slow one is down for 3 min after its deploy.
			for k := range 40 {
				h := disposition.HealthDown
				if k%2 == 1 {
					h = disposition.HealthHealthy
				}
				s.fl.add(healthChange{at: now.Add(30*time.Second + time.Duration(k)*90*time.Second), id: flapper, health: h})
			}
			s.fl.add(healthChange{at: now, id: slow, health: disposition.HealthDown},
				healthChange{at: now.Add(3 * time.Minute), id: slow, health: disposition.HealthHealthy})
		case 4:
			// A server planned for a later wave goes down before it.
			st, err := s.runner.State(context.Background(), "hf")
			require.NoError(t, err)
			down = st.Remaining[1].Servers[0]
			s.fl.add(healthChange{at: now, id: down, health: disposition.HealthDown})
		}
	}
	require.NoError(t, s.run("hf", nil))
	st := s.state("hf")
	require.Equal(t, rollout.StatusCompleted, st.Status)
	checkHistory(t, st, s.dep.deploys())
	w3 := st.Waves[2]
	require.Equal(t, []string{flapper}, w3.Unhealthy, "the flapper fails the gate, the slow server passes")
	require.Equal(t, 15*time.Minute, w3.GatedAt.Sub(w3.DeployedAt), "the gate waited until its timeout")
	for _, w := range st.Waves {
		for _, ws := range w.Servers {
			require.NotEqual(t, down, ws.ID, "a server down before its wave is not deployed")
		}
	}
	sum := st.Summary()
	require.Equal(t, 1, sum.Failed)
	replans := ofType(s.log("hf"), rollout.EventReplanned)
	require.NotEmpty(t, replans)
	require.True(t, slices.ContainsFunc(replans, func(e rollout.Event) bool { return strings.Contains(e.Reason, "fleet changed") }))
}

func TestSimBlackoutMidRollout(t *testing.T) {
	s := newSim(t, simOpts{size: 600, seed: 5})
	s.create("bo", `
component: cdn-app
version: 3.3.0
select: role=edge
deploy: 15m
budgets: {metro: 15%}
growth: {steps: [3, 10], bake: 15m}
`)
	var bo rollout.Blackout
	s.dep.after = func(_ context.Context, req rollout.DeployRequest) {
		if req.Wave != 2 {
			return
		}
		// The next wave's metro enters a blackout an hour from now, for
		// two days, declared while wave 2 runs.
		st, err := s.runner.State(context.Background(), "bo")
		require.NoError(t, err)
		now := s.clock.Now()
		bo = rollout.Blackout{
			Scope: rollout.Scope{Metro: s.nodes[st.Remaining[0].Servers[0]].Metro},
			From:  now.Add(time.Hour), To: now.Add(48 * time.Hour), Reason: "carrier maintenance",
		}
		s.cal.mu.Lock()
		s.cal.list = append(s.cal.list, declared{from: now, b: bo})
		s.cal.mu.Unlock()
	}
	require.NoError(t, s.run("bo", nil))
	st := s.state("bo")
	require.Equal(t, rollout.StatusCompleted, st.Status)
	checkHistory(t, st, s.dep.deploys())
	replans := ofType(s.log("bo"), rollout.EventReplanned)
	require.True(t, slices.ContainsFunc(replans, func(e rollout.Event) bool { return strings.Contains(e.Reason, "blackouts changed") }))
	waited := false
	for _, w := range st.Waves {
		touches := slices.ContainsFunc(w.Servers, func(ws rollout.WaveServer) bool { return ws.Metro == bo.Metro })
		if !touches {
			continue
		}
		require.False(t, w.StartedAt.Before(bo.To) && w.CompletedAt.After(bo.From),
			"wave %d (%s to %s) touches %s during its blackout", w.Number, w.StartedAt, w.CompletedAt, bo.Metro)
		waited = waited || !w.StartedAt.Before(bo.To)
	}
	require.True(t, waited, "the metro's remaining servers waited for the blackout's end")
	require.Equal(t, []rollout.Blackout{bo}, st.Blackouts)
}
