package plancheck_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/rollout"
	"github.com/fleetkit/fleetkit/testkit/fleet"
	"github.com/fleetkit/fleetkit/testkit/plancheck"
)

const spec = `
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

type fixture struct {
	spec  *rollout.Spec
	snap  *disposition.Snapshot
	fleet *fleet.Fleet
	plan  *rollout.Plan
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	f, err := fleet.Generate(fleet.Config{Size: 3000, Seed: 4})
	require.NoError(t, err)
	ix := disposition.NewIndex()
	_, err = ix.Apply(context.Background(), disposition.Batch{Upserts: f.Nodes})
	require.NoError(t, err)
	s, err := rollout.ParseSpec("spec.yaml", []byte(spec))
	require.NoError(t, err)
	snap := ix.Snapshot()
	p, err := rollout.NewPlan(context.Background(), s, snap, f.Config.Start)
	require.NoError(t, err)
	require.Greater(t, len(p.Waves), 5)
	return fixture{spec: s, snap: snap, fleet: f, plan: p}
}

// clone deep-copies a plan through JSON.
func clone(t *testing.T, p *rollout.Plan) *rollout.Plan {
	b, err := json.Marshal(p)
	require.NoError(t, err)
	var out rollout.Plan
	require.NoError(t, json.Unmarshal(b, &out))
	return &out
}

func rules(vs []plancheck.Violation) []string {
	var out []string
	for _, v := range vs {
		if !slices.Contains(out, v.Rule) {
			out = append(out, v.Rule)
		}
	}
	slices.Sort(out)
	return out
}

func TestValidPlanPasses(t *testing.T) {
	fx := newFixture(t)
	require.Empty(t, plancheck.Check(fx.spec, fx.snap, fx.plan))
	plancheck.Verify(t, fx.spec, fx.snap, fx.plan)
	// A plan survives a JSON round trip unchanged in meaning.
	require.Empty(t, plancheck.Check(fx.spec, fx.snap, clone(t, fx.plan)))
}

// serversOf returns the IDs of in-service, healthy targets of metro m
// with cluster c (any cluster when c is "").
func serversOf(fx fixture, m, c string) []string {
	var out []string
	for _, n := range fx.fleet.Nodes {
		if n.Metro == m && (c == "" || n.Cluster == c) && n.Role == "edge" && n.State == disposition.StateInService && n.Health == disposition.HealthHealthy {
			out = append(out, n.ID)
		}
	}
	return out
}

// moveInto moves servers from wherever they are in p into wave w.
func moveInto(p *rollout.Plan, w int, ids []string) {
	set := map[string]bool{}
	for _, id := range ids {
		set[id] = true
	}
	for i := range p.Waves {
		p.Waves[i].Servers = slices.DeleteFunc(p.Waves[i].Servers, func(s string) bool { return set[s] })
	}
	p.Skipped = slices.DeleteFunc(p.Skipped, func(s rollout.Skip) bool { return set[s.ID] })
	p.Unschedulable = slices.DeleteFunc(p.Unschedulable, func(s rollout.Skip) bool { return set[s.ID] })
	p.Waves[w].Servers = append(p.Waves[w].Servers, ids...)
}

func TestMutationsAreCaught(t *testing.T) {
	fx := newFixture(t)
	last := len(fx.plan.Waves) - 1
	bigWave := 0
	for i, w := range fx.plan.Waves {
		if len(w.Servers) > len(fx.plan.Waves[bigWave].Servers) {
			bigWave = i
		}
	}
	for _, tc := range []struct {
		name   string
		mutate func(p *rollout.Plan)
		want   string
	}{
		{"duplicate server", func(p *rollout.Plan) {
			p.Waves[last].Servers = append(p.Waves[last].Servers, p.Waves[0].Servers[0])
		}, plancheck.RuleCoverage},
		{"dropped server", func(p *rollout.Plan) {
			p.Waves[last].Servers = p.Waves[last].Servers[1:]
		}, plancheck.RuleCoverage},
		{"non-target", func(p *rollout.Plan) {
			p.Waves[last].Servers = append(p.Waves[last].Servers, "nobody.example")
		}, plancheck.RuleCoverage},
		{"skip without reason", func(p *rollout.Plan) {
			p.Skipped[0].Reason = ""
		}, plancheck.RuleSkip},
		{"overlapping waves", func(p *rollout.Plan) {
			p.Waves[1].Start = p.Waves[0].Start.Add(time.Minute)
			p.Waves[1].End = p.Waves[1].Start.Add(time.Duration(p.Deploy) + time.Duration(p.Waves[1].Bake))
		}, plancheck.RuleOrder},
		{"short bake", func(p *rollout.Plan) {
			p.Waves[2].End = p.Waves[2].End.Add(-time.Minute)
		}, plancheck.RuleOrder},
		{"outside window", func(p *rollout.Plan) {
			w := &p.Waves[last]
			shift := 12 * time.Hour
			w.Start, w.End = w.Start.Add(shift), w.End.Add(shift)
			p.End = w.End
		}, plancheck.RuleWindow},
		{"cluster budget", func(p *rollout.Plan) {
			n := fx.plan.Waves[bigWave]
			c := ""
			for name := range n.Domains.Cluster {
				c = name
				break
			}
			var metro string
			for _, nd := range fx.fleet.Nodes {
				if nd.Cluster == c {
					metro = nd.Metro
					break
				}
			}
			moveInto(p, bigWave, serversOf(fx, metro, c))
		}, plancheck.RuleBudget},
		{"growth exceeded", func(p *rollout.Plan) {
			moveInto(p, 1, p.Waves[last].Servers[:1])
		}, plancheck.RuleGrowth},
		{"wrong domain counts", func(p *rollout.Plan) {
			for k := range p.Waves[0].Domains.Metro {
				p.Waves[0].Domains.Metro[k]++
			}
		}, plancheck.RuleReport},
		{"unhealthy scheduled", func(p *rollout.Plan) {
			for _, n := range fx.fleet.Nodes {
				if n.Role == "edge" && n.Health == disposition.HealthDown {
					moveInto(p, last, []string{n.ID})
					return
				}
			}
			t.Fatal("no down edge server in the fleet")
		}, plancheck.RuleEligible},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := clone(t, fx.plan)
			tc.mutate(p)
			vs := plancheck.Check(fx.spec, fx.snap, p)
			require.Contains(t, rules(vs), tc.want, "violations: %v", vs)
		})
	}
}

func TestBlackoutAndCapacityCaught(t *testing.T) {
	fx := newFixture(t)
	// Find an eu-west wave and pretend it ran during the blackout.
	var w *rollout.Wave
	p := clone(t, fx.plan)
	for i := range p.Waves {
		if p.Waves[i].Domains.Region["eu-west"] > 0 {
			w = &p.Waves[i]
			break
		}
	}
	require.NotNil(t, w, "no wave touches eu-west")
	bo := fx.spec.Blackouts[0].From.Add(2 * time.Hour)
	d := w.End.Sub(w.Start)
	w.Start, w.End = bo, bo.Add(d)
	require.Contains(t, rules(plancheck.Check(fx.spec, fx.snap, p)), plancheck.RuleBlackout)

	// Tighten the headroom so the plan's own waves no longer fit.
	tight := *fx.spec
	tight.Capacity = &rollout.Capacity{Headroom: 0.9}
	vs := plancheck.Check(&tight, fx.snap, fx.plan)
	require.Contains(t, rules(vs), plancheck.RuleCapacity, "violations: %v", vs)
}

func TestInvalidSpecReported(t *testing.T) {
	fx := newFixture(t)
	bad := *fx.spec
	bad.Budgets.Metro = &rollout.Amount{Count: -3}
	vs := plancheck.Check(&bad, fx.snap, fx.plan)
	require.Equal(t, []string{plancheck.RuleSpec}, rules(vs))
	require.Equal(t, fmt.Sprintf("%s: budgets.metro: count -3 is negative", plancheck.RuleSpec), vs[0].String())
}
