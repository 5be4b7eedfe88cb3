package plancheck

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/rollout"
)

// Violation is one broken invariant of a plan.
type Violation struct {
	// Wave is the wave's Index, or 0 for the plan as a whole.
	Wave int `json:"wave,omitempty"`
	// Rule names the invariant, such as "budget", "window" or "coverage".
	Rule string `json:"rule"`
	Msg  string `json:"msg"`
}

// String formats the violation as "wave N: rule: message".
func (v Violation) String() string {
	if v.Wave == 0 {
		return v.Rule + ": " + v.Msg
	}
	return fmt.Sprintf("wave %d: %s: %s", v.Wave, v.Rule, v.Msg)
}

// The rules Check enforces.
const (
	RuleSpec     = "spec"     // the spec is invalid
	RuleCoverage = "coverage" // every target in exactly one wave or skipped, no other server
	RuleSkip     = "skip"     // skipped and unschedulable entries are sorted and give a reason
	RuleEligible = "eligible" // scheduled servers are in service, healthy, not at the version
	RuleOrder    = "order"    // waves numbered, ordered, non-overlapping, of the right length
	RuleHorizon  = "horizon"  // waves end within the horizon
	RuleBudget   = "budget"   // per-domain budgets, global cap, exclusions
	RuleGrowth   = "growth"   // sizes follow the canary and growth policy
	RuleCanary   = "canary"   // canary servers match canary.where
	RuleWindow   = "window"   // waves with their bake inside every touched metro's windows
	RuleBlackout = "blackout" // no wave overlaps a blackout of a touched metro
	RuleCapacity = "capacity" // remaining capacity carries forecast x (1 + headroom)
	RuleReport   = "report"   // the plan's own counts agree with its servers
)

// Verify runs Check and reports every violation as a test error.
func Verify(t testing.TB, spec *rollout.Spec, snap *disposition.Snapshot, plan *rollout.Plan) {
	t.Helper()
	vs := Check(spec, snap, plan)
	for i, v := range vs {
		if i == 20 {
			t.Errorf("... and %d more violations", len(vs)-i)
			break
		}
		t.Errorf("plan violates %s", v)
	}
}

type metroInfo struct {
	region   string
	tz       string
	capacity float64
	traffic  float64
}

type checker struct {
	spec  *rollout.Spec
	snap  *disposition.Snapshot
	plan  *rollout.Plan
	out   []Violation
	inSvc [4]map[string]int
	fleet int
	metro map[string]*metroInfo
	zones map[string]*time.Location
}

func (c *checker) add(wave int, rule, format string, args ...any) {
	c.out = append(c.out, Violation{Wave: wave, Rule: rule, Msg: fmt.Sprintf(format, args...)})
}

// Check recomputes, from the spec and the snapshot alone, everything a
// plan promises and returns the violations, or nil for a valid plan:
// every target is in exactly one wave or skipped or unschedulable with a
// reason, and no other server is scheduled; scheduled servers are in
// service, healthy and not at the version; waves are numbered, ordered,
// non-overlapping and as long as deploy plus bake, within the horizon;
// per wave, every failure-domain budget, the global cap and the
// exclusions hold; sizes follow the canary and growth policy; the canary
// matches canary.where; every wave with its bake lies inside the windows
// and outside the blackouts of every metro it touches; and each touched
// metro's remaining capacity carries its forecast x (1 + headroom) during
// the deploy.
func Check(spec *rollout.Spec, snap *disposition.Snapshot, plan *rollout.Plan) []Violation {
	c := &checker{spec: spec, snap: snap, plan: plan, metro: map[string]*metroInfo{}, zones: map[string]*time.Location{}}
	if err := spec.Validate(); err != nil {
		c.add(0, RuleSpec, "%v", err)
		return c.out
	}
	targets, err := c.query(spec.Select)
	if err != nil {
		c.add(0, RuleSpec, "select: %v", err)
		return c.out
	}
	if strings.TrimSpace(spec.Exclude) != "" {
		exc, err := c.query(spec.Exclude)
		if err != nil {
			c.add(0, RuleSpec, "exclude: %v", err)
			return c.out
		}
		for id := range exc {
			delete(targets, id)
		}
	}
	c.scanFleet()

	// Coverage: each target exactly once, nothing else.
	seen := make(map[string]string, len(targets))
	mark := func(id, where string) {
		if _, ok := targets[id]; !ok {
			c.add(0, RuleCoverage, "%s (%s) is not a target", id, where)
			return
		}
		if prev, dup := seen[id]; dup {
			c.add(0, RuleCoverage, "%s is in %s and in %s", id, prev, where)
			return
		}
		seen[id] = where
	}
	for _, w := range plan.Waves {
		for _, id := range w.Servers {
			mark(id, fmt.Sprintf("wave %d", w.Index))
		}
	}
	for _, list := range []struct {
		name string
		l    []rollout.Skip
	}{{"skipped", plan.Skipped}, {"unschedulable", plan.Unschedulable}} {
		for i, s := range list.l {
			mark(s.ID, list.name)
			if strings.TrimSpace(s.Reason) == "" {
				c.add(0, RuleSkip, "%s entry %s has no reason", list.name, s.ID)
			}
			if i > 0 && list.l[i-1].ID >= s.ID {
				c.add(0, RuleSkip, "%s is not sorted by ID at %s", list.name, s.ID)
			}
		}
	}
	if len(seen) < len(targets) {
		var missing []string
		for id := range targets {
			if _, ok := seen[id]; !ok {
				missing = append(missing, id)
			}
		}
		slices.Sort(missing)
		c.add(0, RuleCoverage, "%d targets are neither scheduled nor skipped, e.g. %s", len(missing), missing[0])
	}
	for _, s := range plan.Skipped {
		n := targets[s.ID]
		if n != nil && c.eligible(n) == "" && !strings.Contains(s.Reason, "blackout") {
			c.add(0, RuleSkip, "%s is skipped (%q) though it is in service, healthy and not at the version", s.ID, s.Reason)
		}
	}

	c.checkWaves(targets)
	return c.out
}

func (c *checker) query(q string) (map[string]*disposition.Node, error) {
	pq, err := disposition.ParseQuery(q)
	if err != nil {
		return nil, err
	}
	nodes, err := c.snap.Query(pq)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*disposition.Node, len(nodes))
	for _, n := range nodes {
		out[n.ID] = n
	}
	return out, nil
}

func (c *checker) scanFleet() {
	for lv := range c.inSvc {
		c.inSvc[lv] = map[string]int{}
	}
	_ = c.snap.Scan(disposition.Query{}, func(n *disposition.Node) bool {
		m := c.metro[n.Metro]
		if m == nil {
			m = &metroInfo{region: n.Region}
			c.metro[n.Metro] = m
		}
		if m.tz == "" {
			m.tz = n.Timezone
		}
		if n.State == disposition.StateInService {
			c.fleet++
			for lv, name := range domainsOf(n) {
				c.inSvc[lv][name]++
			}
			if n.Health != disposition.HealthDown {
				m.capacity += n.CapacityGbps
				m.traffic += n.TrafficGbps
			}
		}
		return true
	})
}

func domainsOf(n *disposition.Node) [4]string {
	return [4]string{n.Region, n.Metro, n.Site, n.Cluster}
}

var levels = [4]string{"region", "metro", "site", "cluster"}

// eligible returns why a node may not be scheduled, or "".
func (c *checker) eligible(n *disposition.Node) string {
	switch {
	case n.State != disposition.StateInService:
		return "not in service"
	case n.Health != disposition.HealthHealthy:
		return "not healthy"
	case c.spec.Component != "" && n.Versions[c.spec.Component] == c.spec.Version:
		return "already at the version"
	}
	return ""
}

// budget resolves a budget: counts as given, percentages of n rounded
// down but at least 1 unless 0%; -1 means no limit.
func budget(a *rollout.Amount, n int) int {
	switch {
	case a == nil:
		return -1
	case !a.Percent:
		return a.Count
	case a.Pct == 0:
		return 0
	}
	return max(1, int(math.Floor(a.Pct*float64(n)/100+1e-9)))
}

// size resolves a growth size: percentages of n rounded up, at least 1.
func size(a rollout.Amount, n int) int {
	if !a.Percent {
		return max(1, a.Count)
	}
	return max(1, int(math.Ceil(a.Pct*float64(n)/100-1e-9)))
}

// growthStep returns the size growth wave k (from 0) may have.
func growthStep(g rollout.Growth, k, n int) int {
	n = max(n, 1)
	switch {
	case len(g.Steps) > 0:
		return size(g.Steps[min(k, len(g.Steps)-1)], n)
	case g.Exponential != nil:
		e := g.Exponential
		limit := n
		if e.Cap != nil {
			limit = min(limit, size(*e.Cap, n))
		}
		x := float64(size(e.Start, n))
		for range k {
			if x >= float64(limit) {
				break
			}
			x *= e.Factor
		}
		return min(int(math.Ceil(x-1e-9)), limit)
	default:
		l := g.Linear
		limit := n
		if l.Cap != nil {
			limit = min(limit, size(*l.Cap, n))
		}
		step := 0
		if l.Step.Percent && l.Step.Pct > 0 || !l.Step.Percent && l.Step.Count > 0 {
			step = size(l.Step, n)
		}
		return min(size(l.Start, n)+k*step, limit)
	}
}

func (c *checker) location(name string) *time.Location {
	if loc, ok := c.zones[name]; ok {
		return loc
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		loc = nil
	}
	c.zones[name] = loc
	return loc
}

func (c *checker) checkWaves(targets map[string]*disposition.Node) {
	sp, plan := c.spec, c.plan
	deploy := sp.DeployDuration()
	horizonEnd := plan.Start.Add(sp.HorizonDuration())
	total := 0
	for _, w := range plan.Waves {
		total += len(w.Servers)
	}
	if total != plan.Total {
		c.add(0, RuleReport, "Total is %d but the waves hold %d servers", plan.Total, total)
	}
	var where map[string]*disposition.Node
	if sp.Canary.Count > 0 {
		var err error
		if where, err = c.query(sp.Canary.Where); err != nil {
			c.add(0, RuleSpec, "canary.where: %v", err)
		}
	}
	b := sp.Budgets
	growthK := 0
	prevEnd := plan.Start
	for i, w := range plan.Waves {
		wi := w.Index
		if w.Index != i+1 {
			c.add(wi, RuleOrder, "index %d at position %d", w.Index, i+1)
		}
		canary := i == 0 && sp.Canary.Count > 0
		stage, bake := rollout.StageGrowth, time.Duration(sp.Growth.Bake)
		var step int
		if canary {
			stage, bake, step = rollout.StageCanary, time.Duration(sp.Canary.Bake), sp.Canary.Count
		} else {
			step = growthStep(sp.Growth, growthK, plan.Total)
			growthK++
		}
		if w.Stage != stage {
			c.add(wi, RuleOrder, "stage %q, want %q", w.Stage, stage)
		}
		if w.Start.Before(prevEnd) {
			c.add(wi, RuleOrder, "starts at %s, before the previous wave (or the plan) ends at %s", w.Start, prevEnd)
		}
		if !w.End.Equal(w.Start.Add(deploy + bake)) {
			c.add(wi, RuleOrder, "ends at %s, want start + deploy %v + bake %v", w.End, deploy, bake)
		}
		if w.End.After(horizonEnd) {
			c.add(wi, RuleHorizon, "ends at %s, after the horizon %s", w.End, horizonEnd)
		}
		prevEnd = w.End
		if len(w.Servers) == 0 {
			c.add(wi, RuleOrder, "is empty")
		}

		// Growth.
		allowed := step
		if cp := budget(b.Global, c.fleet); cp >= 0 {
			allowed = min(allowed, cp)
		}
		if w.Step != step {
			c.add(wi, RuleGrowth, "step is %d, want %d", w.Step, step)
		}
		if len(w.Servers) > allowed {
			c.add(wi, RuleGrowth, "%d servers, more than the %d the growth policy and global cap allow", len(w.Servers), allowed)
		}
		if (w.BoundBy == "growth" || w.BoundBy == "canary") && len(w.Servers) != step {
			c.add(wi, RuleGrowth, "bound by %s but has %d servers, not %d", w.BoundBy, len(w.Servers), step)
		}
		if w.BoundBy == "" {
			c.add(wi, RuleReport, "no BoundBy")
		}

		// Budgets, exclusions and per-metro figures.
		var counts [4]map[string]int
		for lv := range counts {
			counts[lv] = map[string]int{}
		}
		children := [3]map[string]map[string]bool{{}, {}, {}}
		out := map[string]float64{}
		for _, id := range w.Servers {
			n := targets[id]
			if n == nil {
				continue // reported under coverage
			}
			if why := c.eligible(n); why != "" {
				c.add(wi, RuleEligible, "%s is %s", id, why)
			}
			if canary && where != nil && where[id] == nil {
				c.add(wi, RuleCanary, "%s does not match canary.where %q", id, sp.Canary.Where)
			}
			d := domainsOf(n)
			for lv := range d {
				counts[lv][d[lv]]++
				if lv > 0 {
					if children[lv-1][d[lv-1]] == nil {
						children[lv-1][d[lv-1]] = map[string]bool{}
					}
					children[lv-1][d[lv-1]][d[lv]] = true
				}
			}
			out[n.Metro] += n.CapacityGbps
		}
		for lv, a := range [4]*rollout.Amount{b.Region, b.Metro, b.Site, b.Cluster} {
			for name, k := range counts[lv] {
				if bud := budget(a, c.inSvc[lv][name]); bud >= 0 && k > bud {
					c.add(wi, RuleBudget, "%s %s has %d servers, budget %d", levels[lv], name, k, bud)
				}
			}
		}
		if cp := budget(b.Global, c.fleet); cp >= 0 && len(w.Servers) > cp {
			c.add(wi, RuleBudget, "%d servers, global cap %d", len(w.Servers), cp)
		}
		for lv, lim := range [3]int{b.MetrosPerRegion, b.SitesPerMetro, b.ClustersPerSite} {
			for name, kids := range children[lv] {
				if lim > 0 && len(kids) > lim {
					c.add(wi, RuleBudget, "%s %s has %d %ss in one wave, at most %d", levels[lv], name, len(kids), levels[lv+1], lim)
				}
			}
		}
		got := [4]map[string]int{w.Domains.Region, w.Domains.Metro, w.Domains.Site, w.Domains.Cluster}
		for lv := range got {
			if !mapsEqual(got[lv], counts[lv]) {
				c.add(wi, RuleReport, "Domains.%s does not match the servers", levels[lv])
			}
		}

		metros := make([]string, 0, len(counts[1]))
		for m := range counts[1] {
			metros = append(metros, m)
		}
		slices.Sort(metros)
		for _, m := range metros {
			c.checkCalendar(wi, m, w.Start, w.End)
			c.checkCapacity(wi, m, w.Start, deploy, out[m])
		}
	}
	want := plan.Start
	if n := len(plan.Waves); n > 0 {
		want = plan.Waves[n-1].End
	}
	if !plan.End.Equal(want) {
		c.add(0, RuleReport, "End is %s, want %s", plan.End, want)
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// windowsFor returns the windows applying to a metro: its own, else its
// region's, else the global ones.
func (c *checker) windowsFor(metro, region string) []rollout.Window {
	var own, reg, glob []rollout.Window
	for _, w := range c.spec.Windows {
		switch {
		case w.Metro != "":
			if w.Metro == metro {
				own = append(own, w)
			}
		case w.Region != "":
			if w.Region == region {
				reg = append(reg, w)
			}
		default:
			glob = append(glob, w)
		}
	}
	if len(own) > 0 {
		return own
	}
	if len(reg) > 0 {
		return reg
	}
	return glob
}

// inWindow reports whether instant t is inside w, reading the wall clock
// in loc.
func inWindow(w rollout.Window, loc *time.Location, t time.Time) bool {
	lt := t.In(loc)
	mins := lt.Hour()*60 + lt.Minute()
	day := func(d time.Weekday) bool { return len(w.Days) == 0 || slices.Contains(w.Days, d) }
	s, e := int(w.Start), int(w.End)
	if s < e {
		return day(lt.Weekday()) && mins >= s && mins < e
	}
	// Overnight: the evening part belongs to today, the morning part to
	// the window that opened yesterday.
	if mins >= s && day(lt.Weekday()) {
		return true
	}
	return mins < e && day((lt.Weekday()+6)%7)
}

// checkCalendar checks that [start, end) lies inside the metro's windows
// and outside its blackouts. Window edges fall on whole minutes, so the
// instants checked are start and every whole minute after it.
func (c *checker) checkCalendar(wi int, metro string, start, end time.Time) {
	mi := c.metro[metro]
	if mi == nil {
		return
	}
	for _, bo := range c.spec.Blackouts {
		applies := bo.Metro == metro || bo.Metro == "" && (bo.Region == mi.region || bo.Region == "")
		if applies && start.Before(bo.To) && bo.From.Before(end) {
			c.add(wi, RuleBlackout, "metro %s: wave %s..%s overlaps blackout %s..%s (%s)", metro, start.UTC().Format(time.RFC3339), end.UTC().Format(time.RFC3339), bo.From.UTC().Format(time.RFC3339), bo.To.UTC().Format(time.RFC3339), bo.Reason)
		}
	}
	ws := c.windowsFor(metro, mi.region)
	if len(ws) == 0 {
		return
	}
	for t := start; t.Before(end); t = t.Truncate(time.Minute).Add(time.Minute) {
		ok := false
		for _, w := range ws {
			tz := w.TZ
			if tz == "" || tz == "metro" {
				tz = mi.tz
			}
			loc := c.location(tz)
			if loc != nil && inWindow(w, loc, t) {
				ok = true
				break
			}
		}
		if !ok {
			c.add(wi, RuleWindow, "metro %s: %s (local %s) is outside its windows", metro, t.UTC().Format(time.RFC3339), t.In(orUTC(c.location(mi.tz))).Format("Mon 15:04 MST"))
			return
		}
	}
}

func orUTC(l *time.Location) *time.Location {
	if l == nil {
		return time.UTC
	}
	return l
}

// checkCapacity checks that the metro keeps forecast x (1 + headroom)
// while out Gbps of it are out, at every whole minute of the deploy.
func (c *checker) checkCapacity(wi int, metro string, start time.Time, deploy time.Duration, out float64) {
	cp := c.spec.Capacity
	mi := c.metro[metro]
	if cp == nil || mi == nil {
		return
	}
	loc := c.location(mi.tz)
	if loc == nil {
		c.add(wi, RuleCapacity, "metro %s has no usable time zone", metro)
		return
	}
	prof := cp.Profile
	if prof == nil {
		prof = rollout.DefaultProfile()
	}
	hourly := make([]float64, 24)
	if f, ok := cp.Forecast[metro]; ok {
		copy(hourly, f)
	} else {
		obs := cp.ObservedAt
		if obs.IsZero() {
			obs = c.plan.Start
		}
		peak := mi.traffic / prof[obs.In(loc).Hour()]
		for h := range hourly {
			hourly[h] = peak * prof[h]
		}
	}
	end := start.Add(deploy)
	for t := start; t.Before(end); t = t.Truncate(time.Minute).Add(time.Minute) {
		need := hourly[t.In(loc).Hour()] * (1 + cp.Headroom)
		left := mi.capacity - out
		if left < need-1e-6*max(1, need) {
			c.add(wi, RuleCapacity, "metro %s at %s: %.2f Gbps left in service, forecast x %g needs %.2f", metro, t.UTC().Format(time.RFC3339), left, 1+cp.Headroom, need)
			return
		}
	}
}
