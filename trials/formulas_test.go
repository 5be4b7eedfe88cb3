package trials

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/formulas"
)

// fakeRepos serves in-memory repositories: location -> tag -> commit.
type fakeRepos map[string]map[string]string

type fakeRepo map[string]string

func (r fakeRepos) Open(ctx context.Context, location string) (formulas.Repo, error) {
	tags, ok := r[location]
	if !ok {
		return nil, fmt.Errorf("no repository %s", location)
	}
	return fakeRepo(tags), nil
}

func (r fakeRepo) Tags(ctx context.Context) ([]formulas.Tag, error) {
	var out []formulas.Tag
	for name, c := range r {
		out = append(out, formulas.Tag{Name: name, Commit: c})
	}
	return out, nil
}

func (r fakeRepo) ResolveRef(ctx context.Context, ref string) (string, error) {
	if c, ok := r[strings.TrimPrefix(ref, "refs/tags/")]; ok {
		return c, nil
	}
	return "", fmt.Errorf("%s: %w", ref, formulas.ErrRefNotFound)
}

func (r fakeRepo) Export(ctx context.Context, commit, subdir, dst string) error {
	return fmt.Errorf("not in this fake")
}

func commit(s string) string { return strings.Repeat(s, 40)[:40] }

const testControl = `formulas:
  nginx: /repos/nginx
  app: /repos/app
roles: [edge, dns]
states:
  ga:
    nginx: "~1.4"
    app: v3.2.0
  nrt:
    inherit: ga
    app: v3.3.0
`

var testRepos = fakeRepos{
	"/repos/nginx": {"v1.4.0": commit("a"), "v1.4.1": commit("b"), "v1.5.0-rc.1": commit("c")},
	"/repos/app":   {"v3.2.0": commit("d"), "v3.3.0": commit("e")},
}

func TestPlanEnvironments(t *testing.T) {
	// One edge server stays in ga, one edge and one dns server move to nrt.
	var edgeGA, edgeNRT, dnsNRT string
	snap, _ := testFleet(t, func(n *disposition.Node) {
		switch {
		case n.Role == "edge" && edgeGA == "":
			edgeGA, n.ReleaseState = n.ID, "ga"
		case n.Role == "edge" && edgeNRT == "":
			edgeNRT, n.ReleaseState = n.ID, "nrt"
		case n.Role == "dns" && dnsNRT == "":
			dnsNRT, n.ReleaseState = n.ID, "nrt"
		}
	})
	file := fmt.Sprintf("name: nginx-rc\nowner: me\nexpiry: 2030-07-01\nformulas:\n  nginx: v1.5.0-rc.1\ntargets:\n  servers: [%s, %s, %s]\n  max: 5\n", edgeGA, edgeNRT, dnsNRT)
	tr, err := Parse("t.yaml", []byte(file))
	require.NoError(t, err)
	p, err := Plan(context.Background(), tr, snap, Options{Now: planNow, Formulas: &FormulasInput{
		File: "formulas.yaml", Control: []byte(testControl), Resolve: formulas.ResolveOptions{Repos: testRepos},
	}})
	require.NoError(t, err)
	b, c, d, e := commit("b")[:12], commit("c")[:12], commit("d")[:12], commit("e")[:12]
	want := []EnvChange{
		{Role: "dns", From: "nrt", Servers: 1, Before: "dns-nrt", After: "dns-trial-nginx-rc", Formulas: []FormulaChange{
			{Formula: "nginx", From: "constraint:~1.4@" + b, To: "tag:v1.5.0-rc.1@" + c},
			{Formula: "app", From: "tag:v3.3.0@" + e, To: "tag:v3.2.0@" + d},
		}},
		{Role: "edge", From: "ga", Servers: 1, Before: "edge-ga", After: "edge-trial-nginx-rc", Formulas: []FormulaChange{
			{Formula: "nginx", From: "constraint:~1.4@" + b, To: "tag:v1.5.0-rc.1@" + c},
		}},
		{Role: "edge", From: "nrt", Servers: 1, Before: "edge-nrt", After: "edge-trial-nginx-rc", Formulas: []FormulaChange{
			{Formula: "nginx", From: "constraint:~1.4@" + b, To: "tag:v1.5.0-rc.1@" + c},
			{Formula: "app", From: "tag:v3.3.0@" + e, To: "tag:v3.2.0@" + d},
		}},
	}
	require.Empty(t, cmp.Diff(want, p.Environments))
}

func TestWithTrialStateErrors(t *testing.T) {
	for _, tc := range []struct{ file, want string }{
		{"inherit: beta\n", `t.yaml:5: inherit: no release state "beta" in formulas.yaml`},
		{"formulas:\n  bind: v1.0.0\n", `t.yaml:6: formulas.bind: no formula "bind" in formulas.yaml`},
	} {
		tr, err := Parse("t.yaml", []byte("name: x\nowner: me\nexpiry: 2030-07-01\ntargets: {servers: [a], max: 1}\n"+tc.file))
		require.NoError(t, err)
		_, err = WithTrialState("formulas.yaml", []byte(testControl), tr)
		require.EqualError(t, err, tc.want)
	}
	tr, err := Parse("t.yaml", []byte("name: x\nowner: me\nexpiry: 2030-07-01\ntargets: {servers: [a], max: 1}\nformulas: {nginx: v1.4.0}\ninherit: nrt\n"))
	require.NoError(t, err)
	ctl, err := WithTrialState("formulas.yaml", []byte(testControl), tr)
	require.NoError(t, err)
	st, ok := ctl.State("trial-x")
	require.True(t, ok)
	require.Equal(t, "nrt", st.Inherit)
	env, err := formulas.Resolve(context.Background(), ctl, "edge", "trial-x", formulas.ResolveOptions{Repos: testRepos})
	require.NoError(t, err)
	pin, _ := env.Pin("nginx")
	require.Equal(t, commit("a"), pin.Commit)
	pin, _ = env.Pin("app")
	require.Equal(t, commit("e"), pin.Commit)
}

func TestWithTrialStates(t *testing.T) {
	parse := func(name, extra string) *Trial {
		t.Helper()
		tr, err := Parse(name+".yaml", []byte("name: "+name+"\nowner: me\nexpiry: 2030-07-01\ntargets: {servers: [a], max: 1}\n"+extra))
		require.NoError(t, err)
		return tr
	}
	x := parse("x", "formulas: {nginx: v1.4.0}\ninherit: nrt\n")
	y := parse("y", "formulas: {app: v3.2.0}\n")

	ctl, err := WithTrialStates("formulas.yaml", []byte(testControl), x, y)
	require.NoError(t, err)
	ctx := context.Background()
	for _, tc := range []struct {
		state, formula, commit string
	}{
		{"trial-x", "nginx", commit("a")},
		{"trial-x", "app", commit("e")}, // inherited from nrt
		{"trial-y", "app", commit("d")},
	} {
		env, err := formulas.Resolve(ctx, ctl, "edge", tc.state, formulas.ResolveOptions{Repos: testRepos})
		require.NoError(t, err, tc.state)
		pin, ok := env.Pin(tc.formula)
		require.True(t, ok, "%s %s", tc.state, tc.formula)
		require.Equal(t, tc.commit, pin.Commit, "%s %s", tc.state, tc.formula)
	}

	none, err := WithTrialStates("formulas.yaml", []byte(testControl))
	require.NoError(t, err)
	_, ok := none.State("trial-x")
	require.False(t, ok)

	_, err = WithTrialStates("formulas.yaml", []byte(testControl), x, parse("x", ""))
	require.ErrorContains(t, err, `x.yaml:1: name: formulas.yaml already declares release state "trial-x"`)
}
