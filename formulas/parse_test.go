package formulas_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/formulas"
)

func TestParseFileExample(t *testing.T) {
	ctl, err := formulas.ParseFile("testdata/control.yaml")
	require.NoError(t, err)

	require.Equal(t, []string{"edge", "mid", "shield", "dns"}, ctl.Roles)
	var names []string
	for _, f := range ctl.Formulas {
		names = append(names, f.Name)
	}
	require.Equal(t, []string{"nginx", "cdn-app", "bind", "node-exporter"}, names)

	nginx, ok := ctl.Formula("nginx")
	require.True(t, ok)
	require.Equal(t, "nginx", nginx.Subdir)
	require.Equal(t, []string{"nginx"}, nginx.SLS)
	cdn, _ := ctl.Formula("cdn-app")
	require.Equal(t, []string{"cdn-app", "cdn-app.config"}, cdn.SLS)
	ne, _ := ctl.Formula("node-exporter")
	abs, err := filepath.Abs("formulas/node-exporter")
	require.NoError(t, err)
	require.Equal(t, abs, ne.Repo, "relative repository paths resolve against the control file's directory")

	trial, ok := ctl.State("trial")
	require.True(t, ok)
	require.Equal(t, "nrt", trial.Inherit)
	require.InDelta(t, 0.05, trial.Share, 1e-12)
	require.Equal(t, formulas.Spec{Kind: formulas.SpecTag, Value: "v1.5.0-rc.1"}, trial.Versions[0].Spec)
	require.Equal(t, formulas.Spec{Kind: formulas.SpecBranch, Value: "main", Unpinned: true}, trial.Roles["edge"][0].Spec)
	require.Equal(t, formulas.Spec{Kind: formulas.SpecCommit, Value: "5d0c7a1b2e"}, trial.Roles["shield"][0].Spec)
	require.Equal(t, "states.trial.roles.edge.cdn-app", trial.Roles["edge"][0].Field)
	require.Equal(t, 38, trial.Roles["edge"][0].Line)

	envs := ctl.Environments()
	require.Len(t, envs, 12)
	require.Equal(t, formulas.EnvRef{Name: "dns-ga", Role: "dns", State: "ga"}, envs[0])
}

func TestParseSpec(t *testing.T) {
	tests := []struct {
		in   string
		want formulas.Spec
		err  string
	}{
		{in: "v1.4.2", want: formulas.Spec{Kind: formulas.SpecTag, Value: "v1.4.2"}},
		{in: "1.4.2", want: formulas.Spec{Kind: formulas.SpecTag, Value: "1.4.2"}},
		{in: "v1.5.0-rc.1", want: formulas.Spec{Kind: formulas.SpecTag, Value: "v1.5.0-rc.1"}},
		{in: "release-2024-05", want: formulas.Spec{Kind: formulas.SpecTag, Value: "release-2024-05"}},
		{in: "~3.1", want: formulas.Spec{Kind: formulas.SpecConstraint, Value: "~3.1"}},
		{in: ">=1.4 <2", want: formulas.Spec{Kind: formulas.SpecConstraint, Value: ">=1.4 <2"}},
		{in: "^2", want: formulas.Spec{Kind: formulas.SpecConstraint, Value: "^2"}},
		{in: "1.4", want: formulas.Spec{Kind: formulas.SpecConstraint, Value: "1.4"}},
		{in: "1.x", want: formulas.Spec{Kind: formulas.SpecConstraint, Value: "1.x"}},
		{in: "*", want: formulas.Spec{Kind: formulas.SpecConstraint, Value: "*"}},
		{in: "none", want: formulas.Spec{Kind: formulas.SpecNone}},
		{in: strings.Repeat("ab", 20), want: formulas.Spec{Kind: formulas.SpecCommit, Value: strings.Repeat("ab", 20)}},
		{in: strings.Repeat("AB", 20), want: formulas.Spec{Kind: formulas.SpecCommit, Value: strings.Repeat("ab", 20)}},
		{in: "", err: "empty version"},
		{in: ">=x.y", err: `bad semver constraint ">=x.y"`},
		{in: "a..b", err: `"a..b" is neither a version, a constraint nor a tag name: name contains a forbidden sequence`},
		{in: "-rf", err: `"-rf" is neither a version, a constraint nor a tag name: name starts with '-'`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := formulas.ParseSpec(tt.in)
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

// validBase is a valid control file the error table edits.
const validBase = `formulas:
  nginx: /srv/git/nginx
  app: /srv/git/app
roles: [edge, dns]
states:
  ga:
    nginx: v1.0.0
    app: "~1.0"
  trial:
    inherit: ga
    nginx: v1.1.0
`

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		sentinel error
		msgs     []string // every error message, in order
	}{
		{
			name:     "unknown formula",
			in:       strings.Replace(validBase, "    app: \"~1.0\"\n", "    app: \"~1.0\"\n    ngnix: v1\n", 1),
			sentinel: formulas.ErrUnknownFormula,
			msgs:     []string{`control.yaml:9: states.ga.ngnix: unknown formula "ngnix" (not in formulas)`},
		},
		{
			name:     "unknown formula in role override",
			in:       validBase + "    roles:\n      edge:\n        varnish: v2.0.0\n",
			sentinel: formulas.ErrUnknownFormula,
			msgs:     []string{`control.yaml:14: states.trial.roles.edge.varnish: unknown formula "varnish" (not in formulas)`},
		},
		{
			name:     "unknown inherited state",
			in:       strings.Replace(validBase, "inherit: ga", "inherit: gaa", 1),
			sentinel: formulas.ErrUnknownState,
			msgs:     []string{`control.yaml:10: states.trial.inherit: unknown release state "gaa"`},
		},
		{
			name:     "unknown role",
			in:       validBase + "    roles:\n      egde:\n        nginx: v2.0.0\n",
			sentinel: formulas.ErrUnknownRole,
			msgs:     []string{`control.yaml:13: states.trial.roles.egde: unknown role "egde" (not in roles)`},
		},
		{
			name: "inheritance cycle",
			in: strings.Replace(validBase, "  ga:\n", "  ga:\n    inherit: nrt\n", 1) +
				"  nrt:\n    inherit: trial\n",
			sentinel: formulas.ErrInheritanceCycle,
			msgs:     []string{`control.yaml:7: states.ga.inherit: inheritance cycle: ga -> nrt -> trial -> ga`},
		},
		{
			name:     "self inheritance",
			in:       strings.Replace(validBase, "inherit: ga", "inherit: trial", 1),
			sentinel: formulas.ErrInheritanceCycle,
			msgs:     []string{`control.yaml:10: states.trial.inherit: inheritance cycle: trial -> trial`},
		},
		{
			name:     "duplicate formula key",
			in:       strings.Replace(validBase, "  app: /srv/git/app\n", "  app: /srv/git/app\n  nginx: /srv/git/nginx2\n", 1),
			sentinel: formulas.ErrDuplicateKey,
			msgs:     []string{`control.yaml:4: formulas.nginx: duplicate key "nginx" (first at line 2)`},
		},
		{
			name:     "duplicate version key",
			in:       strings.Replace(validBase, "    nginx: v1.1.0\n", "    nginx: v1.1.0\n    nginx: v1.2.0\n", 1),
			sentinel: formulas.ErrDuplicateKey,
			msgs:     []string{`control.yaml:12: states.trial.nginx: duplicate key "nginx" (first at line 11)`},
		},
		{
			name:     "duplicate role",
			in:       strings.Replace(validBase, "[edge, dns]", "[edge, dns, edge]", 1),
			sentinel: formulas.ErrDuplicateKey,
			msgs:     []string{`control.yaml:4: roles[2]: duplicate role "edge" (first at line 4)`},
		},
		{
			name:     "duplicate top-level key",
			in:       validBase + "roles: [mid]\n",
			sentinel: formulas.ErrDuplicateKey,
			msgs:     []string{`control.yaml:12: roles: duplicate key "roles" (first at line 4)`},
		},
		{
			name:     "environment collision",
			in:       strings.Replace(strings.Replace(validBase, "[edge, dns]", "[edge, edge-x]", 1), "  trial:\n", "  x-ga:\n    nginx: v1.0.0\n  trial:\n", 1),
			sentinel: formulas.ErrEnvCollision,
			msgs:     []string{`control.yaml:6: states.ga: environment "edge-x-ga" of role "edge-x" in state "ga" is also the environment of role "edge" in state "x-ga"`},
		},
		{
			name:     "branch without unpinned",
			in:       strings.Replace(validBase, "nginx: v1.1.0", "nginx: {branch: main}", 1),
			sentinel: formulas.ErrUnpinned,
			msgs:     []string{`control.yaml:11: states.trial.nginx: branch "main" floats: mark it {branch: main, unpinned: true} or pin a tag or commit`},
		},
		{
			name:     "unpinned tag",
			in:       strings.Replace(validBase, "nginx: v1.1.0", "nginx: {tag: v1.1.0, unpinned: true}", 1),
			sentinel: formulas.ErrSyntax,
			msgs:     []string{`control.yaml:11: states.trial.nginx.unpinned: only a branch can be unpinned`},
		},
		{
			name:     "two kinds in one version",
			in:       strings.Replace(validBase, "nginx: v1.1.0", "nginx: {tag: v1.1.0, constraint: ~1}", 1),
			sentinel: formulas.ErrSyntax,
			msgs:     []string{`control.yaml:11: states.trial.nginx: give exactly one of tag, commit, branch or constraint`},
		},
		{
			name:     "bad constraint",
			in:       strings.Replace(validBase, `"~1.0"`, `{constraint: ">=banana"}`, 1),
			sentinel: formulas.ErrSyntax,
			msgs:     []string{`control.yaml:8: states.ga.app.constraint: bad semver constraint ">=banana": improper constraint: ">=banana"`},
		},
		{
			name:     "short commit",
			in:       strings.Replace(validBase, "nginx: v1.1.0", "nginx: {commit: abc}", 1),
			sentinel: formulas.ErrSyntax,
			msgs:     []string{`control.yaml:11: states.trial.nginx.commit: commit "abc" must be 7 to 64 hexadecimal digits`},
		},
		{
			name:     "null version",
			in:       strings.Replace(validBase, "nginx: v1.1.0", "nginx:", 1),
			sentinel: formulas.ErrSyntax,
			msgs:     []string{`control.yaml:11: states.trial.nginx: missing version (write none to leave the formula out)`},
		},
		{
			name:     "unknown top-level key",
			in:       validBase + "formulae: {}\n",
			sentinel: formulas.ErrSyntax,
			msgs:     []string{`control.yaml:12: formulae: unknown key (want version, formulas, roles or states)`},
		},
		{
			name:     "unknown formula key",
			in:       strings.Replace(validBase, "  app: /srv/git/app\n", "  app: {repo: /srv/git/app, subdri: x}\n", 1),
			sentinel: formulas.ErrSyntax,
			msgs:     []string{`control.yaml:3: formulas.app.subdri: unknown key (want repo, subdir or sls)`},
		},
		{
			name:     "formula without repository",
			in:       strings.Replace(validBase, "  app: /srv/git/app\n", "  app: {subdir: app}\n", 1),
			sentinel: formulas.ErrSyntax,
			msgs:     []string{`control.yaml:3: formulas.app.repo: missing repository`},
		},
		{
			name:     "subdir escaping the repository",
			in:       strings.Replace(validBase, "  app: /srv/git/app\n", "  app: {repo: /srv/git/app, subdir: ../etc}\n", 1),
			sentinel: formulas.ErrSyntax,
			msgs:     []string{`control.yaml:3: formulas.app.subdir: subdir "../etc" must be a relative path inside the repository`},
		},
		{
			name:     "reserved formula name",
			in:       strings.Replace(validBase, "  app: /srv/git/app\n", "  app: /srv/git/app\n  roles: /srv/git/roles\n", 1),
			sentinel: formulas.ErrSyntax,
			msgs:     []string{`control.yaml:4: formulas.roles: "roles" is reserved (a release state key) and cannot name a formula`},
		},
		{
			name:     "bad role name",
			in:       strings.Replace(validBase, "[edge, dns]", "[edge, Bad/Role]", 1),
			sentinel: formulas.ErrSyntax,
			msgs:     []string{`control.yaml:4: roles[1]: bad role name "Bad/Role": use lower-case letters, digits, '.', '_' and '-', starting with a letter or digit, at most 63 bytes`},
		},
		{
			name:     "wrong type",
			in:       strings.Replace(validBase, "roles: [edge, dns]", "roles: {edge: 1}", 1),
			sentinel: formulas.ErrSyntax,
			msgs:     []string{`control.yaml:4: roles: expected a list of roles, got a mapping`},
		},
		{
			name:     "bad share",
			in:       strings.Replace(validBase, "  trial:\n", "  trial:\n    share: 120%\n", 1),
			sentinel: formulas.ErrSyntax,
			msgs:     []string{`control.yaml:10: states.trial.share: share "120%" must be a percentage (5%) or a fraction in (0, 1]`},
		},
		{
			name:     "shares over 100%",
			in:       strings.Replace(strings.Replace(validBase, "  trial:\n", "  trial:\n    share: 30%\n", 1), "  ga:\n", "  ga:\n    share: 80%\n", 1),
			sentinel: formulas.ErrSyntax,
			msgs:     []string{`control.yaml:10: states.trial.share: release state shares add up to 110%, more than 100%`},
		},
		{
			name:     "merge key",
			in:       strings.Replace(validBase, "  trial:\n", "  trial:\n    <<: {nginx: v1}\n", 1),
			sentinel: formulas.ErrSyntax,
			msgs:     []string{`control.yaml:10: states.trial: merge keys (<<) are not supported`},
		},
		{
			name:     "yaml syntax",
			in:       "formulas: [\n",
			sentinel: formulas.ErrSyntax,
			msgs:     []string{`control.yaml:1: did not find expected node content`},
		},
		{
			name:     "empty",
			in:       "",
			sentinel: formulas.ErrSyntax,
			msgs:     []string{`control.yaml: empty control file`},
		},
		{
			name:     "missing sections",
			in:       "version: 1\n",
			sentinel: formulas.ErrSyntax,
			msgs: []string{
				`control.yaml:1: formulas: missing`,
				`control.yaml:1: roles: missing`,
				`control.yaml:1: states: missing`,
			},
		},
		{
			name: "several errors at once",
			in: strings.Replace(strings.Replace(validBase, "inherit: ga", "inherit: gaa", 1),
				"    app: \"~1.0\"\n", "    app: \"~1.0\"\n    ngnix: v1\n", 1),
			sentinel: formulas.ErrUnknownFormula,
			msgs: []string{
				`control.yaml:9: states.ga.ngnix: unknown formula "ngnix" (not in formulas)`,
				`control.yaml:11: states.trial.inherit: unknown release state "gaa"`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctl, err := formulas.Parse("control.yaml", []byte(tt.in))
			require.Error(t, err)
			require.Nil(t, ctl)
			require.ErrorIs(t, err, tt.sentinel)
			var list formulas.ErrorList
			require.True(t, errors.As(err, &list))
			var got []string
			for _, e := range list {
				got = append(got, e.Error())
			}
			if diff := cmp.Diff(tt.msgs, got); diff != "" {
				t.Errorf("messages (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseValidBase(t *testing.T) {
	ctl, err := formulas.Parse("control.yaml", []byte(validBase))
	require.NoError(t, err)
	require.Len(t, ctl.Environments(), 4)
}
