// Command fleetindex builds the disposition index of a generated
// 20,000-server fleet and prints, per metro, how many servers are in each
// health state and how much traffic they carry.
//
//	go run ./examples/fleetindex [-size 20000] [-seed 1] [-q "role=edge"]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/testkit/fleet"
)

func main() {
	size := flag.Int("size", 20_000, "number of servers to generate")
	seed := flag.Int64("seed", 1, "generator seed")
	query := flag.String("q", "", `disposition query, e.g. "role=edge health!=down"`)
	flag.Parse()
	if err := run(context.Background(), *size, *seed, *query); err != nil {
		fmt.Fprintln(os.Stderr, "fleetindex:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, size int, seed int64, query string) error {
	q, err := disposition.ParseQuery(query)
	if err != nil {
		return err
	}
	f, err := fleet.Generate(fleet.Config{Size: size, Seed: seed})
	if err != nil {
		return err
	}
	ix := disposition.NewIndex()
	start := time.Now()
	res, err := ix.Apply(ctx, disposition.Batch{Upserts: f.Nodes})
	if err != nil {
		return err
	}
	built := time.Since(start)
	snap := ix.Snapshot()
	groups, err := snap.Aggregate(q, "metro", "health")
	if err != nil {
		return err
	}

	type row struct {
		counts  map[string]int
		total   int
		traffic float64
	}
	rows := map[string]*row{}
	var metros []string
	for _, g := range groups {
		r := rows[g.Key[0]]
		if r == nil {
			r = &row{counts: map[string]int{}}
			rows[g.Key[0]] = r
			metros = append(metros, g.Key[0])
		}
		r.counts[g.Key[1]] += g.Count
		r.total += g.Count
		r.traffic += g.TrafficGbps
	}
	fmt.Printf("fleet of %d servers in %d metros, index version %d, built in %v\n",
		snap.Len(), len(f.Metros), res.Version, built.Round(time.Millisecond))
	if query != "" {
		fmt.Printf("query: %s\n", q)
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "metro\tservers\thealthy\tdegraded\tdown\tunknown\ttraffic Gbps\t")
	for _, m := range metros {
		r := rows[m]
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%d\t%.0f\t\n", m, r.total,
			r.counts["healthy"], r.counts["degraded"], r.counts["down"], r.counts["unknown"], r.traffic)
	}
	return w.Flush()
}
