package maas_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/sources"
	"github.com/fleetkit/fleetkit/sources/maas"
	"github.com/fleetkit/fleetkit/testkit/fakes"
	"github.com/fleetkit/fleetkit/testkit/fleet"
)

func genFleet(t testing.TB, size int) *fleet.Fleet {
	t.Helper()
	f, err := fleet.Generate(fleet.Config{Size: size, Seed: 11})
	require.NoError(t, err)
	return f
}

func newSource(t testing.TB, url string, opts maas.Options) *maas.Source {
	t.Helper()
	opts.URL = url + "/MAAS"
	if opts.APIKey == "" {
		opts.APIKey = fakes.DefaultMaaSAPIKey
	}
	s, err := maas.New("maas", opts)
	require.NoError(t, err)
	return s
}

func TestFetchMatchesFleet(t *testing.T) {
	f := genFleet(t, 500)
	srv := httptest.NewServer(fakes.NewMaaS(f, fakes.MaaSOptions{}))
	defer srv.Close()
	obs, err := newSource(t, srv.URL, maas.Options{Fields: map[string]string{"platform": "distro_series", "role": "pool"}}).
		Fetch(context.Background())
	require.NoError(t, err)
	got := map[string]sources.Observation{}
	for _, o := range obs {
		got[o.ID] = o
	}
	statuses := maas.DefaultStatusMap()
	seen := map[disposition.State]int{}
	bare := 0
	for _, n := range f.Nodes {
		if n.Kind != disposition.KindBaremetal {
			require.NotContains(t, got, n.ID, "MaaS has only bare metal")
			continue
		}
		bare++
		name, _ := fakes.MaaSStatus(n)
		st, err := disposition.ParseState(statuses[name])
		require.NoError(t, err)
		want := sources.Observe(n.ID).State(st).Role(n.Role).Platform(n.Platform).
			Label("maas_zone", strings.ToLower(n.Site)).Label("maas_pool", n.Role)
		if name == "Deployed" && n.Health == disposition.HealthDown {
			want.Health(disposition.HealthDown)
		}
		if diff := cmp.Diff(*want, got[n.ID]); diff != "" {
			t.Fatalf("node %s (-want +got):\n%s", n.ID, diff)
		}
		seen[st]++
	}
	require.Len(t, obs, bare)
	require.Greater(t, len(seen), 2, "fleet covers too few states to test the map: %v", seen)
}

func TestStatusTableAgreesWithFakeForServingStates(t *testing.T) {
	// The fake's statuses for each lifecycle state read back as that
	// state under the default map: a round trip through MaaS is lossless.
	sm := maas.DefaultStatusMap()
	for _, st := range []disposition.State{
		disposition.StateProvisioning, disposition.StateInService, disposition.StateMaintenance,
		disposition.StateDrained, disposition.StateRepair, disposition.StateDecommissioned,
	} {
		name, _ := fakes.MaaSStatus(&disposition.Node{State: st})
		require.Equal(t, st.String(), sm[name], name)
	}
}

func TestAuthorizationHeader(t *testing.T) {
	h := maas.Authorization("ck", "tk", "s3cr&t", "n1", time.Unix(1700000000, 0))
	require.Equal(t, `OAuth oauth_version="1.0", oauth_signature_method="PLAINTEXT", oauth_consumer_key="ck", `+
		`oauth_token="tk", oauth_signature="%26s3cr%2526t", oauth_nonce="n1", oauth_timestamp="1700000000"`, h)
}

func TestErrors(t *testing.T) {
	f := genFleet(t, 100)
	cases := []struct {
		name  string
		key   string
		fault fakes.Fault
		is    error
		msg   string
	}{
		{name: "wrong secret", key: "fleetkitConsumer0001:fleetkitToken000001:nope", is: maas.ErrUnauthorized, msg: "maas: machines: status 401"},
		{name: "5xx", fault: fakes.Fault{Status: 503}, msg: "maas: machines: status 503"},
		{name: "malformed", fault: fakes.Fault{Malformed: true}, is: maas.ErrBadResponse, msg: "maas: machines: bad response"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fake := fakes.NewMaaS(f, fakes.MaaSOptions{})
			if tc.fault != (fakes.Fault{}) {
				fake.Inject(tc.fault)
			}
			srv := httptest.NewServer(fake)
			defer srv.Close()
			_, err := newSource(t, srv.URL, maas.Options{APIKey: tc.key}).Fetch(context.Background())
			require.Error(t, err)
			if tc.is != nil {
				require.ErrorIs(t, err, tc.is)
			}
			require.Contains(t, err.Error(), tc.msg)
		})
	}
}

func TestSlowResponseHonoursContext(t *testing.T) {
	fake := fakes.NewMaaS(genFleet(t, 50), fakes.MaaSOptions{})
	fake.Inject(fakes.Fault{Latency: time.Hour})
	srv := httptest.NewServer(fake)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := newSource(t, srv.URL, maas.Options{}).Fetch(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestFiltersAndHostnameIDs(t *testing.T) {
	f := genFleet(t, 300)
	srv := httptest.NewServer(fakes.NewMaaS(f, fakes.MaaSOptions{}))
	defer srv.Close()
	obs, err := newSource(t, srv.URL, maas.Options{ID: "hostname", Filters: map[string][]string{"pool": {"mid"}}}).
		Fetch(context.Background())
	require.NoError(t, err)
	want := 0
	for _, n := range f.Nodes {
		if n.Kind == disposition.KindBaremetal && n.Role == "mid" {
			want++
		}
	}
	require.NotZero(t, want)
	require.Len(t, obs, want)
	for _, o := range obs {
		require.NotContains(t, o.ID, ".", "hostname, not FQDN")
		require.Equal(t, "mid", o.Values.Labels["maas_pool"])
	}
}

func TestMachineShapes(t *testing.T) {
	body := `[
	 {"system_id": "abc123", "hostname": "a", "fqdn": "a.maas", "status_name": "Deployed", "power_state": "off",
	  "zone": {"name": "z1"}, "pool": null, "tag_names": ["canary"], "osystem": "ubuntu", "distro_series": "jammy"},
	 {"system_id": "def456", "hostname": "b", "fqdn": "b.maas", "status_name": "Failed testing", "power_state": "on"},
	 {"system_id": "ghi789", "hostname": "c", "fqdn": "", "status_name": "Deployed"},
	 {"system_id": "jkl000", "hostname": "d", "fqdn": "d.maas", "status_name": "Some future status", "power_state": "off"}
	]`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, body)
	}))
	defer srv.Close()
	obs, err := newSource(t, srv.URL, maas.Options{Fields: map[string]string{
		"label.canary": "tag.canary", "platform": "platform", "label.maas_pool": "",
	}}).Fetch(context.Background())
	require.NoError(t, err)
	require.Len(t, obs, 3, "a machine without fqdn has no ID")
	require.Equal(t, disposition.HealthDown, obs[0].Values.Health)
	require.Equal(t, map[string]string{"canary": "true", "maas_zone": "z1"}, obs[0].Values.Labels)
	require.Equal(t, "ubuntu-jammy", obs[0].Values.Platform)
	require.Equal(t, disposition.StateRepair, obs[1].Values.State)
	require.False(t, obs[1].Known.Has(disposition.FieldHealth), "power on says nothing about health")
	require.False(t, obs[2].Known.Has(disposition.FieldState), "unknown status leaves the state unknown")
	require.False(t, obs[2].Known.Has(disposition.FieldHealth), "power off on a machine not deployed is not down")
}

func TestNewValidates(t *testing.T) {
	ok := maas.Options{URL: "http://maas:5240/MAAS", APIKey: "a:b:c"}
	cases := []struct {
		field string
		edit  func(*maas.Options)
	}{
		{"url", func(o *maas.Options) { o.URL = "" }},
		{"api_key", func(o *maas.Options) { o.APIKey = "a:b" }},
		{"api_key", func(o *maas.Options) { o.APIKey = "a::c" }},
		{"timeout", func(o *maas.Options) { o.Timeout = -1 }},
		{"id", func(o *maas.Options) { o.ID = "system_id" }},
		{"filters", func(o *maas.Options) { o.Filters = map[string][]string{"op": {"x"}} }},
		{"fields", func(o *maas.Options) { o.Fields = map[string]string{"metro": "colour"} }},
		{"fields", func(o *maas.Options) { o.Fields = map[string]string{"bogus": "zone"} }},
		{"status_map", func(o *maas.Options) { o.StatusMap = map[string]string{"Deployed": "up"} }},
	}
	for _, tc := range cases {
		o := ok
		tc.edit(&o)
		_, err := maas.New("m", o)
		var ce *sources.ConfigError
		require.ErrorAs(t, err, &ce, tc.field)
		require.Equal(t, tc.field, ce.Path, err.Error())
	}
	_, err := maas.New("m", ok)
	require.NoError(t, err)
}

func ExampleNew() {
	f, _ := fleet.Generate(fleet.Config{Size: 100, Seed: 1})
	srv := httptest.NewServer(fakes.NewMaaS(f, fakes.MaaSOptions{}))
	defer srv.Close()

	src, err := maas.New("maas", maas.Options{URL: srv.URL + "/MAAS", APIKey: fakes.DefaultMaaSAPIKey})
	if err != nil {
		fmt.Println(err)
		return
	}
	obs, err := src.Fetch(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	states := map[disposition.State]int{}
	for _, o := range obs {
		states[o.Values.State]++
	}
	fmt.Println(len(obs) > 0, states[disposition.StateInService] > len(obs)/2)
	// Output: true true
}
