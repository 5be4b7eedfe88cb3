package disposition

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/Masterminds/semver/v3"
)

// ErrInvalidQuery is wrapped by every error about a malformed query.
var ErrInvalidQuery = errors.New("invalid query")

// Op is the comparison of a query term.
type Op uint8

// The operators of a query term. Eq and Ne take a set of values; the
// ordering operators apply only to version.<component> terms and compare
// semantic versions.
const (
	Eq Op = iota // field=a,b: the value is one of the set
	Ne           // field!=a,b: the value is none of the set (or absent)
	Lt           // version.c<1.2.0
	Le           // version.c<=1.2.0
	Gt           // version.c>1.2.0
	Ge           // version.c>=1.2.0
)

var opNames = [...]string{"=", "!=", "<", "<=", ">", ">="}

// String returns the operator as the query syntax writes it.
func (o Op) String() string {
	if int(o) < len(opNames) {
		return opNames[o]
	}
	return fmt.Sprintf("Op(%d)", uint8(o))
}

// Query is a conjunction of terms: a node matches when it matches every
// term. The zero Query matches every node.
//
// Its text form, parsed by ParseQuery, is terms separated by spaces:
//
//	metro=DEN,NYC role=edge health!=down label.tier=1 version.cdn-app<3.2.0
type Query struct {
	Terms []Term
}

// Term is one condition on one field.
type Term struct {
	// Field is a field name (id, kind, region, metro, site, cluster, rack,
	// timezone, role, platform, state, release_state, health), or
	// "label.<key>", or "version.<component>".
	Field  string
	Op     Op
	Values []string
}

// String returns the term in the query syntax, as ParseQuery reads it.
func (t Term) String() string {
	return t.Field + t.Op.String() + strings.Join(t.Values, ",")
}

// String returns the query in the syntax ParseQuery reads.
func (q Query) String() string {
	parts := make([]string, len(q.Terms))
	for i, t := range q.Terms {
		parts[i] = t.String()
	}
	return strings.Join(parts, " ")
}

// QueryError reports a bad term of a query.
type QueryError struct {
	Term  string // the term as written
	Index int    // its position, from 1
	Err   error
}

// Error implements the error interface.
func (e *QueryError) Error() string {
	return fmt.Sprintf("%v: term %d %q: %v", ErrInvalidQuery, e.Index, e.Term, e.Err)
}

// Unwrap returns ErrInvalidQuery and the cause, for errors.Is and errors.As.
func (e *QueryError) Unwrap() []error { return []error{ErrInvalidQuery, e.Err} }

// ParseQuery parses the text form of a query. The error of a bad term is a
// *QueryError naming it.
func ParseQuery(s string) (Query, error) {
	var q Query
	for i, raw := range strings.Fields(s) {
		t, err := ParseTerm(raw)
		if err != nil {
			return Query{}, &QueryError{Term: raw, Index: i + 1, Err: err}
		}
		q.Terms = append(q.Terms, t)
	}
	if _, err := compile(q); err != nil {
		return Query{}, err
	}
	return q, nil
}

// ParseTerm parses one term such as "metro=DEN,NYC" or "health!=down".
func ParseTerm(s string) (Term, error) {
	i := strings.IndexAny(s, "=!<>")
	if i < 0 {
		return Term{}, errors.New("no operator (want one of = != < <= > >=)")
	}
	if i == 0 {
		return Term{}, errors.New("missing field name before operator")
	}
	t := Term{Field: s[:i]}
	rest := s[i:]
	switch {
	case strings.HasPrefix(rest, "!="):
		t.Op, rest = Ne, rest[2:]
	case strings.HasPrefix(rest, "<="):
		t.Op, rest = Le, rest[2:]
	case strings.HasPrefix(rest, ">="):
		t.Op, rest = Ge, rest[2:]
	case strings.HasPrefix(rest, "="):
		t.Op, rest = Eq, rest[1:]
	case strings.HasPrefix(rest, "<"):
		t.Op, rest = Lt, rest[1:]
	case strings.HasPrefix(rest, ">"):
		t.Op, rest = Gt, rest[1:]
	default:
		return Term{}, fmt.Errorf("bad operator in %q", rest)
	}
	if rest == "" {
		return Term{}, errors.New("missing value after operator")
	}
	if strings.ContainsAny(rest, "=!<>") {
		return Term{}, fmt.Errorf("value %q contains an operator character", rest)
	}
	t.Values = strings.Split(rest, ",")
	if _, err := compileTerm(t); err != nil {
		return Term{}, err
	}
	return t, nil
}

// matcher is a compiled term.
type matcher struct {
	field  Field  // scalar field, or FieldLabels / FieldVersions
	key    string // label key or version component
	op     Op
	values []string        // for Eq / Ne
	enums  []uint8         // Eq / Ne on kind, state, health: parsed values
	bound  *semver.Version // for ordering ops
	cache  map[string]*semver.Version
}

// groupable fields: everything but the maps and the numbers.
func parseSelector(name string) (Field, string, error) {
	switch {
	case strings.HasPrefix(name, "label."):
		k := strings.TrimPrefix(name, "label.")
		if k == "" {
			return 0, "", errors.New(`empty label key after "label."`)
		}
		return FieldLabels, k, nil
	case strings.HasPrefix(name, "version."):
		c := strings.TrimPrefix(name, "version.")
		if c == "" {
			return 0, "", errors.New(`empty component after "version."`)
		}
		return FieldVersions, c, nil
	}
	f, err := ParseField(name)
	if err != nil || f == FieldVersions || f == FieldLabels || f == FieldTraffic || f == FieldCapacity {
		return 0, "", fmt.Errorf("unknown field %q (valid: id, kind, region, metro, site, cluster, rack, timezone, role, platform, state, release_state, health, label.<key>, version.<component>)", name)
	}
	return f, "", nil
}

func compileTerm(t Term) (*matcher, error) {
	f, key, err := parseSelector(t.Field)
	if err != nil {
		return nil, err
	}
	m := &matcher{field: f, key: key, op: t.Op, values: t.Values}
	if len(t.Values) == 0 {
		return nil, errors.New("no values")
	}
	for _, v := range t.Values {
		if v == "" {
			return nil, errors.New("empty value in list")
		}
	}
	if t.Op > Ne {
		if f != FieldVersions {
			return nil, fmt.Errorf("operator %s applies only to version.<component>", t.Op)
		}
		if len(t.Values) != 1 {
			return nil, fmt.Errorf("operator %s takes one value", t.Op)
		}
		b, err := semver.NewVersion(t.Values[0])
		if err != nil {
			return nil, fmt.Errorf("version %q: %v", t.Values[0], err)
		}
		m.bound, m.cache = b, map[string]*semver.Version{}
		return m, nil
	}
	var parse func(string) (uint8, error)
	switch f {
	case FieldKind:
		parse = func(s string) (uint8, error) { k, err := ParseKind(s); return uint8(k), err }
	case FieldState:
		parse = func(s string) (uint8, error) { v, err := ParseState(s); return uint8(v), err }
	case FieldHealth:
		parse = func(s string) (uint8, error) { v, err := ParseHealth(s); return uint8(v), err }
	}
	if parse != nil {
		for _, v := range t.Values {
			e, err := parse(v)
			if err != nil {
				return nil, err
			}
			m.enums = append(m.enums, e)
		}
	}
	return m, nil
}

func compile(q Query) ([]*matcher, error) {
	ms := make([]*matcher, len(q.Terms))
	for i, t := range q.Terms {
		m, err := compileTerm(t)
		if err != nil {
			return nil, &QueryError{Term: t.String(), Index: i + 1, Err: err}
		}
		ms[i] = m
	}
	return ms, nil
}

func (m *matcher) match(n *Node) bool {
	switch m.field {
	case FieldKind:
		return m.matchEnum(uint8(n.Kind))
	case FieldState:
		return m.matchEnum(uint8(n.State))
	case FieldHealth:
		return m.matchEnum(uint8(n.Health))
	case FieldLabels:
		v, ok := n.Labels[m.key]
		return m.matchString(v, ok)
	case FieldVersions:
		v, ok := n.Versions[m.key]
		if m.op <= Ne {
			return m.matchString(v, ok)
		}
		return ok && m.matchOrder(v)
	}
	v := stringField(n, m.field)
	return m.matchString(v, v != "")
}

func (m *matcher) matchEnum(v uint8) bool {
	return slices.Contains(m.enums, v) == (m.op == Eq)
}

func (m *matcher) matchString(v string, present bool) bool {
	in := present && slices.Contains(m.values, v)
	return in == (m.op == Eq)
}

func (m *matcher) matchOrder(v string) bool {
	sv, ok := m.cache[v]
	if !ok {
		sv, _ = semver.NewVersion(v) // nil when not a version: never matches
		m.cache[v] = sv
	}
	if sv == nil {
		return false
	}
	c := sv.Compare(m.bound)
	switch m.op {
	case Lt:
		return c < 0
	case Le:
		return c <= 0
	case Gt:
		return c > 0
	default:
		return c >= 0
	}
}

// MustParseQuery is ParseQuery for queries known to be valid, such as
// constants in code and tests; it panics on error.
func MustParseQuery(s string) Query {
	q, err := ParseQuery(s)
	if err != nil {
		panic(err)
	}
	return q
}

// Matcher is a compiled query that tests one node at a time, for callers
// that walk the nodes themselves (the rollout planner selects its targets
// in the same pass that counts every failure domain). A Matcher caches
// parsed versions and is not safe for concurrent use; compile one per
// goroutine.
type Matcher struct {
	ms []*matcher
}

// Compile compiles q into a Matcher with the semantics of Snapshot.Query.
func (q Query) Compile() (*Matcher, error) {
	ms, err := compile(q)
	if err != nil {
		return nil, err
	}
	return &Matcher{ms: ms}, nil
}

// Match reports whether n matches every term of the query.
func (m *Matcher) Match(n *Node) bool { return matchAll(m.ms, n) }
