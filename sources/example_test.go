package sources_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/sources"
	"github.com/fleetkit/fleetkit/sources/file"
)

// prober is a custom Source: it reports the servers that fail a health
// probe as down, and says nothing about the others.
type prober struct{ failing []string }

func (p prober) Name() string { return "prober" }

func (p prober) Fetch(ctx context.Context) ([]sources.Observation, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	obs := make([]sources.Observation, 0, len(p.failing))
	for _, id := range p.failing {
		obs = append(obs, *sources.Observe(id).Health(disposition.HealthDown))
	}
	return obs, nil
}

// A Source reports only what it knows: here, one field of two servers.
func ExampleSource() {
	var src sources.Source = prober{failing: []string{"edge-den-2", "edge-nyc-9"}}
	obs, err := src.Fetch(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	for _, o := range obs {
		fmt.Println(o.ID, o.Values.Health, o.Known.Has(disposition.FieldHealth), o.Known.Has(disposition.FieldMetro))
	}
	// Output:
	// edge-den-2 down true false
	// edge-nyc-9 down true false
}

// An inventory file says which servers exist; a custom source enriches
// them. What the prober says about a server the inventory does not list
// is counted as an orphan.
func ExampleAggregator() {
	dir, err := os.MkdirTemp("", "fleet")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "inventory.csv")
	err = os.WriteFile(path, []byte(`id,metro,role,health
edge-den-1,DEN,edge,healthy
edge-den-2,DEN,edge,healthy
edge-nyc-1,NYC,edge,healthy
`), 0o644)
	if err != nil {
		log.Fatal(err)
	}
	inventory, err := file.New("inventory", file.Options{Path: path})
	if err != nil {
		log.Fatal(err)
	}

	ix := disposition.NewIndex()
	agg, err := sources.NewAggregator(ix, sources.AggregatorConfig{
		// The prober's word on health beats the inventory's.
		Precedence: map[disposition.Field][]string{disposition.FieldHealth: {"prober"}},
	},
		sources.Registered{Source: inventory, Authoritative: true},
		sources.Registered{Source: prober{failing: []string{"edge-den-2", "edge-nyc-9"}}},
	)
	if err != nil {
		log.Fatal(err)
	}
	if err := agg.Refresh(context.Background()); err != nil {
		log.Fatal(err)
	}

	snap := ix.Snapshot()
	groups, err := snap.Aggregate(disposition.Query{}, "metro", "health")
	if err != nil {
		log.Fatal(err)
	}
	for _, g := range groups {
		fmt.Println(g.Key, g.Count)
	}
	n, _ := snap.Get("edge-den-2")
	fmt.Println("edge-den-2 health from", n.Provenance.Of(disposition.FieldHealth).Source)
	for _, st := range agg.Status() {
		fmt.Println(st.Name, "observations:", st.Observations, "orphans:", st.OrphanSample)
	}
	// Output:
	// [DEN down] 1
	// [DEN healthy] 1
	// [NYC healthy] 1
	// edge-den-2 health from prober
	// inventory observations: 3 orphans: []
	// prober observations: 2 orphans: [edge-nyc-9]
}

// A configuration file lists the sources; the caller's Registry says
// which types exist.
func ExampleParseConfig() {
	cfg, err := sources.ParseConfig("refd.yaml", []byte(`
sources:
  - name: inventory
    type: file
    authoritative: true
    interval: 30s
    options: {path: /etc/fleet/inventory.csv}
precedence:
  health: [inventory]
grace: 20m
`))
	if err != nil {
		log.Fatal(err)
	}
	regs, err := sources.Build(cfg, sources.Registry{"file": file.Factory})
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range regs {
		fmt.Println(r.Source.Name(), r.Authoritative, r.Interval)
	}
	fmt.Println("grace:", cfg.Aggregator.Grace)

	_, err = sources.ParseConfig("refd.yaml", []byte("sources:\n  - name: inventory\n    type: file\n    interval: 15\n"))
	fmt.Println(err)
	// Output:
	// inventory true 30s
	// grace: 20m0s
	// refd.yaml:4: sources[0].interval: "15" is not a duration
}
