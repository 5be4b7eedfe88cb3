package trials

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	require.NoError(t, err)
	return b
}

func TestParseGood(t *testing.T) {
	tr, err := Parse("nginx-rc.yaml", readTestdata(t, "nginx-rc.yaml"))
	require.NoError(t, err)
	got := struct {
		Name, Owner, Inherit, State string
		Versions, Formulas          map[string]string
		Targets                     Targets
		Start, Expiry               time.Time
		Rollback                    bool
		Blackouts                   int
		Lines                       map[string]int
	}{tr.Name, tr.Owner, tr.Inherit, tr.ReleaseState(), tr.Versions, tr.Formulas, tr.Targets, tr.Start, tr.Expiry, tr.RollbackOnEnd,
		len(tr.Rollout.Blackouts), map[string]int{"targets.max": tr.Line("targets.max"), "rollout.blackouts[0]": tr.Line("rollout.blackouts[0]")}}
	want := struct {
		Name, Owner, Inherit, State string
		Versions, Formulas          map[string]string
		Targets                     Targets
		Start, Expiry               time.Time
		Rollback                    bool
		Blackouts                   int
		Lines                       map[string]int
	}{
		"nginx-rc", "edge-team@example.net", "ga", "trial-nginx-rc",
		map[string]string{"nginx": "1.25.3"}, map[string]string{"nginx": "v1.5.0-rc.1"},
		Targets{Clusters: []string{"adl1-c01"}, Servers: []string{"edge-bom1-c01-001.fleet.example"}, Query: "metro=ADL role=edge", Max: 40},
		time.Date(2030, 6, 1, 8, 0, 0, 0, time.UTC), time.Date(2030, 6, 8, 8, 0, 0, 0, time.UTC),
		true, 1, map[string]int{"targets.max": 14, "rollout.blackouts[0]": 21},
	}
	require.Empty(t, cmp.Diff(want, got))
	require.Equal(t, "holidays", tr.Rollout.Blackouts[0].Reason)
	require.Equal(t, readTestdata(t, "nginx-rc.yaml"), tr.Source())
}

func TestParseMinimalDefaults(t *testing.T) {
	tr, err := Parse("t.yaml", []byte("name: x\nowner: me\ntargets: {servers: [a], max: 1}\nexpiry: 2030-01-01\n"))
	require.NoError(t, err)
	require.Equal(t, DefaultInherit, tr.Inherit)
	require.Nil(t, tr.Rollout)
	require.True(t, tr.Start.IsZero())
}

// TestParseRolloutFlowStyle checks a rollout section in flow style parses
// too, with errors on the rollout's line.
func TestParseRolloutFlowStyle(t *testing.T) {
	base := "name: x\nowner: me\ntargets: {servers: [a], max: 1}\nexpiry: 2030-01-01\n"
	tr, err := Parse("t.yaml", []byte(base+"rollout: {deploy: 5m, growth: {steps: [1]}}\n"))
	require.NoError(t, err)
	require.Equal(t, 5*time.Minute, time.Duration(tr.Rollout.Deploy))
	_, err = Parse("t.yaml", []byte(base+"rollout: {deploy: 5x}\n"))
	require.EqualError(t, err, `t.yaml:5: rollout.deploy: "5x" is not a duration`)
}

func TestParseErrors(t *testing.T) {
	const head = "name: nginx-rc\nowner: me\n"
	const tg = "targets:\n  servers: [a]\n  max: 3\n"
	const exp = "expiry: 2030-01-02T00:00:00Z\n"
	for _, tc := range []struct {
		name, file, want string
	}{
		{"empty", "", "t.yaml:1: empty document"},
		{"not a mapping", "- a\n", "t.yaml:1: trial must be a mapping"},
		{"syntax", "name: [\n", "t.yaml:1: did not find expected node content"},
		{"unknown key", head + "colour: red\n", `t.yaml:3: unknown key "colour" (valid: expiry, formulas, inherit, name, owner, rollback_on_end, rollout, start, targets, versions)`},
		{"repeated key", head + "owner: you\n", "t.yaml:3: owner: repeated key"},
		{"no name", "owner: me\n" + tg + exp, "t.yaml:1: name: required"},
		{"bad name", "name: Nginx RC\nowner: me\n" + tg + exp, `t.yaml:1: name: "Nginx RC": want lower-case letters, digits, '.', '_' or '-', starting with a letter or digit, at most 57 characters`},
		{"name list", "name: [a]\n", "t.yaml:1: name: must be a single value"},
		{"no owner", "name: x\n" + tg + exp, "t.yaml:1: owner: required"},
		{"no targets", head + exp, "t.yaml:1: targets: required"},
		{"empty targets", head + "targets: {max: 3}\n" + exp, "t.yaml:3: targets: give clusters, servers or a query"},
		{"no max", head + "targets: {servers: [a]}\n" + exp, "t.yaml:3: targets.max: required"},
		{"bad max", head + "targets: {servers: [a], max: -1}\n", `t.yaml:3: targets.max: "-1": must be a positive count of servers`},
		{"max word", head + "targets: {servers: [a], max: lots}\n", `t.yaml:3: targets.max: "lots": must be a positive count of servers`},
		{"unknown target key", head + "targets:\n  racks: [r1]\n", `t.yaml:4: targets: unknown key "racks" (valid: clusters, max, query, servers)`},
		{"servers not list", head + "targets:\n  servers: a\n", "t.yaml:4: targets.servers: must be a list"},
		{"server twice", head + "targets:\n  servers: [a, a]\n", `t.yaml:4: targets.servers[1]: "a" is listed twice`},
		{"server comma", head + "targets:\n  servers:\n    - \"a,b\"\n", `t.yaml:5: targets.servers[0]: "a,b" is not a name`},
		{"bad query", head + "targets: {query: \"colour=red\", max: 3}\n" + exp, `t.yaml:3: targets.query: invalid query: term 1 "colour=red": unknown field "colour" (valid: id, kind, region, metro, site, cluster, rack, timezone, role, platform, state, release_state, health, label.<key>, version.<component>)`},
		{"no expiry", head + tg, "t.yaml:1: expiry: required"},
		{"bad expiry", head + tg + "expiry: soon\n", `t.yaml:6: expiry: "soon" is not an RFC 3339 time or a date`},
		{"expiry before start", head + tg + "start: 2030-01-03T00:00:00Z\n" + exp, "t.yaml:7: expiry: 2030-01-02T00:00:00Z is not after start 2030-01-03T00:00:00Z"},
		{"versions list", head + "versions: [a]\n", "t.yaml:3: versions: must be a mapping of name to version"},
		{"empty version", head + "versions:\n  nginx: \"\"\n", "t.yaml:4: versions.nginx: component and version must not be empty"},
		{"formula spec", head + "formulas:\n  nginx: \"~1.x.x.x\"\n", `t.yaml:4: formulas.nginx: bad semver constraint "~1.x.x.x": improper constraint: "~1.x.x.x"`},
		{"formula map value", head + "formulas:\n  nginx: {tag: v1}\n", "t.yaml:4: formulas.nginx: must be a single value"},
		{"bad inherit", head + tg + exp + "inherit: \"a b\"\n", `t.yaml:7: inherit: "a b" is not a release state name`},
		{"rollback bool", head + "rollback_on_end: maybe\n", `t.yaml:3: rollback_on_end: "maybe" is not true or false`},
		{"rollback without rollout", head + tg + exp + "rollback_on_end: yes\n", "t.yaml:7: rollback_on_end: needs a rollout to roll back"},
		{"rollout scalar", head + "rollout: fast\n", "t.yaml:3: rollout: must be a mapping (a rollout spec)"},
		{"rollout unknown key", head + "rollout:\n  deploy: 5m\n  canary:\n    count: 1\n    speed: fast\n" + tg + exp, `t.yaml:7: rollout.canary: unknown key "speed" (valid: bake, count, where)`},
		{"rollout bad amount", head + "rollout:\n  budgets:\n    metro: 12x\n" + tg + exp, `t.yaml:5: rollout.budgets.metro: "12x" is not a count or percentage`},
		{"rollout after", head + tg + exp + "rollout:\n  windows:\n    - start: \"25:00\"\n      end: \"06:00\"\n", `t.yaml:9: rollout.windows[0].start: "25:00" is not a time of day (HH:MM)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(tc.file))
			require.Error(t, err)
			require.Equal(t, tc.want, err.Error())
			require.True(t, errors.Is(err, ErrInvalid), "%v does not wrap ErrInvalid", err)
			var te *Error
			require.True(t, errors.As(err, &te))
			require.Equal(t, "t.yaml", te.File)
		})
	}
}

// TestParseErrorsNameTheLineOfTheRollout checks lines inside the rollout
// section count from the top of the trial file, wherever the section is.
func TestParseErrorsNameTheLineOfTheRollout(t *testing.T) {
	good := string(readTestdata(t, "nginx-rc.yaml"))
	bad := strings.Replace(good, "bake: 30m", "bake: 30 minutes", 1)
	_, err := Parse("nginx-rc.yaml", []byte(bad))
	require.EqualError(t, err, `nginx-rc.yaml:19: rollout.growth.bake: "30 minutes" is not a duration`)
}
