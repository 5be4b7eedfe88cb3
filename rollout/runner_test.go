package rollout_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/rollout"
)

const weekSpec = `
name: week
component: cdn-app
version: 3.3.0
select: role=edge
deploy: 15m
horizon: 21d
budgets: {metro: 20%, cluster: 25%}
windows: [{days: [mon, tue, wed, thu, fri], start: "01:00", end: "05:00", tz: metro}]
canary: {count: 2, bake: 1h}
growth: {steps: [2, 4, 6], bake: 15m}
gate: {min_healthy: 5m, poll: 1m}
`

// inWeekWindow reports whether [from, to] lies inside one 01:00-05:00
// weekday window of zone loc.
func inWeekWindow(loc *time.Location, from, to time.Time) bool {
	a, b := from.In(loc), to.In(loc)
	day := time.Date(a.Year(), a.Month(), a.Day(), 0, 0, 0, 0, loc)
	open, shut := day.Add(time.Hour), day.Add(5*time.Hour)
	return a.Weekday() != time.Saturday && a.Weekday() != time.Sunday && !a.Before(open) && !b.After(shut)
}

func TestRunnerCompletesAWeekOfWindows(t *testing.T) {
	s := newSim(t, simOpts{size: 600})
	created := s.create("week", weekSpec)
	var want []string
	for _, ws := range plannedServers(created) {
		want = append(want, ws...)
	}
	require.NotEmpty(t, want)

	require.NoError(t, s.run("week", nil))
	st := s.state("week")
	require.Equal(t, rollout.StatusCompleted, st.Status)
	checkHistory(t, st, s.dep.deploys())

	var got []string
	deploy, bake := 15*time.Minute, 15*time.Minute
	for i, w := range st.Waves {
		require.Equal(t, rollout.PhaseCompleted, w.Phase)
		if i == 0 {
			bake = time.Hour
		} else {
			bake = 15 * time.Minute
		}
		require.GreaterOrEqual(t, w.CompletedAt.Sub(w.StartedAt), deploy+bake, "wave %d bakes in full", w.Number)
		for _, ws := range w.Servers {
			got = append(got, ws.ID)
			n := s.nodes[ws.ID]
			loc, err := time.LoadLocation(n.Timezone)
			require.NoError(t, err)
			require.True(t, inWeekWindow(loc, w.StartedAt, w.CompletedAt),
				"wave %d (%s to %s) is outside %s's window", w.Number, w.StartedAt, w.CompletedAt, n.Metro)
			v, _ := s.ix.Snapshot().Get(ws.ID)
			require.Equal(t, "3.3.0", v.Versions["cdn-app"])
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	require.Empty(t, cmp.Diff(want, got), "every planned server deployed, once")
	require.Greater(t, st.UpdatedAt.Sub(simStart), 2*24*time.Hour, "the rollout spans several nights")
	sum := st.Summary()
	require.Equal(t, len(want), sum.Deployed)
	require.Equal(t, len(st.Waves), sum.WavesDone)
}

func TestRunnerOperations(t *testing.T) {
	s := newSim(t, simOpts{size: 300})
	st := s.create("ops", `
component: cdn-app
version: 3.3.0
select: role=edge
deploy: 10m
budgets: {metro: 25%}
growth: {steps: [2, 4, 8], bake: 30m}
`)
	planned := plannedServers(st)
	require.Greater(t, len(planned), 6)
	skipped := planned[5][0]
	pinned := planned[1][0]
	ctx := context.Background()
	var opErrs []error
	var paused bool
	s.dep.after = func(_ context.Context, req rollout.DeployRequest) {
		if req.Rollback {
			return
		}
		switch req.Wave {
		case 1:
			opErrs = append(opErrs, s.runner.SkipServer(ctx, "ops", skipped, "hardware ticket"))
		case 2:
			opErrs = append(opErrs, s.runner.Pause(ctx, "ops", "lunch"))
			// A pause does not stop the wave in flight, but a second
			// one is refused.
			require.ErrorIs(t, s.runner.Pause(ctx, "ops", "again"), rollout.ErrInvalidOperation)
		case 3:
			opErrs = append(opErrs, s.runner.Promote(ctx, "ops"))
		case 4:
			opErrs = append(opErrs, s.runner.PinServer(ctx, "ops", pinned, "customer test box"))
		case 6:
			opErrs = append(opErrs, s.runner.Abort(ctx, "ops", "enough"))
		}
	}
	err := s.run("ops", func(e rollout.Event) {
		// Resume once the paused rollout finished its wave in flight.
		if e.Type == rollout.EventPaused {
			paused = true
		}
		if paused && e.Type == rollout.EventWaveCompleted && e.Wave == 2 {
			require.NoError(t, s.runner.Resume(ctx, "ops", ""))
		}
	})
	require.NoError(t, err)
	for _, e := range opErrs {
		require.NoError(t, e)
	}
	require.True(t, paused)
	st = s.state("ops")
	require.Equal(t, rollout.StatusAborted, st.Status)
	require.Equal(t, "enough", st.Reason)
	require.Len(t, st.Waves, 6, "nothing starts after an abort")
	require.Equal(t, rollout.PhaseDeployed, st.Waves[5].Phase, "the deploy in flight is recorded")
	checkHistory(t, st, s.dep.deploys())
	for _, w := range st.Waves {
		for _, ws := range w.Servers {
			require.NotEqual(t, skipped, ws.ID, "a skipped server is not deployed")
		}
	}
	w3 := st.Waves[2]
	require.True(t, w3.Promoted)
	require.Equal(t, w3.GatedAt, w3.CompletedAt, "a promoted wave does not bake")
	require.Greater(t, st.Waves[1].CompletedAt.Sub(st.Waves[1].GatedAt), 20*time.Minute, "the paused wave baked")
	evs := s.log("ops")
	var types []rollout.EventType
	for _, e := range evs {
		switch e.Type {
		case rollout.EventPaused, rollout.EventResumed, rollout.EventPromoted, rollout.EventServerSkipped, rollout.EventServerPinned, rollout.EventAborted:
			types = append(types, e.Type)
		}
	}
	require.Equal(t, []rollout.EventType{rollout.EventServerSkipped, rollout.EventPaused, rollout.EventResumed, rollout.EventPromoted, rollout.EventServerPinned, rollout.EventAborted}, types)
	// The resume came after wave 2 completed, before wave 3 started.
	pausedAt, resumedAt := ofType(evs, rollout.EventPaused)[0].Seq, ofType(evs, rollout.EventResumed)[0].Seq
	w2done := ofType(evs, rollout.EventWaveCompleted)[1].Seq
	w3start := ofType(evs, rollout.EventWaveStarted)[2].Seq
	require.Less(t, pausedAt, w2done)
	require.Less(t, w2done, resumedAt)
	require.Less(t, resumedAt, w3start)

	// Operations that do not apply.
	require.ErrorIs(t, s.runner.Resume(ctx, "ops", ""), rollout.ErrInvalidOperation)
	require.ErrorIs(t, s.runner.Pause(ctx, "ops", ""), rollout.ErrInvalidOperation)
	require.ErrorIs(t, s.runner.Promote(ctx, "ops"), rollout.ErrInvalidOperation)
	require.ErrorIs(t, s.runner.SkipServer(ctx, "ops", "x", ""), rollout.ErrInvalidOperation)
	require.ErrorIs(t, s.runner.Abort(ctx, "ops", ""), rollout.ErrInvalidOperation)
	require.ErrorIs(t, s.runner.Pause(ctx, "nope", ""), rollout.ErrNotFound)

	// An aborted rollout can still be rolled back; the pinned server
	// stays as it is.
	require.NoError(t, s.runner.Rollback(ctx, "ops", "undo"))
	require.ErrorIs(t, s.runner.Rollback(ctx, "ops", "twice"), rollout.ErrInvalidOperation)
	require.NoError(t, s.run("ops", nil))
	st = s.state("ops")
	require.Equal(t, rollout.StatusRolledBack, st.Status)
	snap := s.ix.Snapshot()
	for _, w := range st.Waves {
		for _, ws := range w.Servers {
			n, _ := snap.Get(ws.ID)
			if ws.ID == pinned {
				require.Equal(t, "3.3.0", n.Versions["cdn-app"])
				continue
			}
			require.Equal(t, s.nodes[ws.ID].Versions["cdn-app"], n.Versions["cdn-app"], "server %s rolled back", ws.ID)
		}
	}
}

func TestRunnerDeployErrorsRetryThenPause(t *testing.T) {
	s := newSim(t, simOpts{})
	s.create("err", `
component: cdn-app
version: 3.3.0
select: role=edge
budgets: {metro: 25%}
growth: {steps: [5, 20], bake: 10m}
`)
	s.dep.errs = 2 // two failures, then the third attempt works
	resumed := false
	s.dep.after = func(_ context.Context, req rollout.DeployRequest) {
		if req.Wave == 2 {
			s.dep.mu.Lock()
			s.dep.errs = 3 // wave 3 fails three times: pause
			s.dep.mu.Unlock()
		}
	}
	err := s.run("err", func(e rollout.Event) {
		if e.Type == rollout.EventPaused {
			require.Equal(t, rollout.CauseDeploy, e.Cause)
			require.Contains(t, e.Reason, "deployer failed 3 times in a row")
			resumed = true
			require.NoError(t, s.runner.Resume(context.Background(), "err", "deployer fixed"))
		}
	})
	require.NoError(t, err)
	require.True(t, resumed)
	st := s.state("err")
	require.Equal(t, rollout.StatusCompleted, st.Status)
	checkHistory(t, st, s.dep.deploys())
	evs := s.log("err")
	errsEv := ofType(evs, rollout.EventDeployError)
	require.Len(t, errsEv, 5)
	require.Equal(t, 1, errsEv[0].Wave)
	require.Equal(t, errsEv[0].At.Add(rollout.DefaultDeployBackoff), errsEv[0].RetryAt)
	require.Equal(t, errsEv[1].At.Add(2*rollout.DefaultDeployBackoff), errsEv[1].RetryAt, "the backoff doubles")
	require.Equal(t, 3, errsEv[2].Wave)
	require.Equal(t, 2, st.Waves[2].Attempt, "the resume starts a new attempt")
	require.Equal(t, "err/wave/3/2", st.Waves[2].Key)
	require.Equal(t, st.Waves[0].StartedAt.Add(30*time.Second), st.Waves[0].DeployedAt, "10s + 20s of backoff")
}

func TestRunnerErrors(t *testing.T) {
	s := newSim(t, simOpts{size: 50})
	_, err := rollout.NewRunner(rollout.RunnerConfig{Fleet: s.ix, Deployer: s.dep})
	require.ErrorContains(t, err, "Store is required")
	_, err = rollout.NewRunner(rollout.RunnerConfig{Store: s.store, Deployer: s.dep})
	require.ErrorContains(t, err, "Fleet is required")
	_, err = rollout.NewRunner(rollout.RunnerConfig{Store: s.store, Fleet: s.ix})
	require.ErrorContains(t, err, "Deployer is required")
	_, err = rollout.NewRunner(rollout.RunnerConfig{Store: s.store, Fleet: s.ix, Deployer: s.dep, DeployAttempts: -1})
	require.ErrorContains(t, err, "DeployAttempts")

	ctx := context.Background()
	spec := &rollout.Spec{Select: "role=edge", Growth: rollout.Growth{Steps: []rollout.Amount{{Count: 5}}}}
	_, err = s.runner.Create(ctx, "a/b", spec)
	require.ErrorContains(t, err, "invalid rollout ID")
	_, err = s.runner.Create(ctx, "bad", &rollout.Spec{})
	require.ErrorIs(t, err, rollout.ErrInvalidSpec)
	_, err = s.runner.Create(ctx, "a", spec)
	require.NoError(t, err)
	_, err = s.runner.Create(ctx, "a", spec)
	require.ErrorIs(t, err, rollout.ErrExists)
	require.ErrorIs(t, s.runner.Run(ctx, "missing"), rollout.ErrNotFound)

	// Of two Runs of the same rollout, one is refused.
	require.NoError(t, s.runner.Pause(ctx, "a", "hold"))
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 2)
	for range 2 {
		go func() { done <- s.runner.Run(rctx, "a") }()
	}
	select {
	case err := <-done:
		require.ErrorIs(t, err, rollout.ErrRunning)
	case <-time.After(10 * time.Second):
		t.Fatal("neither Run was refused")
	}
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
}

// A calendar that fails is asked again later; no wave starts meanwhile.
func TestRunnerCalendarFailure(t *testing.T) {
	s := newSim(t, simOpts{size: 60})
	s.create("cal", "select: role=edge\ngrowth: {steps: [50]}\n")
	s.cal.fail = 2
	require.NoError(t, s.run("cal", nil))
	st := s.state("cal")
	require.Equal(t, rollout.StatusCompleted, st.Status)
	require.Equal(t, simStart.Add(2*rollout.DefaultDeployBackoff), st.Waves[0].StartedAt)
}

func ExampleRunner() {
	ctx := context.Background()
	var nodes []*disposition.Node
	for i := range 6 {
		nodes = append(nodes, &disposition.Node{
			ID: fmt.Sprintf("edge-%d", i), Region: "na", Metro: "DEN", Site: "DEN1", Cluster: "DEN1-c1",
			Timezone: "America/Denver", Role: "edge", State: disposition.StateInService,
			Health: disposition.HealthHealthy, Versions: map[string]string{"app": "1.0"},
		})
	}
	ix := disposition.NewIndex()
	if _, err := ix.Apply(ctx, disposition.Batch{Upserts: nodes}); err != nil {
		panic(err)
	}
	spec, err := rollout.ParseSpec("spec.yaml", []byte(`
component: app
version: "1.1"
select: role=edge
deploy: 10m
growth: {steps: [1, 2], bake: 20m}
failure: {global: 1, action: rollback}
gate: {min_healthy: 5m}
`))
	if err != nil {
		panic(err)
	}
	// A deployer that fails on edge-3 and edge-4, and a clock that runs the
	// schedule at once.
	deployer := rollout.DeployerFunc(func(ctx context.Context, req rollout.DeployRequest) ([]rollout.ServerResult, error) {
		var res []rollout.ServerResult
		for _, s := range req.Servers {
			res = append(res, rollout.ServerResult{Server: s, OK: req.Rollback || s != "edge-3" && s != "edge-4"})
		}
		return res, nil
	})
	clock := rollout.NewFakeClock(time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC))
	clock.SetAuto(true)
	store := rollout.NewMemStore() // or boltstore.Open("rollouts.db")
	runner, err := rollout.NewRunner(rollout.RunnerConfig{Store: store, Fleet: ix, Deployer: deployer, Clock: clock})
	if err != nil {
		panic(err)
	}
	if _, err := runner.Create(ctx, "app-1.1", spec); err != nil {
		panic(err)
	}
	if err := runner.Run(ctx, "app-1.1"); err != nil {
		panic(err)
	}
	events, err := store.Load(ctx, "app-1.1")
	if err != nil {
		panic(err)
	}
	for _, e := range events {
		fmt.Printf("%d %s %s", e.Seq, e.At.Format("15:04"), e.Type)
		switch {
		case e.Wave > 0:
			fmt.Printf(" wave %d", e.Wave)
		case e.Batch > 0:
			fmt.Printf(" batch %d", e.Batch)
		}
		if e.Type == rollout.EventBudgetExceeded {
			fmt.Printf(": %s", e.Breaches[0])
		}
		fmt.Println()
	}
	// Output:
	// 1 12:00 created
	// 2 12:00 wave-started wave 1
	// 3 12:00 wave-deployed wave 1
	// 4 12:05 wave-gated wave 1
	// 5 12:30 wave-completed wave 1
	// 6 12:30 wave-started wave 2
	// 7 12:30 wave-deployed wave 2
	// 8 12:35 wave-gated wave 2
	// 9 13:00 wave-completed wave 2
	// 10 13:00 wave-started wave 3
	// 11 13:00 wave-deployed wave 3
	// 12 13:00 wave-gated wave 3
	// 13 13:00 budget-exceeded wave 3: global budget: 2 failures, 1 allowed
	// 14 13:00 rollback-started
	// 15 13:00 rollback-deployed batch 1
	// 16 13:00 rolled-back
}
