package testkit_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/refd"
	"github.com/fleetkit/fleetkit/rollout"
	"github.com/fleetkit/fleetkit/sources"
	"github.com/fleetkit/fleetkit/testkit"
	"github.com/fleetkit/fleetkit/testkit/fleet"
)

func genFleet(t testing.TB, size int, seed int64) *fleet.Fleet {
	t.Helper()
	f, err := fleet.Generate(fleet.Config{Size: size, Seed: seed})
	require.NoError(t, err)
	return f
}

// inProcessRefd serves a refd over f's nodes in process, with an admin
// and a read-only token.
func inProcessRefd(t *testing.T, f *fleet.Fleet, wrap func(http.Handler) http.Handler) testkit.API {
	t.Helper()
	ix := disposition.NewIndex()
	_, err := ix.Apply(context.Background(), disposition.Batch{Upserts: f.Nodes})
	require.NoError(t, err)
	store, err := refd.OpenStore(filepath.Join(t.TempDir(), "refd.db"))
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	admin, read := "admin-secret", "read-secret"
	srv, err := refd.New(refd.Config{
		Index: ix, Store: store, Planner: refd.RolloutPlanner(),
		Tokens: []refd.Token{
			{Name: "admin", Hash: refd.HashToken(admin), Scopes: []refd.Scope{refd.ScopeAdmin}},
			{Name: "reader", Hash: refd.HashToken(read), Scopes: []refd.Scope{refd.ScopeRead}},
		},
	})
	require.NoError(t, err)
	var h http.Handler = srv
	if wrap != nil {
		h = wrap(h)
	}
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	return testkit.API{URL: hs.URL, Token: admin, ReadToken: read}
}

func rules(vs []testkit.Violation) []string {
	var out []string
	for _, v := range vs {
		if !slices.Contains(out, v.Rule) {
			out = append(out, v.Rule)
		}
	}
	return out
}

func TestCheckAPIPassesRefd(t *testing.T) {
	api := inProcessRefd(t, genFleet(t, 300, 4), nil)
	vs, err := testkit.CheckAPI(context.Background(), api)
	require.NoError(t, err)
	require.Empty(t, vs)
	api.PageSize = 7
	testkit.VerifyAPI(t, api)
}

// TestCheckAPIFindsBrokenContracts breaks one promise of the API at a
// time in front of a real refd and expects CheckAPI to name it.
func TestCheckAPIFindsBrokenContracts(t *testing.T) {
	f := genFleet(t, 120, 5)
	cases := []struct {
		name string
		want string
		wrap func(h http.Handler) http.Handler
	}{
		{"no ETag", testkit.RuleAPIETag, func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				r.Header.Del("If-None-Match")
				h.ServeHTTP(headerDropper{w, "ETag"}, r)
			})
		}},
		{"cursor ignored", testkit.RuleAPIPagination, func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				q := r.URL.Query()
				if q.Get("cursor") != "" {
					q.Del("cursor")
					r.URL.RawQuery = q.Encode()
				}
				h.ServeHTTP(w, r)
			})
		}},
		{"plain-text 404", testkit.RuleAPIContentType, func(h http.Handler) http.Handler {
			mux := http.NewServeMux()
			mux.Handle("/", h)
			mux.HandleFunc("/v1/no-such-route", http.NotFound)
			return mux
		}},
		{"no auth challenge", testkit.RuleAPIAuth, func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				h.ServeHTTP(headerDropper{w, "WWW-Authenticate"}, r)
			})
		}},
		{"reader may create rollouts", testkit.RuleAPIScope, func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Authorization") == "Bearer read-secret" {
					r.Header.Set("Authorization", "Bearer admin-secret")
				}
				h.ServeHTTP(w, r)
			})
		}},
		{"no Allow", testkit.RuleAPIMethod, func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				h.ServeHTTP(headerDropper{w, "Allow"}, r)
			})
		}},
		{"unhealthy", testkit.RuleAPIHealth, func(h http.Handler) http.Handler {
			mux := http.NewServeMux()
			mux.Handle("/", h)
			mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
			return mux
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			vs, err := testkit.CheckAPI(context.Background(), inProcessRefd(t, f, tc.wrap))
			require.NoError(t, err)
			require.Contains(t, rules(vs), tc.want, "violations: %v", vs)
		})
	}
}

// headerDropper removes one header from the answers it writes.
type headerDropper struct {
	http.ResponseWriter
	header string
}

func (d headerDropper) WriteHeader(code int) {
	d.ResponseWriter.Header().Del(d.header)
	d.ResponseWriter.WriteHeader(code)
}

func (d headerDropper) Write(b []byte) (int, error) {
	d.ResponseWriter.Header().Del(d.header)
	return d.ResponseWriter.Write(b)
}

// staticSource returns the same observations on every fetch.
type staticSource struct {
	name string
	obs  []sources.Observation
}

func (s *staticSource) Name() string { return s.name }

func (s *staticSource) Fetch(context.Context) ([]sources.Observation, error) { return s.obs, nil }

// randomSources splits what f knows between three sources with random
// field sets, disagreeing values, overlapping labels and orphans.
func randomSources(r *rand.Rand, f *fleet.Fleet) []testkit.SourceObservations {
	inv := testkit.SourceObservations{Name: "inventory", Authoritative: true}
	cmdb := testkit.SourceObservations{Name: "cmdb"}
	mon := testkit.SourceObservations{Name: "monitoring"}
	for _, n := range f.Nodes {
		if r.IntN(20) > 0 { // a few nodes are in no inventory
			o := sources.Observe(n.ID).Metro(n.Metro).Site(n.Site).Cluster(n.Cluster).Region(n.Region).Timezone(n.Timezone)
			if r.IntN(2) == 0 {
				o.Role(n.Role).Kind(n.Kind).State(n.State)
			}
			if r.IntN(3) == 0 {
				o.Label("owner", "inventory").Label("tier", "1")
			}
			inv.Observations = append(inv.Observations, *o)
		}
		if r.IntN(2) == 0 {
			o := sources.Observe(n.ID).Role("cmdb-" + n.Role).State(disposition.State(r.IntN(7))).ReleaseState(n.ReleaseState)
			if r.IntN(2) == 0 {
				o.Label("owner", "cmdb").Label("rack", n.Rack).Version("app", "1.0.0")
			}
			cmdb.Observations = append(cmdb.Observations, *o)
		}
		if r.IntN(3) > 0 {
			o := sources.Observe(n.ID).Health(disposition.Health(r.IntN(4))).Traffic(float64(r.IntN(4000)) / 100).Capacity(n.CapacityGbps)
			if r.IntN(2) == 0 {
				o.Version("app", "1.1.0").Version("agent", "7")
			}
			mon.Observations = append(mon.Observations, *o)
		}
	}
	mon.Observations = append(mon.Observations, *sources.Observe("orphan.fleet.example").Health(disposition.HealthDown))
	return []testkit.SourceObservations{inv, cmdb, mon}
}

func aggregate(t *testing.T, srcs []testkit.SourceObservations, prec map[disposition.Field][]string) *disposition.Index {
	t.Helper()
	ix := disposition.NewIndex()
	var regs []sources.Registered
	for _, s := range srcs {
		regs = append(regs, sources.Registered{Source: &staticSource{s.Name, s.Observations}, Authoritative: s.Authoritative, Interval: time.Hour})
	}
	agg, err := sources.NewAggregator(ix, sources.AggregatorConfig{Precedence: prec}, regs...)
	require.NoError(t, err)
	require.NoError(t, agg.Refresh(context.Background()))
	return ix
}

// TestCheckIndexAgreesWithAggregator is a property test: over random
// sources and precedences, the aggregator's index passes CheckIndex, and
// CheckIndex catches every kind of disagreement planted in it.
func TestCheckIndexAgreesWithAggregator(t *testing.T) {
	f := genFleet(t, 400, 9)
	names := []string{"inventory", "cmdb", "monitoring"}
	for seed := range uint64(6) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 1))
			srcs := randomSources(r, f)
			prec := map[disposition.Field][]string{}
			for _, field := range []disposition.Field{disposition.FieldRole, disposition.FieldState, disposition.FieldLabels, disposition.FieldVersions, disposition.FieldHealth} {
				p := slices.Clone(names)
				r.Shuffle(len(p), func(i, j int) { p[i], p[j] = p[j], p[i] })
				prec[field] = p[:1+r.IntN(len(p))]
			}
			ix := aggregate(t, srcs, prec)
			snap := ix.Snapshot()
			require.Empty(t, testkit.CheckIndex(snap, prec, srcs...))

			// Another precedence is another merge: CheckIndex must notice.
			other := map[disposition.Field][]string{disposition.FieldRole: {"inventory", "cmdb"}}
			if !slices.Equal(prec[disposition.FieldRole], other[disposition.FieldRole]) {
				require.Contains(t, rules(testkit.CheckIndex(snap, other, srcs...)), testkit.RuleIndexField)
			}

			// Plant one disagreement of each kind.
			nodes, err := snap.Query(disposition.Query{})
			require.NoError(t, err)
			require.Greater(t, len(nodes), 2)
			changed := nodes[0].Clone()
			changed.Metro = "XXX"
			_, err = ix.Apply(context.Background(), disposition.Batch{
				Upserts: []*disposition.Node{changed, {ID: "extra.fleet.example"}},
				Deletes: []string{nodes[1].ID},
			})
			require.NoError(t, err)
			vs := testkit.CheckIndex(ix.Snapshot(), prec, srcs...)
			require.ElementsMatch(t, []string{testkit.RuleIndexField, testkit.RuleIndexExtra, testkit.RuleIndexMissing}, rules(vs), "%v", vs)
		})
	}
}

// planSpec is a spec with every kind of constraint, used by the plan
// tests and the end-to-end test.
const planSpec = `
name: cdn-app-3.2.0
component: cdn-app
version: 3.2.0
select: role=edge
deploy: 20m
budgets: {global: 10%, region: 30%, metro: 20%, site: 25%, cluster: 25%, metros_per_region: 2}
capacity: {headroom: 0.2}
windows: [{start: "21:00", end: "07:00"}]
blackouts:
  - {region: eu-west, from: 2026-01-06T00:00:00Z, to: 2026-01-07T00:00:00Z, reason: freeze}
canary: {count: 2, bake: 1h}
growth: {steps: [1, 5, "5%", "20%"], bake: 30m}
`

func TestCheckPlan(t *testing.T) {
	f := genFleet(t, 2000, 4)
	snap, err := testkit.SnapshotOf(context.Background(), f.Nodes)
	require.NoError(t, err)
	spec, err := rollout.ParseSpec("spec.yaml", []byte(planSpec))
	require.NoError(t, err)
	plan, err := rollout.NewPlan(context.Background(), spec, snap, f.Config.Start)
	require.NoError(t, err)
	require.Greater(t, len(plan.Waves), 3)
	require.Empty(t, testkit.CheckPlan(spec, snap, plan))
	testkit.VerifyPlan(t, spec, snap, plan)

	// The same server in two waves breaks coverage, named by wave.
	last := &plan.Waves[len(plan.Waves)-1]
	last.Servers = append(last.Servers, plan.Waves[0].Servers[0])
	vs := testkit.CheckPlan(spec, snap, plan)
	require.Contains(t, rules(vs), "coverage", "%v", vs)
	require.Contains(t, fmt.Sprint(vs), "wave ")
}
