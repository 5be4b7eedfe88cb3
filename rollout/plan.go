package rollout

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/fleetkit/fleetkit/disposition"
)

// ErrInfeasible is wrapped by the error of a spec that cannot be planned
// on a snapshot: a canary with no schedulable target, or targets that
// cannot all be placed within the horizon.
var ErrInfeasible = errors.New("rollout cannot be planned")

// The stages of a wave.
const (
	StageCanary = "canary"
	StageGrowth = "growth"
)

// Plan is the schedule of waves a release follows across the fleet. It is
// plain data: the same spec, snapshot and start always give a Plan that
// encodes to the same JSON.
type Plan struct {
	Name  string    `json:"name,omitempty"`
	Start time.Time `json:"start"`
	// End is when the last wave's bake ends; Start when there is no wave.
	End    time.Time `json:"end"`
	Deploy Duration  `json:"deploy"`
	// Total is the number of servers the waves hold; growth percentages
	// are of it.
	Total int    `json:"total"`
	Waves []Wave `json:"waves"`
	// Skipped are targets left out on purpose (not in service, unhealthy,
	// already at the version, in a metro blacked out for the whole
	// horizon), sorted by ID.
	Skipped []Skip `json:"skipped"`
	// Unschedulable are targets no wave can ever hold under the spec,
	// sorted by ID, each with the reason.
	Unschedulable []Skip `json:"unschedulable"`
	// Metros describes every metro with targets, sorted by name.
	Metros []MetroInfo `json:"metros"`
	Bounds Bounds      `json:"bounds"`
}

// Wave is one synchronised step across the fleet. Its servers are out of
// service during [Start, Start+Deploy]; End is Start + Deploy + Bake, and
// the next wave starts no earlier.
type Wave struct {
	Index int    `json:"index"` // from 1
	Stage string `json:"stage"` // StageCanary or StageGrowth
	// Step is the size the growth policy (or the canary count) allows.
	Step  int       `json:"step"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	Bake  Duration  `json:"bake"`
	// Servers are the wave's server IDs, grouped by metro in the order of
	// Metros and sorted by ID within a metro.
	Servers []string `json:"servers"`
	// Metros are the metros the wave touches, sorted by name.
	Metros  []WaveMetro `json:"metros"`
	Domains Domains     `json:"domains"`
	// BoundBy says which constraint set the wave's size: "growth",
	// "canary", "global-cap" or "remaining" when it is as large as
	// allowed, else the constraint that held back the most servers, such
	// as "budget:metro:DEN", "budget:cluster:den1-c07",
	// "exclusion:region:na-east", "capacity:DEN", "window:DEN" or
	// "blackout:DEN".
	BoundBy string `json:"bound_by"`
}

// WaveMetro is what a wave does to one metro.
type WaveMetro struct {
	Metro   string `json:"metro"`
	Region  string `json:"region"`
	Servers int    `json:"servers"`
	// LocalStart is the wave's start on the metro's wall clock.
	LocalStart string `json:"local_start"`
	// CapacityGbps is the metro's serving capacity before the wave and
	// OutGbps the part of it the wave takes out; Dip is their ratio.
	CapacityGbps float64 `json:"capacity_gbps"`
	OutGbps      float64 `json:"out_gbps"`
	Dip          float64 `json:"dip"`
	// ForecastGbps is the highest forecast traffic during the deploy, when
	// the spec has a capacity section.
	ForecastGbps float64 `json:"forecast_gbps,omitempty"`
}

// Domains counts a wave's servers per failure domain, by name.
type Domains struct {
	Region  map[string]int `json:"region"`
	Metro   map[string]int `json:"metro"`
	Site    map[string]int `json:"site"`
	Cluster map[string]int `json:"cluster"`
}

// Skip is a target that no wave holds, and why.
type Skip struct {
	ID     string `json:"id"`
	Reason string `json:"reason"`
}

// MetroInfo describes a metro as the planner saw it.
type MetroInfo struct {
	Metro     string `json:"metro"`
	Region    string `json:"region"`
	Timezone  string `json:"timezone,omitempty"`
	InService int    `json:"in_service"`
	Targets   int    `json:"targets"`
	Scheduled int    `json:"scheduled"`
	// CapacityGbps and TrafficGbps sum the metro's serving servers.
	CapacityGbps float64 `json:"capacity_gbps"`
	TrafficGbps  float64 `json:"traffic_gbps"`
}

// Bounds are lower bounds derived from the constraints alone, against
// which a plan's quality is measured.
type Bounds struct {
	// MinWaves is a lower bound on the number of waves, and MinWavesBy
	// the constraint that gives it ("growth", "budget:metro:DEN",
	// "exclusion:region:na-east", "disjoint:DEN+NRT+..." for metros no
	// wave can hold two of, "overlap:2:DEN+NRT+..." for metros no wave
	// can hold more than two of).
	MinWaves   int    `json:"min_waves"`
	MinWavesBy string `json:"min_waves_by"`
	// MinDuration is a lower bound on the time from Start to End.
	MinDuration Duration `json:"min_duration"`
	// WaveRatio is len(Waves) / MinWaves and DurationRatio is
	// (End - Start) / MinDuration; 1 is optimal. Both are 1 for an empty
	// plan.
	WaveRatio     float64 `json:"wave_ratio"`
	DurationRatio float64 `json:"duration_ratio"`
}

// Domain levels, outermost first.
const (
	lvRegion = iota
	lvMetro
	lvSite
	lvCluster
	numLevels
)

var levelNames = [numLevels]string{"region", "metro", "site", "cluster"}

const unlimited = math.MaxInt32

// target is one node the spec selects, with everything the planner
// needs from it read in the one pass over the snapshot, so that nodes
// are touched once.
type target struct {
	id     string
	dom    [numLevels]int32
	cap    float64
	rank   uint32 // preference rank
	state  disposition.State
	health disposition.Health
	atVer  bool // already at the spec's version
}

type planner struct {
	spec  *Spec
	c     *compiled
	snap  *disposition.Snapshot
	start int64
	end   int64 // start + horizon
	// deploy, dCanary, dGrowth are the deploy time and the wave lengths
	// of each stage, in seconds.
	deploy, dCanary, dGrowth int64

	names     [numLevels][]string
	inService [numLevels][]int32
	budget    [numLevels][]int32
	parent    [numLevels][]int32 // the enclosing domain's id
	global    int                // the global per-wave cap
	tail      int                // the growth waves' size after the ramp, within the global cap
	pack      time.Duration      // the longest a wave is held back (the spec's pack, or less; see NewPlan)
	fleetIn   int                // in-service servers in the snapshot

	tg       []target
	canaryOK []bool
	done     []bool           // targets already in a wave
	held     []map[string]int // per metro: how often each kind of constraint held it back
	out      []uint8          // per target: outNone, outSkipped or outUnschedulable
	why      []string         // per target: the reason it is left out
	metros   []*metroPlan
	zones    map[string]*time.Location
	prefs    *prefSet

	// domLeft counts, per site and cluster, the targets not yet in a
	// wave.
	domLeft [numLevels][]int32
	// resv is reserve's scratch: per site and cluster, what the wave
	// still owes it.
	resv [numLevels][]int32

	// ov is the overlap of the metros ovMetros, when run computed it.
	ov       *overlap
	ovMetros []*metroPlan
}

// dmin is the shortest wave, with its bake.
func (p *planner) dmin() int64 {
	if p.spec.Canary.Count == 0 {
		return p.dGrowth
	}
	return min(p.dGrowth, p.dCanary)
}

// NewPlan computes the waves of a rollout of spec over the fleet in snap,
// starting no earlier than start. It is pure and deterministic: the same
// spec, snapshot and start give the same Plan. Per-metro work runs
// concurrently.
//
// The error is a *SpecError for an invalid spec, wraps ErrInfeasible when
// the targets cannot be placed within the horizon, or is ctx's error.
func NewPlan(ctx context.Context, spec *Spec, snap *disposition.Snapshot, start time.Time) (*Plan, error) {
	c, err := spec.compile()
	if err != nil {
		return nil, err
	}
	if snap == nil {
		return nil, errors.New("rollout: nil snapshot")
	}
	p := &planner{
		spec:    spec,
		c:       c,
		snap:    snap,
		start:   start.Unix(),
		deploy:  int64(c.deploy / time.Second),
		dCanary: int64((c.deploy + c.canaryBake) / time.Second),
		dGrowth: int64((c.deploy + c.growthBake) / time.Second),
		zones:   map[string]*time.Location{},
	}
	if start.Nanosecond() != 0 {
		p.start++ // plans work in whole seconds, never before start
	}
	p.end = p.start + int64(c.horizon/time.Second)
	if p.prefs, err = p.compilePrefs(); err != nil {
		return nil, err
	}
	if err := p.load(); err != nil {
		return nil, err
	}
	p.out = make([]uint8, len(p.tg))
	p.why = make([]string, len(p.tg))
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := p.prepareMetros(ctx); err != nil {
		return nil, err
	}
	p.pack = p.c.pack
	plan, err := p.run(ctx, true)
	// Waiting for the focus metros can run out of horizon where taking
	// every instant would not: wait half as long, up to three times, then
	// not at all.
	for range 3 {
		if !errors.Is(err, ErrInfeasible) || p.pack < 2*time.Minute {
			break
		}
		p.pack /= 2
		p.reset()
		plan, err = p.run(ctx, true)
	}
	if errors.Is(err, ErrInfeasible) && p.pack > 0 {
		p.reset()
		plan, err = p.run(ctx, false)
	}
	if err != nil {
		return nil, err
	}
	p.bounds(plan)
	return plan, nil
}

// load reads the targets and the per-domain counts from the snapshot.
func (p *planner) load() error {
	sel, err := p.c.sel.Compile()
	if err != nil {
		return &SpecError{Field: "select", Err: err}
	}
	var exc *disposition.Matcher
	if p.c.hasExclude {
		if exc, err = p.c.exc.Compile(); err != nil {
			return &SpecError{Field: "exclude", Err: err}
		}
	}
	where, err := p.c.where.Compile()
	if err != nil {
		return &SpecError{Field: "canary.where", Err: err}
	}
	canary := p.spec.Canary.Count > 0
	var omit map[string]struct{}
	if len(p.spec.Omit) > 0 {
		omit = make(map[string]struct{}, len(p.spec.Omit))
		for _, id := range p.spec.Omit {
			omit[id] = struct{}{}
		}
	}

	var ids [numLevels]map[string]int32
	var last [numLevels]string
	var lastID [numLevels]int32
	for lv := range ids {
		ids[lv] = map[string]int32{}
		lastID[lv] = -1
	}
	intern := func(lv int, name string, parent int32) int32 {
		if lastID[lv] >= 0 && name == last[lv] {
			return lastID[lv]
		}
		id, ok := ids[lv][name]
		if !ok {
			id = int32(len(p.names[lv]))
			ids[lv][name] = id
			p.names[lv] = append(p.names[lv], name)
			p.inService[lv] = append(p.inService[lv], 0)
			p.parent[lv] = append(p.parent[lv], parent)
			if lv == lvMetro {
				p.metros = append(p.metros, &metroPlan{id: id, name: name, region: parent})
			}
		}
		last[lv], lastID[lv] = name, id
		return id
	}
	p.tg = make([]target, 0, p.snap.Len())
	p.canaryOK = make([]bool, 0, p.snap.Len())
	visit := func(n *disposition.Node) bool {
		var dom [numLevels]int32
		dom[lvRegion] = intern(lvRegion, n.Region, -1)
		dom[lvMetro] = intern(lvMetro, n.Metro, dom[lvRegion])
		dom[lvSite] = intern(lvSite, n.Site, dom[lvMetro])
		dom[lvCluster] = intern(lvCluster, n.Cluster, dom[lvSite])
		m := p.metros[dom[lvMetro]]
		if m.tz == "" && n.Timezone != "" {
			m.tz = n.Timezone
		}
		if n.State == disposition.StateInService {
			p.fleetIn++
			for lv := range dom {
				p.inService[lv][dom[lv]]++
			}
			if n.Health != disposition.HealthDown {
				m.capacity += n.CapacityGbps
				m.traffic += n.TrafficGbps
			}
		}
		_, omitted := omit[n.ID]
		if !omitted && sel.Match(n) && !(exc != nil && exc.Match(n)) {
			m.cands = append(m.cands, int32(len(p.tg)))
			p.tg = append(p.tg, target{
				id: n.ID, dom: dom, cap: n.CapacityGbps, rank: uint32(p.prefs.rank(n)),
				state: n.State, health: n.Health,
				atVer: p.spec.Component != "" && n.Versions[p.spec.Component] == p.spec.Version,
			})
			p.canaryOK = append(p.canaryOK, canary && where.Match(n))
		}
		return true
	}
	if err := p.snap.Scan(disposition.Query{}, visit); err != nil {
		return err
	}

	b := p.spec.Budgets
	p.global = unlimited
	if b.Global != nil {
		p.global = b.Global.budget(p.fleetIn)
	}
	for lv, a := range [numLevels]*Amount{b.Region, b.Metro, b.Site, b.Cluster} {
		p.budget[lv] = make([]int32, len(p.names[lv]))
		for d := range p.budget[lv] {
			p.budget[lv][d] = unlimited
			if a != nil {
				p.budget[lv][d] = int32(min(a.budget(int(p.inService[lv][d])), unlimited))
			}
		}
	}
	return nil
}

// Outcomes of a target that no wave holds.
const (
	outNone uint8 = iota
	outSkipped
	outUnschedulable
)

// leave records why target t is skipped or unschedulable. Each metro's
// goroutine writes only its own targets' entries.
func (p *planner) leave(t int32, out uint8, reason string) {
	p.out[t], p.why[t] = out, reason
}

// domRef names a domain: its level and id.
type domRef struct {
	lv int8
	id int32
}

// metroPlan is the planner's state for one metro.
type metroPlan struct {
	id       int32
	name     string
	region   int32
	tz       string
	loc      *time.Location
	capacity float64
	traffic  float64
	cands    []int32 // targets in the metro, in ID order

	// pending holds the schedulable targets in preference order; head is
	// the first not yet taken, left how many are not yet taken.
	pending    []int32
	ranks      []uint32 // preference rank of each pending target
	head, left int
	canaryLeft int
	minCap     float64
	per        int // the most targets a wave can take (see perWave)

	windows []span // window time in the horizon, without blackouts
	open    []span // window time outside blackouts
	spanCur int

	// hasCap says the spec has a capacity constraint; hourly is then the
	// metro's forecast traffic by local hour, capK is 1 + headroom and
	// segs the metro zone's offsets over the horizon.
	hasCap   bool
	hourly   [24]float64
	capK     float64
	segs     []zoneSeg
	headRank uint32 // preference rank of the first pending target
	measure  []float64
	neededBy int32    // waves left at least (see wavesLeft), for the critical-path order
	doms     []domRef // the metro's sites and clusters with targets
	// wl caches wavesLeft for the metro's targets left and per.
	wl struct {
		left, per, waves int
		ok               bool
	}
	reasons []string // BoundBy strings naming the metro, see why
}

const bucket = 900 // seconds in a quarter hour, the forecast's resolution

func (p *planner) location(name string) (*time.Location, error) {
	if loc, ok := p.zones[name]; ok {
		return loc, nil
	}
	if loc, ok := p.c.zones[name]; ok {
		return loc, nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	p.zones[name] = loc
	return loc, nil
}

// prepareMetros classifies the targets, computes every metro's calendar
// and capacity slack, and orders its targets. The metros are independent,
// so this runs concurrently; each goroutine writes only its own metro.
func (p *planner) prepareMetros(ctx context.Context) error {
	for _, m := range p.metros {
		if m.tz == "" || len(m.cands) == 0 {
			continue
		}
		if loc, err := p.location(m.tz); err == nil {
			m.loc = loc
		}
	}
	prefs := p.prefs
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for _, m := range p.metros {
		if len(m.cands) == 0 {
			continue
		}
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			return p.prepareMetro(m, prefs)
		})
	}
	return g.Wait()
}

func (p *planner) prepareMetro(m *metroPlan, prefs *prefSet) error {
	sp := p.spec
	var cands []int32
	atVer := "already at " + sp.Component + " " + sp.Version
	for _, ti := range m.cands {
		n := &p.tg[ti]
		switch {
		case n.state != disposition.StateInService:
			p.leave(ti, outSkipped, stateReason(n.state))
		case n.health != disposition.HealthHealthy:
			p.leave(ti, outSkipped, healthReason(n.health))
		case n.atVer:
			p.leave(ti, outSkipped, atVer)
		default:
			cands = append(cands, ti)
		}
	}
	if len(cands) == 0 {
		return nil
	}
	region := p.names[lvRegion][m.region]
	unsched := func(reason string) error {
		for _, ti := range cands {
			p.leave(ti, outUnschedulable, reason)
		}
		return nil
	}

	// Calendar.
	ws := metroWindows(sp.Windows, region, m.name)
	needZone := p.spec.Capacity != nil
	for _, w := range ws {
		if w.TZ == "" || w.TZ == "metro" {
			needZone = true
		}
	}
	if needZone && m.loc == nil {
		if m.tz == "" {
			return unsched("metro " + m.name + " has no time zone")
		}
		return unsched(fmt.Sprintf("metro %s has an unknown time zone %q", m.name, m.tz))
	}
	if len(ws) == 0 {
		m.windows = []span{{p.start, p.end}}
	} else {
		var ss []span
		for _, w := range ws {
			loc := m.loc
			if w.TZ != "" && w.TZ != "metro" {
				loc = p.c.zones[w.TZ]
			}
			ss = windowSpans(w, loc, p.start, p.end, ss)
		}
		m.windows = normalise(ss)
	}
	var bo []span
	var reasons []string
	for _, b := range sp.Blackouts {
		if blackoutApplies(b, region, m.name) && b.To.Unix() > p.start && b.From.Unix() < p.end {
			bo = append(bo, span{b.From.Unix(), b.To.Unix() + boolInt(b.To.Nanosecond() != 0)})
			if !slices.Contains(reasons, b.Reason) {
				reasons = append(reasons, b.Reason)
			}
		}
	}
	bo = normalise(bo)
	m.open = subtract(m.windows, bo)
	switch {
	case len(m.windows) == 0:
		return unsched(fmt.Sprintf("no window of metro %s opens within the horizon (%v)", m.name, time.Duration(p.end-p.start)*time.Second))
	case len(m.open) == 0:
		why := fmt.Sprintf("metro %s is in blackout for the whole horizon: %s", m.name, strings.Join(reasons, "; "))
		for _, ti := range cands {
			p.leave(ti, outSkipped, why)
		}
		return nil
	}
	var longest int64
	for _, s := range m.open {
		longest = max(longest, s.b-s.a)
	}
	if longest < p.dGrowth {
		what := "window"
		if len(bo) > 0 {
			what = "window outside blackouts"
		}
		return unsched(fmt.Sprintf("the longest %s of metro %s within the horizon (%v) is shorter than a wave with its bake (%v)",
			what, m.name, time.Duration(longest)*time.Second, time.Duration(p.dGrowth)*time.Second))
	}

	// Capacity.
	if sp.Capacity != nil {
		p.computeSlack(m)
		// The forecast repeats daily and windows weekly, so eight days of
		// open time show the best slack there is, bar blackouts carving
		// up the first week; past that, a server that never fits makes
		// the plan run out of horizon instead.
		// The highest forecast over a deploy drops only when its start
		// leaves a local hour, so trying each span's start and every
		// local hour boundary finds the best slack.
		best := math.Inf(-1)
	scan:
		for _, s := range m.open {
			for t := s.a; t+p.dGrowth <= s.b; t += 3600 - (((t+m.offAt(t))%3600)+3600)%3600 {
				if t-p.start > 8*86400 && best > math.Inf(-1) {
					break scan
				}
				best = max(best, m.slackAt(t, p.deploy))
			}
		}
		keep := cands[:0]
		for _, ti := range cands {
			if p.tg[ti].cap > best+1e-9 {
				p.leave(ti, outUnschedulable, fmt.Sprintf(
					"taking it out (%.4g Gbps) would leave metro %s below forecast x %g at every open hour (at best %.4g Gbps spare)",
					p.tg[ti].cap, m.name, 1+sp.Capacity.Headroom, max(best, 0)))
				continue
			}
			keep = append(keep, ti)
		}
		cands = keep
	}

	// Budgets of zero.
	keep := cands[:0]
	for _, ti := range cands {
		t := &p.tg[ti]
		if p.global == 0 {
			p.leave(ti, outUnschedulable, "budgets.global is 0")
			continue
		}
		zero := -1
		for lv := range numLevels {
			if p.budget[lv][t.dom[lv]] == 0 {
				zero = lv
				break
			}
		}
		if zero >= 0 {
			p.leave(ti, outUnschedulable, fmt.Sprintf("budgets.%s is 0 for %s %s", levelNames[zero], levelNames[zero], p.names[zero][t.dom[zero]]))
			continue
		}
		keep = append(keep, ti)
	}
	cands = keep
	if len(cands) == 0 {
		return nil
	}
	if len(cands) >= 1<<24 {
		return fmt.Errorf("rollout: metro %s has %d targets, more than the planner's limit of %d", m.name, len(cands), 1<<24)
	}
	m.minCap = math.Inf(1)
	for _, ti := range cands {
		m.minCap = min(m.minCap, p.tg[ti].cap)
		if p.canaryOK[ti] {
			m.canaryLeft++
		}
	}
	m.pending, m.ranks = p.order(cands, prefs)
	m.left = len(m.pending)
	m.measure = prefs.metroMeasures(p, m, len(cands))
	m.per = p.perWave(m)
	return nil
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func stateReason(s disposition.State) string {
	switch s {
	case disposition.StateUnknown:
		return "lifecycle state is unknown"
	case disposition.StateProvisioning:
		return "lifecycle state is provisioning"
	case disposition.StateMaintenance:
		return "lifecycle state is maintenance"
	case disposition.StateDrained:
		return "lifecycle state is drained"
	case disposition.StateRepair:
		return "lifecycle state is repair"
	case disposition.StateRepurpose:
		return "lifecycle state is repurpose"
	case disposition.StateDecommissioned:
		return "lifecycle state is decommissioned"
	}
	return "lifecycle state is " + s.String()
}

func healthReason(h disposition.Health) string {
	switch h {
	case disposition.HealthUnknown:
		return "health is unknown"
	case disposition.HealthDegraded:
		return "health is degraded"
	case disposition.HealthDown:
		return "health is down"
	}
	return "health is " + h.String()
}

// computeSlack prepares the metro's forecast: its traffic by local hour,
// from the spec or scaled from the snapshot's traffic by the profile.
func (p *planner) computeSlack(m *metroPlan) {
	cp := p.spec.Capacity
	prof := p.c.profile
	if f, ok := cp.Forecast[m.name]; ok {
		copy(m.hourly[:], f)
	} else {
		obs := p.start
		if !cp.ObservedAt.IsZero() {
			obs = cp.ObservedAt.Unix()
		}
		_, off := time.Unix(obs, 0).In(m.loc).Zone()
		peak := m.traffic / prof[localHour(obs, int64(off))]
		for h := range m.hourly {
			m.hourly[h] = peak * prof[h]
		}
	}
	m.hasCap = true
	m.capK = 1 + cp.Headroom
	m.segs = zoneSegments(m.loc, p.start, p.end+86400)
}

func localHour(t, off int64) int {
	h := floorDiv(t+off, 3600) % 24
	if h < 0 {
		h += 24
	}
	return int(h)
}

// offAt returns the metro zone's UTC offset at t.
func (m *metroPlan) offAt(t int64) int64 {
	i, _ := slices.BinarySearchFunc(m.segs, t, func(s zoneSeg, t int64) int {
		if s.b <= t {
			return -1
		}
		return 1
	})
	return m.segs[min(i, len(m.segs)-1)].off
}

// forecastAt returns the highest forecast over [t, t+d), walking the
// local hours it touches.
func (m *metroPlan) forecastAt(t, d int64) float64 {
	f := 0.0
	for x := t; x < t+d; {
		off := m.offAt(x)
		f = max(f, m.hourly[localHour(x, off)])
		next := x + 3600 - (((x+off)%3600)+3600)%3600
		// A zone change may move the local hour before the next full hour.
		for _, s := range m.segs {
			if s.a > x && s.a < next {
				next = s.a
				break
			}
		}
		x = next
	}
	return f
}

// slackAt returns the least capacity that may be out over [t, t+d).
func (m *metroPlan) slackAt(t, d int64) float64 {
	return m.capacity - m.forecastAt(t, d)*m.capK
}

// reset undoes a run, so that another may start from the prepared
// metros.
func (p *planner) reset() {
	for _, m := range p.metros {
		m.left, m.head, m.spanCur, m.canaryLeft = len(m.pending), 0, 0, 0
		for _, ti := range m.pending {
			if p.canaryOK[ti] {
				m.canaryLeft++
			}
		}
	}
}
