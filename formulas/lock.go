package formulas

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// LockVersion is the version of the lock file format this package writes.
const LockVersion = 1

// Lock pins every environment to commits, so that resolving and building
// from it is offline and reproducible. It is plain data: YAML on disk (see
// Marshal and ParseLock), JSON in APIs.
type Lock struct {
	// File is where the lock was read from, for error messages.
	File string `yaml:"-" json:"-"`
	// Version is the lock file format version, LockVersion.
	Version int `yaml:"version" json:"version"`
	// Environments by name.
	Environments map[string]*LockEnv `yaml:"environments" json:"environments"`
	// Promotions is the history of promotions and their rollbacks, oldest
	// first.
	Promotions []Promotion `yaml:"promotions,omitempty" json:"promotions,omitempty"`
}

// LockEnv is one locked environment.
type LockEnv struct {
	Role  string             `yaml:"role" json:"role"`
	State string             `yaml:"state" json:"state"`
	Pins  map[string]LockPin `yaml:"pins" json:"pins"`
}

// LockPin is one formula of a locked environment. Repo, Subdir and Spec are
// what the control file asked for when it was locked: a pin is reused only
// while they still match.
type LockPin struct {
	Repo         string `yaml:"repo" json:"repo"`
	Subdir       string `yaml:"subdir,omitempty" json:"subdir,omitempty"`
	Spec         string `yaml:"spec" json:"spec"`
	Commit       string `yaml:"commit" json:"commit"`
	Ref          string `yaml:"ref,omitempty" json:"ref,omitempty"`
	PromotedFrom string `yaml:"promoted_from,omitempty" json:"promoted_from,omitempty"`
}

// Promotion records one promotion of locked commits from a release state to
// another, or the rollback of one (RevertOf set).
type Promotion struct {
	ID       int               `yaml:"id" json:"id"`
	From     string            `yaml:"from" json:"from"`
	To       string            `yaml:"to" json:"to"`
	At       time.Time         `yaml:"at" json:"at"`
	By       string            `yaml:"by,omitempty" json:"by,omitempty"`
	RevertOf int               `yaml:"revert_of,omitempty" json:"revert_of,omitempty"`
	Changes  []PromotionChange `yaml:"changes" json:"changes"`
}

// PromotionChange is one pin a promotion changed.
type PromotionChange struct {
	Env     string  `yaml:"env" json:"env"`
	Formula string  `yaml:"formula" json:"formula"`
	Old     LockPin `yaml:"old" json:"old"`
	New     LockPin `yaml:"new" json:"new"`
}

// Lock returns a lock pinning every environment of r. The promotion history
// of prev, if not nil, is carried over.
func (r *Resolution) Lock(prev *Lock) *Lock {
	l := &Lock{Version: LockVersion, Environments: make(map[string]*LockEnv, len(r.Envs))}
	for _, e := range r.Envs {
		le := &LockEnv{Role: e.Role, State: e.State, Pins: make(map[string]LockPin, len(e.Pins))}
		for _, p := range e.Pins {
			le.Pins[p.Formula] = LockPin{Repo: p.Repo, Subdir: p.Subdir, Spec: p.Spec, Commit: p.Commit, Ref: p.Ref, PromotedFrom: p.PromotedFrom}
		}
		l.Environments[e.Name] = le
	}
	if prev != nil {
		l.Promotions = slices.Clone(prev.Promotions)
		l.File = prev.File
	}
	return l
}

// Clone returns a deep copy of l.
func (l *Lock) Clone() *Lock {
	c := &Lock{File: l.File, Version: l.Version, Environments: make(map[string]*LockEnv, len(l.Environments))}
	for name, e := range l.Environments {
		c.Environments[name] = &LockEnv{Role: e.Role, State: e.State, Pins: maps.Clone(e.Pins)}
	}
	for _, p := range l.Promotions {
		p.Changes = slices.Clone(p.Changes)
		c.Promotions = append(c.Promotions, p)
	}
	return c
}

const lockHeader = "# Formula lock: every environment's pinned commits.\n# Written by fleetkit formulas; edit the control file and re-lock instead.\n"

// Marshal encodes l as YAML. The output is deterministic: equal locks give
// equal bytes.
func (l *Lock) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(lockHeader)
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(l); err != nil {
		return nil, fmt.Errorf("formulas: encode lock: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("formulas: encode lock: %w", err)
	}
	return buf.Bytes(), nil
}

// WriteLock writes l to path atomically: a reader sees the old or the new
// lock, never part of one.
func WriteLock(path string, l *Lock) error {
	data, err := l.Marshal()
	if err != nil {
		return err
	}
	return writeFileAtomic(path, data)
}

// ReadLock reads and parses a lock file.
func ReadLock(path string) (*Lock, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("formulas: %w", err)
	}
	return ParseLock(path, data)
}

// ParseLock parses a lock file. Unknown keys, wrong types and inconsistent
// entries are errors naming the file, line and field.
func ParseLock(file string, data []byte) (*Lock, error) {
	p := &parser{file: file}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var l Lock
	if err := dec.Decode(&l); err != nil {
		if errors.Is(err, io.EOF) {
			p.add(0, "", ErrSyntax, "empty lock file")
		} else {
			p.yamlError(err)
		}
		return nil, p.errs
	}
	l.File = file
	var root yaml.Node
	_ = yaml.Unmarshal(data, &root) // decoded above, so it parses
	line := func(path ...string) int { return nodeLine(&root, path...) }
	if l.Version != LockVersion {
		p.add(line("version"), "version", ErrSyntax, "unsupported lock version %d (want %d)", l.Version, LockVersion)
	}
	if l.Environments == nil {
		l.Environments = map[string]*LockEnv{}
	}
	for _, name := range sortedKeys(l.Environments) {
		e := l.Environments[name]
		field := "environments." + name
		if e == nil {
			p.add(line("environments", name), field, ErrSyntax, "empty environment")
			continue
		}
		if EnvName(e.Role, e.State) != name || !nameRE.MatchString(e.Role) || !nameRE.MatchString(e.State) {
			p.add(line("environments", name), field, ErrSyntax, "environment name does not match role %q and state %q", e.Role, e.State)
		}
		for _, f := range sortedKeys(e.Pins) {
			pin, pf := e.Pins[f], field+".pins."+f
			at := line("environments", name, "pins", f)
			switch {
			case !nameRE.MatchString(f):
				p.add(at, pf, ErrSyntax, "bad formula name %q", f)
			case pin.Repo == "":
				p.add(at, pf+".repo", ErrSyntax, "missing repository")
			case !isHex(pin.Commit) || (len(pin.Commit) != 40 && len(pin.Commit) != 64):
				p.add(at, pf+".commit", ErrSyntax, "commit %q is not a full commit id", pin.Commit)
			case !validCanonicalSpec(pin.Spec):
				p.add(at, pf+".spec", ErrSyntax, "bad spec %q", pin.Spec)
			}
		}
	}
	for i, pr := range l.Promotions {
		if pr.ID <= 0 || (i > 0 && pr.ID <= l.Promotions[i-1].ID) {
			p.add(0, fmt.Sprintf("promotions[%d].id", i), ErrSyntax, "promotion ids must be positive and increasing")
		}
	}
	if len(p.errs) > 0 {
		return nil, p.errs
	}
	return &l, nil
}

func validCanonicalSpec(s string) bool {
	kind, val, ok := strings.Cut(s, ":")
	if !ok || val == "" {
		return false
	}
	switch kind {
	case "tag", "commit", "branch", "constraint":
		return true
	}
	return false
}

// nodeLine finds the line of the key at path in a YAML document, 0 if
// absent.
func nodeLine(n *yaml.Node, path ...string) int {
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := 0
	for _, key := range path {
		if n.Kind != yaml.MappingNode {
			return line
		}
		found := false
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				line, n, found = n.Content[i].Line, n.Content[i+1], true
				break
			}
		}
		if !found {
			return line
		}
	}
	return line
}

// writeFileAtomic writes data to a temporary file beside path and renames
// it over path.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("formulas: %w", err)
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(tmp, 0o644)
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		os.Remove(tmp)
		return fmt.Errorf("formulas: write %s: %w", path, werr)
	}
	return nil
}

// Relock is the lock command: it resolves ctl against prev (nil for a first
// lock) and returns the new lock with prev's promotion history. Pins the
// control file still asks for are kept as they are, promotions included;
// the rest are resolved through opts.Repos. With opts.Update every pin is
// resolved again. opts.Lock and opts.Frozen are ignored.
func Relock(ctx context.Context, ctl *Control, prev *Lock, opts ResolveOptions) (*Lock, *Resolution, error) {
	opts.Lock, opts.Frozen = prev, false
	res, err := ResolveAll(ctx, ctl, opts)
	if err != nil {
		return nil, nil, err
	}
	return res.Lock(prev), res, nil
}
