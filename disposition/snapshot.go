package disposition

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/go-memdb"
)

// maxDriverTuples bounds the lookups one query term may fan out into
// (metro=A,B,C is 3). Past it the term only filters.
const maxDriverTuples = 64

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
func (s *Snapshot) Get(id string) (*Node, bool) {
	raw, err := s.txn().First(tableNodes, indexID, id)
	if err != nil || raw == nil {
		return nil, false
	}
	return raw.(*Node), true
}

// Query returns the nodes matching q, ordered by ID. The nodes are shared:
// do not modify them.
func (s *Snapshot) Query(q Query) ([]*Node, error) {
	ms, err := compile(q)
	if err != nil {
		return nil, err
	}
	if d := s.driver(ms); d != nil {
		return d.matching(ms), nil
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
	if d := s.driver(ms); d != nil {
		for _, n := range d.matching(ms) {
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

// driver picks the index lookups that yield the fewest candidates for ms,
// or nil when no term can use an index. Candidate lookups are run in
// lockstep and the first to finish wins, so the choice is exact and costs
// at most a few times the winner's size, with no statistics to keep.
func (s *Snapshot) driver(ms []*matcher) *cursor {
	txn := s.txn()
	eq := map[Field]*matcher{}
	var cands []*cursor
	for _, m := range ms {
		switch {
		case m.op != Eq:
		case m.field == FieldLabels:
			c := &cursor{txn: txn, index: indexLabels}
			for _, v := range m.values {
				c.tuples = append(c.tuples, []any{m.key, v})
			}
			cands = append(cands, c)
		case eq[m.field] == nil:
			eq[m.field] = m
		}
	}
	for _, def := range indexPlan() {
		m := eq[def.field]
		if m == nil || len(m.values) > maxDriverTuples {
			continue
		}
		vals := m.values
		if m.enums != nil {
			vals = make([]string, len(m.enums))
			for i, e := range m.enums {
				vals[i] = enumName(def.field, e)
			}
		}
		if slices.Contains(vals, def.omitted) {
			continue // a partial index does not hold that value
		}
		c := &cursor{txn: txn, index: def.name}
		for _, v := range vals {
			c.tuples = append(c.tuples, []any{v})
		}
		if def.name == indexID {
			return c
		}
		cands = append(cands, c)
	}
	switch len(cands) {
	case 0:
		return nil
	case 1:
		return cands[0]
	}
	for {
		for _, c := range cands {
			if !c.step() {
				return c
			}
		}
	}
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

// cursor walks the results of one or more lookups on one index.
type cursor struct {
	txn    *memdb.Txn
	index  string
	tuples [][]any
	it     memdb.ResultIterator
	buf    []*Node
}

// step reads one more node into buf and reports whether there may be more.
func (c *cursor) step() bool {
	for {
		if c.it == nil {
			if len(c.tuples) == 0 {
				return false
			}
			it, err := c.txn.Get(tableNodes, c.index, c.tuples[0]...)
			c.tuples = c.tuples[1:]
			if err != nil {
				continue // an argument the index cannot hold matches nothing
			}
			c.it = it
		}
		if raw := c.it.Next(); raw != nil {
			c.buf = append(c.buf, raw.(*Node))
			return true
		}
		c.it = nil
	}
}

// matching reads the rest of the cursor and returns the nodes that match
// ms, ordered by ID. It filters in place: the cursor is used up.
func (c *cursor) matching(ms []*matcher) []*Node {
	for c.step() {
	}
	out := c.buf[:0]
	for _, n := range c.buf {
		if matchAll(ms, n) {
			out = append(out, n)
		}
	}
	// One lookup yields ID order; several (metro=A,B) need a sort.
	if !slices.IsSortedFunc(out, byID) {
		slices.SortFunc(out, byID)
	}
	return out
}
