package formulas

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
)

// Control is a parsed control file: which formulas exist, which roles and
// release states the fleet has, and which version of each formula each
// release state (and role within it) gets. It is immutable once parsed and
// safe for concurrent use.
type Control struct {
	// File is the control file's name as given to Parse; errors use it.
	File string `json:"file"`
	// Formulas in file order. That order is also the order of the formulas
	// in an environment and in its top file entry.
	Formulas []*Formula `json:"formulas"`
	// Roles in file order.
	Roles []string `json:"roles"`
	// States are the release states, in file order.
	States []*State `json:"states"`

	formulaIndex map[string]int
	stateIndex   map[string]int
	roleIndex    map[string]int
}

// Formula is one Salt formula: a git repository, or a subdirectory of one,
// whose tree is mounted in an environment under the formula's name.
type Formula struct {
	Name string `json:"name"`
	// Repo is the repository's URL, or its absolute path (a relative path in
	// the control file is taken relative to the control file's directory).
	Repo string `json:"repo"`
	// Subdir is the directory of the repository that holds the formula's
	// state tree; empty for the repository root.
	Subdir string `json:"subdir,omitempty"`
	// SLS are the state names the top file applies; default [Name].
	SLS  []string `json:"sls"`
	Line int      `json:"line"`
}

// State is one release state: a cohort of servers that moves through
// releases together (trial, nrt, ga, ...).
type State struct {
	Name string `json:"name"`
	// Inherit names the release state whose versions this one starts from.
	Inherit string `json:"inherit,omitempty"`
	// Share is the fraction of the fleet (0 to 1) the state is meant to
	// hold; 0 when not declared.
	Share float64 `json:"share,omitempty"`
	// Versions are the state's versions for every role, in file order.
	Versions []Entry `json:"versions,omitempty"`
	// Roles holds per-role overrides, applied after Versions.
	Roles map[string][]Entry `json:"roles,omitempty"`
	Line  int                `json:"line"`
	// InheritLine is the line of the inherit key, 0 without one.
	InheritLine int `json:"inherit_line,omitempty"`
}

// Entry is one rule of the control file: this formula gets this version.
type Entry struct {
	Formula string `json:"formula"`
	Spec    Spec   `json:"spec"`
	Field   string `json:"field"` // e.g. "states.trial.roles.edge.nginx"
	Line    int    `json:"line"`

	canon string // Spec.String(), computed once
}

// EnvRef names one environment: a role in a release state.
type EnvRef struct {
	Name  string `json:"name"`
	Role  string `json:"role"`
	State string `json:"state"`
}

// EnvName returns the name of the environment of a role in a release state,
// "<role>-<state>" (edge-trial). It is the Salt saltenv and the directory
// name of the environment.
func EnvName(role, state string) string { return role + "-" + state }

// nameRE is what roles, release states and formulas may be called: they
// become saltenv names, grain values in top file matchers and directory
// names.
var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

// reservedStateKeys are the keys of a release state that are not formulas.
var reservedStateKeys = map[string]bool{"inherit": true, "share": true, "roles": true}

// ParseFile reads and parses a control file. Relative repository paths are
// taken relative to the file's directory.
func ParseFile(path string) (*Control, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("formulas: %w", err)
	}
	return Parse(path, data)
}

// Formula returns the formula with the given name.
func (c *Control) Formula(name string) (*Formula, bool) {
	i, ok := c.formulaIndex[name]
	if !ok {
		return nil, false
	}
	return c.Formulas[i], true
}

// State returns the release state with the given name.
func (c *Control) State(name string) (*State, bool) {
	i, ok := c.stateIndex[name]
	if !ok {
		return nil, false
	}
	return c.States[i], true
}

// HasRole reports whether the control file declares role.
func (c *Control) HasRole(role string) bool {
	_, ok := c.roleIndex[role]
	return ok
}

// Environments lists every environment, role x release state, ordered by
// name.
func (c *Control) Environments() []EnvRef {
	refs := make([]EnvRef, 0, len(c.Roles)*len(c.States))
	for _, r := range c.Roles {
		for _, s := range c.States {
			refs = append(refs, EnvRef{Name: EnvName(r, s.Name), Role: r, State: s.Name})
		}
	}
	sortEnvRefs(refs)
	return refs
}

// chain returns the release states from the root of state's inheritance
// down to state itself. Parse has ruled out cycles and unknown names.
func (c *Control) chain(state *State) []*State {
	var rev []*State
	for s := state; s != nil; {
		rev = append(rev, s)
		if s.Inherit == "" || len(rev) > len(c.States) {
			break
		}
		s, _ = c.State(s.Inherit)
	}
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	return rev
}

// want is what the control file asks for one formula in one environment.
type want struct {
	formula *Formula
	spec    Spec
	canon   string // spec.String()
	rule    Rule
}

// wants computes what the control file asks for in the environment of role
// in state: for each state from the root of the inheritance chain down, its
// versions, then its overrides for role. Later rules replace earlier ones;
// "none" removes the formula. The result is in formula declaration order.
func (c *Control) wants(role string, state *State) []want {
	chosen := make([]want, len(c.Formulas))
	apply := func(s *State, es []Entry, role string) {
		for i := range es {
			e := &es[i]
			fi := c.formulaIndex[e.Formula]
			if e.Spec.Kind == SpecNone {
				chosen[fi].formula = nil
				continue
			}
			chosen[fi] = want{
				formula: c.Formulas[fi],
				spec:    e.Spec,
				canon:   e.canon,
				rule:    Rule{State: s.Name, Role: role, Field: e.Field, File: c.File, Line: e.Line},
			}
		}
	}
	for _, s := range c.chain(state) {
		apply(s, s.Versions, "")
		apply(s, s.Roles[role], role)
	}
	out := chosen[:0]
	for _, w := range chosen {
		if w.formula != nil {
			out = append(out, w)
		}
	}
	return out
}

// resolveRepoPath makes a relative repository path absolute against the
// control file's directory; URLs and absolute paths are returned as they are.
func resolveRepoPath(file, repo string) string {
	if isURL(repo) || filepath.IsAbs(repo) {
		return repo
	}
	joined := filepath.Join(filepath.Dir(file), repo)
	if abs, err := filepath.Abs(joined); err == nil {
		return abs
	}
	return joined
}

var urlRE = regexp.MustCompile(`^([a-zA-Z][a-zA-Z0-9+.-]*://|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:)`)

// isURL reports whether repo is a URL git understands (scheme://... or the
// scp-like user@host:path) rather than a local path.
func isURL(repo string) bool { return urlRE.MatchString(repo) }
