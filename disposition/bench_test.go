package disposition_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"testing"

	"github.com/hashicorp/go-memdb"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/testkit/fleet"
)

// The benchmarks compare each operation with a baseline measured in the
// same run: a generic go-memdb schema (reflection indexers, the same
// indexes, the same 500-record transactions) for writes, and a plain map
// or slice scan for reads. BENCHMARKS.md records the ratios.

func generate(b *testing.B, size int) []*disposition.Node {
	b.Helper()
	f, err := fleet.Generate(fleet.Config{Size: size, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	return f.Nodes
}

// genericSchema is the schema a first go-memdb user would write for the
// indexes the design names: memdb's reflection-based field indexers, full
// (not partial) indexes, written to the primary database.
func genericSchema() *memdb.DBSchema {
	str := func(name, field string) *memdb.IndexSchema {
		return &memdb.IndexSchema{Name: name, AllowMissing: true, Indexer: &memdb.StringFieldIndex{Field: field}}
	}
	uint8Idx := func(name, field string) *memdb.IndexSchema {
		return &memdb.IndexSchema{Name: name, AllowMissing: true, Indexer: &memdb.UintFieldIndex{Field: field}}
	}
	idx := []*memdb.IndexSchema{
		{Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "ID"}},
		str("metro", "Metro"), str("cluster", "Cluster"), str("role", "Role"),
		uint8Idx("state", "State"), str("release_state", "ReleaseState"), uint8Idx("health", "Health"),
		{Name: "labels", AllowMissing: true, Indexer: &memdb.StringMapFieldIndex{Field: "Labels"}},
	}
	t := &memdb.TableSchema{Name: "nodes", Indexes: map[string]*memdb.IndexSchema{}}
	for _, i := range idx {
		t.Indexes[i.Name] = i
	}
	return &memdb.DBSchema{Tables: map[string]*memdb.TableSchema{"nodes": t}}
}

func genericBuild(b *testing.B, nodes []*disposition.Node) *memdb.MemDB {
	db, err := memdb.NewMemDB(genericSchema())
	if err != nil {
		b.Fatal(err)
	}
	for chunk := range slices.Chunk(nodes, disposition.MaxTxnRecords) {
		txn := db.Txn(true)
		for _, n := range chunk {
			if err := txn.Insert("nodes", n); err != nil {
				b.Fatal(err)
			}
		}
		txn.Commit()
	}
	return db
}

func build(b *testing.B, nodes []*disposition.Node) *disposition.Index {
	ix := disposition.NewIndex()
	if _, err := ix.Apply(context.Background(), disposition.Batch{Upserts: nodes}); err != nil {
		b.Fatal(err)
	}
	return ix
}

func sizes(b *testing.B) []int {
	if testing.Short() {
		return []int{20_000}
	}
	return []int{20_000, 1_000_000}
}

func BenchmarkBuild(b *testing.B) {
	for _, size := range sizes(b) {
		nodes := generate(b, size)
		b.Run(fmt.Sprintf("%d/index", size), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				build(b, nodes)
			}
		})
		b.Run(fmt.Sprintf("%d/generic-memdb", size), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				genericBuild(b, nodes)
			}
		})
	}
}

// BenchmarkLiveHeap reports the live heap per node after GC: "total" is
// nodes plus index, "index" the index alone (nodes are shared with the
// generator's slice, so the difference is what indexing costs).
func BenchmarkLiveHeap(b *testing.B) {
	for _, size := range sizes(b) {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			for b.Loop() {
				base := liveHeap()
				nodes := generate(b, size)
				withNodes := liveHeap()
				ix := build(b, nodes)
				withIndex := liveHeap()
				gdb := genericBuild(b, nodes)
				withGeneric := liveHeap()
				b.ReportMetric(float64(withIndex-base)/float64(size), "total-B/node")
				b.ReportMetric(float64(withIndex-withNodes)/float64(size), "index-B/node")
				b.ReportMetric(float64(withGeneric-withIndex)/float64(size), "generic-index-B/node")
				runtime.KeepAlive(ix)
				runtime.KeepAlive(gdb)
				runtime.KeepAlive(nodes)
			}
		})
	}
}

func liveHeap() int64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// changed returns copies of every 100th node with new traffic: a 1% delta.
func changed(nodes []*disposition.Node, gen int) []*disposition.Node {
	var out []*disposition.Node
	for i := 0; i < len(nodes); i += 100 {
		c := nodes[i].Clone()
		c.TrafficGbps = float64(gen%2) + 0.5
		out = append(out, c)
	}
	return out
}

func BenchmarkDelta1Percent(b *testing.B) {
	nodes := generate(b, 20_000)
	deltas := [2][]*disposition.Node{changed(nodes, 0), changed(nodes, 1)}
	b.Run("index", func(b *testing.B) {
		ix := build(b, nodes)
		ctx := context.Background()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			// Apply takes ownership, so every round gets fresh copies made
			// outside the timer.
			b.StopTimer()
			batch := slices.Clone(deltas[i%2])
			for j, n := range batch {
				batch[j] = n.Clone()
			}
			b.StartTimer()
			res, err := ix.Apply(ctx, disposition.Batch{Upserts: batch})
			if err != nil || res.Updated != len(batch) {
				b.Fatalf("apply: %+v %v", res, err)
			}
			i++
		}
	})
	b.Run("generic-memdb", func(b *testing.B) {
		db := genericBuild(b, nodes)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			txn := db.Txn(true)
			for _, n := range deltas[i%2] {
				old, _ := txn.First("nodes", "id", n.ID)
				if old != nil && old.(*disposition.Node).Equal(n) {
					continue
				}
				if err := txn.Insert("nodes", n); err != nil {
					b.Fatal(err)
				}
			}
			txn.Commit()
			i++
		}
	})
}

func BenchmarkGet(b *testing.B) {
	nodes := generate(b, 20_000)
	snap := build(b, nodes).Snapshot()
	byID := make(map[string]*disposition.Node, len(nodes))
	for _, n := range nodes {
		byID[n.ID] = n
	}
	b.Run("index", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, ok := snap.Get(nodes[i%len(nodes)].ID); !ok {
				b.Fatal("missing")
			}
			i += 7919
		}
	})
	b.Run("map", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if byID[nodes[i%len(nodes)].ID] == nil {
				b.Fatal("missing")
			}
			i += 7919
		}
	})
}

// metroNear returns the metro whose node count is closest to want.
func metroNear(nodes []*disposition.Node, want int) (string, int) {
	count := map[string]int{}
	for _, n := range nodes {
		count[n.Metro]++
	}
	best, bestN := "", 0
	for m, c := range count {
		if best == "" || abs(c-want) < abs(bestN-want) || abs(c-want) == abs(bestN-want) && m < best {
			best, bestN = m, c
		}
	}
	return best, bestN
}

func abs(x int) int { return max(x, -x) }

func BenchmarkQuery500(b *testing.B) {
	nodes := generate(b, 20_000)
	snap := build(b, nodes).Snapshot()
	metro, _ := metroNear(nodes, 540)
	q := disposition.MustParseQuery("metro=" + metro + " health!=down")
	want, err := snap.Query(q)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("metro %s: %d rows", metro, len(want))
	b.Run("index", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			got, _ := snap.Query(q)
			if len(got) != len(want) {
				b.Fatal("wrong count")
			}
		}
	})
	// An eighth of the nodes inserted after the build, one short of
	// renumbering: their ordinals are out of ID order, so results need a
	// sort. This is what renumbering saves.
	late := build(b, nil)
	var first, rest []*disposition.Node
	for i, n := range nodes {
		if i%8 == 7 {
			rest = append(rest, n)
		} else {
			first = append(first, n)
		}
	}
	for _, part := range [][]*disposition.Node{first, rest} {
		if _, err := late.Apply(context.Background(), disposition.Batch{Upserts: part}); err != nil {
			b.Fatal(err)
		}
	}
	lateSnap := late.Snapshot()
	b.Run("index-eighth-late", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			got, _ := lateSnap.Query(q)
			if len(got) != len(want) {
				b.Fatal("wrong count")
			}
		}
	})
	b.Run("slice-scan", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var got []*disposition.Node
			for _, n := range nodes {
				if n.Metro == metro && n.Health != disposition.HealthDown {
					got = append(got, n)
				}
			}
			if len(got) != len(want) {
				b.Fatal("wrong count")
			}
		}
	})
}

func BenchmarkAggregateMetroHealth(b *testing.B) {
	nodes := generate(b, 20_000)
	snap := build(b, nodes).Snapshot()
	b.Run("index", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := snap.Aggregate(disposition.Query{}, "metro", "health"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("slice-map", func(b *testing.B) {
		type key struct {
			metro  string
			health disposition.Health
		}
		b.ReportAllocs()
		for b.Loop() {
			groups := map[key]*disposition.Group{}
			for _, n := range nodes {
				k := key{n.Metro, n.Health}
				g := groups[k]
				if g == nil {
					g = &disposition.Group{Key: []string{n.Metro, n.Health.String()}}
					groups[k] = g
				}
				g.Count++
				g.TrafficGbps += n.TrafficGbps
			}
		}
	})
}
