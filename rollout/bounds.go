package rollout

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
)

// waveSeq is the most servers each wave may hold by the growth policy and
// the global cap alone: prefix, then tail forever.
type waveSeq struct {
	prefix []int
	tail   int
}

func (p *planner) waveSeq(total int) waveSeq {
	prefix, tail := p.spec.Growth.sizes(total)
	var s waveSeq
	if p.spec.Canary.Count > 0 {
		s.prefix = append(s.prefix, min(p.spec.Canary.Count, p.global))
	}
	for _, v := range prefix {
		s.prefix = append(s.prefix, min(v, p.global))
	}
	s.tail = min(tail, p.global)
	return s
}

// waves returns the fewest waves that can hold n servers of a domain
// whose per-wave budget is b.
func (s waveSeq) waves(n, b int) int {
	sum := 0
	for k, v := range s.prefix {
		if sum >= n {
			return k
		}
		sum += min(v, b)
	}
	if sum >= n {
		return len(s.prefix)
	}
	per := min(s.tail, b)
	return len(s.prefix) + (n-sum+per-1)/per
}

func (s waveSeq) max() int {
	m := s.tail
	for _, v := range s.prefix {
		m = max(m, v)
	}
	return m
}

// bounds computes lower bounds on the plan's waves and duration from the
// constraints alone: the growth ramp and global cap; every domain's
// budget; metros that can never share a wave (one metro per region, or
// windows that never overlap for a wave's length); metros of which no
// wave can hold more than q, counting a region's metros up to
// metros_per_region (see overlap.spreadEach); and per
// metro, the time its windows need to hold its waves.
func (p *planner) bounds(plan *Plan) {
	b := &plan.Bounds
	if len(plan.Waves) == 0 {
		b.WaveRatio, b.DurationRatio = 1, 1
		return
	}
	seq := p.waveSeq(plan.Total)
	b.MinWaves, b.MinWavesBy = seq.waves(plan.Total, unlimited), "growth"

	var per [numLevels][]int
	for lv := range per {
		per[lv] = make([]int, len(p.names[lv]))
	}
	for ti := range p.tg {
		if p.done[ti] {
			for lv, d := range p.tg[ti].dom {
				per[lv][d]++
			}
		}
	}
	for lv := range per {
		for d, n := range per[lv] {
			if n == 0 {
				continue
			}
			// The domain's share of every wave up to the K-th must add
			// up to its servers.
			k := seq.waves(n, int(p.budget[lv][d]))
			if k > b.MinWaves {
				b.MinWaves, b.MinWavesBy = k, "budget:"+levelNames[lv]+":"+p.names[lv][d]
			}
		}
	}

	// Metros that never share a wave: each needs its own waves.
	dmin := p.dmin()
	var ms []*metroPlan
	weight := make([]int, len(p.metros))
	// last and step are, over the domains that give a metro its weight
	// (itself, a site or a cluster), the most servers their last wave
	// holds and the largest per-wave cap; see rampBound.
	last := make([]int, len(p.metros))
	step := make([]int, len(p.metros))
	need := func(m, n, c int) {
		w := ceilDiv(n, c)
		r := n - (w-1)*c
		switch {
		case w > weight[m]:
			weight[m], last[m], step[m] = w, r, c
		case w == weight[m]:
			last[m], step[m] = max(last[m], r), max(step[m], c)
		}
	}
	for _, m := range p.metros {
		if n := per[lvMetro][m.id]; n > 0 {
			ms = append(ms, m)
			need(int(m.id), n, min(m.per, seq.max()))
		}
	}
	// A metro is in every wave one of its sites or clusters is in, so in
	// at least as many waves as any of them needs.
	for _, lv := range []int{lvSite, lvCluster} {
		for d, n := range per[lv] {
			if n == 0 {
				continue
			}
			m := d
			for l := lv; l > lvMetro; l-- {
				m = int(p.parent[l][m])
			}
			need(m, n, min(int(p.budget[lv][d]), seq.max()))
		}
	}
	slices.SortFunc(ms, func(a, b *metroPlan) int {
		if c := cmp.Compare(weight[b.id], weight[a.id]); c != 0 {
			return c
		}
		return strings.Compare(a.name, b.name)
	})
	mpr := p.spec.Budgets.MetrosPerRegion
	conflict := make([][]bool, len(ms))
	for i := range ms {
		conflict[i] = make([]bool, len(ms))
		for j := range i {
			c := mpr == 1 && ms[i].region == ms[j].region || !coOpen(ms[i].open, ms[j].open, dmin)
			conflict[i][j], conflict[j][i] = c, c
		}
	}
	w := make([]int, len(ms))
	for i, m := range ms {
		w[i] = weight[m.id]
	}
	if sum, clique := maxClique(conflict, w); len(clique) > 1 {
		// One more group of metros outside the clique that never share a
		// wave among themselves (one metro, or a region's metros under one
		// metro per region) can share waves only with the clique members
		// one of them may run with; what the group needs beyond those
		// members' waves are waves of its own. Raising a member's waves
		// adds to the clique's count at least what it takes off the
		// group's, so the clique's minimum gives the bound. (Counting
		// several groups is not safe: one clique wave may serve many.)
		extra, by := 0, ""
		excess := func(group []int) int {
			e := 0
			for _, m := range group {
				e += w[m]
			}
			for _, c := range clique {
				for _, m := range group {
					if !conflict[m][c] {
						e -= w[c]
						break
					}
				}
			}
			return e
		}
		var groups [][]int
		byRegion := map[int32][]int{}
		for m := range ms {
			if slices.Contains(clique, m) {
				continue
			}
			groups = append(groups, []int{m})
			if mpr == 1 {
				byRegion[ms[m].region] = append(byRegion[ms[m].region], m)
			}
		}
		for _, r := range slices.Sorted(maps.Keys(byRegion)) {
			if g := byRegion[r]; len(g) > 1 {
				groups = append(groups, g)
			}
		}
		for _, g := range groups {
			if e := excess(g); e > extra {
				extra = e
				if len(g) == 1 {
					by = ms[g[0]].name
				} else {
					by = "region:" + p.names[lvRegion][ms[g[0]].region]
				}
			}
		}
		cliqueMetros := make([]*metroPlan, len(clique))
		for i, c := range clique {
			cliqueMetros[i] = ms[c]
		}
		ramp := p.rampBound(seq, plan.Total, cliqueMetros, weight, last, step, 1)
		if ramp > sum+extra && ramp > b.MinWaves {
			sum, extra = ramp, 0
		}
		if sum+extra > b.MinWaves {
			names := make([]string, len(clique))
			for i, c := range clique {
				names[i] = ms[c].name
			}
			slices.Sort(names)
			b.MinWaves, b.MinWavesBy = sum+extra, "disjoint:"+strings.Join(names, "+")
			if extra > 0 {
				b.MinWavesBy += ",then:" + by
			}
		}
	}
	// Metros of which no wave may hold more than q: the waves must hold
	// them sum(weight) times, at most q at a time (see spreadEach). Where
	// windows go round the clock, the disjoint metros above are often
	// few, while a ring of regions each overlapping its neighbours only
	// forces waves all the same.
	if len(ms) > 1 {
		o, oms, ow := p.ov, p.ovMetros, make([]int, len(p.ovMetros))
		if o == nil {
			o, oms, ow = p.newOverlap(ms, dmin), ms, w
		} else {
			// The plan's overlap, of the metros it started with.
			for i, m := range oms {
				ow[i] = weight[m.id]
			}
		}
		if sum, q, member := o.spread(ow, 2, p.spreadQmax(), 20_000); q > 1 {
			set := make([]*metroPlan, len(member))
			for i, m := range member {
				set[i] = oms[m]
			}
			if k := max(ceilDiv(sum, q), p.rampBound(seq, plan.Total, set, weight, last, step, q)); k > b.MinWaves {
				names := make([]string, len(set))
				for i, m := range set {
					names[i] = m.name
				}
				slices.Sort(names)
				b.MinWaves, b.MinWavesBy = k, fmt.Sprintf("overlap:%d:%s", q, strings.Join(names, "+"))
			}
		}
	}
	if mpr > 1 {
		regionSum := make([]int, len(p.names[lvRegion]))
		for _, m := range ms {
			regionSum[m.region] += weight[m.id]
		}
		for r, s := range regionSum {
			if k := ceilDiv(s, mpr); k > b.MinWaves {
				b.MinWaves, b.MinWavesBy = k, "exclusion:region:"+p.names[lvRegion][r]
			}
		}
	}

	// Duration: the waves run one after another from the first instant
	// any metro could start one, and each metro needs room in its windows
	// for its own waves.
	first := int64(-1)
	var minDur int64
	for _, m := range ms {
		k := weight[m.id] // waves the metro must be in, wherever they fall
		cum := 0
		for _, s := range m.open {
			a := max(s.a, p.start)
			n := int((s.b - a) / dmin)
			if n <= 0 {
				continue
			}
			if first < 0 || a < first {
				first = a
			}
			if cum+n >= k {
				minDur = max(minDur, a+int64(k-cum)*dmin-p.start)
				break
			}
			cum += n
		}
	}
	if first >= 0 {
		seqDur := int64(b.MinWaves) * p.dGrowth
		if p.spec.Canary.Count > 0 {
			seqDur = p.dCanary + int64(b.MinWaves-1)*p.dGrowth
		}
		minDur = max(minDur, first-p.start+seqDur)
	}
	b.MinDuration = Duration(time.Duration(minDur) * time.Second)
	b.WaveRatio = float64(len(plan.Waves)) / float64(max(b.MinWaves, 1))
	b.DurationRatio = 1
	if minDur > 0 {
		b.DurationRatio = plan.End.Sub(plan.Start).Seconds() / float64(minDur)
	}
}

// rampBound bounds the waves of a plan in which no wave holds more than q
// of the metros set, as the disjoint and overlap bounds do, but counting
// the growth ramp: the canary and first growth waves may be too small to
// do a metro of set a whole wave's worth. Let Small be the first waves
// whose size is below every per-wave cap in set (they are waves of every
// plan when the targets outnumber the whole ramp), T their total size.
// A metro's weight w is the waves its metro, a site or a cluster needs at
// its per-wave cap c; the other waves hold at most q metros of set, so a
// metro needs at least w of them, less what the small waves do of it:
// one wave fewer for last servers, where last is what the domain's last
// wave holds, n - (w-1)c, then one more for every c more (step); with
// several domains giving the weight, each of them must be spared a wave,
// so last and step are the largest over them. At most R waves are saved, the most of those
// costs that fit in T, and no more than q per small wave; so waves >=
// |Small| + (sum(w) - R) / q. It returns 0 when there is no ramp to count.
func (p *planner) rampBound(seq waveSeq, total int, set []*metroPlan, weight, last, step []int, q int) int {
	if len(set) == 0 {
		return 0
	}
	ramp, cmin := 0, unlimited
	for _, v := range seq.prefix {
		ramp += v
	}
	if total <= ramp {
		return 0 // a plan may end within the ramp
	}
	for _, m := range set {
		cmin = min(cmin, step[m.id])
	}
	small, T := 0, 0
	for _, v := range seq.prefix {
		if v < cmin {
			small++
			T += v
		}
	}
	if small == 0 {
		return 0
	}
	var costs []int
	W := 0
	for _, m := range set {
		W += weight[m.id]
		costs = append(costs, last[m.id])
		for k := 0; k < T/step[m.id] && k < small; k++ {
			costs = append(costs, step[m.id])
		}
	}
	slices.Sort(costs)
	saved, spent := 0, 0
	for _, c := range costs {
		if spent+c > T || saved == small*q {
			break
		}
		spent += c
		saved++
	}
	return small + ceilDiv(max(W-saved, 0), q)
}

// spreadQmax is the largest q worth a set S no wave can hold more than q
// of: 3 with one metro of a group per wave, maxQ when a region may put
// more metros in a wave.
func (p *planner) spreadQmax() int {
	if p.spec.Budgets.MetrosPerRegion > 1 {
		return maxQ
	}
	return 3
}

// perWave returns the most servers of m that one wave can take: its
// metro budget and, under a capacity constraint, as many of its smallest
// targets as the most spare capacity at any hour of the day leaves room
// for (a wave's spare capacity is the capacity less the highest forecast
// over its deploy, so never more than at the quietest hour).
func (p *planner) perWave(m *metroPlan) int {
	n := int(p.budget[lvMetro][m.id])
	if m.hasCap && m.minCap > 0 && !math.IsInf(m.minCap, 0) {
		spare := m.capacity - slices.Min(m.hourly[:])*m.capK
		n = min(n, max(1, int(math.Floor((spare+1e-9)/m.minCap))))
	}
	return n
}

// maxClique returns a heavy clique of the conflict graph, vertices sorted
// by weight, heaviest first: exact by branch and bound when the search
// fits its step budget, else the heaviest found (any clique is a valid
// lower bound, so stopping early only loosens it). It is deterministic.
func maxClique(conflict [][]bool, w []int) (int, []int) {
	bestSum, best := 0, []int(nil)
	steps := 200_000
	var cur []int
	var expand func(cands []int, sum int)
	expand = func(cands []int, sum int) {
		if sum > bestSum {
			bestSum, best = sum, slices.Clone(cur)
		}
		rest := 0
		for _, v := range cands {
			rest += w[v]
		}
		for i, v := range cands {
			if steps--; steps < 0 || sum+rest <= bestSum {
				return
			}
			rest -= w[v]
			var next []int
			for _, u := range cands[i+1:] {
				if conflict[v][u] {
					next = append(next, u)
				}
			}
			cur = append(cur, v)
			expand(next, sum+w[v])
			cur = cur[:len(cur)-1]
		}
	}
	all := make([]int, len(w))
	for i := range all {
		all[i] = i
	}
	expand(all, 0)
	return bestSum, best
}

func ceilDiv(a, b int) int {
	if b <= 0 {
		return 0
	}
	return (a + b - 1) / b
}

// coOpen reports whether two metros' open spans share a stretch of at
// least d seconds.
func coOpen(x, y []span, d int64) bool {
	i, j := 0, 0
	for i < len(x) && j < len(y) {
		a, b := max(x[i].a, y[j].a), min(x[i].b, y[j].b)
		if b-a >= d {
			return true
		}
		if x[i].b < y[j].b {
			i++
		} else {
			j++
		}
	}
	return false
}

// String summarises the bounds.
func (b Bounds) String() string {
	return fmt.Sprintf("min %d waves (%s), min %v; ratio %.3f waves, %.3f time",
		b.MinWaves, b.MinWavesBy, time.Duration(b.MinDuration), b.WaveRatio, b.DurationRatio)
}
