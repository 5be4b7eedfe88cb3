package fakes

import (
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/testkit/fleet"
)

// AlertmanagerOptions configure the Alertmanager fake.
type AlertmanagerOptions struct {
	// Token, if set, is required as "Authorization: Bearer <token>", as
	// an authenticating proxy in front of Alertmanager would; without it
	// the answer is 401.
	Token string
}

// Alertmanager is an http.Handler that speaks Alertmanager's API v2
// alert listing (GET /api/v2/alerts) over a fleet, plus /-/healthy and
// /-/ready. Its alerts are:
//
//	NodeDown       severity critical, for every node whose health is down
//	HighErrorRate  severity warning, for every degraded or down node;
//	               inhibited by NodeDown on a down node
//	Watchdog       severity none, about no node
//
// with labels alertname, severity, instance ("<node ID>:9100"), job
// "node", metro and cluster. Alerts of nodes in maintenance are silenced.
// The listing filters like Alertmanager's: active, silenced, inhibited
// and unprocessed (default true each), filter matchers (name="value",
// name!="value", name=~"re", name!~"re"; quotes optional) and receiver (a
// regular expression; every alert goes to receiver "cdn-oncall").
type Alertmanager struct {
	Faults
	token  string
	alerts []amAlert
}

type amAlert struct {
	Annotations  map[string]string `json:"annotations"`
	EndsAt       string            `json:"endsAt"`
	Fingerprint  string            `json:"fingerprint"`
	Receivers    []amReceiver      `json:"receivers"`
	StartsAt     string            `json:"startsAt"`
	Status       amStatus          `json:"status"`
	UpdatedAt    string            `json:"updatedAt"`
	GeneratorURL string            `json:"generatorURL"`
	Labels       map[string]string `json:"labels"`
}

type amReceiver struct {
	Name string `json:"name"`
}

type amStatus struct {
	InhibitedBy []string `json:"inhibitedBy"`
	SilencedBy  []string `json:"silencedBy"`
	MutedBy     []string `json:"mutedBy"`
	State       string   `json:"state"`
}

// NewAlertmanager returns an Alertmanager fake serving alerts about f.
func NewAlertmanager(f *fleet.Fleet, opts AlertmanagerOptions) *Alertmanager {
	am := &Alertmanager{token: opts.Token}
	start := f.Config.Start
	const silence = "6a1f3c2e-0000-4000-8000-00000000f1ee"
	add := func(labels map[string]string, silenced bool, inhibitedBy string) string {
		fp := fmt.Sprintf("%016x", fnvHash(amKey(labels)))
		a := amAlert{
			Annotations:  map[string]string{"summary": labels["alertname"] + " on " + labels["instance"]},
			StartsAt:     start.Add(-time.Hour).UTC().Format(time.RFC3339Nano),
			UpdatedAt:    start.UTC().Format(time.RFC3339Nano),
			EndsAt:       start.Add(4 * time.Minute).UTC().Format(time.RFC3339Nano),
			Fingerprint:  fp,
			Receivers:    []amReceiver{{"cdn-oncall"}},
			Status:       amStatus{InhibitedBy: []string{}, SilencedBy: []string{}, MutedBy: []string{}, State: "active"},
			GeneratorURL: "http://prometheus.fleet.example:9090/graph?g0.expr=" + labels["alertname"],
			Labels:       labels,
		}
		if silenced {
			a.Status.SilencedBy = []string{silence}
			a.Status.State = "suppressed"
		}
		if inhibitedBy != "" {
			a.Status.InhibitedBy = []string{inhibitedBy}
			a.Status.State = "suppressed"
		}
		am.alerts = append(am.alerts, a)
		return fp
	}
	add(map[string]string{"alertname": "Watchdog", "severity": "none"}, false, "")
	for _, n := range f.Nodes {
		if n.Health != disposition.HealthDegraded && n.Health != disposition.HealthDown {
			continue
		}
		silenced := n.State == disposition.StateMaintenance
		labels := func(name, sev string) map[string]string {
			return map[string]string{
				"alertname": name, "severity": sev, "instance": n.ID + ":" + PrometheusPort,
				"job": "node", "metro": n.Metro, "cluster": n.Cluster,
			}
		}
		inhibitor := ""
		if n.Health == disposition.HealthDown {
			inhibitor = add(labels("NodeDown", "critical"), silenced, "")
		}
		add(labels("HighErrorRate", "warning"), silenced, inhibitor)
	}
	return am
}

func amKey(l map[string]string) string { return promKey(l) }

// ServeHTTP implements http.Handler.
func (am *Alertmanager) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	am.serve(w, r, am.handle)
}

type amMatcher struct {
	name, op, value string
	re              *regexp.Regexp
}

func (m amMatcher) matches(labels map[string]string) bool {
	v := labels[m.name]
	switch m.op {
	case "=":
		return v == m.value
	case "!=":
		return v != m.value
	case "=~":
		return m.re.MatchString(v)
	}
	return !m.re.MatchString(v)
}

func parseAMMatcher(s string) (amMatcher, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimSuffix(strings.TrimPrefix(s, "{"), "}")
	i := strings.IndexAny(s, "=!")
	if i <= 0 {
		return amMatcher{}, fmt.Errorf("bad matcher format: %s", s)
	}
	m := amMatcher{name: strings.TrimSpace(s[:i])}
	rest := s[i:]
	for _, op := range []string{"=~", "!~", "!=", "="} {
		if strings.HasPrefix(rest, op) {
			m.op = op
			rest = rest[len(op):]
			break
		}
	}
	if m.op == "" {
		return amMatcher{}, fmt.Errorf("bad matcher format: %s", s)
	}
	rest = strings.TrimSpace(rest)
	if strings.HasPrefix(rest, `"`) {
		v, err := strconv.Unquote(rest)
		if err != nil {
			return amMatcher{}, fmt.Errorf("bad matcher format: %s", s)
		}
		rest = v
	}
	m.value = rest
	if m.op == "=~" || m.op == "!~" {
		re, err := regexp.Compile("^(?:" + rest + ")$")
		if err != nil {
			return amMatcher{}, fmt.Errorf("bad matcher format: %s: %v", s, err)
		}
		m.re = re
	}
	return m, nil
}

func (am *Alertmanager) handle(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/-/healthy", "/-/ready":
		_, _ = w.Write([]byte("OK"))
		return
	case "/api/v2/alerts":
	default:
		http.NotFound(w, r)
		return
	}
	if am.token != "" && r.Header.Get("Authorization") != "Bearer "+am.token {
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return
	}
	if r.Method != http.MethodGet {
		writeJSON(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	q := r.URL.Query()
	flags := map[string]bool{"active": true, "silenced": true, "inhibited": true, "unprocessed": true}
	for k := range flags {
		if v := q.Get(k); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				writeJSON(w, http.StatusBadRequest, fmt.Sprintf("%s in query should be of type bool", k))
				return
			}
			flags[k] = b
		}
	}
	var ms []amMatcher
	for _, f := range q["filter"] {
		m, err := parseAMMatcher(f)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, err.Error())
			return
		}
		ms = append(ms, m)
	}
	var recv *regexp.Regexp
	if v := q.Get("receiver"); v != "" {
		re, err := regexp.Compile("^(?:" + v + ")$")
		if err != nil {
			writeJSON(w, http.StatusBadRequest, "failed to parse receiver param: "+err.Error())
			return
		}
		recv = re
	}
	out := []amAlert{}
	for _, a := range am.alerts {
		switch {
		case a.Status.State == "active" && !flags["active"],
			len(a.Status.SilencedBy) > 0 && !flags["silenced"],
			len(a.Status.InhibitedBy) > 0 && !flags["inhibited"]:
			continue
		}
		if recv != nil && !recv.MatchString(a.Receivers[0].Name) {
			continue
		}
		ok := true
		for _, m := range ms {
			if !m.matches(a.Labels) {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, a)
		}
	}
	writeJSON(w, http.StatusOK, out)
}
