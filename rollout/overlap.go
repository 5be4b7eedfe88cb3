package rollout

import (
	"cmp"
	"math/bits"
	"slices"
	"strings"
)

// overlap describes which metros may share a wave: the sets of metros
// that can all start a wave at one instant, and the exclusion groups
// that cap how many metros of a set one wave may hold.
//
// A metro may start a wave of length d at t only when an open span of it
// holds [t, t+d]: t lies in [a, b-d] for one of its open spans [a, b).
// Sweeping those intervals over the horizon gives, between consecutive
// interval ends, the set of metros that may start a wave there; a wave
// holds metros of one such set only. Sets that are subsets of another
// add nothing and are dropped.
type overlap struct {
	n     int       // metros
	group []int32   // per metro: its exclusion group
	gcap  []int     // per group: the most metros of it one wave may hold
	sets  [][]int32 // maximal sets of metros that may share a wave, sorted
	// distinct counts the sets found before keeping the maximal ones: 1
	// when every instant lets the same metros start a wave.
	distinct int

	// For spreadEach, computed on first use.
	fps   [][]footprint // per group
	gms   [][]int       // per group: its metros in some set
	dp    []bool        // per group: weigh every subset at once (see subsetWeights)
	mask  []uint64      // per metro: the sets holding it
	noFps bool
	buf   []spreadChoice // spreadEach's scratch
	wsum  []int          // spreadEach's scratch: weights of a group's subsets
	glv   []levels       // fits' scratch, per group
}

// maxQ is the largest q spreadEach looks for.
const maxQ = 4

// levels counts, per overlap set (a bit each), how many metros of a
// choice lie in it: l[k] holds the sets in which more than k do.
type levels [maxQ + 1]uint64

// add counts one more metro in each set of u, counting no higher than
// top (at most maxQ+1).
func (l *levels) add(u uint64, top int) {
	for k := top - 1; k > 0; k-- {
		l[k] |= l[k-1] & u
	}
	l[0] |= u
}

// spreadChoice is a footprint of a group and what it is worth.
type spreadChoice struct {
	sets *levels // the footprint's
	w    int
	fp   int32 // index in the group's footprints
	sub  int32 // index of its heaviest subset
}

// compareLevels orders levels by their sets, level 0 first.
func compareLevels(a, b *levels) int {
	for k := range a {
		if c := cmp.Compare(a[k], b[k]); c != 0 {
			return c
		}
	}
	return 0
}

// newOverlap computes the sets over the metros ms for waves of length d.
// Under metros_per_region k > 0 a region is a group of capacity k, else
// every metro is a group of its own with capacity 1.
func (p *planner) newOverlap(ms []*metroPlan, d int64) *overlap {
	o := &overlap{n: len(ms), group: make([]int32, len(ms))}
	mpr := p.spec.Budgets.MetrosPerRegion
	if mpr > 0 {
		ids := map[int32]int32{}
		for i, m := range ms {
			g, ok := ids[m.region]
			if !ok {
				g = int32(len(o.gcap))
				ids[m.region] = g
				o.gcap = append(o.gcap, mpr)
			}
			o.group[i] = g
		}
	} else {
		for i := range ms {
			o.group[i] = int32(i)
			o.gcap = append(o.gcap, 1)
		}
	}

	type event struct {
		t     int64
		metro int32
		in    bool
	}
	var ev []event
	for i, m := range ms {
		for _, s := range m.open {
			if s.b-s.a >= d {
				ev = append(ev, event{s.a, int32(i), true}, event{s.b - d + 1, int32(i), false})
			}
		}
	}
	slices.SortFunc(ev, func(x, y event) int { return cmp.Compare(x.t, y.t) })
	words := (len(ms) + 63) / 64
	cur := make([]uint64, words)
	count := make([]int, len(ms)) // a metro's spans never overlap, but be safe
	var found [][]uint64
	seen := map[string]bool{}
	seen1 := map[uint64]bool{}
	for i := 0; i < len(ev); {
		t := ev[i].t
		for ; i < len(ev) && ev[i].t == t; i++ {
			e := ev[i]
			if e.in {
				count[e.metro]++
			} else {
				count[e.metro]--
			}
			if count[e.metro] > 0 {
				cur[e.metro/64] |= 1 << (e.metro % 64)
			} else {
				cur[e.metro/64] &^= 1 << (e.metro % 64)
			}
		}
		if words == 1 {
			// The common case, without building a key.
			if cur[0] == 0 || seen1[cur[0]] {
				continue
			}
			seen1[cur[0]] = true
		} else {
			key := bitsKey(cur)
			if key == "" || seen[key] {
				continue
			}
			seen[key] = true
		}
		found = append(found, slices.Clone(cur))
	}
	o.distinct = len(found)
	// Keep the maximal sets, larger first.
	pop := func(b []uint64) int {
		n := 0
		for _, w := range b {
			n += bits.OnesCount64(w)
		}
		return n
	}
	slices.SortStableFunc(found, func(x, y []uint64) int { return cmp.Compare(pop(y), pop(x)) })
	var kept [][]uint64
next:
	for _, b := range found {
		for _, k := range kept {
			sub := true
			for w := range b {
				if b[w]&^k[w] != 0 {
					sub = false
					break
				}
			}
			if sub {
				continue next
			}
		}
		kept = append(kept, b)
		var set []int32
		for w, x := range b {
			for ; x != 0; x &= x - 1 {
				set = append(set, int32(w*64+bits.TrailingZeros64(x)))
			}
		}
		o.sets = append(o.sets, set)
	}
	return o
}

// bitsKey returns a map key for a bit set, "" when it is empty.
func bitsKey(b []uint64) string {
	empty := true
	for _, w := range b {
		if w != 0 {
			empty = false
			break
		}
	}
	if empty {
		return ""
	}
	var sb strings.Builder
	for _, w := range b {
		for k := range 8 {
			sb.WriteByte(byte(w >> (8 * k)))
		}
	}
	return sb.String()
}

// spreadEach finds, for each q from qmin to qmax (at most maxQ), a heavy
// set S of metros such that no wave may hold more than q of them; with
// weights w, each gives the bound sum(w over S) / q. It returns nothing
// when it does not apply: with more than 64 overlap sets.
//
// Why it bounds the waves: a metro m of S is in at least w[m] waves, so
// the waves hold members of S at least sum(w) times. One wave holds
// metros of one overlap set X only, and at most c of each group of
// capacity c (one metro per region, or metros_per_region of it), so at
// most sum over groups g of min(c_g, |S in g and X|) members of S; S is
// chosen so that this is at most q for every X. Hence waves * q >=
// sum(w).
//
// The search is exact within budget steps per q (any S found is valid,
// so stopping early only loosens the bound); prev[k], when given, is the
// S found before, for other weights, for q = qmin+k, and the search for
// that q starts from it. What counts of a group's part of S is its
// footprint, min(c, its members in X) for every set X; the group's best
// choice for a footprint is the heaviest of its subsets with that
// footprint (with capacity 1, every metro whose sets lie inside the
// footprint's). A branch and bound picks one footprint per group so that
// the footprints add up to at most q in every set.
//
// The sets are computed for the shortest wave (a longer one may start at
// fewer instants), from the metros' open time (capacity only takes more
// instants away), so every wave of a valid plan holds metros of one set.
func (o *overlap) spreadEach(w []int, qmin, qmax int, prev [][]int, budget int) []spreadSet {
	if !o.footprints() {
		return nil
	}
	var gid []int                // the groups that are worth something
	var choices [][]spreadChoice // per entry of gid
	buf := o.buf[:0]             // choices' backing array, reused across calls
	for g, fps := range o.fps {
		start := len(buf)
		wsum := o.subsetWeights(g, w)
		for i := range fps {
			v, sub := fps[i].value(o.gms[g], w, wsum)
			if v > 0 {
				buf = append(buf, spreadChoice{&fps[i].sets, v, int32(i), int32(sub)})
			}
		}
		cs := buf[start:]
		if len(cs) == 0 {
			continue
		}
		slices.SortFunc(cs, func(a, b spreadChoice) int {
			if c := cmp.Compare(b.w, a.w); c != 0 {
				return c
			}
			return compareLevels(a.sets, b.sets)
		})
		// Drop a footprint when a smaller one is worth as much.
		kept := cs[:0]
	next:
		for _, c := range cs {
			for _, d := range kept {
				if d.sets.within(c.sets) {
					continue next
				}
			}
			kept = append(kept, c)
		}
		buf = buf[:start+len(kept)]
		gid = append(gid, g)
		choices = append(choices, kept)
	}
	o.buf = buf
	if len(gid) == 0 {
		return nil
	}
	groups := make([]int, len(gid)) // indices into gid, best first
	for i := range groups {
		groups[i] = i
	}
	slices.SortStableFunc(groups, func(a, b int) int { return cmp.Compare(choices[b][0].w, choices[a][0].w) })
	rest := make([]int, len(groups)+1) // the most the groups from i on may add
	for i := len(groups) - 1; i >= 0; i-- {
		rest[i] = rest[i+1] + choices[groups[i]][0].w
	}
	pick := make([]int, len(groups)) // per group: its choice, -1 for none
	bestPick := make([]int, len(groups))
	var out []spreadSet
	for qq := qmin; qq <= min(qmax, maxQ); qq++ {
		var pv []int
		if k := qq - qmin; k < len(prev) {
			pv = prev[k]
		}
		prevSum := 0
		for _, m := range pv {
			prevSum += w[m]
		}
		best := -1
		prevFits := pv != nil && o.fits(pv, qq)
		if prevFits {
			best = prevSum - 1 // only better than prev is worth finding
		}
		found := false
		steps := budget
		var layer levels // layer[k] holds the sets in which more than k members of S lie
		var bb func(i, cur int)
		bb = func(i, cur int) {
			if cur > best {
				best, found = cur, true
				copy(bestPick, pick)
				for j := i; j < len(groups); j++ {
					bestPick[j] = -1
				}
			}
			if i == len(groups) || cur+rest[i] <= best {
				return
			}
			for ci := range choices[groups[i]] {
				c := &choices[groups[i]][ci]
				if steps--; steps < 0 || cur+c.w+rest[i+1] <= best {
					return
				}
				saved := layer
				if c.sets[1] == 0 {
					// One metro per set at most, the common case.
					if c.sets[0]&layer[qq-1] != 0 {
						continue
					}
					layer.add(c.sets[0], qq)
				} else {
					for _, u := range c.sets {
						if u == 0 {
							break
						}
						layer.add(u, qq+1)
					}
					if layer[qq] != 0 {
						layer = saved
						continue
					}
				}
				pick[i] = ci
				bb(i+1, cur+c.w)
				layer = saved
			}
			pick[i] = -1
			bb(i+1, cur)
		}
		bb(0, 0)
		r := spreadSet{q: qq}
		switch {
		case found:
			r.sum = best
			for i, ch := range groups {
				if bestPick[i] < 0 {
					continue
				}
				c := choices[ch][bestPick[i]]
				g := gid[ch]
				r.member = o.fps[g][c.fp].appendMembers(r.member, o.gms[g], int(c.sub), w)
			}
		case prevFits:
			r.sum, r.member = prevSum, slices.Clone(pv)
		}
		out = append(out, r)
	}
	return out
}

// within reports whether every level of l lies within the same level of
// m: a choice with footprint l fits wherever one with m does.
func (l *levels) within(m *levels) bool {
	for k := range l {
		if l[k]&^m[k] != 0 {
			return false
		}
	}
	return true
}

// spreadSet is a set S of metros no wave can hold more than q of, and the
// sum of their weights.
type spreadSet struct {
	q, sum int
	member []int
}

// spread returns the set of spreadEach with the largest sum / q; ties go
// to the larger q, whose waves are fuller. It returns q = 0 when there is
// none.
func (o *overlap) spread(w []int, qmin, qmax int, budget int) (sum, q int, member []int) {
	sum, q = 0, 1
	for _, r := range o.spreadEach(w, qmin, qmax, nil, budget) {
		if r.sum > 0 && r.sum*q >= sum*r.q {
			sum, q, member = r.sum, r.q, r.member
		}
	}
	if member == nil {
		return 0, 0, nil
	}
	return sum, q, member
}

// maxEnum is the most metros of a group whose every subset footprints
// tries; of a larger group it tries each metro alone and all of them.
const maxEnum = 10

// footprint is how many metros of one group lie in each overlap set,
// capped at the group's capacity, and the subsets of the group's metros
// with that footprint: bit masks over the group's metros (gms) when it has
// at most maxEnum, else index lists in subs.
type footprint struct {
	sets  levels
	masks []uint16
	subs  [][]int
}

// subsetWeights returns the weight of each subset of the group's metros
// by bit mask, or nil when summing the footprints' subsets one by one is
// cheaper (or they are not bit masks).
func (o *overlap) subsetWeights(g int, w []int) []int {
	ms := o.gms[g]
	if !o.dp[g] {
		return nil
	}
	n := 1 << len(ms)
	if cap(o.wsum) < n {
		o.wsum = make([]int, 1<<maxEnum)
	}
	ws := o.wsum[:n]
	ws[0] = 0
	for sub := 1; sub < n; sub++ {
		low := bits.TrailingZeros(uint(sub))
		ws[sub] = ws[sub&(sub-1)] + w[ms[low]]
	}
	return ws
}

// value returns the weight of the footprint's heaviest subset, and which.
func (fp *footprint) value(ms []int, w, wsum []int) (int, int) {
	best, at := -1, 0
	if wsum != nil {
		for i, m := range fp.masks {
			if v := wsum[m]; v > best {
				best, at = v, i
			}
		}
		return best, at
	}
	for i, x := range fp.masks {
		v := 0
		for ; x != 0; x &= x - 1 {
			v += w[ms[bits.TrailingZeros16(x)]]
		}
		if v > best {
			best, at = v, i
		}
	}
	for i, sub := range fp.subs {
		v := 0
		for _, m := range sub {
			v += w[m]
		}
		if v > best {
			best, at = v, i
		}
	}
	return best, at
}

// appendMembers appends to dst the metros of weight above 0 of the
// footprint's subset sub.
func (fp *footprint) appendMembers(dst []int, ms []int, sub int, w []int) []int {
	if fp.subs != nil {
		for _, m := range fp.subs[sub] {
			if w[m] > 0 {
				dst = append(dst, m)
			}
		}
		return dst
	}
	for x := fp.masks[sub]; x != 0; x &= x - 1 {
		if m := ms[bits.TrailingZeros16(x)]; w[m] > 0 {
			dst = append(dst, m)
		}
	}
	return dst
}

// footprints computes, once, every group's footprints. It reports false
// when spread does not apply.
func (o *overlap) footprints() bool {
	if o.fps != nil || o.noFps {
		return !o.noFps
	}
	if len(o.sets) > 64 {
		o.noFps = true
		return false
	}
	mask := make([]uint64, o.n)
	for s, set := range o.sets {
		for _, m := range set {
			mask[m] |= 1 << s
		}
	}
	o.gms = make([][]int, len(o.gcap))
	for m := range o.n {
		if mask[m] != 0 {
			o.gms[o.group[m]] = append(o.gms[o.group[m]], m)
		}
	}
	o.fps = make([][]footprint, len(o.gcap))
	o.dp = make([]bool, len(o.gcap))
	for g, ms := range o.gms {
		top := min(o.gcap[g], maxQ+1)
		index := map[levels]int{}
		// add records the subset of ms by local indices idx; a subset
		// is taken with every metro whose sets are all full already,
		// which costs no more.
		add := func(idx []int) {
			var l levels
			in := make([]bool, len(ms))
			for _, i := range idx {
				l.add(mask[ms[i]], top)
				in[i] = true
			}
			for i, m := range ms {
				if mask[m]&^l[top-1] == 0 {
					in[i] = true
				}
			}
			k, ok := index[l]
			if !ok {
				k = len(o.fps[g])
				index[l] = k
				o.fps[g] = append(o.fps[g], footprint{sets: l})
			}
			fp := &o.fps[g][k]
			if len(ms) <= maxEnum {
				var x uint16
				for i, ok := range in {
					if ok {
						x |= 1 << i
					}
				}
				if !slices.Contains(fp.masks, x) {
					fp.masks = append(fp.masks, x)
				}
				return
			}
			var sub []int
			for i, ok := range in {
				if ok {
					sub = append(sub, ms[i])
				}
			}
			fp.subs = append(fp.subs, sub)
		}
		if len(ms) <= maxEnum {
			var idx []int
			for sub := 1; sub < 1<<len(ms); sub++ {
				idx = idx[:0]
				for i := range ms {
					if sub&(1<<i) != 0 {
						idx = append(idx, i)
					}
				}
				add(idx)
			}
		} else {
			all := make([]int, len(ms))
			for i := range ms {
				add([]int{i})
				all[i] = i
			}
			add(all)
		}
		if len(ms) <= maxEnum {
			cost := 0
			for _, fp := range o.fps[g] {
				for _, x := range fp.masks {
					cost += bits.OnesCount16(x)
				}
			}
			o.dp[g] = cost > 1<<len(ms)
		}
	}
	o.mask = mask
	return true
}

// fits reports whether no wave may hold more than q of the metros ms:
// in every overlap set, the groups' members of ms, each counted up to
// its group's capacity, number at most q.
func (o *overlap) fits(ms []int, q int) bool {
	if q > maxQ {
		return true
	}
	if o.glv == nil {
		o.glv = make([]levels, len(o.gcap))
	}
	gl := o.glv
	clear(gl)
	for _, m := range ms {
		g := o.group[m]
		gl[g].add(o.mask[m], min(o.gcap[g], maxQ+1))
	}
	var layer levels
	for g := range gl {
		for _, u := range gl[g] {
			if u == 0 {
				break
			}
			layer.add(u, q+1)
		}
	}
	return layer[q] == 0
}
