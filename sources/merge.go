package sources

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
	"weak"

	"github.com/fleetkit/fleetkit/disposition"
)

// maxIntern bounds the string intern table; it is cleared when full.
const maxIntern = 1 << 20

// How an observation compares with the source's previous fetch.
const (
	obsInvalid uint8 = iota // rejected
	obsSame                 // equal to the previous one
	obsNew                  // of a node the source did not report before
	obsChanged              // different from the previous one
)

// ingest takes in the result of one fetch round of s: on success it
// replaces s's observations (unless a check rejects them) and marks the
// nodes that changed for merging; on failure it marks s stale. The
// caller holds a.mu.
func (a *Aggregator) ingest(s *sourceState, r fetchResult) error {
	s.lastAttempt = r.start
	a.setStatus(s, func(st *SourceStatus) {
		st.LastAttempt = r.start
		st.Duration = r.at.Sub(r.start)
		st.Fetches++
	})
	if errors.Is(r.err, ErrFetchInProgress) {
		// Another round (Run and Refresh at once, or a call abandoned at
		// its timeout, already counted as failed) has the source: this
		// round has nothing to say about it.
		return &SourceError{Source: s.name, Err: r.err}
	}
	if r.err != nil {
		return a.fail(s, r.err, r.at)
	}
	var first weak.Pointer[Observation]
	if len(r.obs) > 0 {
		first = weak.Make(&r.obs[0])
	}
	if s.loaded && len(r.obs) > 0 && len(r.obs) == s.lastLen && first == s.last {
		// The source returned the slice it returned last time: nothing
		// changed.
		a.succeed(s, r.at)
		return nil
	}

	at := r.at.UnixNano()
	s.gen++
	gen := s.gen
	// First pass: classify every observation against the previous fetch.
	// Entries seen again are stamped with gen, which also catches
	// duplicates; newIDs holds the IDs s did not report before.
	status := make([]uint8, len(r.obs))
	var newIDs map[string]*entry
	seenOld, fresh, invalid := 0, 0, 0
	var firstInvalid error
	for i := range r.obs {
		o := &r.obs[i]
		old := s.obs[o.ID]
		same := old != nil && obsEqual(old.obs, o) // then o is valid, as old was
		if !same {
			if err := o.validate(); err != nil {
				if invalid == 0 {
					firstInvalid = err
				}
				invalid++
				continue
			}
		}
		if old != nil {
			if old.gen == gen {
				return a.fail(s, fmt.Errorf("%w: %q", ErrDuplicateObservation, o.ID), r.at)
			}
			old.gen = gen
			seenOld++
		} else {
			if newIDs == nil {
				newIDs = make(map[string]*entry, max(len(r.obs)-len(s.obs), 8))
			}
			if _, dup := newIDs[o.ID]; dup {
				return a.fail(s, fmt.Errorf("%w: %q", ErrDuplicateObservation, o.ID), r.at)
			}
			newIDs[o.ID] = nil
		}
		switch {
		case same:
			status[i] = obsSame
		case old == nil:
			status[i] = obsNew
			fresh++
		default:
			status[i] = obsChanged
			fresh++
		}
	}
	var removed []string
	if seenOld < len(s.obs) {
		for id, e := range s.obs {
			if e.gen != gen {
				removed = append(removed, id)
			}
		}
	}
	if s.reg.Authoritative {
		inFetch := func(id string) bool {
			if e := s.obs[id]; e != nil {
				return e.gen == gen
			}
			_, ok := newIDs[id]
			return ok
		}
		if err := a.checkGuard(s, inFetch, removed); err != nil {
			a.log.Warn("removal guard rejected a fetch", "source", s.name, "err", err)
			return a.fail(s, err, r.at)
		}
	}

	// Second pass: keep the changes. When most observations changed, the
	// entries point into the new slice, unchanged ones included, so that
	// the previous slice can go. When few did, the changed ones are
	// copied out of it, so that it need not stay alive for their sake.
	total := seenOld + len(newIDs)
	changed := make([]string, 0, fresh)
	added := make([]string, 0, len(newIDs))
	if fresh > 0 && 2*fresh >= total {
		next := newIDs
		if seenOld > 0 || next == nil {
			next = make(map[string]*entry, total)
		}
		slab := make([]entry, total)
		k := 0
		for i, st := range status {
			if st == obsInvalid {
				continue
			}
			o := &r.obs[i]
			var old *entry
			if st != obsNew {
				old = s.obs[o.ID]
			}
			e := &slab[k]
			k++
			if st == obsSame {
				*e = *old
				e.obs = o
			} else {
				e.obs = o
				a.setFirstSeen(e, old, at)
				changed = append(changed, o.ID)
				if st == obsNew {
					added = append(added, o.ID)
				}
			}
			next[o.ID] = e
		}
		s.obs = next
	} else {
		for _, id := range removed {
			delete(s.obs, id)
		}
		for i, st := range status {
			if st != obsNew && st != obsChanged {
				continue
			}
			o := &r.obs[i]
			old := s.obs[o.ID]
			e := &entry{obs: a.copyObservation(o), gen: gen}
			a.setFirstSeen(e, old, at)
			s.obs[e.obs.ID] = e
			changed = append(changed, e.obs.ID)
			if st == obsNew {
				added = append(added, e.obs.ID)
			}
		}
	}
	s.last, s.lastLen = first, len(r.obs)

	var flipped []string // IDs that start or stop being in the fleet
	if s.reg.Authoritative {
		for _, id := range added {
			if a.authCount[id]++; a.authCount[id] == 1 {
				flipped = append(flipped, id)
			}
		}
		for _, id := range removed {
			if a.authCount[id]--; a.authCount[id] <= 0 {
				delete(a.authCount, id)
				flipped = append(flipped, id)
			}
		}
		if !s.loaded {
			if a.loadedAuth++; a.loadedAuth == a.numAuth {
				a.full = true // nodes no authoritative source has can now start their grace
			}
		}
	}
	s.loaded = true
	a.markDirty(changed)
	a.markDirty(removed)
	// Keep the orphan counts up to date, unless the next merge is a full
	// one, which counts them anyway.
	if !a.full {
		if s.reg.Authoritative {
			for _, id := range flipped {
				d := 1
				if a.authCount[id] > 0 {
					d = -1
				}
				for _, o := range a.srcs {
					if !o.reg.Authoritative && o.obs[id] != nil {
						o.orphans += d
						o.sampleDirty = true
					}
				}
			}
		} else {
			for _, id := range added {
				if a.authCount[id] == 0 {
					s.orphans++
					s.sampleDirty = true
				}
			}
			for _, id := range removed {
				if a.authCount[id] == 0 {
					s.orphans--
					s.sampleDirty = true
				}
			}
		}
	}
	var inv string
	if firstInvalid != nil {
		inv = firstInvalid.Error()
	}
	a.setStatus(s, func(st *SourceStatus) {
		st.Observations = len(s.obs)
		st.Invalid = invalid
		st.FirstInvalid = inv
	})
	a.succeed(s, r.at)
	return nil
}

// succeed records an accepted fetch of s completed at t.
func (a *Aggregator) succeed(s *sourceState, t time.Time) {
	s.lastGood = t
	if s.failing || s.expired {
		// Every node s contributes to changes provenance.
		s.failing, s.expired = false, false
		a.full = true
	}
	a.setStatus(s, func(st *SourceStatus) {
		st.LastSuccess = t
		st.StaleSince = time.Time{}
		st.Expired = false
	})
}

// fail records a failed fetch round of s that ended at t, and returns
// the error to report.
func (a *Aggregator) fail(s *sourceState, err error, t time.Time) error {
	var ge *GuardError
	errors.As(err, &ge)
	if !s.failing {
		s.failing = true
		if s.loaded {
			a.full = true // its values turn stale
		}
		a.setStatus(s, func(st *SourceStatus) { st.StaleSince = t })
	}
	a.setStatus(s, func(st *SourceStatus) {
		st.Err = err
		st.LastError = err.Error()
		st.LastErrorAt = t
		st.Failures++
	})
	if ge != nil {
		return ge
	}
	return &SourceError{Source: s.name, Err: err}
}

// copyObservation copies the known fields of o, with strings interned.
func (a *Aggregator) copyObservation(o *Observation) *Observation {
	c := &Observation{ID: a.str(o.ID), Known: o.Known, Note: o.Note}
	for f := disposition.FieldKind; int(f) < nFields; f++ {
		if !o.Known.Has(f) {
			continue
		}
		disposition.CopyField(&c.Values, &o.Values, f)
		if p := stringFieldPtr(&c.Values, f); p != nil {
			*p = a.str(*p)
		}
	}
	return c
}

// setFirstSeen sets when the source first reported each known field of
// e.obs: at, or for a value unchanged since old, old's time.
func (a *Aggregator) setFirstSeen(e *entry, old *entry, at int64) {
	e.at, e.since = at, nil
	if old == nil {
		return
	}
	var since [nFields]int64
	differ := false
	first := int64(-1)
	for f := disposition.FieldKind; int(f) < nFields; f++ {
		if !e.obs.Known.Has(f) {
			continue
		}
		since[f] = at
		if old.obs.Known.Has(f) && fieldEqual(&old.obs.Values, &e.obs.Values, f) {
			since[f] = old.firstSeen(f)
		}
		if first < 0 {
			first = since[f]
		}
		differ = differ || since[f] != first
	}
	if differ {
		c := since // only this copy escapes
		e.since = &c
	} else if first >= 0 {
		e.at = first
	}
}

// str interns s.
func (a *Aggregator) str(s string) string {
	if v, ok := a.intern[s]; ok {
		return v
	}
	if len(a.intern) >= maxIntern {
		clear(a.intern)
	}
	a.intern[s] = s
	return s
}

// markDirty queues ids for merging; when they are many, the next merge
// does every node instead.
func (a *Aggregator) markDirty(ids []string) {
	if a.full || len(ids) == 0 {
		return
	}
	if len(a.dirty)+len(ids) > len(a.nodes)/2+64 {
		a.full = true
		clear(a.dirty)
		return
	}
	for _, id := range ids {
		a.dirty[id] = struct{}{}
	}
}

// checkGuard rejects an authoritative fetch of s that would remove more
// than the allowed share of the fleet. Nodes "removed" are nodes of the
// fleet that would be missing from every authoritative source, and so
// start their grace period; nodes already in grace are not counted
// again. Until every authoritative source has loaded once, no node is
// missing, so nothing is counted.
func (a *Aggregator) checkGuard(s *sourceState, inFetch func(id string) bool, removed []string) error {
	completing := !s.loaded && a.loadedAuth+1 == a.numAuth
	if a.loadedAuth < a.numAuth && !completing {
		return nil
	}
	removing := 0
	if completing {
		for id := range a.nodes {
			if _, gone := a.missing[id]; gone {
				continue
			}
			if a.authCount[id] == 0 && !inFetch(id) {
				removing++
			}
		}
	} else {
		for _, id := range removed {
			if _, gone := a.missing[id]; gone || a.authCount[id] != 1 || a.nodes[id] == nil {
				continue
			}
			removing++
		}
	}
	total := len(a.nodes)
	limit := int(a.guard * float64(total))
	if removing <= limit {
		return nil
	}
	if s.allowRemoval {
		s.allowRemoval = false
		a.log.Warn("removal guard overridden", "source", s.name, "removing", removing, "total", total)
		return nil
	}
	return &GuardError{Source: s.name, Removing: removing, Total: total, Limit: limit}
}

// publishOrphans updates the orphan counts and samples in the status of
// the sources whose orphans changed. A sample needs a scan of the
// source's observations, but only when it has orphans. The caller holds
// a.mu.
func (a *Aggregator) publishOrphans() {
	for _, s := range a.srcs {
		if !s.sampleDirty {
			continue
		}
		s.sampleDirty = false
		var sample []string
		if s.orphans > 0 {
			n := 0
			for id := range s.obs {
				if a.authCount[id] > 0 {
					continue
				}
				n++
				// Keep the smallest IDs, so that the sample is deterministic.
				if len(sample) < orphanSampleSize {
					sample = append(sample, id)
					slices.Sort(sample)
				} else if id < sample[orphanSampleSize-1] {
					sample[orphanSampleSize-1] = id
					slices.Sort(sample)
				}
			}
			s.orphans = n
		}
		a.setStatus(s, func(st *SourceStatus) {
			st.Orphans = s.orphans
			st.OrphanSample = sample
		})
	}
}

// checkExpiry marks sources past MaxStale as expired. The caller holds
// a.mu.
func (a *Aggregator) checkExpiry(now time.Time) {
	for _, s := range a.srcs {
		exp := s.failing && s.loaded && now.Sub(s.lastGood) > s.maxStale
		if exp != s.expired {
			s.expired = exp
			a.full = true
			a.setStatus(s, func(st *SourceStatus) { st.Expired = exp })
			if exp {
				a.log.Warn("source expired: its fields are dropped", "source", s.name, "last_good", s.lastGood)
			}
		}
	}
}

// parallelMergeMin is the fewest nodes a full merge splits between
// workers.
const parallelMergeMin = 4096

// mergeAndApply merges the nodes that need it and applies what changed
// to the index. The caller holds a.mu.
func (a *Aggregator) mergeAndApply(ctx context.Context) error {
	now := a.clock.Now()
	a.checkExpiry(now)
	var b disposition.Batch
	// settle decides about node id given its merge (nil when no
	// authoritative source reports it).
	settle := func(id string, merged *disposition.Node) {
		old := a.nodes[id]
		if merged != nil {
			delete(a.missing, id)
			if merged != old {
				b.Upserts = append(b.Upserts, merged)
			}
			return
		}
		if old == nil {
			return // an orphan
		}
		if a.loadedAuth < a.numAuth {
			// It may belong to an authoritative source that has not
			// loaded yet: kept, stale, and no grace period starts.
			if n := a.staleCopy(old); n != old {
				b.Upserts = append(b.Upserts, n)
			}
			return
		}
		since, ok := a.missing[id]
		if !ok {
			since = now
			a.missing[id] = now
		}
		if a.grace < 0 || now.Sub(since) >= a.grace {
			b.Deletes = append(b.Deletes, id)
			return
		}
		if n := a.staleCopy(old); n != old {
			b.Upserts = append(b.Upserts, n)
		}
	}
	visit := func(id string) {
		var merged *disposition.Node
		if a.authCount[id] > 0 {
			merged = a.seq.mergeNode(id, a.nodes[id])
		}
		settle(id, merged)
	}
	if a.full {
		// In ID order: sources usually list nodes sorted, so the merge
		// then reads their observations in memory order, which is
		// several times faster than map order.
		ids := make([]string, 0, len(a.authCount)+len(a.missing))
		for id := range a.authCount {
			ids = append(ids, id)
		}
		for id := range a.nodes {
			if a.authCount[id] == 0 {
				ids = append(ids, id)
			}
		}
		slices.Sort(ids)
		merged, matched := a.mergeAll(ids)
		for i, id := range ids {
			settle(id, merged[i])
		}
		for i, s := range a.srcs {
			if !s.reg.Authoritative {
				s.orphans = len(s.obs) - matched[i]
				s.sampleDirty = true
			}
		}
	} else {
		for id := range a.dirty {
			visit(id)
		}
		for id, since := range a.missing {
			if _, done := a.dirty[id]; !done && (a.grace < 0 || now.Sub(since) >= a.grace) {
				visit(id)
			}
		}
	}
	a.publishOrphans()
	if len(b.Upserts)+len(b.Deletes) > 0 {
		// In ID order, the index's radix tree is written with locality;
		// a random order of inserts costs the index several times more.
		slices.SortFunc(b.Upserts, func(x, y *disposition.Node) int { return strings.Compare(x.ID, y.ID) })
		slices.Sort(b.Deletes)
		if _, err := a.ix.Apply(ctx, b); err != nil {
			// Keep dirty and full: the next merge tries again.
			return fmt.Errorf("sources: applying %d changes to the index: %w", len(b.Upserts)+len(b.Deletes), err)
		}
		for _, n := range b.Upserts {
			a.nodes[n.ID] = n
		}
		for _, id := range b.Deletes {
			delete(a.nodes, id)
			delete(a.missing, id)
		}
	}
	clear(a.dirty)
	a.full = false
	a.pruneOrigins()
	return nil
}

// mergeAll merges every node of ids that an authoritative source
// reports (nil for the others), split between workers when there are
// many, and counts per source its observations of those nodes. The
// aggregator's state is only read meanwhile; the origins the workers
// make are added to the shared table afterwards.
func (a *Aggregator) mergeAll(ids []string) (merged []*disposition.Node, matched []int) {
	merged = make([]*disposition.Node, len(ids))
	workers := min(a.mergeWorkers, (len(ids)+parallelMergeMin-1)/parallelMergeMin)
	ms := make([]*merger, max(workers, 1))
	ms[0] = a.seq
	for w := 1; w < len(ms); w++ {
		ms[w] = newMerger(a, true)
	}
	run := func(m *merger, lo, hi int) {
		for j := lo; j < hi; j++ {
			id := ids[j]
			if a.authCount[id] == 0 {
				continue
			}
			merged[j] = m.mergeNode(id, a.nodes[id])
			for i, e := range m.ents {
				if e != nil || (a.srcs[i].expired && a.srcs[i].obs[id] != nil) {
					m.matched[i]++
				}
			}
		}
	}
	clear(a.seq.matched)
	if len(ms) == 1 {
		run(a.seq, 0, len(ids))
		return merged, a.seq.matched
	}
	// The sequential merger writes to the shared origin table: while
	// workers read it, it keeps its new origins aside too.
	a.seq.local = map[originKey]*disposition.Origin{}
	var wg sync.WaitGroup
	per := (len(ids) + len(ms) - 1) / len(ms)
	for w, m := range ms {
		lo, hi := w*per, min((w+1)*per, len(ids))
		wg.Go(func() { run(m, lo, hi) })
	}
	wg.Wait()
	matched = a.seq.matched
	for _, m := range ms {
		for k, o := range m.local {
			if _, ok := a.origins[k]; !ok {
				a.origins[k] = o
			}
		}
		if m != a.seq {
			for i, c := range m.matched {
				matched[i] += c
			}
		}
	}
	a.seq.local = nil
	return merged, matched
}

// maxMergeWorkers caps the goroutines of a parallel merge.
const maxMergeWorkers = 4

// merger holds the scratch space of one goroutine merging nodes.
type merger struct {
	a          *Aggregator
	ents       []*entry   // per source, the node being merged
	known      []FieldSet // per source, what it knows of that node
	matched    []int      // per source, nodes of the fleet it reported (mergeAll)
	memo       []originMemo
	scratch    disposition.Node
	scratchMap [2]map[string]string // versions, labels
	// local holds the origins made while other mergers read the shared
	// table; nil when this merger may write to it.
	local map[originKey]*disposition.Origin
}

type originMemo struct {
	at    int64
	stale bool
	o     *disposition.Origin
}

func newMerger(a *Aggregator, parallel bool) *merger {
	n := len(a.srcs)
	m := &merger{a: a, ents: make([]*entry, n), known: make([]FieldSet, n),
		matched: make([]int, n), memo: make([]originMemo, n)}
	if parallel {
		m.local = map[originKey]*disposition.Origin{}
	}
	return m
}

// mergeNode merges what the sources know about node id. It returns old
// when the result equals it, so that unchanged nodes cost no allocation.
func (m *merger) mergeNode(id string, old *disposition.Node) *disposition.Node {
	a := m.a
	ents, known := m.ents, m.known
	var union FieldSet
	for i, s := range a.srcs {
		ents[i], known[i] = nil, 0
		if s.expired {
			continue
		}
		if e := s.obs[id]; e != nil {
			ents[i], known[i] = e, e.obs.Known
			union |= e.obs.Known
		}
	}
	n := &m.scratch
	*n = disposition.Node{ID: id}
	var fromScratch [2]bool
	for f := disposition.FieldKind; int(f) < nFields; f++ {
		if !union.Has(f) {
			continue
		}
		if f == disposition.FieldVersions || f == disposition.FieldLabels {
			fromScratch[mapSlot(f)] = m.mergeMap(n, f)
			continue
		}
		for _, si := range a.prec[f] {
			if !known[si].Has(f) {
				continue
			}
			e := ents[si]
			disposition.CopyField(n, &e.obs.Values, f)
			n.Provenance[f] = m.origin(si, e.firstSeen(f), a.srcs[si].failing, e.obs.Note)
			break
		}
	}
	if old != nil && old.Equal(n) {
		return old
	}
	out := new(disposition.Node)
	*out = *n
	if fromScratch[0] {
		out.Versions = maps.Clone(out.Versions)
	}
	if fromScratch[1] {
		out.Labels = maps.Clone(out.Labels)
	}
	return out
}

func mapSlot(f disposition.Field) int {
	if f == disposition.FieldVersions {
		return 0
	}
	return 1
}

// mergeMap merges field f (versions or labels) key by key: each key
// comes from the first source in precedence order that has it. The
// field's provenance names the highest-precedence source that
// contributed, with the latest first-seen time of the contributors, and
// is stale if any contributor is. It reports whether n's map is the
// scratch map, which the caller must copy before keeping.
func (m *merger) mergeMap(n *disposition.Node, f disposition.Field) bool {
	a := m.a
	ents, known := m.ents, m.known
	first, count := -1, 0
	var at int64
	stale := false
	for _, si := range a.prec[f] {
		if !known[si].Has(f) {
			continue
		}
		if first < 0 {
			first = si
		}
		count++
		at = max(at, ents[si].firstSeen(f))
		stale = stale || a.srcs[si].failing
	}
	if count == 0 {
		return false
	}
	get := func(si int) map[string]string {
		if f == disposition.FieldVersions {
			return ents[si].obs.Values.Versions
		}
		return ents[si].obs.Values.Labels
	}
	var merged map[string]string
	scratch := false
	if count == 1 {
		merged = get(first)
	} else {
		merged = m.scratchMap[mapSlot(f)]
		if merged == nil {
			merged = map[string]string{}
			m.scratchMap[mapSlot(f)] = merged
		}
		clear(merged)
		order := a.prec[f]
		for i := len(order) - 1; i >= 0; i-- {
			if known[order[i]].Has(f) {
				maps.Copy(merged, get(order[i]))
			}
		}
		scratch = true
		// Often one source has it all (the others agree, or report a
		// subset): share its map rather than copy the merge.
		for _, si := range order {
			if known[si].Has(f) && maps.Equal(merged, get(si)) {
				merged, scratch = get(si), false
				break
			}
		}
	}
	if f == disposition.FieldVersions {
		n.Versions = merged
	} else {
		n.Labels = merged
	}
	n.Provenance[f] = m.origin(first, at, stale, "")
	return scratch
}

// origin returns the shared Origin for a value of source si first seen
// at at (Unix nanoseconds), with the observation's note.
func (m *merger) origin(si int, at int64, stale bool, note string) *disposition.Origin {
	memo := &m.memo[si]
	if memo.o != nil && memo.at == at && memo.stale == stale && memo.o.Note == note {
		return memo.o
	}
	k := originKey{m.a.srcs[si].name, at, stale, note}
	o := m.a.origins[k]
	if o == nil && m.local != nil {
		o = m.local[k]
	}
	if o == nil {
		o = &disposition.Origin{Source: k.source, ObservedAt: time.Unix(0, at).UTC(), Stale: stale, Note: note}
		if m.local != nil {
			m.local[k] = o
		} else {
			m.a.origins[k] = o
		}
	}
	*memo = originMemo{at, stale, o}
	return o
}

func (a *Aggregator) originNamed(source string, at int64, stale bool, note string) *disposition.Origin {
	k := originKey{source, at, stale, note}
	o := a.origins[k]
	if o == nil {
		o = &disposition.Origin{Source: source, ObservedAt: time.Unix(0, at).UTC(), Stale: stale, Note: note}
		a.origins[k] = o
	}
	return o
}

// staleCopy returns old with every origin marked stale, or old itself
// when it already is.
func (a *Aggregator) staleCopy(old *disposition.Node) *disposition.Node {
	var n *disposition.Node
	for f, o := range old.Provenance {
		if o == nil || o.Stale {
			continue
		}
		if n == nil {
			c := *old
			n = &c
		}
		n.Provenance[f] = a.originNamed(o.Source, o.ObservedAt.UnixNano(), true, o.Note)
	}
	if n == nil {
		return old
	}
	return n
}

// pruneOrigins drops the origins no node uses any more, once the table
// has doubled since the last prune.
func (a *Aggregator) pruneOrigins() {
	if len(a.origins) <= a.originsCap {
		return
	}
	used := make(map[*disposition.Origin]bool, len(a.origins))
	for _, n := range a.nodes {
		for _, o := range n.Provenance {
			if o != nil {
				used[o] = true
			}
		}
	}
	maps.DeleteFunc(a.origins, func(_ originKey, o *disposition.Origin) bool { return !used[o] })
	clear(a.seq.memo)
	a.originsCap = max(1024, 2*len(a.origins))
}
