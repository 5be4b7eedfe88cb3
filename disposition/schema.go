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
	indexMetroHealth  = "metro_health"
	indexRoleState    = "role_state"
)

// schema declares the nodes table as data. The indexers are hand-written
// over *Node instead of memdb's reflection-based StringFieldIndex and
// StringMapFieldIndex (same key layout), which halves the cost of a write.
func schema() *memdb.DBSchema {
	single := func(name string, x memdb.Indexer, unique bool) *memdb.IndexSchema {
		return &memdb.IndexSchema{Name: name, Unique: unique, AllowMissing: !unique, Indexer: x}
	}
	compound := func(name string, xs ...memdb.Indexer) *memdb.IndexSchema {
		return &memdb.IndexSchema{Name: name, AllowMissing: true, Indexer: &memdb.CompoundIndex{Indexes: xs}}
	}
	indexes := []*memdb.IndexSchema{
		single(indexID, fieldIndexer(FieldID), true),
		single(indexMetro, fieldIndexer(FieldMetro), false),
		single(indexCluster, fieldIndexer(FieldCluster), false),
		single(indexRole, fieldIndexer(FieldRole), false),
		single(indexState, fieldIndexer(FieldState), false),
		single(indexReleaseState, fieldIndexer(FieldReleaseState), false),
		single(indexHealth, fieldIndexer(FieldHealth), false),
		{Name: indexLabels, AllowMissing: true, Indexer: labelIndexer{}},
		compound(indexMetroHealth, fieldIndexer(FieldMetro), fieldIndexer(FieldHealth)),
		compound(indexRoleState, fieldIndexer(FieldRole), fieldIndexer(FieldState)),
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
		{indexID, []Field{FieldID}},
		{indexMetroHealth, []Field{FieldMetro, FieldHealth}},
		{indexRoleState, []Field{FieldRole, FieldState}},
		{indexMetro, []Field{FieldMetro}},
		{indexCluster, []Field{FieldCluster}},
		{indexRole, []Field{FieldRole}},
		{indexState, []Field{FieldState}},
		{indexReleaseState, []Field{FieldReleaseState}},
		{indexHealth, []Field{FieldHealth}},
	}
}

type indexDef struct {
	name   string
	fields []Field
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
	return true, key(v), nil
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
	keys := make([][]byte, 0, len(n.Labels))
	for k, v := range n.Labels {
		if k == "" || v == "" {
			continue
		}
		b := make([]byte, 0, len(k)+len(v)+2)
		b = append(append(append(append(b, k...), 0), v...), 0)
		keys = append(keys, b)
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

func key(s string) []byte {
	b := make([]byte, len(s)+1)
	copy(b, s)
	return b
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
