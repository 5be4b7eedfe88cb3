package rollout

import (
	"fmt"
	"slices"
	"strings"

	"github.com/Masterminds/semver/v3"

	"github.com/fleetkit/fleetkit/disposition"
)

// nodeMatcher evaluates a parsed disposition query on one node, with the
// semantics of Snapshot.Query: it lets the planner select targets in the
// same single pass over the snapshot that counts every domain, instead of
// one index query per clause and a sort by ID each. The property tests
// check it against Snapshot.Query through plancheck.
type nodeMatcher []func(n *disposition.Node) bool

func (m nodeMatcher) match(n *disposition.Node) bool {
	for _, f := range m {
		if !f(n) {
			return false
		}
	}
	return true
}

func compileMatcher(q disposition.Query) (nodeMatcher, error) {
	var out nodeMatcher
	for _, t := range q.Terms {
		f, err := compileTermMatcher(t)
		if err != nil {
			return nil, fmt.Errorf("term %q: %w", t.String(), err)
		}
		out = append(out, f)
	}
	return out, nil
}

func compileTermMatcher(t disposition.Term) (func(n *disposition.Node) bool, error) {
	eq := t.Op == disposition.Eq
	vals := t.Values
	inSet := func(v string, present bool) bool { return (present && slices.Contains(vals, v)) == eq }
	if k, ok := strings.CutPrefix(t.Field, "label."); ok {
		return func(n *disposition.Node) bool { v, ok := n.Labels[k]; return inSet(v, ok) }, nil
	}
	if k, ok := strings.CutPrefix(t.Field, "version."); ok {
		if t.Op <= disposition.Ne {
			return func(n *disposition.Node) bool { v, ok := n.Versions[k]; return inSet(v, ok) }, nil
		}
		bound, err := semver.NewVersion(vals[0])
		if err != nil {
			return nil, err
		}
		op := t.Op
		cache := map[string]*semver.Version{}
		return func(n *disposition.Node) bool {
			v, ok := n.Versions[k]
			if !ok {
				return false
			}
			sv, seen := cache[v]
			if !seen {
				sv, _ = semver.NewVersion(v) // nil when not a version: never matches
				cache[v] = sv
			}
			if sv == nil {
				return false
			}
			c := sv.Compare(bound)
			switch op {
			case disposition.Lt:
				return c < 0
			case disposition.Le:
				return c <= 0
			case disposition.Gt:
				return c > 0
			}
			return c >= 0
		}, nil
	}
	f, err := disposition.ParseField(t.Field)
	if err != nil {
		return nil, err
	}
	enumSet := func(parse func(string) (uint8, error)) ([]uint8, error) {
		var out []uint8
		for _, v := range vals {
			e, err := parse(v)
			if err != nil {
				return nil, err
			}
			out = append(out, e)
		}
		return out, nil
	}
	switch f {
	case disposition.FieldKind, disposition.FieldState, disposition.FieldHealth:
		var parse func(string) (uint8, error)
		var get func(n *disposition.Node) uint8
		switch f {
		case disposition.FieldKind:
			parse = func(s string) (uint8, error) { v, err := disposition.ParseKind(s); return uint8(v), err }
			get = func(n *disposition.Node) uint8 { return uint8(n.Kind) }
		case disposition.FieldState:
			parse = func(s string) (uint8, error) { v, err := disposition.ParseState(s); return uint8(v), err }
			get = func(n *disposition.Node) uint8 { return uint8(n.State) }
		default:
			parse = func(s string) (uint8, error) { v, err := disposition.ParseHealth(s); return uint8(v), err }
			get = func(n *disposition.Node) uint8 { return uint8(n.Health) }
		}
		set, err := enumSet(parse)
		if err != nil {
			return nil, err
		}
		return func(n *disposition.Node) bool { return slices.Contains(set, get(n)) == eq }, nil
	}
	get, err := stringGetter(f)
	if err != nil {
		return nil, err
	}
	return func(n *disposition.Node) bool { v := get(n); return inSet(v, v != "") }, nil
}

func stringGetter(f disposition.Field) (func(n *disposition.Node) string, error) {
	switch f {
	case disposition.FieldID:
		return func(n *disposition.Node) string { return n.ID }, nil
	case disposition.FieldRegion:
		return func(n *disposition.Node) string { return n.Region }, nil
	case disposition.FieldMetro:
		return func(n *disposition.Node) string { return n.Metro }, nil
	case disposition.FieldSite:
		return func(n *disposition.Node) string { return n.Site }, nil
	case disposition.FieldCluster:
		return func(n *disposition.Node) string { return n.Cluster }, nil
	case disposition.FieldRack:
		return func(n *disposition.Node) string { return n.Rack }, nil
	case disposition.FieldTimezone:
		return func(n *disposition.Node) string { return n.Timezone }, nil
	case disposition.FieldRole:
		return func(n *disposition.Node) string { return n.Role }, nil
	case disposition.FieldPlatform:
		return func(n *disposition.Node) string { return n.Platform }, nil
	case disposition.FieldReleaseState:
		return func(n *disposition.Node) string { return n.ReleaseState }, nil
	}
	return nil, fmt.Errorf("cannot match on field %s", f)
}
