package rollout

import (
	"cmp"
	"slices"
	"time"
)

// focus steers the waves towards the metros that bound the number of
// waves. For q from 1 to 3 (to 4 when metros_per_region is above 1, a
// region then counting up to that many metros) it keeps a set S of
// metros of which no wave can hold more than q (see overlap.spreadEach),
// which need sum(waves of S) / q waves however they are placed: a plan
// meets such a bound only if each of its waves holds q metros of S
// (counting a region's up to its capacity). After every wave the sets are
// chosen again over the work left, and all of them steer the next, not
// only the one with the largest bound: which of several bounds ends up the
// largest depends on the waves still to come (on ten generated fleets the
// mean ratio to the bound went from 1.055 to 1.038 against steering by
// the sets within 8 waves of the largest, see BENCHMARKS.md). The wave is
// held back, up to the spec's pack time, to the first instant at which it
// serves them better than now (holds q metros of the S of more of them,
// from the largest bound down: serving the largest beats serving all the
// others), and a region's metros in them go before its others. The
// metros outside the sets ride along.
type focus struct {
	o       *overlap
	ms      []*metroPlan // o's metros
	idx     []int        // per metro id: its index in ms, or -1
	fams    []family     // the sets S over the work left, one per q
	crit    []int8       // per metro id: in how many of fams' sets
	prev    [][]int      // per q from 1: the last S, as indices in ms
	seen    []int        // per group, scratch
	w       []int        // per index in ms, scratch
	in      []bool       // per metro id, scratch
	per     []int        // per index in ms: the most servers a wave takes
	cands   []int64      // hold's scratch
	scratch []metroPick  // hold's scratch
	qmax    int          // the largest q of a set S
	// stale says S is to be chosen again.
	stale bool
}

// family is one set S: no wave can hold more than q of its metros.
type family struct {
	q     int
	bound int    // the waves its S needs: ceil(sum(waves of S) / q)
	in    []bool // per metro id
}

func (p *planner) newFocus(active []*metroPlan) *focus {
	if len(active) < 2 {
		return nil
	}
	f := &focus{
		ms: active, idx: make([]int, len(p.metros)), crit: make([]int8, len(p.metros)),
		in: make([]bool, len(p.metros)), per: make([]int, len(active)),
	}
	for i, m := range active {
		f.per[i] = min(m.per, p.tail)
	}
	for i := range f.idx {
		f.idx[i] = -1
	}
	for i, m := range active {
		f.idx[m.id] = i
	}
	f.o = p.newOverlap(active, p.dmin())
	p.ov, p.ovMetros = f.o, active
	if f.o.distinct < 2 {
		return nil // every instant is as good as the next
	}
	f.seen = make([]int, len(f.o.gcap))
	f.qmax = p.spreadQmax()
	f.w = make([]int, len(active))
	f.refresh(p)
	return f
}

// refresh chooses the sets over the work left: for each q, the heaviest
// S found. The search starts from the last sets and stops early: they
// steer the plan and bound nothing, so good sets found fast are worth
// more than the best.
func (f *focus) refresh(p *planner) {
	f.stale = false
	clear(f.crit)
	for i, m := range f.ms {
		f.w[i] = p.wavesLeft(m, f.per[i])
	}
	res := f.o.spreadEach(f.w, 1, f.qmax, f.prev, 300)
	f.prev = f.prev[:0]
	for _, r := range res {
		f.prev = append(f.prev, r.member)
	}
	f.fams = f.fams[:0]
	for _, r := range res {
		if r.sum == 0 {
			continue
		}
		fam := family{q: r.q, bound: ceilDiv(r.sum, r.q)}
		if n := len(f.fams); n < cap(f.fams) {
			fam.in = f.fams[:n+1][n].in // reuse the slot's array, if it has one
			clear(fam.in)
		}
		if fam.in == nil {
			fam.in = make([]bool, len(f.crit))
		}
		for _, i := range r.member {
			id := f.ms[i].id
			fam.in[id] = true
			f.crit[id]++
		}
		f.fams = append(f.fams, fam)
	}
	slices.SortStableFunc(f.fams, func(a, b family) int { return cmp.Compare(b.bound, a.bound) })
}

// held counts the metros of fam's S among those that may join a wave,
// no more of a group than its capacity.
func (f *focus) held(fam *family, picks []metroPick) int {
	clear(f.seen)
	n := 0
	for _, pk := range picks {
		if i := f.idx[pk.m.id]; i >= 0 && fam.in[pk.m.id] {
			if g := f.o.group[i]; f.seen[g] < f.o.gcap[g] {
				f.seen[g]++
				n++
			}
		}
	}
	return n
}

// tight says which sets have q groups of their S among the metros that
// may join a wave: a bit per set, the set with the largest bound the
// highest, so that of two instants the one whose value is larger serves
// the larger bound.
func (f *focus) tight(picks []metroPick) uint {
	var n uint
	for i := range f.fams {
		n <<= 1
		if f.held(&f.fams[i], picks) >= f.fams[i].q {
			n |= 1
		}
	}
	return n
}

// hold returns a later instant, within the spec's pack time of t, at
// which a wave can hold q of more sets' S than at t (the metros that may
// join at t are picks), or false when the wave should go ahead at t.
func (f *focus) hold(p *planner, picks []metroPick, t, d int64) (int64, bool) {
	if f.stale {
		f.refresh(p)
	}
	best, all := f.tight(picks), uint(1)<<len(f.fams)-1
	if best == all {
		return 0, false
	}
	for _, pk := range picks {
		f.in[pk.m.id] = true
	}
	cands := f.cands[:0]
	limit := t + int64(p.pack/time.Second)
	for _, m := range f.ms {
		if f.crit[m.id] == 0 || m.left == 0 {
			continue
		}
		if !f.in[m.id] {
			if u := p.nextTry(m, t, d); u <= limit && u+d <= p.end {
				cands = append(cands, u)
			}
		}
		// Every later opening within the pack time, not only the next:
		// a metro that may join now may be joinable with others only
		// in a later window.
		for i := m.spanAt(t); i < len(m.open) && m.open[i].a <= limit; i++ {
			if a := m.open[i].a; a > t && a+d <= m.open[i].b && a+d <= p.end {
				cands = append(cands, a)
			}
		}
	}
	for _, pk := range picks {
		f.in[pk.m.id] = false
	}
	slices.Sort(cands)
	cands = slices.Compact(cands)
	f.cands = cands
	at := int64(0)
	scratch := f.scratch[:0]
	for _, u := range cands {
		scratch = scratch[:0]
		for _, m := range f.ms {
			if f.crit[m.id] > 0 && m.left > 0 && p.canJoin(m, u, d) {
				scratch = append(scratch, metroPick{m: m})
			}
		}
		if n := f.tight(scratch); n > best {
			best, at = n, u
			if n == all {
				break
			}
		}
	}
	f.scratch = scratch
	return at, at > t
}
