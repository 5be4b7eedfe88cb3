package rollout_test

import (
	"context"
	"errors"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/rollout"
	"github.com/fleetkit/fleetkit/testkit/fleet"
)

// simStart is a Monday noon, UTC.
var simStart = time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC)

// fakeDeployer is a Deployer with the idempotency a real one must have: a
// repeated key returns the first call's results. It records every deploy
// it carried out, fails the servers in fail, fails whole calls while errs
// is positive, and writes each deployed version into the index, as a
// grains source would.
type fakeDeployer struct {
	mu        sync.Mutex
	ix        *disposition.Index
	fail      map[string]string
	breaks    map[string]bool // deployed fine, then down
	errs      int
	done      map[string][]rollout.ServerResult
	effective []rollout.DeployRequest
	calls     int
	// after, if set, runs after a deploy was carried out and before
	// Deploy returns, outside the deployer's lock.
	after func(ctx context.Context, req rollout.DeployRequest)
}

func newFakeDeployer(ix *disposition.Index) *fakeDeployer {
	return &fakeDeployer{ix: ix, fail: map[string]string{}, breaks: map[string]bool{}, done: map[string][]rollout.ServerResult{}}
}

func (d *fakeDeployer) Deploy(ctx context.Context, req rollout.DeployRequest) ([]rollout.ServerResult, error) {
	d.mu.Lock()
	d.calls++
	if res, ok := d.done[req.IdempotencyKey]; ok {
		d.mu.Unlock()
		return slices.Clone(res), nil
	}
	if err := ctx.Err(); err != nil {
		d.mu.Unlock()
		return nil, err
	}
	if d.errs > 0 {
		d.errs--
		d.mu.Unlock()
		return nil, errors.New("deployer unavailable")
	}
	res := make([]rollout.ServerResult, len(req.Servers))
	var ups []*disposition.Node
	snap := d.ix.Snapshot()
	for i, s := range req.Servers {
		res[i] = rollout.ServerResult{Server: s, OK: true}
		if msg, ok := d.fail[s]; ok && !req.Rollback {
			res[i] = rollout.ServerResult{Server: s, Error: msg}
			continue
		}
		if n, ok := snap.Get(s); ok && req.Component != "" {
			c := n.Clone()
			c.Versions = map[string]string{}
			for k, v := range n.Versions {
				c.Versions[k] = v
			}
			c.Versions[req.Component] = req.Version
			if d.breaks[s] && !req.Rollback {
				c.Health = disposition.HealthDown
			}
			ups = append(ups, c)
		}
	}
	if len(ups) > 0 {
		if _, err := d.ix.Apply(context.Background(), disposition.Batch{Upserts: ups}); err != nil {
			d.mu.Unlock()
			return nil, err
		}
	}
	d.done[req.IdempotencyKey] = res
	d.effective = append(d.effective, req)
	after := d.after
	d.mu.Unlock()
	if after != nil {
		after(ctx, req)
	}
	return slices.Clone(res), nil
}

func (d *fakeDeployer) deploys() []rollout.DeployRequest {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.effective)
}

// healthChange sets a server's health at a time.
type healthChange struct {
	at     time.Time
	id     string
	health disposition.Health
}

// scriptedFleet is a Fleet whose health changes follow a script in clock
// time: each Snapshot first applies the changes that are due.
type scriptedFleet struct {
	ix    *disposition.Index
	clock rollout.Clock

	mu     sync.Mutex
	script []healthChange
}

func (f *scriptedFleet) add(cs ...healthChange) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.script = append(f.script, cs...)
	sort.SliceStable(f.script, func(i, j int) bool { return f.script[i].at.Before(f.script[j].at) })
}

func (f *scriptedFleet) Snapshot() *disposition.Snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.clock.Now()
	for len(f.script) > 0 && !f.script[0].at.After(now) {
		c := f.script[0]
		f.script = f.script[1:]
		if n, ok := f.ix.Snapshot().Get(c.id); ok && n.Health != c.health {
			m := n.Clone()
			m.Health = c.health
			if _, err := f.ix.Apply(context.Background(), disposition.Batch{Upserts: []*disposition.Node{m}}); err != nil {
				panic(err) // a test bug: the script names a valid node
			}
		}
	}
	return f.ix.Snapshot()
}

// declared is a blackout a calendar announces from a time on.
type declared struct {
	from time.Time
	b    rollout.Blackout
}

type fakeCalendar struct {
	clock rollout.Clock
	mu    sync.Mutex
	list  []declared
	fail  int // the next fail calls fail
}

func (c *fakeCalendar) Blackouts(ctx context.Context) ([]rollout.Blackout, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail > 0 {
		c.fail--
		return nil, errors.New("calendar unavailable")
	}
	var out []rollout.Blackout
	for _, d := range c.list {
		if !c.clock.Now().Before(d.from) {
			out = append(out, d.b)
		}
	}
	return out, nil
}

// sim is a simulated fleet with a runner over it.
type sim struct {
	t      testing.TB
	fleet  *fleet.Fleet
	ix     *disposition.Index
	nodes  map[string]*disposition.Node // as generated
	clock  *rollout.FakeClock
	store  rollout.Store
	fl     *scriptedFleet
	cal    *fakeCalendar
	dep    *fakeDeployer
	runner *rollout.Runner
	events chan rollout.Event
}

type simOpts struct {
	size  int
	seed  int64
	store rollout.Store
}

func newSim(t testing.TB, o simOpts) *sim {
	t.Helper()
	if o.size == 0 {
		o.size = 200
	}
	if o.seed == 0 {
		o.seed = 1
	}
	f, err := fleet.Generate(fleet.Config{Size: o.size, Seed: o.seed, Start: simStart})
	require.NoError(t, err)
	ix := disposition.NewIndex()
	_, err = ix.Apply(context.Background(), disposition.Batch{Upserts: f.Nodes})
	require.NoError(t, err)
	s := &sim{t: t, fleet: f, ix: ix, nodes: map[string]*disposition.Node{}, store: o.store}
	for _, n := range f.Nodes {
		s.nodes[n.ID] = n
	}
	if s.store == nil {
		s.store = rollout.NewMemStore()
	}
	s.clock = rollout.NewFakeClock(simStart)
	s.clock.SetAuto(true)
	s.fl = &scriptedFleet{ix: ix, clock: s.clock}
	s.cal = &fakeCalendar{clock: s.clock}
	s.dep = newFakeDeployer(ix)
	s.events = make(chan rollout.Event, 1<<16)
	s.runner = s.newRunner(s.store)
	return s
}

func (s *sim) newRunner(store rollout.Store) *rollout.Runner {
	r, err := rollout.NewRunner(rollout.RunnerConfig{
		Store: store, Fleet: s.fl, Deployer: s.dep, Clock: s.clock, Calendar: s.cal,
		OnEvent: func(_ string, e rollout.Event) {
			select {
			case s.events <- e:
			default:
			}
		},
	})
	require.NoError(s.t, err)
	return r
}

func (s *sim) create(id, yaml string) *rollout.State {
	s.t.Helper()
	spec, err := rollout.ParseSpec("spec.yaml", []byte(yaml))
	require.NoError(s.t, err)
	st, err := s.runner.Create(context.Background(), id, spec)
	require.NoError(s.t, err)
	return st
}

// run drives id to its end in the background, calling on for every event
// from the test's goroutine (where it may call the runner), and returns
// Run's error.
func (s *sim) run(id string, on func(e rollout.Event)) error {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.runner.Run(ctx, id) }()
	for {
		select {
		case e := <-s.events:
			if on != nil {
				on(e)
			}
		case err := <-done:
			for {
				select {
				case e := <-s.events:
					if on != nil {
						on(e)
					}
				default:
					return err
				}
			}
		}
	}
}

func (s *sim) log(id string) []rollout.Event {
	s.t.Helper()
	evs, err := s.store.Load(context.Background(), id)
	require.NoError(s.t, err)
	return evs
}

func (s *sim) state(id string) *rollout.State {
	s.t.Helper()
	st, err := s.runner.State(context.Background(), id)
	require.NoError(s.t, err)
	return st
}

func ofType(evs []rollout.Event, t rollout.EventType) []rollout.Event {
	var out []rollout.Event
	for _, e := range evs {
		if e.Type == t {
			out = append(out, e)
		}
	}
	return out
}

// plannedServers returns the servers of the planned waves, by wave.
func plannedServers(st *rollout.State) [][]string {
	out := make([][]string, len(st.Remaining))
	for i, w := range st.Remaining {
		out[i] = w.Servers
	}
	return out
}

// checkHistory checks invariants of any rollout history: waves numbered
// in order, each started after the previous one completed, each server in
// at most one wave and deployed by at most one effective Deployer call of
// the rollout's waves.
func checkHistory(t testing.TB, st *rollout.State, deploys []rollout.DeployRequest) {
	t.Helper()
	seen := map[string]int{}
	var prevEnd time.Time
	for i, w := range st.Waves {
		require.Equal(t, i+1, w.Number)
		require.False(t, w.StartedAt.Before(prevEnd), "wave %d starts before wave %d completed", w.Number, i)
		if w.Phase == rollout.PhaseCompleted {
			prevEnd = w.CompletedAt
		}
		for _, s := range w.Servers {
			require.Zero(t, seen[s.ID], "server %s in waves %d and %d", s.ID, seen[s.ID], w.Number)
			seen[s.ID] = w.Number
		}
	}
	keys := map[string]bool{}
	byServer := map[string]int{}
	for _, d := range deploys {
		require.False(t, keys[d.IdempotencyKey], "key %s deployed twice", d.IdempotencyKey)
		keys[d.IdempotencyKey] = true
		if d.Rollback {
			continue
		}
		for _, s := range d.Servers {
			byServer[s]++
			require.Equal(t, 1, byServer[s], "server %s deployed twice", s)
			require.Equal(t, d.Wave, seen[s], "server %s deployed by wave %d's key but is in wave %d", s, d.Wave, seen[s])
		}
	}
}
