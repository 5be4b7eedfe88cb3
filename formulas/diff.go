package formulas

import (
	"context"
	"fmt"
	"strings"

	"github.com/fleetkit/fleetkit/disposition"
)

// ChangeKind says how an environment changed between two locks.
type ChangeKind string

// The kinds of environment change.
const (
	EnvAdded   ChangeKind = "added"
	EnvRemoved ChangeKind = "removed"
	EnvChanged ChangeKind = "changed"
)

// Diff is what changes between two locks (or two control files): the
// environments whose trees differ and, once CountServers has run, how many
// servers each change touches.
type Diff struct {
	// Envs are ordered by name. Environments whose pins are materially the
	// same (same repository, subdirectory and commit for every formula) are
	// not listed, even if the spec that chose them changed.
	Envs []EnvChange `json:"environments"`
	// Servers is the number of servers in changed environments (set by
	// CountServers).
	Servers int `json:"servers"`
}

// EnvChange is one environment that changes.
type EnvChange struct {
	Env      string          `json:"env"`
	Role     string          `json:"role"`
	State    string          `json:"state"`
	Kind     ChangeKind      `json:"kind"`
	Formulas []FormulaChange `json:"formulas"`
	// Servers is the number of servers of this role in this release state
	// (set by CountServers).
	Servers int `json:"servers"`
}

// FormulaChange is one formula of an environment that changes. Old is nil
// for a formula the environment gains, New nil for one it loses.
type FormulaChange struct {
	Formula string   `json:"formula"`
	Old     *LockPin `json:"old,omitempty"`
	New     *LockPin `json:"new,omitempty"`
}

// DiffLocks compares two locks.
func DiffLocks(a, b *Lock) *Diff {
	d := &Diff{}
	names := map[string]bool{}
	for n := range a.Environments {
		names[n] = true
	}
	for n := range b.Environments {
		names[n] = true
	}
	for _, name := range sortedKeys(names) {
		ea, eb := a.Environments[name], b.Environments[name]
		ch := EnvChange{Env: name, Kind: EnvChanged}
		var pa, pb map[string]LockPin
		switch {
		case ea == nil:
			ch.Kind, ch.Role, ch.State, pb = EnvAdded, eb.Role, eb.State, eb.Pins
		case eb == nil:
			ch.Kind, ch.Role, ch.State, pa = EnvRemoved, ea.Role, ea.State, ea.Pins
		default:
			ch.Role, ch.State, pa, pb = eb.Role, eb.State, ea.Pins, eb.Pins
		}
		formulas := map[string]bool{}
		for f := range pa {
			formulas[f] = true
		}
		for f := range pb {
			formulas[f] = true
		}
		for _, f := range sortedKeys(formulas) {
			oa, inA := pa[f]
			ob, inB := pb[f]
			if inA && inB && oa.Repo == ob.Repo && oa.Subdir == ob.Subdir && oa.Commit == ob.Commit {
				continue
			}
			fc := FormulaChange{Formula: f}
			if inA {
				fc.Old = &oa
			}
			if inB {
				fc.New = &ob
			}
			ch.Formulas = append(ch.Formulas, fc)
		}
		if ch.Kind == EnvChanged && len(ch.Formulas) == 0 {
			continue
		}
		d.Envs = append(d.Envs, ch)
	}
	return d
}

// DiffResolutions compares two resolutions, as DiffLocks of their locks.
func DiffResolutions(a, b *Resolution) *Diff { return DiffLocks(a.Lock(nil), b.Lock(nil)) }

// DiffControls resolves two control files with the same options and
// compares the results. With opts.Lock set, versions the lock still pins
// are taken from it, so only what changed needs the repositories.
func DiffControls(ctx context.Context, a, b *Control, opts ResolveOptions) (*Diff, error) {
	ra, err := ResolveAll(ctx, a, opts)
	if err != nil {
		return nil, err
	}
	rb, err := ResolveAll(ctx, b, opts)
	if err != nil {
		return nil, err
	}
	return DiffResolutions(ra, rb), nil
}

// CountServers sets, from a disposition snapshot, how many servers each
// changed environment holds (servers whose role and release_state are the
// environment's) and the total.
func (d *Diff) CountServers(snap *disposition.Snapshot) error {
	groups, err := snap.Aggregate(disposition.Query{}, "role", "release_state")
	if err != nil {
		return fmt.Errorf("formulas: count servers: %w", err)
	}
	counts := make(map[[2]string]int, len(groups))
	for _, g := range groups {
		counts[[2]string{g.Key[0], g.Key[1]}] = g.Count
	}
	d.Servers = 0
	for i := range d.Envs {
		e := &d.Envs[i]
		e.Servers = counts[[2]string{e.Role, e.State}]
		d.Servers += e.Servers
	}
	return nil
}

// String renders the diff for people: one line per environment, one
// indented line per formula.
func (d *Diff) String() string {
	if len(d.Envs) == 0 {
		return "no changes\n"
	}
	var b strings.Builder
	for _, e := range d.Envs {
		fmt.Fprintf(&b, "%s %s (%d servers)\n", e.Env, e.Kind, e.Servers)
		for _, f := range e.Formulas {
			fmt.Fprintf(&b, "  %s: %s -> %s\n", f.Formula, pinLabel(f.Old), pinLabel(f.New))
		}
	}
	fmt.Fprintf(&b, "%d environments, %d servers\n", len(d.Envs), d.Servers)
	return b.String()
}

func pinLabel(p *LockPin) string {
	if p == nil {
		return "(none)"
	}
	if p.Ref != "" {
		return p.Ref + "@" + short(p.Commit)
	}
	return short(p.Commit)
}
