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

	// For spread, computed on first use.
	fps   [][]footprint // per group
	mask  []uint64      // per metro: the sets holding it
	noFps bool
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

// spread finds a heavy set S of metros such that no wave may hold more
// than q of them, for q from qmin to qmax (at most 4), and
// returns the one with the largest sum(w over S) / q; member lists S's
// metros. It returns q = 0 when it does not apply: under metros_per_region
// above 1, or with more than 64 overlap sets.
//
// Why it bounds the waves: a metro m of S is in at least w[m] waves, so
// the waves hold members of S at least sum(w) times; one wave holds
// metros of one overlap set only, at most one of each group, so at most
// q members of S. Hence waves * q >= sum(w).
//
// The search is exact within budget steps per q (any S found is valid,
// so stopping early only loosens the bound); prev, when not nil, is an S
// found before, for other weights, that the search starts from. With one metro per group, S
// takes a group's metros or not; under one metro per region, what counts
// of a region is its footprint, the overlap sets in which S has a member
// of it, and the region's best choice for a footprint is every metro whose
// sets lie inside it. A branch and bound picks one footprint per group so
// that no set lies in more than q footprints.
func (o *overlap) spread(w []int, qmin, qmax int, prev []int, budget int) (sum, q int, member []int) {
	if !o.footprints() {
		return 0, 0, nil
	}
	var gid []int                // the groups that are worth something
	var choices [][]spreadChoice // per entry of gid
	for g, fps := range o.fps {
		var cs []spreadChoice
		for i, fp := range fps {
			v := 0
			for _, m := range fp.members {
				v += w[m]
			}
			if v > 0 {
				cs = append(cs, spreadChoice{fp.sets, v, int32(i)})
			}
		}
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
		gid = append(gid, g)
		choices = append(choices, kept)
	}
	if len(gid) == 0 {
		return 0, 0, nil
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
	var prevSum int
	for _, m := range prev {
		prevSum += w[m]
	}

	var layer0 [4]uint64
	pick := make([]int, len(groups)) // per group: its choice, -1 for none
	bestPick := make([]int, len(groups))
	bestNum, bestQ := 0, 1
	for qq := qmin; qq <= min(qmax, len(layer0)); qq++ {
		if rest[0]*bestQ < bestNum*qq {
			break // even all of the metros would not beat the best so far
		}
		best := -1
		prevFits := prev != nil && o.fits(prev, qq)
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
		if !found && prevFits && prevSum > 0 {
			if prevSum*bestQ >= bestNum*qq {
				bestNum, bestQ, member = prevSum, qq, append(member[:0], prev...)
			}
			continue
		}
		if found && best*bestQ >= bestNum*qq { // ties go to the larger q, whose waves are fuller
			bestNum, bestQ, member = best, qq, member[:0]
			for i, ch := range groups {
				if bestPick[i] < 0 {
					continue
				}
				fp := o.fps[gid[ch]][choices[ch][bestPick[i]].fp]
				for _, m := range fp.members {
					if w[m] > 0 {
						member = append(member, m)
					}
				}
			}
			slices.Sort(member)
		}
	}
	if member == nil {
		return 0, 0, nil
	}
	return bestNum, bestQ, member
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
	gm := map[int32]uint64{}
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
