package sources_test

import (
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/sources"
)

// FuzzParseConfig checks that ParseConfig never panics and that every
// configuration it accepts makes an aggregator: its checks are the
// aggregator's.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(goodConfig))
	f.Add([]byte("sources:\n  - {name: a, type: t, authoritative: true, interval: 1s}\nprecedence: {health: [a]}\n"))
	f.Add([]byte("sources: [&x {name: a, type: t, authoritative: true}, *x]\n"))
	f.Add([]byte("removal_guard: 1\njitter: -1\ngrace: -5m\nsources:\n  - name: a\n    type: t\n    authoritative: true\n"))
	any := func(name string, _ *yaml.Node) (sources.Source, error) { return newMem(name), nil }
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := sources.ParseConfig("f.yaml", data)
		if err != nil {
			return
		}
		reg := sources.Registry{}
		for _, s := range cfg.Sources {
			reg[s.Type] = any
		}
		regs, err := sources.Build(cfg, reg)
		if err != nil {
			t.Fatalf("Build rejected a parsed configuration: %v", err)
		}
		if _, err := sources.NewAggregator(disposition.NewIndex(), cfg.Aggregator, regs...); err != nil {
			t.Fatalf("NewAggregator rejected a parsed configuration: %v", err)
		}
	})
}
