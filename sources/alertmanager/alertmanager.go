package alertmanager

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/sources"
)

// Defaults for Options fields left zero.
const (
	DefaultSeverityLabel = "severity"
	DefaultIDLabel       = "instance"
	DefaultTimeout       = 30 * time.Second
)

// UnknownSeverity values.
const (
	SeverityDegraded = "degraded"
	SeverityDown     = "down"
	SeverityIgnore   = "ignore"
)

// maxBody caps the alerts response.
const maxBody = 256 << 20

var (
	// ErrUnauthorized is wrapped by errors for responses 401 and 403, as
	// an authenticating proxy in front of Alertmanager gives.
	ErrUnauthorized = sources.ErrUnauthorized
	// ErrBadResponse is wrapped by errors for responses that are not the
	// JSON array of alerts Alertmanager's API v2 documents.
	ErrBadResponse = sources.ErrBadResponse
)

// StatusError is a response with a status other than the API's success.
// It wraps ErrUnauthorized for 401 and 403.
type StatusError = sources.StatusError

// Options configure an Alertmanager source.
type Options struct {
	// URL is Alertmanager's base URL, such as http://alertmanager:9093;
	// the API is under URL/api/v2/.
	URL string `yaml:"url"`
	// Filters are matchers that select the alerts to read, in
	// Alertmanager's syntax, such as `team="cdn"` or `severity=~"critical|warning"`.
	Filters []string `yaml:"filters"`
	// Receiver, if set, is a regular expression selecting alerts by the
	// receivers they are routed to.
	Receiver string `yaml:"receiver"`
	// IncludeSilenced and IncludeInhibited also count silenced and
	// inhibited alerts; by default only alerts that notify count.
	IncludeSilenced  bool `yaml:"include_silenced"`
	IncludeInhibited bool `yaml:"include_inhibited"`
	// SeverityLabel is the label holding an alert's severity; default
	// DefaultSeverityLabel.
	SeverityLabel string `yaml:"severity_label"`
	// Severities maps severities to the health they mean, "down",
	// "degraded" or "ignore", over DefaultSeverities.
	Severities map[string]string `yaml:"severities"`
	// UnknownSeverity is the health for a severity not in the map (or no
	// severity): "degraded" (default), "down" or "ignore".
	UnknownSeverity string `yaml:"unknown_severity"`
	// IDLabels are the labels that name the node an alert is about, tried
	// in order; default [instance]. A ":port" suffix is stripped unless
	// KeepPort. Alerts with none of them (such as Watchdog) are not about
	// a node and are skipped.
	IDLabels []string `yaml:"id_labels"`
	// KeepPort keeps a ":port" suffix of the ID label's value.
	KeepPort bool `yaml:"keep_port"`
	// IDSuffix is appended to IDs that do not already end in it.
	IDSuffix string `yaml:"id_suffix"`
	// BearerToken, if set, is sent as "Authorization: Bearer <token>".
	BearerToken string `yaml:"bearer_token"`
	// Timeout bounds each request when the source makes its own HTTP
	// client; default DefaultTimeout.
	Timeout time.Duration `yaml:"timeout"`
}

// DefaultSeverities maps the common severity values to health:
//
//	critical, page, error   down
//	warning                 degraded
//	info, none              ignore
func DefaultSeverities() map[string]string {
	return map[string]string{
		"critical": SeverityDown, "page": SeverityDown, "error": SeverityDown,
		"warning": SeverityDegraded,
		"info":    SeverityIgnore, "none": SeverityIgnore,
	}
}

// Source turns Alertmanager's active alerts into node health. It is safe
// for concurrent use.
type Source struct {
	name       string
	alerts     string // URL of the alerts listing with its parameters
	opts       Options
	client     *http.Client
	severities map[string]disposition.Health // HealthUnknown: ignore
	unknown    disposition.Health
}

// Option changes how New builds a Source.
type Option func(*Source)

// WithHTTPClient makes the source use c instead of a client of its own.
func WithHTTPClient(c *http.Client) Option { return func(s *Source) { s.client = c } }

func parseSeverityHealth(v string) (disposition.Health, error) {
	switch v {
	case SeverityDown:
		return disposition.HealthDown, nil
	case SeverityDegraded:
		return disposition.HealthDegraded, nil
	case SeverityIgnore:
		return disposition.HealthUnknown, nil
	}
	return 0, fmt.Errorf("want %q, %q or %q, got %q", SeverityDown, SeverityDegraded, SeverityIgnore, v)
}

// New returns an Alertmanager source named name. It checks opts; an error
// is a *sources.ConfigError whose Path names the first bad option.
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
	for i, f := range opts.Filters {
		if !strings.ContainsAny(f, "=~") || strings.HasPrefix(strings.TrimSpace(f), "=") {
			return nil, bad("filters", "[%d]: %q is not a matcher like name=\"value\"", i, f)
		}
	}
	if opts.SeverityLabel == "" {
		opts.SeverityLabel = DefaultSeverityLabel
	}
	if opts.UnknownSeverity == "" {
		opts.UnknownSeverity = SeverityDegraded
	}
	s := &Source{name: name, opts: opts, severities: map[string]disposition.Health{}}
	if s.unknown, err = parseSeverityHealth(opts.UnknownSeverity); err != nil {
		return nil, bad("unknown_severity", "%v", err)
	}
	sev := DefaultSeverities()
	maps.Copy(sev, opts.Severities)
	for k, v := range sev {
		h, err := parseSeverityHealth(v)
		if err != nil {
			return nil, bad("severities", "%s: %v", k, err)
		}
		s.severities[k] = h
	}
	if len(opts.IDLabels) == 0 {
		s.opts.IDLabels = []string{DefaultIDLabel}
	}
	for _, l := range s.opts.IDLabels {
		if l == "" {
			return nil, bad("id_labels", "empty label name")
		}
	}
	switch {
	case opts.Timeout == 0:
		s.opts.Timeout = DefaultTimeout
	case opts.Timeout < 0:
		return nil, bad("timeout", "must be positive, got %s", opts.Timeout)
	}
	q := url.Values{
		"active":      {"true"},
		"silenced":    {fmt.Sprint(opts.IncludeSilenced)},
		"inhibited":   {fmt.Sprint(opts.IncludeInhibited)},
		"unprocessed": {"true"},
	}
	if len(opts.Filters) > 0 {
		q["filter"] = slices.Clone(opts.Filters)
	}
	if opts.Receiver != "" {
		q.Set("receiver", opts.Receiver)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/api/v2/alerts"
	u.RawQuery, u.Fragment = q.Encode(), ""
	s.alerts = u.String()
	for _, o := range options {
		o(s)
	}
	if s.client == nil {
		s.client = &http.Client{Timeout: s.opts.Timeout}
	}
	return s, nil
}

// Factory makes an Alertmanager source from its YAML options, for a
// sources.Registry.
func Factory(name string, options *yaml.Node) (sources.Source, error) {
	return sources.Decode(name, options, func(n string, o Options) (*Source, error) { return New(n, o) })
}

// Name returns the source's name.
func (s *Source) Name() string { return s.name }

// Alert is the part of Alertmanager's gettableAlert the source reads.
type Alert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt"`
	Fingerprint string            `json:"fingerprint"`
	Status      struct {
		State       string   `json:"state"`
		SilencedBy  []string `json:"silencedBy"`
		InhibitedBy []string `json:"inhibitedBy"`
	} `json:"status"`
}

// Fetch reads the active alerts and returns one Observation per node that
// has an alert that counts: its health is the worst its alerts' severities
// mean, and its Note lists their names (alertname), sorted. Nodes without
// alerts get no Observation, so their health comes from other sources.
func (s *Source) Fetch(ctx context.Context) ([]sources.Observation, error) {
	alerts, err := s.Alerts(ctx)
	if err != nil {
		return nil, fmt.Errorf("alertmanager: alerts: %w", err)
	}
	type node struct {
		health disposition.Health
		names  []string
	}
	nodes := map[string]*node{}
	for i := range alerts {
		a := &alerts[i]
		id := s.nodeID(a.Labels)
		if id == "" {
			continue
		}
		h, ok := s.severities[a.Labels[s.opts.SeverityLabel]]
		if !ok {
			h = s.unknown
		}
		if h == disposition.HealthUnknown {
			continue
		}
		n := nodes[id]
		if n == nil {
			n = &node{}
			nodes[id] = n
		}
		n.health = max(n.health, h) // degraded < down
		name := a.Labels["alertname"]
		if name == "" {
			name = "(unnamed)"
		}
		if !slices.Contains(n.names, name) {
			n.names = append(n.names, name)
		}
	}
	ids := slices.Sorted(maps.Keys(nodes))
	out := make([]sources.Observation, 0, len(ids))
	for _, id := range ids {
		n := nodes[id]
		slices.Sort(n.names)
		o := sources.Observe(id).Health(n.health)
		o.Note = strings.Join(n.names, ", ")
		out = append(out, *o)
	}
	return out, nil
}

func (s *Source) nodeID(labels map[string]string) string {
	var id string
	for _, l := range s.opts.IDLabels {
		if id = labels[l]; id != "" {
			break
		}
	}
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

// Alerts returns the alerts the options select, as Alertmanager lists
// them.
func (s *Source) Alerts(ctx context.Context) ([]Alert, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.alerts, nil)
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
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, &StatusError{StatusCode: resp.StatusCode, Body: strings.TrimSpace(string(b))}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, err
	}
	var alerts []Alert
	if err := json.Unmarshal(body, &alerts); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadResponse, err)
	}
	return alerts, nil
}
