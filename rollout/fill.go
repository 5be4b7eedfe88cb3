package rollout

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
)

// waveState holds the per-wave counters, reset cheaply by stamping.
type waveState struct {
	wave     int32
	cnt      [numLevels][]int32
	stamp    [numLevels][]int32
	children [numLevels][]int32 // distinct children touched, per parent
	touched  [numLevels][]int32
}

func (w *waveState) get(lv int, d int32) int32 {
	if w.stamp[lv][d] != w.wave {
		return 0
	}
	return w.cnt[lv][d]
}

func (w *waveState) kids(lv int, d int32) int32 {
	if w.stamp[lv][d] != w.wave {
		return 0
	}
	return w.children[lv][d]
}

func (p *planner) newWaveState() *waveState {
	w := &waveState{}
	for lv := range numLevels {
		n := len(p.names[lv])
		w.cnt[lv] = make([]int32, n)
		w.stamp[lv] = make([]int32, n)
		w.children[lv] = make([]int32, n)
	}
	return w
}

// take counts target t in the current wave.
func (p *planner) take(w *waveState, t *target) {
	for lv := range numLevels {
		d := t.dom[lv]
		if w.stamp[lv][d] != w.wave {
			w.stamp[lv][d] = w.wave
			w.cnt[lv][d] = 0
			w.children[lv][d] = 0
			w.touched[lv] = append(w.touched[lv], d)
			if lv > 0 {
				w.children[lv-1][t.dom[lv-1]]++
			}
		}
		w.cnt[lv][d]++
	}
}

// status says whether a metro can join a wave at an instant.
type status uint8

const (
	stOpen status = iota
	stWindow
	stBlackout
	stCapacity
)

// spanAt returns the index of the first open span of m ending after t;
// t never decreases between calls.
func (m *metroPlan) spanAt(t int64) int {
	for m.spanCur < len(m.open) && m.open[m.spanCur].b <= t {
		m.spanCur++
	}
	return m.spanCur
}

func inSpans(ss []span, t int64) bool {
	i, _ := slices.BinarySearchFunc(ss, t, func(s span, t int64) int {
		if s.b <= t {
			return -1
		}
		return 1
	})
	return i < len(ss) && ss[i].a <= t
}

func (p *planner) status(m *metroPlan, t, d int64) (status, float64) {
	i := m.spanAt(t)
	if i == len(m.open) || m.open[i].a > t || m.open[i].b < t+d {
		if inSpans(m.windows, t) {
			return stBlackout, 0
		}
		return stWindow, 0
	}
	if !m.hasCap {
		return stOpen, math.Inf(1)
	}
	s := m.slackAt(t, p.deploy)
	if s < m.minCap-1e-9 {
		return stCapacity, s
	}
	return stOpen, s
}

// canJoin reports whether m may join a wave of length d at t, as status
// would say at t, without moving m's span cursor.
func (p *planner) canJoin(m *metroPlan, t, d int64) bool {
	i, _ := slices.BinarySearchFunc(m.open, t, func(s span, t int64) int {
		if s.b <= t {
			return -1
		}
		return 1
	})
	if i == len(m.open) || m.open[i].a > t || m.open[i].b < t+d {
		return false
	}
	return !m.hasCap || m.slackAt(t, p.deploy) >= m.minCap-1e-9
}

// nextTry returns the earliest instant after t at which m might join a
// wave of length d.
func (p *planner) nextTry(m *metroPlan, t, d int64) int64 {
	i := m.spanAt(t)
	if i == len(m.open) {
		return math.MaxInt64
	}
	s := m.open[i]
	if s.a > t {
		return s.a
	}
	if s.b >= t+d && m.hasCap {
		if nb := (floorDiv(t, bucket) + 1) * bucket; nb+d <= s.b {
			return nb
		}
	}
	if i+1 < len(m.open) {
		return m.open[i+1].a
	}
	return math.MaxInt64
}

type metroPick struct {
	m     *metroPlan
	slack float64
}

// why returns kind+name, such as "window:DEN", built once per metro.
func (m *metroPlan) why(kind string) string {
	for _, r := range m.reasons {
		if strings.HasPrefix(r, kind) {
			return r
		}
	}
	r := kind + m.name
	m.reasons = append(m.reasons, r)
	return r
}

// run fills the waves, one after another. With useFocus (and a pack time
// above zero), growth waves wait for instants at which they can hold more
// of the metros that bound the number of waves (see focus).
func (p *planner) run(ctx context.Context, useFocus bool) (*Plan, error) {
	sp := p.spec
	plan := &Plan{
		Name:   sp.Name,
		Start:  time.Unix(p.start, 0).UTC(),
		Deploy: Duration(p.c.deploy),
	}
	var active []*metroPlan
	total, canaryTotal := 0, 0
	for _, m := range p.metros {
		if m.left > 0 {
			active = append(active, m)
			total += m.left
			canaryTotal += m.canaryLeft
		}
	}
	plan.Skipped, plan.Unschedulable = []Skip{}, []Skip{}
	for ti, o := range p.out {
		switch o {
		case outSkipped:
			plan.Skipped = append(plan.Skipped, Skip{p.tg[ti].id, p.why[ti]})
		case outUnschedulable:
			plan.Unschedulable = append(plan.Unschedulable, Skip{p.tg[ti].id, p.why[ti]})
		}
	}
	plan.Total = total
	plan.Waves = []Wave{}

	canary := sp.Canary.Count > 0 && total > 0
	if canary && canaryTotal == 0 {
		return nil, fmt.Errorf("%w: canary.where %q matches no schedulable target", ErrInfeasible, sp.Canary.Where)
	}
	prefix, tail := sp.Growth.sizes(total)
	p.tail = min(tail, p.global)
	p.done = make([]bool, len(p.tg))
	p.countLeft(active)
	p.held = make([]map[string]int, len(p.metros))
	for i := range p.held {
		p.held[i] = map[string]int{}
	}
	var f *focus
	if useFocus && p.pack > 0 {
		f = p.newFocus(active)
	}
	ws := p.newWaveState()
	left := total
	t := p.start
	growthK := 0
	var picks []metroPick
	var takenBy [][]int32
	stopReason := make([]string, len(p.metros))
	for left > 0 {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		stage, d, step := StageGrowth, p.dGrowth, tail
		bake := p.c.growthBake
		if canary {
			stage, d, step, bake = StageCanary, p.dCanary, sp.Canary.Count, p.c.canaryBake
		} else if growthK < len(prefix) {
			step = prefix[growthK]
		}
		if t+d > p.end {
			return nil, p.infeasible(active, t, d, left)
		}
		limit := min(step, p.global)

		// The metros that can join a wave at t.
		picks = picks[:0]
		for _, m := range active {
			if m.left == 0 || canary && m.canaryLeft == 0 {
				continue
			}
			st, slack := p.status(m, t, d)
			stopReason[m.id] = ""
			switch st {
			case stOpen:
				picks = append(picks, metroPick{m, slack})
				m.headRank = p.headRank(m)
				m.neededBy = int32(p.wavesLeft(m, int(p.budget[lvMetro][m.id])))
				if f != nil {
					if i := f.idx[m.id]; i >= 0 {
						m.neededBy = int32(p.wavesLeft(m, f.per[i]))
					}
				}
			case stWindow:
				stopReason[m.id] = m.why("window:")
			case stBlackout:
				stopReason[m.id] = m.why("blackout:")
			case stCapacity:
				stopReason[m.id] = m.why("capacity:")
			}
		}
		if f != nil && !canary {
			// Hold the wave for a fuller one, if one may come soon enough.
			if at, ok := f.hold(p, picks, t, d); ok {
				t = at
				continue
			}
		}
		slices.SortFunc(picks, func(a, b metroPick) int {
			if c := cmp.Compare(a.m.headRank, b.m.headRank); c != 0 {
				return c
			}
			if f != nil {
				if c := cmp.Compare(f.crit[b.m.id], f.crit[a.m.id]); c != 0 {
					return c
				}
				// Of a group's metros in S, the one with the most waves
				// left goes first, so that they finish together.
				if f.crit[a.m.id] > 0 {
					if c := cmp.Compare(b.m.neededBy, a.m.neededBy); c != 0 {
						return c
					}
				}
			}
			if c := slices.Compare(a.m.measure, b.m.measure); c != 0 {
				return c
			}
			if c := cmp.Compare(b.m.neededBy, a.m.neededBy); c != 0 {
				return c
			}
			return strings.Compare(a.m.name, b.m.name)
		})

		// Fill the wave metro by metro.
		ws.wave++
		for lv := range ws.touched {
			ws.touched[lv] = ws.touched[lv][:0]
		}
		size := 0
		takenBy = takenBy[:0]
		var outGbps []float64
		var filled []metroPick
		for _, pk := range picks {
			m := pk.m
			if size >= limit {
				stopReason[m.id] = ""
				break
			}
			r := m.region
			if mpr := sp.Budgets.MetrosPerRegion; mpr > 0 && ws.kids(lvRegion, r) >= int32(mpr) {
				stopReason[m.id] = "exclusion:region:" + p.names[lvRegion][r]
				continue
			}
			q := limit - size
			why := ""
			if rb := int(p.budget[lvRegion][r] - ws.get(lvRegion, r)); rb < q {
				q, why = rb, "budget:region:"+p.names[lvRegion][r]
			}
			if mb := int(p.budget[lvMetro][m.id]); mb < q {
				q, why = mb, m.why("budget:metro:")
			}
			if q <= 0 {
				stopReason[m.id] = why
				continue
			}
			taken, out, reason := p.fillMetro(m, q, pk.slack, canary, ws)
			if len(taken) == q {
				reason = why
			}
			stopReason[m.id] = reason
			if len(taken) > 0 {
				takenBy = append(takenBy, taken)
				outGbps = append(outGbps, out)
				filled = append(filled, pk)
				size += len(taken)
			}
		}

		// Count what held each metro back, for the error if the horizon
		// runs out.
		for _, m := range active {
			if r := stopReason[m.id]; r != "" && m.left > 0 {
				kind, _, _ := strings.Cut(r, ":")
				p.held[m.id][kind]++
			}
		}
		if size == 0 {
			next := int64(math.MaxInt64)
			for _, m := range active {
				if m.left > 0 && (!canary || m.canaryLeft > 0) {
					next = min(next, p.nextTry(m, t, d))
				}
			}
			if next >= p.end {
				return nil, p.infeasible(active, t, d, left)
			}
			t = max(next, t+1)
			continue
		}

		w := Wave{
			Index: len(plan.Waves) + 1,
			Stage: stage,
			Step:  step,
			Start: time.Unix(t, 0).UTC(),
			End:   time.Unix(t+d, 0).UTC(),
			Bake:  Duration(bake),
		}
		pending := left
		if canary {
			pending = 0
			for _, m := range active {
				pending += m.canaryLeft
			}
		}
		w.BoundBy = p.boundBy(size, step, pending, canary, active, stopReason)
		p.emit(&w, filled, takenBy, outGbps, ws, t)
		for _, tk := range takenBy {
			for _, ti := range tk {
				if p.canaryOK[ti] {
					p.metros[p.tg[ti].dom[lvMetro]].canaryLeft--
				}
			}
		}
		plan.Waves = append(plan.Waves, w)
		if f != nil {
			f.stale = true // S is chosen again over the work left
		}
		left -= size
		t += d
		if canary {
			canary = false
		} else {
			growthK++
		}
	}
	plan.End = plan.Start
	if n := len(plan.Waves); n > 0 {
		plan.End = plan.Waves[n-1].End
	}
	plan.Metros = p.metroInfo(plan)
	return plan, nil
}

// countLeft counts the targets left in every site and cluster of the
// active metros, and lists each metro's sites and clusters.
func (p *planner) countLeft(active []*metroPlan) {
	for _, lv := range []int{lvSite, lvCluster} {
		p.domLeft[lv] = make([]int32, len(p.names[lv]))
		p.resv[lv] = make([]int32, len(p.names[lv]))
	}
	for _, m := range active {
		m.doms = m.doms[:0]
		m.wl.ok = false
		for _, ti := range m.pending {
			t := &p.tg[ti]
			for _, lv := range []int{lvSite, lvCluster} {
				d := t.dom[lv]
				if p.domLeft[lv][d] == 0 {
					m.doms = append(m.doms, domRef{int8(lv), d})
				}
				p.domLeft[lv][d]++
			}
		}
	}
}

// wavesLeft returns the fewest waves that can take m's targets left
// when a wave takes at most per of them: what the metro needs, or one of
// its sites or clusters at its budget, whichever needs more.
func (p *planner) wavesLeft(m *metroPlan, per int) int {
	if m.wl.left == m.left && m.wl.per == per && m.wl.ok {
		return m.wl.waves // only m's waves change its sites and clusters
	}
	w := ceilDiv(m.left, per)
	for _, d := range m.doms {
		if n := p.domLeft[d.lv][d.id]; n > 0 {
			w = max(w, ceilDiv(int(n), int(p.budget[d.lv][d.id])))
		}
	}
	m.wl.left, m.wl.per, m.wl.waves, m.wl.ok = m.left, per, w, true
	return w
}

// headRank returns the preference rank of m's first pending target;
// pending is sorted by rank first, so it is the metro's best.
func (p *planner) headRank(m *metroPlan) uint32 {
	for m.head < len(m.pending) && p.done[m.pending[m.head]] {
		m.head++
	}
	if m.head == len(m.pending) {
		return math.MaxUint32
	}
	return m.ranks[m.head]
}

// fillMetro takes up to q targets of m into the wave, in order, within
// the site and cluster budgets and the capacity slack. It returns the
// targets taken, the capacity they take out, and why it stopped short of
// q ("" when the metro ran out of targets).
//
// The order gives way in one case (see reserve): a growth wave first
// takes from each site or cluster that needs as many waves as the whole
// metro what that domain must give every one of them.
func (p *planner) fillMetro(m *metroPlan, q int, slack float64, canary bool, ws *waveState) ([]int32, float64, string) {
	done := p.done
	b := &p.spec.Budgets
	for m.head < len(m.pending) && done[m.pending[m.head]] {
		m.head++
	}
	var taken []int32
	out := 0.0
	reason := ""
	// admit returns why target ti cannot join the wave, or "".
	admit := func(ti int32) string {
		t := &p.tg[ti]
		site, cl := t.dom[lvSite], t.dom[lvCluster]
		switch {
		case ws.get(lvSite, site) >= p.budget[lvSite][site]:
			return "budget:site:" + p.names[lvSite][site]
		case ws.get(lvCluster, cl) >= p.budget[lvCluster][cl]:
			return "budget:cluster:" + p.names[lvCluster][cl]
		case b.SitesPerMetro > 0 && ws.get(lvSite, site) == 0 && ws.kids(lvMetro, m.id) >= int32(b.SitesPerMetro):
			return "exclusion:metro:" + m.name
		case b.ClustersPerSite > 0 && ws.get(lvCluster, cl) == 0 && ws.kids(lvSite, site) >= int32(b.ClustersPerSite):
			return "exclusion:site:" + p.names[lvSite][site]
		case out+t.cap > slack+1e-9:
			return m.why("capacity:")
		}
		return ""
	}
	add := func(ti int32) {
		t := &p.tg[ti]
		done[ti] = true
		m.left--
		p.domLeft[lvSite][t.dom[lvSite]]--
		p.domLeft[lvCluster][t.dom[lvCluster]]--
		taken = append(taken, ti)
		out += t.cap
		p.take(ws, t)
	}
	if !canary && q > 1 {
		p.reserve(m, q, admit, add, &taken)
	}
	rejects, maxRejects := 0, 8*q+256
	for i := m.head; i < len(m.pending) && len(taken) < q; i++ {
		ti := m.pending[i]
		if done[ti] || canary && !p.canaryOK[ti] {
			continue
		}
		if why := admit(ti); why != "" {
			reason = why
			if rejects++; rejects > maxRejects || why[0] == 'c' && slack-out < m.minCap {
				break
			}
			continue
		}
		add(ti)
	}
	return taken, out, reason
}

// reserve takes into the wave, ahead of the order, what each of m's
// critical sites and clusters must give it. A domain with n targets left
// and a budget of b a wave needs w = ceil(n/b) waves; when the metro as a
// whole needs no more (see wavesLeft), each of the metro's waves must take
// n - b(w-1) of it, or the metro needs a wave more. With preferences
// (order) the domain's targets may come last in the metro's order, and
// following it would leave the domain for waves of its own: a target
// that is late by preference costs a little order, a wave of its own
// costs a wave of the plan. One pass over the metro's targets in order
// takes those of a domain still owed, passing over those the wave cannot
// admit.
func (p *planner) reserve(m *metroPlan, q int, admit func(int32) string, add func(int32), taken *[]int32) {
	w := p.wavesLeft(m, min(m.per, p.tail))
	if w <= 1 {
		return
	}
	owed := 0 // domains still owed targets
	for _, d := range m.doms {
		n, b := int(p.domLeft[d.lv][d.id]), int(p.budget[d.lv][d.id])
		if need := n - b*(w-1); n > 0 && need > 0 {
			p.resv[d.lv][d.id] = int32(need)
			owed++
		}
	}
	if owed == 0 {
		return
	}
	resv := &p.resv
	for i := m.head; i < len(m.pending) && owed > 0 && len(*taken) < q; i++ {
		ti := m.pending[i]
		if p.done[ti] {
			continue
		}
		t := &p.tg[ti]
		cl, site := t.dom[lvCluster], t.dom[lvSite]
		if resv[lvCluster][cl] <= 0 && resv[lvSite][site] <= 0 || admit(ti) != "" {
			continue
		}
		add(ti)
		for _, x := range [...]*int32{&resv[lvCluster][cl], &resv[lvSite][site]} {
			if *x--; *x == 0 {
				owed--
			}
		}
	}
	for _, d := range m.doms {
		resv[d.lv][d.id] = 0
	}
}

// boundBy names the constraint that set a wave's size.
func (p *planner) boundBy(size, step, pending int, canary bool, active []*metroPlan, stop []string) string {
	full := min(step, p.global, pending)
	if size >= full {
		switch {
		case pending <= min(step, p.global) && pending < step:
			return "remaining"
		case p.global < step:
			return "global-cap"
		case canary:
			return StageCanary
		}
		return "growth"
	}
	best, bestLeft, bestName := "", -1, ""
	for _, m := range active {
		n := m.left
		if canary {
			n = m.canaryLeft
		}
		r := stop[m.id]
		if n == 0 || r == "" {
			continue
		}
		if n > bestLeft || n == bestLeft && m.name < bestName {
			best, bestLeft, bestName = r, n, m.name
		}
	}
	if best == "" {
		return "window"
	}
	return best
}

// emit fills in a wave's servers, per-metro figures and domain counts.
func (p *planner) emit(w *Wave, filled []metroPick, takenBy [][]int32, out []float64, ws *waveState, t int64) {
	idx := make([]int, len(filled))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return strings.Compare(filled[a].m.name, filled[b].m.name) })
	n := 0
	for _, tk := range takenBy {
		n += len(tk)
	}
	w.Servers = make([]string, 0, n)
	w.Metros = make([]WaveMetro, 0, len(filled))
	for _, i := range idx {
		m := filled[i].m
		tk := takenBy[i]
		slices.Sort(tk)
		for _, ti := range tk {
			w.Servers = append(w.Servers, p.tg[ti].id)
		}
		wm := WaveMetro{
			Metro:        m.name,
			Region:       p.names[lvRegion][m.region],
			Servers:      len(tk),
			CapacityGbps: m.capacity,
			OutGbps:      out[i],
		}
		if m.capacity > 0 {
			wm.Dip = out[i] / m.capacity
		}
		if m.loc != nil {
			wm.LocalStart = time.Unix(t, 0).In(m.loc).Format("Mon 2006-01-02 15:04 MST")
		}
		if m.hasCap {
			wm.ForecastGbps = m.forecastAt(t, p.deploy)
		}
		w.Metros = append(w.Metros, wm)
	}
	count := func(lv int) map[string]int {
		c := make(map[string]int, len(ws.touched[lv]))
		for _, d := range ws.touched[lv] {
			c[p.names[lv][d]] += int(ws.cnt[lv][d])
		}
		return c
	}
	w.Domains = Domains{Region: count(lvRegion), Metro: count(lvMetro), Site: count(lvSite), Cluster: count(lvCluster)}
}

// infeasible explains why the remaining targets do not fit the horizon.
func (p *planner) infeasible(active []*metroPlan, t, d int64, left int) error {
	var parts []string
	for _, m := range active {
		if m.left == 0 {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %d (%s)", m.name, m.left, p.stuck(m, d)))
		if len(parts) == 8 {
			parts = append(parts, "...")
			break
		}
	}
	return fmt.Errorf("%w: %d targets could not be placed within the horizon (%v from %s): %s",
		ErrInfeasible, left, time.Duration(p.end-p.start)*time.Second, time.Unix(p.start, 0).UTC().Format(time.RFC3339), strings.Join(parts, ", "))
}

// stuck says what kept a metro from being finished within the horizon:
// no window long enough for a wave, blackouts over every such window, or
// else the constraint that held it back most often while waves were
// planned (capacity, window, blackout, budget or exclusion), or "growth"
// when nothing held it back but the size of the waves.
func (p *planner) stuck(m *metroPlan, d int64) string {
	long := func(ss []span) bool {
		for _, x := range ss {
			if min(x.b, p.end)-max(x.a, p.start) >= d {
				return true
			}
		}
		return false
	}
	switch {
	case !long(m.windows):
		return "no window long enough"
	case !long(m.open):
		return "blackout"
	}
	best, n := "growth", 0
	for _, kind := range slices.Sorted(maps.Keys(p.held[m.id])) {
		if c := p.held[m.id][kind]; c > n {
			best, n = kind, c
		}
	}
	return best
}

func (p *planner) metroInfo(plan *Plan) []MetroInfo {
	sched := make([]int, len(p.metros))
	for _, w := range plan.Waves {
		for _, wm := range w.Metros {
			for _, m := range p.metros {
				if m.name == wm.Metro {
					sched[m.id] += wm.Servers
					break
				}
			}
		}
	}
	var out []MetroInfo
	for _, m := range p.metros {
		if len(m.cands) == 0 {
			continue
		}
		out = append(out, MetroInfo{
			Metro:        m.name,
			Region:       p.names[lvRegion][m.region],
			Timezone:     m.tz,
			InService:    int(p.inService[lvMetro][m.id]),
			Targets:      len(m.cands),
			Scheduled:    sched[m.id],
			CapacityGbps: m.capacity,
			TrafficGbps:  m.traffic,
		})
	}
	slices.SortFunc(out, func(a, b MetroInfo) int { return strings.Compare(a.Metro, b.Metro) })
	return out
}
