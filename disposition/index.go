package disposition

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

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

// published is one version of the index as readers see it.
type published struct {
	db      *memdb.MemDB // a memdb snapshot, never written
	version uint64
	// all holds every node ordered by ID, for full scans: walking the
	// radix tree costs a few cache misses a node, ten times a slice.
	all  []*Node
	next chan struct{} // closed when a newer version is published
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
	ix.pub.Store(&published{db: ix.db.Snapshot(), next: make(chan struct{})})
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
	res, ch, err := ix.write(b, len(cur.all) == 0)
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
	ix.pub.Store(&published{
		db:      ix.db.Snapshot(),
		version: res.Version,
		all:     merge(cur.all, ch),
		next:    make(chan struct{}),
	})
	close(cur.next)
	return res, nil
}

// write applies b to ix.db in transactions of at most MaxTxnRecords
// writes. When the index is empty every upsert is an insert (Apply has
// ruled out duplicates) and the lookups are skipped. The caller holds ix.mu.
func (ix *Index) write(b Batch, empty bool) (ApplyResult, changes, error) {
	var res ApplyResult
	var ch changes
	txn := ix.db.Txn(true)
	defer func() { txn.Abort() }() // no-op after Commit
	pending := 0
	flush := func() {
		if pending == MaxTxnRecords {
			txn.Commit()
			txn = ix.db.Txn(true)
			pending = 0
		}
	}
	for _, n := range b.Upserts {
		var old any
		if !empty {
			var err error
			if old, err = txn.First(tableNodes, indexID, n.ID); err != nil {
				return res, ch, fmt.Errorf("disposition: lookup %q: %w", n.ID, err)
			}
		}
		switch {
		case old == nil:
			res.Inserted++
		case old.(*Node).Equal(n):
			res.Unchanged++
			continue
		default:
			res.Updated++
		}
		ch.upserts = append(ch.upserts, n)
		if err := txn.Insert(tableNodes, n); err != nil {
			return res, ch, fmt.Errorf("disposition: write %q: %w", n.ID, err)
		}
		pending++
		flush()
	}
	for _, id := range b.Deletes {
		old, err := txn.First(tableNodes, indexID, id)
		if err != nil {
			return res, ch, fmt.Errorf("disposition: lookup %q: %w", id, err)
		}
		if old == nil {
			continue
		}
		if err := txn.Delete(tableNodes, old); err != nil {
			return res, ch, fmt.Errorf("disposition: delete %q: %w", id, err)
		}
		ch.deletes = append(ch.deletes, id)
		res.Deleted++
		pending++
		flush()
	}
	txn.Commit()
	return res, ch, nil
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
