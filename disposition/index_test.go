package disposition

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/stretchr/testify/require"
)

// Small value pools, so that random nodes collide on every field.
var (
	poolMetros   = []string{"DEN", "NYC", "LHR", "BOM", "ADL", ""}
	poolClusters = []string{"c1", "c2", "c3", "c4", ""}
	poolRoles    = []string{"edge", "mid", "shield", "dns", ""}
	poolRelease  = []string{"ga", "nrt", "trial", ""}
	poolVersions = []string{"3.1.0", "3.1.4", "3.2.0", "3.10.1", "banana"}
	poolLabelVal = []string{"1", "2", "3"}
)

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func randomNode(r *rand.Rand, id string) *Node {
	n := &Node{
		ID:           id,
		Kind:         Kind(r.IntN(4)),
		Region:       pick(r, []string{"na", "eu", "ap", ""}),
		Metro:        pick(r, poolMetros),
		Site:         pick(r, []string{"s1", "s2", ""}),
		Cluster:      pick(r, poolClusters),
		Role:         pick(r, poolRoles),
		State:        State(r.IntN(int(StateDecommissioned) + 1)),
		ReleaseState: pick(r, poolRelease),
		Health:       Health(r.IntN(4)),
		TrafficGbps:  float64(r.IntN(100)),
		CapacityGbps: float64(r.IntN(3) * 50),
	}
	if r.IntN(3) > 0 {
		n.Versions = map[string]string{"cdn-app": pick(r, poolVersions)}
	}
	if r.IntN(2) == 0 {
		n.Labels = map[string]string{"tier": pick(r, poolLabelVal)}
		if r.IntN(2) == 0 {
			n.Labels["hw"] = pick(r, []string{"gen9", "gen10"})
		}
	}
	if r.IntN(4) == 0 {
		n.Provenance[FieldMetro] = &Origin{Source: "netbox", ObservedAt: time.Unix(int64(r.IntN(3)), 0)}
	}
	return n
}

// randomBatch builds a batch against the model: inserts, updates (some
// identical to the stored node), and deletes of present and absent IDs.
func randomBatch(r *rand.Rand, model map[string]*Node, size int) Batch {
	var b Batch
	used := map[string]bool{}
	for range size {
		id := fmt.Sprintf("h%03d", r.IntN(300))
		if used[id] {
			continue
		}
		used[id] = true
		switch x := r.IntN(10); {
		case x < 2:
			b.Deletes = append(b.Deletes, id)
		case x < 4 && model[id] != nil:
			b.Upserts = append(b.Upserts, model[id].Clone()) // unchanged
		default:
			b.Upserts = append(b.Upserts, randomNode(r, id))
		}
	}
	return b
}

func applyModel(model map[string]*Node, b Batch) {
	for _, n := range b.Upserts {
		model[n.ID] = n.Clone()
	}
	for _, id := range b.Deletes {
		delete(model, id)
	}
}

var equateNodes = cmp.Options{cmpopts.EquateEmpty(), cmp.Comparer(func(a, b Provenance) bool { return a.Equal(b) })}

func sortedModel(model map[string]*Node) []*Node {
	out := make([]*Node, 0, len(model))
	for _, n := range model {
		out = append(out, n)
	}
	slices.SortFunc(out, byID)
	return out
}

// TestIndexAgreesWithMapModel applies random batches to an index and to a
// plain map and checks after each that contents, Len, Get, versions and
// random queries agree, and that older snapshots never change.
func TestIndexAgreesWithMapModel(t *testing.T) {
	for seed := range uint64(8) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 1))
			ix := NewIndex()
			model := map[string]*Node{}
			type frozen struct {
				snap *Snapshot
				want []*Node
			}
			var old []frozen
			version := uint64(0)
			for step := range 40 {
				b := randomBatch(r, model, 1+r.IntN(1200))
				before := sortedModel(model)
				res, err := ix.Apply(context.Background(), b)
				require.NoError(t, err)
				applyModel(model, b)
				after := sortedModel(model)

				changed := !slices.EqualFunc(before, after, (*Node).Equal)
				require.Equal(t, changed, res.Changed(), "step %d: Changed()", step)
				if changed {
					require.Equal(t, version+1, res.Version, "step %d: version", step)
				} else {
					require.Equal(t, version, res.Version)
				}
				version = res.Version

				snap := ix.Snapshot()
				require.Equal(t, version, snap.Version())
				require.Equal(t, len(model), snap.Len())
				all, err := snap.Query(Query{})
				require.NoError(t, err)
				if !slices.EqualFunc(after, all, (*Node).Equal) {
					t.Fatalf("step %d: index differs from model (-model +index):\n%s", step, cmp.Diff(after, all, equateNodes))
				}
				for range 5 {
					id := fmt.Sprintf("h%03d", r.IntN(300))
					got, ok := snap.Get(id)
					want, wok := model[id]
					require.Equal(t, wok, ok, "Get(%s)", id)
					if ok {
						require.Empty(t, cmp.Diff(want, got, equateNodes))
					}
				}
				for range 20 {
					q := randomQuery(r)
					got, err := snap.Query(q)
					require.NoError(t, err, "query %q", q)
					want := referenceQuery(after, q)
					if d := cmp.Diff(ids(want), ids(got)); d != "" {
						t.Fatalf("step %d: query %q (-want +got):\n%s", step, q, d)
					}
					m, err := q.Compile()
					require.NoError(t, err)
					var matched []*Node
					for _, n := range all {
						if m.Match(n) {
							matched = append(matched, n)
						}
					}
					if d := cmp.Diff(ids(want), ids(matched)); d != "" {
						t.Fatalf("step %d: Matcher for %q (-want +got):\n%s", step, q, d)
					}
				}
				old = append(old, frozen{snap, after})
				for _, f := range old {
					got, _ := f.snap.Query(Query{})
					if !slices.EqualFunc(f.want, got, (*Node).Equal) {
						t.Fatalf("step %d: snapshot at version %d changed:\n%s", step, f.snap.Version(), cmp.Diff(f.want, got, equateNodes))
					}
				}
			}
		})
	}
}

func ids(ns []*Node) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.ID
	}
	return out
}

func randomQuery(r *rand.Rand) Query {
	var q Query
	for range r.IntN(4) {
		var t Term
		switch r.IntN(13) {
		case 0:
			t = Term{Field: "metro", Values: someOf(r, poolMetros[:5])}
		case 1:
			t = Term{Field: "cluster", Values: someOf(r, poolClusters[:4])}
		case 2:
			t = Term{Field: "role", Values: someOf(r, poolRoles[:4])}
		case 3:
			t = Term{Field: "health", Values: someOf(r, healthNames)}
		case 4:
			t = Term{Field: "state", Values: someOf(r, stateNames[1:])}
		case 5:
			t = Term{Field: "release_state", Values: someOf(r, poolRelease[:3])}
		case 6:
			t = Term{Field: "label.tier", Values: someOf(r, poolLabelVal)}
		case 7:
			t = Term{Field: "version.cdn-app", Values: someOf(r, poolVersions)}
		case 8:
			t = Term{Field: "version.cdn-app", Op: Op(2 + r.IntN(4)), Values: []string{pick(r, poolVersions[:4])}}
			q.Terms = append(q.Terms, t)
			continue
		case 9:
			t = Term{Field: "id", Values: []string{fmt.Sprintf("h%03d", r.IntN(300)), fmt.Sprintf("h%03d", r.IntN(300))}}
		case 10:
			t = Term{Field: "kind", Values: someOf(r, kindNames[1:])}
		case 11:
			t = Term{Field: pick(r, []string{"region", "site"}), Values: someOf(r, []string{"na", "eu", "s1", "s2"})}
		case 12:
			t = Term{Field: "label.hw", Values: someOf(r, []string{"gen9", "gen10"})}
		}
		if r.IntN(3) == 0 {
			t.Op = Ne
		}
		q.Terms = append(q.Terms, t)
	}
	return q
}

func someOf(r *rand.Rand, xs []string) []string {
	n := 1 + r.IntN(min(3, len(xs)))
	out := slices.Clone(xs)
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out[:n]
}

// referenceQuery evaluates q the slow, obvious way, independently of the
// compiled matchers.
func referenceQuery(nodes []*Node, q Query) []*Node {
	var out []*Node
	for _, n := range nodes {
		ok := true
		for _, t := range q.Terms {
			var v string
			var present bool
			switch {
			case strings.HasPrefix(t.Field, "label."):
				v, present = n.Labels[strings.TrimPrefix(t.Field, "label.")]
			case strings.HasPrefix(t.Field, "version."):
				v, present = n.Versions[strings.TrimPrefix(t.Field, "version.")]
			default:
				f, _ := ParseField(t.Field)
				v = stringField(n, f)
				present = v != ""
			}
			switch t.Op {
			case Eq:
				ok = ok && present && slices.Contains(t.Values, v)
			case Ne:
				ok = ok && !(present && slices.Contains(t.Values, v))
			default:
				have, err := semver.NewVersion(v)
				if !present || err != nil {
					ok = false
					break
				}
				c := have.Compare(semver.MustParse(t.Values[0]))
				ok = ok && map[Op]bool{Lt: c < 0, Le: c <= 0, Gt: c > 0, Ge: c >= 0}[t.Op]
			}
		}
		if ok {
			out = append(out, n)
		}
	}
	return out
}

func TestApplySplitsLargeBatchesAndPublishesOnce(t *testing.T) {
	ix := NewIndex()
	r := rand.New(rand.NewPCG(1, 2))
	var b Batch
	for i := range 3*MaxTxnRecords + 7 {
		b.Upserts = append(b.Upserts, randomNode(r, fmt.Sprintf("n%05d", i)))
	}
	res, err := ix.Apply(context.Background(), b)
	require.NoError(t, err)
	require.Equal(t, ApplyResult{Version: 1, Inserted: len(b.Upserts)}, res)
	require.Equal(t, len(b.Upserts), ix.Snapshot().Len())
}

func TestApplyRejectsBadBatchWhole(t *testing.T) {
	ix := NewIndex()
	ctx := context.Background()
	_, err := ix.Apply(ctx, Batch{Upserts: []*Node{{ID: "a"}}})
	require.NoError(t, err)

	cases := map[string]struct {
		batch Batch
		want  string
	}{
		"empty id":      {Batch{Upserts: []*Node{{ID: "b"}, {}}}, "upsert 1: field id: empty"},
		"bad state":     {Batch{Upserts: []*Node{{ID: "b", State: 99}}}, `node "b": field state: invalid value 99`},
		"nan traffic":   {Batch{Upserts: []*Node{{ID: "b", TrafficGbps: nan()}}}, `node "b": field traffic_gbps`},
		"inf capacity":  {Batch{Upserts: []*Node{{ID: "b", CapacityGbps: math.Inf(1)}}}, `node "b": field capacity_gbps`},
		"duplicate":     {Batch{Upserts: []*Node{{ID: "b"}, {ID: "b"}}}, `node appears twice in batch: "b"`},
		"upsert+delete": {Batch{Upserts: []*Node{{ID: "b"}}, Deletes: []string{"b"}}, `twice`},
		"nil":           {Batch{Upserts: []*Node{nil}}, "upsert 0 is nil"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := ix.Apply(ctx, c.batch)
			require.ErrorContains(t, err, c.want)
			require.Equal(t, uint64(1), ix.Version())
			require.Equal(t, 1, ix.Snapshot().Len())
		})
	}
	var fe *FieldError
	_, err = ix.Apply(ctx, Batch{Upserts: []*Node{{ID: "x", Health: 7}}})
	require.ErrorAs(t, err, &fe)
	require.Equal(t, "health", fe.Field)
	_, err = ix.Apply(ctx, Batch{Upserts: []*Node{{ID: "x"}, {ID: "x"}}})
	require.ErrorIs(t, err, ErrDuplicateID)
}

func nan() float64 { z := 0.0; return z / z }

func TestApplyHonoursCancelledContext(t *testing.T) {
	ix := NewIndex()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := ix.Apply(ctx, Batch{Upserts: []*Node{{ID: "a"}}})
	require.ErrorIs(t, err, context.Canceled)
	require.Zero(t, ix.Snapshot().Len())
}

func TestWatchSignalsOncePerCommitAndStopsOnCancel(t *testing.T) {
	ix := NewIndex()
	ctx, cancel := context.WithCancel(context.Background())
	ch := ix.Watch(ctx)
	for i := range 5 {
		res, err := ix.Apply(ctx, Batch{Upserts: []*Node{{ID: fmt.Sprint("n", i)}}})
		require.NoError(t, err)
		select {
		case v := <-ch:
			require.Equal(t, res.Version, v)
		case <-time.After(5 * time.Second):
			t.Fatalf("no signal for version %d", res.Version)
		}
		// An unchanged batch is not a commit and must not signal.
		_, err = ix.Apply(ctx, Batch{Upserts: []*Node{{ID: fmt.Sprint("n", i)}}})
		require.NoError(t, err)
		select {
		case v := <-ch:
			t.Fatalf("signal %d for an unchanged batch", v)
		default:
		}
	}
	// Behind: several commits coalesce into one signal with the newest version.
	for i := range 3 {
		_, err := ix.Apply(ctx, Batch{Deletes: []string{fmt.Sprint("n", i)}})
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool {
		select {
		case v := <-ch:
			return v == ix.Version()
		default:
			return false
		}
	}, 5*time.Second, time.Millisecond)
	cancel()
	select {
	case _, ok := <-ch:
		require.False(t, ok, "channel must close on cancel")
	case <-time.After(5 * time.Second):
		t.Fatal("watch did not stop on cancel")
	}
}

func TestSnapshotChangedClosesOnNextVersion(t *testing.T) {
	ix := NewIndex()
	s := ix.Snapshot()
	select {
	case <-s.Changed():
		t.Fatal("closed before any change")
	default:
	}
	_, err := ix.Apply(context.Background(), Batch{Upserts: []*Node{{ID: "a"}}})
	require.NoError(t, err)
	<-s.Changed()
}

func TestAggregateGroupsByAnyFields(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	ix := NewIndex()
	model := map[string]*Node{}
	b := randomBatch(r, model, 300)
	_, err := ix.Apply(context.Background(), b)
	require.NoError(t, err)
	applyModel(model, b)

	q := MustParseQuery("health!=down")
	got, err := ix.Snapshot().Aggregate(q, "metro", "health", "label.tier")
	require.NoError(t, err)
	want := map[[3]string]Group{}
	for _, n := range referenceQuery(sortedModel(model), q) {
		k := [3]string{n.Metro, n.Health.String(), n.Labels["tier"]}
		g := want[k]
		g.Key = k[:]
		g.Count++
		g.TrafficGbps += n.TrafficGbps
		g.CapacityGbps += n.CapacityGbps
		want[k] = g
	}
	require.Len(t, got, len(want))
	total := 0
	for i, g := range got {
		if i > 0 {
			require.Negative(t, slices.Compare(got[i-1].Key, g.Key), "groups out of order")
		}
		w := want[[3]string(g.Key)]
		require.Equal(t, w.Count, g.Count, "group %v", g.Key)
		require.InDelta(t, w.TrafficGbps, g.TrafficGbps, 1e-6)
		require.InDelta(t, w.CapacityGbps, g.CapacityGbps, 1e-6)
		total += g.Count
	}
	require.Equal(t, len(referenceQuery(sortedModel(model), q)), total)

	_, err = ix.Snapshot().Aggregate(Query{}, "colour")
	require.ErrorIs(t, err, ErrInvalidQuery)
	require.ErrorContains(t, err, `"colour"`)
}

func TestQueryOnEmptyIndexAndUnknownValues(t *testing.T) {
	ix := NewIndex()
	got, err := ix.Snapshot().Query(MustParseQuery("metro=DEN"))
	require.NoError(t, err)
	require.Empty(t, got)
	g, err := ix.Snapshot().Aggregate(Query{})
	require.NoError(t, err)
	require.Equal(t, []Group{{Key: []string{}}}, g)
	_, ok := ix.Snapshot().Get("nope")
	require.False(t, ok)
	_, err = ix.Snapshot().Query(Query{Terms: []Term{{Field: "health", Values: []string{"sick"}}}})
	require.ErrorIs(t, err, ErrInvalidQuery)
	require.ErrorIs(t, err, ErrUnknownValue)
}

func TestEnumsRejectUnknownValues(t *testing.T) {
	var n Node
	for _, c := range []struct{ js, want string }{
		{`{"id":"a","provenance":{"colour":{}}}`, `provenance: unknown value "colour" for field`},
		{`{"id":"a","state":"in-servce"}`, `unknown value "in-servce" for lifecycle state`},
		{`{"id":"a","health":"fine"}`, `unknown value "fine" for health`},
		{`{"id":"a","kind":"vax"}`, `unknown value "vax" for kind`},
	} {
		err := jsonUnmarshal(c.js, &n)
		require.ErrorContains(t, err, c.want)
		require.True(t, errors.Is(err, ErrUnknownValue), "%v", err)
	}
	require.NoError(t, jsonUnmarshal(`{"id":"a","state":"in-service","health":"down","kind":"vm"}`, &n))
	require.Equal(t, Node{ID: "a", State: StateInService, Health: HealthDown, Kind: KindVM}, n)
}

func TestCopyFieldCopiesExactlyOneField(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	for range 50 {
		src := randomNode(r, "x")
		var all Node
		for _, f := range Fields() {
			before := all
			CopyField(&all, src, f)
			// Only f moved: copying f from the untouched node undoes it.
			CopyField(&before, &all, f)
			require.True(t, before.Equal(&all), "CopyField(%s) changed another field", f)
		}
		all.ID, all.Provenance = src.ID, src.Provenance
		require.True(t, all.Equal(src), "copying every field reproduces the node")
	}
}

func TestNodeText(t *testing.T) {
	n := &Node{ID: "a", Kind: KindVM, Metro: "DEN", State: StateDrained, Health: HealthDown, TrafficGbps: 1, Labels: map[string]string{"k": "v"}}
	for f, want := range map[Field]string{FieldID: "a", FieldKind: "vm", FieldMetro: "DEN", FieldState: "drained", FieldHealth: "down", FieldRack: ""} {
		got, ok := n.Text(f)
		if !ok || got != want {
			t.Errorf("Text(%s) = %q, %v; want %q, true", f, got, ok, want)
		}
	}
	for _, f := range []Field{FieldVersions, FieldTraffic, FieldCapacity, FieldLabels, numFields} {
		if got, ok := n.Text(f); ok || got != "" {
			t.Errorf("Text(%s) = %q, %v; want no text", f, got, ok)
		}
	}
}

// TestConcurrentReadersSeeWholeVersions queries snapshots from several
// goroutines while batches are applied (run it with -race): every read
// must agree with the model of the version it saw, so a writer that
// changed a bitmap or slot a published version shares would show up as a
// race or a wrong answer.
func TestConcurrentReadersSeeWholeVersions(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	ix := NewIndex()
	model := map[string]*Node{}
	var versions sync.Map // version -> []*Node in ID order
	versions.Store(uint64(0), []*Node(nil))
	queries := make([]Query, 40)
	for i := range queries {
		queries[i] = randomQuery(r)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; ctx.Err() == nil; i++ {
				snap := ix.Snapshot()
				q := queries[i%len(queries)]
				got, err := snap.Query(q)
				if err != nil {
					errs <- err
					return
				}
				want, ok := versions.Load(snap.Version())
				if !ok {
					continue // published before the writer recorded it
				}
				if d := cmp.Diff(ids(referenceQuery(want.([]*Node), q)), ids(got)); d != "" {
					errs <- fmt.Errorf("version %d, query %q (-want +got):\n%s", snap.Version(), q, d)
					return
				}
			}
		}()
	}
	for range 60 {
		b := randomBatch(r, model, 1+r.IntN(400))
		applyModel(model, b)
		want := sortedModel(model)
		res, err := ix.Apply(context.Background(), b)
		require.NoError(t, err)
		versions.Store(res.Version, want)
	}
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestRenumberKeepsOrdinalsInIDOrder inserts nodes into a built index in
// reverse ID order until the index renumbers, and checks that the
// ordinals then follow ID order again and that queries still agree with
// the model before and after.
func TestRenumberKeepsOrdinalsInIDOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	ix := NewIndex()
	model := map[string]*Node{}
	var first Batch
	for i := range 800 {
		first.Upserts = append(first.Upserts, randomNode(r, fmt.Sprintf("n%05d", 2*i)))
	}
	applyModel(model, first)
	_, err := ix.Apply(context.Background(), first)
	require.NoError(t, err)
	inOrder := func() bool {
		var prev *Node
		for _, n := range ix.pub.Load().slots {
			if n != nil && prev != nil && n.ID < prev.ID {
				return false
			}
			if n != nil {
				prev = n
			}
		}
		return true
	}
	require.True(t, inOrder(), "after the build")
	renumbered := false
	for i := 799; i >= 0; i -= 10 {
		var b Batch
		for j := i; j > i-10; j-- {
			b.Upserts = append(b.Upserts, randomNode(r, fmt.Sprintf("n%05d", 2*j+1)))
		}
		b.Deletes = []string{fmt.Sprintf("n%05d", 2*(799-i))}
		applyModel(model, b)
		_, err := ix.Apply(context.Background(), b)
		require.NoError(t, err)
		if ix.pub.Load().late.IsEmpty() {
			renumbered = true
			require.True(t, inOrder(), "after renumbering at %d", i)
		}
		snap := ix.Snapshot()
		for range 10 {
			q := randomQuery(r)
			got, err := snap.Query(q)
			require.NoError(t, err)
			require.Empty(t, cmp.Diff(ids(referenceQuery(sortedModel(model), q)), ids(got)), "query %q", q)
		}
	}
	require.True(t, renumbered, "the index never renumbered")
	require.False(t, inOrder(), "inserts after the last renumbering should be out of order (else this test checks nothing)")
}

// TestInsertsPastTheGreatestIDKeepOrder grows a built index by nodes
// whose IDs sort after every other, with deletes in between: ordinals
// stay in ID order, so the index never renumbers (its database is the
// one built), and queries agree with the model.
func TestInsertsPastTheGreatestIDKeepOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	ix := NewIndex()
	model := map[string]*Node{}
	next := 0
	batch := func(n int) Batch {
		var b Batch
		for range n {
			b.Upserts = append(b.Upserts, randomNode(r, fmt.Sprintf("n%05d", next)))
			next++
		}
		return b
	}
	first := batch(200)
	applyModel(model, first)
	_, err := ix.Apply(context.Background(), first)
	require.NoError(t, err)
	built := ix.db
	for i := range 20 {
		b := batch(20) // 400 inserts in all, twice the first build
		b.Deletes = []string{fmt.Sprintf("n%05d", 3*i)}
		applyModel(model, b)
		_, err := ix.Apply(context.Background(), b)
		require.NoError(t, err)
		require.Zero(t, ix.pub.Load().late.GetCardinality(), "batch %d", i)
		q := randomQuery(r)
		got, err := ix.Snapshot().Query(q)
		require.NoError(t, err)
		require.Empty(t, cmp.Diff(ids(referenceQuery(sortedModel(model), q)), ids(got)), "query %q", q)
	}
	require.Same(t, built, ix.db, "the index renumbered")
	// One insert before the greatest ID breaks the order.
	b := Batch{Upserts: []*Node{randomNode(r, "n00000x")}}
	_, err = ix.Apply(context.Background(), b)
	require.NoError(t, err)
	require.EqualValues(t, 1, ix.pub.Load().late.GetCardinality())
}
