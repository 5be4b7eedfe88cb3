package disposition

import (
	"fmt"

	"github.com/hashicorp/go-memdb"
)

const tableNodes = "nodes"

// Index names of the nodes table. Every non-unique index key is the field
// value followed by a NUL byte, so a lookup of "DEN" never matches "DEN1".
const (
	indexID           = "id"
	indexMetro        = "metro"
	indexCluster      = "cluster"
	indexRole         = "role"
	indexState        = "state"
	indexReleaseState = "release_state"
	indexHealth       = "health"
	indexLabels       = "labels"
)

// schema declares the nodes table as data. The indexers are hand-written
// over *Node instead of memdb's reflection-based StringFieldIndex and
// StringMapFieldIndex (same key layout), which saves the reflection on
// every write.
//
// Every index entry costs about 400 bytes and a dozen allocations in
// go-immutable-radix, so the schema indexes only what can drive a query:
//   - state and health are partial indexes that leave out the value nearly
//     every server has (in-service, healthy); a query for that value would
//     select most of the fleet, where a scan is as fast as an index;
//   - there are no compound indexes: Query races the candidate lookups and
//     drives from the smallest (see Snapshot.driver), so metro=DEN
//     health=down reads the few down servers and filters them, which a
//     metro_health index would speed up by microseconds at the price of
//     another entry per server.
func schema() *memdb.DBSchema {
	single := func(name string, x memdb.Indexer, unique bool) *memdb.IndexSchema {
		return &memdb.IndexSchema{Name: name, Unique: unique, AllowMissing: !unique, Indexer: x}
	}
	indexes := []*memdb.IndexSchema{
		single(indexID, idIndexer{fieldIndexer(FieldID)}, true),
		single(indexMetro, fieldIndexer(FieldMetro), false),
		single(indexCluster, fieldIndexer(FieldCluster), false),
		single(indexRole, fieldIndexer(FieldRole), false),
		single(indexState, sparseIndexer{FieldState, StateInService.String()}, false),
		single(indexReleaseState, fieldIndexer(FieldReleaseState), false),
		single(indexHealth, sparseIndexer{FieldHealth, HealthHealthy.String()}, false),
		{Name: indexLabels, AllowMissing: true, Indexer: labelIndexer{}},
	}
	t := &memdb.TableSchema{Name: tableNodes, Indexes: map[string]*memdb.IndexSchema{}}
	for _, ix := range indexes {
		t.Indexes[ix.Name] = ix
	}
	return &memdb.DBSchema{Tables: map[string]*memdb.TableSchema{tableNodes: t}}
}

// indexPlan says which indexes can drive a lookup on which fields, most
// specific first.
func indexPlan() []indexDef {
	return []indexDef{
		{indexID, FieldID, ""},
		{indexMetro, FieldMetro, ""},
		{indexCluster, FieldCluster, ""},
		{indexRole, FieldRole, ""},
		{indexState, FieldState, StateInService.String()},
		{indexReleaseState, FieldReleaseState, ""},
		{indexHealth, FieldHealth, HealthHealthy.String()},
	}
}

type indexDef struct {
	name    string
	field   Field
	omitted string // the value a partial index leaves out
}

// fieldIndexer indexes one string-valued field of a Node.
type fieldIndexer Field

func (f fieldIndexer) FromObject(obj any) (bool, []byte, error) {
	n, ok := obj.(*Node)
	if !ok {
		return false, nil, fmt.Errorf("disposition: indexing %T, want *Node", obj)
	}
	v := stringField(n, Field(f))
	if v == "" {
		return false, nil, nil
	}
	return true, keyFor(v, n), nil
}

func (f fieldIndexer) FromArgs(args ...any) ([]byte, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("disposition: %s index takes 1 argument, got %d", Field(f), len(args))
	}
	s, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("disposition: %s index argument is %T, want string", Field(f), args[0])
	}
	return key(s), nil
}

// idIndexer indexes the primary key. Its index is unique, so memdb
// appends nothing to its keys: they are allocated to their exact length.
type idIndexer struct{ fieldIndexer }

func (idIndexer) FromObject(obj any) (bool, []byte, error) {
	n, ok := obj.(*Node)
	if !ok {
		return false, nil, fmt.Errorf("disposition: indexing %T, want *Node", obj)
	}
	if n.ID == "" {
		return false, nil, nil
	}
	return true, key(n.ID), nil
}

// sparseIndexer indexes one field except for one common value.
type sparseIndexer struct {
	field   Field
	omitted string
}

func (x sparseIndexer) FromObject(obj any) (bool, []byte, error) {
	n, ok := obj.(*Node)
	if !ok {
		return false, nil, fmt.Errorf("disposition: indexing %T, want *Node", obj)
	}
	v := stringField(n, x.field)
	if v == "" || v == x.omitted {
		return false, nil, nil
	}
	return true, keyFor(v, n), nil
}

func (x sparseIndexer) FromArgs(args ...any) ([]byte, error) {
	return fieldIndexer(x.field).FromArgs(args...)
}

// labelIndexer indexes every label as key NUL value NUL, the layout of
// memdb.StringMapFieldIndex.
type labelIndexer struct{}

func (labelIndexer) FromObject(obj any) (bool, [][]byte, error) {
	n, ok := obj.(*Node)
	if !ok {
		return false, nil, fmt.Errorf("disposition: indexing %T, want *Node", obj)
	}
	if len(n.Labels) == 0 {
		return false, nil, nil
	}
	// One buffer holds every key, each with room after it for the node's
	// primary key, which memdb appends in place.
	size := 0
	for k, v := range n.Labels {
		size += len(k) + len(v) + 2 + len(n.ID) + 1
	}
	buf := make([]byte, 0, size)
	keys := make([][]byte, 0, len(n.Labels))
	for k, v := range n.Labels {
		if k == "" || v == "" {
			continue
		}
		start := len(buf)
		buf = append(append(append(append(buf, k...), 0), v...), 0)
		end := len(buf)
		room := end + len(n.ID) + 1
		keys = append(keys, buf[start:end:room])
		buf = buf[:room]
	}
	return len(keys) > 0, keys, nil
}

func (labelIndexer) FromArgs(args ...any) ([]byte, error) {
	if len(args) != 2 {
		return nil, fmt.Errorf("disposition: labels index takes 2 arguments, got %d", len(args))
	}
	k, ok1 := args[0].(string)
	v, ok2 := args[1].(string)
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("disposition: labels index arguments are %T, %T, want strings", args[0], args[1])
	}
	b := make([]byte, 0, len(k)+len(v)+2)
	return append(append(append(append(b, k...), 0), v...), 0), nil
}

// keyFor is key(s) with room for the node's primary key, which memdb
// appends to the keys of non-unique indexes: the append then needs no
// second allocation and copy.
func keyFor(s string, n *Node) []byte {
	b := make([]byte, len(s)+1, len(s)+1+len(n.ID)+1)
	copy(b, s)
	return b
}

func key(s string) []byte {
	b := make([]byte, len(s)+1)
	copy(b, s)
	return b
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
