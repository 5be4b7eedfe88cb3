package sources_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/sources"
	"github.com/fleetkit/fleetkit/testkit/fleet"
)

// sliceSource answers with whatever slice it holds.
type sliceSource struct {
	name string
	obs  atomic.Pointer[[]sources.Observation]
}

func (s *sliceSource) Name() string { return s.name }

func (s *sliceSource) Fetch(context.Context) ([]sources.Observation, error) {
	return *s.obs.Load(), nil
}

// benchSourceFields says which fields each of the ten benchmark sources
// reports, for every node of the fleet: an inventory with the topology,
// and nine systems that each know a few things, some overlapping.
var benchSourceFields = []struct {
	name   string
	fields []disposition.Field
}{
	{"inventory", []disposition.Field{disposition.FieldKind, disposition.FieldRegion, disposition.FieldMetro,
		disposition.FieldSite, disposition.FieldCluster, disposition.FieldRack, disposition.FieldTimezone,
		disposition.FieldRole, disposition.FieldCapacity}},
	{"netbox", []disposition.Field{disposition.FieldSite, disposition.FieldRack, disposition.FieldLabels}},
	{"maas", []disposition.Field{disposition.FieldState, disposition.FieldPlatform}},
	{"prometheus", []disposition.Field{disposition.FieldTraffic, disposition.FieldHealth}},
	{"alertmanager", []disposition.Field{disposition.FieldHealth}},
	{"salt", []disposition.Field{disposition.FieldVersions, disposition.FieldPlatform, disposition.FieldReleaseState}},
	{"postgres", []disposition.Field{disposition.FieldReleaseState, disposition.FieldRole}},
	{"capacity", []disposition.Field{disposition.FieldCapacity}},
	{"cmdb", []disposition.Field{disposition.FieldKind, disposition.FieldTimezone, disposition.FieldMetro}},
	{"overrides", []disposition.Field{disposition.FieldLabels, disposition.FieldState}},
}

// observe makes an observation of n's given fields.
func observe(n *disposition.Node, fields []disposition.Field) sources.Observation {
	o := sources.Observation{ID: n.ID, Values: disposition.Node{
		Kind: n.Kind, Region: n.Region, Metro: n.Metro, Site: n.Site, Cluster: n.Cluster, Rack: n.Rack,
		Timezone: n.Timezone, Role: n.Role, Platform: n.Platform, State: n.State,
		ReleaseState: n.ReleaseState, Health: n.Health, Versions: n.Versions, TrafficGbps: n.TrafficGbps,
		CapacityGbps: n.CapacityGbps, Labels: n.Labels,
	}}
	for _, f := range fields {
		o.Known = o.Known.With(f)
	}
	return o
}

type benchFleet struct {
	nodes []*disposition.Node
	srcs  []*sliceSource
	regs  []sources.Registered
	// traffic holds two versions of the prometheus source's answer that
	// differ in 1% of the nodes.
	traffic [2][]sources.Observation
	// changed holds the nodes as the index has them after traffic[1],
	// without provenance, for the baseline.
	changed [2][]*disposition.Node
}

func newBenchFleet(b *testing.B, size int) *benchFleet {
	b.Helper()
	f, err := fleet.Generate(fleet.Config{Size: size, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	bf := &benchFleet{nodes: f.Nodes}
	for i, sf := range benchSourceFields {
		s := &sliceSource{name: sf.name}
		obs := make([]sources.Observation, len(f.Nodes))
		for j, n := range f.Nodes {
			obs[j] = observe(n, sf.fields)
		}
		s.obs.Store(&obs)
		bf.srcs = append(bf.srcs, s)
		bf.regs = append(bf.regs, sources.Registered{Source: s, Authoritative: i == 0, Retries: -1})
		if sf.name == "prometheus" {
			bf.traffic[0] = obs
			alt := make([]sources.Observation, len(obs))
			copy(alt, obs)
			for j := 0; j < len(alt); j += 100 {
				alt[j].Values.TrafficGbps += 1
				c := f.Nodes[j].Clone()
				c.TrafficGbps = alt[j].Values.TrafficGbps
				bf.changed[1] = append(bf.changed[1], c)
				bf.changed[0] = append(bf.changed[0], f.Nodes[j])
			}
			bf.traffic[1] = alt
		}
	}
	return bf
}

// BenchmarkMerge measures a first load: ten sources of 20K nodes each
// fetched, merged and written into an empty index. The baseline builds
// the same index directly from the fleet's nodes.
func BenchmarkMerge(b *testing.B) {
	bf := newBenchFleet(b, 20_000)
	ctx := context.Background()
	b.Run("baseline-apply", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ix := disposition.NewIndex()
			if _, err := ix.Apply(ctx, disposition.Batch{Upserts: bf.nodes}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("aggregator", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ix := disposition.NewIndex()
			agg, err := sources.NewAggregator(ix, sources.AggregatorConfig{Seed: 1}, bf.regs...)
			if err != nil {
				b.Fatal(err)
			}
			if err := agg.Refresh(ctx); err != nil {
				b.Fatal(err)
			}
			if ix.Snapshot().Len() != len(bf.nodes) {
				b.Fatalf("index holds %d nodes, want %d", ix.Snapshot().Len(), len(bf.nodes))
			}
		}
	})
}

// BenchmarkDelta measures a refresh of a loaded 20K fleet where one
// source's answer changed for 1% of the nodes (200 traffic values); the
// nine others return what they returned before. The baseline applies the
// 200 changed nodes to the index directly. The steady cases show a
// refresh where nothing changed: sources returning the same slices, and
// sources returning equal data in new slices (compared in full).
func BenchmarkDelta(b *testing.B) {
	bf := newBenchFleet(b, 20_000)
	ctx := context.Background()
	b.Run("baseline-apply", func(b *testing.B) {
		ix := disposition.NewIndex()
		if _, err := ix.Apply(ctx, disposition.Batch{Upserts: bf.nodes}); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i ^= 1
			res, err := ix.Apply(ctx, disposition.Batch{Upserts: bf.changed[i]})
			if err != nil || res.Updated != len(bf.changed[i]) {
				b.Fatalf("%+v %v", res, err)
			}
		}
	})
	load := func(b *testing.B) (*sources.Aggregator, *disposition.Index, *sliceSource) {
		ix := disposition.NewIndex()
		agg, err := sources.NewAggregator(ix, sources.AggregatorConfig{Seed: 1}, bf.regs...)
		if err != nil {
			b.Fatal(err)
		}
		prom := bf.srcs[3]
		prom.obs.Store(&bf.traffic[0])
		if err := agg.Refresh(ctx); err != nil {
			b.Fatal(err)
		}
		return agg, ix, prom
	}
	b.Run("aggregator", func(b *testing.B) {
		agg, ix, prom := load(b)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i ^= 1
			prom.obs.Store(&bf.traffic[i])
			v := ix.Version()
			if err := agg.Refresh(ctx); err != nil {
				b.Fatal(err)
			}
			if ix.Version() != v+1 {
				b.Fatal("the change was not applied")
			}
		}
	})
	b.Run("steady-same-slices", func(b *testing.B) {
		agg, ix, _ := load(b)
		v := ix.Version()
		b.ReportAllocs()
		for b.Loop() {
			if err := agg.Refresh(ctx); err != nil {
				b.Fatal(err)
			}
		}
		if ix.Version() != v {
			b.Fatal("a steady refresh wrote")
		}
	})
	b.Run("steady-new-slices", func(b *testing.B) {
		agg, ix, _ := load(b)
		v := ix.Version()
		copies := make([][2][]sources.Observation, len(bf.srcs))
		for i, s := range bf.srcs {
			for k := range 2 {
				copies[i][k] = append([]sources.Observation(nil), *s.obs.Load()...)
			}
		}
		b.ReportAllocs()
		k := 0
		for b.Loop() {
			k ^= 1
			for i, s := range bf.srcs {
				s.obs.Store(&copies[i][k])
			}
			if err := agg.Refresh(ctx); err != nil {
				b.Fatal(err)
			}
		}
		if ix.Version() != v {
			b.Fatal("a steady refresh wrote")
		}
	})
}
