package formulas_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/formulas"
)

// snapshotOf builds a disposition snapshot with count servers per
// (role, release state).
func snapshotOf(t *testing.T, counts map[[2]string]int) *disposition.Snapshot {
	t.Helper()
	var nodes []*disposition.Node
	for k, n := range counts {
		for i := range n {
			nodes = append(nodes, &disposition.Node{
				ID: fmt.Sprintf("%s-%s-%03d", k[0], k[1], i), Role: k[0], ReleaseState: k[1],
				State: disposition.StateInService,
			})
		}
	}
	ix := disposition.NewIndex()
	_, err := ix.Apply(context.Background(), disposition.Batch{Upserts: nodes})
	require.NoError(t, err)
	return ix.Snapshot()
}

func TestDiffControls(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	a := f.control()
	// b: trial gets nginx v1.4.1 (what ga already resolves to), nrt's app
	// constraint is rewritten to the same commit, and a role is added.
	b := f.control(
		"roles: [edge, dns]", "roles: [edge, dns, mid]",
		`app: "~3.3"`, `app: ">=3.3 <3.4"`,
		"nginx: v1.5.0-rc.1", "nginx: v1.4.1",
	)
	d, err := formulas.DiffControls(ctx, a, b, formulas.ResolveOptions{Repos: f.repos})
	require.NoError(t, err)

	type row struct {
		env      string
		kind     formulas.ChangeKind
		formulas []string
	}
	var got []row
	for _, e := range d.Envs {
		r := row{env: e.Env, kind: e.Kind}
		for _, fc := range e.Formulas {
			r.formulas = append(r.formulas, fc.Formula)
		}
		got = append(got, r)
	}
	require.Equal(t, []row{
		{"dns-trial", formulas.EnvChanged, []string{"nginx"}},
		{"edge-trial", formulas.EnvChanged, []string{"nginx"}},
		{"mid-ga", formulas.EnvAdded, []string{"app", "nginx"}},
		{"mid-nrt", formulas.EnvAdded, []string{"app", "nginx"}},
		{"mid-trial", formulas.EnvAdded, []string{"app", "nginx"}},
	}, got, "the nrt rewrite resolves to the same commit and changes nothing")

	edgeTrial := d.Envs[1]
	require.Equal(t, f.c["nginx-1.5.0-rc.1"], edgeTrial.Formulas[0].Old.Commit)
	require.Equal(t, f.c["nginx-1.4.1"], edgeTrial.Formulas[0].New.Commit)
	require.Nil(t, d.Envs[2].Formulas[0].Old)

	snap := snapshotOf(t, map[[2]string]int{
		{"edge", "trial"}: 3, {"dns", "trial"}: 2, {"edge", "ga"}: 7, {"mid", "ga"}: 4, {"mid", "canary"}: 1,
	})
	require.NoError(t, d.CountServers(snap))
	require.Equal(t, 2, d.Envs[0].Servers)
	require.Equal(t, 3, d.Envs[1].Servers)
	require.Equal(t, 4, d.Envs[2].Servers)
	require.Equal(t, 0, d.Envs[3].Servers)
	require.Equal(t, 9, d.Servers)
	require.Contains(t, d.String(), "edge-trial changed (3 servers)\n  nginx: v1.5.0-rc.1@"+f.c["nginx-1.5.0-rc.1"][:12]+" -> v1.4.1@"+f.c["nginx-1.4.1"][:12]+"\n")
	require.Contains(t, d.String(), "5 environments, 9 servers\n")

	// Diffing locks gives the same, and the reverse diff swaps sides.
	ra, err := formulas.ResolveAll(ctx, a, formulas.ResolveOptions{Repos: f.repos})
	require.NoError(t, err)
	rb, err := formulas.ResolveAll(ctx, b, formulas.ResolveOptions{Repos: f.repos})
	require.NoError(t, err)
	back := formulas.DiffLocks(rb.Lock(nil), ra.Lock(nil))
	require.Len(t, back.Envs, 5)
	require.Equal(t, formulas.EnvRemoved, back.Envs[2].Kind)
	require.Equal(t, f.c["nginx-1.4.1"], back.Envs[1].Formulas[0].Old.Commit)
	require.Empty(t, formulas.DiffLocks(ra.Lock(nil), ra.Lock(nil)).Envs)
	require.Equal(t, "no changes\n", formulas.DiffLocks(ra.Lock(nil), ra.Lock(nil)).String())
}

// TestDiffLocksProperty checks DiffLocks against a direct comparison over
// random edits of a lock: an environment is listed exactly when some
// formula's repository, subdirectory or commit differs.
func TestDiffLocksProperty(t *testing.T) {
	commit := func(i int) string { return fmt.Sprintf("%040x", i) }
	x := uint64(7)
	rnd := func(n int) int { x = x*6364136223846793005 + 1442695040888963407; return int(x>>33) % n }
	base := &formulas.Lock{Version: 1, Environments: map[string]*formulas.LockEnv{}}
	for _, r := range []string{"edge", "mid"} {
		for _, s := range []string{"ga", "trial"} {
			e := &formulas.LockEnv{Role: r, State: s, Pins: map[string]formulas.LockPin{}}
			for i := range 4 {
				e.Pins[fmt.Sprintf("f%d", i)] = formulas.LockPin{Repo: "/r", Spec: "tag:v1", Commit: commit(i)}
			}
			base.Environments[formulas.EnvName(r, s)] = e
		}
	}
	for range 200 {
		b := base.Clone()
		for _, name := range []string{"edge-ga", "edge-trial", "mid-ga", "mid-trial"} {
			e := b.Environments[name]
			f := fmt.Sprintf("f%d", rnd(5))
			switch rnd(6) {
			case 0:
				p := e.Pins[f]
				p.Commit = commit(100 + rnd(3))
				p.Repo = "/r"
				e.Pins[f] = p
			case 1:
				delete(e.Pins, f)
			case 2: // spec change only: not material
				p, ok := e.Pins[f]
				if ok {
					p.Spec = "constraint:~1"
					e.Pins[f] = p
				}
			case 3:
				delete(b.Environments, name)
			}
		}
		d := formulas.DiffLocks(base, b)
		listed := map[string]bool{}
		for _, e := range d.Envs {
			listed[e.Env] = true
		}
		for name, ea := range base.Environments {
			eb := b.Environments[name]
			differs := eb == nil || len(ea.Pins) != len(eb.Pins)
			if !differs {
				for f, pa := range ea.Pins {
					pb, ok := eb.Pins[f]
					if !ok || pa.Commit != pb.Commit || pa.Repo != pb.Repo || pa.Subdir != pb.Subdir {
						differs = true
					}
				}
			}
			require.Equal(t, differs, listed[name], name)
		}
	}
}
