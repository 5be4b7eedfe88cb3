package sources_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/sources"
)

const goodConfig = `
sources:
  - name: inventory
    type: mem
    authoritative: true
    interval: 30s
    timeout: 10s
    max_stale: 10m
    options: {path: /etc/fleet/inventory.csv}
  - name: traffic
    type: mem
    interval: 15s
    max_stale: 2m
    retries: -1
    backoff: 500ms
    options:
      path: /x
      tags: [a, b]
precedence:
  state: [traffic, inventory]
  health: [traffic]
removal_guard: 0.2
grace: 5m
concurrency: 3
jitter: 0.05
`

func TestParseConfig(t *testing.T) {
	cfg, err := sources.ParseConfig("refd.yaml", []byte(goodConfig))
	require.NoError(t, err)
	require.Equal(t, "refd.yaml", cfg.File)
	require.Len(t, cfg.Sources, 2)
	inv, tr := cfg.Sources[0], cfg.Sources[1]
	require.Equal(t, "inventory", inv.Name)
	require.Equal(t, "mem", inv.Type)
	require.True(t, inv.Authoritative)
	require.Equal(t, 30*time.Second, inv.Interval)
	require.Equal(t, 10*time.Second, inv.Timeout)
	require.Equal(t, 10*time.Minute, inv.MaxStale)
	require.NotNil(t, inv.Options)
	require.False(t, tr.Authoritative)
	require.Equal(t, -1, tr.Retries)
	require.Equal(t, 500*time.Millisecond, tr.Backoff)
	want := sources.AggregatorConfig{
		Precedence: map[disposition.Field][]string{
			disposition.FieldState:  {"traffic", "inventory"},
			disposition.FieldHealth: {"traffic"},
		},
		RemovalGuard: 0.2, Grace: 5 * time.Minute, Concurrency: 3, Jitter: 0.05,
	}
	require.Empty(t, cmp.Diff(want, cfg.Aggregator))
}

func TestParseConfigErrors(t *testing.T) {
	const head = "sources:\n  - name: inv\n    type: file\n    authoritative: true\n"
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"bad duration", head + "  - name: t\n    type: x\n    interval: 15\n",
			`refd.yaml:7: sources[1].interval: "15" is not a duration`},
		{"unknown source key", head + "    intervall: 5s\n",
			`refd.yaml:5: sources[0].intervall: unknown key (valid: name, type, authoritative, interval, timeout, max_stale, retries, backoff, options)`},
		{"unknown top key", head + "grase: 5m\n",
			`refd.yaml:5: grase: unknown key (valid: sources, precedence, removal_guard, grace, concurrency, jitter)`},
		{"duplicate key", head + "    authoritative: yes please\n",
			`refd.yaml:5: sources[0].authoritative: duplicate key`},
		{"bool", "sources:\n  - name: inv\n    type: file\n    authoritative: maybe\n",
			`refd.yaml:4: sources[0].authoritative: "maybe" is not true or false`},
		{"int", head + "concurrency: two\n", `refd.yaml:5: concurrency: "two" is not an integer`},
		{"negative concurrency", head + "concurrency: -2\n", `refd.yaml:5: concurrency: must not be negative`},
		{"guard range", head + "removal_guard: 1.5\n", `refd.yaml:5: removal_guard: 1.5 is not a fraction between 0 and 1`},
		{"jitter range", head + "jitter: 1\n", `refd.yaml:5: jitter: 1 is not a fraction below 1`},
		{"sources not a list", "sources: {a: 1}\n", `refd.yaml:1: sources: expected a list, got a mapping`},
		{"no sources", "grace: 1m\n", `refd.yaml: sources: at least one source is required`},
		{"empty", "", `refd.yaml: empty configuration`},
		{"missing type", "sources:\n  - name: inv\n    authoritative: true\n", `refd.yaml:2: sources[0].type: required`},
		{"missing name", "sources:\n  - type: file\n", `refd.yaml:2: sources[0].name: required`},
		{"bad name", "sources:\n  - name: a b\n    type: file\n", `refd.yaml:2: sources[0].name: "a b" is not a valid source name (non-empty, no spaces or commas)`},
		{"duplicate name", head + "  - name: inv\n    type: x\n", `refd.yaml:5: sources[1].name: "inv" is already the name of sources[0]`},
		{"negative duration", head + "    max_stale: -1m\n", `refd.yaml:5: sources[0].max_stale: must not be negative`},
		{"no authoritative", "sources:\n  - name: a\n    type: x\n", `refd.yaml:1: sources: no source is authoritative: set authoritative: true on the inventory that says which servers exist`},
		{"unknown precedence field", head + "precedence:\n  colour: [inv]\n",
			`refd.yaml:6: precedence.colour: unknown field (valid: kind, region, metro, site, cluster, rack, timezone, role, platform, state, release_state, health, versions, traffic_gbps, capacity_gbps, labels)`},
		{"id precedence", head + "precedence:\n  id: [inv]\n", `refd.yaml:6: precedence.id: unknown field`},
		{"unknown precedence source", head + "precedence:\n  state: [inv, maas]\n", `refd.yaml:6: precedence.state[1]: unknown source "maas" (sources: inv)`},
		{"precedence twice", head + "precedence:\n  state: [inv, inv]\n", `refd.yaml:6: precedence.state[1]: source "inv" listed twice`},
		{"precedence not a list", head + "precedence:\n  state: inv\n", `refd.yaml:6: precedence.state: expected a list, got "inv"`},
		{"precedence scalar", head + "precedence: 3\n", `refd.yaml:5: precedence: expected a mapping of field to source names, got "3"`},
		{"syntax", "sources: [\n", `refd.yaml:1: did not find expected node content`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := sources.ParseConfig("refd.yaml", []byte(tc.yaml))
			require.Error(t, err)
			require.True(t, strings.HasPrefix(err.Error(), tc.want), "got  %s\nwant %s", err, tc.want)
			var ce *sources.ConfigError
			require.ErrorAs(t, err, &ce)
			require.Equal(t, "refd.yaml", ce.File)
		})
	}
}

func TestParseConfigUnknownKeyIsErrUnknownKey(t *testing.T) {
	_, err := sources.ParseConfig("x.yaml", []byte("sourcez: []\n"))
	require.ErrorIs(t, err, sources.ErrUnknownKey)
}

// memOptions are the options of the "mem" test source type.
type memOptions struct {
	Path  string            `yaml:"path"`
	Tags  []string          `yaml:"tags"`
	State disposition.State `yaml:"state"`
	Limit *int              `yaml:"limit"`
	Extra map[string]int    `yaml:"extra"`
	Wait  time.Duration     `yaml:"wait"`
	Nest  struct {
		On bool `yaml:"on"`
	} `yaml:"nest"`
}

func memFactory(name string, n *yaml.Node) (sources.Source, error) {
	var o memOptions
	if err := sources.DecodeOptions(n, &o); err != nil {
		return nil, err
	}
	if o.Path == "" {
		return nil, errors.New("path: required")
	}
	return newMem(name, sources.Observe("a")), nil
}

func TestBuild(t *testing.T) {
	cfg, err := sources.ParseConfig("refd.yaml", []byte(goodConfig))
	require.NoError(t, err)
	regs, err := sources.Build(cfg, sources.Registry{"mem": memFactory})
	require.NoError(t, err)
	require.Len(t, regs, 2)
	require.Equal(t, "inventory", regs[0].Source.Name())
	require.True(t, regs[0].Authoritative)
	require.Equal(t, 15*time.Second, regs[1].Interval)
	require.Equal(t, -1, regs[1].Retries)

	agg, err := sources.NewAggregator(disposition.NewIndex(), cfg.Aggregator, regs...)
	require.NoError(t, err)
	require.NoError(t, agg.Refresh(context.Background()))
}

func TestBuildErrors(t *testing.T) {
	const head = "sources:\n  - name: inv\n    type: mem\n    authoritative: true\n"
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"unknown type", "sources:\n  - name: inv\n    type: nope\n    authoritative: true\n",
			`refd.yaml:3: sources[0].type: unknown source type "nope" (registered: mem)`},
		{"option type", head + "    options:\n      tags: 3\n",
			`refd.yaml:6: sources[0].options.tags: expected a list, got "3"`},
		{"option unknown key", head + "    options:\n      path: /x\n      pth: /y\n",
			`refd.yaml:7: sources[0].options.pth: unknown key (valid: path, tags, state, limit, extra, wait, nest)`},
		{"option enum", head + "    options:\n      state: broken\n",
			`refd.yaml:6: sources[0].options.state: unknown value "broken" for lifecycle state`},
		{"option nested", head + "    options:\n      nest: {on: 1}\n",
			`refd.yaml:6: sources[0].options.nest.on: "1" is not true or false`},
		{"option map", head + "    options:\n      extra: {a: x}\n",
			`refd.yaml:6: sources[0].options.extra.a: "x" is not an integer`},
		{"option list item", head + "    options:\n      tags: [a, [b]]\n",
			`refd.yaml:6: sources[0].options.tags[1]: expected a scalar, got a list`},
		{"option duration", head + "    options:\n      wait: soon\n",
			`refd.yaml:6: sources[0].options.wait: "soon" is not a duration`},
		{"factory error", head + "    options:\n      tags: [a]\n",
			`refd.yaml:6: sources[0].options: path: required`},
		{"no options", head, `refd.yaml:2: sources[0].options: path: required`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := sources.ParseConfig("refd.yaml", []byte(tc.yaml))
			require.NoError(t, err)
			_, err = sources.Build(cfg, sources.Registry{"mem": memFactory})
			require.Error(t, err)
			require.True(t, strings.HasPrefix(err.Error(), tc.want), "got  %s\nwant %s", err, tc.want)
		})
	}
}

func TestDecodeOptions(t *testing.T) {
	var doc yaml.Node
	require.NoError(t, yaml.Unmarshal([]byte("path: /p\ntags: [a, b]\nstate: drained\nlimit: 0x10\nextra: {a: 1}\nwait: 2s\nnest: {on: true}\n"), &doc))
	var o memOptions
	require.NoError(t, sources.DecodeOptions(&doc, &o))
	require.Equal(t, "/p", o.Path)
	require.Equal(t, []string{"a", "b"}, o.Tags)
	require.Equal(t, disposition.StateDrained, o.State)
	require.Equal(t, 16, *o.Limit)
	require.Equal(t, map[string]int{"a": 1}, o.Extra)
	require.Equal(t, 2*time.Second, o.Wait)
	require.True(t, o.Nest.On)

	require.NoError(t, sources.DecodeOptions(nil, &o), "nil node leaves v as is")
	require.Error(t, sources.DecodeOptions(&doc, o), "not a pointer")

	// An alias cycle is bounded, not a stack overflow.
	var cyc yaml.Node
	if yaml.Unmarshal([]byte("a: &x [*x]\n"), &cyc) == nil {
		var v map[string]any
		_ = sources.DecodeOptions(&cyc, &v)
	}
}
