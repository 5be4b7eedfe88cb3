package fakes

import (
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/testkit/fleet"
)

// PrometheusPort is the port in the fake's instance labels
// ("<node ID>:9100", node_exporter's port).
const PrometheusPort = "9100"

// Prometheus is an http.Handler that speaks the Prometheus HTTP API's
// instant queries (GET or POST /api/v1/query, with query and an optional
// time) over a fleet, plus /-/healthy and /-/ready. Every node that is
// not decommissioned and whose health is known is a scrape target with
// labels job="node" and instance="<node ID>:9100", and these series:
//
//	up                                   1, or 0 when the node is down
//	node_network_transmit_bytes_total    counter per device (eth0, eth1) whose
//	                                     rate sums to the node's traffic
//	node_network_receive_bytes_total     counter per device, 5% of transmit
//	node_network_speed_bytes             gauge per device, summing to capacity
//
// A down node has only up. Rates are exact: rate() of the transmit counter
// summed over devices, times 8, is the node's TrafficGbps * 1e9.
//
// Queries are evaluated in a small subset of PromQL:
//
//	expr     = term { ("*" | "/") number }
//	term     = agg [grouping] "(" inner ")" [grouping] | inner
//	agg      = "sum" | "max" | "min" | "avg" | "count"
//	grouping = ("by" | "without") "(" [label {"," label}] ")"
//	inner    = selector | ("rate" | "irate" | "increase") "(" selector "[" duration "]" ")"
//	selector = metric ["{" matchers "}"] | "{" matchers "}"   (=, !=, =~, !~)
//
// such as sum by (instance) (rate(node_network_transmit_bytes_total[5m])) * 8.
// Anything else is answered 400 bad_data, as Prometheus answers a query it
// cannot parse.
type Prometheus struct {
	Faults
	series []promSeries
	// Now gives the evaluation time when a query has no time parameter;
	// nil means time.Now.
	Now func() time.Time
}

type promSeries struct {
	name   string
	labels map[string]string // without __name__
	value  float64           // gauge value, or counter value
	rate   float64           // per-second rate of a counter
}

// NewPrometheus returns a Prometheus fake serving f.
func NewPrometheus(f *fleet.Fleet) *Prometheus {
	p := &Prometheus{}
	for _, n := range f.Nodes {
		if n.Health == disposition.HealthUnknown || n.State == disposition.StateDecommissioned {
			continue
		}
		inst := n.ID + ":" + PrometheusPort
		up := 1.0
		if n.Health == disposition.HealthDown {
			up = 0
		}
		p.series = append(p.series, promSeries{name: "up", labels: map[string]string{"job": "node", "instance": inst}, value: up})
		if up == 0 {
			continue
		}
		for _, dev := range []string{"eth0", "eth1"} {
			l := map[string]string{"job": "node", "instance": inst, "device": dev}
			tx := n.TrafficGbps * 1e9 / 8 / 2
			p.series = append(p.series,
				promSeries{name: "node_network_transmit_bytes_total", labels: l, rate: tx, value: tx * 1e6},
				promSeries{name: "node_network_receive_bytes_total", labels: l, rate: tx * 0.05, value: tx * 0.05 * 1e6},
				promSeries{name: "node_network_speed_bytes", labels: l, value: n.CapacityGbps * 1e9 / 8 / 2},
			)
		}
	}
	return p
}

type promResult struct {
	labels map[string]string
	value  float64
	count  int
}

func (p *Prometheus) eval(q *promQuery) []promResult {
	var res []promResult
	for i := range p.series {
		s := &p.series[i]
		if q.metric != "" && s.name != q.metric {
			continue
		}
		ok := true
		for _, m := range q.matchers {
			v := s.labels[m.label]
			if m.label == "__name__" {
				v = s.name
			}
			if !m.matches(v) {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		r := promResult{labels: s.labels, value: s.value, count: 1}
		if q.fn == "" && q.agg == "" && len(q.ops) == 0 {
			r.labels = maps.Clone(s.labels)
			r.labels["__name__"] = s.name
		}
		switch q.fn {
		case "rate", "irate":
			r.value = s.rate
		case "increase":
			r.value = s.rate * q.rangeSecs
		}
		res = append(res, r)
	}
	if q.agg != "" {
		groups := map[string]*promResult{}
		var order []string
		for _, r := range res {
			key := map[string]string{}
			if q.without {
				for k, v := range r.labels {
					if !slices.Contains(q.by, k) {
						key[k] = v
					}
				}
			} else {
				for _, k := range q.by {
					if v, ok := r.labels[k]; ok {
						key[k] = v
					}
				}
			}
			ks := promKey(key)
			g := groups[ks]
			if g == nil {
				g = &promResult{labels: key, value: r.value}
				groups[ks] = g
				order = append(order, ks)
			} else {
				switch q.agg {
				case "sum", "avg":
					g.value += r.value
				case "max":
					g.value = max(g.value, r.value)
				case "min":
					g.value = min(g.value, r.value)
				}
			}
			g.count++
		}
		res = res[:0]
		for _, ks := range order {
			g := groups[ks]
			switch q.agg {
			case "avg":
				g.value /= float64(g.count)
			case "count":
				g.value = float64(g.count)
			}
			res = append(res, *g)
		}
	}
	for i := range res {
		for _, op := range q.ops {
			if op.op == "*" {
				res[i].value *= op.n
			} else {
				res[i].value /= op.n
			}
		}
	}
	return res
}

func promKey(l map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(l)) {
		b.WriteString(k)
		b.WriteByte(0)
		b.WriteString(l[k])
		b.WriteByte(0)
	}
	return b.String()
}

// ServeHTTP implements http.Handler.
func (p *Prometheus) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.serve(w, r, p.handle)
}

func promError(w http.ResponseWriter, status int, typ, msg string) {
	writeJSON(w, status, map[string]string{"status": "error", "errorType": typ, "error": msg})
}

func (p *Prometheus) handle(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/-/healthy":
		_, _ = w.Write([]byte("Prometheus Server is Healthy.\n"))
		return
	case "/-/ready":
		_, _ = w.Write([]byte("Prometheus Server is Ready.\n"))
		return
	case "/api/v1/query":
	default:
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		promError(w, http.StatusMethodNotAllowed, "bad_data", "method not allowed")
		return
	}
	if err := r.ParseForm(); err != nil {
		promError(w, http.StatusBadRequest, "bad_data", err.Error())
		return
	}
	now := time.Now()
	if p.Now != nil {
		now = p.Now()
	}
	ts := float64(now.UnixMilli()) / 1000
	if t := r.Form.Get("time"); t != "" {
		if v, err := strconv.ParseFloat(t, 64); err == nil {
			ts = v
		} else if tt, err := time.Parse(time.RFC3339Nano, t); err == nil {
			ts = float64(tt.UnixMilli()) / 1000
		} else {
			promError(w, http.StatusBadRequest, "bad_data", `invalid parameter "time": cannot parse "`+t+`" to a valid timestamp`)
			return
		}
	}
	expr := r.Form.Get("query")
	if strings.TrimSpace(expr) == "" {
		promError(w, http.StatusBadRequest, "bad_data", `invalid parameter "query": 1:1: parse error: no expression found in input`)
		return
	}
	q, err := parsePromQuery(expr)
	if err != nil {
		promError(w, http.StatusBadRequest, "bad_data", `invalid parameter "query": `+err.Error())
		return
	}
	res := p.eval(q)
	type sample struct {
		Metric map[string]string `json:"metric"`
		Value  [2]any            `json:"value"`
	}
	out := make([]sample, len(res))
	for i, r := range res {
		out[i] = sample{Metric: r.labels, Value: [2]any{ts, strconv.FormatFloat(r.value, 'f', -1, 64)}}
		if out[i].Metric == nil {
			out[i].Metric = map[string]string{}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"status": "success",
		"data":   map[string]any{"resultType": "vector", "result": out},
	})
}
