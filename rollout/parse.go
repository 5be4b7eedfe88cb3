package rollout

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// ParseSpec parses a spec from YAML and validates it. name is the file
// name used in errors, which name the line and field:
//
//	spec.yaml:12: budgets.metro: "12x" is not a count or percentage
//
// Unknown keys, wrong types and bad values are errors; every error is a
// *SpecError wrapping ErrInvalidSpec.
func ParseSpec(name string, data []byte) (*Spec, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		line := 0
		msg := err.Error()
		// yaml.v3 reports "yaml: line N: ..."; keep the line in ours.
		if rest, ok := strings.CutPrefix(msg, "yaml: line "); ok {
			if num, tail, ok := strings.Cut(rest, ": "); ok {
				if n, err := strconv.Atoi(num); err == nil {
					line, msg = n, tail
				}
			}
		}
		return nil, &SpecError{File: name, Line: line, Err: errors.New(strings.TrimPrefix(msg, "yaml: "))}
	}
	if len(doc.Content) == 0 {
		return nil, &SpecError{File: name, Line: 1, Err: errors.New("empty document")}
	}
	d := &decoder{file: name}
	var s Spec
	if err := d.spec(doc.Content[0], &s); err != nil {
		return nil, err
	}
	if err := s.Validate(); err != nil {
		var se *SpecError
		if errors.As(err, &se) {
			se.File = name
			se.Line = d.lines[se.Field]
			for f := se.Field; se.Line == 0 && f != ""; {
				i := strings.LastIndexAny(f, ".[")
				if i < 0 {
					break
				}
				f = f[:i]
				se.Line = d.lines[f]
			}
		}
		return nil, err
	}
	return &s, nil
}

// decoder walks a yaml.Node tree into a Spec, remembering the line of
// every field so that Validate's errors can name it too.
type decoder struct {
	file  string
	lines map[string]int
}

func (d *decoder) errf(n *yaml.Node, field, format string, args ...any) error {
	return &SpecError{File: d.file, Line: n.Line, Field: field, Err: fmt.Errorf(format, args...)}
}

type handler func(v *yaml.Node, field string) error

func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// fields decodes a mapping, calling the handler of each key.
func (d *decoder) fields(n *yaml.Node, path string, hs map[string]handler) error {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		what := path
		if what == "" {
			what = "spec"
		}
		return d.errf(n, path, "%s must be a mapping", what)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), n.Content[i+1]
		h, ok := hs[k.Value]
		if k.Kind != yaml.ScalarNode || !ok {
			keys := slices.Sorted(maps.Keys(hs))
			return d.errf(k, path, "unknown key %q (valid: %s)", k.Value, strings.Join(keys, ", "))
		}
		f := join(path, k.Value)
		if d.lines == nil {
			d.lines = map[string]int{}
		}
		d.lines[f] = k.Line
		if err := h(resolve(v), f); err != nil {
			return err
		}
	}
	return nil
}

func (d *decoder) scalar(v *yaml.Node, field string) (string, error) {
	if v.Kind != yaml.ScalarNode {
		return "", d.errf(v, field, "must be a single value")
	}
	return v.Value, nil
}

func (d *decoder) list(v *yaml.Node, field string, each func(v *yaml.Node, field string) error) error {
	if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
		return nil
	}
	if v.Kind != yaml.SequenceNode {
		return d.errf(v, field, "must be a list")
	}
	for i, e := range v.Content {
		f := fmt.Sprintf("%s[%d]", field, i)
		if d.lines == nil {
			d.lines = map[string]int{}
		}
		d.lines[f] = e.Line
		if err := each(resolve(e), f); err != nil {
			return err
		}
	}
	return nil
}

func (d *decoder) str(p *string) handler {
	return func(v *yaml.Node, f string) error {
		s, err := d.scalar(v, f)
		*p = s
		return err
	}
}

func (d *decoder) integer(p *int) handler {
	return func(v *yaml.Node, f string) error {
		s, err := d.scalar(v, f)
		if err != nil {
			return err
		}
		n, err := strconv.Atoi(s)
		if err != nil {
			return d.errf(v, f, "%q is not an integer", s)
		}
		*p = n
		return nil
	}
}

func (d *decoder) float(p *float64) handler {
	return func(v *yaml.Node, f string) error {
		s, err := d.scalar(v, f)
		if err != nil {
			return err
		}
		x, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return d.errf(v, f, "%q is not a number", s)
		}
		*p = x
		return nil
	}
}

func (d *decoder) boolean(p *bool) handler {
	return func(v *yaml.Node, f string) error {
		s, err := d.scalar(v, f)
		if err != nil {
			return err
		}
		switch s {
		case "true":
			*p = true
		case "false":
			*p = false
		default:
			return d.errf(v, f, "%q is not true or false", s)
		}
		return nil
	}
}

func (d *decoder) amount(p *Amount) handler {
	return func(v *yaml.Node, f string) error {
		s, err := d.scalar(v, f)
		if err != nil {
			return err
		}
		a, err := ParseAmount(s)
		if err != nil {
			return d.errf(v, f, "%v", err)
		}
		*p = a
		return nil
	}
}

func (d *decoder) amountPtr(p **Amount) handler {
	return func(v *yaml.Node, f string) error {
		var a Amount
		if err := d.amount(&a)(v, f); err != nil {
			return err
		}
		*p = &a
		return nil
	}
}

func (d *decoder) duration(p *Duration) handler {
	return func(v *yaml.Node, f string) error {
		s, err := d.scalar(v, f)
		if err != nil {
			return err
		}
		x, err := ParseDuration(s)
		if err != nil {
			return d.errf(v, f, "%v", err)
		}
		*p = x
		return nil
	}
}

func (d *decoder) clock(p *TimeOfDay) handler {
	return func(v *yaml.Node, f string) error {
		s, err := d.scalar(v, f)
		if err != nil {
			return err
		}
		c, err := ParseTimeOfDay(s)
		if err != nil {
			return d.errf(v, f, "%v", err)
		}
		*p = c
		return nil
	}
}

// ParseTime parses an RFC 3339 time or a date (midnight UTC).
func ParseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time or a date", s)
}

func (d *decoder) instant(p *time.Time) handler {
	return func(v *yaml.Node, f string) error {
		s, err := d.scalar(v, f)
		if err != nil {
			return err
		}
		t, err := ParseTime(s)
		if err != nil {
			return d.errf(v, f, "%v", err)
		}
		*p = t
		return nil
	}
}

func (d *decoder) strings(p *[]string) handler {
	return func(v *yaml.Node, f string) error {
		return d.list(v, f, func(e *yaml.Node, f string) error {
			s, err := d.scalar(e, f)
			*p = append(*p, s)
			return err
		})
	}
}

func (d *decoder) floats(p *[]float64) handler {
	return func(v *yaml.Node, f string) error {
		*p = []float64{}
		return d.list(v, f, func(e *yaml.Node, f string) error {
			var x float64
			err := d.float(&x)(e, f)
			*p = append(*p, x)
			return err
		})
	}
}

var weekdays = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

// ParseWeekday parses a weekday as "mon" or "monday", in any case.
func ParseWeekday(s string) (time.Weekday, error) {
	l := strings.ToLower(strings.TrimSpace(s))
	if len(l) >= 3 {
		if d, ok := weekdays[l[:3]]; ok && strings.HasPrefix(strings.ToLower(d.String()), l) {
			return d, nil
		}
	}
	return 0, fmt.Errorf("%q is not a weekday (mon, tue, wed, thu, fri, sat, sun)", s)
}

func (d *decoder) days(p *[]time.Weekday) handler {
	return func(v *yaml.Node, f string) error {
		return d.list(v, f, func(e *yaml.Node, f string) error {
			s, err := d.scalar(e, f)
			if err != nil {
				return err
			}
			wd, err := ParseWeekday(s)
			if err != nil {
				return d.errf(e, f, "%v", err)
			}
			*p = append(*p, wd)
			return nil
		})
	}
}

func (d *decoder) spec(n *yaml.Node, s *Spec) error {
	return d.fields(n, "", map[string]handler{
		"name":      d.str(&s.Name),
		"component": d.str(&s.Component),
		"version":   d.str(&s.Version),
		"select":    d.str(&s.Select),
		"exclude":   d.str(&s.Exclude),
		"deploy":    d.duration(&s.Deploy),
		"horizon":   d.duration(&s.Horizon),
		"pack":      d.duration(&s.Pack),
		"budgets": func(v *yaml.Node, f string) error {
			b := &s.Budgets
			return d.fields(v, f, map[string]handler{
				"global":            d.amountPtr(&b.Global),
				"region":            d.amountPtr(&b.Region),
				"metro":             d.amountPtr(&b.Metro),
				"site":              d.amountPtr(&b.Site),
				"cluster":           d.amountPtr(&b.Cluster),
				"metros_per_region": d.integer(&b.MetrosPerRegion),
				"sites_per_metro":   d.integer(&b.SitesPerMetro),
				"clusters_per_site": d.integer(&b.ClustersPerSite),
			})
		},
		"capacity": func(v *yaml.Node, f string) error {
			c := &Capacity{}
			s.Capacity = c
			return d.fields(v, f, map[string]handler{
				"headroom":    d.float(&c.Headroom),
				"profile":     d.floats(&c.Profile),
				"observed_at": d.instant(&c.ObservedAt),
				"forecast": func(v *yaml.Node, f string) error {
					if v.Kind != yaml.MappingNode {
						return d.errf(v, f, "must be a mapping of metro to 24 hourly values")
					}
					c.Forecast = map[string][]float64{}
					for i := 0; i+1 < len(v.Content); i += 2 {
						k := resolve(v.Content[i])
						var xs []float64
						if err := d.floats(&xs)(resolve(v.Content[i+1]), join(f, k.Value)); err != nil {
							return err
						}
						d.lines[join(f, k.Value)] = k.Line
						c.Forecast[k.Value] = xs
					}
					return nil
				},
			})
		},
		"windows": func(v *yaml.Node, f string) error {
			return d.list(v, f, func(e *yaml.Node, f string) error {
				var w Window
				err := d.fields(e, f, map[string]handler{
					"region": d.str(&w.Region),
					"metro":  d.str(&w.Metro),
					"days":   d.days(&w.Days),
					"start":  d.clock(&w.Start),
					"end":    d.clock(&w.End),
					"tz":     d.str(&w.TZ),
				})
				if err == nil {
					if _, ok := d.lines[f+".start"]; !ok {
						return d.errf(e, f+".start", "is required")
					}
					if _, ok := d.lines[f+".end"]; !ok {
						return d.errf(e, f+".end", "is required")
					}
				}
				s.Windows = append(s.Windows, w)
				return err
			})
		},
		"blackouts": func(v *yaml.Node, f string) error {
			return d.list(v, f, func(e *yaml.Node, f string) error {
				var b Blackout
				err := d.fields(e, f, map[string]handler{
					"region": d.str(&b.Region),
					"metro":  d.str(&b.Metro),
					"from":   d.instant(&b.From),
					"to":     d.instant(&b.To),
					"reason": d.str(&b.Reason),
				})
				s.Blackouts = append(s.Blackouts, b)
				return err
			})
		},
		"canary": func(v *yaml.Node, f string) error {
			c := &s.Canary
			return d.fields(v, f, map[string]handler{
				"count": d.integer(&c.Count),
				"where": d.str(&c.Where),
				"bake":  d.duration(&c.Bake),
			})
		},
		"growth": func(v *yaml.Node, f string) error {
			g := &s.Growth
			return d.fields(v, f, map[string]handler{
				"bake": d.duration(&g.Bake),
				"steps": func(v *yaml.Node, f string) error {
					return d.list(v, f, func(e *yaml.Node, f string) error {
						var a Amount
						err := d.amount(&a)(e, f)
						g.Steps = append(g.Steps, a)
						return err
					})
				},
				"exponential": func(v *yaml.Node, f string) error {
					e := &Exponential{}
					g.Exponential = e
					return d.fields(v, f, map[string]handler{
						"start":  d.amount(&e.Start),
						"factor": d.float(&e.Factor),
						"cap":    d.amountPtr(&e.Cap),
					})
				},
				"linear": func(v *yaml.Node, f string) error {
					l := &Linear{}
					g.Linear = l
					return d.fields(v, f, map[string]handler{
						"start": d.amount(&l.Start),
						"step":  d.amount(&l.Step),
						"cap":   d.amountPtr(&l.Cap),
					})
				},
			})
		},
		"failure": func(v *yaml.Node, f string) error {
			fb := &s.Failure
			return d.fields(v, f, map[string]handler{
				"wave":           d.amountPtr(&fb.Wave),
				"cluster":        d.amountPtr(&fb.Cluster),
				"metro":          d.amountPtr(&fb.Metro),
				"global":         d.amountPtr(&fb.Global),
				"action":         d.str((*string)(&fb.Action)),
				"rollback_batch": d.integer(&fb.RollbackBatch),
			})
		},
		"gate": func(v *yaml.Node, f string) error {
			g := &s.Gate
			return d.fields(v, f, map[string]handler{
				"min_healthy": d.duration(&g.MinHealthy),
				"timeout":     d.duration(&g.Timeout),
				"poll":        d.duration(&g.Poll),
			})
		},
		"order": func(v *yaml.Node, f string) error {
			return d.list(v, f, func(e *yaml.Node, f string) error {
				var p Preference
				err := d.fields(e, f, map[string]handler{
					"by":    d.str(&p.By),
					"first": d.strings(&p.First),
					"desc":  d.boolean(&p.Desc),
				})
				s.Order = append(s.Order, p)
				return err
			})
		},
	})
}
