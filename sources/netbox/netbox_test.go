package netbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/sources"
	"github.com/fleetkit/fleetkit/sources/netbox"
	"github.com/fleetkit/fleetkit/testkit/fakes"
	"github.com/fleetkit/fleetkit/testkit/fleet"
)

func genFleet(t testing.TB, size int) *fleet.Fleet {
	t.Helper()
	f, err := fleet.Generate(fleet.Config{Size: size, Seed: 7})
	require.NoError(t, err)
	return f
}

func newSource(t testing.TB, url string, opts netbox.Options) *netbox.Source {
	t.Helper()
	opts.URL = url
	if opts.Token == "" {
		opts.Token = fakes.DefaultToken
	}
	s, err := netbox.New("netbox", opts)
	require.NoError(t, err)
	return s
}

// expected is what the netbox source should observe of n through the
// fake, with kind mapped from the custom field.
func expected(n *disposition.Node) sources.Observation {
	o := sources.Observe(n.ID).Kind(n.Kind).Region(n.Region).Metro(n.Metro).Site(n.Site).
		Cluster(n.Cluster).Rack(n.Rack).Timezone(n.Timezone).Role(n.Role).Platform(n.Platform).
		State(n.State).ReleaseState(n.ReleaseState).Capacity(n.CapacityGbps)
	if n.Kind != disposition.KindBaremetal {
		// VMs have no rack in NetBox.
		o.Known &^= 1 << disposition.FieldRack
		o.Values.Rack = ""
	}
	for k, v := range n.Labels {
		o.Label(k, v)
	}
	return *o
}

func byID(obs []sources.Observation) map[string]sources.Observation {
	m := make(map[string]sources.Observation, len(obs))
	for _, o := range obs {
		m[o.ID] = o
	}
	return m
}

func TestFetchMatchesFleet(t *testing.T) {
	f := genFleet(t, 400)
	for _, legacy := range []bool{false, true} {
		t.Run(fmt.Sprintf("legacy_device_role=%v", legacy), func(t *testing.T) {
			fake := fakes.NewNetBox(f, fakes.NetBoxOptions{LegacyDeviceRole: legacy, MaxPageSize: 40})
			srv := httptest.NewServer(fake)
			defer srv.Close()
			// A page size above the server's cap: the source must follow
			// next links rather than trust its own limit.
			s := newSource(t, srv.URL, netbox.Options{PageSize: 100, Fields: map[string]string{"kind": "cf.kind"}})
			obs, err := s.Fetch(context.Background())
			require.NoError(t, err)
			require.Len(t, obs, len(f.Nodes))
			got := byID(obs)
			var kinds [4]int
			for _, n := range f.Nodes {
				kinds[n.Kind]++
				o, ok := got[n.ID]
				require.True(t, ok, "node %s not observed", n.ID)
				if diff := cmp.Diff(expected(n), o); diff != "" {
					t.Fatalf("node %s (-want +got):\n%s", n.ID, diff)
				}
			}
			require.NotZero(t, kinds[disposition.KindBaremetal])
			require.NotZero(t, kinds[disposition.KindVM]+kinds[disposition.KindContainer], "fleet has no VMs: the test would not cover them")
			require.Greater(t, fake.Requests(), len(f.Nodes)/40, "pages were not capped by the server")
		})
	}
}

func TestDefaultKindComesFromEndpoint(t *testing.T) {
	f := genFleet(t, 300)
	srv := httptest.NewServer(fakes.NewNetBox(f, fakes.NetBoxOptions{}))
	defer srv.Close()
	obs, err := newSource(t, srv.URL, netbox.Options{}).Fetch(context.Background())
	require.NoError(t, err)
	got := byID(obs)
	for _, n := range f.Nodes {
		want := disposition.KindVM
		if n.Kind == disposition.KindBaremetal {
			want = disposition.KindBaremetal
		}
		require.Equal(t, want, got[n.ID].Values.Kind, n.ID)
	}
}

func TestFiltersAndSkips(t *testing.T) {
	f := genFleet(t, 300)
	srv := httptest.NewServer(fakes.NewNetBox(f, fakes.NetBoxOptions{}))
	defer srv.Close()
	s := newSource(t, srv.URL, netbox.Options{
		Filters:             map[string][]string{"status": {"failed", "offline"}, "exclude": {"config_context"}},
		SkipVirtualMachines: true,
	})
	obs, err := s.Fetch(context.Background())
	require.NoError(t, err)
	want := 0
	for _, n := range f.Nodes {
		if n.Kind == disposition.KindBaremetal && (n.State == disposition.StateRepair || n.State == disposition.StateMaintenance) {
			want++
		}
	}
	require.Len(t, obs, want)
	for _, o := range obs {
		require.Contains(t, []disposition.State{disposition.StateRepair, disposition.StateMaintenance}, o.Values.State)
		require.Equal(t, disposition.KindBaremetal, o.Values.Kind)
	}
}

func TestFieldMappingOverrides(t *testing.T) {
	f := genFleet(t, 100)
	srv := httptest.NewServer(fakes.NewNetBox(f, fakes.NetBoxOptions{}))
	defer srv.Close()
	s := newSource(t, srv.URL, netbox.Options{
		Fields: map[string]string{
			"region":        "", // removed: no regions listing needed
			"timezone":      "", // nor sites
			"metro":         "", //
			"label.tenant":  "tenant.slug",
			"label.ip":      "primary_ip4",
			"version.model": "device_type.slug",
		},
		StatusMap:   map[string]string{"active": "", "failed": "maintenance"},
		NameSuffix:  ".fleet.example",
		SkipDevices: false,
	})
	obs, err := s.Fetch(context.Background())
	require.NoError(t, err)
	got := byID(obs)
	for _, n := range f.Nodes {
		o := got[n.ID]
		require.False(t, o.Known.Has(disposition.FieldRegion), "region was unmapped")
		require.False(t, o.Known.Has(disposition.FieldMetro))
		require.Equal(t, "cdn", o.Values.Labels["tenant"])
		require.True(t, strings.HasPrefix(o.Values.Labels["ip"], "10."), o.Values.Labels["ip"])
		switch n.State {
		case disposition.StateInService:
			require.False(t, o.Known.Has(disposition.FieldState), "active was mapped to unknown")
		case disposition.StateRepair:
			require.Equal(t, disposition.StateMaintenance, o.Values.State)
		}
		if n.Kind == disposition.KindBaremetal {
			require.Equal(t, "cdn-"+n.Labels["hw"], o.Values.Versions["model"])
		}
	}
}

func TestErrors(t *testing.T) {
	f := genFleet(t, 200)
	cases := []struct {
		name  string
		fault fakes.Fault
		token string
		is    error
		msg   string
	}{
		{name: "bad token", token: "wrong", is: netbox.ErrUnauthorized, msg: "netbox: sites page 1: status 403"},
		{name: "5xx on page 3", fault: fakes.Fault{Path: "/api/dcim/devices/", Request: 3, Status: 500}, msg: "netbox: devices page 3: status 500"},
		{name: "malformed json", fault: fakes.Fault{Path: "/virtual-machines/", Request: 1, Malformed: true}, is: netbox.ErrBadResponse, msg: "netbox: virtual-machines page 1"},
		{name: "sites down", fault: fakes.Fault{Path: "/api/dcim/sites/", Status: 502}, msg: "netbox: sites page 1: status 502"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fake := fakes.NewNetBox(f, fakes.NetBoxOptions{})
			if tc.fault != (fakes.Fault{}) {
				fake.Inject(tc.fault)
			}
			srv := httptest.NewServer(fake)
			defer srv.Close()
			s := newSource(t, srv.URL, netbox.Options{Token: tc.token, PageSize: 50})
			_, err := s.Fetch(context.Background())
			require.Error(t, err)
			if tc.is != nil {
				require.ErrorIs(t, err, tc.is)
			}
			require.Contains(t, err.Error(), tc.msg)
			var se *netbox.StatusError
			if strings.Contains(tc.msg, "status") {
				require.ErrorAs(t, err, &se)
			}
		})
	}
}

func TestSlowResponseHonoursContext(t *testing.T) {
	fake := fakes.NewNetBox(genFleet(t, 50), fakes.NetBoxOptions{})
	fake.Inject(fakes.Fault{Latency: time.Hour})
	srv := httptest.NewServer(fake)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := newSource(t, srv.URL, netbox.Options{}).Fetch(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

// listHandler serves a NetBox-shaped list whose next link is chosen by
// the test, to drive the source's pagination guards.
func listHandler(next func(r *http.Request, n int64) any) (http.Handler, *atomic.Int64) {
	var calls atomic.Int64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.URL.Path, "devices") {
			_, _ = io.WriteString(w, `{"count":0,"next":null,"previous":null,"results":[]}`)
			return
		}
		n := calls.Add(1)
		body, _ := json.Marshal(map[string]any{
			"count": 1000, "next": next(r, n), "previous": nil,
			"results": []any{map[string]any{"id": n, "name": "dev" + strconv.FormatInt(n, 10), "status": map[string]string{"value": "active", "label": "Active"}}},
		})
		_, _ = w.Write(body)
	}), &calls
}

func TestPaginationGuards(t *testing.T) {
	t.Run("next loop", func(t *testing.T) {
		h, _ := listHandler(func(r *http.Request, n int64) any {
			return "http://" + r.Host + "/api/dcim/devices/?limit=1&offset=" + strconv.FormatInt(min(n, 3), 10)
		})
		srv := httptest.NewServer(h)
		defer srv.Close()
		_, err := newSource(t, srv.URL, netbox.Options{SkipVirtualMachines: true}).Fetch(context.Background())
		require.ErrorIs(t, err, netbox.ErrPagination)
		require.Contains(t, err.Error(), "seen before")
	})
	t.Run("max pages", func(t *testing.T) {
		h, calls := listHandler(func(r *http.Request, n int64) any {
			return "http://" + r.Host + "/api/dcim/devices/?limit=1&offset=" + strconv.FormatInt(n, 10)
		})
		srv := httptest.NewServer(h)
		defer srv.Close()
		_, err := newSource(t, srv.URL, netbox.Options{MaxPages: 5, SkipVirtualMachines: true}).Fetch(context.Background())
		require.ErrorIs(t, err, netbox.ErrPagination)
		require.Equal(t, int64(5), calls.Load())
	})
	t.Run("next on another host stays on ours", func(t *testing.T) {
		h, calls := listHandler(func(r *http.Request, n int64) any {
			if n >= 3 {
				return nil
			}
			return "https://elsewhere.invalid:8443/api/dcim/devices/?limit=1&offset=" + strconv.FormatInt(n, 10)
		})
		srv := httptest.NewServer(h)
		defer srv.Close()
		obs, err := newSource(t, srv.URL, netbox.Options{SkipVirtualMachines: true}).Fetch(context.Background())
		require.NoError(t, err)
		require.Len(t, obs, 3)
		require.Equal(t, int64(3), calls.Load())
	})
	t.Run("not a list", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, `{"detail":"Not found."}`)
		}))
		defer srv.Close()
		_, err := newSource(t, srv.URL, netbox.Options{}).Fetch(context.Background())
		require.ErrorIs(t, err, netbox.ErrBadResponse)
	})
}

func TestNestedObjectsAndCustomFields(t *testing.T) {
	dev := `{"id": 9, "name": "edge-1", "status": {"value": "planned", "label": "Planned"},
		"site": {"id": 1, "url": "x", "display": "DEN1", "name": "DEN1", "slug": "den1"},
		"role": null, "device_role": {"id": 2, "name": "Edge", "slug": "edge"},
		"platform": null, "rack": null, "cluster": null, "tenant": null,
		"tags": [{"id": 1, "name": "tier:1", "slug": "tier-1"}, {"id": 2, "name": "canary", "slug": "canary"}],
		"custom_fields": {"release_state": {"id": 4, "name": "Trial", "slug": "trial"},
			"capacity_gbps": 40, "owners": ["a", "b"], "flag": true, "empty": null}}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		results := "[]"
		if strings.Contains(r.URL.Path, "devices") {
			results = "[" + dev + "]"
		}
		_, _ = io.WriteString(w, `{"count":1,"next":null,"previous":null,"results":`+results+`}`)
	}))
	defer srv.Close()
	s := newSource(t, srv.URL, netbox.Options{Fields: map[string]string{
		"label.owners": "cf.owners", "label.flag": "cf.flag", "label.empty": "cf.empty",
		"label.canary": "tag.canary", "label.missing": "tag.absent",
	}})
	obs, err := s.Fetch(context.Background())
	require.NoError(t, err)
	require.Len(t, obs, 1)
	o := obs[0]
	require.Equal(t, "edge", o.Values.Role, "device_role of NetBox < 4 is read")
	require.Equal(t, "trial", o.Values.ReleaseState)
	require.Equal(t, 40.0, o.Values.CapacityGbps)
	require.Equal(t, disposition.StateProvisioning, o.Values.State)
	require.Equal(t, map[string]string{"tier": "1", "owners": "a,b", "flag": "true", "canary": "true"}, o.Values.Labels)
	require.False(t, o.Known.Has(disposition.FieldPlatform), "null platform is unknown")
	require.False(t, o.Known.Has(disposition.FieldRegion), "site without region: region unknown")
}

func TestBadFieldValueNamesObject(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		results := "[]"
		if strings.Contains(r.URL.Path, "devices") {
			results = `[{"id": 3, "name": "x1", "custom_fields": {"capacity_gbps": "lots"}}]`
		}
		_, _ = io.WriteString(w, `{"count":1,"next":null,"previous":null,"results":`+results+`}`)
	}))
	defer srv.Close()
	_, err := newSource(t, srv.URL, netbox.Options{}).Fetch(context.Background())
	require.ErrorContains(t, err, `device id 3 (x1): capacity_gbps from cf.capacity_gbps`)
}

func TestNewValidates(t *testing.T) {
	ok := netbox.Options{URL: "https://netbox.example.com", Token: "t"}
	cases := []struct {
		field string
		edit  func(*netbox.Options)
	}{
		{"url", func(o *netbox.Options) { o.URL = "netbox.example.com" }},
		{"token", func(o *netbox.Options) { o.Token = "" }},
		{"auth_scheme", func(o *netbox.Options) { o.AuthScheme = "Token x" }},
		{"page_size", func(o *netbox.Options) { o.PageSize = -1 }},
		{"max_pages", func(o *netbox.Options) { o.MaxPages = -3 }},
		{"timeout", func(o *netbox.Options) { o.Timeout = -time.Second }},
		{"skip_devices", func(o *netbox.Options) { o.SkipDevices, o.SkipVirtualMachines = true, true }},
		{"filters", func(o *netbox.Options) { o.Filters = map[string][]string{"limit": {"5"}} }},
		{"fields", func(o *netbox.Options) { o.Fields = map[string]string{"metro": "site.colour"} }},
		{"fields", func(o *netbox.Options) { o.Fields = map[string]string{"colour": "site.name"} }},
		{"fields", func(o *netbox.Options) { o.Fields = map[string]string{"labels": "site.name"} }},
		{"status_map", func(o *netbox.Options) { o.StatusMap = map[string]string{"active": "serving"} }},
		{"tag_label_separator", func(o *netbox.Options) { o.TagLabelSeparator = "-" }},
	}
	for _, tc := range cases {
		o := ok
		o.Fields, o.StatusMap, o.Filters = maps.Clone(ok.Fields), maps.Clone(ok.StatusMap), nil
		tc.edit(&o)
		_, err := netbox.New("nb", o)
		var ce *sources.ConfigError
		require.ErrorAs(t, err, &ce, tc.field)
		require.Equal(t, tc.field, ce.Path, err.Error())
	}
	_, err := netbox.New("nb", ok)
	require.NoError(t, err)
	_, err = netbox.New("", ok)
	require.Error(t, err)
}

func TestAttributesAreAccepted(t *testing.T) {
	for _, a := range netbox.Attributes() {
		_, err := netbox.New("nb", netbox.Options{URL: "http://nb", Token: "t", Fields: map[string]string{"label.x": a}})
		require.NoError(t, err, a)
	}
}

func ExampleNew() {
	f, _ := fleet.Generate(fleet.Config{Size: 100, Seed: 1})
	srv := httptest.NewServer(fakes.NewNetBox(f, fakes.NetBoxOptions{}))
	defer srv.Close()

	src, err := netbox.New("netbox", netbox.Options{
		URL:   srv.URL,
		Token: fakes.DefaultToken,
		// Containers are VMs in NetBox, told apart by a custom field.
		Fields: map[string]string{"kind": "cf.kind"},
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
	same := 0
	for i, o := range obs {
		n := f.Nodes[0]
		for _, n = range f.Nodes {
			if n.ID == o.ID {
				break
			}
		}
		if o.ID == n.ID && o.Values.Metro == n.Metro && o.Values.State == n.State && o.Values.Kind == n.Kind {
			same++
		}
		if i == 0 {
			fmt.Println("first device:", strings.Count(o.ID, ".") > 0, o.Values.Kind)
		}
	}
	fmt.Println(same, "of", len(f.Nodes), "nodes observed as generated")
	// Output:
	// first device: true baremetal
	// 100 of 100 nodes observed as generated
}

func TestStatusTableAgreesWithFake(t *testing.T) {
	// Every state the fake writes reads back as itself under the default
	// map, for devices and VMs: the round trip through NetBox is lossless.
	sm := netbox.DefaultStatusMap()
	for _, kind := range []disposition.Kind{disposition.KindBaremetal, disposition.KindVM} {
		for _, st := range []disposition.State{
			disposition.StateProvisioning, disposition.StateInService, disposition.StateMaintenance,
			disposition.StateDrained, disposition.StateRepair, disposition.StateDecommissioned,
		} {
			status := fakes.NetBoxStatus(&disposition.Node{Kind: kind, State: st})
			require.Equal(t, st.String(), sm[status], "%s %s -> %s", kind, st, status)
		}
	}
}
