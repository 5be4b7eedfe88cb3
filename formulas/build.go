package formulas

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/singleflight"
)

// DefaultGrace is how long GC leaves an unreferenced tree alone when
// BuilderConfig.Grace is zero.
const DefaultGrace = 15 * time.Minute

// The directories under BuilderConfig.Root.
const (
	// CacheDir holds one immutable tree per (commit, subdirectory), named by
	// them: content-addressed, shared by every environment that pins it.
	CacheDir = "cache"
	// BuildsDir holds one directory per distinct environment content, named
	// by a hash of its pins, with one symlink per formula into the cache.
	BuildsDir = "builds"
	// EnvsDir holds the live link of each environment, envs/<name>, which
	// the Salt file_roots name, and the link to its previous tree,
	// envs/.prev.<name>.
	EnvsDir = "envs"
)

const (
	tmpPrefix  = ".tmp-"
	prevPrefix = ".prev."
)

var envNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,127}$`)

// BuilderConfig configures a Builder.
type BuilderConfig struct {
	// Root is the directory holding the cache, the builds and the live
	// environment links (see CacheDir, BuildsDir, EnvsDir). Required; made
	// absolute and created if missing.
	Root string
	// Repos opens repositories to export trees the cache does not have.
	// Required.
	Repos Repos
	// Grace is how long GC leaves alone a tree that nothing references: it
	// covers builds in progress in other processes and Salt jobs that
	// resolved a tree shortly before it was replaced twice. Zero means
	// DefaultGrace; negative means no grace.
	Grace time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Builder materialises environments as Salt file_roots trees under Root.
//
// A build exports each pinned commit once into the content-addressed cache
// (git archive into a temporary directory, then rename), assembles the
// environment's tree as a directory of symlinks into the cache beside the
// live one, then swaps the live link envs/<name> with rename(2) of a new
// symlink. A Salt job resolving the link sees the old tree or the new one,
// never a half-built one, and the previous tree is kept (envs/.prev.<name>)
// so a job that started on it can finish. Concurrent builds of the same
// environment content are collapsed into one. Rebuilding an unchanged
// environment costs a readlink and a stat.
//
// Salt's roots file server follows symlinks by default
// (fileserver_followsymlinks). One Builder per Root per host is the intended
// use; GC's grace period makes a second process safe in practice.
type Builder struct {
	root  string
	repos Repos
	grace time.Duration
	now   func() time.Time

	// gcMu: builds hold it shared, GC exclusively, so GC never removes a
	// tree a build of this process is about to link.
	gcMu sync.RWMutex

	builds  singleflight.Group // by env name + content hash
	exports singleflight.Group // by cache key

	envMu   sync.Mutex
	envLock map[string]*sync.Mutex

	repoMu    sync.Mutex
	repoCache map[string]Repo

	seq atomic.Uint64
}

// NewBuilder validates cfg and creates Root's directories.
func NewBuilder(cfg BuilderConfig) (*Builder, error) {
	if cfg.Root == "" {
		return nil, errors.New("formulas: BuilderConfig.Root is required")
	}
	if cfg.Repos == nil {
		return nil, errors.New("formulas: BuilderConfig.Repos is required")
	}
	root, err := filepath.Abs(cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("formulas: BuilderConfig.Root: %w", err)
	}
	for _, d := range []string{CacheDir, BuildsDir, EnvsDir} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return nil, fmt.Errorf("formulas: BuilderConfig.Root: %w", err)
		}
	}
	b := &Builder{
		root: root, repos: cfg.Repos, grace: cfg.Grace, now: cfg.Now,
		envLock: map[string]*sync.Mutex{}, repoCache: map[string]Repo{},
	}
	if b.grace == 0 {
		b.grace = DefaultGrace
	}
	if b.now == nil {
		b.now = time.Now
	}
	return b, nil
}

// Root returns the builder's absolute root directory.
func (b *Builder) Root() string { return b.root }

// EnvPath returns the path of an environment's live link, the directory
// Salt's file_roots name for it.
func (b *Builder) EnvPath(name string) string { return filepath.Join(b.root, EnvsDir, name) }

// BuildResult says what a build did.
type BuildResult struct {
	Env string `json:"env"`
	// Path is the live link (Builder.EnvPath).
	Path string `json:"path"`
	// Tree is the directory the live link points to after the build.
	Tree string `json:"tree"`
	// Changed reports whether the live link moved.
	Changed bool `json:"changed"`
	// Exported counts trees exported from git; Cached counts trees found
	// in the cache.
	Exported int `json:"exported"`
	Cached   int `json:"cached"`
}

// CacheKey returns the cache entry name of a pinned tree: the commit, and a
// hash of the subdirectory when there is one.
func CacheKey(commit, subdir string) string {
	if subdir == "" {
		return commit
	}
	h := sha256.Sum256([]byte(subdir))
	return commit + "-" + hex.EncodeToString(h[:8])
}

// TreeKey returns the name of the build directory of an environment's
// content: a hash of its formulas and their cache keys. Environments with
// the same pins share one tree.
func TreeKey(env Env) string {
	h := sha256.New()
	h.Write([]byte("fleetkit-env-v1\n"))
	for _, p := range env.Pins {
		h.Write([]byte(p.Formula))
		h.Write([]byte{0})
		h.Write([]byte(CacheKey(p.Commit, p.Subdir)))
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Build materialises env and makes it live. It is safe to call
// concurrently; calls for the same environment content share one build.
// Building an environment that is already live does no I/O beyond checking
// the link.
func (b *Builder) Build(ctx context.Context, env Env) (BuildResult, error) {
	if err := checkEnv(env); err != nil {
		return BuildResult{}, err
	}
	key := TreeKey(env)
	if res, ok := b.unchanged(env, key); ok {
		return res, nil
	}
	v, err, _ := b.builds.Do(env.Name+"\x00"+key, func() (any, error) {
		return b.build(ctx, env, key)
	})
	if err != nil {
		return BuildResult{}, err
	}
	return v.(BuildResult), nil
}

func checkEnv(env Env) error {
	if !envNameRE.MatchString(env.Name) {
		return fmt.Errorf("formulas: build: bad environment name %q", env.Name)
	}
	seen := map[string]bool{}
	for _, p := range env.Pins {
		switch {
		case !nameRE.MatchString(p.Formula) || seen[p.Formula]:
			return fmt.Errorf("formulas: build %s: bad or repeated formula name %q", env.Name, p.Formula)
		case !isHex(p.Commit) || (len(p.Commit) != 40 && len(p.Commit) != 64):
			return fmt.Errorf("formulas: build %s: formula %s: %q is not a full commit id", env.Name, p.Formula, p.Commit)
		}
		if _, ok := cleanSubdir(p.Subdir); !ok {
			return fmt.Errorf("formulas: build %s: formula %s: bad subdir %q", env.Name, p.Formula, p.Subdir)
		}
		seen[p.Formula] = true
	}
	return nil
}

// unchanged is the fast path: the live link already points at the tree.
func (b *Builder) unchanged(env Env, key string) (BuildResult, bool) {
	link := b.EnvPath(env.Name)
	target, err := os.Readlink(link)
	if err != nil || target != buildLinkTarget(key) {
		return BuildResult{}, false
	}
	tree := filepath.Join(b.root, BuildsDir, key)
	if fi, err := os.Stat(tree); err != nil || !fi.IsDir() {
		return BuildResult{}, false
	}
	return BuildResult{Env: env.Name, Path: link, Tree: tree, Cached: len(env.Pins)}, true
}

func buildLinkTarget(key string) string { return "../" + BuildsDir + "/" + key }

func (b *Builder) build(ctx context.Context, env Env, key string) (BuildResult, error) {
	b.gcMu.RLock()
	defer b.gcMu.RUnlock()
	if res, ok := b.unchanged(env, key); ok {
		return res, nil
	}
	res := BuildResult{Env: env.Name, Path: b.EnvPath(env.Name), Tree: filepath.Join(b.root, BuildsDir, key)}
	for _, p := range env.Pins {
		exported, err := b.ensureCached(ctx, p)
		if err != nil {
			return BuildResult{}, fmt.Errorf("formulas: build %s: formula %s: %w", env.Name, p.Formula, err)
		}
		if exported {
			res.Exported++
		} else {
			res.Cached++
		}
	}
	if err := b.ensureTree(env, key); err != nil {
		return BuildResult{}, fmt.Errorf("formulas: build %s: %w", env.Name, err)
	}
	changed, err := b.swap(env.Name, buildLinkTarget(key))
	if err != nil {
		return BuildResult{}, fmt.Errorf("formulas: build %s: %w", env.Name, err)
	}
	res.Changed = changed
	return res, nil
}

// ensureCached makes sure the pinned tree is in the cache, exporting it if
// not. It reports whether it exported.
func (b *Builder) ensureCached(ctx context.Context, p Pin) (bool, error) {
	ck := CacheKey(p.Commit, p.Subdir)
	dir := filepath.Join(b.root, CacheDir, ck)
	if isDir(dir) {
		// Refresh its age so a GC in another process leaves it alone
		// until this build links it.
		now := b.now()
		return false, os.Chtimes(dir, now, now)
	}
	v, err, _ := b.exports.Do(ck, func() (any, error) {
		if isDir(dir) {
			return false, nil
		}
		repo, err := b.repo(ctx, p.Repo)
		if err != nil {
			return false, err
		}
		tmp, err := os.MkdirTemp(filepath.Join(b.root, CacheDir), tmpPrefix+ck+"-")
		if err != nil {
			return false, err
		}
		if err := repo.Export(ctx, p.Commit, p.Subdir, tmp); err != nil {
			os.RemoveAll(tmp)
			return false, err
		}
		if err := os.Chmod(tmp, 0o755); err != nil {
			os.RemoveAll(tmp)
			return false, err
		}
		if err := os.Rename(tmp, dir); err != nil {
			os.RemoveAll(tmp)
			if isDir(dir) { // another process won the race: same content
				return false, nil
			}
			return false, err
		}
		return true, nil
	})
	if err != nil {
		return false, err
	}
	return v.(bool), nil
}

func (b *Builder) repo(ctx context.Context, location string) (Repo, error) {
	b.repoMu.Lock()
	defer b.repoMu.Unlock()
	if r, ok := b.repoCache[location]; ok {
		return r, nil
	}
	r, err := b.repos.Open(ctx, location)
	if err != nil {
		return nil, err
	}
	b.repoCache[location] = r
	return r, nil
}

// ensureTree assembles builds/<key> if it does not exist yet: a fresh
// directory of symlinks, renamed into place once complete.
func (b *Builder) ensureTree(env Env, key string) error {
	dir := filepath.Join(b.root, BuildsDir, key)
	if isDir(dir) {
		// Reused: refresh its age so a concurrent GC in another process
		// leaves it alone.
		now := b.now()
		return os.Chtimes(dir, now, now)
	}
	tmp, err := os.MkdirTemp(filepath.Join(b.root, BuildsDir), tmpPrefix+key+"-")
	if err != nil {
		return err
	}
	for _, p := range env.Pins {
		target := "../../" + CacheDir + "/" + CacheKey(p.Commit, p.Subdir)
		if err := os.Symlink(target, filepath.Join(tmp, p.Formula)); err != nil {
			os.RemoveAll(tmp)
			return err
		}
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		if isDir(dir) {
			return nil
		}
		return err
	}
	return nil
}

// swap points the live link of env at target, keeping the link it replaces
// as the previous one. Both links are replaced by rename(2), atomically.
func (b *Builder) swap(env, target string) (bool, error) {
	mu := b.envMutex(env)
	mu.Lock()
	defer mu.Unlock()
	live := b.EnvPath(env)
	old, err := os.Readlink(live)
	switch {
	case err == nil && old == target:
		return false, nil
	case err == nil:
		if err := b.replaceLink(filepath.Join(b.root, EnvsDir, prevPrefix+env), old); err != nil {
			return false, err
		}
	case !errors.Is(err, fs.ErrNotExist):
		return false, fmt.Errorf("live link %s: %w (it must be a symlink managed by the builder)", live, err)
	}
	if err := b.replaceLink(live, target); err != nil {
		return false, err
	}
	return true, nil
}

func (b *Builder) envMutex(env string) *sync.Mutex {
	b.envMu.Lock()
	defer b.envMu.Unlock()
	mu, ok := b.envLock[env]
	if !ok {
		mu = &sync.Mutex{}
		b.envLock[env] = mu
	}
	return mu
}

// replaceLink atomically makes path a symlink to target.
func (b *Builder) replaceLink(path, target string) error {
	tmp := filepath.Join(filepath.Dir(path), tmpPrefix+"link-"+strconv.Itoa(os.Getpid())+"-"+strconv.FormatUint(b.seq.Add(1), 10))
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// BuildAll builds every environment of res, two at a time, and returns the
// results in res's order.
func (b *Builder) BuildAll(ctx context.Context, res *Resolution) ([]BuildResult, error) {
	out := make([]BuildResult, len(res.Envs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(2)
	for i, env := range res.Envs {
		g.Go(func() error {
			r, err := b.Build(gctx, env)
			out[i] = r
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

// Live returns the tree an environment's live link points to.
func (b *Builder) Live(name string) (string, error) {
	t, err := os.Readlink(b.EnvPath(name))
	if err != nil {
		return "", fmt.Errorf("formulas: environment %s: %w", name, err)
	}
	return filepath.Join(b.root, EnvsDir, t), nil
}

func isDir(path string) bool {
	fi, err := os.Lstat(path)
	return err == nil && fi.IsDir()
}

// GCOptions configures a garbage collection.
type GCOptions struct {
	// Envs, when not nil, lists the environments to keep: the live and
	// previous links of any other environment are removed first (do it once
	// the Salt file_roots no longer name them).
	Envs []string
}

// GCResult lists what a garbage collection removed, by name.
type GCResult struct {
	Links  []string `json:"links,omitempty"`
	Builds []string `json:"builds,omitempty"`
	Cache  []string `json:"cache,omitempty"`
}

// GC removes trees no environment needs. The policy: an environment keeps
// its live tree and its previous one (for Salt jobs that started on it);
// the cache keeps every entry those trees link to. Anything else older
// than the grace period goes, including leftovers of interrupted builds.
// A job still reading a tree that was replaced twice and is past the grace
// period loses it, so keep the grace period above the longest Salt job.
func (b *Builder) GC(ctx context.Context, opts GCOptions) (GCResult, error) {
	b.gcMu.Lock()
	defer b.gcMu.Unlock()
	var res GCResult
	cutoff := b.now().Add(-max(b.grace, 0))

	envsDir := filepath.Join(b.root, EnvsDir)
	entries, err := os.ReadDir(envsDir)
	if err != nil {
		return res, fmt.Errorf("formulas: gc: %w", err)
	}
	var keepEnv map[string]bool
	if opts.Envs != nil {
		keepEnv = map[string]bool{}
		for _, e := range opts.Envs {
			keepEnv[e] = true
		}
	}
	liveBuilds := map[string]bool{}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		name := e.Name()
		path := filepath.Join(envsDir, name)
		if strings.HasPrefix(name, tmpPrefix) {
			if olderThan(path, cutoff) {
				os.Remove(path)
			}
			continue
		}
		env := strings.TrimPrefix(name, prevPrefix)
		if keepEnv != nil && !keepEnv[env] {
			if err := os.Remove(path); err != nil {
				return res, fmt.Errorf("formulas: gc: %w", err)
			}
			res.Links = append(res.Links, name)
			continue
		}
		if t, err := os.Readlink(path); err == nil {
			liveBuilds[filepath.Base(t)] = true
		}
	}

	buildsDir := filepath.Join(b.root, BuildsDir)
	entries, err = os.ReadDir(buildsDir)
	if err != nil {
		return res, fmt.Errorf("formulas: gc: %w", err)
	}
	liveCache := map[string]bool{}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		name := e.Name()
		path := filepath.Join(buildsDir, name)
		if liveBuilds[name] || !olderThan(path, cutoff) {
			links, _ := os.ReadDir(path)
			for _, l := range links {
				if t, err := os.Readlink(filepath.Join(path, l.Name())); err == nil {
					liveCache[filepath.Base(t)] = true
				}
			}
			continue
		}
		if err := os.RemoveAll(path); err != nil {
			return res, fmt.Errorf("formulas: gc: %w", err)
		}
		res.Builds = append(res.Builds, name)
	}

	cacheDir := filepath.Join(b.root, CacheDir)
	entries, err = os.ReadDir(cacheDir)
	if err != nil {
		return res, fmt.Errorf("formulas: gc: %w", err)
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		name := e.Name()
		path := filepath.Join(cacheDir, name)
		if liveCache[name] || !olderThan(path, cutoff) {
			continue
		}
		if err := os.RemoveAll(path); err != nil {
			return res, fmt.Errorf("formulas: gc: %w", err)
		}
		res.Cache = append(res.Cache, name)
	}
	return res, nil
}

// olderThan reports whether path was last modified before cutoff. A
// directory's mtime is when it was created or, for builds, last reused.
func olderThan(path string, cutoff time.Time) bool {
	fi, err := os.Lstat(path)
	return err == nil && !fi.ModTime().After(cutoff)
}
