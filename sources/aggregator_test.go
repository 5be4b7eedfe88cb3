package sources_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/sources"
)

var errDown = errors.New("connection refused")

func TestPrecedence(t *testing.T) {
	// inv knows every field; maas and alerts know some. The winner of each
	// field is the first source in its precedence that knows it.
	inv := newMem("inv", sources.Observe("a").Metro("DEN").State(disposition.StateDrained).
		Health(disposition.HealthHealthy).Role("edge").Label("tier", "1").Label("rack", "r1"))
	maas := newMem("maas", sources.Observe("a").State(disposition.StateInService).Role("mid").Label("tier", "2"))
	alerts := newMem("alerts", sources.Observe("a").Health(disposition.HealthDown).Label("pager", "yes"))
	cfg := sources.AggregatorConfig{Precedence: map[disposition.Field][]string{
		disposition.FieldState:  {"maas"},           // maas, then inv, alerts (unlisted, in order)
		disposition.FieldHealth: {"alerts", "inv"},  //
		disposition.FieldLabels: {"maas", "alerts"}, // per key
	}}
	agg, ix := newAgg(t, newClock(), cfg, auth(inv), enrich(maas), enrich(alerts))
	require.NoError(t, agg.Refresh(t.Context()))

	n := get(t, ix, "a")
	want := map[disposition.Field]string{
		disposition.FieldMetro:  "inv",    // only inv knows it
		disposition.FieldState:  "maas",   // listed first
		disposition.FieldHealth: "alerts", // listed first
		disposition.FieldRole:   "inv",    // no precedence: registration order
		disposition.FieldLabels: "maas",   // highest-precedence contributor
	}
	for f, src := range want {
		require.NotNil(t, n.Provenance.Of(f), "field %s", f)
		require.Equal(t, src, n.Provenance.Of(f).Source, "field %s", f)
	}
	require.Equal(t, disposition.StateInService, n.State)
	require.Equal(t, disposition.HealthDown, n.Health)
	require.Equal(t, "edge", n.Role)
	require.Equal(t, map[string]string{"tier": "2", "rack": "r1", "pager": "yes"}, n.Labels)
	require.Nil(t, n.Provenance.Of(disposition.FieldTraffic), "no source knows traffic")
}

func TestPrecedenceRejectsUnknownSource(t *testing.T) {
	_, err := sources.NewAggregator(disposition.NewIndex(), sources.AggregatorConfig{
		Precedence: map[disposition.Field][]string{disposition.FieldState: {"nope"}},
	}, auth(newMem("inv")))
	require.ErrorIs(t, err, sources.ErrUnknownSource)
}

func TestProvenanceObservedAtIsFirstSeen(t *testing.T) {
	clk := newClock()
	inv := newMem("inv", sources.Observe("a").Metro("DEN").State(disposition.StateInService))
	traffic := newMem("traffic", sources.Observe("a").Traffic(10))
	agg, ix := newAgg(t, clk, sources.AggregatorConfig{}, auth(inv), enrich(traffic))
	require.NoError(t, agg.Refresh(t.Context()))
	v1 := ix.Version()

	// Same values, new slices, later: nothing is written.
	clk.Advance(time.Minute)
	inv.set(sources.Observe("a").Metro("DEN").State(disposition.StateInService))
	traffic.set(sources.Observe("a").Traffic(10))
	require.NoError(t, agg.Refresh(t.Context()))
	require.Equal(t, v1, ix.Version(), "a steady fleet must not write")
	n := get(t, ix, "a")
	require.Equal(t, t0, n.Provenance.Of(disposition.FieldMetro).ObservedAt)
	require.Equal(t, t0, n.Provenance.Of(disposition.FieldTraffic).ObservedAt)

	// Traffic changes: only its observed-at moves.
	clk.Advance(time.Minute)
	traffic.set(sources.Observe("a").Traffic(12))
	require.NoError(t, agg.Refresh(t.Context()))
	n = get(t, ix, "a")
	require.Equal(t, 12.0, n.TrafficGbps)
	require.Equal(t, t0.Add(2*time.Minute), n.Provenance.Of(disposition.FieldTraffic).ObservedAt)
	require.Equal(t, t0, n.Provenance.Of(disposition.FieldMetro).ObservedAt)
	require.Equal(t, t0, n.Provenance.Of(disposition.FieldState).ObservedAt)
	require.Greater(t, ix.Version(), v1)
}

func TestObservationNoteReachesProvenance(t *testing.T) {
	inv := newMem("inv", sources.Observe("a").Metro("DEN"), sources.Observe("b").Metro("DEN"))
	down := sources.Observe("a").Health(disposition.HealthDown)
	down.Note = "DiskFull,NodeDown"
	alerts := newMem("alerts", down, sources.Observe("b").Health(disposition.HealthHealthy))
	agg, ix := newAgg(t, newClock(), sources.AggregatorConfig{}, auth(inv), enrich(alerts))
	require.NoError(t, agg.Refresh(t.Context()))
	require.Equal(t, "DiskFull,NodeDown", get(t, ix, "a").Provenance.Of(disposition.FieldHealth).Note)
	require.Empty(t, get(t, ix, "b").Provenance.Of(disposition.FieldHealth).Note)
	require.Empty(t, get(t, ix, "a").Provenance.Of(disposition.FieldMetro).Note)
}

func TestOriginsAreShared(t *testing.T) {
	inv := newMem("inv", inventory(50)...)
	agg, ix := newAgg(t, newClock(), sources.AggregatorConfig{}, auth(inv))
	require.NoError(t, agg.Refresh(t.Context()))
	a, b := get(t, ix, nodeID(0)), get(t, ix, nodeID(49))
	require.Same(t, a.Provenance.Of(disposition.FieldMetro), b.Provenance.Of(disposition.FieldMetro))
	require.Same(t, a.Provenance.Of(disposition.FieldMetro), a.Provenance.Of(disposition.FieldState))
}

func TestStaleOnError(t *testing.T) {
	clk := newClock()
	inv := newMem("inv", inventory(20)...)
	health := newMem("health", sources.Observe(nodeID(3)).Health(disposition.HealthDown))
	agg, ix := newAgg(t, clk, sources.AggregatorConfig{},
		auth(inv), sources.Registered{Source: health, Interval: time.Minute, MaxStale: 5 * time.Minute, Retries: -1})
	require.NoError(t, agg.Refresh(t.Context()))

	clk.Advance(time.Minute)
	inv.fail(errDown)
	health.fail(errDown)
	err := agg.Refresh(t.Context())
	var se *sources.SourceError
	require.ErrorAs(t, err, &se)
	require.ErrorIs(t, err, errDown)

	// Nothing blanked or shrunk: every node and value is there, stale.
	require.Len(t, ids(ix), 20)
	n := get(t, ix, nodeID(3))
	require.Equal(t, disposition.HealthDown, n.Health)
	require.Equal(t, "DEN", n.Metro)
	for _, f := range []disposition.Field{disposition.FieldHealth, disposition.FieldMetro, disposition.FieldState} {
		o := n.Provenance.Of(f)
		require.True(t, o.Stale, "field %s", f)
		require.Equal(t, t0, o.ObservedAt, "a stale value keeps its observed-at")
	}
	st := statusOf(t, agg, "health")
	require.Equal(t, t0.Add(time.Minute), st.StaleSince)
	require.Equal(t, t0, st.LastSuccess)
	require.ErrorIs(t, st.Err, errDown)
	require.Contains(t, st.LastError, "connection refused")

	// Recovery: fresh again, same observed-at.
	clk.Advance(time.Minute)
	inv.set(inventory(20)...)
	health.set(sources.Observe(nodeID(3)).Health(disposition.HealthDown))
	require.NoError(t, agg.Refresh(t.Context()))
	n = get(t, ix, nodeID(3))
	require.False(t, n.Provenance.Of(disposition.FieldHealth).Stale)
	require.Equal(t, t0, n.Provenance.Of(disposition.FieldHealth).ObservedAt)
	require.True(t, statusOf(t, agg, "health").StaleSince.IsZero())
}

func TestMaxStaleExpiry(t *testing.T) {
	clk := newClock()
	inv := newMem("inv", sources.Observe("a").Metro("DEN"), sources.Observe("b").Metro("NYC"))
	health := newMem("health", sources.Observe("a").Health(disposition.HealthDegraded).Traffic(3))
	regInv := auth(inv)
	regInv.MaxStale = 10 * time.Minute
	agg, ix := newAgg(t, clk, sources.AggregatorConfig{},
		regInv, sources.Registered{Source: health, MaxStale: 2 * time.Minute, Retries: -1})
	require.NoError(t, agg.Refresh(t.Context()))

	health.fail(errDown)
	inv.fail(errDown)
	clk.Advance(2 * time.Minute) // exactly max_stale: still in use
	require.Error(t, agg.Refresh(t.Context()))
	require.Equal(t, disposition.HealthDegraded, get(t, ix, "a").Health)
	require.False(t, statusOf(t, agg, "health").Expired)

	clk.Advance(time.Second) // past it: health's fields go
	require.Error(t, agg.Refresh(t.Context()))
	a := get(t, ix, "a")
	require.Equal(t, disposition.HealthUnknown, a.Health)
	require.Zero(t, a.TrafficGbps)
	require.Nil(t, a.Provenance.Of(disposition.FieldHealth))
	require.Equal(t, "DEN", a.Metro, "the inventory is not past its max_stale")
	require.True(t, statusOf(t, agg, "health").Expired)

	// The authoritative source past its max_stale: nodes stay, fields go.
	clk.Advance(10 * time.Minute)
	require.Error(t, agg.Refresh(t.Context()))
	require.Equal(t, []string{"a", "b"}, ids(ix))
	require.Empty(t, get(t, ix, "a").Metro)

	// Back: everything returns.
	health.set(sources.Observe("a").Health(disposition.HealthHealthy))
	inv.set(sources.Observe("a").Metro("DEN"), sources.Observe("b").Metro("NYC"))
	require.NoError(t, agg.Refresh(t.Context()))
	a = get(t, ix, "a")
	require.Equal(t, disposition.HealthHealthy, a.Health)
	require.Equal(t, "DEN", a.Metro)
	require.False(t, statusOf(t, agg, "health").Expired)
}

func TestRemovalGuard(t *testing.T) {
	clk := newClock()
	inv := newMem("inv", inventory(100)...)
	agg, ix := newAgg(t, clk, sources.AggregatorConfig{}, auth(inv))
	require.NoError(t, agg.Refresh(t.Context()))
	v := ix.Version()

	// 11 of 100 is more than 10%: rejected, nothing applied.
	inv.set(inventory(89)...)
	err := agg.Refresh(t.Context())
	var ge *sources.GuardError
	require.ErrorAs(t, err, &ge)
	require.ErrorIs(t, err, sources.ErrRemovalGuard)
	require.Equal(t, sources.GuardError{Source: "inv", Removing: 11, Total: 100, Limit: 10}, *ge)
	require.Len(t, ids(ix), 100)
	st := statusOf(t, agg, "inv")
	require.ErrorIs(t, st.Err, sources.ErrRemovalGuard)
	require.False(t, st.StaleSince.IsZero(), "a rejected fetch is a failed one")
	require.True(t, get(t, ix, nodeID(99)).Provenance.Of(disposition.FieldMetro).Stale)
	require.Greater(t, ix.Version(), v, "only the stale marks were written")

	// 10 is within the limit: accepted; the nodes go into grace.
	inv.set(inventory(90)...)
	require.NoError(t, agg.Refresh(t.Context()))
	require.Len(t, ids(ix), 100, "removed nodes wait for the grace period")
	require.False(t, get(t, ix, nodeID(0)).Provenance.Of(disposition.FieldMetro).Stale)
	require.True(t, get(t, ix, nodeID(95)).Provenance.Of(disposition.FieldMetro).Stale)

	// Nodes already in grace are not counted again: dropping 9 more
	// (9 of 100) passes.
	inv.set(inventory(81)...)
	require.NoError(t, agg.Refresh(t.Context()))

	// A big cut passes once an operator allows it, and only once.
	require.NoError(t, agg.AllowRemovals("inv"))
	inv.set(inventory(40)...)
	require.NoError(t, agg.Refresh(t.Context()))
	inv.set(inventory(10)...)
	require.ErrorIs(t, agg.Refresh(t.Context()), sources.ErrRemovalGuard)

	clk.Advance(sources.DefaultGrace)
	inv.set(inventory(40)...)
	require.NoError(t, agg.Refresh(t.Context()))
	require.Len(t, ids(ix), 40)

	require.ErrorIs(t, agg.AllowRemovals("nope"), sources.ErrUnknownSource)
}

func TestGracePeriod(t *testing.T) {
	clk := newClock()
	inv := newMem("inv", inventory(3)...)
	agg, ix := newAgg(t, clk, sources.AggregatorConfig{RemovalGuard: 1, Grace: 10 * time.Minute}, auth(inv))
	require.NoError(t, agg.Refresh(t.Context()))

	inv.set(inventory(2)...)
	require.NoError(t, agg.Refresh(t.Context()))
	gone := nodeID(2)
	n := get(t, ix, gone)
	require.Equal(t, "DEN", n.Metro)
	require.True(t, n.Provenance.Of(disposition.FieldMetro).Stale)

	// It comes back within the grace period: kept, fresh again.
	clk.Advance(5 * time.Minute)
	inv.set(inventory(3)...)
	require.NoError(t, agg.Refresh(t.Context()))
	require.False(t, get(t, ix, gone).Provenance.Of(disposition.FieldMetro).Stale)

	// It goes again; the grace period starts over and ends.
	inv.set(inventory(2)...)
	require.NoError(t, agg.Refresh(t.Context()))
	clk.Advance(10*time.Minute - time.Second)
	require.NoError(t, agg.Refresh(t.Context()))
	require.Contains(t, ids(ix), gone)
	clk.Advance(time.Second)
	require.NoError(t, agg.Refresh(t.Context()))
	require.NotContains(t, ids(ix), gone)
	require.Len(t, ids(ix), 2)
}

func TestNoGraceRemovesAtOnce(t *testing.T) {
	inv := newMem("inv", inventory(3)...)
	agg, ix := newAgg(t, newClock(), sources.AggregatorConfig{RemovalGuard: 1, Grace: -1}, auth(inv))
	require.NoError(t, agg.Refresh(t.Context()))
	inv.set(inventory(1)...)
	require.NoError(t, agg.Refresh(t.Context()))
	require.Equal(t, []string{nodeID(0)}, ids(ix))
}

func TestOrphans(t *testing.T) {
	inv := newMem("inv", inventory(3)...)
	var obs []*sources.Observation
	for _, id := range []string{nodeID(0), "ghost-3", "ghost-1", "ghost-2"} {
		obs = append(obs, sources.Observe(id).Health(disposition.HealthDown))
	}
	mon := newMem("mon", obs...)
	agg, ix := newAgg(t, newClock(), sources.AggregatorConfig{}, auth(inv), enrich(mon))
	require.NoError(t, agg.Refresh(t.Context()))

	require.Equal(t, []string{nodeID(0), nodeID(1), nodeID(2)}, ids(ix), "orphans never become nodes")
	st := statusOf(t, agg, "mon")
	require.Equal(t, 3, st.Orphans)
	require.Equal(t, []string{"ghost-1", "ghost-2", "ghost-3"}, st.OrphanSample)
	require.Equal(t, 4, st.Observations)
	require.Zero(t, statusOf(t, agg, "inv").Orphans)

	// The inventory learns about a ghost: it stops being an orphan.
	inv.set(append(inventory(3), sources.Observe("ghost-1"))...)
	require.NoError(t, agg.Refresh(t.Context()))
	require.Equal(t, 2, statusOf(t, agg, "mon").Orphans)
	require.Equal(t, disposition.HealthDown, get(t, ix, "ghost-1").Health)
}

func TestRejectedObservations(t *testing.T) {
	inv := newMem("inv", inventory(2)...)
	bad := sources.Observe(nodeID(1)).Traffic(-1)
	dup := newMem("dup", sources.Observe(nodeID(0)).Role("a"), sources.Observe(nodeID(0)).Role("b"))
	mon := newMem("mon", sources.Observe(nodeID(0)).Traffic(2), bad, sources.Observe(""))
	agg, ix := newAgg(t, newClock(), sources.AggregatorConfig{}, auth(inv), enrich(dup), enrich(mon))
	err := agg.Refresh(t.Context())
	require.ErrorIs(t, err, sources.ErrDuplicateObservation)
	require.Empty(t, get(t, ix, nodeID(0)).Role)
	require.Equal(t, 2.0, get(t, ix, nodeID(0)).TrafficGbps)

	st := statusOf(t, agg, "mon")
	require.Equal(t, 2, st.Invalid)
	require.Contains(t, st.FirstInvalid, "traffic")
	require.Equal(t, 1, st.Observations)
}

type panicky struct{}

func (panicky) Name() string { return "panicky" }
func (panicky) Fetch(context.Context) ([]sources.Observation, error) {
	panic("boom")
}

func TestPanickingSource(t *testing.T) {
	inv := newMem("inv", inventory(2)...)
	agg, ix := newAgg(t, newClock(), sources.AggregatorConfig{}, auth(inv), enrich(panicky{}))
	err := agg.Refresh(t.Context())
	require.ErrorIs(t, err, sources.ErrSourcePanic)
	require.Len(t, ids(ix), 2)
}

func TestHangingSourceHonoursDeadline(t *testing.T) {
	inv := newMem("inv", inventory(2)...)
	hang := newMem("hang", sources.Observe(nodeID(0)).Role("x"))
	hang.block = make(chan struct{}) // never closed: waits for ctx
	agg, ix := newAgg(t, newClock(), sources.AggregatorConfig{},
		auth(inv), sources.Registered{Source: hang, Timeout: 20 * time.Millisecond, Retries: -1})
	err := agg.Refresh(t.Context())
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Len(t, ids(ix), 2, "the other sources are applied")
	require.Contains(t, statusOf(t, agg, "hang").LastError, "no answer within 20ms")
}

func TestSourceIgnoringContextIsAbandoned(t *testing.T) {
	inv := newMem("inv", inventory(2)...)
	hang := newMem("hang", sources.Observe(nodeID(0)).Role("x"))
	release := make(chan struct{})
	hang.block, hang.ignoreCtx = release, true
	agg, ix := newAgg(t, newClock(), sources.AggregatorConfig{},
		auth(inv), sources.Registered{Source: hang, Timeout: 20 * time.Millisecond, Retries: -1})
	require.ErrorIs(t, agg.Refresh(t.Context()), context.DeadlineExceeded)
	// The abandoned call is still running: the source is not called again.
	require.ErrorIs(t, agg.Refresh(t.Context()), sources.ErrFetchInProgress)
	require.EqualValues(t, 1, hang.calls.Load())

	close(release)
	require.Eventually(t, func() bool {
		return agg.Refresh(t.Context()) == nil
	}, 10*time.Second, time.Millisecond)
	require.Equal(t, "x", get(t, ix, nodeID(0)).Role)
}

func TestRetryWithBackoff(t *testing.T) {
	clk := newClock()
	inv := newMem("inv", inventory(1)...)
	inv.failNext(2, errDown)
	agg, ix := newAgg(t, clk, sources.AggregatorConfig{Jitter: -1},
		sources.Registered{Source: inv, Authoritative: true, Interval: time.Minute, Retries: 3, Backoff: time.Second})
	done := make(chan error, 1)
	go func() { done <- agg.Refresh(context.Background()) }()

	require.Equal(t, []time.Duration{time.Second}, clk.waitTimers(t, 1))
	clk.Advance(time.Second)
	require.Equal(t, []time.Duration{2 * time.Second}, clk.waitTimers(t, 1))
	clk.Advance(2 * time.Second)
	require.NoError(t, <-done)
	require.EqualValues(t, 3, inv.calls.Load())
	require.Len(t, ids(ix), 1)
	st := statusOf(t, agg, "inv")
	require.Zero(t, st.Failures, "a round that succeeds on retry did not fail")
	require.Equal(t, 3*time.Second, st.Duration)
}

func TestRetriesExhausted(t *testing.T) {
	clk := newClock()
	inv := newMem("inv", inventory(1)...)
	inv.failNext(5, errDown)
	agg, _ := newAgg(t, clk, sources.AggregatorConfig{Jitter: -1},
		sources.Registered{Source: inv, Authoritative: true, Interval: 3 * time.Second, Retries: 2, Backoff: 2 * time.Second})
	done := make(chan error, 1)
	go func() { done <- agg.Refresh(context.Background()) }()
	require.Equal(t, []time.Duration{2 * time.Second}, clk.waitTimers(t, 1))
	clk.Advance(2 * time.Second)
	// Doubling is capped at the interval.
	require.Equal(t, []time.Duration{3 * time.Second}, clk.waitTimers(t, 1))
	clk.Advance(3 * time.Second)
	require.ErrorIs(t, <-done, errDown)
	require.EqualValues(t, 3, inv.calls.Load())
	require.EqualValues(t, 1, statusOf(t, agg, "inv").Failures)
}

func TestRunFetchesOnIntervals(t *testing.T) {
	clk := newClock()
	inv := newMem("inv", inventory(2)...)
	mon := newMem("mon", sources.Observe(nodeID(0)).Traffic(1))
	agg, ix := newAgg(t, clk, sources.AggregatorConfig{Jitter: -1},
		sources.Registered{Source: inv, Authoritative: true, Interval: time.Minute},
		sources.Registered{Source: mon, Interval: 10 * time.Second})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- agg.Run(ctx) }()

	// Both fetch at once, then wait for their intervals.
	ds := clk.waitTimers(t, 2)
	require.ElementsMatch(t, []time.Duration{time.Minute, 10 * time.Second}, ds)
	require.Eventually(t, func() bool {
		n, ok := ix.Snapshot().Get(nodeID(0))
		return ok && n.TrafficGbps == 1
	}, 10*time.Second, time.Millisecond)
	require.ErrorIs(t, agg.Run(ctx), sources.ErrRunning)

	mon.set(sources.Observe(nodeID(0)).Traffic(7))
	clk.Advance(10 * time.Second)
	require.Eventually(t, func() bool {
		return get(t, ix, nodeID(0)).TrafficGbps == 7
	}, 10*time.Second, time.Millisecond)
	require.EqualValues(t, 1, inv.calls.Load())
	require.EqualValues(t, 2, mon.calls.Load())

	cancel()
	require.NoError(t, <-done)
}

func TestRunAfterRefreshWaitsForInterval(t *testing.T) {
	clk := newClock()
	inv := newMem("inv", inventory(2)...)
	agg, _ := newAgg(t, clk, sources.AggregatorConfig{Jitter: -1},
		sources.Registered{Source: inv, Authoritative: true, Interval: time.Minute})
	require.NoError(t, agg.Refresh(t.Context()))
	clk.Advance(20 * time.Second)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- agg.Run(ctx) }()
	require.Equal(t, []time.Duration{40 * time.Second}, clk.waitTimers(t, 1))
	require.EqualValues(t, 1, inv.calls.Load())
	cancel()
	require.NoError(t, <-done)
}

func TestJitterStaysInBounds(t *testing.T) {
	clk := newClock()
	inv := newMem("inv", inventory(1)...)
	agg, _ := newAgg(t, clk, sources.AggregatorConfig{Jitter: 0.2, Seed: 7},
		sources.Registered{Source: inv, Authoritative: true, Interval: 100 * time.Second})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- agg.Run(ctx) }()
	seen := map[time.Duration]bool{}
	for range 20 {
		d := clk.waitTimers(t, 1)[0]
		require.GreaterOrEqual(t, d, 80*time.Second)
		require.LessOrEqual(t, d, 120*time.Second)
		seen[d] = true
		clk.Advance(d)
	}
	require.Greater(t, len(seen), 10, "jitter varies")
	cancel()
	require.NoError(t, <-done)
}

func TestConcurrentRefresh(t *testing.T) {
	clk := newClock()
	inv := newMem("inv", inventory(200)...)
	mons := make([]*memSource, 4)
	regs := []sources.Registered{auth(inv)}
	for i := range mons {
		mons[i] = newMem(fmt.Sprintf("mon%d", i))
		regs = append(regs, enrich(mons[i]))
	}
	agg, ix := newAgg(t, clk, sources.AggregatorConfig{Concurrency: 2}, regs...)

	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for round := range 25 {
				m := mons[(g+round)%len(mons)]
				obs := make([]*sources.Observation, 0, 200)
				for i := range 200 {
					obs = append(obs, sources.Observe(nodeID(i)).Traffic(float64(round)))
				}
				m.set(obs...)
				_ = agg.Refresh(t.Context())
				_ = agg.Status()
				_ = ix.Snapshot().Len()
			}
		})
	}
	wg.Go(func() {
		for range 100 {
			_, _ = ix.Snapshot().Aggregate(disposition.Query{}, "metro")
		}
	})
	wg.Wait()

	// Settle, then check the index against the sources' final answers.
	require.NoError(t, agg.Refresh(t.Context()))
	snap := ix.Snapshot()
	require.Equal(t, 200, snap.Len())
	want := mons[0].obs[0].Values.TrafficGbps // mon0 wins traffic: first registered
	require.NoError(t, snap.Scan(disposition.Query{}, func(n *disposition.Node) bool {
		require.Equal(t, want, n.TrafficGbps, n.ID)
		require.Equal(t, "mon0", n.Provenance.Of(disposition.FieldTraffic).Source)
		return true
	}))
}

func TestSameSliceSkipsCompare(t *testing.T) {
	// A source that returns the very slice it returned before is taken to
	// be unchanged; one that returns equal data in a new slice is compared.
	clk := newClock()
	inv := newMem("inv", inventory(5)...)
	agg, ix := newAgg(t, clk, sources.AggregatorConfig{}, auth(inv))
	require.NoError(t, agg.Refresh(t.Context()))
	v := ix.Version()
	clk.Advance(time.Minute)
	require.NoError(t, agg.Refresh(t.Context()))
	require.Equal(t, v, ix.Version())
	require.Equal(t, t0.Add(time.Minute), statusOf(t, agg, "inv").LastSuccess)

	// Proof that the comparison was skipped: a change made in place
	// (which the Source contract forbids) goes unseen; the same data in
	// a new slice is seen.
	inv.mu.Lock()
	inv.obs[0].Values.Metro = "NYC"
	inv.mu.Unlock()
	require.NoError(t, agg.Refresh(t.Context()))
	require.Equal(t, "DEN", get(t, ix, nodeID(0)).Metro)
	obs := inventory(5)
	obs[0].Metro("LAX")
	inv.set(obs...)
	require.NoError(t, agg.Refresh(t.Context()))
	require.Equal(t, "LAX", get(t, ix, nodeID(0)).Metro)
}

func TestAdoptsExistingIndex(t *testing.T) {
	ix := disposition.NewIndex()
	_, err := ix.Apply(t.Context(), disposition.Batch{Upserts: []*disposition.Node{
		{ID: nodeID(0), Metro: "OLD"}, {ID: "stale-node", Metro: "OLD"},
	}})
	require.NoError(t, err)
	clk := newClock()
	inv := newMem("inv", inventory(2)...)
	agg, err := sources.NewAggregator(ix, sources.AggregatorConfig{Clock: clk, RemovalGuard: 1, Grace: time.Minute}, auth(inv))
	require.NoError(t, err)
	require.NoError(t, agg.Refresh(t.Context()))
	require.Equal(t, "DEN", get(t, ix, nodeID(0)).Metro)
	require.Contains(t, ids(ix), "stale-node", "kept for the grace period")
	clk.Advance(time.Minute)
	require.NoError(t, agg.Refresh(t.Context()))
	require.Equal(t, []string{nodeID(0), nodeID(1)}, ids(ix))
}

func TestGuardOnAdoptedIndex(t *testing.T) {
	// An index that already holds a fleet (e.g. restored) is protected
	// from a truncated first inventory.
	ix := disposition.NewIndex()
	var nodes []*disposition.Node
	for i := range 50 {
		nodes = append(nodes, &disposition.Node{ID: nodeID(i)})
	}
	_, err := ix.Apply(t.Context(), disposition.Batch{Upserts: nodes})
	require.NoError(t, err)
	inv := newMem("inv", inventory(10)...)
	agg, err := sources.NewAggregator(ix, sources.AggregatorConfig{Clock: newClock()}, auth(inv))
	require.NoError(t, err)
	var ge *sources.GuardError
	require.ErrorAs(t, agg.Refresh(t.Context()), &ge)
	require.Equal(t, 40, ge.Removing)
	require.Len(t, ids(ix), 50)
}

func TestNewAggregatorValidates(t *testing.T) {
	ix := disposition.NewIndex()
	for name, tc := range map[string]struct {
		cfg  sources.AggregatorConfig
		regs []sources.Registered
		want string
	}{
		"no sources":        {regs: nil, want: "no sources"},
		"no authoritative":  {regs: []sources.Registered{enrich(newMem("a"))}, want: "no source is authoritative"},
		"duplicate":         {regs: []sources.Registered{auth(newMem("a")), enrich(newMem("a"))}, want: `two sources named "a"`},
		"unnamed":           {regs: []sources.Registered{auth(newMem(""))}, want: "no name"},
		"nil source":        {regs: []sources.Registered{{Authoritative: true}}, want: "source 0 is nil"},
		"guard":             {cfg: sources.AggregatorConfig{RemovalGuard: 1.5}, regs: []sources.Registered{auth(newMem("a"))}, want: "RemovalGuard"},
		"precedence id":     {cfg: sources.AggregatorConfig{Precedence: map[disposition.Field][]string{disposition.FieldID: {"a"}}}, regs: []sources.Registered{auth(newMem("a"))}, want: "not a field"},
		"precedence twice":  {cfg: sources.AggregatorConfig{Precedence: map[disposition.Field][]string{disposition.FieldRole: {"a", "a"}}}, regs: []sources.Registered{auth(newMem("a"))}, want: "listed twice"},
		"negative interval": {regs: []sources.Registered{{Source: newMem("a"), Authoritative: true, Interval: -1}}, want: "negative"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := sources.NewAggregator(ix, tc.cfg, tc.regs...)
			require.ErrorContains(t, err, tc.want)
		})
	}
	_, err := sources.NewAggregator(nil, sources.AggregatorConfig{}, auth(newMem("a")))
	require.ErrorContains(t, err, "nil index")
}

func TestStatusJSONShape(t *testing.T) {
	inv := newMem("inv", inventory(1)...)
	agg, _ := newAgg(t, newClock(), sources.AggregatorConfig{}, auth(inv))
	require.NoError(t, agg.Refresh(t.Context()))
	got := agg.Status()
	want := []sources.SourceStatus{{
		Name: "inv", Authoritative: true, LastAttempt: t0, LastSuccess: t0,
		Observations: 1, Fetches: 1,
	}}
	require.Empty(t, cmp.Diff(want, got))
}

func TestTwoAuthoritativeSources(t *testing.T) {
	clk := newClock()
	devices := newMem("devices", sources.Observe("a").Metro("DEN"), sources.Observe("b").Metro("DEN"), sources.Observe("shared").Metro("DEN"))
	vms := newMem("vms", sources.Observe("vm-1").Role("dns"), sources.Observe("shared").Role("edge"))
	vms.fail(errDown)
	agg, ix := newAgg(t, clk, sources.AggregatorConfig{RemovalGuard: 1, Grace: time.Minute}, auth(devices), auth(vms))
	require.Error(t, agg.Refresh(t.Context()))
	require.Equal(t, []string{"a", "b", "shared"}, ids(ix))

	// Until every authoritative source has loaded, a node one of them
	// drops is kept (stale): it may belong to the other.
	devices.set(sources.Observe("a").Metro("DEN"), sources.Observe("shared").Metro("DEN"))
	require.Error(t, agg.Refresh(t.Context()))
	require.Contains(t, ids(ix), "b")
	require.True(t, get(t, ix, "b").Provenance.Of(disposition.FieldMetro).Stale)
	clk.Advance(time.Hour)
	require.Error(t, agg.Refresh(t.Context()))
	require.Contains(t, ids(ix), "b", "no grace period runs yet")

	vms.set(sources.Observe("vm-1").Role("dns"), sources.Observe("shared").Role("edge"))
	require.NoError(t, agg.Refresh(t.Context()))
	require.Equal(t, []string{"a", "b", "shared", "vm-1"}, ids(ix), "b's grace period starts now")
	shared := get(t, ix, "shared")
	require.Equal(t, "DEN", shared.Metro)
	require.Equal(t, "edge", shared.Role)

	clk.Advance(time.Minute)
	vms.set(sources.Observe("vm-1").Role("dns")) // shared is still a device
	require.NoError(t, agg.Refresh(t.Context()))
	require.Equal(t, []string{"a", "shared", "vm-1"}, ids(ix))
	require.Empty(t, get(t, ix, "shared").Role)
}

// TestParallelMergeMatchesSequential merges a fleet big enough to be
// split between workers, and checks the result node for node against a
// merge by one goroutine.
func TestParallelMergeMatchesSequential(t *testing.T) {
	const size = 3 * 4096
	var inv, mon, tags []*sources.Observation
	for i := range size {
		id := fmt.Sprintf("n%05d", i)
		inv = append(inv, sources.Observe(id).Metro([]string{"DEN", "NYC", "LAX"}[i%3]).Label("rack", fmt.Sprint(i/40)))
		if i%3 != 0 {
			mon = append(mon, sources.Observe(id).Health(disposition.HealthHealthy).Traffic(float64(i%17)))
		}
		if i%5 == 0 {
			tags = append(tags, sources.Observe(id).Label("tier", "1").Label("rack", "override"))
		}
	}
	mon = append(mon, sources.Observe("ghost").Health(disposition.HealthDown))
	build := func(workers int) *disposition.Index {
		clk := newClock()
		agg, ix := newAgg(t, clk, sources.AggregatorConfig{
			Precedence: map[disposition.Field][]string{disposition.FieldLabels: {"tags"}},
		}, auth(newMem("inv", inv...)), enrich(newMem("mon", mon...)), enrich(newMem("tags", tags...)))
		agg.SetMergeWorkers(workers)
		require.NoError(t, agg.Refresh(t.Context()))
		require.Equal(t, 1, statusOf(t, agg, "mon").Orphans)
		return ix
	}
	seq, par := build(1), build(3)
	require.Equal(t, size, par.Snapshot().Len())
	n := 0
	require.NoError(t, seq.Snapshot().Scan(disposition.Query{}, func(want *disposition.Node) bool {
		got, ok := par.Snapshot().Get(want.ID)
		require.True(t, ok, want.ID)
		require.True(t, want.Equal(got), "%s:\n%s", want.ID, cmp.Diff(want, got))
		n++
		return true
	}))
	require.Equal(t, size, n)
	got, _ := par.Snapshot().Get("n00005")
	require.Equal(t, map[string]string{"rack": "override", "tier": "1"}, got.Labels)
}

// TestRefreshSource fetches one source alone: its change reaches the
// index, the other sources are not asked, and an unknown name is refused.
func TestRefreshSource(t *testing.T) {
	inv := newMem("inv", sources.Observe("a").Metro("DEN").Role("edge"), sources.Observe("b").Metro("NYC").Role("edge"))
	ov := newMem("overrides", sources.Observe("a").State(disposition.StateInService))
	agg, ix := newAgg(t, newClock(), sources.AggregatorConfig{}, auth(inv), enrich(ov))
	require.NoError(t, agg.Refresh(t.Context()))
	invCalls, ovCalls := inv.calls.Load(), ov.calls.Load()

	ov.set(sources.Observe("a").State(disposition.StateDrained), sources.Observe("b").State(disposition.StateMaintenance))
	inv.set(sources.Observe("a").Metro("DEN").Role("mid"), sources.Observe("b").Metro("NYC").Role("edge"))
	v := ix.Snapshot().Version()
	require.NoError(t, agg.RefreshSource(t.Context(), "overrides"))
	require.Equal(t, invCalls, inv.calls.Load(), "inv was fetched")
	require.Equal(t, ovCalls+1, ov.calls.Load())
	require.Greater(t, ix.Snapshot().Version(), v)
	require.Equal(t, disposition.StateDrained, get(t, ix, "a").State)
	require.Equal(t, disposition.StateMaintenance, get(t, ix, "b").State)
	require.Equal(t, "edge", get(t, ix, "a").Role, "inv's change came in without a fetch of inv")

	// A failing source keeps its last good answer (stale-on-error).
	ov.fail(errors.New("boom"))
	err := agg.RefreshSource(t.Context(), "overrides")
	var se *sources.SourceError
	require.ErrorAs(t, err, &se)
	require.Equal(t, disposition.StateDrained, get(t, ix, "a").State)

	require.ErrorIs(t, agg.RefreshSource(t.Context(), "nope"), sources.ErrUnknownSource)
}

// TestStatusFollowsTheIndex polls Status while a first fetch of 20K nodes
// is merged: a source is never shown as having succeeded before the index
// holds what it fetched.
func TestStatusFollowsTheIndex(t *testing.T) {
	var obs []*sources.Observation
	for i := range 20_000 {
		obs = append(obs, sources.Observe(fmt.Sprintf("n%05d", i)).Metro("DEN").Role("edge"))
	}
	inv := newMem("inv", obs...)
	agg, ix := newAgg(t, newClock(), sources.AggregatorConfig{}, auth(inv))
	done := make(chan struct{})
	var early, polls atomic.Int64
	go func() {
		defer close(done)
		for ctx := t.Context(); ctx.Err() == nil; {
			polls.Add(1)
			st := agg.Status()[0]
			if !st.LastSuccess.IsZero() {
				if ix.Snapshot().Len() == 0 {
					early.Add(1)
				}
				return
			}
		}
	}()
	require.NoError(t, agg.Refresh(t.Context()))
	<-done
	require.Zero(t, early.Load(), "Status showed a success before the index held it")
	require.Positive(t, polls.Load())
}
