package disposition

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/hashicorp/go-memdb"
)

// Snapshot is a consistent, read-only view of one version of an Index.
// It is safe for concurrent use.
type Snapshot struct {
	pub *published
}

// txn opens a read transaction on the snapshot's database. memdb does not
// document a Txn as safe for concurrent use, so each call takes its own;
// a read transaction is two small allocations.
func (s *Snapshot) txn() *memdb.Txn { return s.pub.db.Txn(false) }

// Version returns the index version this snapshot shows.
func (s *Snapshot) Version() uint64 { return s.pub.version }

// Len returns the number of nodes.
func (s *Snapshot) Len() int { return len(s.pub.all) }

// Changed returns a channel that is closed once the index has moved past
// this snapshot's version.
func (s *Snapshot) Changed() <-chan struct{} { return s.pub.next }

// Get returns the node with the given ID. The node is shared: do not
// modify it.
//
// It binary-searches the version's ID-ordered slice: no transaction, no
// allocation, a third of a memdb lookup's time.
func (s *Snapshot) Get(id string) (*Node, bool) {
	all := s.pub.all
	i, ok := slices.BinarySearchFunc(all, id, func(n *Node, id string) int { return strings.Compare(n.ID, id) })
	if !ok {
		return nil, false
	}
	return all[i], true
}

// Query returns the nodes matching q, ordered by ID. The nodes are shared:
// do not modify them.
func (s *Snapshot) Query(q Query) ([]*Node, error) {
	ms, err := compile(q)
	if err != nil {
		return nil, err
	}
	if c, ok := s.candidates(ms); ok {
		return c, nil
	}
	var out []*Node
	s.scanAll(func(n *Node) bool {
		if matchAll(ms, n) {
			out = append(out, n)
		}
		return true
	})
	return out, nil
}

// Scan calls fn for every node matching q, in ID order, until fn returns
// false. The nodes are shared: do not modify them.
func (s *Snapshot) Scan(q Query, fn func(*Node) bool) error {
	ms, err := compile(q)
	if err != nil {
		return err
	}
	if c, ok := s.candidates(ms); ok {
		for _, n := range c {
			if !fn(n) {
				break
			}
		}
		return nil
	}
	s.scanAll(func(n *Node) bool { return !matchAll(ms, n) || fn(n) })
	return nil
}

func (s *Snapshot) scanAll(fn func(*Node) bool) {
	for _, n := range s.pub.all {
		if !fn(n) {
			return
		}
	}
}

func byID(a, b *Node) int { return strings.Compare(a.ID, b.ID) }

func matchAll(ms []*matcher, n *Node) bool {
	for _, m := range ms {
		if !m.match(n) {
			return false
		}
	}
	return true
}

// Group is one group of an aggregation.
type Group struct {
	// Key holds the group's value of each grouping field, in order; an
	// absent label or version is "".
	Key          []string `json:"key"`
	Count        int      `json:"count"`
	TrafficGbps  float64  `json:"traffic_gbps"`
	CapacityGbps float64  `json:"capacity_gbps"`
}

// Aggregate counts the nodes matching q, and sums their traffic and
// capacity, grouped by the given fields (any query field, label.<key> or
// version.<component>). Groups are ordered by key. With no fields it
// returns one group for the whole match.
func (s *Snapshot) Aggregate(q Query, by ...string) ([]Group, error) {
	type sel struct {
		f   Field
		key string
	}
	sels := make([]sel, len(by))
	for i, name := range by {
		f, k, err := parseSelector(name)
		if err != nil {
			return nil, fmt.Errorf("%w: group by %q: %v", ErrInvalidQuery, name, err)
		}
		sels[i] = sel{f, k}
	}
	value := func(n *Node, s sel) string {
		switch s.f {
		case FieldLabels:
			return n.Labels[s.key]
		case FieldVersions:
			return n.Versions[s.key]
		}
		return stringField(n, s.f)
	}
	groups := map[string]*Group{}
	var buf []byte
	err := s.Scan(q, func(n *Node) bool {
		buf = buf[:0]
		for _, sl := range sels {
			buf = append(append(buf, value(n, sl)...), 0)
		}
		g := groups[string(buf)]
		if g == nil {
			g = &Group{Key: make([]string, len(sels))}
			for i, sl := range sels {
				g.Key[i] = value(n, sl)
			}
			groups[string(buf)] = g
		}
		g.Count++
		g.TrafficGbps += n.TrafficGbps
		g.CapacityGbps += n.CapacityGbps
		return true
	})
	if err != nil {
		return nil, err
	}
	out := make([]Group, 0, len(groups))
	for _, g := range groups {
		out = append(out, *g)
	}
	slices.SortFunc(out, func(a, b Group) int { return slices.Compare(a.Key, b.Key) })
	if len(by) == 0 && len(out) == 0 {
		out = append(out, Group{Key: []string{}})
	}
	return out, nil
}

// candidates returns the nodes matching ms, in ID order, when an index
// can answer: id=... reads the named nodes; every other equality or
// negation term on an indexed field, label or version is a posting bitmap,
// and the bitmaps are intersected (equalities, smallest first) and
// subtracted (negations), so the most selective term bounds the work and
// no combination needs a compound index. Terms no posting answers (version
// order, id!=...) filter what is left. It returns false when no term can
// use an index: a scan of every node is then as fast.
func (s *Snapshot) candidates(ms []*matcher) ([]*Node, bool) {
	for _, m := range ms {
		if m.field == FieldID && m.op == Eq {
			return s.byIDs(m.values, ms), true
		}
	}
	txn := s.txn()
	var eqs, nes []*roaring.Bitmap
	var rest []*matcher
	for _, m := range ms {
		if !indexed(m.field, m.op) {
			rest = append(rest, m)
			continue
		}
		b := s.union(txn, m)
		if m.op == Eq {
			eqs = append(eqs, b)
		} else {
			nes = append(nes, b)
		}
	}
	if len(eqs)+len(nes) == 0 {
		return nil, false
	}
	var set *roaring.Bitmap
	switch len(eqs) {
	case 0:
		set = s.pub.live.Clone()
	case 1:
		set = eqs[0].Clone()
	default:
		slices.SortFunc(eqs, func(a, b *roaring.Bitmap) int {
			return cmp.Compare(a.GetCardinality(), b.GetCardinality())
		})
		set = roaring.FastAnd(eqs...)
	}
	for _, b := range nes {
		if set.IsEmpty() {
			break
		}
		set.AndNot(b)
	}
	// Ordinals follow ID order except the late ones (nodes inserted out
	// of order since the build): those few are sorted apart and merged.
	var late []*Node
	if s.pub.late.Intersects(set) {
		lateSet := roaring.And(set, s.pub.late)
		set.AndNot(lateSet)
		late = s.nodes(lateSet, rest, nil)
		slices.SortFunc(late, byID)
	}
	out := s.nodes(set, rest, make([]*Node, 0, set.GetCardinality()+uint64(len(late))))
	if len(late) > 0 {
		out = mergeByID(out, late)
	}
	return out, true
}

// nodes appends to out the nodes at the ordinals of set that match ms, in
// ordinal order.
func (s *Snapshot) nodes(set *roaring.Bitmap, ms []*matcher, out []*Node) []*Node {
	it := set.ManyIterator()
	var buf [256]uint32
	for k := it.NextMany(buf[:]); k > 0; k = it.NextMany(buf[:]) {
		for _, ord := range buf[:k] {
			if n := s.pub.slots[ord]; matchAll(ms, n) {
				out = append(out, n)
			}
		}
	}
	return out
}

// mergeByID merges b, sorted by ID, into a, sorted by ID, in place: a has
// room for b.
func mergeByID(a, b []*Node) []*Node {
	i, j := len(a)-1, len(b)-1
	a = a[:len(a)+len(b)]
	for k := len(a) - 1; j >= 0; k-- {
		if i >= 0 && a[i].ID > b[j].ID {
			a[k] = a[i]
			i--
		} else {
			a[k] = b[j]
			j--
		}
	}
	return a
}

// union returns the nodes that have one of m's values, as a bitmap the
// caller must not modify.
func (s *Snapshot) union(txn *memdb.Txn, m *matcher) *roaring.Bitmap {
	var bs []*roaring.Bitmap
	add := func(k postingKey) {
		if raw, _ := txn.First(tablePostings, indexID, k.String()); raw != nil {
			bs = append(bs, raw.(*posting).bits)
		}
	}
	switch {
	case m.enums != nil:
		for _, e := range m.enums {
			add(postingKey{field: m.field, value: enumName(m.field, e)})
		}
	default:
		for _, v := range m.values {
			add(postingKey{field: m.field, sub: m.key, value: v})
		}
	}
	switch len(bs) {
	case 0:
		return roaring.New()
	case 1:
		return bs[0]
	}
	return roaring.FastOr(bs...)
}

// byIDs returns the nodes with the given IDs that match ms, in ID order.
func (s *Snapshot) byIDs(ids []string, ms []*matcher) []*Node {
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	var out []*Node
	for _, id := range ids {
		if n, ok := s.Get(id); ok && matchAll(ms, n) {
			out = append(out, n)
		}
	}
	return out
}

func enumName(f Field, v uint8) string {
	switch f {
	case FieldKind:
		return Kind(v).String()
	case FieldState:
		return State(v).String()
	}
	return Health(v).String()
}
