package formulas_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/formulas"
)

// pinned is the part of a pin these tests compare.
type pinned struct{ Formula, Commit, Ref, Field string }

func pinsOf(e formulas.Env) []pinned {
	var out []pinned
	for _, p := range e.Pins {
		out = append(out, pinned{p.Formula, p.Commit, p.Ref, p.Rule.Field})
	}
	return out
}

func TestResolveAllRealGit(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	res, err := formulas.ResolveAll(ctx, f.control(), formulas.ResolveOptions{Repos: f.repos})
	require.NoError(t, err)

	var names []string
	for _, e := range res.Envs {
		names = append(names, e.Name)
	}
	require.Equal(t, []string{"dns-ga", "dns-nrt", "dns-trial", "edge-ga", "edge-nrt", "edge-trial"}, names)

	want := map[string][]pinned{
		// ~1.4 picks the highest 1.4.x, not the release candidate.
		"edge-ga": {
			{"nginx", f.c["nginx-1.4.1"], "v1.4.1", "states.ga.nginx"},
			{"app", f.c["app-3.2.0"], "v3.2.0", "states.ga.app"},
		},
		// dns does not get nginx.
		"dns-ga": {{"app", f.c["app-3.2.0"], "v3.2.0", "states.ga.app"}},
		// nrt inherits ga and overrides app.
		"edge-nrt": {
			{"nginx", f.c["nginx-1.4.1"], "v1.4.1", "states.ga.nginx"},
			{"app", f.c["app-3.3.0"], "v3.3.0", "states.nrt.app"},
		},
		"dns-nrt": {{"app", f.c["app-3.3.0"], "v3.3.0", "states.nrt.app"}},
		// trial inherits nrt (and so ga): its own default beats ga's dns
		// override, and edge follows main.
		"edge-trial": {
			{"nginx", f.c["nginx-1.5.0-rc.1"], "v1.5.0-rc.1", "states.trial.nginx"},
			{"app", f.c["app-main"], "main", "states.trial.roles.edge.app"},
		},
		"dns-trial": {
			{"nginx", f.c["nginx-1.5.0-rc.1"], "v1.5.0-rc.1", "states.trial.nginx"},
			{"app", f.c["app-3.3.0"], "v3.3.0", "states.nrt.app"},
		},
	}
	for name, w := range want {
		e, ok := res.Env(name)
		require.True(t, ok, name)
		if d := cmp.Diff(w, pinsOf(e)); d != "" {
			t.Errorf("%s (-want +got):\n%s", name, d)
		}
	}

	edgeTrial, _ := res.Env("edge-trial")
	app, _ := edgeTrial.Pin("app")
	require.True(t, app.Unpinned)
	require.Equal(t, "branch:main", app.Spec)
	require.Equal(t, []string{"app", "app.config"}, app.SLS)
	require.Equal(t, formulas.Rule{State: "trial", Role: "edge", Field: "states.trial.roles.edge.app", File: "control.yaml", Line: 23}, app.Rule)
	require.Equal(t, "control.yaml:23 states.trial.roles.edge.app", app.Rule.String())
	require.Len(t, res.Warnings, 1)
	require.Contains(t, res.Warnings[0], "formula app follows branch main (unpinned)")

	// The annotated tag resolves to its commit, not to the tag object.
	ctl := f.control(`nginx: "~1.4"`, `nginx: v1.4.0`)
	env, err := formulas.Resolve(ctx, ctl, "edge", "ga", formulas.ResolveOptions{Repos: f.repos})
	require.NoError(t, err)
	require.Equal(t, f.c["nginx-1.4.0"], env.Pins[0].Commit)

	// A commit, abbreviated, resolves to the full id.
	ctl = f.control(`app: v3.2.0`, fmt.Sprintf(`app: {commit: %s}`, f.c["app-3.3.0"][:10]))
	env, err = formulas.Resolve(ctx, ctl, "edge", "ga", formulas.ResolveOptions{Repos: f.repos})
	require.NoError(t, err)
	require.Equal(t, f.c["app-3.3.0"], env.Pins[1].Commit)
	require.Equal(t, "", env.Pins[1].Ref)
}

func TestResolveConstraints(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tests := []struct {
		constraint string
		want       string
	}{
		{`"~1.4"`, "v1.4.1"},
		{`">=1.3 <1.4"`, "v1.3.0"},
		{`"1.4.0"`, "v1.4.0"}, // an exact version is a tag
		{`"^1"`, "v1.4.1"},    // release candidates only when asked for
		{`">=1.5.0-rc.0"`, "v1.5.0-rc.1"},
		{`"*"`, "v1.4.1"},
		{`{constraint: "<=1.4.0"}`, "v1.4.0"},
	}
	for _, tt := range tests {
		t.Run(tt.constraint, func(t *testing.T) {
			want := tt.want
			if tt.constraint == `"1.4.0"` {
				// The tag is v1.4.0, not 1.4.0: an exact tag must exist.
				_, err := formulas.Resolve(ctx, f.control(`nginx: "~1.4"`, "nginx: "+tt.constraint), "edge", "ga", formulas.ResolveOptions{Repos: f.repos})
				require.ErrorIs(t, err, formulas.ErrTagNotFound)
				return
			}
			env, err := formulas.Resolve(ctx, f.control(`nginx: "~1.4"`, "nginx: "+tt.constraint), "edge", "ga", formulas.ResolveOptions{Repos: f.repos})
			require.NoError(t, err)
			require.Equal(t, want, env.Pins[0].Ref)
			require.Equal(t, f.c["nginx-"+strings.TrimPrefix(want, "v")], env.Pins[0].Commit)
		})
	}
}

func TestResolveErrorsRealGit(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tests := []struct {
		name     string
		repl     []string
		sentinel error
		msg      string
	}{
		{
			name:     "tag missing from repository",
			repl:     []string{"app: v3.2.0", "app: v3.2.9"},
			sentinel: formulas.ErrTagNotFound,
			msg:      fmt.Sprintf("control.yaml:9: states.ga.app: formula app: tag v3.2.9 is not in repository %s", f.app.Dir),
		},
		{
			name:     "tag that is a branch name",
			repl:     []string{"app: v3.2.0", "app: main"},
			sentinel: formulas.ErrTagNotFound,
			msg:      fmt.Sprintf("control.yaml:9: states.ga.app: formula app: tag main is not in repository %s (for a branch write {branch: main, unpinned: true})", f.app.Dir),
		},
		{
			name:     "constraint matching no tag",
			repl:     []string{`nginx: "~1.4"`, `nginx: "~2.0"`},
			sentinel: formulas.ErrNoMatchingTag,
			msg:      fmt.Sprintf(`control.yaml:8: states.ga.nginx: formula nginx: constraint "~2.0" matches none of the 4 version tags of %s (highest: v1.5.0-rc.1, v1.4.1, v1.4.0)`, f.nginx.Dir),
		},
		{
			name:     "missing branch",
			repl:     []string{"{branch: main,", "{branch: develop,"},
			sentinel: formulas.ErrRefNotFound,
			msg:      fmt.Sprintf("control.yaml:23: states.trial.roles.edge.app: formula app: branch develop is not in repository %s", f.app.Dir),
		},
		{
			name:     "missing commit",
			repl:     []string{"app: v3.2.0", "app: {commit: deadbeefdeadbeef}"},
			sentinel: formulas.ErrRefNotFound,
			msg:      fmt.Sprintf("control.yaml:9: states.ga.app: formula app: commit deadbeefdeadbeef is not in repository %s", f.app.Dir),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := formulas.ResolveAll(ctx, f.control(tt.repl...), formulas.ResolveOptions{Repos: f.repos})
			require.ErrorIs(t, err, tt.sentinel)
			var list formulas.ErrorList
			require.True(t, errors.As(err, &list))
			// Reported once, although several environments inherit it.
			require.Len(t, list, 1, err.Error())
			require.Equal(t, tt.msg, list[0].Error())
		})
	}
}

func TestResolveUnknownRoleOrState(t *testing.T) {
	f := newFixture(t)
	_, err := formulas.Resolve(context.Background(), f.control(), "shield", "ga", formulas.ResolveOptions{Repos: f.repos})
	require.ErrorIs(t, err, formulas.ErrUnknownRole)
	_, err = formulas.Resolve(context.Background(), f.control(), "edge", "canary", formulas.ResolveOptions{Repos: f.repos})
	require.ErrorIs(t, err, formulas.ErrUnknownState)
}

func TestForNode(t *testing.T) {
	f := newFixture(t)
	res, err := formulas.ResolveAll(context.Background(), f.control(), formulas.ResolveOptions{Repos: f.repos})
	require.NoError(t, err)

	env, err := res.ForNode(&disposition.Node{ID: "edge-den-01", Role: "edge", ReleaseState: "trial"})
	require.NoError(t, err)
	require.Equal(t, "edge-trial", env.Name)
	require.Equal(t, f.c["app-main"], env.Pins[1].Commit)

	_, err = res.ForNode(&disposition.Node{ID: "mid-den-01", Role: "mid", ReleaseState: "ga"})
	require.ErrorIs(t, err, formulas.ErrNoEnvironment)
	require.ErrorContains(t, err, `node mid-den-01 (role "mid", release state "ga")`)
	_, err = res.ForNode(nil)
	require.ErrorIs(t, err, formulas.ErrNoEnvironment)
}

// TestResolveInheritanceProperty checks, over generated control files, that
// every pin is chosen by the last applicable rule: walking the inheritance
// chain from its root, state defaults then the role's overrides.
func TestResolveInheritanceProperty(t *testing.T) {
	const nFormulas, nStates = 6, 5
	roles := []string{"edge", "mid", "dns"}
	repos := &memRepos{repos: map[string]*memRepo{}}
	commitOf := func(f, tag string) string {
		return fmt.Sprintf("%040x", len(f)*1000+int(tag[1]-'0')*10+int(tag[3]-'0'))
	}
	var b strings.Builder
	b.WriteString("formulas:\n")
	for i := range nFormulas {
		name := fmt.Sprintf("f%d", i)
		loc := "/repos/" + name
		r := &memRepo{}
		for maj := 1; maj <= 3; maj++ {
			for minor := 0; minor <= 2; minor++ {
				tag := fmt.Sprintf("v%d.%d.0", maj, minor)
				r.tags = append(r.tags, formulas.Tag{Name: tag, Commit: commitOf(name, tag)})
			}
		}
		repos.repos[loc] = r
		fmt.Fprintf(&b, "  %s: %s\n", name, loc)
	}
	b.WriteString("roles: [edge, mid, dns]\nstates:\n")

	for seed := range 40 {
		src := b.String()
		var body strings.Builder
		// rule[state][role or ""][formula] = version ("none" removes)
		type key struct{ state, role, formula string }
		rules := map[key]string{}
		parent := map[string]string{}
		x := uint64(seed)*2654435761 + 1
		rnd := func(n int) int { x = x*6364136223846793005 + 1442695040888963407; return int(x>>33) % n }
		for s := range nStates {
			st := fmt.Sprintf("s%d", s)
			fmt.Fprintf(&body, "  %s:\n", st)
			if s > 0 && rnd(3) > 0 {
				parent[st] = fmt.Sprintf("s%d", rnd(s))
				fmt.Fprintf(&body, "    inherit: %s\n", parent[st])
			}
			version := func() string {
				if rnd(5) == 0 {
					return "none"
				}
				return fmt.Sprintf("v%d.%d.0", 1+rnd(3), rnd(3))
			}
			for i := range nFormulas {
				if rnd(2) == 0 {
					v := version()
					rules[key{st, "", fmt.Sprintf("f%d", i)}] = v
					fmt.Fprintf(&body, "    f%d: %s\n", i, v)
				}
			}
			body.WriteString("    roles:\n")
			for _, r := range roles {
				fmt.Fprintf(&body, "      %s:\n", r)
				for i := range nFormulas {
					if rnd(4) == 0 {
						v := version()
						rules[key{st, r, fmt.Sprintf("f%d", i)}] = v
						fmt.Fprintf(&body, "        f%d: %s\n", i, v)
					}
				}
				if !strings.HasSuffix(body.String(), ":\n        ") {
					// An empty role mapping is written as {}.
					s := body.String()
					if strings.HasSuffix(s, r+":\n") {
						body.Reset()
						body.WriteString(strings.TrimSuffix(s, "\n") + " {}\n")
					}
				}
			}
		}
		ctl, err := formulas.Parse("gen.yaml", []byte(src+body.String()))
		require.NoError(t, err, src+body.String())
		res, err := formulas.ResolveAll(context.Background(), ctl, formulas.ResolveOptions{Repos: repos})
		require.NoError(t, err)
		for _, env := range res.Envs {
			var chain []string
			for s := env.State; s != ""; s = parent[s] {
				chain = append(chain, s)
			}
			slices.Reverse(chain)
			for i := range nFormulas {
				fname := fmt.Sprintf("f%d", i)
				want := ""
				for _, s := range chain {
					if v, ok := rules[key{s, "", fname}]; ok {
						want = v
					}
					if v, ok := rules[key{s, env.Role, fname}]; ok {
						want = v
					}
				}
				pin, ok := env.Pin(fname)
				if want == "" || want == "none" {
					require.False(t, ok, "seed %d %s %s: got %v, want none", seed, env.Name, fname, pin)
					continue
				}
				require.True(t, ok, "seed %d %s %s: missing, want %s", seed, env.Name, fname, want)
				require.Equal(t, want, pin.Ref, "seed %d %s %s", seed, env.Name, fname)
				require.Equal(t, commitOf(fname, want), pin.Commit)
			}
		}
	}
}

func TestResolverConcurrent(t *testing.T) {
	src, repos := benchControl(t, 12)
	ctl, err := formulas.Parse("bench.yaml", []byte(src))
	require.NoError(t, err)
	ctx := context.Background()
	want, err := formulas.ResolveAll(ctx, ctl, formulas.ResolveOptions{Repos: repos})
	require.NoError(t, err)

	r := formulas.NewResolver(ctl, formulas.ResolveOptions{Repos: repos})
	refs := ctl.Environments()
	got := make([]formulas.Env, len(refs))
	errs := make([]error, len(refs))
	var wg sync.WaitGroup
	for i, ref := range refs {
		wg.Go(func() { got[i], errs[i] = r.Resolve(ctx, ref.Role, ref.State) })
	}
	wg.Wait()
	for i := range refs {
		require.NoError(t, errs[i])
	}
	if d := cmp.Diff(want.Envs, got); d != "" {
		t.Fatalf("concurrent resolution differs (-want +got):\n%s", d)
	}
}
