package formulas

import (
	"cmp"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// MaxControlSize is the largest control file Parse accepts.
const MaxControlSize = 4 << 20

var slsRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)

// Parse parses a control file. file names it in errors, and relative
// repository paths are resolved against its directory.
//
// The format, in YAML:
//
//	formulas:
//	  nginx:
//	    repo: https://git.example.net/salt/nginx-formula.git
//	    subdir: nginx        # optional: the state tree inside the repository
//	    sls: [nginx]         # optional: states the top file applies
//	  cdn-app: ../repos/cdn-app   # short form: just the repository
//	roles: [edge, mid, shield, dns]
//	states:
//	  ga:
//	    share: 75%           # optional: the fleet's share in this state
//	    nginx: "~1.4"
//	    cdn-app: v3.2.0
//	    roles:
//	      dns: {cdn-app: none}   # dns servers do not get cdn-app
//	  trial:
//	    inherit: ga
//	    share: 5%
//	    nginx: v1.5.0-rc.1
//	    roles:
//	      edge: {cdn-app: {branch: main, unpinned: true}}
//
// A release state's keys other than inherit, share and roles are formula
// names. Versions are described at ParseSpec; the long forms are {tag: x},
// {commit: x}, {constraint: x} and {branch: x, unpinned: true}.
//
// Every problem found is reported, as an ErrorList of *Error each naming the
// file, line and field.
func Parse(file string, data []byte) (*Control, error) {
	p := &parser{file: file}
	if len(data) > MaxControlSize {
		p.add(0, "", ErrSyntax, "file larger than %d bytes", MaxControlSize)
		return nil, p.errs
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		p.yamlError(err)
		return nil, p.errs
	}
	if len(doc.Content) == 0 {
		p.add(0, "", ErrSyntax, "empty control file")
		return nil, p.errs
	}
	ctl := &Control{
		File:         file,
		formulaIndex: map[string]int{},
		stateIndex:   map[string]int{},
		roleIndex:    map[string]int{},
	}
	p.ctl = ctl
	p.control(doc.Content[0])
	p.validate()
	if len(p.errs) > 0 {
		slices.SortStableFunc(p.errs, func(a, b *Error) int { return cmp.Compare(a.Line, b.Line) })
		return nil, p.errs
	}
	return ctl, nil
}

type parser struct {
	file     string
	errs     ErrorList
	ctl      *Control
	roleLine map[string]int
	// stateNodes keeps each state's mapping for the second pass, which needs
	// every formula, role and state declared first.
	stateNodes []*yaml.Node
}

func (p *parser) add(line int, field string, sentinel error, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Field: field, Msg: fmt.Sprintf(format, args...), Err: sentinel})
}

var yamlLineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// yamlError turns a YAML syntax error into *Errors with the line split out.
func (p *parser) yamlError(err error) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.TrimPrefix(msg, "unmarshal errors:\n")
	for _, m := range strings.Split(msg, "\n") {
		m = strings.TrimSpace(m)
		if sub := yamlLineRE.FindStringSubmatch(m); sub != nil {
			line, _ := strconv.Atoi(sub[1])
			p.add(line, "", ErrSyntax, "%s", sub[2])
			continue
		}
		p.add(0, "", ErrSyntax, "%s", m)
	}
}

func joinField(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// deref follows aliases to the node they name.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 16; i++ {
		n = n.Alias
	}
	return n
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing (null)"
		}
		return fmt.Sprintf("%q", n.Value)
	case yaml.AliasNode:
		return "an alias"
	}
	return "a document"
}

// mapping calls fn for every key of a mapping node, reporting a node that is
// not a mapping, keys that are not strings and duplicate keys.
func (p *parser) mapping(n *yaml.Node, field string, fn func(key string, k, v *yaml.Node)) {
	n = deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		p.add(lineOf(n), field, ErrSyntax, "expected a mapping, got %s", describeOrNil(n))
		return
	}
	seen := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), n.Content[i+1]
		if k == nil || k.Kind != yaml.ScalarNode {
			p.add(lineOf(k), field, ErrSyntax, "keys must be strings")
			continue
		}
		if k.Tag == "!!merge" {
			p.add(k.Line, field, ErrSyntax, "merge keys (<<) are not supported")
			continue
		}
		if first, dup := seen[k.Value]; dup {
			p.add(k.Line, joinField(field, k.Value), ErrDuplicateKey, "duplicate key %q (first at line %d)", k.Value, first)
			continue
		}
		seen[k.Value] = k.Line
		fn(k.Value, k, v)
	}
}

func lineOf(n *yaml.Node) int {
	if n == nil {
		return 0
	}
	return n.Line
}

func describeOrNil(n *yaml.Node) string {
	if n == nil {
		return "nothing"
	}
	return describe(n)
}

// str returns the value of a non-null scalar.
func (p *parser) str(n *yaml.Node, field string) (string, bool) {
	n = deref(n)
	if n == nil || n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.add(lineOf(n), field, ErrSyntax, "expected a string, got %s", describeOrNil(n))
		return "", false
	}
	return n.Value, true
}

// name returns the value of a scalar that must be a valid name.
func (p *parser) name(n *yaml.Node, field, what string) (string, bool) {
	s, ok := p.str(n, field)
	if !ok {
		return "", false
	}
	if !nameRE.MatchString(s) {
		p.add(n.Line, field, ErrSyntax, "bad %s name %q: use lower-case letters, digits, '.', '_' and '-', starting with a letter or digit, at most 63 bytes", what, s)
		return "", false
	}
	return s, true
}

func (p *parser) control(root *yaml.Node) {
	var formulas, roles, states *yaml.Node
	p.mapping(root, "", func(key string, k, v *yaml.Node) {
		switch key {
		case "version":
			if s, ok := p.str(v, key); ok && s != "1" {
				p.add(v.Line, key, ErrSyntax, "unsupported control file version %q (want 1)", s)
			}
		case "formulas":
			formulas = v
		case "roles":
			roles = v
		case "states":
			states = v
		default:
			p.add(k.Line, key, ErrSyntax, "unknown key (want version, formulas, roles or states)")
		}
	})
	root = deref(root)
	for _, req := range []struct {
		n    *yaml.Node
		name string
	}{{formulas, "formulas"}, {roles, "roles"}, {states, "states"}} {
		if req.n == nil && root != nil && root.Kind == yaml.MappingNode {
			p.add(root.Line, req.name, ErrSyntax, "missing")
		}
	}
	if formulas != nil {
		p.formulas(formulas)
	}
	if roles != nil {
		p.roles(roles)
	}
	if states != nil {
		p.statesDecl(states)
		for i, n := range p.stateNodes {
			p.stateBody(p.ctl.States[i], n)
		}
	}
}

func (p *parser) formulas(n *yaml.Node) {
	p.mapping(n, "formulas", func(key string, k, v *yaml.Node) {
		field := joinField("formulas", key)
		name, ok := p.name(k, field, "formula")
		if !ok {
			return
		}
		if reservedStateKeys[name] {
			p.add(k.Line, field, ErrSyntax, "%q is reserved (a release state key) and cannot name a formula", name)
			return
		}
		f := &Formula{Name: name, Line: k.Line}
		v = deref(v)
		if v != nil && v.Kind == yaml.ScalarNode {
			repo, ok := p.str(v, field)
			if !ok {
				return
			}
			f.Repo = repo
		} else {
			p.mapping(v, field, func(key string, k, v *yaml.Node) {
				sub := joinField(field, key)
				switch key {
				case "repo":
					f.Repo, _ = p.str(v, sub)
				case "subdir":
					if s, ok := p.str(v, sub); ok {
						f.Subdir, ok = cleanSubdir(s)
						if !ok {
							p.add(v.Line, sub, ErrSyntax, "subdir %q must be a relative path inside the repository", s)
						}
					}
				case "sls":
					f.SLS = p.slsList(v, sub)
				default:
					p.add(k.Line, sub, ErrSyntax, "unknown key (want repo, subdir or sls)")
				}
			})
		}
		if f.Repo == "" {
			if !p.hasErrorAt(field) {
				p.add(k.Line, joinField(field, "repo"), ErrSyntax, "missing repository")
			}
		} else {
			f.Repo = resolveRepoPath(p.file, f.Repo)
		}
		if len(f.SLS) == 0 {
			f.SLS = []string{name}
		}
		p.ctl.formulaIndex[name] = len(p.ctl.Formulas)
		p.ctl.Formulas = append(p.ctl.Formulas, f)
	})
}

func (p *parser) hasErrorAt(prefix string) bool {
	for _, e := range p.errs {
		if strings.HasPrefix(e.Field, prefix) {
			return true
		}
	}
	return false
}

// cleanSubdir normalises a subdirectory; "." and "" mean the root.
func cleanSubdir(s string) (string, bool) {
	if s == "" {
		return "", true
	}
	if strings.HasPrefix(s, "/") || strings.ContainsAny(s, "\\:\x00") {
		return "", false
	}
	c := path.Clean(s)
	if c == "." {
		return "", true
	}
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", false
	}
	return c, true
}

func (p *parser) slsList(n *yaml.Node, field string) []string {
	n = deref(n)
	var items []*yaml.Node
	switch {
	case n != nil && n.Kind == yaml.SequenceNode:
		items = n.Content
	case n != nil && n.Kind == yaml.ScalarNode:
		items = []*yaml.Node{n}
	default:
		p.add(lineOf(n), field, ErrSyntax, "expected a list of state names, got %s", describeOrNil(n))
		return nil
	}
	var out []string
	for i, it := range items {
		f := fmt.Sprintf("%s[%d]", field, i)
		s, ok := p.str(it, f)
		if !ok {
			continue
		}
		if !slsRE.MatchString(s) {
			p.add(deref(it).Line, f, ErrSyntax, "bad state name %q", s)
			continue
		}
		out = append(out, s)
	}
	return out
}

func (p *parser) roles(n *yaml.Node) {
	n = deref(n)
	if n.Kind != yaml.SequenceNode {
		p.add(n.Line, "roles", ErrSyntax, "expected a list of roles, got %s", describe(n))
		return
	}
	p.roleLine = map[string]int{}
	for i, it := range n.Content {
		field := fmt.Sprintf("roles[%d]", i)
		r, ok := p.name(it, field, "role")
		if !ok {
			continue
		}
		if first, dup := p.roleLine[r]; dup {
			p.add(deref(it).Line, field, ErrDuplicateKey, "duplicate role %q (first at line %d)", r, first)
			continue
		}
		p.roleLine[r] = deref(it).Line
		p.ctl.roleIndex[r] = len(p.ctl.Roles)
		p.ctl.Roles = append(p.ctl.Roles, r)
	}
	if len(n.Content) == 0 {
		p.add(n.Line, "roles", ErrSyntax, "no roles declared")
	}
}

// statesDecl declares every release state, so that inherit can name a
// state declared further down.
func (p *parser) statesDecl(n *yaml.Node) {
	p.mapping(n, "states", func(key string, k, v *yaml.Node) {
		name, ok := p.name(k, joinField("states", key), "release state")
		if !ok {
			return
		}
		p.ctl.stateIndex[name] = len(p.ctl.States)
		p.ctl.States = append(p.ctl.States, &State{Name: name, Line: k.Line, Roles: map[string][]Entry{}})
		p.stateNodes = append(p.stateNodes, v)
	})
	if n := deref(n); n != nil && n.Kind == yaml.MappingNode && len(n.Content) == 0 {
		p.add(n.Line, "states", ErrSyntax, "no release states declared")
	}
}

func (p *parser) stateBody(s *State, n *yaml.Node) {
	field := joinField("states", s.Name)
	p.mapping(n, field, func(key string, k, v *yaml.Node) {
		sub := joinField(field, key)
		switch key {
		case "inherit":
			if parent, ok := p.str(v, sub); ok {
				s.Inherit, s.InheritLine = parent, deref(v).Line
				if _, known := p.ctl.State(parent); !known {
					p.add(deref(v).Line, sub, ErrUnknownState, "unknown release state %q", parent)
					s.Inherit = ""
				}
			}
		case "share":
			if share, ok := p.share(v, sub); ok {
				s.Share = share
			}
		case "roles":
			p.mapping(v, sub, func(role string, k, v *yaml.Node) {
				rf := joinField(sub, role)
				if !p.ctl.HasRole(role) {
					p.add(k.Line, rf, ErrUnknownRole, "unknown role %q (not in roles)", role)
					return
				}
				p.mapping(v, rf, func(formula string, k, v *yaml.Node) {
					if e, ok := p.entry(formula, k, v, joinField(rf, formula)); ok {
						s.Roles[role] = append(s.Roles[role], e)
					}
				})
			})
		default:
			if e, ok := p.entry(key, k, v, sub); ok {
				s.Versions = append(s.Versions, e)
			}
		}
	})
}

func (p *parser) share(n *yaml.Node, field string) (float64, bool) {
	s, ok := p.str(n, field)
	if !ok {
		return 0, false
	}
	pct := strings.HasSuffix(s, "%")
	f, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(s, "%")), 64)
	if err == nil && pct {
		f /= 100
	}
	if err != nil || !(f > 0 && f <= 1) {
		p.add(deref(n).Line, field, ErrSyntax, "share %q must be a percentage (5%%) or a fraction in (0, 1]", s)
		return 0, false
	}
	return f, true
}

// entry parses "formula: version".
func (p *parser) entry(formula string, k, v *yaml.Node, field string) (Entry, bool) {
	if _, known := p.ctl.Formula(formula); !known {
		p.add(k.Line, field, ErrUnknownFormula, "unknown formula %q (not in formulas)", formula)
		return Entry{}, false
	}
	spec, ok := p.spec(v, field)
	if !ok {
		return Entry{}, false
	}
	return Entry{Formula: formula, Spec: spec, Field: field, Line: k.Line, canon: spec.String()}, true
}

// spec parses a version in its short (string) or long (mapping) form.
func (p *parser) spec(n *yaml.Node, field string) (Spec, bool) {
	n = deref(n)
	if n == nil {
		p.add(0, field, ErrSyntax, "missing version")
		return Spec{}, false
	}
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			p.add(n.Line, field, ErrSyntax, "missing version (write none to leave the formula out)")
			return Spec{}, false
		}
		s, err := ParseSpec(n.Value)
		if err != nil {
			p.add(n.Line, field, ErrSyntax, "%v", err)
			return Spec{}, false
		}
		return s, true
	case yaml.MappingNode:
		var spec Spec
		kinds, unpinnedLine, bad := 0, 0, false
		p.mapping(n, field, func(key string, k, v *yaml.Node) {
			sub := joinField(field, key)
			if key == "unpinned" {
				b, ok := p.str(v, sub)
				if ok {
					spec.Unpinned, ok = parseBool(b)
				}
				if !ok {
					p.add(k.Line, sub, ErrSyntax, "expected true or false")
					bad = true
				}
				unpinnedLine = k.Line
				return
			}
			var kind SpecKind
			switch key {
			case "tag":
				kind = SpecTag
			case "commit":
				kind = SpecCommit
			case "branch":
				kind = SpecBranch
			case "constraint":
				kind = SpecConstraint
			default:
				p.add(k.Line, sub, ErrSyntax, "unknown key (want tag, commit, branch, constraint or unpinned)")
				bad = true
				return
			}
			kinds++
			val, ok := p.str(v, sub)
			if !ok {
				bad = true
				return
			}
			if err := checkSpecValue(kind, val); err != nil {
				p.add(deref(v).Line, sub, ErrSyntax, "%v", err)
				bad = true
				return
			}
			if kind == SpecCommit {
				val = strings.ToLower(val)
			}
			spec.Kind, spec.Value = kind, val
		})
		switch {
		case bad:
			return Spec{}, false
		case kinds != 1:
			p.add(n.Line, field, ErrSyntax, "give exactly one of tag, commit, branch or constraint")
			return Spec{}, false
		case spec.Kind == SpecBranch && !spec.Unpinned:
			p.add(n.Line, field, ErrUnpinned, "branch %q floats: mark it {branch: %s, unpinned: true} or pin a tag or commit", spec.Value, spec.Value)
			return Spec{}, false
		case spec.Kind != SpecBranch && unpinnedLine > 0:
			p.add(unpinnedLine, joinField(field, "unpinned"), ErrSyntax, "only a branch can be unpinned")
			return Spec{}, false
		}
		return spec, true
	}
	p.add(n.Line, field, ErrSyntax, "expected a version, got %s", describe(n))
	return Spec{}, false
}

func parseBool(s string) (bool, bool) {
	switch s {
	case "true", "True", "TRUE", "yes":
		return true, true
	case "false", "False", "FALSE", "no":
		return false, true
	}
	return false, false
}

func checkSpecValue(kind SpecKind, v string) error {
	switch kind {
	case SpecCommit:
		if !isHex(v) || len(v) < 7 || len(v) > 64 {
			return fmt.Errorf("commit %q must be 7 to 64 hexadecimal digits", v)
		}
	case SpecConstraint:
		if _, err := parseConstraint(v); err != nil {
			return fmt.Errorf("bad semver constraint %q: %v", v, err)
		}
	default:
		if err := checkRefName(v); err != nil {
			return fmt.Errorf("bad %s name %q: %v", kind, v, err)
		}
	}
	return nil
}

// validate checks what needs the whole file: inheritance cycles and
// environment names.
func (p *parser) validate() {
	c := p.ctl
	// Cycles: walk each state's chain; a chain that comes back to a state
	// already on it is a cycle, reported once at its first state in file
	// order.
	reported := map[string]bool{}
	for _, s := range c.States {
		var path []string
		onPath := map[string]bool{}
		for cur := s; cur != nil; {
			if onPath[cur.Name] {
				start := slices.Index(path, cur.Name)
				cycle := append(slices.Clone(path[start:]), cur.Name)
				first := cycle[0]
				for _, n := range cycle[:len(cycle)-1] {
					if c.stateIndex[n] < c.stateIndex[first] {
						first = n
					}
				}
				if !reported[first] {
					for _, n := range cycle {
						reported[n] = true
					}
					fs, _ := c.State(first)
					p.add(fs.InheritLine, joinField(joinField("states", first), "inherit"), ErrInheritanceCycle,
						"inheritance cycle: %s", strings.Join(rotate(cycle[:len(cycle)-1], first), " -> ")+" -> "+first)
				}
				break
			}
			onPath[cur.Name] = true
			path = append(path, cur.Name)
			if cur.Inherit == "" {
				break
			}
			cur, _ = c.State(cur.Inherit)
		}
	}
	// Environment names: role-state must be unique.
	type owner struct{ role, state string }
	seen := map[string]owner{}
	for _, r := range c.Roles {
		for _, s := range c.States {
			name := EnvName(r, s.Name)
			if o, dup := seen[name]; dup {
				p.add(s.Line, joinField("states", s.Name), ErrEnvCollision,
					"environment %q of role %q in state %q is also the environment of role %q in state %q",
					name, r, s.Name, o.role, o.state)
				continue
			}
			seen[name] = owner{r, s.Name}
		}
	}
	// Shares may not add up to more than the whole fleet.
	total, last := 0.0, (*State)(nil)
	for _, s := range c.States {
		if s.Share > 0 {
			total += s.Share
			last = s
		}
	}
	if total > 1+1e-9 {
		p.add(last.Line, joinField(joinField("states", last.Name), "share"), ErrSyntax,
			"release state shares add up to %.4g%%, more than 100%%", total*100)
	}
}

// rotate returns cycle starting at first.
func rotate(cycle []string, first string) []string {
	i := slices.Index(cycle, first)
	return append(slices.Clone(cycle[i:]), cycle[:i]...)
}
