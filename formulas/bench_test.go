package formulas_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/formulas"
	"github.com/fleetkit/fleetkit/formulas/gitrepo"
	"github.com/fleetkit/fleetkit/formulas/internal/gittest"
)

// benchControl generates a control file of nFormulas formulas, 6 roles and
// 5 release states (each inheriting the previous), with constraints, exact
// tags and per-role overrides, and an in-memory repository of 30 version
// tags per formula.
func benchControl(tb testing.TB, nFormulas int) (string, *memRepos) {
	tb.Helper()
	repos := &memRepos{repos: map[string]*memRepo{}}
	var b strings.Builder
	b.WriteString("formulas:\n")
	for i := range nFormulas {
		loc := fmt.Sprintf("/srv/git/f%02d", i)
		fmt.Fprintf(&b, "  f%02d: %s\n", i, loc)
		r := &memRepo{branches: map[string]string{"main": fmt.Sprintf("%040x", i*1000+999)}}
		for maj := 1; maj <= 3; maj++ {
			for minor := range 5 {
				for patch := range 2 {
					r.tags = append(r.tags, formulas.Tag{
						Name:   fmt.Sprintf("v%d.%d.%d", maj, minor, patch),
						Commit: fmt.Sprintf("%040x", i*1000+maj*100+minor*10+patch),
					})
				}
			}
		}
		repos.repos[loc] = r
	}
	roles := []string{"edge", "mid", "shield", "dns", "origin", "lb"}
	b.WriteString("roles: [" + strings.Join(roles, ", ") + "]\nstates:\n")
	states := []string{"ga", "nrt", "canary", "trial", "dev"}
	for s, st := range states {
		fmt.Fprintf(&b, "  %s:\n", st)
		if s > 0 {
			fmt.Fprintf(&b, "    inherit: %s\n", states[s-1])
		}
		for i := range nFormulas {
			switch {
			case s == 0 && i%2 == 0:
				fmt.Fprintf(&b, "    f%02d: \"~%d.%d\"\n", i, 1+i%3, i%5)
			case s == 0:
				fmt.Fprintf(&b, "    f%02d: \">=1.2 <3\"\n", i)
			case (i+s)%4 == 0:
				fmt.Fprintf(&b, "    f%02d: v%d.%d.1\n", i, 1+s%3, s%5)
			}
		}
		b.WriteString("    roles:\n")
		for r, role := range roles {
			fmt.Fprintf(&b, "      %s:\n", role)
			fmt.Fprintf(&b, "        f%02d: \"^%d\"\n", (r*7+s)%nFormulas, 1+r%3)
			if role == "dns" {
				fmt.Fprintf(&b, "        f%02d: none\n", (s+1)%nFormulas)
			}
		}
	}
	return b.String(), repos
}

func BenchmarkResolveAll(b *testing.B) {
	src, repos := benchControl(b, 50)
	ctx := context.Background()
	ctl, err := formulas.Parse("bench.yaml", []byte(src))
	require.NoError(b, err)
	res, err := formulas.ResolveAll(ctx, ctl, formulas.ResolveOptions{Repos: repos})
	require.NoError(b, err)
	require.Len(b, res.Envs, 30)
	lock := res.Lock(nil)

	// naive: what a straightforward implementation does per environment:
	// read the control file and list and sort every repository's tags.
	b.Run("naive", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, ref := range ctl.Environments() {
				c, err := formulas.Parse("bench.yaml", []byte(src))
				if err != nil {
					b.Fatal(err)
				}
				if _, err := formulas.Resolve(ctx, c, ref.Role, ref.State, formulas.ResolveOptions{Repos: repos}); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	// constraints: one resolver for all environments, tags listed and
	// sorted once per repository, constraints parsed once.
	b.Run("constraints", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := formulas.ResolveAll(ctx, ctl, formulas.ResolveOptions{Repos: repos}); err != nil {
				b.Fatal(err)
			}
		}
	})
	// lock: offline, every pin from the lock.
	b.Run("lock", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := formulas.ResolveAll(ctx, ctl, formulas.ResolveOptions{Lock: lock, Frozen: true}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkBuild builds an environment of 5 formulas from real git
// repositories: first (empty cache: git archive of every formula), swap
// (trees cached, the live link alternates between two versions) and
// unchanged (the environment is already live).
func BenchmarkBuild(b *testing.B) {
	ctx := context.Background()
	const n = 5
	var envA, envB formulas.Env
	envA.Name, envB.Name = "edge-ga", "edge-ga"
	for i := range n {
		g := gittest.New(b)
		files := map[string]string{}
		for j := range 20 {
			files[fmt.Sprintf("state/file%02d.sls", j)] = strings.Repeat(fmt.Sprintf("line %d of formula %d\n", j, i), 50)
		}
		files["init.sls"] = "v1\n"
		c1 := g.Commit("v1", files)
		c2 := g.Commit("v2", map[string]string{"init.sls": "v2\n"})
		name := fmt.Sprintf("f%d", i)
		envA.Pins = append(envA.Pins, formulas.Pin{Formula: name, Repo: g.Dir, Commit: c1})
		envB.Pins = append(envB.Pins, formulas.Pin{Formula: name, Repo: g.Dir, Commit: c2})
	}
	repos, err := gitrepo.New(gitrepo.Config{Env: gittest.Env(b.TempDir())})
	require.NoError(b, err)

	b.Run("first", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			root, err := os.MkdirTemp("", "fleetkit-bench-")
			require.NoError(b, err)
			bl, err := formulas.NewBuilder(formulas.BuilderConfig{Root: root, Repos: repos})
			require.NoError(b, err)
			b.StartTimer()
			r, err := bl.Build(ctx, envA)
			if err != nil || r.Exported != n {
				b.Fatal(r, err)
			}
			b.StopTimer()
			os.RemoveAll(root)
			b.StartTimer()
		}
	})
	bl, err := formulas.NewBuilder(formulas.BuilderConfig{Root: b.TempDir(), Repos: repos})
	require.NoError(b, err)
	_, err = bl.Build(ctx, envB)
	require.NoError(b, err)
	_, err = bl.Build(ctx, envA)
	require.NoError(b, err)
	next := envB // the environment not live now
	b.Run("swap", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			env := next
			if next.Pins[0].Commit == envA.Pins[0].Commit {
				next = envB
			} else {
				next = envA
			}
			r, err := bl.Build(ctx, env)
			if err != nil || !r.Changed || r.Exported != 0 {
				b.Fatal(r, err)
			}
		}
	})
	b.Run("unchanged", func(b *testing.B) {
		_, err := bl.Build(ctx, envA)
		require.NoError(b, err)
		next = envB
		b.ReportAllocs()
		for b.Loop() {
			r, err := bl.Build(ctx, envA)
			if err != nil || r.Changed {
				b.Fatal(r, err)
			}
		}
	})
}
