package trials

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/testkit/fleet"
)

var planNow = time.Date(2030, 6, 1, 8, 0, 0, 0, time.UTC)

func testFleet(t testing.TB, mutate ...func(*disposition.Node)) (*disposition.Snapshot, []*disposition.Node) {
	t.Helper()
	f, err := fleet.Generate(fleet.Config{Size: 400, Seed: 7})
	require.NoError(t, err)
	for _, n := range f.Nodes {
		for _, m := range mutate {
			m(n)
		}
	}
	ix := disposition.NewIndex()
	_, err = ix.Apply(context.Background(), disposition.Batch{Upserts: f.Nodes})
	require.NoError(t, err)
	return ix.Snapshot(), f.Nodes
}

// expected computes the servers the testdata trial selects, the slow way.
func expected(nodes []*disposition.Node) []string {
	var ids []string
	for _, n := range nodes {
		if n.Cluster == "adl1-c01" || n.ID == "edge-bom1-c01-001.fleet.example" || (n.Metro == "ADL" && n.Role == "edge") {
			ids = append(ids, n.ID)
		}
	}
	slices.Sort(ids)
	return ids
}

func TestPlanSelectsTargetsAndPlansTheRollout(t *testing.T) {
	snap, nodes := testFleet(t)
	tr, err := Parse("nginx-rc.yaml", readTestdata(t, "nginx-rc.yaml"))
	require.NoError(t, err)
	p, err := Plan(context.Background(), tr, snap, Options{Now: planNow})
	require.NoError(t, err)
	want := expected(nodes)
	require.NotEmpty(t, want)
	require.LessOrEqual(t, len(want), 40)
	require.Equal(t, want, p.Servers)
	require.Equal(t, "trial-nginx-rc", p.ReleaseState)
	for _, n := range nodes {
		if slices.Contains(want, n.ID) {
			require.Equal(t, n.ReleaseState, p.Previous[n.ID])
		}
	}
	require.Len(t, p.Previous, len(want))
	require.Empty(t, p.Conflicts)
	require.NotNil(t, p.Rollout)
	var planned []string
	for _, w := range p.Rollout.Waves {
		require.False(t, w.Start.Before(planNow))
		planned = append(planned, w.Servers...)
	}
	for _, s := range p.Rollout.Skipped {
		planned = append(planned, s.ID)
	}
	for _, id := range planned {
		require.Contains(t, want, id, "the rollout touches a server outside the trial")
	}
	require.NotEmpty(t, p.Rollout.Waves)
	require.Contains(t, p.RolloutSpec, "select: id="+strings.Join(want, ","))
	require.Contains(t, p.RolloutSpec, "component: nginx")
	require.Contains(t, p.RolloutSpec, "version: 1.25.3")
	require.Contains(t, p.RolloutSpec, "name: trial nginx-rc")
}

func TestPlanConflicts(t *testing.T) {
	base := string(readTestdata(t, "nginx-rc.yaml"))
	for _, tc := range []struct {
		name   string
		file   string
		mutate func(*disposition.Node)
		active []Active
		kinds  []ConflictKind
		want   []string
	}{
		{
			name:  "larger than max",
			file:  strings.Replace(base, "max: 40", "max: 2", 1),
			kinds: []ConflictKind{ConflictTooLarge},
			want:  []string{"nginx-rc.yaml:14: targets.max: the targets select %d servers, more than the maximum of 2"},
		},
		{
			name: "frozen servers",
			file: base,
			mutate: func(n *disposition.Node) {
				if n.ID == "edge-bom1-c01-001.fleet.example" {
					n.ReleaseState = FrozenState
				}
			},
			kinds: []ConflictKind{ConflictFrozen},
			want:  []string{"nginx-rc.yaml:11: targets.servers: 1 servers are frozen (release state frozen): edge-bom1-c01-001.fleet.example"},
		},
		{
			name:   "another trial",
			file:   base,
			active: []Active{{Name: "other", Servers: []string{"edge-bom1-c01-001.fleet.example", "not-in-this-trial"}}, {Name: "nginx-rc", Servers: []string{"edge-bom1-c01-001.fleet.example"}}},
			kinds:  []ConflictKind{ConflictOverlap},
			want:   []string{"nginx-rc.yaml:11: targets.servers: 1 servers are already in trial other: edge-bom1-c01-001.fleet.example"},
		},
		{
			name:  "global blackout",
			file:  strings.Replace(base, "2030-12-24T00:00:00Z", "2030-06-05T00:00:00Z", 1),
			kinds: []ConflictKind{ConflictBlackout},
			want:  []string{"nginx-rc.yaml:21: rollout.blackouts[0]: the trial (2030-06-01T08:00:00Z to 2030-06-08T08:00:00Z) overlaps the global blackout 2030-06-05T00:00:00Z to 2030-12-27T00:00:00Z (holidays) on %d of its servers"},
		},
		{
			name: "blackout of a metro without trial servers",
			file: strings.Replace(base, "    - from: 2030-12-24T00:00:00Z", "    - metro: FRA\n      from: 2030-06-05T00:00:00Z", 1),
		},
		{
			name: "all at once",
			file: strings.Replace(strings.Replace(base, "max: 40", "max: 1", 1), "2030-12-24T00:00:00Z", "2030-06-08T07:59:59Z", 1),
			mutate: func(n *disposition.Node) {
				if n.Cluster == "adl1-c01" {
					n.ReleaseState = FrozenState
				}
			},
			active: []Active{{Name: "b", Servers: []string{"edge-bom1-c01-001.fleet.example"}}},
			kinds:  []ConflictKind{ConflictTooLarge, ConflictFrozen, ConflictOverlap, ConflictBlackout},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var muts []func(*disposition.Node)
			if tc.mutate != nil {
				muts = append(muts, tc.mutate)
			}
			snap, nodes := testFleet(t, muts...)
			tr, err := Parse("nginx-rc.yaml", []byte(tc.file))
			require.NoError(t, err)
			p, err := Plan(context.Background(), tr, snap, Options{Now: planNow, Active: tc.active})
			require.NotNil(t, p)
			if len(tc.kinds) == 0 {
				require.NoError(t, err)
				require.Empty(t, p.Conflicts)
				return
			}
			require.ErrorIs(t, err, ErrConflict)
			var ce *ConflictError
			require.True(t, errors.As(err, &ce))
			var kinds []ConflictKind
			for _, c := range ce.Conflicts {
				kinds = append(kinds, c.Kind)
			}
			require.Equal(t, tc.kinds, kinds)
			require.Equal(t, ce.Conflicts, p.Conflicts)
			n := len(expected(nodes))
			for i, w := range tc.want {
				if strings.Contains(w, "%d") {
					w = fmt.Sprintf(w, n)
				}
				require.Equal(t, w, ce.Conflicts[i].String())
				require.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestPlanInvalidTargets(t *testing.T) {
	snap, _ := testFleet(t)
	head := "name: x\nowner: me\nexpiry: 2030-07-01\n"
	for _, tc := range []struct{ file, want string }{
		{head + "targets:\n  servers: [nope]\n  max: 3\n", `t.yaml:5: targets.servers[0]: no server "nope" in the fleet`},
		{head + "targets:\n  clusters:\n    - adl1-c01\n    - zzz-c99\n  max: 3\n", `t.yaml:7: targets.clusters[1]: no servers in cluster "zzz-c99"`},
		{head + "targets:\n  query: metro=ZZZ\n  max: 3\n", `t.yaml:5: targets.query: "metro=ZZZ" matches no server`},
		{"name: x\nowner: me\nexpiry: 2030-05-01\ntargets: {servers: [edge-bom1-c01-001.fleet.example], max: 3}\n", "t.yaml:3: expiry: 2030-05-01T00:00:00Z is not after the start 2030-06-01T08:00:00Z"},
	} {
		tr, err := Parse("t.yaml", []byte(tc.file))
		require.NoError(t, err)
		_, err = Plan(context.Background(), tr, snap, Options{Now: planNow})
		require.EqualError(t, err, tc.want)
		require.ErrorIs(t, err, ErrInvalid)
	}
}

// TestPlanConflictProperties checks, over random trials and trials in
// force, that overlap and size conflicts are reported exactly when they
// hold, and that the servers are exactly the union of the targets.
func TestPlanConflictProperties(t *testing.T) {
	snap, nodes := testFleet(t)
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(k int) []string {
		var out []string
		for _, i := range rng.Perm(len(nodes))[:k] {
			out = append(out, nodes[i].ID)
		}
		return out
	}
	for i := range 200 {
		mine := pick(1 + rng.IntN(8))
		max := 1 + rng.IntN(8)
		file := fmt.Sprintf("name: t%d\nowner: me\nexpiry: 2030-07-01\ntargets:\n  max: %d\n  servers: [%s]\n", i, max, strings.Join(mine, ", "))
		tr, err := Parse("t.yaml", []byte(file))
		require.NoError(t, err)
		var active []Active
		overlaps := map[string]bool{}
		for j := range rng.IntN(3) {
			a := Active{Name: fmt.Sprintf("a%d", j), Servers: pick(1 + rng.IntN(60))}
			active = append(active, a)
			for _, id := range a.Servers {
				if slices.Contains(mine, id) {
					overlaps[a.Name] = true
				}
			}
		}
		p, err := Plan(context.Background(), tr, snap, Options{Now: planNow, Active: active})
		require.NotNil(t, p)
		want := slices.Sorted(slices.Values(mine))
		require.Equal(t, want, p.Servers)
		got := map[string]bool{}
		tooLarge := false
		for _, c := range p.Conflicts {
			switch c.Kind {
			case ConflictOverlap:
				got[c.Trial] = true
				for _, id := range c.Servers {
					require.Contains(t, mine, id)
				}
			case ConflictTooLarge:
				tooLarge = true
			}
		}
		require.Equal(t, overlaps, got, "trial %d", i)
		require.Equal(t, len(mine) > max, tooLarge)
		require.Equal(t, len(p.Conflicts) > 0, err != nil)
	}
}
