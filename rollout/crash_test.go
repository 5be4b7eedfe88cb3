package rollout_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/rollout"
)

// crashStore cancels a Run's context right after its n-th successful
// Append, as if the process died there.
type crashStore struct {
	rollout.Store
	mu      sync.Mutex
	appends int
	n       int
	cancel  context.CancelFunc
}

func (c *crashStore) Append(ctx context.Context, id string, seq uint64, events ...rollout.Event) error {
	err := c.Store.Append(ctx, id, seq, events...)
	if err == nil {
		c.mu.Lock()
		c.appends++
		if c.appends == c.n && c.cancel != nil {
			c.cancel()
		}
		c.mu.Unlock()
	}
	return err
}

// crashScenario is a small rollout that exercises every step: a canary,
// windows, a deploy that fails as a whole once, a failed server, a health
// gate with a slow server, a fleet change that re-plans, and (with
// rollback) a budget breach that rolls back.
type crashScenario struct {
	name     string
	spec     string
	failing  int // how many planned servers the deployer fails
	rollback bool
}

var crashScenarios = []crashScenario{
	{name: "completes", failing: 1, spec: `
component: cdn-app
version: 3.3.0
select: role=edge metro=FRA,GRU,JNB
deploy: 10m
windows: [{start: "13:00", end: "17:00", tz: UTC}]
canary: {count: 1, bake: 20m}
growth: {steps: [2, 5, 10], bake: 15m}
failure: {global: 3}
gate: {min_healthy: 4m, timeout: 20m, poll: 1m}
`},
	{name: "rolls-back", failing: 4, rollback: true, spec: `
component: cdn-app
version: 3.3.0
select: role=edge metro=FRA,GRU,JNB
deploy: 10m
canary: {count: 1, bake: 20m}
growth: {steps: [2, 5, 10], bake: 15m}
failure: {cluster: 1, action: rollback, rollback_batch: 7}
gate: {min_healthy: 4m, poll: 1m}
`},
}

// setup builds the scenario's simulation over store: the same fleet,
// script and failures every time.
func (cs crashScenario) setup(t *testing.T, store rollout.Store) *sim {
	s := newSim(t, simOpts{size: 200, store: store})
	st := s.create("r1", cs.spec)
	planned := plannedServers(st)
	require.GreaterOrEqual(t, len(planned), 5)
	// The deployer fails some servers of waves 3 and 4, and fails the
	// first call of wave 2 as a whole.
	var pool []string
	pool = append(pool, planned[2]...)
	pool = append(pool, planned[3]...)
	for _, id := range pool[:cs.failing] {
		s.dep.fail[id] = "state.apply failed"
	}
	s.dep.after = func(_ context.Context, req rollout.DeployRequest) {
		if req.Wave == 1 {
			s.dep.mu.Lock()
			s.dep.errs = 1
			s.dep.mu.Unlock()
		}
	}
	// The canary server comes up slowly after its deploy; a server of
	// wave 5 goes down before its wave (the fleet changes: re-plan).
	c, at := planned[0][0], st.Remaining[0].Start
	w5 := planned[4][0]
	s.fl.add(
		healthChange{at: at.Add(time.Second), id: c, health: disposition.HealthDown},
		healthChange{at: at.Add(6 * time.Minute), id: c, health: disposition.HealthHealthy},
		healthChange{at: simStart.Add(90 * time.Minute), id: w5, health: disposition.HealthDown},
	)
	return s
}

func runToEnd(t *testing.T, r *rollout.Runner) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, r.Run(ctx, "r1"))
}

// TestCrashResumesExactly kills the runner at every event boundary of a
// small rollout, and inside every Deployer call after the deploy was
// carried out, starts a new runner on the same store, and checks that
// the final event log equals the uninterrupted run's and that no deploy
// was carried out twice or left out.
func TestCrashResumesExactly(t *testing.T) {
	for _, cs := range crashScenarios {
		t.Run(cs.name, func(t *testing.T) {
			counter := &crashStore{Store: rollout.NewMemStore(), n: -1}
			base := cs.setup(t, counter)
			createAppends := counter.appends
			runToEnd(t, base.newRunner(counter))
			want := base.log("r1")
			wantDeploys := base.dep.deploys()
			st := base.state("r1")
			if cs.rollback {
				require.Equal(t, rollout.StatusRolledBack, st.Status)
				require.NotEmpty(t, ofType(want, rollout.EventRollbackDeployed))
			} else {
				require.Equal(t, rollout.StatusCompleted, st.Status)
				require.NotEmpty(t, ofType(want, rollout.EventReplanned))
			}
			require.NotEmpty(t, ofType(want, rollout.EventDeployError))
			gated := ofType(want, rollout.EventWaveGated)[0]
			require.Equal(t, 10*time.Minute, gated.At.Sub(ofType(want, rollout.EventWaveDeployed)[0].At), "the canary's gate waited for its slow server")
			checkHistory(t, st, wantDeploys)
			appends := counter.appends - createAppends
			require.Greater(t, appends, 12)

			// The same run again is identical: the comparison below means
			// something.
			again := cs.setup(t, rollout.NewMemStore())
			runToEnd(t, again.runner)
			require.Empty(t, cmp.Diff(want, again.log("r1")))

			for k := 1; k <= appends; k++ {
				cst := &crashStore{Store: rollout.NewMemStore(), n: -1}
				s := cs.setup(t, cst)
				ctx, cancel := context.WithCancel(context.Background())
				cst.mu.Lock()
				cst.n, cst.appends, cst.cancel = k, 0, cancel
				cst.mu.Unlock()
				err := s.newRunner(cst).Run(ctx, "r1")
				cancel()
				if k < appends {
					require.ErrorIs(t, err, context.Canceled, "crash after append %d", k)
				}
				// A new runner on the same store finishes the job.
				runToEnd(t, s.newRunner(cst.Store))
				require.Empty(t, cmp.Diff(want, s.log("r1")), "crash after append %d of %d", k, appends)
				require.Empty(t, cmp.Diff(wantDeploys, s.dep.deploys()), "crash after append %d", k)
			}

			for j := 1; j <= len(wantDeploys); j++ {
				s := cs.setup(t, rollout.NewMemStore())
				ctx, cancel := context.WithCancel(context.Background())
				n := 0
				wave1 := s.dep.after
				s.dep.after = func(c context.Context, req rollout.DeployRequest) {
					wave1(c, req)
					if n++; n == j {
						cancel() // dies after the deploy, before recording it
					}
				}
				err := s.newRunner(s.store).Run(ctx, "r1")
				cancel()
				require.ErrorIs(t, err, context.Canceled)
				s.dep.after = wave1
				runToEnd(t, s.newRunner(s.store))
				require.Empty(t, cmp.Diff(want, s.log("r1")), "crash inside deploy %d", j)
				require.Empty(t, cmp.Diff(wantDeploys, s.dep.deploys()), "crash inside deploy %d", j)
				require.Greater(t, s.dep.calls, len(wantDeploys), "the in-flight deploy was asked again")
			}
		})
	}
}

// A store that fails an append stops the run with the error; a new run
// continues.
func TestRunnerStoreFailure(t *testing.T) {
	fs := &failingStore{Store: rollout.NewMemStore()}
	s := newSim(t, simOpts{size: 60, store: fs})
	s.create("r1", "component: cdn-app\nversion: 3.3.0\nselect: role=edge\ngrowth: {steps: [5, 10]}\n")
	fs.failAt = 3
	err := s.newRunner(fs).Run(context.Background(), "r1")
	require.ErrorContains(t, err, "disk on fire")
	runToEnd(t, s.newRunner(fs))
	st := s.state("r1")
	require.Equal(t, rollout.StatusCompleted, st.Status)
	checkHistory(t, st, s.dep.deploys())
}

type failingStore struct {
	rollout.Store
	n, failAt int
}

func (f *failingStore) Append(ctx context.Context, id string, seq uint64, events ...rollout.Event) error {
	f.n++
	if f.n == f.failAt {
		return errors.New("disk on fire")
	}
	return f.Store.Append(ctx, id, seq, events...)
}
