package fleet

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fleetkit/fleetkit/disposition"

	// The fleet's metros are in real IANA zones, and the generator must
	// work on machines without /usr/share/zoneinfo (containers FROM
	// scratch, the demo binary). time/tzdata only registers a fallback.
	_ "time/tzdata"
)

// MaxSize is the largest fleet Generate makes.
const MaxSize = 1_000_000

// Cluster sizes. A fleet smaller than MinClusterSize servers is the only
// exception: its one cluster holds them all.
const (
	MinClusterSize = 4
	MaxClusterSize = 64
)

// Config says which fleet to generate.
type Config struct {
	// Size is the number of servers, 1 to MaxSize.
	Size int
	// Seed selects the fleet: the same Config always gives the same fleet.
	Seed int64
	// Start is the moment the nodes' traffic is generated for; the zero
	// value means 2026-01-05T12:00:00Z (a Monday).
	Start time.Time
}

// Fleet is a generated fleet.
type Fleet struct {
	// Config is the configuration it was generated from, with Start set.
	Config Config
	// Metros are sorted by code.
	Metros []Metro
	// Nodes are sorted by ID. Nodes share their strings and their
	// Versions and Labels maps with other nodes of equal values, so that a
	// large fleet stays small: treat them as read-only and Clone a node
	// before changing it.
	Nodes []*disposition.Node
}

// The vocabulary of generated nodes.
const (
	roleEdge   = "edge"
	roleMid    = "mid"
	roleShield = "shield"
	roleDNS    = "dns"

	releaseGA    = "ga"
	releaseNRT   = "nrt"
	releaseTrial = "trial"

	hostDomain = ".fleet.example"
	// perRack is how many servers of one cluster share a rack.
	perRack = 16
	// maxSites caps the sites of one metro.
	maxSites = 12
)

var (
	// roles in the order their budgets are taken from a metro, with their
	// share of the fleet; edge takes the rest.
	roleShares = [...]struct {
		role  string
		share float64
	}{{roleDNS, 0.03}, {roleShield, 0.05}, {roleMid, 0.12}}

	// hwGens are the hardware generations, oldest first.
	hwGens     = [...]string{"gen9", "gen10", "gen11"}
	tierLabels = [...]string{"", "1", "2", "3"}
)

// capacityGbps is the capacity of a bare-metal server of role on hardware
// generation hw (an index into hwGens).
func capacityGbps(role string, hw int) float64 {
	var gens [len(hwGens)]float64
	switch role {
	case roleEdge:
		gens = [...]float64{40, 50, 100}
	case roleMid:
		gens = [...]float64{25, 40, 50}
	case roleShield:
		gens = [...]float64{20, 25, 40}
	case roleDNS:
		gens = [...]float64{10, 10, 25}
	}
	return gens[hw]
}

func defaultStart() time.Time { return time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC) }

// Generate returns the fleet cfg describes. It is deterministic: the same
// Config gives the same metros and nodes, down to the bytes WriteJSON
// writes.
//
// Servers are spread over metros by uneven weights (larger fleets use more
// of the ~60 metros, every fleet spans several continents), each metro
// into sites and clusters of MinClusterSize to MaxClusterSize servers of
// one role (edge, mid, shield or dns), kind, hardware generation, platform
// and release state (ga, nrt, trial). A few servers are out of service or
// unhealthy, and serving ones carry traffic that follows the diurnal curve
// in their metro's local time at cfg.Start.
func Generate(cfg Config) (*Fleet, error) {
	if cfg.Size < 1 || cfg.Size > MaxSize {
		return nil, fmt.Errorf("fleet: Config.Size must be between 1 and %d, got %d", MaxSize, cfg.Size)
	}
	if cfg.Start.IsZero() {
		cfg.Start = defaultStart()
	}
	g := &generator{
		cfg:  cfg,
		r:    rand.New(rand.NewPCG(uint64(cfg.Seed), 0x6a09e667f3bcc909)),
		maps: make(map[mapKey]map[string]string),
	}
	if err := g.pickMetros(); err != nil {
		return nil, err
	}
	for i := range g.metros {
		g.buildClusters(i)
	}
	g.assignReleaseStates()
	g.fillNodes()
	slices.SortFunc(g.metros, func(a, b Metro) int { return strings.Compare(a.Code, b.Code) })
	return &Fleet{Config: cfg, Metros: g.metros, Nodes: g.nodes}, nil
}

type generator struct {
	cfg      Config
	r        *rand.Rand
	metros   []Metro
	clusters []*cluster
	nodes    []*disposition.Node
	// maps interns Versions and Labels maps by content.
	maps map[mapKey]map[string]string
	// scratch space
	sizes, ends []int
	buf         []byte
}

type cluster struct {
	metro    int // index into generator.metros
	site     string
	name     string // "den1-c07"
	idPrefix string // "edge-den1-c07-"
	role     string
	kind     disposition.Kind
	size     int
	capacity float64
	platform string
	release  string
	labels   map[string]string
	racks    []string
	hw       int // index into hwGens
}

// metroCount is how many metros a fleet of n servers uses: about one per
// 20 servers, at least six (one per continent) and at most the catalog,
// but never so many that a metro gets fewer than MinClusterSize servers.
func metroCount(n int) int {
	m := min(max(n/20, 6), len(catalog))
	return max(1, min(m, n/MinClusterSize))
}

func (g *generator) pickMetros() error {
	n := g.cfg.Size
	specs := catalog[:metroCount(n)]
	tierWeight := [...]float64{0, 4, 2, 1}
	weights := make([]float64, len(specs))
	var sum float64
	for i, s := range specs {
		weights[i] = tierWeight[s.tier] * (0.75 + 0.5*g.r.Float64())
		sum += weights[i]
	}
	// Every metro gets a floor, so that it can hold a cluster; the rest
	// goes by weight, rounded by largest remainder so the total is exact.
	floor := min(8, n/len(specs))
	rest := n - floor*len(specs)
	servers := make([]int, len(specs))
	frac := make([]float64, len(specs))
	left := rest
	for i := range specs {
		exact := float64(rest) * weights[i] / sum
		whole := int(exact)
		servers[i] = floor + whole
		frac[i] = exact - float64(whole)
		left -= whole
	}
	order := make([]int, len(specs))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(frac[b], frac[a]) })
	for _, i := range order[:left] {
		servers[i]++
	}

	locs := make(map[string]*time.Location)
	g.metros = make([]Metro, len(specs))
	for i, s := range specs {
		loc, ok := locs[s.zone]
		if !ok {
			var err error
			if loc, err = time.LoadLocation(s.zone); err != nil {
				return fmt.Errorf("fleet: metro %s: %w", s.code, err)
			}
			locs[s.zone] = loc
		}
		g.metros[i] = Metro{
			Code:      s.code,
			City:      s.city,
			Region:    s.region,
			Continent: s.continent,
			Timezone:  s.zone,
			Tier:      s.tier,
			Weight:    weights[i] / sum,
			Load:      0.55 + 0.25*g.r.Float64(),
			Servers:   servers[i],
			Location:  loc,
		}
	}
	return nil
}

// roundRandom rounds x up with probability equal to its fraction, so that
// many small roundings keep their sum.
func (g *generator) roundRandom(x float64) int {
	whole := math.Floor(x)
	if g.r.Float64() < x-whole {
		whole++
	}
	return int(whole)
}

// roleBudgets splits a metro's s servers among the roles. A role whose
// share is below a cluster's minimum gets a minimum cluster with the
// matching probability, so fleet-wide shares hold.
func (g *generator) roleBudgets(s int) (edge int, others [len(roleShares)]int) {
	rest := s
	for i, rs := range roleShares {
		b := float64(s) * rs.share
		if b < MinClusterSize {
			if g.r.Float64() < b/MinClusterSize {
				others[i] = MinClusterSize
			}
		} else {
			others[i] = g.roundRandom(b)
		}
		rest -= others[i]
	}
	// Small metros: give the largest other role back to edge until edge
	// can fill a cluster.
	for rest < MinClusterSize && s >= MinClusterSize {
		j := 0
		for i := range others {
			if others[i] > others[j] {
				j = i
			}
		}
		rest += others[j]
		others[j] = 0
	}
	return rest, others
}

// splitClusters appends to sizes the sizes of uneven clusters, between
// MinClusterSize and MaxClusterSize, that b servers split into (b itself
// if b < MinClusterSize).
func (g *generator) splitClusters(b int, sizes []int) []int {
	for b > 0 {
		if b <= MaxClusterSize && (b < 3*MinClusterSize || g.r.IntN(2) == 0) {
			return append(sizes, b)
		}
		hi := min(MaxClusterSize, b-MinClusterSize)
		lo := min(8, hi)
		s := lo + g.r.IntN(hi-lo+1)
		sizes = append(sizes, s)
		b -= s
	}
	return sizes
}

func (g *generator) buildClusters(mi int) {
	m := &g.metros[mi]
	edge, others := g.roleBudgets(m.Servers)
	sizes := g.splitClusters(edge, g.sizes[:0])
	roles := make([]string, 0, 4)
	ends := make([]int, 0, 4)
	roles, ends = append(roles, roleEdge), append(ends, len(sizes))
	for i, rs := range roleShares {
		sizes = g.splitClusters(others[i], sizes)
		roles, ends = append(roles, rs.role), append(ends, len(sizes))
	}
	g.sizes = sizes
	cs := make([]cluster, len(sizes))
	role := 0
	for i, size := range sizes {
		for i >= ends[role] {
			role++
		}
		g.initCluster(&cs[i], mi, roles[role], size)
	}

	nSites := min(1+int(float64(m.Servers)/600+g.r.Float64()), maxSites, len(cs))
	lower := strings.ToLower(m.Code)
	type site struct {
		name, lower     string
		weight          float64
		load            int
		clusters, racks int
	}
	sites := make([]site, nSites)
	m.Sites = make([]string, nSites)
	for i := range sites {
		num := strconv.Itoa(i + 1)
		sites[i] = site{name: m.Code + num, lower: lower + num, weight: 0.6 + 0.8*g.r.Float64()}
		m.Sites[i] = sites[i].name
	}
	// Shuffled, so cluster numbers mix roles, and placed on the site that
	// is least full for its weight, so sites are uneven but all used.
	g.r.Shuffle(len(cs), func(i, j int) { cs[i], cs[j] = cs[j], cs[i] })
	buf := g.buf
	for i := range cs {
		c := &cs[i]
		best := 0
		for i := range sites {
			if float64(sites[i].load)/sites[i].weight < float64(sites[best].load)/sites[best].weight {
				best = i
			}
		}
		s := &sites[best]
		s.load += c.size
		s.clusters++
		c.site = s.name

		// "edge-den1-c07-" holds the name "den1-c07".
		buf = append(append(append(buf[:0], c.role...), '-'), s.lower...)
		buf = appendPadded(append(buf, "-c"...), s.clusters, 2)
		buf = append(buf, '-')
		c.idPrefix = string(buf)
		c.name = c.idPrefix[len(c.role)+1 : len(c.idPrefix)-1]

		// Racks "den1-r012", numbered across the site, cut from one string.
		c.racks = make([]string, (c.size+perRack-1)/perRack)
		buf = buf[:0]
		ends := g.ends[:0]
		for range c.racks {
			s.racks++
			buf = appendPadded(append(append(buf, s.lower...), "-r"...), s.racks, 3)
			ends = append(ends, len(buf))
		}
		racks, start := string(buf), 0
		for i, end := range ends {
			c.racks[i] = racks[start:end]
			start = end
		}
		g.ends = ends
		g.clusters = append(g.clusters, c)
	}
	g.buf = buf
}

// appendPadded appends n in decimal, zero-padded to at least width digits.
func appendPadded(b []byte, n, width int) []byte {
	for d, p := 1, 10; d < width; d, p = d+1, p*10 {
		if n < p {
			b = append(b, '0')
		}
	}
	return strconv.AppendInt(b, int64(n), 10)
}

func (g *generator) initCluster(c *cluster, mi int, role string, size int) {
	r := g.r
	*c = cluster{metro: mi, role: role, size: size, kind: disposition.KindBaremetal}
	// dns runs mostly virtualised, and a few mid clusters do.
	switch u := r.Float64(); {
	case role == roleDNS && u < 0.5, role == roleMid && u < 0.05:
		c.kind = disposition.KindVM
	case role == roleDNS && u < 0.75, role == roleMid && u < 0.075:
		c.kind = disposition.KindContainer
	}
	switch u := r.Float64(); {
	case u < 0.2:
		c.hw = 0
	case u < 0.65:
		c.hw = 1
	default:
		c.hw = 2
	}
	c.capacity = capacityGbps(role, c.hw)
	switch c.kind {
	case disposition.KindVM:
		c.capacity = min(c.capacity, 10)
	case disposition.KindContainer:
		c.capacity = min(c.capacity, 5)
	}
	// Older hardware lags on the platform upgrade.
	c.platform = "debian-12"
	if r.Float64() < [...]float64{0.4, 0.12, 0.03}[c.hw] {
		c.platform = "debian-11"
	}
	tier, hw := tierLabels[g.metros[mi].Tier], hwGens[c.hw]
	c.labels = g.intern(mapKey{"tier", tier, "hw", hw})
}

// assignReleaseStates gives each cluster a release state so that the
// cohorts hold ~75% (ga), ~20% (nrt) and ~5% (trial) of the servers:
// clusters in random order go to the cohort furthest below its target.
func (g *generator) assignReleaseStates() {
	states := [...]string{releaseGA, releaseNRT, releaseTrial}
	var target [len(states)]float64
	for i, share := range [...]float64{0.75, 0.20, 0.05} {
		target[i] = share * float64(g.cfg.Size)
	}
	var got [len(states)]float64
	for _, i := range g.r.Perm(len(g.clusters)) {
		c := g.clusters[i]
		best := 0
		for j := range states {
			if target[j]-got[j] > target[best]-got[best] {
				best = j
			}
		}
		c.release = states[best]
		got[best] += float64(c.size)
	}
}

// versions returns the Versions map of a server of c: current, or
// one release behind for servers that were out when it rolled out.
func (g *generator) versions(c *cluster, behind bool) map[string]string {
	if c.role == roleDNS {
		knot := "3.3.9"
		switch {
		case behind:
			knot = "3.3.8"
		case c.release == releaseTrial:
			knot = "3.4.1"
		}
		return g.intern(mapKey{"knot", knot})
	}
	app, nginx := "3.1.4", "1.24.0"
	switch {
	case behind:
		app = "3.1.3"
	case c.release == releaseTrial:
		app, nginx = "3.2.0", "1.26.2"
	case c.release == releaseNRT && g.r.Float64() < 0.6:
		app = "3.2.0"
	}
	return g.intern(mapKey{"cdn-app", app, "nginx", nginx})
}

// mapKey holds up to two key/value pairs of a small map, unused ones empty.
type mapKey [4]string

// intern returns the one map of the fleet that holds k.
func (g *generator) intern(k mapKey) map[string]string {
	m, ok := g.maps[k]
	if !ok {
		m = make(map[string]string, 2)
		for i := 0; i < len(k) && k[i] != ""; i += 2 {
			m[k[i]] = k[i+1]
		}
		g.maps[k] = m
	}
	return m
}

// Lifecycle states with their probability; in-service takes the rest.
var stateOdds = [...]struct {
	state disposition.State
	p     float64
}{
	{disposition.StateProvisioning, 0.005},
	{disposition.StateMaintenance, 0.01},
	{disposition.StateDrained, 0.01},
	{disposition.StateRepair, 0.015},
}

// healthOdds gives, per lifecycle state, the cumulative probability of
// degraded, down and unknown health; healthy takes the rest. Servers in
// repair are never healthy. The array has a row for every state.
var healthOdds = [...][3]float64{
	disposition.StateInService:      {0.0085, 0.0105, 0.0125},
	disposition.StateRepair:         {0.4, 0.9, 1},
	disposition.StateMaintenance:    {0, 0.1, 0.3},
	disposition.StateDrained:        {0.1, 0.1, 0.1},
	disposition.StateProvisioning:   {0, 0, 0.8},
	disposition.StateDecommissioned: {},
}

func (g *generator) fillNodes() {
	// Nodes come out sorted by ID when clusters are taken in the order of
	// their ID prefix: a prefix ends in "-", so no cluster's IDs fall
	// between another's.
	slices.SortFunc(g.clusters, func(a, b *cluster) int { return strings.Compare(a.idPrefix, b.idPrefix) })

	utils := make([]float64, len(g.metros))
	for i := range g.metros {
		utils[i] = g.metros[i].Utilisation(g.cfg.Start)
	}

	slab := make([]disposition.Node, g.cfg.Size)
	g.nodes = make([]*disposition.Node, g.cfg.Size)
	var buf []byte
	k := 0
	for _, c := range g.clusters {
		m := &g.metros[c.metro]
		current := g.versions(c, false)
		behind := g.versions(c, true)
		// All IDs of a cluster in one string, each the same length.
		buf = buf[:0]
		for i := 1; i <= c.size; i++ {
			buf = append(buf, c.idPrefix...)
			buf = append(buf, byte('0'+i/100), byte('0'+i/10%10), byte('0'+i%10))
			buf = append(buf, hostDomain...)
		}
		ids := string(buf)
		idLen := len(ids) / c.size

		for i := range c.size {
			n := &slab[k]
			g.nodes[k] = n
			k++
			// Field by field: the slab is zero, and a composite literal
			// would copy the whole struct, provenance included.
			n.ID = ids[i*idLen : (i+1)*idLen]
			n.Kind = c.kind
			n.Region = m.Region
			n.Metro = m.Code
			n.Site = c.site
			n.Cluster = c.name
			n.Rack = c.racks[i%len(c.racks)]
			n.Timezone = m.Timezone
			n.Role = c.role
			n.Platform = c.platform
			n.State = disposition.StateInService
			n.ReleaseState = c.release
			n.Health = disposition.HealthHealthy
			n.Versions = current
			n.CapacityGbps = c.capacity
			n.Labels = c.labels
			u := g.r.Float64()
			for _, so := range stateOdds {
				if u < so.p {
					n.State = so.state
					break
				}
				u -= so.p
			}
			switch h, u := healthOdds[n.State], g.r.Float64(); {
			case u < h[0]:
				n.Health = disposition.HealthDegraded
			case u < h[1]:
				n.Health = disposition.HealthDown
			case u < h[2]:
				n.Health = disposition.HealthUnknown
			}
			switch n.State {
			case disposition.StateProvisioning:
				n.Versions = nil
			case disposition.StateRepair, disposition.StateMaintenance:
				if g.r.Float64() < 0.3 {
					n.Versions = behind
				}
			case disposition.StateInService:
				if n.Health == disposition.HealthDown {
					break
				}
				m.CapacityGbps += c.capacity
				noise := 0.9 + 0.2*g.r.Float64()
				n.TrafficGbps = math.Round(c.capacity*utils[c.metro]*noise*100) / 100
			}
		}
	}
	for i := range g.metros {
		m := &g.metros[i]
		m.PeakGbps = m.CapacityGbps * m.Load
	}
}
