package testkit

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/testkit/fakes"
	"github.com/fleetkit/fleetkit/testkit/fleet"
)

// The metrics FleetExporter exposes, one series per node with labels
// job="node" and instance="<node ID>:9100", as the fake Prometheus names
// its targets. Use them as the queries of a prometheus source reading a
// real Prometheus that scrapes the exporter:
//
//	options: {url: ..., up: fleetkit_fake_node_up, traffic: fleetkit_fake_node_traffic_gbps}
const (
	MetricNodeUp       = "fleetkit_fake_node_up"            // 1, or 0 for a down node
	MetricNodeTraffic  = "fleetkit_fake_node_traffic_gbps"  // the node's traffic
	MetricNodeCapacity = "fleetkit_fake_node_capacity_gbps" // the node's capacity
	exporterJob        = "node"
	exporterContent    = "text/plain; version=0.0.4; charset=utf-8"
)

// FleetExporter returns an http.Handler serving a fleet as a Prometheus
// exporter (text exposition format) at any path, for a real Prometheus to
// scrape with honor_labels: true (PrometheusScrapeConfig writes such a
// configuration). Nodes the fake Prometheus API knows (health known, not
// decommissioned) have MetricNodeUp; those that are up also have
// MetricNodeTraffic and MetricNodeCapacity. The values are gauges of the
// fleet as generated, so every scrape gives the same answer.
func FleetExporter(f *fleet.Fleet) http.Handler {
	var up, traffic, capacity bytes.Buffer
	header := func(b *bytes.Buffer, name, help string) {
		fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name)
	}
	header(&up, MetricNodeUp, "1 when the generated node is up, 0 when it is down.")
	header(&traffic, MetricNodeTraffic, "The generated node's traffic in Gbps.")
	header(&capacity, MetricNodeCapacity, "The generated node's capacity in Gbps.")
	sample := func(b *bytes.Buffer, name, instance string, v float64) {
		fmt.Fprintf(b, "%s{job=%q,instance=\"%s\"} %s\n", name, exporterJob, escapeLabel(instance),
			strconv.FormatFloat(v, 'g', -1, 64))
	}
	for _, n := range f.Nodes {
		if n.Health == disposition.HealthUnknown || n.State == disposition.StateDecommissioned {
			continue
		}
		inst := n.ID + ":" + fakes.PrometheusPort
		if n.Health == disposition.HealthDown {
			sample(&up, MetricNodeUp, inst, 0)
			continue
		}
		sample(&up, MetricNodeUp, inst, 1)
		sample(&traffic, MetricNodeTraffic, inst, n.TrafficGbps)
		sample(&capacity, MetricNodeCapacity, inst, n.CapacityGbps)
	}
	body := append(append(up.Bytes(), traffic.Bytes()...), capacity.Bytes()...)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", exporterContent)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		if r.Method == http.MethodGet {
			_, _ = w.Write(body)
		}
	})
}

// escapeLabel escapes a label value for the text exposition format.
func escapeLabel(v string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(v)
}

// PrometheusScrapeConfig returns a prometheus.yml that scrapes the given
// targets ("host:port", /metrics) every second, keeping the instance and
// job labels they expose (honor_labels), as a Prometheus scraping
// FleetExporter needs.
func PrometheusScrapeConfig(targets ...string) string {
	var b strings.Builder
	b.WriteString("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n")
	if len(targets) == 0 {
		b.WriteString("scrape_configs: []\n")
		return b.String()
	}
	b.WriteString("scrape_configs:\n  - job_name: fleet\n    honor_labels: true\n    metrics_path: /metrics\n    static_configs:\n      - targets:\n")
	for _, t := range targets {
		fmt.Fprintf(&b, "          - %q\n", t)
	}
	return b.String()
}
