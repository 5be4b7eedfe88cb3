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
		key := bitsKey(cur)
		if key == "" || seen[key] {
			continue
		}
		seen[key] = true
		found = append(found, slices.Clone(cur))
	}
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
// than q of them, for q from 2 to qmax (q = 1 is the clique bound's), and
// returns the one with the largest sum(w over S) / q; member lists S's
// metros. It returns q = 0 when it does not apply: under metros_per_region
// above 1, or with more than 64 overlap sets.
//
// Why it bounds the waves: a metro m of S is in at least w[m] waves, so
// the waves hold members of S at least sum(w) times; one wave holds
// metros of one overlap set only, at most one of each group, so at most
// q members of S. Hence waves * q >= sum(w).
//
// The search is exact within a step budget (any S found is valid, so
// stopping early only loosens the bound). With one metro per group, S
// takes a group's metros or not; under one metro per region, what counts
// of a region is its footprint, the overlap sets in which S has a member
// of it, and the region's best choice for a footprint is every metro whose
// sets lie inside it. A branch and bound picks one footprint per group so
// that no set lies in more than q footprints.
func (o *overlap) spread(w []int, qmax int) (sum, q int, member []int) {
	if len(o.sets) > 64 || slices.ContainsFunc(o.gcap, func(c int) bool { return c > 1 }) {
		return 0, 0, nil
	}
	mask := make([]uint64, o.n) // the overlap sets holding each metro
	for s, set := range o.sets {
		for _, m := range set {
			mask[m] |= 1 << s
		}
	}
	type choice struct {
		sets uint64
		w    int
	}
	ng := len(o.gcap)
	byGroup := make([][]int, ng)
	for m := range o.n {
		if w[m] > 0 && mask[m] != 0 {
			byGroup[o.group[m]] = append(byGroup[o.group[m]], m)
		}
	}
	var groups []int
	choices := make([][]choice, ng)
	for g, ms := range byGroup {
		if len(ms) == 0 {
			continue
		}
		slices.SortStableFunc(ms, func(a, b int) int { return cmp.Compare(w[b], w[a]) })
		k := min(len(ms), 10)
		val := map[uint64]int{}
		for sub := 1; sub < 1<<k; sub++ {
			var f uint64
			for i := range k {
				if sub&(1<<i) != 0 {
					f |= mask[ms[i]]
				}
			}
			if _, ok := val[f]; ok {
				continue
			}
			v := 0
			for _, m := range ms {
				if mask[m]&^f == 0 {
					v += w[m]
				}
			}
			val[f] = v
		}
		var cs []choice
		for f, v := range val {
			cs = append(cs, choice{f, v})
		}
		slices.SortFunc(cs, func(a, b choice) int {
			if c := cmp.Compare(b.w, a.w); c != 0 {
				return c
			}
			return cmp.Compare(a.sets, b.sets)
		})
		// Drop a footprint when a smaller one is worth as much.
		var kept []choice
	next:
		for _, c := range cs {
			for _, d := range kept {
				if d.sets&^c.sets == 0 {
					continue next
				}
			}
			kept = append(kept, c)
		}
		choices[g] = kept
		groups = append(groups, g)
	}
	slices.SortStableFunc(groups, func(a, b int) int { return cmp.Compare(choices[b][0].w, choices[a][0].w) })
	rest := make([]int, len(groups)+1) // the most the groups from i on may add
	for i := len(groups) - 1; i >= 0; i-- {
		rest[i] = rest[i+1] + choices[groups[i]][0].w
	}

	var layer0 [4]uint64
	pick := make([]int, len(groups)) // per group: its choice, -1 for none
	bestPick := make([]int, len(groups))
	bestNum, bestQ := 0, 1
	for qq := 2; qq <= min(qmax, len(layer0)); qq++ {
		if rest[0]*bestQ <= bestNum*qq {
			break // even all of the metros would not beat the best so far
		}
		best := -1
		steps := 20_000
		// layer[k] holds the sets in which more than k footprints lie.
		layer := layer0
		var bb func(i, cur int)
		bb = func(i, cur int) {
			if cur > best {
				best = cur
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
		if best*bestQ > bestNum*qq {
			bestNum, bestQ, member = best, qq, member[:0]
			for i, g := range groups {
				if bestPick[i] < 0 {
					continue
				}
				f := choices[g][bestPick[i]].sets
				for _, m := range byGroup[g] {
					if mask[m]&^f == 0 {
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
