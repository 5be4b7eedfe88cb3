package trials

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/rollout"
)

// ErrConflict is wrapped by every *ConflictError.
var ErrConflict = errors.New("trial conflict")

// ConflictKind says why a trial is refused.
type ConflictKind string

// The conflicts that refuse a trial.
const (
	// ConflictOverlap: another trial in force has some of the servers.
	ConflictOverlap ConflictKind = "overlap"
	// ConflictFrozen: some servers are in release state FrozenState.
	ConflictFrozen ConflictKind = "frozen"
	// ConflictTooLarge: the targets select more servers than the maximum.
	ConflictTooLarge ConflictKind = "too-large"
	// ConflictBlackout: the trial's start..expiry overlaps a blackout of
	// its rollout spec that covers some of its servers.
	ConflictBlackout ConflictKind = "blackout"
)

// maxListed bounds the servers a Conflict lists.
const maxListed = 20

// Conflict is one reason a trial is refused, located in its file.
type Conflict struct {
	Kind    ConflictKind `json:"kind"`
	File    string       `json:"file"`
	Line    int          `json:"line,omitempty"`
	Field   string       `json:"field"`
	Message string       `json:"message"`
	// Servers are the servers in conflict (at most 20; Count has them all).
	Servers []string `json:"servers,omitempty"`
	Count   int      `json:"count,omitempty"`
	// Trial is the other trial of an overlap.
	Trial string `json:"trial,omitempty"`
}

// String returns "file:line: field: message".
func (c Conflict) String() string {
	return (&Error{File: c.File, Line: c.Line, Field: c.Field, Err: errors.New(c.Message)}).Error()
}

// ConflictError refuses a trial; it lists every conflict.
type ConflictError struct {
	Trial     string
	Conflicts []Conflict
}

// Error implements the error interface.
func (e *ConflictError) Error() string {
	msgs := make([]string, len(e.Conflicts))
	for i, c := range e.Conflicts {
		msgs[i] = c.String()
	}
	return fmt.Sprintf("trial %s refused: %s", e.Trial, strings.Join(msgs, "; "))
}

// Unwrap returns ErrConflict.
func (e *ConflictError) Unwrap() error { return ErrConflict }

// Active is a trial in force, as far as conflicts go: its servers.
type Active struct {
	Name    string   `json:"name"`
	Servers []string `json:"servers"`
}

// Options are the inputs of Plan besides the trial and the fleet.
type Options struct {
	// Active are the trials in force. One of the trial's own name is the
	// trial itself (re-planned) and never conflicts.
	Active []Active
	// Now is the planning time: the rollout starts at the trial's start
	// or at Now, whichever is later. Required unless the trial has a
	// start.
	Now time.Time
	// Formulas, when set, makes Plan say which formula environments the
	// servers move between.
	Formulas *FormulasInput
}

// TrialPlan is what applying a trial would do.
type TrialPlan struct {
	Trial string `json:"trial"`
	File  string `json:"file"`
	Owner string `json:"owner"`
	// ReleaseState is the release state the servers get.
	ReleaseState string `json:"release_state"`
	// Servers are the targeted servers, sorted.
	Servers []string `json:"servers"`
	// Previous is each server's release state before the trial.
	Previous map[string]string `json:"previous"`
	// Start is when the rollout starts; Expiry when the trial ends.
	Start  time.Time `json:"start"`
	Expiry time.Time `json:"expiry"`
	// RolloutSpec is the rollout spec refd creates (the file's, with its
	// select restricted to Servers); empty without a rollout.
	RolloutSpec string `json:"rollout_spec,omitempty"`
	// Rollout is the rollout plan over Servers; nil without a rollout.
	Rollout *rollout.Plan `json:"rollout,omitempty"`
	// Environments are the formula environments the servers move
	// between; nil unless Options.Formulas was set.
	Environments []EnvChange `json:"environments,omitempty"`
	// Conflicts refuse the trial; Plan then also returns a *ConflictError.
	Conflicts []Conflict `json:"conflicts,omitempty"`
}

// Plan plans trial t over the fleet in snap: the servers it takes, the
// release state they get, the rollout plan, the formula environments (with
// opts.Formulas) and the conflicts that refuse it. It is pure.
//
// Targets that name unknown servers or empty clusters, a query matching
// nothing, an expiry already past and a rollout that cannot be planned are
// *Error values (ErrInvalid). Conflicts return the plan and a
// *ConflictError (ErrConflict) together, so a dry run can show both.
func Plan(ctx context.Context, t *Trial, snap *disposition.Snapshot, opts Options) (*TrialPlan, error) {
	start := t.Start
	if start.IsZero() || start.Before(opts.Now) {
		start = opts.Now
	}
	if start.IsZero() {
		return nil, errors.New("trials: Options.Now is required for a trial without a start")
	}
	if !t.Expiry.After(start) {
		return nil, t.errorf("expiry", "%s is not after the start %s", fmtTime(t.Expiry), fmtTime(start))
	}
	servers, nodes, err := t.targets(snap)
	if err != nil {
		return nil, err
	}
	p := &TrialPlan{
		Trial: t.Name, File: t.File, Owner: t.Owner, ReleaseState: t.ReleaseState(),
		Servers: servers, Previous: make(map[string]string, len(servers)),
		Start: start.UTC(), Expiry: t.Expiry.UTC(),
	}
	for _, n := range nodes {
		p.Previous[n.ID] = n.ReleaseState
	}
	p.Conflicts = t.conflicts(nodes, servers, start, opts.Active)
	if t.Rollout != nil {
		spec, err := t.RolloutSpec(servers)
		if err != nil {
			return nil, err
		}
		p.RolloutSpec = string(spec)
		s, err := rollout.ParseSpec(t.File, spec)
		if err != nil {
			return nil, t.errorf("rollout", "%v", err)
		}
		p.Rollout, err = rollout.NewPlan(ctx, s, snap, start)
		if err != nil {
			if errors.Is(err, rollout.ErrInvalidSpec) || errors.Is(err, rollout.ErrInfeasible) {
				return nil, t.errorf("rollout", "%v", err)
			}
			return nil, fmt.Errorf("trials: %s: plan rollout: %w", t.File, err)
		}
	}
	if opts.Formulas != nil {
		p.Environments, err = environments(ctx, t, nodes, opts.Formulas)
		if err != nil {
			return nil, err
		}
	}
	if len(p.Conflicts) > 0 {
		return p, &ConflictError{Trial: t.Name, Conflicts: p.Conflicts}
	}
	return p, nil
}

// targets returns the servers the trial selects, sorted, with their nodes.
func (t *Trial) targets(snap *disposition.Snapshot) ([]string, []*disposition.Node, error) {
	set := map[string]*disposition.Node{}
	for i, c := range t.Targets.Clusters {
		q := disposition.Query{Terms: []disposition.Term{{Field: "cluster", Op: disposition.Eq, Values: []string{c}}}}
		ns, err := snap.Query(q)
		if err != nil {
			return nil, nil, t.errorf(fmt.Sprintf("targets.clusters[%d]", i), "%v", err)
		}
		if len(ns) == 0 {
			return nil, nil, t.errorf(fmt.Sprintf("targets.clusters[%d]", i), "no servers in cluster %q", c)
		}
		for _, n := range ns {
			set[n.ID] = n
		}
	}
	for i, id := range t.Targets.Servers {
		n, ok := snap.Get(id)
		if !ok {
			return nil, nil, t.errorf(fmt.Sprintf("targets.servers[%d]", i), "no server %q in the fleet", id)
		}
		set[n.ID] = n
	}
	if t.Targets.Query != "" {
		q, err := disposition.ParseQuery(t.Targets.Query)
		if err != nil {
			return nil, nil, t.errorf("targets.query", "%v", err)
		}
		ns, err := snap.Query(q)
		if err != nil {
			return nil, nil, t.errorf("targets.query", "%v", err)
		}
		if len(ns) == 0 {
			return nil, nil, t.errorf("targets.query", "%q matches no server", t.Targets.Query)
		}
		for _, n := range ns {
			set[n.ID] = n
		}
	}
	ids := make([]string, 0, len(set))
	for id := range set {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	nodes := make([]*disposition.Node, len(ids))
	for i, id := range ids {
		nodes[i] = set[id]
	}
	return ids, nodes, nil
}

// targetField is the field conflicts about the servers name: the first
// targets key the file has.
func (t *Trial) targetField() string {
	for _, f := range []string{"targets.servers", "targets.clusters", "targets.query"} {
		if t.lines[f] > 0 {
			return f
		}
	}
	return "targets"
}

func (t *Trial) conflict(kind ConflictKind, field string, servers []string, format string, args ...any) Conflict {
	c := Conflict{Kind: kind, File: t.File, Line: t.lineOrParent(field), Field: field, Message: fmt.Sprintf(format, args...), Count: len(servers)}
	if len(servers) > maxListed {
		servers = servers[:maxListed]
	}
	c.Servers = slices.Clone(servers)
	return c
}

func (t *Trial) conflicts(nodes []*disposition.Node, servers []string, start time.Time, active []Active) []Conflict {
	var out []Conflict
	if len(servers) > t.Targets.Max {
		out = append(out, t.conflict(ConflictTooLarge, "targets.max", nil,
			"the targets select %d servers, more than the maximum of %d", len(servers), t.Targets.Max))
	}
	var frozen []string
	for _, n := range nodes {
		if n.ReleaseState == FrozenState {
			frozen = append(frozen, n.ID)
		}
	}
	if len(frozen) > 0 {
		out = append(out, t.conflict(ConflictFrozen, t.targetField(), frozen,
			"%d servers are frozen (release state %s): %s", len(frozen), FrozenState, listed(frozen)))
	}
	others := slices.Clone(active)
	slices.SortFunc(others, func(a, b Active) int { return strings.Compare(a.Name, b.Name) })
	for _, a := range others {
		if a.Name == t.Name {
			continue
		}
		var both []string
		for _, id := range a.Servers {
			if _, ok := slices.BinarySearch(servers, id); ok {
				both = append(both, id)
			}
		}
		if len(both) > 0 {
			slices.Sort(both)
			c := t.conflict(ConflictOverlap, t.targetField(), both,
				"%d servers are already in trial %s: %s", len(both), a.Name, listed(both))
			c.Trial = a.Name
			out = append(out, c)
		}
	}
	if t.Rollout != nil {
		for i, b := range t.Rollout.Blackouts {
			if !b.From.Before(t.Expiry) || !start.Before(b.To) {
				continue
			}
			var hit []string
			for _, n := range nodes {
				if (b.Region == "" || b.Region == n.Region) && (b.Metro == "" || b.Metro == n.Metro) {
					hit = append(hit, n.ID)
				}
			}
			if len(hit) == 0 {
				continue
			}
			reason := ""
			if b.Reason != "" {
				reason = " (" + b.Reason + ")"
			}
			out = append(out, t.conflict(ConflictBlackout, fmt.Sprintf("rollout.blackouts[%d]", i), hit,
				"the trial (%s to %s) overlaps the %s blackout %s to %s%s on %d of its servers",
				fmtTime(start), fmtTime(t.Expiry), b.Scope, fmtTime(b.From), fmtTime(b.To), reason, len(hit)))
		}
	}
	return out
}

func listed(ids []string) string {
	if len(ids) > 5 {
		return strings.Join(ids[:5], ", ") + fmt.Sprintf(" and %d more", len(ids)-5)
	}
	return strings.Join(ids, ", ")
}

// RolloutSpec returns the rollout spec of the trial over servers, as YAML:
// the file's rollout section with its select restricted to the servers
// (its own select terms still apply), named after the trial unless it has
// a name, and rolling out the trial's component version when the trial
// has exactly one and the section names no component.
func (t *Trial) RolloutSpec(servers []string) ([]byte, error) {
	if t.rollout == nil {
		return nil, t.errorf("rollout", "the trial has no rollout")
	}
	if len(servers) == 0 {
		return nil, t.errorf("targets", "no servers")
	}
	src := t.rollout
	n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	str := func(v string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v} }
	sel := "id=" + strings.Join(servers, ",")
	has := map[string]bool{}
	for i := 0; i+1 < len(src.Content); i += 2 {
		k, v := src.Content[i], src.Content[i+1]
		has[k.Value] = true
		if k.Value == "select" {
			if extra := strings.TrimSpace(deref(v).Value); extra != "" {
				sel += " " + extra
			}
			continue
		}
		n.Content = append(n.Content, k, v)
	}
	n.Content = append(n.Content, str("select"), str(sel))
	if !has["name"] {
		n.Content = append(n.Content, str("name"), str("trial "+t.Name))
	}
	if !has["component"] && !has["version"] && len(t.Versions) == 1 {
		for c, v := range t.Versions {
			n.Content = append(n.Content, str("component"), str(c), str("version"), str(v))
		}
	}
	out, err := yaml.Marshal(n)
	if err != nil {
		return nil, t.errorf("rollout", "encode: %v", err)
	}
	return out, nil
}
