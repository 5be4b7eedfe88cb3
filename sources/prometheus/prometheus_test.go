package prometheus_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/sources"
	"github.com/fleetkit/fleetkit/sources/prometheus"
	"github.com/fleetkit/fleetkit/testkit/fakes"
	"github.com/fleetkit/fleetkit/testkit/fleet"
	"github.com/fleetkit/fleetkit/testkit/realserver"
)

// Queries over node_exporter's metrics, as the fake serves them.
const (
	trafficQuery  = `sum by (instance) (rate(node_network_transmit_bytes_total{device=~"eth.*"}[5m])) * 8`
	capacityQuery = `sum by (instance) (node_network_speed_bytes) * 8`
	upQuery       = `up{job="node"}`
)

func genFleet(t testing.TB, size int) *fleet.Fleet {
	t.Helper()
	f, err := fleet.Generate(fleet.Config{Size: size, Seed: 3})
	require.NoError(t, err)
	return f
}

func newSource(t testing.TB, opts prometheus.Options) *prometheus.Source {
	t.Helper()
	s, err := prometheus.New("prometheus", opts)
	require.NoError(t, err)
	return s
}

func TestFetchMatchesFleet(t *testing.T) {
	f := genFleet(t, 600)
	srv := httptest.NewServer(fakes.NewPrometheus(f))
	defer srv.Close()
	s := newSource(t, prometheus.Options{
		URL: srv.URL, Traffic: trafficQuery, TrafficScale: 1e-9,
		Capacity: capacityQuery, CapacityScale: 1e-9, Up: upQuery,
	})
	obs, err := s.Fetch(context.Background())
	require.NoError(t, err)
	got := map[string]sources.Observation{}
	for _, o := range obs {
		got[o.ID] = o
	}
	want := 0
	var down, traffic int
	for _, n := range f.Nodes {
		o, ok := got[n.ID]
		if n.Health == disposition.HealthUnknown || n.State == disposition.StateDecommissioned {
			require.False(t, ok, "node %s has no target", n.ID)
			continue
		}
		want++
		require.True(t, ok, n.ID)
		if n.Health == disposition.HealthDown {
			down++
			require.Equal(t, disposition.HealthDown, o.Values.Health, n.ID)
			require.False(t, o.Known.Has(disposition.FieldTraffic), "down node has no traffic series")
			continue
		}
		require.Equal(t, disposition.HealthHealthy, o.Values.Health, n.ID)
		require.True(t, o.Known.Has(disposition.FieldTraffic) && o.Known.Has(disposition.FieldCapacity), n.ID)
		require.InDelta(t, n.TrafficGbps, o.Values.TrafficGbps, 1e-9*n.TrafficGbps+1e-12, n.ID)
		require.InDelta(t, n.CapacityGbps, o.Values.CapacityGbps, 1e-9*n.CapacityGbps, n.ID)
		if n.TrafficGbps > 0 {
			traffic++
		}
	}
	require.Len(t, obs, want)
	require.NotZero(t, down, "fleet has no down node: the test would not cover up==0")
	require.NotZero(t, traffic)
	for i := 1; i < len(obs); i++ {
		require.Less(t, obs[i-1].ID, obs[i].ID, "observations are sorted by ID")
	}
}

// vector serves one instant vector for every query.
func vector(samples ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"status":"success","data":{"resultType":"vector","result":[`+strings.Join(samples, ",")+`]}}`)
	})
}

func sample(labels, value string) string {
	return `{"metric":{` + labels + `},"value":[1767614400.5,"` + value + `"]}`
}

func TestUpAndIDHandling(t *testing.T) {
	srv := httptest.NewServer(vector(
		sample(`"instance":"a:9100","job":"node"`, "1"),
		sample(`"instance":"a:9101","job":"blackbox"`, "0"), // a: mixed -> degraded
		sample(`"instance":"b:9100"`, "0"),
		sample(`"instance":"c"`, "1"),
		sample(`"instance":"[2001:db8::1]:9100"`, "1"),
		sample(`"job":"no-instance"`, "1"),
		sample(`"instance":"d:9100"`, "NaN"),
	))
	defer srv.Close()
	obs, err := newSource(t, prometheus.Options{URL: srv.URL, Up: "up", IDSuffix: ".example"}).Fetch(context.Background())
	require.NoError(t, err)
	health := map[string]disposition.Health{}
	for _, o := range obs {
		health[o.ID] = o.Values.Health
	}
	require.Equal(t, map[string]disposition.Health{
		"a.example": disposition.HealthDegraded, "b.example": disposition.HealthDown,
		"c.example": disposition.HealthHealthy, "2001:db8::1.example": disposition.HealthHealthy,
	}, health)

	obs, err = newSource(t, prometheus.Options{URL: srv.URL, Up: "up", KeepPort: true, IDLabel: "instance"}).Fetch(context.Background())
	require.NoError(t, err)
	require.Equal(t, "[2001:db8::1]:9100", obs[0].ID)
}

func TestErrors(t *testing.T) {
	f := genFleet(t, 100)
	cases := []struct {
		name    string
		handler http.Handler
		fault   fakes.Fault
		query   string
		is      error
		msg     string
	}{
		{name: "bad query", query: `sum(rate(x[5m])`, msg: `prometheus: up query: status 400: bad_data: invalid parameter "query"`},
		{name: "5xx", fault: fakes.Fault{Status: 503}, msg: "prometheus: up query: status 503"},
		{name: "malformed", fault: fakes.Fault{Malformed: true}, is: prometheus.ErrBadResponse},
		{name: "unauthorized", fault: fakes.Fault{Status: 401}, is: prometheus.ErrUnauthorized},
		{name: "matrix", handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, `{"status":"success","data":{"resultType":"matrix","result":[]}}`)
		}), is: prometheus.ErrBadResponse, msg: `result type "matrix"`},
		{name: "error envelope with 200", handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, `{"status":"error","errorType":"execution","error":"too many samples"}`)
		}), msg: "execution: too many samples"},
		{name: "value not a string", handler: vector(`{"metric":{"instance":"a"},"value":[1, 2]}`), is: prometheus.ErrBadResponse},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.handler
			if h == nil {
				fake := fakes.NewPrometheus(f)
				if tc.fault != (fakes.Fault{}) {
					fake.Inject(tc.fault)
				}
				h = fake
			}
			srv := httptest.NewServer(h)
			defer srv.Close()
			q := tc.query
			if q == "" {
				q = upQuery
			}
			_, err := newSource(t, prometheus.Options{URL: srv.URL, Up: q}).Fetch(context.Background())
			require.Error(t, err)
			if tc.is != nil {
				require.ErrorIs(t, err, tc.is)
			}
			require.Contains(t, err.Error(), tc.msg)
		})
	}
}

func TestSlowResponseHonoursContext(t *testing.T) {
	fake := fakes.NewPrometheus(genFleet(t, 20))
	fake.Inject(fakes.Fault{Latency: time.Hour})
	srv := httptest.NewServer(fake)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := newSource(t, prometheus.Options{URL: srv.URL, Up: upQuery}).Fetch(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestNewValidates(t *testing.T) {
	ok := prometheus.Options{URL: "http://prom:9090", Up: "up"}
	cases := []struct {
		field string
		edit  func(*prometheus.Options)
	}{
		{"url", func(o *prometheus.Options) { o.URL = "prom:9090" }},
		{"traffic", func(o *prometheus.Options) { o.Up = " " }},
		{"traffic_scale", func(o *prometheus.Options) { o.TrafficScale = -1 }},
		{"capacity_scale", func(o *prometheus.Options) { o.CapacityScale = -1e-9 }},
		{"id_label", func(o *prometheus.Options) { o.IDLabel = "1instance" }},
		{"timeout", func(o *prometheus.Options) { o.Timeout = -time.Second }},
	}
	for _, tc := range cases {
		o := ok
		tc.edit(&o)
		_, err := prometheus.New("p", o)
		var ce *sources.ConfigError
		require.ErrorAs(t, err, &ce, tc.field)
		require.Equal(t, tc.field, ce.Path, err.Error())
	}
}

// exporter serves per-instance gauges in the Prometheus text format, as
// a small exporter would for a set of nodes.
type exporter struct {
	nodes []*disposition.Node
}

func (e exporter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	var b strings.Builder
	b.WriteString("# HELP fleet_node_transmit_bits_per_second Current transmit rate.\n# TYPE fleet_node_transmit_bits_per_second gauge\n")
	for _, n := range e.nodes {
		fmt.Fprintf(&b, "fleet_node_transmit_bits_per_second{instance=%q} %s\n", n.ID+":9100", strconv.FormatFloat(n.TrafficGbps*1e9, 'g', -1, 64))
	}
	b.WriteString("# TYPE fleet_node_capacity_gbps gauge\n")
	for _, n := range e.nodes {
		fmt.Fprintf(&b, "fleet_node_capacity_gbps{instance=%q} %s\n", n.ID+":9100", strconv.FormatFloat(n.CapacityGbps, 'g', -1, 64))
	}
	b.WriteString("# TYPE fleet_node_up gauge\n")
	for _, n := range e.nodes {
		up := 1
		if n.Health == disposition.HealthDown {
			up = 0
		}
		fmt.Fprintf(&b, "fleet_node_up{instance=%q} %d\n", n.ID+":9100", up)
	}
	_, _ = io.WriteString(w, b.String())
}

// TestRealPrometheus scrapes an exporter with a real Prometheus and
// queries it through the source.
func TestRealPrometheus(t *testing.T) {
	f := genFleet(t, 200)
	var nodes []*disposition.Node
	for _, n := range f.Nodes {
		if len(nodes) < 20 && (n.TrafficGbps > 0 || n.Health == disposition.HealthDown) {
			nodes = append(nodes, n)
		}
	}
	exp := httptest.NewServer(exporter{nodes})
	defer exp.Close()
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: fleet
    honor_labels: true
    static_configs:
      - targets: [%q]
`, strings.TrimPrefix(exp.URL, "http://"))
	addr := realserver.Prometheus(t, cfg)

	s := newSource(t, prometheus.Options{
		URL:     "http://" + addr,
		Traffic: "fleet_node_transmit_bits_per_second", TrafficScale: 1e-9,
		Capacity: "fleet_node_capacity_gbps",
		Up:       "fleet_node_up",
	})
	// Wait, bounded, for the first scrape.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var obs []sources.Observation
	for {
		var err error
		obs, err = s.Fetch(ctx)
		require.NoError(t, err)
		// The three queries of one fetch may straddle the first scrape.
		complete := len(obs) == len(nodes)
		for _, o := range obs {
			complete = complete && o.Known.Has(disposition.FieldTraffic) && o.Known.Has(disposition.FieldHealth)
		}
		if complete {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("prometheus did not scrape the exporter in time: %d of %d nodes", len(obs), len(nodes))
		case <-time.After(200 * time.Millisecond):
		}
	}
	got := map[string]sources.Observation{}
	for _, o := range obs {
		got[o.ID] = o
	}
	for _, n := range nodes {
		o, ok := got[n.ID]
		require.True(t, ok, n.ID)
		require.InDelta(t, n.TrafficGbps, o.Values.TrafficGbps, 1e-12+1e-12*n.TrafficGbps, n.ID)
		require.Equal(t, n.CapacityGbps, o.Values.CapacityGbps, n.ID)
		want := disposition.HealthHealthy
		if n.Health == disposition.HealthDown {
			want = disposition.HealthDown
		}
		require.Equal(t, want, o.Values.Health, n.ID)
	}
	// A real parse error comes back as an APIError with Prometheus's type.
	_, err := s.Query(context.Background(), "sum(")
	var ae *prometheus.APIError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, "bad_data", ae.Type)
	require.Equal(t, http.StatusBadRequest, ae.StatusCode)
}

func ExampleNew() {
	f, _ := fleet.Generate(fleet.Config{Size: 100, Seed: 1})
	srv := httptest.NewServer(fakes.NewPrometheus(f))
	defer srv.Close()

	src, err := prometheus.New("prometheus", prometheus.Options{
		URL:          srv.URL,
		Traffic:      `sum by (instance) (rate(node_network_transmit_bytes_total[5m])) * 8`,
		TrafficScale: 1e-9, // bits/s to Gbps
		Up:           `up{job="node"}`,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	obs, err := src.Fetch(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	health := map[disposition.Health]int{}
	for _, o := range obs {
		health[o.Values.Health]++
	}
	fmt.Println(len(obs) > 90, health[disposition.HealthHealthy] > health[disposition.HealthDown])
	// Output: true true
}
