package sources_test

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/sources"
)

// refSource is the reference model's view of one source.
type refSource struct {
	mem      *memSource
	auth     bool
	maxStale time.Duration
	good     map[string]sources.Observation
	since    map[string]map[disposition.Field]time.Time
	failing  bool
	lastGood time.Time
}

// TestMergeMatchesReference drives an aggregator through random rounds
// of fetches and failures and checks, after every round, that the index
// holds exactly what a direct, slow implementation of the rules says:
// existence from the authoritative sources with a grace period,
// per-field precedence, per-key labels and versions, expiry past
// max_stale, and provenance with first-seen times and stale marks.
func TestMergeMatchesReference(t *testing.T) {
	for seed := range uint64(40) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { checkAgainstReference(t, seed) })
	}
}

var (
	refFields = []disposition.Field{
		disposition.FieldMetro, disposition.FieldRole, disposition.FieldState,
		disposition.FieldHealth, disposition.FieldTraffic, disposition.FieldLabels,
		disposition.FieldVersions,
	}
	refMetros = []string{"DEN", "NYC"}
	refStates = []disposition.State{disposition.StateInService, disposition.StateDrained}
	refHealth = []disposition.Health{disposition.HealthHealthy, disposition.HealthDown, disposition.HealthUnknown}
)

func randomObservations(r *rand.Rand, names []string, p float64) []*sources.Observation {
	var out []*sources.Observation
	for _, id := range names {
		if r.Float64() >= p {
			continue
		}
		o := sources.Observe(id)
		for _, f := range refFields {
			if r.IntN(3) == 0 {
				continue
			}
			switch f {
			case disposition.FieldMetro:
				o.Metro(refMetros[r.IntN(2)])
			case disposition.FieldRole:
				o.Role([]string{"edge", "mid"}[r.IntN(2)])
			case disposition.FieldState:
				o.State(refStates[r.IntN(2)])
			case disposition.FieldHealth:
				o.Health(refHealth[r.IntN(3)])
			case disposition.FieldTraffic:
				o.Traffic(float64(r.IntN(2)))
			case disposition.FieldLabels:
				o.Known = o.Known.With(f)
				o.Values.Labels = map[string]string{}
				for _, k := range []string{"x", "y"} {
					if r.IntN(2) == 0 {
						o.Values.Labels[k] = fmt.Sprint(r.IntN(2))
					}
				}
			case disposition.FieldVersions:
				o.Version([]string{"app", "nginx"}[r.IntN(2)], fmt.Sprintf("1.%d", r.IntN(2)))
			}
		}
		out = append(out, o)
	}
	return out
}

func checkAgainstReference(t *testing.T, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 99))
	clk := newClock()
	universe := make([]string, 12)
	for i := range universe {
		universe[i] = fmt.Sprintf("n%02d", i)
	}
	withOrphans := append(slices.Clone(universe), "orphan-a", "orphan-b")

	refs := make([]*refSource, 4)
	var regs []sources.Registered
	for i := range refs {
		rs := &refSource{
			mem:      newMem(fmt.Sprintf("s%d", i)),
			auth:     i < 2,
			maxStale: time.Duration(1+r.IntN(4)) * time.Minute,
		}
		refs[i] = rs
		regs = append(regs, sources.Registered{Source: rs.mem, Authoritative: rs.auth,
			Interval: time.Minute, MaxStale: rs.maxStale, Retries: -1})
	}
	prec := map[disposition.Field][]string{}
	for _, f := range refFields {
		if r.IntN(2) == 0 {
			continue
		}
		var names []string
		for _, i := range r.Perm(len(refs))[:1+r.IntN(len(refs))] {
			names = append(names, refs[i].mem.name)
		}
		prec[f] = names
	}
	order := func(f disposition.Field) []*refSource {
		var out []*refSource
		for _, name := range prec[f] {
			out = append(out, refs[name[1]-'0'])
		}
		for _, rs := range refs {
			if !slices.Contains(out, rs) {
				out = append(out, rs)
			}
		}
		return out
	}
	const grace = 2 * time.Minute
	agg, ix := newAgg(t, clk, sources.AggregatorConfig{Precedence: prec, RemovalGuard: 1, Grace: grace}, regs...)

	want := map[string]*disposition.Node{}
	missing := map[string]time.Time{}
	for round := range 30 {
		if round > 0 {
			clk.Advance([]time.Duration{30 * time.Second, time.Minute, 3 * time.Minute}[r.IntN(3)])
		}
		now := clk.Now()
		for _, rs := range refs {
			if round > 0 && r.IntN(4) == 0 {
				rs.mem.fail(errDown)
				rs.failing = true
				continue
			}
			names, p := withOrphans, 0.6
			if rs.auth {
				names, p = universe, 0.8
			}
			obs := randomObservations(r, names, p)
			rs.mem.set(obs...)
			good := map[string]sources.Observation{}
			since := map[string]map[disposition.Field]time.Time{}
			for _, o := range obs {
				good[o.ID] = *o
				since[o.ID] = map[disposition.Field]time.Time{}
				prev, had := rs.good[o.ID]
				for _, f := range refFields {
					if !o.Known.Has(f) {
						continue
					}
					if had && prev.Known.Has(f) && refEqual(&prev.Values, &o.Values, f) {
						since[o.ID][f] = rs.since[o.ID][f]
					} else {
						since[o.ID][f] = now
					}
				}
			}
			rs.good, rs.since, rs.failing, rs.lastGood = good, since, false, now
		}
		err := agg.Refresh(t.Context())
		t.Logf("round %d at %v: %v", round, now, err)

		// The reference merge.
		exists := map[string]bool{}
		for _, rs := range refs {
			if rs.auth {
				for id := range rs.good {
					exists[id] = true
				}
			}
		}
		expired := func(rs *refSource) bool { return rs.failing && now.Sub(rs.lastGood) > rs.maxStale }
		next := map[string]*disposition.Node{}
		for id := range exists {
			delete(missing, id)
			n := &disposition.Node{ID: id}
			for _, f := range refFields {
				var contrib []*refSource
				for _, rs := range order(f) {
					if o, ok := rs.good[id]; ok && o.Known.Has(f) && !expired(rs) {
						contrib = append(contrib, rs)
					}
				}
				if len(contrib) == 0 {
					continue
				}
				o := contrib[0].good[id]
				origin := &disposition.Origin{Source: contrib[0].mem.name, ObservedAt: contrib[0].since[id][f], Stale: contrib[0].failing}
				switch f {
				case disposition.FieldLabels, disposition.FieldVersions:
					m := map[string]string{}
					for _, rs := range slices.Backward(contrib) {
						v := rs.good[id].Values
						if f == disposition.FieldLabels {
							maps.Copy(m, v.Labels)
						} else {
							maps.Copy(m, v.Versions)
						}
						origin.Stale = origin.Stale || rs.failing
						if at := rs.since[id][f]; at.After(origin.ObservedAt) {
							origin.ObservedAt = at
						}
					}
					if f == disposition.FieldLabels {
						n.Labels = m
					} else {
						n.Versions = m
					}
				default:
					refCopy(n, &o.Values, f)
				}
				n.Provenance[f] = origin
			}
			next[id] = n
		}
		for id, old := range want {
			if exists[id] {
				continue
			}
			since, ok := missing[id]
			if !ok {
				since = now
				missing[id] = now
			}
			if now.Sub(since) >= grace {
				delete(missing, id)
				continue
			}
			c := *old
			for f, o := range c.Provenance {
				if o != nil {
					s := *o
					s.Stale = true
					c.Provenance[f] = &s
				}
			}
			next[id] = &c
		}
		want = next

		got := map[string]*disposition.Node{}
		_ = ix.Snapshot().Scan(disposition.Query{}, func(n *disposition.Node) bool {
			got[n.ID] = n
			return true
		})
		if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("round %d: index differs from the reference (-want +got):\n%s", round, diff)
		}
		for _, rs := range refs {
			if rs.auth {
				continue
			}
			orphans := 0
			for id := range rs.good {
				if !exists[id] {
					orphans++
				}
			}
			require.Equal(t, orphans, statusOf(t, agg, rs.mem.name).Orphans, "round %d, %s", round, rs.mem.name)
		}
	}
}

func refEqual(a, b *disposition.Node, f disposition.Field) bool {
	c, d := &disposition.Node{}, &disposition.Node{}
	refCopy(c, a, f)
	refCopy(d, b, f)
	return cmp.Equal(c, d, cmpopts.EquateEmpty())
}

func refCopy(dst, src *disposition.Node, f disposition.Field) {
	switch f {
	case disposition.FieldMetro:
		dst.Metro = src.Metro
	case disposition.FieldRole:
		dst.Role = src.Role
	case disposition.FieldState:
		dst.State = src.State
	case disposition.FieldHealth:
		dst.Health = src.Health
	case disposition.FieldTraffic:
		dst.TrafficGbps = src.TrafficGbps
	case disposition.FieldLabels:
		dst.Labels = src.Labels
	case disposition.FieldVersions:
		dst.Versions = src.Versions
	}
}
