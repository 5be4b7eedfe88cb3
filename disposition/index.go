package disposition

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/hashicorp/go-memdb"
)

// MaxTxnRecords is the most records Apply writes in one go-memdb
// transaction. go-immutable-radix tracks at most 8,192 mutated nodes per
// transaction and falls back to a full-tree diff past that, so large
// batches are split.
const MaxTxnRecords = 500

// ErrDuplicateID is returned by Apply when a batch names one node twice.
var ErrDuplicateID = errors.New("node appears twice in batch")

// Batch is a set of changes applied to an Index as one version.
type Batch struct {
	// Upserts are nodes to insert or replace, whole. The index takes
	// ownership of them: the caller must not modify them afterwards.
	Upserts []*Node
	// Deletes are the IDs of nodes to remove; unknown IDs are ignored.
	Deletes []string
}

// ApplyResult says what an Apply changed.
type ApplyResult struct {
	Version   uint64 // the index version after the batch
	Inserted  int    // nodes that did not exist before
	Updated   int    // nodes that existed and changed
	Unchanged int    // upserts equal to the stored node, not written
	Deleted   int    // nodes removed
}

// Changed reports whether the batch changed the index.
func (r ApplyResult) Changed() bool { return r.Inserted+r.Updated+r.Deleted > 0 }

// Index is the disposition index: every node, indexed on the fields
// queries filter by. It is safe for concurrent use; writes are serialised
// and readers never block them.
type Index struct {
	mu  sync.Mutex // serialises writers; guards db
	db  *memdb.MemDB
	pub atomic.Pointer[published]
}

// published is one version of the index as readers see it. Nothing in it
// is written after it is published.
type published struct {
	db      *memdb.MemDB // a memdb snapshot, never written
	version uint64
	// all holds every node ordered by ID, for full scans: walking the
	// radix tree costs a few cache misses a node, ten times a slice.
	all []*Node
	// slots holds every node at its ordinal, the number of its bit in the
	// posting bitmaps; a free ordinal's slot is nil. Ordinals are given in
	// ID order when the index is built, so most query results come out of
	// the bitmaps already in ID order.
	slots []*Node
	free  []uint32        // free ordinals
	live  *roaring.Bitmap // the ordinals in use
	late  *roaring.Bitmap // ordinals given out of ID order since the build
	next  chan struct{}   // closed when a newer version is published
}

// NewIndex returns an empty index at version 0.
func NewIndex() *Index {
	db, err := memdb.NewMemDB(schema())
	if err != nil {
		// The schema is a constant; memdb rejects it only if it is malformed.
		panic(fmt.Sprintf("disposition: invalid schema: %v", err))
	}
	// Write to a snapshot, not to the primary database: memdb tracks
	// mutations (a channel per changed radix node, for WatchSets) only on
	// the primary. The index never uses WatchSets, it signals versions, and
	// not tracking cuts a fifth of the cost of a write.
	ix := &Index{db: db.Snapshot()}
	ix.pub.Store(&published{db: ix.db.Snapshot(), live: roaring.New(), late: roaring.New(), next: make(chan struct{})})
	return ix
}

// Version returns the current version: 0 for an empty index, then one more
// for every Apply that changed something.
func (ix *Index) Version() uint64 { return ix.pub.Load().version }

// Snapshot returns a consistent, read-only view of the current version.
// It is cheap (no copy) and stays valid and unchanged however the index
// moves on.
func (ix *Index) Snapshot() *Snapshot {
	return &Snapshot{pub: ix.pub.Load()}
}

// Apply writes a batch: upserts whose content equals the stored node and
// deletes of absent IDs are skipped, the rest are written in transactions
// of at most MaxTxnRecords records. Readers see the whole batch or none of
// it: the new version is published only after the last transaction.
//
// Every node is validated before anything is written; an invalid node or
// a duplicate ID rejects the whole batch with an error naming the node and
// field.
func (ix *Index) Apply(ctx context.Context, b Batch) (ApplyResult, error) {
	if err := ctx.Err(); err != nil {
		return ApplyResult{}, err
	}
	seen := make(map[string]struct{}, len(b.Upserts)+len(b.Deletes))
	for i, n := range b.Upserts {
		if n == nil {
			return ApplyResult{}, fmt.Errorf("disposition: upsert %d is nil", i)
		}
		if err := n.Validate(); err != nil {
			return ApplyResult{}, fmt.Errorf("disposition: upsert %d: %w", i, err)
		}
		if _, dup := seen[n.ID]; dup {
			return ApplyResult{}, fmt.Errorf("disposition: %w: %q", ErrDuplicateID, n.ID)
		}
		seen[n.ID] = struct{}{}
	}
	for _, id := range b.Deletes {
		if _, dup := seen[id]; dup {
			return ApplyResult{}, fmt.Errorf("disposition: %w: %q", ErrDuplicateID, id)
		}
		seen[id] = struct{}{}
	}

	ix.mu.Lock()
	defer ix.mu.Unlock()
	cur := ix.pub.Load()
	w := &writer{cur: cur, db: ix.db, txn: ix.db.Txn(true), empty: len(cur.all) == 0}
	defer func() { w.txn.Abort() }() // no-op after Commit
	res, err := w.write(b)
	if err != nil {
		// Drop the transactions already committed: the live database goes
		// back to the published version.
		ix.db = cur.db.Snapshot()
		return ApplyResult{}, err
	}
	if !res.Changed() {
		res.Version = cur.version
		return res, nil
	}
	res.Version = cur.version + 1
	next := &published{
		db:      ix.db.Snapshot(),
		version: res.Version,
		all:     merge(cur.all, w.ch),
		slots:   w.slots,
		free:    w.free,
		live:    w.live,
		late:    w.late,
		next:    make(chan struct{}),
	}
	if next.late.GetCardinality() > uint64(len(next.all)/renumberShare) {
		if err := ix.renumber(next); err != nil {
			ix.db = cur.db.Snapshot()
			return ApplyResult{}, err
		}
	}
	ix.pub.Store(next)
	close(cur.next)
	return res, nil
}

// renumberShare: once more than 1/renumberShare of the nodes were given
// ordinals out of ID order, the index is renumbered.
const renumberShare = 8

// renumber rebuilds the database of p from p.all so that ordinals follow
// ID order again, as after a first build. Nodes inserted after the build
// take free or new ordinals; query results that hold them come out of the
// bitmaps out of order and are sorted. Renumbering costs a build, once
// per len/renumberShare late nodes. The caller holds ix.mu.
func (ix *Index) renumber(p *published) error {
	db, err := memdb.NewMemDB(schema())
	if err != nil {
		return fmt.Errorf("disposition: renumber: %w", err)
	}
	fresh := db.Snapshot()
	empty := &published{db: fresh.Snapshot(), live: roaring.New(), late: roaring.New()}
	w := &writer{cur: empty, db: fresh, txn: fresh.Txn(true), empty: true}
	defer func() { w.txn.Abort() }()
	if _, err := w.write(Batch{Upserts: p.all}); err != nil {
		return fmt.Errorf("disposition: renumber: %w", err)
	}
	ix.db = fresh
	p.db, p.slots, p.free, p.live, p.late = fresh.Snapshot(), w.slots, w.free, w.live, w.late
	return nil
}

// writer applies one batch. It copies what it changes of the published
// version (slots, free list, live set, each touched posting) once, on
// first change, and writes the postings at the end.
type writer struct {
	cur     *published
	db      *memdb.MemDB // the database written, ix.db
	txn     *memdb.Txn
	pending int             // records written in txn
	empty   bool            // the index was empty: every upsert is an insert
	late    *roaring.Bitmap // ordinals given out of ID order
	maxID   string          // the greatest ID at an ordinal in ID order
	ch      changes
	slots   []*Node
	free    []uint32
	live    *roaring.Bitmap
	work    map[postingKey]*roaring.Bitmap // postings being changed
}

// write applies b in transactions of at most MaxTxnRecords writes. When
// the index is empty every upsert is an insert (Apply has ruled out
// duplicates) and the lookups are skipped. Upserts are taken in ID order,
// so inserts past the greatest ID keep ordinals in ID order.
func (w *writer) write(b Batch) (ApplyResult, error) {
	var res ApplyResult
	ups := b.Upserts
	if !slices.IsSortedFunc(ups, byID) {
		ups = slices.SortedFunc(slices.Values(ups), byID)
	}
	if all := w.cur.all; len(all) > 0 {
		w.maxID = all[len(all)-1].ID
	}
	w.late = w.cur.late // copied by ownLate on change
	for _, n := range ups {
		var old *row
		if !w.empty {
			raw, err := w.txn.First(tableNodes, indexID, n.ID)
			if err != nil {
				return res, fmt.Errorf("disposition: lookup %q: %w", n.ID, err)
			}
			old, _ = raw.(*row)
		}
		var ord uint32
		switch {
		case old == nil:
			res.Inserted++
			// Ordinals stay in ID order while every insert since the
			// build went past the greatest ID, at a new ordinal.
			inOrder := w.empty || w.late.IsEmpty() && n.ID > w.maxID
			ord = w.alloc(inOrder)
			if inOrder {
				w.maxID = n.ID
			} else {
				w.ownLate()
				w.late.Add(ord)
			}
			postingKeys(n, func(k postingKey) { w.bits(k).Add(ord) })
		case old.node.Equal(n):
			res.Unchanged++
			continue
		default:
			res.Updated++
			ord = old.ord
			diffPostings(old.node, n,
				func(k postingKey) { w.bits(k).Remove(ord) },
				func(k postingKey) { w.bits(k).Add(ord) })
		}
		w.own()
		w.slots[ord] = n
		w.ch.upserts = append(w.ch.upserts, n)
		if err := w.insert(tableNodes, &row{node: n, ord: ord}); err != nil {
			return res, fmt.Errorf("disposition: write %q: %w", n.ID, err)
		}
	}
	for _, id := range b.Deletes {
		raw, err := w.txn.First(tableNodes, indexID, id)
		if err != nil {
			return res, fmt.Errorf("disposition: lookup %q: %w", id, err)
		}
		old, ok := raw.(*row)
		if !ok {
			continue
		}
		w.ownLive()
		if w.late.Contains(old.ord) {
			w.ownLate()
			w.late.Remove(old.ord)
		}
		postingKeys(old.node, func(k postingKey) { w.bits(k).Remove(old.ord) })
		w.slots[old.ord] = nil
		w.live.Remove(old.ord)
		w.free = append(w.free, old.ord)
		if err := w.txn.Delete(tableNodes, old); err != nil {
			return res, fmt.Errorf("disposition: delete %q: %w", id, err)
		}
		w.ch.deletes = append(w.ch.deletes, id)
		res.Deleted++
		w.flush()
	}
	if err := w.writePostings(); err != nil {
		return res, err
	}
	w.txn.Commit()
	return res, nil
}

// own copies the published slots and free list before the first change
// to them.
func (w *writer) own() {
	if w.work != nil {
		return
	}
	w.work = map[postingKey]*roaring.Bitmap{}
	if w.empty {
		// Number from 0 again, whatever ordinals deleted nodes left free.
		w.live, w.late = roaring.New(), roaring.New()
		return
	}
	w.slots = slices.Clone(w.cur.slots)
	w.free = slices.Clone(w.cur.free)
	w.live = w.cur.live // copied by ownLive when a node comes or goes
}

// ownLive copies the published live set before the first change to it.
func (w *writer) ownLive() {
	w.own()
	if w.live == w.cur.live {
		w.live = w.cur.live.Clone()
	}
}

// ownLate copies the published late set before the first change to it.
func (w *writer) ownLate() {
	w.own()
	if w.late == w.cur.late {
		w.late = w.cur.late.Clone()
	}
}

// alloc returns an ordinal for a new node: the last one freed, or (always
// when atEnd) the next past the end.
func (w *writer) alloc(atEnd bool) uint32 {
	w.ownLive()
	var ord uint32
	if n := len(w.free); n > 0 && !atEnd {
		ord, w.free = w.free[n-1], w.free[:n-1]
	} else {
		ord = uint32(len(w.slots))
		w.slots = append(w.slots, nil)
	}
	w.live.Add(ord)
	return ord
}

// bits returns the writer's copy of the posting for k.
func (w *writer) bits(k postingKey) *roaring.Bitmap {
	w.own()
	if b, ok := w.work[k]; ok {
		return b
	}
	b := roaring.New()
	if !w.empty {
		if raw, _ := w.txn.First(tablePostings, indexID, k.String()); raw != nil {
			b = raw.(*posting).bits.Clone()
		}
	}
	w.work[k] = b
	return b
}

// insert writes obj and commits the transaction every MaxTxnRecords
// writes.
func (w *writer) insert(table string, obj any) error {
	if err := w.txn.Insert(table, obj); err != nil {
		return err
	}
	w.flush()
	return nil
}

// flush counts one write and commits the transaction every MaxTxnRecords.
func (w *writer) flush() {
	w.pending++
	if w.pending == MaxTxnRecords {
		w.txn.Commit()
		w.txn = w.db.Txn(true)
		w.pending = 0
	}
}

// writePostings writes every changed posting, and removes the empty ones.
func (w *writer) writePostings() error {
	for k, b := range w.work {
		s := k.String()
		if b.IsEmpty() {
			if _, err := w.txn.DeleteAll(tablePostings, indexID, s); err != nil {
				return fmt.Errorf("disposition: delete posting: %w", err)
			}
		} else {
			b.RunOptimize()
			if err := w.txn.Insert(tablePostings, &posting{key: s, bits: b}); err != nil {
				return fmt.Errorf("disposition: write posting: %w", err)
			}
		}
		w.flush()
	}
	return nil
}

// diffPostings calls remove with the postings old has and n has not, and
// add with those n has and old has not.
func diffPostings(old, n *Node, remove, add func(postingKey)) {
	for f := FieldKind; f <= FieldHealth; f++ {
		if a, b := stringField(old, f), stringField(n, f); a != b {
			if a != "" {
				remove(postingKey{field: f, value: a})
			}
			if b != "" {
				add(postingKey{field: f, value: b})
			}
		}
	}
	diffMap(FieldLabels, old.Labels, n.Labels, remove, add)
	diffMap(FieldVersions, old.Versions, n.Versions, remove, add)
}

func diffMap(f Field, old, n map[string]string, remove, add func(postingKey)) {
	for k, v := range old {
		if nv, ok := n[k]; !ok || nv != v {
			remove(postingKey{field: f, sub: k, value: v})
		}
	}
	for k, v := range n {
		if ov, ok := old[k]; !ok || ov != v {
			add(postingKey{field: f, sub: k, value: v})
		}
	}
}

// changes are the writes of one Apply.
type changes struct {
	upserts []*Node
	deletes []string
}

// merge returns the nodes of all, ordered by ID, with ch applied. It costs
// one pass over all plus sorting the changes.
func merge(all []*Node, ch changes) []*Node {
	if !slices.IsSortedFunc(ch.upserts, byID) {
		slices.SortFunc(ch.upserts, byID)
	}
	slices.Sort(ch.deletes)
	out := make([]*Node, 0, len(all)+len(ch.upserts)-len(ch.deletes))
	ups, dels := ch.upserts, ch.deletes
	for _, n := range all {
		for len(ups) > 0 && ups[0].ID < n.ID {
			out = append(out, ups[0]) // inserted
			ups = ups[1:]
		}
		for len(dels) > 0 && dels[0] < n.ID {
			dels = dels[1:]
		}
		switch {
		case len(ups) > 0 && ups[0].ID == n.ID:
			out = append(out, ups[0]) // updated
			ups = ups[1:]
		case len(dels) > 0 && dels[0] == n.ID:
			dels = dels[1:]
		default:
			out = append(out, n)
		}
	}
	return append(out, ups...)
}

// Watch returns a channel that receives the index version after every
// Apply that changed it. A receiver that falls behind gets the latest
// version once rather than every one in between: it is a signal to look
// again, not a change feed. The channel is closed when ctx is done.
func (ix *Index) Watch(ctx context.Context) <-chan uint64 {
	ch := make(chan uint64, 1)
	p := ix.pub.Load()
	go func() {
		defer close(ch)
		for {
			select {
			case <-ctx.Done():
				return
			case <-p.next:
			}
			p = ix.pub.Load()
			for {
				select {
				case ch <- p.version:
				case <-ctx.Done():
					return
				default:
					// Full: replace the unread version with the newer one.
					select {
					case <-ch:
					default:
					}
					continue
				}
				break
			}
		}
	}()
	return ch
}
