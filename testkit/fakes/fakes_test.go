package fakes_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/sources"
	"github.com/fleetkit/fleetkit/sources/alertmanager"
	"github.com/fleetkit/fleetkit/sources/maas"
	"github.com/fleetkit/fleetkit/sources/netbox"
	"github.com/fleetkit/fleetkit/sources/prometheus"
	"github.com/fleetkit/fleetkit/sources/saltapi"
	"github.com/fleetkit/fleetkit/testkit/fakes"
	"github.com/fleetkit/fleetkit/testkit/fleet"
)

func genFleet(t testing.TB, size int) *fleet.Fleet {
	t.Helper()
	f, err := fleet.Generate(fleet.Config{Size: size, Seed: 21})
	require.NoError(t, err)
	return f
}

func get(t *testing.T, u string, header ...string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, b
}

type nbPage struct {
	Count    int               `json:"count"`
	Next     *string           `json:"next"`
	Previous *string           `json:"previous"`
	Results  []json.RawMessage `json:"results"`
}

func TestNetBoxPagination(t *testing.T) {
	f := genFleet(t, 300)
	srv := httptest.NewServer(fakes.NewNetBox(f, fakes.NetBoxOptions{MaxPageSize: 100}))
	defer srv.Close()
	auth := []string{"Authorization", "Token " + fakes.DefaultToken}

	code, _, body := get(t, srv.URL+"/api/dcim/devices/", auth...)
	require.Equal(t, http.StatusOK, code)
	var p nbPage
	require.NoError(t, json.Unmarshal(body, &p))
	require.Len(t, p.Results, fakes.NetBoxPaginateCount, "PAGINATE_COUNT without limit")
	require.Nil(t, p.Previous)
	require.NotNil(t, p.Next)
	next, err := url.Parse(*p.Next)
	require.NoError(t, err)
	require.Equal(t, strings.TrimPrefix(srv.URL, "http://"), next.Host, "absolute next link")
	require.Equal(t, "50", next.Query().Get("offset"))

	// Follow next links with limit above MAX_PAGE_SIZE: every device once.
	seen := map[string]bool{}
	u := srv.URL + "/api/dcim/devices/?limit=5000&status=active"
	pages := 0
	for u != "" {
		code, _, body = get(t, u, auth...)
		require.Equal(t, http.StatusOK, code)
		p = nbPage{}
		require.NoError(t, json.Unmarshal(body, &p))
		require.LessOrEqual(t, len(p.Results), 100, "MAX_PAGE_SIZE caps limit")
		for _, r := range p.Results {
			var d struct {
				Name   string
				Status struct{ Value string }
				URL    string
			}
			require.NoError(t, json.Unmarshal(r, &d))
			require.False(t, seen[d.Name], "device %s twice", d.Name)
			seen[d.Name] = true
			require.Equal(t, "active", d.Status.Value, "filter applied")
			require.True(t, strings.HasPrefix(d.URL, srv.URL+"/api/dcim/devices/"), d.URL)
		}
		u = ""
		if p.Next != nil {
			u = *p.Next
			require.Contains(t, u, "status=active", "next keeps the filters")
		}
		pages++
	}
	want := 0
	for _, n := range f.Nodes {
		if n.Kind == disposition.KindBaremetal && n.State == disposition.StateInService {
			want++
		}
	}
	require.Len(t, seen, want)
	require.Equal(t, p.Count, want)
	require.Equal(t, (want+99)/100, pages)

	code, _, body = get(t, srv.URL+"/api/dcim/devices/1/", auth...)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, string(body), `"id":1,`)
	code, _, _ = get(t, srv.URL+"/api/dcim/devices/999999/", auth...)
	require.Equal(t, http.StatusNotFound, code)
	code, _, body = get(t, srv.URL+"/api/dcim/devices/")
	require.Equal(t, http.StatusForbidden, code)
	require.Contains(t, string(body), "Authentication credentials were not provided.")
}

func TestFaults(t *testing.T) {
	f := genFleet(t, 50)
	fake := fakes.NewNetBox(f, fakes.NetBoxOptions{})
	fake.Inject(fakes.Fault{Path: "/sites/", Request: 2, Status: 503})
	fake.Inject(fakes.Fault{Path: "/regions/", Malformed: true})
	srv := httptest.NewServer(fake)
	defer srv.Close()
	auth := []string{"Authorization", "Token " + fakes.DefaultToken}

	code, _, _ := get(t, srv.URL+"/api/dcim/sites/", auth...)
	require.Equal(t, http.StatusOK, code)
	code, _, _ = get(t, srv.URL+"/api/dcim/sites/", auth...)
	require.Equal(t, http.StatusServiceUnavailable, code, "second matching request fails")
	code, _, _ = get(t, srv.URL+"/api/dcim/sites/", auth...)
	require.Equal(t, http.StatusOK, code, "only the second")
	code, _, body := get(t, srv.URL+"/api/dcim/regions/", auth...)
	require.Equal(t, http.StatusOK, code)
	require.False(t, json.Valid(body), "malformed body is not JSON: %s", body)
	require.Equal(t, 4, fake.Requests())
	fake.ClearFaults()
	_, _, body = get(t, srv.URL+"/api/dcim/regions/", auth...)
	require.True(t, json.Valid(body))

	fake.Inject(fakes.Fault{Latency: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/api/dcim/sites/", nil)
	_, err := http.DefaultClient.Do(req)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	// srv.Close (deferred) returns only if the stalled handler noticed.
}

func TestPrometheusQueries(t *testing.T) {
	f := genFleet(t, 200)
	fake := fakes.NewPrometheus(f)
	fake.Now = func() time.Time { return f.Config.Start }
	srv := httptest.NewServer(fake)
	defer srv.Close()
	type resp struct {
		Status    string
		ErrorType string
		Error     string
		Data      struct {
			ResultType string
			Result     []struct {
				Metric map[string]string
				Value  []any
			}
		}
	}
	query := func(q string) (int, resp) {
		code, _, body := get(t, srv.URL+"/api/v1/query?"+url.Values{"query": {q}}.Encode())
		var r resp
		require.NoError(t, json.Unmarshal(body, &r), string(body))
		return code, r
	}
	targets := 0
	var traffic float64
	for _, n := range f.Nodes {
		if n.Health != disposition.HealthUnknown && n.State != disposition.StateDecommissioned {
			targets++
			if n.Health != disposition.HealthDown {
				traffic += n.TrafficGbps
			}
		}
	}
	cases := []struct {
		q      string
		series int
		check  func(r resp)
	}{
		{q: `up`, series: targets, check: func(r resp) {
			require.Equal(t, "up", r.Data.Result[0].Metric["__name__"])
			require.Equal(t, float64(f.Config.Start.Unix()), r.Data.Result[0].Value[0])
		}},
		{q: `count(up)`, series: 1, check: func(r resp) { require.Equal(t, float64ToString(float64(targets)), r.Data.Result[0].Value[1]) }},
		{q: `sum(rate(node_network_transmit_bytes_total[5m])) * 8 / 1e9`, series: 1, check: func(r resp) {
			require.InDelta(t, traffic, parse(t, r.Data.Result[0].Value[1]), 1e-6)
		}},
		{q: `sum without (device) (node_network_speed_bytes{device=~"eth[01]", job!="x"})`, series: -1, check: func(r resp) {
			_, hasDevice := r.Data.Result[0].Metric["device"]
			require.False(t, hasDevice)
			require.Equal(t, "node", r.Data.Result[0].Metric["job"])
		}},
		{q: `max(up) by (job)`, series: 1},
		{q: `{__name__="up", instance!~".*:9100"}`, series: 0},
	}
	for _, tc := range cases {
		code, r := query(tc.q)
		require.Equal(t, http.StatusOK, code, tc.q)
		require.Equal(t, "success", r.Status)
		require.Equal(t, "vector", r.Data.ResultType)
		if tc.series >= 0 {
			require.Len(t, r.Data.Result, tc.series, tc.q)
		}
		if tc.check != nil {
			tc.check(r)
		}
	}
	for _, bad := range []string{``, `sum(`, `up[5m]`, `rate(up)`, `up + up`, `{}`, `up{a=~"("}`, `topk(3, up)`, `up * x`} {
		code, r := query(bad)
		require.Equal(t, http.StatusBadRequest, code, bad)
		require.Equal(t, "error", r.Status)
		require.Equal(t, "bad_data", r.ErrorType, bad)
	}
}

func float64ToString(v float64) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func parse(t *testing.T, v any) float64 {
	t.Helper()
	var f float64
	require.NoError(t, json.Unmarshal([]byte(v.(string)), &f))
	return f
}

func FuzzPrometheusQuery(f *testing.F) {
	for _, s := range []string{`up`, `sum by (instance) (rate(x{a="b"}[5m])) * 8`, `{a=~"x|y"}`, `avg without () (x) / 3`, `"`, `rate(x[1e])`} {
		f.Add(s)
	}
	fl, err := fleet.Generate(fleet.Config{Size: 10, Seed: 1})
	require.NoError(f, err)
	h := fakes.NewPrometheus(fl)
	f.Fuzz(func(t *testing.T, q string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/query?"+url.Values{"query": {q}}.Encode(), nil))
		if rec.Code != http.StatusOK && rec.Code != http.StatusBadRequest {
			t.Fatalf("query %q: status %d", q, rec.Code)
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("query %q: invalid JSON %q", q, rec.Body.String())
		}
	})
}

func TestSaltProtocol(t *testing.T) {
	f := genFleet(t, 30)
	fake := fakes.NewSalt(f, fakes.SaltOptions{})
	srv := httptest.NewServer(fake)
	defer srv.Close()

	// Form-encoded login, as curl -d sends it.
	resp, err := http.PostForm(srv.URL+"/login", url.Values{"username": {"fleetkit"}, "password": {"fleetkit"}, "eauth": {"pam"}})
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	tok := resp.Header.Get("X-Auth-Token")
	require.Len(t, tok, 40)

	post := func(form url.Values, token string) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Auth-Token", token)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var out struct{ Return []map[string]any }
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == http.StatusOK {
			require.NoError(t, json.Unmarshal(b, &out), string(b))
			return resp.StatusCode, out.Return[0]
		}
		return resp.StatusCode, nil
	}
	target := f.Nodes[0].ID + "," + f.Nodes[1].ID
	code, ret := post(url.Values{"client": {"local"}, "tgt": {target}, "tgt_type": {"list"}, "fun": {"grains.item"}, "arg": {"role", "os"}}, tok)
	require.Equal(t, http.StatusOK, code)
	for _, n := range f.Nodes[:2] {
		if n.Health == disposition.HealthDown {
			require.NotContains(t, ret, n.ID)
			continue
		}
		require.Equal(t, map[string]any{"role": n.Role, "os": "Debian"}, ret[n.ID])
	}
	code, ret = post(url.Values{"client": {"local"}, "tgt": {"dns-*"}, "fun": {"test.ping"}}, tok)
	require.Equal(t, http.StatusOK, code)
	for id := range ret {
		require.True(t, strings.HasPrefix(id, "dns-"), id)
	}
	code, _ = post(url.Values{"client": {"local"}, "tgt": {"*"}, "fun": {"test.ping"}}, "bogus")
	require.Equal(t, http.StatusUnauthorized, code)
	fake.ExpireTokens()
	code, _ = post(url.Values{"client": {"local"}, "tgt": {"*"}, "fun": {"test.ping"}}, tok)
	require.Equal(t, http.StatusUnauthorized, code)
}

func TestMaaSAuth(t *testing.T) {
	srv := httptest.NewServer(fakes.NewMaaS(genFleet(t, 20), fakes.MaaSOptions{}))
	defer srv.Close()
	code, h, _ := get(t, srv.URL+"/MAAS/api/2.0/machines/")
	require.Equal(t, http.StatusUnauthorized, code)
	require.Contains(t, h.Get("WWW-Authenticate"), "OAuth")
	parts := strings.Split(fakes.DefaultMaaSAPIKey, ":")
	code, _, body := get(t, srv.URL+"/MAAS/api/2.0/machines/?zone=nowhere", "Authorization",
		maas.Authorization(parts[0], parts[1], parts[2], "nonce", time.Now()))
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "[]", string(body))
}

func TestAlertmanagerBadFilter(t *testing.T) {
	srv := httptest.NewServer(fakes.NewAlertmanager(genFleet(t, 20), fakes.AlertmanagerOptions{}))
	defer srv.Close()
	code, _, _ := get(t, srv.URL+"/api/v2/alerts?filter=nonsense")
	require.Equal(t, http.StatusBadRequest, code)
	code, _, body := get(t, srv.URL+"/api/v2/alerts?filter=alertname%3DWatchdog")
	require.Equal(t, http.StatusOK, code)
	var alerts []map[string]any
	require.NoError(t, json.Unmarshal(body, &alerts))
	require.Len(t, alerts, 1)
}

// TestMuxServesEveryAdapter runs every HTTP adapter against one Mux, as
// a container fixture will.
func TestMuxServesEveryAdapter(t *testing.T) {
	f := genFleet(t, 300)
	srv := httptest.NewServer(fakes.Mux(f))
	defer srv.Close()
	ctx := context.Background()
	mk := func(s sources.Source, err error) sources.Source {
		t.Helper()
		require.NoError(t, err)
		return s
	}
	srcs := []sources.Source{
		mk(netbox.New("netbox", netbox.Options{URL: srv.URL + fakes.NetBoxPrefix, Token: fakes.DefaultToken, PageSize: 64})),
		mk(maas.New("maas", maas.Options{URL: srv.URL + fakes.MaaSPrefix + "/MAAS", APIKey: fakes.DefaultMaaSAPIKey})),
		mk(prometheus.New("prometheus", prometheus.Options{URL: srv.URL + fakes.PrometheusPrefix, Up: `up{job="node"}`})),
		mk(alertmanager.New("alertmanager", alertmanager.Options{URL: srv.URL + fakes.AlertmanagerPrefix})),
		mk(saltapi.New("salt", saltapi.Options{URL: srv.URL + fakes.SaltPrefix, Username: fakes.DefaultSaltUser, Password: fakes.DefaultSaltPassword})),
	}
	for _, s := range srcs {
		obs, err := s.Fetch(ctx)
		require.NoError(t, err, s.Name())
		require.NotEmpty(t, obs, s.Name())
	}
	code, _, _ := get(t, srv.URL+"/healthz")
	require.Equal(t, http.StatusOK, code)
	// NetBox's next links keep the mount point.
	_, _, body := get(t, srv.URL+"/netbox/api/dcim/devices/?limit=1", "Authorization", "Token "+fakes.DefaultToken)
	var p nbPage
	require.NoError(t, json.Unmarshal(body, &p))
	require.NotNil(t, p.Next)
	require.True(t, strings.HasPrefix(*p.Next, srv.URL+"/netbox/api/dcim/devices/"), *p.Next)
}
