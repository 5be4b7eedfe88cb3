package rollout

import "math"

// focus steers the waves towards the metros that bound the number of
// waves: a set S of metros of which no wave can hold more than q (see
// overlap.spread), which need sum(waves of S) / q waves however they are
// placed. A plan meets that bound only if every wave holds q metros of S,
// so while S has work left a growth wave waits, up to the spec's pack
// time, for an instant at which q of S's groups may join it, and a
// group's metro in S goes before its other metros. The metros outside S
// ride along. After every wave S is chosen again over the work left, so
// that the waves follow whichever metros bound what is left.
type focus struct {
	o     *overlap
	ms    []*metroPlan // o's metros
	idx   []int        // per metro id: its index in ms, or -1
	crit  []bool       // per metro id: in S
	q     int          // 0 when there is no S to wait for
	stale bool
	seen  []bool // per group, scratch
	w     []int  // per index in ms, scratch
	prev  []int  // S as indices in ms
	tail  int    // the largest wave after the growth ramp
	in    []bool // per metro id, scratch
}

func (p *planner) newFocus(active []*metroPlan, total int) *focus {
	if len(active) < 2 {
		return nil
	}
	f := &focus{
		ms: active, idx: make([]int, len(p.metros)), crit: make([]bool, len(p.metros)),
		in: make([]bool, len(p.metros)), tail: p.waveSeq(total).tail,
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
	f.seen = make([]bool, len(f.o.gcap))
	f.w = make([]int, len(active))
	f.refresh(p)
	return f
}

// refresh chooses S over the work left. The search starts from the last
// S and stops early: S steers the plan and bounds nothing, so a good S
// found fast is worth more than the best one.
func (f *focus) refresh(p *planner) {
	f.stale = false
	clear(f.crit)
	for i, m := range f.ms {
		f.w[i] = ceilDiv(m.left, min(int(p.budget[lvMetro][m.id]), f.tail))
	}
	_, q, member := f.o.spread(f.w, 1, 3, f.prev, 300)
	f.q, f.prev = q, member
	for _, i := range member {
		f.crit[f.ms[i].id] = true
	}
}

// held counts the groups of S among the metros that may join a wave.
func (f *focus) held(picks []metroPick) int {
	clear(f.seen)
	n := 0
	for _, pk := range picks {
		if i := f.idx[pk.m.id]; i >= 0 && f.crit[pk.m.id] {
			if g := f.o.group[i]; !f.seen[g] {
				f.seen[g] = true
				n++
			}
		}
	}
	return n
}

// wait reports whether a wave of the metros picks would hold fewer than q
// of S.
func (f *focus) wait(p *planner, picks []metroPick) bool {
	if f.stale {
		f.refresh(p)
	}
	if f.q == 0 {
		return false
	}
	return f.held(picks) < f.q
}

// next returns the next instant after t at which a metro of S that cannot
// join at t might.
func (f *focus) next(p *planner, picks []metroPick, t, d int64) int64 {
	for _, pk := range picks {
		f.in[pk.m.id] = true
	}
	next := int64(math.MaxInt64)
	for _, m := range f.ms {
		if f.crit[m.id] && m.left > 0 && !f.in[m.id] {
			next = min(next, p.nextTry(m, t, d))
		}
	}
	for _, pk := range picks {
		f.in[pk.m.id] = false
	}
	return next
}
