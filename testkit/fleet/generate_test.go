package fleet_test

import (
	"bytes"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/testkit/fleet"
)

func generate(t testing.TB, cfg fleet.Config) *fleet.Fleet {
	t.Helper()
	f, err := fleet.Generate(cfg)
	require.NoError(t, err)
	return f
}

func jsonBytes(t testing.TB, f *fleet.Fleet) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, f.WriteJSON(&buf))
	return buf.Bytes()
}

func TestGenerateIsDeterministic(t *testing.T) {
	for _, size := range []int{100, 20000} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			a := generate(t, fleet.Config{Size: size, Seed: 7})
			b := generate(t, fleet.Config{Size: size, Seed: 7})
			require.True(t, bytes.Equal(jsonBytes(t, a), jsonBytes(t, b)), "same config, different JSON")
			ignoreLoc := cmpopts.IgnoreFields(fleet.Metro{}, "Location")
			require.Empty(t, cmp.Diff(a.Metros, b.Metros, ignoreLoc))
			require.Equal(t, a.Config, b.Config)

			c := generate(t, fleet.Config{Size: size, Seed: 8})
			require.False(t, bytes.Equal(jsonBytes(t, a), jsonBytes(t, c)), "different seeds, same JSON")

			// Start moves traffic only.
			d := generate(t, fleet.Config{Size: size, Seed: 7, Start: a.Config.Start.Add(9 * time.Hour)})
			require.Len(t, d.Nodes, len(a.Nodes))
			moved := 0
			for i, n := range d.Nodes {
				o := a.Nodes[i].Clone()
				if o.TrafficGbps != n.TrafficGbps {
					moved++
				}
				o.TrafficGbps = n.TrafficGbps
				require.True(t, o.Equal(n), "node %s differs in more than traffic", n.ID)
			}
			require.Greater(t, moved, size/2)
		})
	}
}

func TestGenerateDefaultsStart(t *testing.T) {
	f := generate(t, fleet.Config{Size: 100})
	require.Equal(t, time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC), f.Config.Start)
}

func TestGenerateRejectsBadSize(t *testing.T) {
	for _, size := range []int{0, -1, fleet.MaxSize + 1} {
		_, err := fleet.Generate(fleet.Config{Size: size})
		require.ErrorContains(t, err, "Config.Size", "size %d", size)
	}
}

var idRE = regexp.MustCompile(`^(edge|mid|shield|dns)-([a-z]{3}\d+)-c\d{2,}-\d{3}\.fleet\.example$`)

// checkFleet checks the invariants every generated fleet holds.
func checkFleet(t *testing.T, f *fleet.Fleet) {
	t.Helper()
	size := f.Config.Size
	require.Len(t, f.Nodes, size)
	require.True(t, slices.IsSortedFunc(f.Nodes, func(a, b *disposition.Node) int {
		return strings.Compare(a.ID, b.ID)
	}), "nodes not sorted by ID")
	require.True(t, slices.IsSortedFunc(f.Metros, func(a, b fleet.Metro) int {
		return strings.Compare(a.Code, b.Code)
	}), "metros not sorted by code")

	type clusterInfo struct {
		first *disposition.Node
		size  int
	}
	clusters := make(map[string]*clusterInfo)
	servers := make(map[string]int)
	sites := make(map[string]map[string]bool)
	for i, n := range f.Nodes {
		require.NoError(t, n.Validate())
		if i > 0 {
			require.NotEqual(t, f.Nodes[i-1].ID, n.ID, "duplicate ID")
		}
		m := idRE.FindStringSubmatch(n.ID)
		require.NotNil(t, m, "ID %q", n.ID)
		require.Equal(t, n.Role, m[1], n.ID)
		require.True(t, strings.HasPrefix(n.ID, n.Role+"-"+n.Cluster+"-"), n.ID)
		require.True(t, strings.HasPrefix(n.Cluster, strings.ToLower(n.Site)+"-c"), n.ID)
		require.True(t, strings.HasPrefix(n.Rack, strings.ToLower(n.Site)+"-r"), n.ID)
		require.True(t, strings.HasPrefix(n.Site, n.Metro), n.ID)
		require.True(t, n.Provenance.IsZero(), n.ID)
		require.NotZero(t, n.Kind, n.ID)
		require.NotZero(t, n.State, n.ID)
		require.Positive(t, n.CapacityGbps, n.ID)

		metro := f.Metro(n.Metro)
		require.NotNil(t, metro, n.ID)
		require.Equal(t, metro.Region, n.Region, n.ID)
		require.Equal(t, metro.Timezone, n.Timezone, n.ID)
		require.Equal(t, strconv.Itoa(metro.Tier), n.Labels["tier"], n.ID)
		servers[n.Metro]++
		if sites[n.Metro] == nil {
			sites[n.Metro] = make(map[string]bool)
		}
		sites[n.Metro][n.Site] = true

		c := clusters[n.Cluster]
		if c == nil {
			clusters[n.Cluster] = &clusterInfo{first: n, size: 1}
			continue
		}
		c.size++
		// A cluster is one role, kind, metro, site, platform, release
		// state and hardware.
		for _, f := range []struct{ a, b any }{
			{c.first.Role, n.Role}, {c.first.Kind, n.Kind}, {c.first.Site, n.Site},
			{c.first.Platform, n.Platform}, {c.first.ReleaseState, n.ReleaseState},
			{c.first.CapacityGbps, n.CapacityGbps}, {c.first.Labels["hw"], n.Labels["hw"]},
		} {
			require.Equal(t, f.a, f.b, "cluster %s: node %s", n.Cluster, n.ID)
		}
	}
	for name, c := range clusters {
		lo := min(fleet.MinClusterSize, size) // fleets under 4 servers are one cluster
		require.GreaterOrEqual(t, c.size, lo, "cluster %s", name)
		require.LessOrEqual(t, c.size, fleet.MaxClusterSize, "cluster %s", name)
	}
	total := 0
	for _, m := range f.Metros {
		require.Equal(t, servers[m.Code], m.Servers, "metro %s", m.Code)
		require.Positive(t, m.Servers, "metro %s", m.Code)
		var want []string
		for s := range sites[m.Code] {
			want = append(want, s)
		}
		require.ElementsMatch(t, want, m.Sites, "metro %s", m.Code)
		require.NotNil(t, m.Location, "metro %s", m.Code)
		require.Equal(t, m.Timezone, m.Location.String())
		total += m.Servers
	}
	require.Equal(t, size, total)
}

func TestGenerateSizes(t *testing.T) {
	for _, size := range []int{1, 2, 3, 4, 5, 7, 8, 23, 24, 99, 100, 101, 1000, 4321, 20000} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			checkFleet(t, generate(t, fleet.Config{Size: size, Seed: int64(size)}))
		})
	}
}

func TestSmallFleetSpansContinents(t *testing.T) {
	for seed := range int64(5) {
		f := generate(t, fleet.Config{Size: 100, Seed: seed})
		continents := make(map[string]bool)
		for _, m := range f.Metros {
			continents[m.Continent] = true
		}
		require.GreaterOrEqual(t, len(f.Metros), 5)
		require.GreaterOrEqual(t, len(continents), 5)
	}
}

func TestMetros(t *testing.T) {
	f := generate(t, fleet.Config{Size: 20000, Seed: 1})
	require.GreaterOrEqual(t, len(f.Metros), 55)

	codeRE := regexp.MustCompile(`^[A-Z]{3}$`)
	continents, regions, zones := map[string]bool{}, map[string]bool{}, map[string]bool{}
	var northDST, southDST []string
	jan := time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC)
	jul := time.Date(2026, 7, 15, 12, 0, 0, 0, time.UTC)
	var weights float64
	for _, m := range f.Metros {
		require.Regexp(t, codeRE, m.Code)
		require.Nil(t, f.Metro(m.Code+"X"))
		continents[m.Continent] = true
		regions[m.Region] = true
		zones[m.Timezone] = true
		_, offJan := jan.In(m.Location).Zone()
		_, offJul := jul.In(m.Location).Zone()
		switch {
		case offJul > offJan:
			northDST = append(northDST, m.Timezone)
		case offJan > offJul:
			southDST = append(southDST, m.Timezone)
		}
		require.Contains(t, []int{1, 2, 3}, m.Tier)
		require.Greater(t, m.Load, 0.5)
		require.Less(t, m.Load, 0.85)
		require.InDelta(t, m.CapacityGbps*m.Load, m.PeakGbps, 1e-6)
		weights += m.Weight
	}
	require.InDelta(t, 1, weights, 1e-9)
	require.ElementsMatch(t,
		[]string{"africa", "asia", "europe", "north-america", "oceania", "south-america"},
		keys(continents))
	require.GreaterOrEqual(t, len(regions), 10)
	for _, z := range []string{
		"America/Denver", "Europe/London", "Australia/Sydney", "America/Santiago",
		"Asia/Kolkata", "Australia/Adelaide", "Asia/Kathmandu", "America/St_Johns",
	} {
		require.True(t, zones[z], "no metro in %s", z)
	}
	require.Contains(t, northDST, "America/Denver")
	require.Contains(t, southDST, "Australia/Adelaide")
	require.Contains(t, southDST, "America/Santiago")

	// The odd offsets are what the zones say they are.
	for _, c := range []struct {
		zone     string
		jan, jul time.Duration
	}{
		{"Asia/Kolkata", 5*time.Hour + 30*time.Minute, 5*time.Hour + 30*time.Minute},
		{"Asia/Kathmandu", 5*time.Hour + 45*time.Minute, 5*time.Hour + 45*time.Minute},
		{"Australia/Adelaide", 10*time.Hour + 30*time.Minute, 9*time.Hour + 30*time.Minute},
		{"America/St_Johns", -3*time.Hour - 30*time.Minute, -2*time.Hour - 30*time.Minute},
	} {
		loc, err := time.LoadLocation(c.zone)
		require.NoError(t, err)
		_, offJan := jan.In(loc).Zone()
		_, offJul := jul.In(loc).Zone()
		require.Equal(t, c.jan, time.Duration(offJan)*time.Second, c.zone)
		require.Equal(t, c.jul, time.Duration(offJul)*time.Second, c.zone)
	}
}

func keys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// shares counts the nodes by a field and returns each value's share.
func shares(nodes []*disposition.Node, by func(*disposition.Node) string) map[string]float64 {
	s := make(map[string]float64)
	for _, n := range nodes {
		s[by(n)] += 1 / float64(len(nodes))
	}
	return s
}

func TestShares(t *testing.T) {
	type band struct{ lo, hi float64 }
	for seed := range int64(3) {
		f := generate(t, fleet.Config{Size: 20000, Seed: seed})
		check := func(name string, by func(*disposition.Node) string, want map[string]band) {
			t.Helper()
			got := shares(f.Nodes, by)
			for v, b := range want {
				require.True(t, got[v] >= b.lo && got[v] <= b.hi,
					"seed %d: %s %q: share %.4f, want %.3f..%.3f", seed, name, v, got[v], b.lo, b.hi)
			}
			for v := range got {
				require.Contains(t, want, v, "seed %d: %s: unexpected value %q", seed, name, v)
			}
		}
		check("role", func(n *disposition.Node) string { return n.Role }, map[string]band{
			"edge": {0.77, 0.83}, "mid": {0.10, 0.14}, "shield": {0.04, 0.06}, "dns": {0.025, 0.035},
		})
		check("kind", func(n *disposition.Node) string { return n.Kind.String() }, map[string]band{
			"baremetal": {0.95, 0.985}, "vm": {0.01, 0.035}, "container": {0.004, 0.02},
		})
		check("release state", func(n *disposition.Node) string { return n.ReleaseState }, map[string]band{
			"ga": {0.74, 0.76}, "nrt": {0.19, 0.21}, "trial": {0.045, 0.055},
		})
		check("state", func(n *disposition.Node) string { return n.State.String() }, map[string]band{
			"in-service": {0.95, 0.97}, "repair": {0.01, 0.02}, "maintenance": {0.006, 0.015},
			"drained": {0.006, 0.015}, "provisioning": {0.002, 0.009},
		})
		check("health", func(n *disposition.Node) string { return n.Health.String() }, map[string]band{
			"healthy": {0.96, 0.975}, "degraded": {0.01, 0.02}, "down": {0.007, 0.014}, "unknown": {0.005, 0.012},
		})
		check("platform", func(n *disposition.Node) string { return n.Platform }, map[string]band{
			"debian-12": {0.8, 0.95}, "debian-11": {0.05, 0.2},
		})
		check("hw", func(n *disposition.Node) string { return n.Labels["hw"] }, map[string]band{
			"gen9": {0.15, 0.25}, "gen10": {0.4, 0.5}, "gen11": {0.3, 0.4},
		})
		check("cdn-app", func(n *disposition.Node) string { return n.Versions["cdn-app"] }, map[string]band{
			"3.1.4": {0.75, 0.83}, "3.2.0": {0.13, 0.2}, "3.1.3": {0.003, 0.012},
			"": {0.03, 0.045}, // dns, and servers being provisioned
		})

		// Servers in repair are down or degraded (or not reporting), and
		// servers that are not serving carry no traffic.
		for _, n := range f.Nodes {
			if n.State == disposition.StateRepair {
				require.NotEqual(t, disposition.HealthHealthy, n.Health, n.ID)
			}
			serving := n.State == disposition.StateInService && n.Health != disposition.HealthDown
			require.Equal(t, serving, n.TrafficGbps > 0, "%s: %s %s traffic %v", n.ID, n.State, n.Health, n.TrafficGbps)
			require.LessOrEqual(t, n.TrafficGbps, n.CapacityGbps, n.ID)
			if n.State == disposition.StateProvisioning {
				require.Nil(t, n.Versions, n.ID)
			}
		}
	}
}

// Nodes share their repeated strings and maps, so that a 1M-node fleet
// stays small.
func TestNodesShareStringsAndMaps(t *testing.T) {
	f := generate(t, fleet.Config{Size: 20000, Seed: 1})
	strs := make(map[string]map[*byte]bool)
	mapPtrs := make(map[unsafe.Pointer]bool)
	for _, n := range f.Nodes {
		for name, s := range map[string]string{
			"region": n.Region, "metro": n.Metro, "site": n.Site, "cluster": n.Cluster, "rack": n.Rack,
			"timezone": n.Timezone, "role": n.Role, "platform": n.Platform, "release_state": n.ReleaseState,
			"version": n.Versions["cdn-app"], "label": n.Labels["hw"],
		} {
			k := name + "=" + s
			if strs[k] == nil {
				strs[k] = make(map[*byte]bool)
			}
			strs[k][unsafe.StringData(s)] = true
		}
		for _, m := range []map[string]string{n.Versions, n.Labels} {
			if m != nil {
				mapPtrs[reflect.ValueOf(m).UnsafePointer()] = true
			}
		}
	}
	for k, ptrs := range strs {
		require.Len(t, ptrs, 1, "%s is allocated %d times", k, len(ptrs))
	}
	require.LessOrEqual(t, len(mapPtrs), 20)
}

func ExampleGenerate() {
	f, err := fleet.Generate(fleet.Config{Size: 20000, Seed: 42})
	if err != nil {
		panic(err)
	}
	continents := make(map[string]bool)
	for _, m := range f.Metros {
		continents[m.Continent] = true
	}
	fmt.Println(len(f.Nodes), "servers in", len(f.Metros), "metros on", len(continents), "continents")
	fmt.Println("first:", f.Nodes[0].ID)
	// Output:
	// 20000 servers in 60 metros on 6 continents
	// first: dns-adl1-c02-001.fleet.example
}
