// Package prometheus is a fleetkit source that reads each node's traffic,
// capacity and health from Prometheus HTTP API instant queries
// (GET /api/v1/query).
//
// The queries are configured: Traffic and Capacity give numbers per node
// (summed over a node's series and scaled to Gbps), Up gives 1 or 0 per
// node (all 1: healthy, all 0: down, a mix: degraded). The node ID is a
// label of each series, "instance" by default, without its ":port".
//
//	src, err := prometheus.New("prometheus", prometheus.Options{
//		URL:          "http://prometheus:9090",
//		Traffic:      `sum by (instance) (rate(node_network_transmit_bytes_total{device!="lo"}[5m])) * 8`,
//		TrafficScale: 1e-9, // bits/s to Gbps
//		Up:           `up{job="node"}`,
//	})
//	obs, err := src.Fetch(ctx)
package prometheus
