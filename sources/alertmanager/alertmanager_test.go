package alertmanager_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/sources"
	"github.com/fleetkit/fleetkit/sources/alertmanager"
	"github.com/fleetkit/fleetkit/testkit/fakes"
	"github.com/fleetkit/fleetkit/testkit/fleet"
)

func genFleet(t testing.TB, size int) *fleet.Fleet {
	t.Helper()
	f, err := fleet.Generate(fleet.Config{Size: size, Seed: 5})
	require.NoError(t, err)
	return f
}

func newSource(t testing.TB, opts alertmanager.Options) *alertmanager.Source {
	t.Helper()
	s, err := alertmanager.New("alerts", opts)
	require.NoError(t, err)
	return s
}

func fetch(t *testing.T, h http.Handler, opts alertmanager.Options) map[string]sources.Observation {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	opts.URL = srv.URL
	obs, err := newSource(t, opts).Fetch(context.Background())
	require.NoError(t, err)
	m := map[string]sources.Observation{}
	for _, o := range obs {
		require.Equal(t, sources.FieldSet(0).With(disposition.FieldHealth), o.Known, "only health is observed")
		m[o.ID] = o
	}
	return m
}

func TestFetchMatchesFleet(t *testing.T) {
	f := genFleet(t, 2000)
	fake := fakes.NewAlertmanager(f, fakes.AlertmanagerOptions{})

	got := fetch(t, fake, alertmanager.Options{})
	var degraded, down, silenced int
	for _, n := range f.Nodes {
		o, ok := got[n.ID]
		bad := n.Health == disposition.HealthDegraded || n.Health == disposition.HealthDown
		if !bad || n.State == disposition.StateMaintenance {
			if bad {
				silenced++
			}
			require.False(t, ok, "node %s: no alert that counts", n.ID)
			continue
		}
		require.True(t, ok, n.ID)
		require.Equal(t, n.Health, o.Values.Health, n.ID)
		if n.Health == disposition.HealthDown {
			down++
			require.Equal(t, "NodeDown", o.Note, "HighErrorRate is inhibited")
		} else {
			degraded++
			require.Equal(t, "HighErrorRate", o.Note)
		}
	}
	require.NotZero(t, degraded)
	require.NotZero(t, down)
	require.Len(t, got, degraded+down)

	// Counting inhibited and silenced alerts too.
	all := fetch(t, fake, alertmanager.Options{IncludeInhibited: true, IncludeSilenced: true})
	require.Len(t, all, degraded+down+silenced)
	for _, n := range f.Nodes {
		if n.Health == disposition.HealthDown {
			require.Equal(t, "HighErrorRate, NodeDown", all[n.ID].Note, "names are sorted")
			require.Equal(t, disposition.HealthDown, all[n.ID].Values.Health, "the worst alert wins")
		}
	}
}

func TestFiltersAndSeverities(t *testing.T) {
	f := genFleet(t, 2000)
	fake := fakes.NewAlertmanager(f, fakes.AlertmanagerOptions{Token: "s3cret"})
	metro := f.Nodes[0].Metro
	got := fetch(t, fake, alertmanager.Options{
		BearerToken: "s3cret",
		Filters:     []string{`metro="` + metro + `"`, `alertname=~"High.*"`},
		Receiver:    "cdn-.*",
		Severities:  map[string]string{"warning": "down"},
	})
	for id, o := range got {
		require.Equal(t, disposition.HealthDown, o.Values.Health, id)
		require.Equal(t, "HighErrorRate", o.Note)
	}
	for _, n := range f.Nodes {
		if n.Metro == metro && n.Health == disposition.HealthDegraded && n.State != disposition.StateMaintenance {
			require.Contains(t, got, n.ID)
		}
		if n.Metro != metro {
			require.NotContains(t, got, n.ID)
		}
	}
}

func TestLabelsAndUnknownSeverities(t *testing.T) {
	body := `[
	 {"labels": {"alertname": "A", "severity": "warning", "instance": "n1:9100"}, "status": {"state": "active"}},
	 {"labels": {"alertname": "B", "severity": "critical", "host": "n2"}, "status": {"state": "active"}},
	 {"labels": {"alertname": "C", "severity": "sev3", "instance": "n3"}, "status": {"state": "active"}},
	 {"labels": {"alertname": "D", "severity": "info", "instance": "n4"}, "status": {"state": "active"}},
	 {"labels": {"alertname": "Watchdog"}, "status": {"state": "active"}},
	 {"labels": {"severity": "warning", "instance": "n5"}, "status": {"state": "active"},
	  "startsAt": "2026-01-05T11:00:00Z", "endsAt": "2026-01-05T13:00:00.123Z"}
	]`
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, body) })
	got := fetch(t, h, alertmanager.Options{IDLabels: []string{"instance", "host"}, IDSuffix: ".x"})
	health := map[string]disposition.Health{}
	for id, o := range got {
		health[id] = o.Values.Health
	}
	require.Equal(t, map[string]disposition.Health{
		"n1.x": disposition.HealthDegraded, "n2.x": disposition.HealthDown,
		"n3.x": disposition.HealthDegraded, "n5.x": disposition.HealthDegraded,
	}, health)
	require.Equal(t, "(unnamed)", got["n5.x"].Note)

	got = fetch(t, h, alertmanager.Options{UnknownSeverity: "ignore"})
	require.NotContains(t, got, "n3", "unknown severity ignored")
	require.NotContains(t, got, "n2", "host is not an ID label by default")
}

func TestErrors(t *testing.T) {
	f := genFleet(t, 100)
	cases := []struct {
		name  string
		fault fakes.Fault
		token string
		is    error
		msg   string
	}{
		{name: "5xx", fault: fakes.Fault{Status: 500}, msg: "alertmanager: alerts: status 500"},
		{name: "malformed", fault: fakes.Fault{Malformed: true}, is: alertmanager.ErrBadResponse},
		{name: "unauthorized", token: "wrong", is: alertmanager.ErrUnauthorized, msg: "status 401"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fake := fakes.NewAlertmanager(f, fakes.AlertmanagerOptions{Token: "right"})
			if tc.fault != (fakes.Fault{}) {
				fake.Inject(tc.fault)
			}
			srv := httptest.NewServer(fake)
			defer srv.Close()
			token := tc.token
			if token == "" {
				token = "right"
			}
			_, err := newSource(t, alertmanager.Options{URL: srv.URL, BearerToken: token}).Fetch(context.Background())
			require.Error(t, err)
			if tc.is != nil {
				require.ErrorIs(t, err, tc.is)
			}
			require.Contains(t, err.Error(), tc.msg)
		})
	}
	t.Run("bad filter is the server's 400", func(t *testing.T) {
		srv := httptest.NewServer(fakes.NewAlertmanager(f, fakes.AlertmanagerOptions{}))
		defer srv.Close()
		_, err := newSource(t, alertmanager.Options{URL: srv.URL, Filters: []string{`a=~"("`}}).Fetch(context.Background())
		require.ErrorContains(t, err, "status 400")
	})
	t.Run("slow", func(t *testing.T) {
		fake := fakes.NewAlertmanager(f, fakes.AlertmanagerOptions{})
		fake.Inject(fakes.Fault{Latency: time.Hour})
		srv := httptest.NewServer(fake)
		defer srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := newSource(t, alertmanager.Options{URL: srv.URL}).Fetch(ctx)
		require.ErrorIs(t, err, context.DeadlineExceeded)
	})
}

func TestNewValidates(t *testing.T) {
	ok := alertmanager.Options{URL: "http://am:9093"}
	cases := []struct {
		field string
		edit  func(*alertmanager.Options)
	}{
		{"url", func(o *alertmanager.Options) { o.URL = "am:9093" }},
		{"filters", func(o *alertmanager.Options) { o.Filters = []string{"team"} }},
		{"unknown_severity", func(o *alertmanager.Options) { o.UnknownSeverity = "meh" }},
		{"severities", func(o *alertmanager.Options) { o.Severities = map[string]string{"warning": "bad"} }},
		{"id_labels", func(o *alertmanager.Options) { o.IDLabels = []string{""} }},
		{"timeout", func(o *alertmanager.Options) { o.Timeout = -1 }},
	}
	for _, tc := range cases {
		o := ok
		tc.edit(&o)
		_, err := alertmanager.New("a", o)
		var ce *sources.ConfigError
		require.ErrorAs(t, err, &ce, tc.field)
		require.Equal(t, tc.field, ce.Path, err.Error())
	}
}

func ExampleNew() {
	f, _ := fleet.Generate(fleet.Config{Size: 2000, Seed: 1})
	srv := httptest.NewServer(fakes.NewAlertmanager(f, fakes.AlertmanagerOptions{}))
	defer srv.Close()

	src, err := alertmanager.New("alerts", alertmanager.Options{URL: srv.URL})
	if err != nil {
		fmt.Println(err)
		return
	}
	obs, err := src.Fetch(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	notes := map[string]disposition.Health{}
	for _, o := range obs {
		notes[o.Note] = o.Values.Health
	}
	fmt.Println(notes)
	// Output: map[HighErrorRate:degraded NodeDown:down]
}
