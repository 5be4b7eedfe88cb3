package prometheus

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/sources"
)

// Defaults for Options fields left zero.
const (
	DefaultIDLabel = "instance"
	DefaultTimeout = 30 * time.Second
)

// maxBody caps one query response.
const maxBody = 256 << 20

var (
	// ErrUnauthorized is wrapped by errors for responses 401 and 403,
	// as an authenticating proxy in front of Prometheus gives.
	ErrUnauthorized = sources.ErrUnauthorized
	// ErrBadResponse is wrapped by errors for responses that are not the
	// JSON the Prometheus HTTP API documents, or not an instant vector.
	ErrBadResponse = sources.ErrBadResponse
)

// APIError is an answer other than a successful one: an HTTP status
// other than 200, or {"status": "error"}. Prometheus says what went wrong
// in Type ("bad_data" for a query that does not parse, "execution",
// "timeout", ...) and Message.
type APIError struct {
	StatusCode int
	Type       string
	Message    string
}

// Error implements the error interface.
func (e *APIError) Error() string {
	switch {
	case e.Type != "":
		return fmt.Sprintf("status %d: %s: %s", e.StatusCode, e.Type, e.Message)
	case e.Message != "":
		return fmt.Sprintf("status %d: %s", e.StatusCode, e.Message)
	}
	return fmt.Sprintf("status %d", e.StatusCode)
}

// Unwrap returns ErrUnauthorized for 401 and 403, nil otherwise.
func (e *APIError) Unwrap() error {
	if e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden {
		return ErrUnauthorized
	}
	return nil
}

// Options configure a Prometheus source. At least one query must be set.
type Options struct {
	// URL is Prometheus's base URL, such as http://prometheus:9090; the
	// API is under URL/api/v1/.
	URL string `yaml:"url"`
	// Traffic is an instant query giving each node's current traffic,
	// one or more series per node (summed), such as
	//	sum by (instance) (rate(node_network_transmit_bytes_total{device!="lo"}[5m])) * 8
	// with TrafficScale 1e-9 to turn bits/s into Gbps.
	Traffic string `yaml:"traffic"`
	// TrafficScale multiplies Traffic's values into Gbps; default 1.
	TrafficScale float64 `yaml:"traffic_scale"`
	// Capacity is an instant query giving each node's capacity, summed
	// per node like Traffic.
	Capacity string `yaml:"capacity"`
	// CapacityScale multiplies Capacity's values into Gbps; default 1.
	CapacityScale float64 `yaml:"capacity_scale"`
	// Up is an instant query giving 1 for a node that is up and 0 for one
	// that is down, such as up{job="node"}. A node all of whose series
	// are 1 is healthy, all 0 down, and a mix degraded.
	Up string `yaml:"up"`
	// IDLabel is the label whose value is the node ID; default
	// DefaultIDLabel. A ":port" suffix is stripped unless KeepPort.
	IDLabel string `yaml:"id_label"`
	// KeepPort keeps a ":port" suffix of the ID label's value.
	KeepPort bool `yaml:"keep_port"`
	// IDSuffix is appended to IDs that do not already end in it, to turn
	// short hostnames into node IDs.
	IDSuffix string `yaml:"id_suffix"`
	// BearerToken, if set, is sent as "Authorization: Bearer <token>",
	// for Prometheus behind an authenticating proxy.
	BearerToken string `yaml:"bearer_token"`
	// Timeout bounds each request when the source makes its own HTTP
	// client; default DefaultTimeout.
	Timeout time.Duration `yaml:"timeout"`
}

// Source reads traffic, capacity and health from Prometheus instant
// queries. It is safe for concurrent use.
type Source struct {
	name   string
	query  string // URL of the query endpoint
	opts   Options
	client *http.Client
}

// Option changes how New builds a Source.
type Option func(*Source)

// WithHTTPClient makes the source use c instead of a client of its own.
func WithHTTPClient(c *http.Client) Option { return func(s *Source) { s.client = c } }

// New returns a Prometheus source named name. It checks opts; an error is
// a *sources.ConfigError whose Path names the first bad option.
func New(name string, opts Options, options ...Option) (*Source, error) {
	bad := func(field, format string, args ...any) error {
		return &sources.ConfigError{Path: field, Err: fmt.Errorf(format, args...)}
	}
	if name == "" {
		return nil, bad("name", "empty")
	}
	u, err := url.Parse(opts.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, bad("url", "want an http(s) URL, got %q", opts.URL)
	}
	if strings.TrimSpace(opts.Traffic+opts.Capacity+opts.Up) == "" {
		return nil, bad("traffic", "no query: set at least one of traffic, capacity and up")
	}
	for _, sc := range []struct {
		field string
		v     *float64
	}{{"traffic_scale", &opts.TrafficScale}, {"capacity_scale", &opts.CapacityScale}} {
		switch {
		case *sc.v == 0:
			*sc.v = 1
		case !(*sc.v > 0) || math.IsInf(*sc.v, 0):
			return nil, bad(sc.field, "must be a positive number, got %v", *sc.v)
		}
	}
	if opts.IDLabel == "" {
		opts.IDLabel = DefaultIDLabel
	}
	if !validLabelName(opts.IDLabel) {
		return nil, bad("id_label", "%q is not a Prometheus label name", opts.IDLabel)
	}
	switch {
	case opts.Timeout == 0:
		opts.Timeout = DefaultTimeout
	case opts.Timeout < 0:
		return nil, bad("timeout", "must be positive, got %s", opts.Timeout)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/api/v1/query"
	u.RawQuery, u.Fragment = "", ""
	s := &Source{name: name, query: u.String(), opts: opts}
	for _, o := range options {
		o(s)
	}
	if s.client == nil {
		s.client = &http.Client{Timeout: opts.Timeout}
	}
	return s, nil
}

func validLabelName(s string) bool {
	for i, c := range s {
		if !(c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return s != ""
}

// Factory makes a Prometheus source from its YAML options, for a
// sources.Registry.
func Factory(name string, options *yaml.Node) (sources.Source, error) {
	return sources.Decode(name, options, func(n string, o Options) (*Source, error) { return New(n, o) })
}

// Name returns the source's name.
func (s *Source) Name() string { return s.name }

// Sample is one series of an instant vector: its labels and value.
type Sample struct {
	Metric map[string]string
	Value  float64
}

type nodeAcc struct {
	traffic, capacity float64
	hasT, hasC        bool
	up, down          int
}

// Fetch runs the configured queries and returns one Observation per node
// that any of them mentions, sorted by ID. Series without the ID label,
// and values that are NaN, infinite or negative, are skipped.
func (s *Source) Fetch(ctx context.Context) ([]sources.Observation, error) {
	acc := map[string]*nodeAcc{}
	get := func(id string) *nodeAcc {
		a := acc[id]
		if a == nil {
			a = &nodeAcc{}
			acc[id] = a
		}
		return a
	}
	for _, q := range []struct {
		what, expr string
		add        func(a *nodeAcc, v float64)
	}{
		{"traffic", s.opts.Traffic, func(a *nodeAcc, v float64) { a.traffic += v * s.opts.TrafficScale; a.hasT = true }},
		{"capacity", s.opts.Capacity, func(a *nodeAcc, v float64) { a.capacity += v * s.opts.CapacityScale; a.hasC = true }},
		{"up", s.opts.Up, func(a *nodeAcc, v float64) {
			if v == 0 {
				a.down++
			} else {
				a.up++
			}
		}},
	} {
		if strings.TrimSpace(q.expr) == "" {
			continue
		}
		samples, err := s.Query(ctx, q.expr)
		if err != nil {
			return nil, fmt.Errorf("prometheus: %s query: %w", q.what, err)
		}
		for _, smp := range samples {
			id := s.nodeID(smp.Metric)
			if id == "" || math.IsNaN(smp.Value) || math.IsInf(smp.Value, 0) || smp.Value < 0 {
				continue
			}
			q.add(get(id), smp.Value)
		}
	}
	ids := make([]string, 0, len(acc))
	for id := range acc {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	out := make([]sources.Observation, 0, len(ids))
	for _, id := range ids {
		a := acc[id]
		o := sources.Observe(id)
		if a.hasT {
			o.Traffic(a.traffic)
		}
		if a.hasC {
			o.Capacity(a.capacity)
		}
		switch {
		case a.up > 0 && a.down > 0:
			o.Health(disposition.HealthDegraded)
		case a.down > 0:
			o.Health(disposition.HealthDown)
		case a.up > 0:
			o.Health(disposition.HealthHealthy)
		}
		if o.Known != 0 {
			out = append(out, *o)
		}
	}
	return out, nil
}

// nodeID returns the node ID a series is about, or "".
func (s *Source) nodeID(m map[string]string) string {
	id := m[s.opts.IDLabel]
	if id == "" {
		return ""
	}
	if !s.opts.KeepPort {
		if h, _, err := net.SplitHostPort(id); err == nil {
			id = h
		}
	}
	if s.opts.IDSuffix != "" && !strings.HasSuffix(id, s.opts.IDSuffix) {
		id += s.opts.IDSuffix
	}
	return id
}

// apiResponse is the envelope of every Prometheus HTTP API answer.
type apiResponse struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
}

type vectorData struct {
	ResultType string `json:"resultType"`
	Result     []struct {
		Metric map[string]string `json:"metric"`
		Value  []json.RawMessage `json:"value"`
	} `json:"result"`
}

// Query runs one instant query at the current time and returns its
// samples. The query must give an instant vector.
func (s *Source) Query(ctx context.Context, expr string) ([]Sample, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.query+"?"+url.Values{"query": {expr}}.Encode(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	if s.opts.BearerToken != "" {
		req.Header.Set("Authorization", "Bearer "+s.opts.BearerToken)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, err
	}
	return parseResponse(resp.StatusCode, body)
}

// parseResponse decodes a query answer with its HTTP status.
func parseResponse(code int, body []byte) ([]Sample, error) {
	var r apiResponse
	jerr := json.Unmarshal(body, &r)
	if code != http.StatusOK {
		e := &APIError{StatusCode: code}
		if jerr == nil && r.Status == "error" {
			e.Type, e.Message = r.ErrorType, r.Error
		} else {
			e.Message = strings.TrimSpace(string(body[:min(len(body), 512)]))
		}
		return nil, e
	}
	if jerr != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadResponse, jerr)
	}
	if r.Status != "success" {
		if r.Status == "error" {
			return nil, &APIError{StatusCode: code, Type: r.ErrorType, Message: r.Error}
		}
		return nil, fmt.Errorf("%w: status %q", ErrBadResponse, r.Status)
	}
	var d vectorData
	if err := json.Unmarshal(r.Data, &d); err != nil {
		return nil, fmt.Errorf("%w: data: %v", ErrBadResponse, err)
	}
	if d.ResultType != "vector" {
		return nil, fmt.Errorf("%w: result type %q, want an instant vector", ErrBadResponse, d.ResultType)
	}
	out := make([]Sample, 0, len(d.Result))
	for i, res := range d.Result {
		if len(res.Value) != 2 {
			return nil, fmt.Errorf("%w: result %d: value is not [time, \"number\"]", ErrBadResponse, i)
		}
		var txt string
		if err := json.Unmarshal(res.Value[1], &txt); err != nil {
			return nil, fmt.Errorf("%w: result %d: value: %v", ErrBadResponse, i, err)
		}
		v, err := strconv.ParseFloat(txt, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: result %d: value %q is not a number", ErrBadResponse, i, txt)
		}
		out = append(out, Sample{Metric: res.Metric, Value: v})
	}
	return out, nil
}
