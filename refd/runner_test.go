package refd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/rollout"
	"github.com/fleetkit/fleetkit/rollout/boltstore"
	"github.com/fleetkit/fleetkit/sources"
	"github.com/fleetkit/fleetkit/testkit/fleet"
)

// recDeployer is a Deployer that records every call, is idempotent by
// key as the contract asks, fails the first failIn[w] servers of forward
// wave w, and holds forward waves listed in hold until the test releases
// them: the test then acts while the wave's deploy is in flight.
type recDeployer struct {
	mu      sync.Mutex
	calls   []rollout.DeployRequest
	done    map[string][]rollout.ServerResult
	effect  []rollout.DeployRequest // the calls that deployed (first of their key)
	failIn  map[int]int
	hold    map[int]bool
	held    chan rollout.DeployRequest
	release chan struct{}
}

func newRecDeployer() *recDeployer {
	return &recDeployer{
		done: map[string][]rollout.ServerResult{}, failIn: map[int]int{}, hold: map[int]bool{},
		held: make(chan rollout.DeployRequest), release: make(chan struct{}),
	}
}

func (d *recDeployer) Deploy(ctx context.Context, req rollout.DeployRequest) ([]rollout.ServerResult, error) {
	d.mu.Lock()
	d.calls = append(d.calls, req)
	if res, ok := d.done[req.IdempotencyKey]; ok {
		d.mu.Unlock()
		return slices.Clone(res), nil
	}
	res := make([]rollout.ServerResult, len(req.Servers))
	for i, s := range req.Servers {
		res[i] = rollout.ServerResult{Server: s, OK: true}
		if !req.Rollback && i < d.failIn[req.Wave] {
			res[i] = rollout.ServerResult{Server: s, Error: "disk full"}
		}
	}
	d.done[req.IdempotencyKey] = res
	d.effect = append(d.effect, req)
	hold := !req.Rollback && d.hold[req.Wave]
	d.mu.Unlock()
	if hold {
		select {
		case d.held <- req:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		select {
		case <-d.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return slices.Clone(res), nil
}

// effective returns the calls that deployed, forward or rollback.
func (d *recDeployer) effective(rollback bool) []rollout.DeployRequest {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []rollout.DeployRequest
	for _, r := range d.effect {
		if r.Rollback == rollback {
			out = append(out, r)
		}
	}
	return out
}

// waitHeld returns the wave the deployer holds, failing after 20 s.
func (d *recDeployer) waitHeld(t *testing.T) rollout.DeployRequest {
	t.Helper()
	select {
	case req := <-d.held:
		return req
	case <-time.After(20 * time.Second):
		t.Fatal("no wave reached the deployer within 20 s")
	}
	return rollout.DeployRequest{}
}

// runnerEnv is a served refd with a RolloutRunner over a rollout/boltstore
// in dir, a fake clock and a recording deployer.
type runnerEnv struct {
	*testEnv
	runner *RolloutRunner
	clock  *rollout.FakeClock
	dep    *recDeployer
	stop   func()
}

// testFleet is the fleet every runner test uses.
func testFleet(t *testing.T) []*disposition.Node {
	t.Helper()
	f, err := fleet.Generate(fleet.Config{Size: 300, Seed: 7})
	require.NoError(t, err)
	return f.Nodes
}

// startRunnerEnv serves refd on the data in dir, with the runner driving
// rollouts until stop (or the test's end).
func startRunnerEnv(t *testing.T, nodes []*disposition.Node, dir string, clock *rollout.FakeClock, dep *recDeployer, opts ...envOpt) *runnerEnv {
	t.Helper()
	ix := disposition.NewIndex()
	if len(nodes) > 0 {
		_, err := ix.Apply(context.Background(), disposition.Batch{Upserts: nodes})
		require.NoError(t, err)
	}
	store, err := OpenStore(filepath.Join(dir, "refd.db"))
	require.NoError(t, err)
	rstore, err := boltstore.Open(filepath.Join(dir, "rollouts.db"), &boltstore.Options{NoSync: true})
	require.NoError(t, err)
	runner, err := NewRolloutRunner(RolloutRunnerConfig{Store: rstore, Fleet: ix, Deployer: dep, Clock: clock})
	require.NoError(t, err)
	cfg := Config{Index: ix, Store: store, Tokens: testTokens(), Planner: RolloutPlanner(), Runner: runner}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := New(cfg)
	require.NoError(t, err)
	ts := httptest.NewServer(srv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background(), ln) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			ts.Close()
			require.NoError(t, srv.Close())
			require.NoError(t, <-done)
			require.NoError(t, rstore.Close())
			require.NoError(t, store.Close())
		})
	}
	t.Cleanup(stop)
	e := &testEnv{t: t, ix: ix, srv: srv, ts: ts, store: store, nodes: nodes}
	return &runnerEnv{testEnv: e, runner: runner, clock: clock, dep: dep, stop: stop}
}

func newRunnerEnv(t *testing.T) *runnerEnv {
	clock := rollout.NewFakeClock(time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC))
	clock.SetAuto(true)
	return startRunnerEnv(t, testFleet(t), t.TempDir(), clock, newRecDeployer())
}

// specFor is a rollout of n healthy in-service edge servers, in waves of
// 2, 3, 4, 4, ... with a 30 min bake; extra lines are added.
func specFor(t *testing.T, nodes []*disposition.Node, n int, extra string) (string, []string) {
	t.Helper()
	var ids []string
	for _, nd := range nodes {
		if nd.Role == "edge" && nd.State == disposition.StateInService && nd.Health == disposition.HealthHealthy && len(ids) < n {
			ids = append(ids, nd.ID)
		}
	}
	require.Len(t, ids, n)
	slices.Sort(ids)
	return fmt.Sprintf("name: t\ncomponent: cdn-app\nversion: 9.9.9\nselect: id=%s\ndeploy: 10m\ngrowth: {steps: [2, 3, 4], bake: 30m}\n%s",
		strings.Join(ids, ","), extra), ids
}

func (e *runnerEnv) create(spec string) *Rollout {
	e.t.Helper()
	r := e.do("POST", "/v1/rollouts", ScopeRollout, spec)
	require.Equal(e.t, http.StatusCreated, r.status, "%s", r.body)
	var ro Rollout
	require.NoError(e.t, json.Unmarshal(r.body, &ro))
	return &ro
}

func (e *runnerEnv) get(id string) *Rollout {
	e.t.Helper()
	r := e.do("GET", "/v1/rollouts/"+id, ScopeRead, "")
	require.Equal(e.t, http.StatusOK, r.status, "%s", r.body)
	var ro Rollout
	require.NoError(e.t, json.Unmarshal(r.body, &ro))
	return &ro
}

// act posts an action and returns the rollout after it.
func (e *runnerEnv) act(id, action, body string) *Rollout {
	e.t.Helper()
	r := e.do("POST", "/v1/rollouts/"+id+"/"+action, ScopeRollout, body, "Content-Type", "application/json")
	require.Equal(e.t, http.StatusOK, r.status, "%s: %s", action, r.body)
	var ro Rollout
	require.NoError(e.t, json.Unmarshal(r.body, &ro))
	return &ro
}

// waitFor polls the rollout's view until cond holds, failing after 20 s
// with what it last saw.
func (e *runnerEnv) waitFor(id, what string, cond func(*Rollout) bool) *Rollout {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ro := e.get(id)
		if cond(ro) {
			return ro
		}
		if time.Now().After(deadline) {
			var evs []string
			for _, ev := range ro.Events {
				evs = append(evs, fmt.Sprintf("%s(w%d)", ev.Action, ev.Wave))
			}
			e.t.Fatalf("rollout %s: not %s within 20 s: state %s, waves %d/%d, events %v", id, what, ro.State, ro.WavesDone, ro.Waves, evs)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func isState(s RolloutState) func(*Rollout) bool {
	return func(ro *Rollout) bool { return ro.State == s }
}

// runnerEvents returns the runner's events of a view, by action.
func runnerEvents(ro *Rollout, action string) []RolloutEvent {
	var out []RolloutEvent
	for _, ev := range ro.Events {
		if ev.Who == RunnerPrincipal && string(ev.Action) == action {
			out = append(out, ev)
		}
	}
	return out
}

// deployedOnce checks that the forward deploys covered want, each server
// once.
func deployedOnce(t *testing.T, dep *recDeployer, want []string) {
	t.Helper()
	var got []string
	for _, r := range dep.effective(false) {
		got = append(got, r.Servers...)
	}
	slices.Sort(got)
	require.Equal(t, want, got, "every server deployed, once")
}

func TestRunnerDrivesARolloutToCompletion(t *testing.T) {
	e := newRunnerEnv(t)
	e.dep.hold[1] = true
	spec, ids := specFor(t, e.nodes, 12, "")
	ro := e.create(spec)
	require.Equal(t, 4, ro.Waves)
	require.Equal(t, 12, ro.Targets)
	e.dep.waitHeld(t)
	ro = e.get(ro.ID)
	require.Equal(t, RolloutRunning, ro.State, "the runner drives it from its creation")
	require.Equal(t, 10, ro.Planned)
	e.dep.release <- struct{}{}

	ro = e.waitFor(ro.ID, "completed", isState(RolloutCompleted))
	require.Equal(t, ro.Waves, ro.WavesDone)
	require.Equal(t, 4, ro.WavesDone)
	require.Equal(t, 12, ro.Deployed)
	require.Zero(t, ro.Failed)
	require.Zero(t, ro.Planned)
	deployedOnce(t, e.dep, ids)

	// The events are the runner's log, in order, each once.
	var seqs []uint64
	for _, ev := range ro.Events {
		if ev.Who == RunnerPrincipal {
			seqs = append(seqs, ev.Seq)
		}
	}
	require.NotEmpty(t, seqs)
	for i, s := range seqs {
		require.Equal(t, uint64(i+1), s, "runner events numbered without gaps")
	}
	require.Equal(t, ro.RunnerSeq, seqs[len(seqs)-1])
	require.Len(t, runnerEvents(ro, "wave-started"), 4)
	require.Len(t, runnerEvents(ro, "wave-completed"), 4)
	last := ro.Events[len(ro.Events)-1]
	require.Equal(t, RolloutAction("completed"), last.Action)
	require.Equal(t, RolloutRunning, last.From)
	require.Equal(t, RolloutCompleted, last.To)
	require.Equal(t, "create", string(ro.Events[0].Action))
	require.Equal(t, "rollout-token", ro.Events[0].Who)

	list := e.do("GET", "/v1/rollouts", ScopeRead, "")
	require.Contains(t, string(list.body), `"state":"completed"`)

	// Progress and deploys on /metrics.
	m := string(e.do("GET", "/metrics", "", "").body)
	require.Contains(t, m, fmt.Sprintf(`refd_rollout_waves_done{rollout="%s"} 4`, ro.ID))
	require.Contains(t, m, fmt.Sprintf(`refd_rollout_state{rollout="%s",state="completed"} 1`, ro.ID))
	require.Contains(t, m, fmt.Sprintf(`refd_rollout_servers{outcome="deployed",rollout="%s"} 12`, ro.ID))
	require.Contains(t, m, `refd_rollout_deploys_total{kind="wave",result="ok"} 4`)
	require.Contains(t, m, `refd_rollout_deployed_servers_total{kind="wave",result="ok"} 12`)
}

func TestRunnerPauseResumeThroughTheAPI(t *testing.T) {
	e := newRunnerEnv(t)
	e.dep.hold[2] = true
	spec, ids := specFor(t, e.nodes, 12, "")
	ro := e.create(spec)

	req := e.dep.waitHeld(t)
	require.Equal(t, 2, req.Wave)
	paused := e.act(ro.ID, "pause", `{"reason": "lunch"}`)
	require.Equal(t, RolloutPaused, paused.State)
	require.Equal(t, "lunch", paused.Reason)
	require.Equal(t, "operator", paused.PauseCause)
	require.Equal(t, RolloutRunning, paused.Resume)
	r := e.do("POST", "/v1/rollouts/"+ro.ID+"/pause", ScopeRollout, "")
	require.Equal(t, http.StatusConflict, r.status, "a paused rollout cannot pause: %s", r.body)
	e.dep.release <- struct{}{}

	// The wave in flight finishes; the next does not start.
	ro = e.waitFor(ro.ID, "done with wave 2", func(ro *Rollout) bool { return ro.WavesDone == 2 })
	require.Equal(t, RolloutPaused, ro.State)
	require.Len(t, e.dep.effective(false), 2)

	resumed := e.act(ro.ID, "resume", "")
	require.Contains(t, []RolloutState{RolloutRunning, RolloutCompleted}, resumed.State)
	ro = e.waitFor(ro.ID, "completed", isState(RolloutCompleted))
	deployedOnce(t, e.dep, ids)
	p := runnerEvents(ro, "paused")
	require.Len(t, p, 1)
	require.Equal(t, "operator", p[0].Cause)
	require.Len(t, runnerEvents(ro, "resumed"), 1)
	require.Equal(t, "resume by rollout-token", runnerEvents(ro, "resumed")[0].Reason, "the default reason names who")
	var ops []string
	for _, ev := range ro.Events {
		if ev.Who == "rollout-token" {
			ops = append(ops, string(ev.Action)+":"+string(ev.From)+">"+string(ev.To))
		}
	}
	require.Equal(t, []string{"create:>pending", "pause:running>paused", "resume:paused>running"}, ops)
}

func TestRunnerAbortThenRollback(t *testing.T) {
	e := newRunnerEnv(t)
	e.dep.hold[2] = true
	spec, _ := specFor(t, e.nodes, 12, "")
	ro := e.create(spec)
	e.dep.waitHeld(t)
	aborted := e.act(ro.ID, "abort", "")
	require.Equal(t, RolloutAborted, aborted.State)
	require.Equal(t, "abort by rollout-token", aborted.Reason)
	e.dep.release <- struct{}{}
	// The deploy in flight is recorded; nothing follows it.
	ro = e.waitFor(ro.ID, "wave 2 deployed", func(ro *Rollout) bool {
		return slices.ContainsFunc(runnerEvents(ro, "wave-deployed"), func(ev RolloutEvent) bool { return ev.Wave == 2 })
	})
	require.Equal(t, RolloutAborted, ro.State)

	rb := e.act(ro.ID, "rollback", `{"reason": "bad build"}`)
	require.Contains(t, []RolloutState{RolloutRollingBack, RolloutRolledBack}, rb.State)
	ro = e.waitFor(ro.ID, "rolled back", isState(RolloutRolledBack))
	require.Equal(t, "bad build", ro.Reason)
	e.stop() // waits for the runner: no deploy can come after this

	fwd := e.dep.effective(false)
	require.Len(t, fwd, 2, "no wave after the abort")
	var sent, back []string
	for _, r := range fwd {
		sent = append(sent, r.Servers...)
	}
	for _, r := range e.dep.effective(true) {
		back = append(back, r.Servers...)
	}
	slices.Sort(sent)
	slices.Sort(back)
	require.Equal(t, sent, back, "the rollback covers every server a wave was sent to")
	require.Equal(t, len(sent), ro.RolledBack)
}

func TestRunnerSkipPinPromote(t *testing.T) {
	e := newRunnerEnv(t)
	e.dep.hold[1] = true
	spec, ids := specFor(t, e.nodes, 12, "")
	ro := e.create(spec)
	req := e.dep.waitHeld(t)
	st, err := e.runner.Runner().State(t.Context(), ro.ID)
	require.NoError(t, err)
	later := st.Remaining[len(st.Remaining)-1].Servers[0]
	pinned := req.Servers[0]

	// Bad requests name the field.
	r := e.do("POST", "/v1/rollouts/"+ro.ID+"/skip", ScopeRollout, "")
	require.Equal(t, http.StatusBadRequest, r.status)
	require.Equal(t, "server", r.apiError(t).Field)
	r = e.do("POST", "/v1/rollouts/"+ro.ID+"/skip", ScopeRollout, `{"server": "no-such-host"}`)
	require.Equal(t, http.StatusUnprocessableEntity, r.status)
	require.Equal(t, "server", r.apiError(t).Field)
	r = e.do("POST", "/v1/rollouts/"+ro.ID+"/pause", ScopeRollout, `{"server": "`+later+`"}`)
	require.Equal(t, http.StatusBadRequest, r.status)
	r = e.do("POST", "/v1/rollouts/"+ro.ID+"/skip", ScopeRollout, `{"server": "`+later+`", "colour": "red"}`)
	require.Equal(t, http.StatusBadRequest, r.status)
	require.Equal(t, "colour", r.apiError(t).Field)
	require.Equal(t, http.StatusForbidden, e.do("POST", "/v1/rollouts/"+ro.ID+"/skip", ScopeRead, `{"server": "`+later+`"}`).status)
	require.Equal(t, http.StatusNotFound, e.do("POST", "/v1/rollouts/r999/skip", ScopeRollout, `{"server": "`+later+`"}`).status)

	e.act(ro.ID, "skip", `{"server": "`+later+`", "reason": "hardware ticket"}`)
	e.act(ro.ID, "pin", `{"server": "`+pinned+`", "reason": "customer test box"}`)
	e.act(ro.ID, "promote", "")
	e.dep.release <- struct{}{}

	ro = e.waitFor(ro.ID, "completed", isState(RolloutCompleted))
	want := slices.DeleteFunc(slices.Clone(ids), func(s string) bool { return s == later })
	deployedOnce(t, e.dep, want)
	sk := runnerEvents(ro, "server-skipped")
	require.Len(t, sk, 1)
	require.Equal(t, later, sk[0].Server)
	require.Equal(t, "hardware ticket", sk[0].Reason)
	require.Len(t, runnerEvents(ro, "server-pinned"), 1)

	// Wave 1 was promoted: it completed when its gate passed, without its
	// bake; wave 2 baked its 30 minutes.
	gated, completed := runnerEvents(ro, "wave-gated"), runnerEvents(ro, "wave-completed")
	require.Equal(t, gated[0].At, completed[0].At)
	require.GreaterOrEqual(t, completed[1].At.Sub(gated[1].At), 30*time.Minute)

	// A rollback leaves the pinned server as it is.
	e.act(ro.ID, "rollback", "")
	e.waitFor(ro.ID, "rolled back", isState(RolloutRolledBack))
	var back []string
	for _, r := range e.dep.effective(true) {
		back = append(back, r.Servers...)
	}
	slices.Sort(back)
	require.Equal(t, slices.DeleteFunc(want, func(s string) bool { return s == pinned }), back)
}

func TestRunnerBudgetBreachPausesWithItsReason(t *testing.T) {
	e := newRunnerEnv(t)
	e.dep.failIn[2] = 1
	spec, _ := specFor(t, e.nodes, 12, "failure: {wave: 0}\n")
	ro := e.create(spec)
	ro = e.waitFor(ro.ID, "paused", isState(RolloutPaused))
	require.Equal(t, "budget", ro.PauseCause)
	require.Contains(t, ro.Reason, "wave 2 exceeded the failure budget: wave 2 budget: 1 failures, 0 allowed")
	require.Equal(t, 1, ro.Failed)
	require.Len(t, runnerEvents(ro, "budget-exceeded"), 1)
	require.Len(t, e.dep.effective(false), 2, "no wave after the breach")
	m := string(e.do("GET", "/metrics", "", "").body)
	require.Contains(t, m, `refd_rollout_deployed_servers_total{kind="wave",result="failed"} 1`)

	// Resuming acknowledges the failure; the rollout goes on.
	e.act(ro.ID, "resume", "")
	ro = e.waitFor(ro.ID, "completed", isState(RolloutCompleted))
	require.Zero(t, ro.Failed)
	require.Equal(t, 11, ro.Deployed)
}

// TestRunnerResumesAfterARestart stops refd while a wave's deploy is in
// flight and starts a new one on the same data directory: the rollout
// goes on from where it was, the deploy in flight is asked again with the
// same key, and no wave is repeated.
func TestRunnerResumesAfterARestart(t *testing.T) {
	nodes := testFleet(t)
	dir := t.TempDir()
	clock := rollout.NewFakeClock(time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC))
	clock.SetAuto(true)
	dep := newRecDeployer()
	dep.hold[2] = true
	e := startRunnerEnv(t, nodes, dir, clock, dep)
	spec, ids := specFor(t, nodes, 12, "")
	ro := e.create(spec)
	held := dep.waitHeld(t)
	e.stop()

	e2 := startRunnerEnv(t, nodes, dir, clock, dep)
	ro = e2.waitFor(ro.ID, "completed", isState(RolloutCompleted))
	require.Equal(t, 4, ro.WavesDone)
	deployedOnce(t, dep, ids)
	var again int
	dep.mu.Lock()
	for _, c := range dep.calls {
		if c.IdempotencyKey == held.IdempotencyKey {
			again++
		}
	}
	dep.mu.Unlock()
	require.Equal(t, 2, again, "the deploy in flight is asked again, with its key")
	for w := 1; w <= 4; w++ {
		n := 0
		for _, ev := range runnerEvents(ro, "wave-started") {
			if ev.Wave == w {
				n++
			}
		}
		require.Equal(t, 1, n, "wave %d started once", w)
	}
}

func TestSkipAndPinNeedARunner(t *testing.T) {
	e := newTestEnv(t, 20, func(c *Config) { c.Planner = fakePlanner{} })
	r := e.do("POST", "/v1/rollouts", ScopeRollout, "wave")
	require.Equal(t, http.StatusCreated, r.status)
	var ro Rollout
	require.NoError(t, json.Unmarshal(r.body, &ro))
	r = e.do("POST", "/v1/rollouts/"+ro.ID+"/skip", ScopeRollout, `{"server": "x"}`)
	require.Equal(t, http.StatusNotImplemented, r.status)
	require.Equal(t, CodeNotConfigured, r.apiError(t).Code)
}

func TestNewRolloutRunnerNamesTheMissingField(t *testing.T) {
	_, err := NewRolloutRunner(RolloutRunnerConfig{Store: rollout.NewMemStore(), Deployer: LogDeployer(nil)})
	require.ErrorContains(t, err, "RolloutRunnerConfig.Fleet is required")
}

func TestLogDeployerAcknowledgesEveryServer(t *testing.T) {
	var buf strings.Builder
	d := LogDeployer(slogTo(&buf))
	res, err := d.Deploy(t.Context(), rollout.DeployRequest{Rollout: "r1", Wave: 1, IdempotencyKey: "r1/wave/1/1", Version: "1.2", Servers: []string{"a", "b"}})
	require.NoError(t, err)
	require.Equal(t, []rollout.ServerResult{{Server: "a", OK: true}, {Server: "b", OK: true}}, res)
	require.Contains(t, buf.String(), "r1/wave/1/1")
}

// TestRunnerViewsUseMemoryAfterTheFirst checks that views after the
// first come from the events the adapter kept, not from the store: the
// store is loaded only for the first view.
func TestRunnerViewsUseMemoryAfterTheFirst(t *testing.T) {
	nodes := testFleet(t)
	ix := disposition.NewIndex()
	_, err := ix.Apply(t.Context(), disposition.Batch{Upserts: nodes})
	require.NoError(t, err)
	cs := &countingStore{Store: rollout.NewMemStore()}
	clock := rollout.NewFakeClock(time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC))
	a, err := NewRolloutRunner(RolloutRunnerConfig{Store: cs, Fleet: ix, Deployer: LogDeployer(nil), Clock: clock})
	require.NoError(t, err)
	spec, _ := specFor(t, nodes, 4, "")
	require.NoError(t, a.Start(t.Context(), &Rollout{ID: "r1", Spec: spec}, time.Time{}))
	v, err := a.View(t.Context(), "r1", 0)
	require.NoError(t, err)
	require.Len(t, v.Events, 1)
	require.NotEmpty(t, v.Spec)
	loads := cs.loads
	require.NoError(t, a.Control(t.Context(), "r1", RolloutCommand{Action: ActionPause, Reason: "x"}))
	v, err = a.View(t.Context(), "r1", 1)
	require.NoError(t, err)
	require.Len(t, v.Events, 1)
	require.Equal(t, RolloutAction("paused"), v.Events[0].Action)
	require.Equal(t, RolloutPaused, v.Status.State)
	// Control and Summary read the log (the rollout is not driven); the
	// view itself did not.
	require.Equal(t, loads+2, cs.loads)
	err = a.Control(t.Context(), "r1", RolloutCommand{Action: ActionPause})
	require.ErrorIs(t, err, ErrRefused)
	err = a.Control(t.Context(), "r2", RolloutCommand{Action: ActionPause})
	require.ErrorIs(t, err, ErrNotFound)
}

type countingStore struct {
	rollout.Store
	mu    sync.Mutex
	loads int
}

func (s *countingStore) Load(ctx context.Context, id string) ([]rollout.Event, error) {
	s.mu.Lock()
	s.loads++
	s.mu.Unlock()
	return s.Store.Load(ctx, id)
}

func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

// readyGate is an Updater that is not ready until told, and reports each
// readiness check.
type readyGate struct {
	fakeUpdater
	checked chan struct{}
}

func (u *readyGate) Status() []sources.SourceStatus {
	select {
	case u.checked <- struct{}{}:
	default:
	}
	return u.fakeUpdater.Status()
}

// TestRunnerWaitsForTheIndex restarts refd on an index its sources have
// not filled yet: the runner resumes the rollout only once the server is
// ready, rather than re-planning it over no servers (which completed it
// with nothing deployed).
func TestRunnerWaitsForTheIndex(t *testing.T) {
	nodes := testFleet(t)
	dir := t.TempDir()
	clock := rollout.NewFakeClock(time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC))
	clock.SetAuto(true)
	dep := newRecDeployer()
	dep.hold[1] = true
	e := startRunnerEnv(t, nodes, dir, clock, dep)
	spec, ids := specFor(t, nodes, 12, "")
	ro := e.create(spec)
	dep.waitHeld(t)
	e.stop()

	up := &readyGate{checked: make(chan struct{}, 1)}
	e2 := startRunnerEnv(t, nil, dir, clock, dep, func(c *Config) { c.Updater = up })
	select {
	case <-up.checked:
	case <-time.After(20 * time.Second):
		t.Fatal("the runner did not wait for the server to be ready")
	}
	sum, err := e2.runner.Runner().Summary(t.Context(), ro.ID)
	require.NoError(t, err)
	require.Equal(t, rollout.StatusRunning, sum.Status)
	require.Equal(t, 4, sum.Waves, "not re-planned over the empty index")

	_, err = e2.ix.Apply(t.Context(), disposition.Batch{Upserts: nodes})
	require.NoError(t, err)
	up.mu.Lock()
	up.ready = true
	up.mu.Unlock()
	ro = e2.waitFor(ro.ID, "completed", isState(RolloutCompleted))
	require.Equal(t, 12, ro.Deployed)
	deployedOnce(t, dep, ids)
}
