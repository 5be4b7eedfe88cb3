package formulas

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/Masterminds/semver/v3"
	"github.com/fleetkit/fleetkit/disposition"
)

// Rule locates the line of the control file that chose a formula's version
// for an environment.
type Rule struct {
	State string `json:"state"`          // release state the rule belongs to
	Role  string `json:"role,omitempty"` // role of a per-role override, "" for a state default
	Field string `json:"field"`          // e.g. "states.trial.roles.edge.nginx"
	File  string `json:"file"`
	Line  int    `json:"line"`
}

// String returns "file:line field".
func (r Rule) String() string { return fmt.Sprintf("%s:%d %s", r.File, r.Line, r.Field) }

// Pin is one formula of an environment pinned to a commit.
type Pin struct {
	Formula string   `json:"formula"`
	Repo    string   `json:"repo"`
	Subdir  string   `json:"subdir,omitempty"`
	SLS     []string `json:"sls"`
	// Spec is the canonical form of the version the control file asks for
	// (see Spec.String).
	Spec   string `json:"spec"`
	Commit string `json:"commit"`
	// Ref is the tag or branch the commit was found under; empty for a
	// commit spec.
	Ref string `json:"ref,omitempty"`
	// Unpinned marks a floating branch.
	Unpinned bool `json:"unpinned,omitempty"`
	// PromotedFrom names the release state whose locked commit was promoted
	// to this environment, if any.
	PromotedFrom string `json:"promoted_from,omitempty"`
	// Rule is the control file line that chose the version.
	Rule Rule `json:"rule"`
}

// Env is one environment: the formulas a role gets in a release state,
// each pinned to a commit, in the control file's formula order.
type Env struct {
	Name  string `json:"name"`
	Role  string `json:"role"`
	State string `json:"state"`
	Pins  []Pin  `json:"pins"`
}

// Pin returns the pin of a formula.
func (e Env) Pin(formula string) (Pin, bool) {
	for _, p := range e.Pins {
		if p.Formula == formula {
			return p, true
		}
	}
	return Pin{}, false
}

// Resolution is every environment of a control file, resolved.
type Resolution struct {
	// Envs are ordered by name.
	Envs []Env `json:"environments"`
	// Warnings are things that resolved but deserve a look: unpinned
	// branches, tags that moved since the last lock.
	Warnings []string `json:"warnings,omitempty"`
}

// Env returns the environment with the given name.
func (r *Resolution) Env(name string) (Env, bool) {
	i, ok := slices.BinarySearchFunc(r.Envs, name, func(e Env, n string) int { return strings.Compare(e.Name, n) })
	if !ok {
		return Env{}, false
	}
	return r.Envs[i], true
}

// ForNode returns the environment a server gets: the one of its role and
// release state. An error wrapping ErrNoEnvironment says the control file
// has no environment for it.
func (r *Resolution) ForNode(n *disposition.Node) (Env, error) {
	if n == nil {
		return Env{}, fmt.Errorf("formulas: nil node: %w", ErrNoEnvironment)
	}
	for _, e := range r.Envs {
		if e.Role == n.Role && e.State == n.ReleaseState {
			return e, nil
		}
	}
	return Env{}, fmt.Errorf("formulas: node %s (role %q, release state %q): %w", n.ID, n.Role, n.ReleaseState, ErrNoEnvironment)
}

// ResolveOptions says where versions come from.
type ResolveOptions struct {
	// Repos opens repositories to list tags and resolve refs. Nil resolves
	// offline: every version must come from Lock.
	Repos Repos
	// Lock pins to reuse: a locked pin is used, without asking the
	// repository, when the control file still asks for the same repository,
	// subdirectory and spec. That makes resolution against a lock offline
	// and reproducible.
	Lock *Lock
	// Frozen resolves only from Lock and fails, naming the line, wherever
	// the control file disagrees with it.
	Frozen bool
	// Update ignores Lock's pins and resolves every version again (new tags
	// matching a constraint, branch heads, moved tags). Lock is then only
	// used to warn about tags that moved.
	Update bool
}

// Resolver resolves environments of one control file. It caches each
// repository's tags for its lifetime, so use one per run. It is safe for
// concurrent use.
type Resolver struct {
	ctl  *Control
	opts ResolveOptions

	mu          sync.Mutex
	repos       map[string]*repoEntry
	constraints map[string]*semver.Constraints
}

type repoEntry struct {
	mu       sync.Mutex
	loaded   bool
	repo     Repo
	tags     map[string]string
	versions []taggedVersion // highest first
	matches  map[string]Tag  // constraint -> tag it resolved to
	err      error
}

// matched returns the tag a constraint already resolved to in this run:
// every environment that inherits a constraint resolves it once.
func (e *repoEntry) matched(constraint string) (Tag, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t, ok := e.matches[constraint]
	return t, ok
}

func (e *repoEntry) remember(constraint string, t Tag) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.matches == nil {
		e.matches = map[string]Tag{}
	}
	e.matches[constraint] = t
}

type taggedVersion struct {
	v   *semver.Version
	tag Tag
}

// NewResolver returns a Resolver of ctl.
func NewResolver(ctl *Control, opts ResolveOptions) *Resolver {
	return &Resolver{ctl: ctl, opts: opts, repos: map[string]*repoEntry{}, constraints: map[string]*semver.Constraints{}}
}

// Resolve returns the environment of role in a release state. Errors about
// the control file are an ErrorList of *Error naming file, line and field.
func Resolve(ctx context.Context, ctl *Control, role, state string, opts ResolveOptions) (Env, error) {
	return NewResolver(ctl, opts).Resolve(ctx, role, state)
}

// ResolveAll resolves every environment of ctl: each role in each release
// state.
func ResolveAll(ctx context.Context, ctl *Control, opts ResolveOptions) (*Resolution, error) {
	return NewResolver(ctl, opts).ResolveAll(ctx)
}

// Resolve returns the environment of role in a release state.
func (r *Resolver) Resolve(ctx context.Context, role, state string) (Env, error) {
	env, _, err := r.resolve(ctx, role, state)
	return env, err
}

// ResolveAll resolves every environment. All errors are reported, each
// once, as an ErrorList.
func (r *Resolver) ResolveAll(ctx context.Context) (*Resolution, error) {
	res := &Resolution{}
	var errs ErrorList
	seenErr, seenWarn := map[string]bool{}, map[string]bool{}
	for _, ref := range r.ctl.Environments() {
		env, warns, err := r.resolve(ctx, ref.Role, ref.State)
		if err != nil {
			var list ErrorList
			if !errors.As(err, &list) {
				return nil, err
			}
			for _, e := range list {
				if msg := e.Error(); !seenErr[msg] {
					seenErr[msg] = true
					errs = append(errs, e)
				}
			}
			continue
		}
		for _, w := range warns {
			if !seenWarn[w] {
				seenWarn[w] = true
				res.Warnings = append(res.Warnings, w)
			}
		}
		res.Envs = append(res.Envs, env)
	}
	if len(errs) > 0 {
		slices.SortStableFunc(errs, func(a, b *Error) int { return cmp.Compare(a.Line, b.Line) })
		return nil, errs
	}
	return res, nil
}

func (r *Resolver) resolve(ctx context.Context, role, state string) (Env, []string, error) {
	if !r.ctl.HasRole(role) {
		return Env{}, nil, fmt.Errorf("formulas: role %q: %w", role, ErrUnknownRole)
	}
	st, ok := r.ctl.State(state)
	if !ok {
		return Env{}, nil, fmt.Errorf("formulas: release state %q: %w", state, ErrUnknownState)
	}
	name := EnvName(role, state)
	wants := r.ctl.wants(role, st)
	env := Env{Name: name, Role: role, State: state, Pins: make([]Pin, 0, len(wants))}

	var locked *LockEnv
	if r.opts.Lock != nil {
		locked = r.opts.Lock.Environments[name]
	}
	if r.opts.Frozen {
		if err := r.checkFrozen(name, wants, locked); err != nil {
			return Env{}, nil, err
		}
	}

	var errs ErrorList
	var warns []string
	for _, w := range wants {
		pin := Pin{
			Formula: w.formula.Name, Repo: w.formula.Repo, Subdir: w.formula.Subdir,
			SLS: w.formula.SLS, Spec: w.canon, Unpinned: w.spec.Unpinned, Rule: w.rule,
		}
		var lp LockPin
		var haveLock bool
		if locked != nil {
			lp, haveLock = locked.Pins[pin.Formula]
			haveLock = haveLock && lp.Repo == pin.Repo && lp.Subdir == pin.Subdir && lp.Spec == w.canon
		}
		if haveLock && !r.opts.Update {
			pin.Commit, pin.Ref, pin.PromotedFrom = lp.Commit, lp.Ref, lp.PromotedFrom
		} else {
			commit, ref, err := r.pinOnline(ctx, w)
			if err != nil {
				var e *Error
				if errors.As(err, &e) {
					errs = append(errs, e)
					continue
				}
				return Env{}, nil, err
			}
			pin.Commit, pin.Ref = commit, ref
			if haveLock && w.spec.Kind == SpecTag && lp.Commit != commit {
				warns = append(warns, fmt.Sprintf("%s: tag %s of formula %s moved from %s to %s since the lock", w.rule, w.spec.Value, pin.Formula, short(lp.Commit), short(pin.Commit)))
			}
		}
		if w.spec.Unpinned {
			warns = append(warns, fmt.Sprintf("%s: formula %s follows branch %s (unpinned): pinned to %s until the next lock update", w.rule, pin.Formula, w.spec.Value, short(pin.Commit)))
		}
		env.Pins = append(env.Pins, pin)
	}
	if len(errs) > 0 {
		return Env{}, nil, errs
	}
	return env, warns, nil
}

// checkFrozen reports every way the lock disagrees with the control file
// for one environment.
func (r *Resolver) checkFrozen(name string, wants []want, locked *LockEnv) error {
	var errs ErrorList
	lockFile := "lock"
	if r.opts.Lock != nil && r.opts.Lock.File != "" {
		lockFile = r.opts.Lock.File
	}
	if locked == nil {
		errs = append(errs, &Error{File: lockFile, Field: "environments." + name, Err: ErrLockMismatch,
			Msg: fmt.Sprintf("environment %s is not in the lock (frozen: run lock first)", name)})
		return errs
	}
	for _, w := range wants {
		lp, ok := locked.Pins[w.formula.Name]
		var msg string
		switch {
		case !ok:
			msg = fmt.Sprintf("%s gets %s but the lock does not pin it", name, w.spec)
		case lp.Repo != w.formula.Repo:
			msg = fmt.Sprintf("%s: control file says repository %s, lock has %s", name, w.formula.Repo, lp.Repo)
		case lp.Subdir != w.formula.Subdir:
			msg = fmt.Sprintf("%s: control file says subdir %q, lock has %q", name, w.formula.Subdir, lp.Subdir)
		case lp.Spec != w.canon:
			msg = fmt.Sprintf("%s: control file asks for %s, lock has %s", name, w.canon, lp.Spec)
		default:
			continue
		}
		errs = append(errs, &Error{File: w.rule.File, Line: w.rule.Line, Field: w.rule.Field, Err: ErrLockMismatch, Msg: msg + " (frozen)"})
	}
	if len(locked.Pins) == len(wants) && len(errs) == 0 {
		return nil // every wanted formula is pinned, so nothing else is
	}
	for _, f := range sortedKeys(locked.Pins) {
		if !slices.ContainsFunc(wants, func(w want) bool { return w.formula.Name == f }) {
			errs = append(errs, &Error{File: lockFile, Field: "environments." + name + ".pins." + f, Err: ErrLockMismatch,
				Msg: fmt.Sprintf("lock pins formula %s in %s but the control file does not give it (frozen)", f, name)})
		}
	}
	return errs.err()
}

// pinOnline resolves one version against its repository. Problems with the
// control file come back as *Error; others (I/O, context) as they are.
func (r *Resolver) pinOnline(ctx context.Context, w want) (commit, ref string, err error) {
	at := func(sentinel error, format string, args ...any) error {
		return &Error{File: w.rule.File, Line: w.rule.Line, Field: w.rule.Field, Err: sentinel, Msg: fmt.Sprintf(format, args...)}
	}
	if r.opts.Frozen || r.opts.Repos == nil {
		why := "resolving offline"
		if r.opts.Frozen {
			why = "frozen"
		}
		return "", "", at(ErrOffline, "formula %s: %s needs repository %s, no lock entry matches (%s)", w.formula.Name, w.spec, w.formula.Repo, why)
	}
	e, err := r.repo(ctx, w.formula.Repo, w.spec.Kind == SpecTag || w.spec.Kind == SpecConstraint)
	if err != nil {
		return "", "", fmt.Errorf("formulas: %s (%s): %w", w.formula.Name, w.rule, err)
	}
	switch w.spec.Kind {
	case SpecTag:
		c, ok := e.tags[w.spec.Value]
		if !ok {
			return "", "", at(ErrTagNotFound, "formula %s: tag %s is not in repository %s%s", w.formula.Name, w.spec.Value, w.formula.Repo, tagHint(w.spec.Value))
		}
		return c, w.spec.Value, nil
	case SpecConstraint:
		if m, ok := e.matched(w.spec.Value); ok {
			return m.Commit, m.Name, nil
		}
		cons, err := r.constraint(w.spec.Value)
		if err != nil {
			return "", "", at(ErrSyntax, "bad semver constraint %q: %v", w.spec.Value, err)
		}
		for _, tv := range e.versions {
			if cons.Check(tv.v) {
				e.remember(w.spec.Value, tv.tag)
				return tv.tag.Commit, tv.tag.Name, nil
			}
		}
		return "", "", at(ErrNoMatchingTag, "formula %s: constraint %q matches none of the %d version tags of %s%s", w.formula.Name, w.spec.Value, len(e.versions), w.formula.Repo, highest(e.versions))
	case SpecBranch, SpecCommit:
		name := w.spec.Value
		if w.spec.Kind == SpecBranch {
			name = "refs/heads/" + name
		}
		c, err := e.repo.ResolveRef(ctx, name)
		if errors.Is(err, ErrRefNotFound) {
			return "", "", at(ErrRefNotFound, "formula %s: %s %s is not in repository %s", w.formula.Name, w.spec.Kind, w.spec.Value, w.formula.Repo)
		}
		if err != nil {
			return "", "", fmt.Errorf("formulas: %s (%s): %w", w.formula.Name, w.rule, err)
		}
		if w.spec.Kind == SpecBranch {
			return c, w.spec.Value, nil
		}
		return c, "", nil
	}
	return "", "", at(ErrSyntax, "cannot resolve %s", w.spec)
}

func tagHint(tag string) string {
	if strings.HasPrefix(tag, "v") {
		return ""
	}
	return " (for a branch write {branch: " + tag + ", unpinned: true})"
}

func highest(vs []taggedVersion) string {
	if len(vs) == 0 {
		return ""
	}
	n := min(len(vs), 3)
	names := make([]string, n)
	for i := range n {
		names[i] = vs[i].tag.Name
	}
	return " (highest: " + strings.Join(names, ", ") + ")"
}

// repo opens a repository once per Resolver and, when asked, lists its
// tags once. A context error is not cached.
func (r *Resolver) repo(ctx context.Context, location string, needTags bool) (*repoEntry, error) {
	r.mu.Lock()
	e, ok := r.repos[location]
	if !ok {
		e = &repoEntry{}
		r.repos[location] = e
	}
	r.mu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	if e.err != nil {
		return nil, e.err
	}
	if e.repo == nil {
		repo, err := r.opts.Repos.Open(ctx, location)
		if err != nil {
			if ctx.Err() == nil {
				e.err = err
			}
			return nil, err
		}
		e.repo = repo
	}
	if needTags && !e.loaded {
		tags, err := e.repo.Tags(ctx)
		if err != nil {
			if ctx.Err() == nil {
				e.err = err
			}
			return nil, err
		}
		e.tags, e.versions = indexTags(tags)
		e.loaded = true
	}
	return e, nil
}

// indexTags maps tag names to commits and sorts the tags that are semantic
// versions, highest first; equal versions (v1.2.0 and 1.2.0) by name.
func indexTags(tags []Tag) (map[string]string, []taggedVersion) {
	byName := make(map[string]string, len(tags))
	var vs []taggedVersion
	for _, t := range tags {
		byName[t.Name] = t.Commit
		if v, err := semver.NewVersion(t.Name); err == nil {
			vs = append(vs, taggedVersion{v: v, tag: t})
		}
	}
	slices.SortFunc(vs, func(a, b taggedVersion) int {
		if c := b.v.Compare(a.v); c != 0 {
			return c
		}
		return strings.Compare(a.tag.Name, b.tag.Name)
	})
	return byName, vs
}

func (r *Resolver) constraint(s string) (*semver.Constraints, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.constraints[s]; ok {
		return c, nil
	}
	c, err := parseConstraint(s)
	if err != nil {
		return nil, err
	}
	r.constraints[s] = c
	return c, nil
}

func parseConstraint(s string) (*semver.Constraints, error) { return semver.NewConstraint(s) }

func short(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	return commit
}

func sortEnvRefs(refs []EnvRef) {
	slices.SortFunc(refs, func(a, b EnvRef) int { return strings.Compare(a.Name, b.Name) })
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
