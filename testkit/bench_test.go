package testkit_test

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/sources"
	"github.com/fleetkit/fleetkit/testkit"
)

// BenchmarkCheckIndex measures CheckIndex over a 20K fleet split between
// three sources, against the baseline of the aggregator building that
// index from the same sources (the merge CheckIndex restates).
func BenchmarkCheckIndex(b *testing.B) {
	f := genFleet(b, 20_000, 1)
	srcs := randomSources(rand.New(rand.NewPCG(1, 1)), f)
	prec := map[disposition.Field][]string{disposition.FieldState: {"cmdb", "inventory"}}
	build := func() *disposition.Index {
		ix := disposition.NewIndex()
		var regs []sources.Registered
		for _, s := range srcs {
			regs = append(regs, sources.Registered{Source: &staticSource{s.Name, s.Observations}, Authoritative: s.Authoritative, Interval: time.Hour})
		}
		agg, err := sources.NewAggregator(ix, sources.AggregatorConfig{Precedence: prec}, regs...)
		if err != nil {
			b.Fatal(err)
		}
		if err := agg.Refresh(context.Background()); err != nil {
			b.Fatal(err)
		}
		return ix
	}
	b.Run("aggregator", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			build()
		}
	})
	snap := build().Snapshot()
	b.Run("check", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if vs := testkit.CheckIndex(snap, prec, srcs...); len(vs) > 0 {
				b.Fatal(vs[0])
			}
		}
	})
}
