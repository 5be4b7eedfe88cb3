package trials

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/formulas"
)

// FormulasInput is a formulas control file and how to resolve it, for
// Plan to say which environments the trial's servers move between.
type FormulasInput struct {
	// File names the control file in errors.
	File string
	// Control is the control file's text.
	Control []byte
	// Resolve says where versions come from (repositories, lock).
	Resolve formulas.ResolveOptions
}

// EnvChange is the move of the servers of one role and previous release
// state from their environment to the trial's.
type EnvChange struct {
	Role string `json:"role"`
	// From is the servers' release state before the trial.
	From    string `json:"from"`
	Servers int    `json:"servers"`
	// Before and After are the environment names; Before is empty when
	// the control file had no environment for the servers.
	Before string `json:"before,omitempty"`
	After  string `json:"after"`
	// Formulas are the formulas whose pin changes, in control file order.
	Formulas []FormulaChange `json:"formulas,omitempty"`
	// Error says why an environment could not be resolved.
	Error string `json:"error,omitempty"`
}

// FormulaChange is one formula's version before and after, each written
// "spec@commit" (short commit), or "" when the environment lacks it.
type FormulaChange struct {
	Formula string `json:"formula"`
	From    string `json:"from,omitempty"`
	To      string `json:"to,omitempty"`
}

// WithTrialState returns the control file (named file, text control) with
// the trial's release state added: it inherits t.Inherit and sets
// t.Formulas. Formulas unknown to the control file and an unknown
// inherited state are *Error values naming the trial file's line.
func WithTrialState(file string, control []byte, t *Trial) (*formulas.Control, error) {
	return WithTrialStates(file, control, t)
}

// WithTrialStates is WithTrialState for every trial in ts at once, as a
// daemon serving several trials in force needs: each trial's state is
// added in the order given. Two trials of one name are an error.
func WithTrialStates(file string, control []byte, ts ...*Trial) (*formulas.Control, error) {
	base, err := formulas.Parse(file, control)
	if err != nil {
		return nil, fmt.Errorf("trials: %w", err)
	}
	if len(ts) == 0 {
		return base, nil
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(control, &doc); err != nil || len(doc.Content) == 0 {
		return nil, fmt.Errorf("trials: %s: %v", file, err)
	}
	root := deref(doc.Content[0])
	var states *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "states" {
			states = deref(root.Content[i+1])
		}
	}
	if states == nil || states.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("trials: %s: no states mapping", file)
	}
	str := func(v string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v} }
	seen := map[string]bool{}
	for _, t := range ts {
		if _, ok := base.State(t.Inherit); !ok {
			return nil, t.errorf("inherit", "no release state %q in %s", t.Inherit, file)
		}
		if _, ok := base.State(t.ReleaseState()); ok || seen[t.ReleaseState()] {
			return nil, t.errorf("name", "%s already declares release state %q", file, t.ReleaseState())
		}
		seen[t.ReleaseState()] = true
		names := make([]string, 0, len(t.Formulas))
		for f := range t.Formulas {
			if _, ok := base.Formula(f); !ok {
				return nil, t.errorf("formulas."+f, "no formula %q in %s", f, file)
			}
			names = append(names, f)
		}
		slices.Sort(names)
		body := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{str("inherit"), str(t.Inherit)}}
		for _, f := range names {
			body.Content = append(body.Content, str(f), str(t.Formulas[f]))
		}
		states.Content = append(states.Content, str(t.ReleaseState()), body)
	}
	states.Style = 0 // block style, whatever the file used
	out, err := yaml.Marshal(&doc)
	if err != nil {
		return nil, fmt.Errorf("trials: %s: encode: %w", file, err)
	}
	ctl, err := formulas.Parse(file, out)
	if err != nil {
		if len(ts) == 1 {
			return nil, ts[0].errorf("formulas", "with %s: %v", file, err)
		}
		return nil, fmt.Errorf("trials: %s with the trials' states: %w", file, err)
	}
	return ctl, nil
}

// environments resolves, for each role and previous release state of the
// trial's servers, the environment before and during the trial.
func environments(ctx context.Context, t *Trial, nodes []*disposition.Node, in *FormulasInput) ([]EnvChange, error) {
	base, err := formulas.Parse(in.File, in.Control)
	if err != nil {
		return nil, fmt.Errorf("trials: %w", err)
	}
	withTrial, err := WithTrialState(in.File, in.Control, t)
	if err != nil {
		return nil, err
	}
	type key struct{ role, from string }
	counts := map[key]int{}
	for _, n := range nodes {
		counts[key{n.Role, n.ReleaseState}]++
	}
	keys := make([]key, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b key) int {
		if c := strings.Compare(a.role, b.role); c != 0 {
			return c
		}
		return strings.Compare(a.from, b.from)
	})
	before := formulas.NewResolver(base, in.Resolve)
	after := formulas.NewResolver(withTrial, in.Resolve)
	out := make([]EnvChange, 0, len(keys))
	for _, k := range keys {
		c := EnvChange{Role: k.role, From: k.from, Servers: counts[k], After: formulas.EnvName(k.role, t.ReleaseState())}
		var old formulas.Env
		if k.role != "" && k.from != "" {
			if e, err := before.Resolve(ctx, k.role, k.from); err == nil {
				old, c.Before = e, e.Name
			}
		}
		nu, err := after.Resolve(ctx, k.role, t.ReleaseState())
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			c.Error = err.Error()
			out = append(out, c)
			continue
		}
		for _, f := range withTrial.Formulas {
			from, to := pinLabel(old, f.Name), pinLabel(nu, f.Name)
			if from != to {
				c.Formulas = append(c.Formulas, FormulaChange{Formula: f.Name, From: from, To: to})
			}
		}
		out = append(out, c)
	}
	return out, nil
}

func pinLabel(e formulas.Env, formula string) string {
	p, ok := e.Pin(formula)
	if !ok {
		return ""
	}
	c := p.Commit
	if len(c) > 12 {
		c = c[:12]
	}
	return p.Spec + "@" + c
}
