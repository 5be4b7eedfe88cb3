package disposition

import (
	"encoding/binary"
	"fmt"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/hashicorp/go-memdb"
)

// The index keeps two go-memdb tables. "nodes" holds one row per node,
// under a unique index on its ID. "postings" holds one row per indexed
// value (metro=DEN, label tier=1, version cdn-app=3.2.0, ...): the set of
// nodes that have it, as a compressed bitmap of the nodes' ordinals.
//
// Why not one go-memdb index per field: every memdb index entry costs
// about 400 bytes and a dozen allocations in go-immutable-radix (a radix
// node and a leaf, each with its own channel), and an update rewrites
// every index's leaf for the node, because the leaf holds the object. With
// eight indexes that was 3.1 KB and 65 allocations per node, twice the
// heap budget, and a traffic-only change paid for eight tree writes. A
// posting bitmap costs a few bytes per node, a write touches only the
// values that changed, and any combination of terms is an intersection of
// bitmaps, so no compound index is needed for any query.
const (
	tableNodes    = "nodes"
	tablePostings = "postings"
	indexID       = "id"
)

// row is what the nodes table stores: the node and its ordinal, its bit in
// the posting bitmaps and its slot in published.slots.
type row struct {
	node *Node
	ord  uint32
}

// posting is the set of nodes that have one value of one field.
type posting struct {
	key  string // postingKey.String()
	bits *roaring.Bitmap
}

// schema declares the two tables as data, one function per table. The
// indexers are hand-written over the row types: memdb's reflection
// indexers cannot read unexported fields, and reflection on every write is
// a cost for nothing.
func schema() *memdb.DBSchema {
	return &memdb.DBSchema{Tables: map[string]*memdb.TableSchema{
		tableNodes:    nodesTable(),
		tablePostings: postingsTable(),
	}}
}

// nodesTable holds one row per node, under a unique index on its ID.
func nodesTable() *memdb.TableSchema {
	return &memdb.TableSchema{Name: tableNodes, Indexes: map[string]*memdb.IndexSchema{
		indexID: {Name: indexID, Unique: true, Indexer: rowIndexer{}},
	}}
}

// postingsTable holds one posting per indexed value, under a unique index
// on its key.
func postingsTable() *memdb.TableSchema {
	return &memdb.TableSchema{Name: tablePostings, Indexes: map[string]*memdb.IndexSchema{
		indexID: {Name: indexID, Unique: true, Indexer: postingIndexer{}},
	}}
}

// rowIndexer keys rows by node ID. The index is unique, so memdb appends
// nothing to its keys: they are allocated to their exact length.
type rowIndexer struct{}

func (rowIndexer) FromObject(obj any) (bool, []byte, error) {
	r, ok := obj.(*row)
	if !ok {
		return false, nil, fmt.Errorf("disposition: indexing %T, want node row", obj)
	}
	return r.node.ID != "", key(r.node.ID), nil
}

func (rowIndexer) FromArgs(args ...any) ([]byte, error) { return stringArg(args) }

// postingIndexer keys postings by their key.
type postingIndexer struct{}

func (postingIndexer) FromObject(obj any) (bool, []byte, error) {
	p, ok := obj.(*posting)
	if !ok {
		return false, nil, fmt.Errorf("disposition: indexing %T, want posting", obj)
	}
	return true, key(p.key), nil
}

func (postingIndexer) FromArgs(args ...any) ([]byte, error) { return stringArg(args) }

func stringArg(args []any) ([]byte, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("disposition: lookup takes 1 argument, got %d", len(args))
	}
	s, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("disposition: lookup argument is %T, want string", args[0])
	}
	return key(s), nil
}

// key is s NUL-terminated, the layout of memdb's string indexes, so that a
// prefix scan for "DEN" never matches "DEN1".
func key(s string) []byte {
	b := make([]byte, len(s)+1)
	copy(b, s)
	return b
}

// postingKey names one posting: a field and a value, with the label key or
// version component for labels and versions. It is comparable, so the
// writer keys its working set by it without building strings.
type postingKey struct {
	field Field
	sub   string // label key or version component; "" for scalar fields
	value string
}

// String is the posting's key in the postings table: the field, the
// length of sub, sub and the value, which is unambiguous whatever bytes
// label keys and values hold.
func (k postingKey) String() string {
	b := make([]byte, 0, 1+binary.MaxVarintLen64+len(k.sub)+len(k.value))
	b = append(b, byte(k.field))
	b = binary.AppendUvarint(b, uint64(len(k.sub)))
	b = append(append(b, k.sub...), k.value...)
	return string(b)
}

// indexed reports whether a query term on f with operator op can be
// answered from postings.
func indexed(f Field, op Op) bool {
	return op <= Ne && f != FieldID && (f <= FieldHealth || f == FieldLabels || f == FieldVersions)
}

// postingKeys calls fn with every posting n belongs to. Absent values
// (empty strings, unknown kind or state) have none.
func postingKeys(n *Node, fn func(postingKey)) {
	for f := FieldKind; f <= FieldHealth; f++ { // every scalar but the ID
		if v := stringField(n, f); v != "" {
			fn(postingKey{field: f, value: v})
		}
	}
	for k, v := range n.Labels {
		fn(postingKey{field: FieldLabels, sub: k, value: v})
	}
	for c, v := range n.Versions {
		fn(postingKey{field: FieldVersions, sub: c, value: v})
	}
}

// Text returns the value of one of n's text fields, FieldID through
// FieldHealth (enums by name), and false for the numbers and maps
// (versions, traffic, capacity, labels), whose text form is the caller's
// choice.
func (n *Node) Text(f Field) (string, bool) {
	if f > FieldHealth {
		return "", false
	}
	return stringField(n, f), true
}

// stringField returns the value of a scalar field as text; enums give
// their names and numbers their decimal form.
func stringField(n *Node, f Field) string {
	switch f {
	case FieldID:
		return n.ID
	case FieldKind:
		return n.Kind.String()
	case FieldRegion:
		return n.Region
	case FieldMetro:
		return n.Metro
	case FieldSite:
		return n.Site
	case FieldCluster:
		return n.Cluster
	case FieldRack:
		return n.Rack
	case FieldTimezone:
		return n.Timezone
	case FieldRole:
		return n.Role
	case FieldPlatform:
		return n.Platform
	case FieldState:
		return n.State.String()
	case FieldReleaseState:
		return n.ReleaseState
	case FieldHealth:
		return n.Health.String()
	}
	return ""
}
