package sources_test

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/clock"
	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/sources"
)

// t0 is the fake clock's start.
var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// testClock is a clock.Fake with a test helper.
type testClock struct{ *clock.Fake }

func newClock() testClock { return testClock{clock.NewFake(t0)} }

// waitTimers blocks until n timers are pending and returns how long each
// has left, failing the test if that takes more than 10 s of real time.
func (c testClock) waitTimers(t *testing.T, n int) []time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.BlockUntilWaiters(ctx, n); err != nil {
		t.Fatalf("timed out waiting for %d timers", n)
	}
	return c.Pending()
}

// memSource is an in-memory Source whose answer the test sets.
type memSource struct {
	name  string
	calls atomic.Int32

	mu        sync.Mutex
	obs       []sources.Observation
	err       error
	failTimes int // fail this many more calls with failErr
	failErr   error
	block     chan struct{} // if set, Fetch waits for it (or ctx)
	ignoreCtx bool          // with block: wait for it even past ctx
}

func newMem(name string, obs ...*sources.Observation) *memSource {
	m := &memSource{name: name}
	m.set(obs...)
	return m
}

func (m *memSource) Name() string { return m.name }

func (m *memSource) Fetch(ctx context.Context) ([]sources.Observation, error) {
	m.calls.Add(1)
	m.mu.Lock()
	obs, err, block, ignore := m.obs, m.err, m.block, m.ignoreCtx
	if m.failTimes > 0 {
		m.failTimes--
		err = m.failErr
	}
	m.mu.Unlock()
	if block != nil {
		if ignore {
			<-block
		} else {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-block:
			}
		}
	}
	if err != nil {
		return nil, err
	}
	return obs, nil
}

// set makes the source answer with obs from now on (a new slice).
func (m *memSource) set(obs ...*sources.Observation) {
	out := make([]sources.Observation, len(obs))
	for i, o := range obs {
		out[i] = *o
	}
	m.mu.Lock()
	m.obs, m.err, m.failTimes = out, nil, 0
	m.mu.Unlock()
}

// failNext makes the next n calls fail with err.
func (m *memSource) failNext(n int, err error) {
	m.mu.Lock()
	m.failTimes, m.failErr = n, err
	m.mu.Unlock()
}

// fail makes the source fail with err from now on.
func (m *memSource) fail(err error) {
	m.mu.Lock()
	m.obs, m.err = nil, err
	m.mu.Unlock()
}

// newAgg makes an aggregator on a fresh index and the fake clock.
func newAgg(t *testing.T, clk testClock, cfg sources.AggregatorConfig, regs ...sources.Registered) (*sources.Aggregator, *disposition.Index) {
	t.Helper()
	ix := disposition.NewIndex()
	cfg.Clock = clk
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	agg, err := sources.NewAggregator(ix, cfg, regs...)
	require.NoError(t, err)
	return agg, ix
}

func auth(s sources.Source) sources.Registered {
	return sources.Registered{Source: s, Authoritative: true, Retries: -1}
}

func enrich(s sources.Source) sources.Registered {
	return sources.Registered{Source: s, Retries: -1}
}

func get(t *testing.T, ix *disposition.Index, id string) *disposition.Node {
	t.Helper()
	n, ok := ix.Snapshot().Get(id)
	require.True(t, ok, "node %q not in the index", id)
	return n
}

func ids(ix *disposition.Index) []string {
	var out []string
	_ = ix.Snapshot().Scan(disposition.Query{}, func(n *disposition.Node) bool {
		out = append(out, n.ID)
		return true
	})
	return out
}

func statusOf(t *testing.T, agg *sources.Aggregator, name string) sources.SourceStatus {
	t.Helper()
	st := agg.Status()
	i := slices.IndexFunc(st, func(s sources.SourceStatus) bool { return s.Name == name })
	require.GreaterOrEqual(t, i, 0, "no status for %q", name)
	return st[i]
}

// inventory returns n observations edge-000 ... with metro and state.
func inventory(n int) []*sources.Observation {
	out := make([]*sources.Observation, n)
	for i := range out {
		out[i] = sources.Observe(nodeID(i)).Metro("DEN").State(disposition.StateInService)
	}
	return out
}

func nodeID(i int) string {
	return "edge-" + string(rune('0'+i/100%10)) + string(rune('0'+i/10%10)) + string(rune('0'+i%10))
}
