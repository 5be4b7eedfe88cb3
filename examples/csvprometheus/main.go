// Command csvprometheus embeds the disposition index in a program of its
// own: the inventory comes from a CSV file, traffic and health from
// Prometheus, merged by a sources.Aggregator into one index that the
// program queries. Prometheus here is testkit's in-process fake, serving
// the same HTTP API as the real one over a generated fleet, so the
// example runs anywhere; point -prometheus at a real one to use it.
//
//	go run ./examples/csvprometheus [-size 2000] [-prometheus http://prometheus:9090]
package main

import (
	"context"
	"encoding/csv"
	"flag"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/sources"
	"github.com/fleetkit/fleetkit/sources/file"
	"github.com/fleetkit/fleetkit/sources/prometheus"
	"github.com/fleetkit/fleetkit/testkit/fakes"
	"github.com/fleetkit/fleetkit/testkit/fleet"
)

func main() {
	size := flag.Int("size", 2000, "servers in the generated fleet")
	promURL := flag.String("prometheus", "", "Prometheus base URL (default: an in-process fake)")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := run(ctx, *size, *promURL); err != nil {
		fmt.Fprintln(os.Stderr, "csvprometheus:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, size int, promURL string) error {
	f, err := fleet.Generate(fleet.Config{Size: size, Seed: 1})
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "csvprometheus-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	inventory := filepath.Join(dir, "inventory.csv")
	if err := writeInventory(inventory, f); err != nil {
		return err
	}
	if promURL == "" {
		srv := httptest.NewServer(fakes.NewPrometheus(f))
		defer srv.Close()
		promURL = srv.URL
	}

	inv, err := file.New("inventory", file.Options{Path: inventory})
	if err != nil {
		return err
	}
	prom, err := prometheus.New("prometheus", prometheus.Options{
		URL:          promURL,
		Traffic:      `sum by (instance) (rate(node_network_transmit_bytes_total{device!="lo"}[5m])) * 8`,
		TrafficScale: 1e-9, // bits/s to Gbps
		Up:           `up{job="node"}`,
	})
	if err != nil {
		return err
	}
	ix := disposition.NewIndex()
	agg, err := sources.NewAggregator(ix, sources.AggregatorConfig{},
		sources.Registered{Source: inv, Authoritative: true},
		sources.Registered{Source: prom},
	)
	if err != nil {
		return err
	}
	if err := agg.Refresh(ctx); err != nil {
		return err
	}
	for _, st := range agg.Status() {
		fmt.Printf("source %-10s %5d observations, %d orphans, last error %q\n", st.Name, st.Observations, st.Orphans, st.LastError)
	}

	snap := ix.Snapshot()
	q, err := disposition.ParseQuery("role=edge state=in-service")
	if err != nil {
		return err
	}
	groups, err := snap.Aggregate(q, "metro", "health")
	if err != nil {
		return err
	}
	type row struct {
		metro                string
		servers, down        int
		traffic, capacityOut float64
	}
	rows := map[string]*row{}
	for _, g := range groups {
		r := rows[g.Key[0]]
		if r == nil {
			r = &row{metro: g.Key[0]}
			rows[g.Key[0]] = r
		}
		r.servers += g.Count
		r.traffic += g.TrafficGbps
		if g.Key[1] == disposition.HealthDown.String() {
			r.down += g.Count
			r.capacityOut += g.CapacityGbps
		}
	}
	sorted := make([]*row, 0, len(rows))
	for _, r := range rows {
		sorted = append(sorted, r)
	}
	slices.SortFunc(sorted, func(a, b *row) int {
		if a.traffic != b.traffic {
			if a.traffic > b.traffic {
				return -1
			}
			return 1
		}
		return 0
	})
	fmt.Printf("\nedge servers in service, index version %d, busiest metros first:\n", snap.Version())
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "metro\tservers\tdown\ttraffic Gbps\tcapacity down Gbps\t")
	for _, r := range sorted[:min(10, len(sorted))] {
		fmt.Fprintf(w, "%s\t%d\t%d\t%.1f\t%.0f\t\n", r.metro, r.servers, r.down, r.traffic, r.capacityOut)
	}
	if err := w.Flush(); err != nil {
		return err
	}

	// Provenance says which source gave each field.
	nodes, err := snap.Query(q)
	if err != nil || len(nodes) == 0 {
		return err
	}
	n := nodes[0]
	fmt.Printf("\n%s: metro %s from %s, traffic %.2f Gbps from %s, health %s from %s\n", n.ID,
		n.Metro, n.Provenance.Of(disposition.FieldMetro).Source,
		n.TrafficGbps, n.Provenance.Of(disposition.FieldTraffic).Source,
		n.Health, n.Provenance.Of(disposition.FieldHealth).Source)
	return nil
}

// writeInventory writes what an inventory knows of f as CSV: placement,
// role, state and capacity, but not traffic or health, which come from
// monitoring.
func writeInventory(path string, f *fleet.Fleet) error {
	fh, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(fh)
	_ = w.Write([]string{"id", "kind", "region", "metro", "site", "cluster", "rack", "timezone", "role", "state", "release_state", "capacity_gbps", "label.tier"})
	for _, n := range f.Nodes {
		_ = w.Write([]string{n.ID, n.Kind.String(), n.Region, n.Metro, n.Site, n.Cluster, n.Rack, n.Timezone, n.Role,
			n.State.String(), n.ReleaseState, strconv.FormatFloat(n.CapacityGbps, 'f', -1, 64), n.Labels["tier"]})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		fh.Close()
		return err
	}
	return fh.Close()
}
