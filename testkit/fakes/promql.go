package fakes

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// This file holds the small subset of PromQL the Prometheus fake
// evaluates:
//
//	expr     = term { ("*" | "/") number }
//	term     = agg [grouping] "(" inner ")" [grouping] | inner
//	agg      = "sum" | "max" | "min" | "avg" | "count"
//	grouping = ("by" | "without") "(" [label {"," label}] ")"
//	inner    = selector | ("rate" | "irate" | "increase") "(" selector "[" duration "]" ")"
//	selector = metric ["{" [matcher {"," matcher}] "}"] | "{" matcher {"," matcher} "}"
//	matcher  = label ("=" | "!=" | "=~" | "!~") string

type promQuery struct {
	agg       string // "" for none
	by        []string
	without   bool
	fn        string // "" for a bare selector
	rangeSecs float64
	metric    string
	matchers  []promMatcher
	ops       []promOp
}

type promMatcher struct {
	label, op, value string
	re               *regexp.Regexp
}

func (m promMatcher) matches(v string) bool {
	switch m.op {
	case "=":
		return v == m.value
	case "!=":
		return v != m.value
	case "=~":
		return m.re.MatchString(v)
	default: // "!~"
		return !m.re.MatchString(v)
	}
}

type promOp struct {
	op string // "*" or "/"
	n  float64
}

type promToken struct {
	kind byte // 'i' ident, 's' string, 'n' number, 'p' punctuation, 'd' duration
	text string
	pos  int
}

func promLex(s string) ([]promToken, error) {
	var toks []promToken
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '_' || c == ':' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z':
			j := i + 1
			for j < len(s) && (s[j] == '_' || s[j] == ':' || 'a' <= s[j] && s[j] <= 'z' || 'A' <= s[j] && s[j] <= 'Z' || '0' <= s[j] && s[j] <= '9') {
				j++
			}
			toks = append(toks, promToken{'i', s[i:j], i})
			i = j
		case '0' <= c && c <= '9' || c == '.':
			j := i + 1
			for j < len(s) && (s[j] == '.' || s[j] == 'e' || s[j] == 'E' || '0' <= s[j] && s[j] <= '9' ||
				(s[j] == '+' || s[j] == '-') && (s[j-1] == 'e' || s[j-1] == 'E') ||
				'a' <= s[j] && s[j] <= 'z') {
				j++
			}
			kind := byte('n')
			if _, err := strconv.ParseFloat(s[i:j], 64); err != nil {
				kind = 'd'
			}
			toks = append(toks, promToken{kind, s[i:j], i})
			i = j
		case c == '"' || c == '\'':
			j := i + 1
			for j < len(s) && s[j] != c {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(s) {
				return nil, fmt.Errorf("1:%d: parse error: unterminated quoted string", i+1)
			}
			v, err := strconv.Unquote(`"` + strings.ReplaceAll(s[i+1:j], `"`, `\"`) + `"`)
			if err != nil {
				return nil, fmt.Errorf("1:%d: parse error: bad string %s", i+1, s[i:j+1])
			}
			toks = append(toks, promToken{'s', v, i})
			i = j + 1
		case strings.HasPrefix(s[i:], "!=") || strings.HasPrefix(s[i:], "=~") || strings.HasPrefix(s[i:], "!~"):
			toks = append(toks, promToken{'p', s[i : i+2], i})
			i += 2
		case strings.ContainsRune("(){}[],=*/", rune(c)):
			toks = append(toks, promToken{'p', s[i : i+1], i})
			i++
		default:
			return nil, fmt.Errorf("1:%d: parse error: unexpected character %q", i+1, c)
		}
	}
	return toks, nil
}

type promParser struct {
	toks []promToken
	i    int
	src  string
}

func (p *promParser) peek() promToken {
	if p.i < len(p.toks) {
		return p.toks[p.i]
	}
	return promToken{kind: 0, pos: len(p.src)}
}

func (p *promParser) errorf(format string, args ...any) error {
	return fmt.Errorf("1:%d: parse error: %s", p.peek().pos+1, fmt.Sprintf(format, args...))
}

func (p *promParser) expect(text string) error {
	if t := p.peek(); t.kind == 'p' && t.text == text {
		p.i++
		return nil
	}
	return p.errorf("expected %q", text)
}

func (p *promParser) accept(kind byte, text string) bool {
	if t := p.peek(); t.kind == kind && t.text == text {
		p.i++
		return true
	}
	return false
}

var promAggs = map[string]bool{"sum": true, "max": true, "min": true, "avg": true, "count": true}
var promFns = map[string]bool{"rate": true, "irate": true, "increase": true}

// parsePromQuery parses expr in the supported subset.
func parsePromQuery(expr string) (*promQuery, error) {
	toks, err := promLex(expr)
	if err != nil {
		return nil, err
	}
	p := &promParser{toks: toks, src: expr}
	q := &promQuery{}
	if t := p.peek(); t.kind == 'i' && promAggs[t.text] {
		q.agg = t.text
		p.i++
		if err := p.grouping(q); err != nil {
			return nil, err
		}
		if err := p.expect("("); err != nil {
			return nil, err
		}
		if err := p.inner(q); err != nil {
			return nil, err
		}
		if err := p.expect(")"); err != nil {
			return nil, err
		}
		if err := p.grouping(q); err != nil {
			return nil, err
		}
	} else if err := p.inner(q); err != nil {
		return nil, err
	}
	for p.i < len(p.toks) {
		t := p.peek()
		if t.kind != 'p' || (t.text != "*" && t.text != "/") {
			return nil, p.errorf("unexpected %q", t.text)
		}
		p.i++
		n := p.peek()
		if n.kind != 'n' {
			return nil, p.errorf("expected a number after %q (only scalar arithmetic is supported)", t.text)
		}
		v, _ := strconv.ParseFloat(n.text, 64)
		p.i++
		q.ops = append(q.ops, promOp{t.text, v})
	}
	return q, nil
}

func (p *promParser) grouping(q *promQuery) error {
	switch {
	case p.accept('i', "by"):
	case p.accept('i', "without"):
		q.without = true
	default:
		return nil
	}
	if q.by != nil {
		return p.errorf("grouping given twice")
	}
	if err := p.expect("("); err != nil {
		return err
	}
	q.by = []string{}
	for !p.accept('p', ")") {
		t := p.peek()
		if t.kind != 'i' {
			return p.errorf("expected a label name")
		}
		q.by = append(q.by, t.text)
		p.i++
		if !p.accept('p', ",") {
			if err := p.expect(")"); err != nil {
				return err
			}
			break
		}
	}
	return nil
}

func (p *promParser) inner(q *promQuery) error {
	if t := p.peek(); t.kind == 'i' && promFns[t.text] {
		q.fn = t.text
		p.i++
		if err := p.expect("("); err != nil {
			return err
		}
		if err := p.selector(q); err != nil {
			return err
		}
		if err := p.expect("["); err != nil {
			return err
		}
		d := p.peek()
		if d.kind != 'd' && d.kind != 'n' {
			return p.errorf("expected a duration")
		}
		dur, err := time.ParseDuration(d.text)
		if err != nil || dur <= 0 {
			return p.errorf("bad duration %q", d.text)
		}
		q.rangeSecs = dur.Seconds()
		p.i++
		if err := p.expect("]"); err != nil {
			return err
		}
		return p.expect(")")
	}
	return p.selector(q)
}

func (p *promParser) selector(q *promQuery) error {
	if t := p.peek(); t.kind == 'i' && !promAggs[t.text] && !promFns[t.text] && t.text != "by" && t.text != "without" {
		q.metric = t.text
		p.i++
	}
	if !p.accept('p', "{") {
		if q.metric == "" {
			return p.errorf("expected a metric name or a selector")
		}
		return nil
	}
	for !p.accept('p', "}") {
		l := p.peek()
		if l.kind != 'i' {
			return p.errorf("expected a label name")
		}
		p.i++
		op := p.peek()
		if op.kind != 'p' || (op.text != "=" && op.text != "!=" && op.text != "=~" && op.text != "!~") {
			return p.errorf("expected a label matching operator")
		}
		p.i++
		v := p.peek()
		if v.kind != 's' {
			return p.errorf("expected a quoted string")
		}
		p.i++
		m := promMatcher{label: l.text, op: op.text, value: v.text}
		if op.text == "=~" || op.text == "!~" {
			re, err := regexp.Compile("^(?:" + v.text + ")$")
			if err != nil {
				return p.errorf("bad regexp %q: %v", v.text, err)
			}
			m.re = re
		}
		if l.text == "__name__" && op.text == "=" {
			q.metric = v.text
		} else {
			q.matchers = append(q.matchers, m)
		}
		if !p.accept('p', ",") {
			if err := p.expect("}"); err != nil {
				return err
			}
			break
		}
	}
	if q.metric == "" && len(q.matchers) == 0 {
		return p.errorf("vector selector must contain at least one non-empty matcher")
	}
	return nil
}
