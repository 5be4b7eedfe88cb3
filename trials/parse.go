package trials

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/formulas"
	"github.com/fleetkit/fleetkit/rollout"
)

// maxFileBytes bounds a trial file: it is read from a merge request.
const maxFileBytes = 1 << 20

// Parse parses and validates a trial file. file names it in errors, which
// are *Error values naming the line and field:
//
//	trials/nginx-rc.yaml:7: targets.max: must be a positive count of servers
//
// Unknown keys, wrong types and bad values are errors. The rollout section
// is a rollout spec, parsed by rollout.ParseSpec with its lines counted in
// the trial file.
func Parse(file string, data []byte) (*Trial, error) {
	t := &Trial{File: file, source: data, lines: map[string]int{}}
	if len(data) > maxFileBytes {
		return nil, &Error{File: file, Err: fmt.Errorf("file is %d bytes, more than %d", len(data), maxFileBytes)}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, yamlError(file, 0, err)
	}
	if len(doc.Content) == 0 {
		return nil, &Error{File: file, Line: 1, Err: errors.New("empty document")}
	}
	p := &parser{t: t, data: data}
	if err := p.trial(doc.Content[0]); err != nil {
		return nil, err
	}
	return t, nil
}

// yamlError turns a yaml.v3 error into an *Error, keeping its line
// (shifted by offset lines).
func yamlError(file string, offset int, err error) *Error {
	line := 0
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "yaml: line "); ok {
		if num, tail, ok := strings.Cut(rest, ": "); ok {
			if n, err := strconv.Atoi(num); err == nil {
				line, msg = n+offset, tail
			}
		}
	}
	return &Error{File: file, Line: line, Err: errors.New(strings.TrimPrefix(msg, "yaml: "))}
}

type parser struct {
	t    *Trial
	data []byte
}

func (p *parser) errf(n *yaml.Node, field, format string, args ...any) error {
	return &Error{File: p.t.File, Line: n.Line, Field: field, Err: fmt.Errorf(format, args...)}
}

func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

type handler func(k, v *yaml.Node, field string) error

// fields walks a mapping, calling the handler of each key; unknown and
// repeated keys are errors.
func (p *parser) fields(n *yaml.Node, path string, hs map[string]handler) error {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		what := path
		if what == "" {
			what = "trial"
		}
		return p.errf(n, path, "%s must be a mapping", what)
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), n.Content[i+1]
		h, ok := hs[k.Value]
		if k.Kind != yaml.ScalarNode || !ok {
			keys := slices.Sorted(maps.Keys(hs))
			return p.errf(k, path, "unknown key %q (valid: %s)", k.Value, strings.Join(keys, ", "))
		}
		f := join(path, k.Value)
		if seen[k.Value] {
			return p.errf(k, f, "repeated key")
		}
		seen[k.Value] = true
		p.t.lines[f] = k.Line
		if err := h(k, deref(v), f); err != nil {
			return err
		}
	}
	return nil
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func (p *parser) scalar(v *yaml.Node, field string) (string, error) {
	if v.Kind != yaml.ScalarNode || isNull(v) {
		return "", p.errf(v, field, "must be a single value")
	}
	return v.Value, nil
}

func (p *parser) str(dst *string) handler {
	return func(_, v *yaml.Node, f string) error {
		s, err := p.scalar(v, f)
		*dst = strings.TrimSpace(s)
		return err
	}
}

func (p *parser) list(dst *[]string) handler {
	return func(_, v *yaml.Node, f string) error {
		if isNull(v) {
			return nil
		}
		if v.Kind != yaml.SequenceNode {
			return p.errf(v, f, "must be a list")
		}
		for i, e := range v.Content {
			ef := fmt.Sprintf("%s[%d]", f, i)
			p.t.lines[ef] = e.Line
			s, err := p.scalar(deref(e), ef)
			if err != nil {
				return err
			}
			s = strings.TrimSpace(s)
			if s == "" || strings.ContainsAny(s, " \t\n,=!<>") {
				return p.errf(e, ef, "%q is not a name", s)
			}
			if slices.Contains(*dst, s) {
				return p.errf(e, ef, "%q is listed twice", s)
			}
			*dst = append(*dst, s)
		}
		return nil
	}
}

// stringMap decodes a mapping of names to versions, checking each with
// check.
func (p *parser) stringMap(dst *map[string]string, check func(k, v string) error) handler {
	return func(_, v *yaml.Node, f string) error {
		if isNull(v) {
			return nil
		}
		if v.Kind != yaml.MappingNode {
			return p.errf(v, f, "must be a mapping of name to version")
		}
		*dst = map[string]string{}
		for i := 0; i+1 < len(v.Content); i += 2 {
			k, val := deref(v.Content[i]), deref(v.Content[i+1])
			if k.Kind != yaml.ScalarNode || isNull(k) {
				return p.errf(k, f, "keys must be names")
			}
			kf := join(f, k.Value)
			p.t.lines[kf] = k.Line
			s, err := p.scalar(val, kf)
			if err != nil {
				return err
			}
			if _, dup := (*dst)[k.Value]; dup {
				return p.errf(k, kf, "repeated key")
			}
			if err := check(k.Value, strings.TrimSpace(s)); err != nil {
				return p.errf(val, kf, "%v", err)
			}
			(*dst)[k.Value] = strings.TrimSpace(s)
		}
		return nil
	}
}

func (p *parser) instant(dst *timeField) handler {
	return func(_, v *yaml.Node, f string) error {
		s, err := p.scalar(v, f)
		if err != nil {
			return err
		}
		tm, err := rollout.ParseTime(strings.TrimSpace(s))
		if err != nil {
			return p.errf(v, f, "%v", err)
		}
		dst.t, dst.set = tm, true
		return nil
	}
}

func (p *parser) trial(root *yaml.Node) error {
	t := p.t
	var start, expiry timeField
	err := p.fields(root, "", map[string]handler{
		"name":  p.str(&t.Name),
		"owner": p.str(&t.Owner),
		"versions": p.stringMap(&t.Versions, func(k, v string) error {
			if k == "" || v == "" {
				return errors.New("component and version must not be empty")
			}
			return nil
		}),
		"formulas": p.stringMap(&t.Formulas, func(k, v string) error {
			_, err := formulas.ParseSpec(v)
			return err
		}),
		"inherit": p.str(&t.Inherit),
		"targets": func(_, v *yaml.Node, f string) error {
			tg := &t.Targets
			return p.fields(v, f, map[string]handler{
				"clusters": p.list(&tg.Clusters),
				"servers":  p.list(&tg.Servers),
				"query":    p.str(&tg.Query),
				"max": func(_, v *yaml.Node, f string) error {
					s, err := p.scalar(v, f)
					if err != nil {
						return err
					}
					n, err := strconv.Atoi(strings.TrimSpace(s))
					if err != nil || n < 1 {
						return p.errf(v, f, "%q: must be a positive count of servers", s)
					}
					tg.Max = n
					return nil
				},
			})
		},
		"rollout":         p.rolloutSection(root),
		"start":           p.instant(&start),
		"expiry":          p.instant(&expiry),
		"rollback_on_end": p.boolean(&t.RollbackOnEnd),
	})
	if err != nil {
		return err
	}
	t.Start, t.Expiry = start.t, expiry.t
	return p.validate(root, expiry.set)
}

type timeField struct {
	t   time.Time
	set bool
}

func (p *parser) boolean(dst *bool) handler {
	return func(_, v *yaml.Node, f string) error {
		s, err := p.scalar(v, f)
		if err != nil {
			return err
		}
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "true", "yes", "on":
			*dst = true
		case "false", "no", "off":
			*dst = false
		default:
			return p.errf(v, f, "%q is not true or false", s)
		}
		return nil
	}
}

// validate checks what needs more than one field, and required fields.
func (p *parser) validate(root *yaml.Node, hasExpiry bool) error {
	t := p.t
	missing := func(field string) error {
		return &Error{File: t.File, Line: root.Line, Field: field, Err: errors.New("required")}
	}
	switch {
	case t.Name == "":
		return missing("name")
	case !nameRE.MatchString(t.Name):
		return t.errorf("name", "%q: want lower-case letters, digits, '.', '_' or '-', starting with a letter or digit, at most 57 characters", t.Name)
	case t.Owner == "":
		return missing("owner")
	case len(t.Targets.Clusters)+len(t.Targets.Servers) == 0 && t.Targets.Query == "":
		if _, ok := t.lines["targets"]; !ok {
			return missing("targets")
		}
		return t.errorf("targets", "give clusters, servers or a query")
	case t.Targets.Max == 0:
		if _, ok := t.lines["targets"]; !ok {
			return missing("targets")
		}
		return t.errorf("targets.max", "required")
	case !hasExpiry:
		return missing("expiry")
	case !t.Start.IsZero() && !t.Expiry.After(t.Start):
		return t.errorf("expiry", "%s is not after start %s", fmtTime(t.Expiry), fmtTime(t.Start))
	case t.RollbackOnEnd && t.Rollout == nil:
		return t.errorf("rollback_on_end", "needs a rollout to roll back")
	}
	if t.Targets.Query != "" {
		q, err := disposition.ParseQuery(t.Targets.Query)
		if err == nil {
			_, err = q.Compile()
		}
		if err != nil {
			return t.errorf("targets.query", "%v", err)
		}
	}
	if t.Inherit == "" {
		t.Inherit = DefaultInherit
	} else if strings.ContainsAny(t.Inherit, " \t\n,=!<>") {
		return t.errorf("inherit", "%q is not a release state name", t.Inherit)
	}
	return nil
}

// rolloutSection returns the handler of the rollout key: the section's
// text, with every other line blanked so that lines keep their numbers,
// goes to rollout.ParseSpec.
func (p *parser) rolloutSection(root *yaml.Node) handler {
	return func(k, v *yaml.Node, f string) error {
		if v.Kind != yaml.MappingNode {
			return p.errf(v, f, "must be a mapping (a rollout spec)")
		}
		text := p.section(root, k, v)
		spec, err := rollout.ParseSpec(p.t.File, text)
		if err != nil {
			var se *rollout.SpecError
			if errors.As(err, &se) {
				field := "rollout"
				if se.Field != "" {
					field += "." + se.Field
				}
				line := se.Line
				if line == 0 {
					line = k.Line
				}
				return &Error{File: p.t.File, Line: line, Field: field, Err: se.Err}
			}
			return p.errf(v, f, "%v", err)
		}
		var doc yaml.Node
		if err := yaml.Unmarshal(text, &doc); err != nil || len(doc.Content) == 0 {
			return p.errf(v, f, "cannot read the rollout section again: %v", err)
		}
		p.t.Rollout, p.t.rollout = spec, doc.Content[0]
		p.rolloutLines(p.t.rollout)
		return nil
	}
}

// section returns the trial file with only the rollout value kept in
// place: lines before and after it are blank, and the key before it on its
// first line is spaces. A root in flow style has no lines to keep; then
// the value is encoded on its own.
func (p *parser) section(root, k, v *yaml.Node) []byte {
	end := -1 // last line of the section, -1 for the end of the file
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i] == k && i+2 < len(root.Content) {
			end = root.Content[i+2].Line - 1
		}
	}
	if root.Style&yaml.FlowStyle != 0 || v.Style&yaml.FlowStyle != 0 || (end >= 0 && end < v.Line) {
		out, err := yaml.Marshal(v)
		if err != nil {
			return nil
		}
		return append([]byte(strings.Repeat("\n", max(0, k.Line-1))), out...)
	}
	lines := strings.SplitAfter(string(p.data), "\n")
	var b strings.Builder
	for i, l := range lines {
		n := i + 1
		switch {
		case n < v.Line || (end >= 0 && n > end):
			if strings.HasSuffix(l, "\n") {
				b.WriteByte('\n')
			}
		case n == v.Line:
			// Blank the key before the value, keeping its columns.
			runes, cut := 0, len(l)
			for j := range l {
				if runes == v.Column-1 {
					cut = j
					break
				}
				runes++
			}
			if cut == len(l) {
				b.WriteString(l)
			} else {
				b.WriteString(strings.Repeat(" ", runes))
				b.WriteString(l[cut:])
			}
		default:
			b.WriteString(l)
		}
	}
	return []byte(b.String())
}

// rolloutLines records the lines of the rollout section's fields that
// conflicts name: the section and its blackouts.
func (p *parser) rolloutLines(n *yaml.Node) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], deref(n.Content[i+1])
		f := "rollout." + k.Value
		if p.t.lines[f] == 0 {
			p.t.lines[f] = k.Line
		}
		if k.Value == "blackouts" && v.Kind == yaml.SequenceNode {
			for j, e := range v.Content {
				p.t.lines[fmt.Sprintf("%s[%d]", f, j)] = e.Line
			}
		}
	}
}
