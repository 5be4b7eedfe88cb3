package fleet_test

import (
	"io"
	"strconv"
	"testing"

	"github.com/fleetkit/fleetkit/testkit/fleet"
)

func BenchmarkGenerate(b *testing.B) {
	for _, size := range []int{20_000, 1_000_000} {
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := fleet.Generate(fleet.Config{Size: size, Seed: 1}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkWrite(b *testing.B) {
	f, err := fleet.Generate(fleet.Config{Size: 20_000, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	for _, w := range []struct {
		name  string
		write func(io.Writer) error
	}{{"JSON", f.WriteJSON}, {"CSV", f.WriteCSV}} {
		b.Run(w.name+"/20000", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := w.write(io.Discard); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
