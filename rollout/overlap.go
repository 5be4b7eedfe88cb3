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
	mask  []uint64      // per metro: the sets holding it
	noFps bool
	buf   []spreadChoice // spreadEach's scratch
	gmask []uint64       // fits' scratch, per group
}

// spreadChoice is a footprint of a group and what it is worth.
type spreadChoice struct {
	sets uint64
	w    int
	fp   int32 // index in the group's footprints
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

// spreadEach finds, for each q from qmin to qmax (at most 4), a heavy set
// S of metros such that no wave may hold more than q of them; with
// weights w, each gives the bound sum(w over S) / q. It returns nothing
// when it does not apply: under metros_per_region above 1, or with more
// than 64 overlap sets.
//
// Why it bounds the waves: a metro m of S is in at least w[m] waves, so
// the waves hold members of S at least sum(w) times; one wave holds
// metros of one overlap set only, at most one of each group, so at most
// q members of S. Hence waves * q >= sum(w).
//
// The search is exact within budget steps per q (any S found is valid,
// so stopping early only loosens the bound); prev[k], when given, is the
// S found before, for other weights, for q = qmin+k, and the search for
// that q starts from it. With one metro per group, S takes a group's
// metros or not; under one metro per region, what counts of a region is
// its footprint, the overlap sets in which S has a member of it, and the
// region's best choice for a footprint is every metro whose sets lie
// inside it. A branch and bound picks one footprint per group so that no
// set lies in more than q footprints.
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
		for i, fp := range fps {
			v := 0
			for _, m := range fp.members {
				v += w[m]
			}
			if v > 0 {
				buf = append(buf, spreadChoice{fp.sets, v, int32(i)})
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
			return cmp.Compare(a.sets, b.sets)
		})
		// Drop a footprint when a smaller one is worth as much.
		kept := cs[:0]
	next:
		for _, c := range cs {
			for _, d := range kept {
				if d.sets&^c.sets == 0 {
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
	var layer0 [4]uint64
	pick := make([]int, len(groups)) // per group: its choice, -1 for none
	bestPick := make([]int, len(groups))
	var out []spreadSet
	for qq := qmin; qq <= min(qmax, len(layer0)); qq++ {
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
		layer := layer0 // layer[k] holds the sets in which more than k footprints lie
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
			for ci, c := range choices[groups[i]] {
				if steps--; steps < 0 || cur+c.w+rest[i+1] <= best {
					return
				}
				if c.sets&layer[qq-1] != 0 {
					continue
				}
				saved := layer
				for k := qq - 1; k > 0; k-- {
					layer[k] |= layer[k-1] & c.sets
				}
				layer[0] |= c.sets
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
				fp := o.fps[gid[ch]][choices[ch][bestPick[i]].fp]
				for _, m := range fp.members {
					if w[m] > 0 {
						r.member = append(r.member, m)
					}
				}
			}
		case prevFits:
			r.sum, r.member = prevSum, slices.Clone(pv)
		}
		out = append(out, r)
	}
	return out
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

// footprint is a set of overlap sets (a bit each) and the metros of one
// group whose sets all lie in it.
type footprint struct {
	sets    uint64
	members []int
}

// footprints computes, once, every group's footprints: the unions of the
// sets of its metros. It reports false when spread does not apply.
func (o *overlap) footprints() bool {
	if o.fps != nil || o.noFps {
		return !o.noFps
	}
	if len(o.sets) > 64 || slices.ContainsFunc(o.gcap, func(c int) bool { return c > 1 }) {
		o.noFps = true
		return false
	}
	mask := make([]uint64, o.n)
	for s, set := range o.sets {
		for _, m := range set {
			mask[m] |= 1 << s
		}
	}
	byGroup := make([][]int, len(o.gcap))
	for m := range o.n {
		if mask[m] != 0 {
			byGroup[o.group[m]] = append(byGroup[o.group[m]], m)
		}
	}
	o.fps = make([][]footprint, len(o.gcap))
	for g, ms := range byGroup {
		seen := map[uint64]bool{}
		add := func(f uint64) {
			if seen[f] {
				return
			}
			seen[f] = true
			fp := footprint{sets: f}
			for _, m := range ms {
				if mask[m]&^f == 0 {
					fp.members = append(fp.members, m)
				}
			}
			o.fps[g] = append(o.fps[g], fp)
		}
		if len(ms) <= 10 {
			for sub := 1; sub < 1<<len(ms); sub++ {
				var f uint64
				for i, m := range ms {
					if sub&(1<<i) != 0 {
						f |= mask[m]
					}
				}
				add(f)
			}
		} else {
			var all uint64
			for _, m := range ms {
				add(mask[m])
				all |= mask[m]
			}
			add(all)
		}
	}
	o.mask = mask
	return true
}

// fits reports whether no overlap set holds members of more than q
// groups among the metros ms.
func (o *overlap) fits(ms []int, q int) bool {
	if o.gmask == nil {
		o.gmask = make([]uint64, len(o.gcap))
	}
	gm := o.gmask
	clear(gm)
	for _, m := range ms {
		gm[o.group[m]] |= o.mask[m]
	}
	var layer [5]uint64
	for _, f := range gm {
		for k := min(q, 4); k > 0; k-- {
			layer[k] |= layer[k-1] & f
		}
		layer[0] |= f
	}
	return q >= 5 || layer[q] == 0
}
