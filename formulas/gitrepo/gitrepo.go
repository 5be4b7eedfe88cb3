package gitrepo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/fleetkit/fleetkit/formulas"
)

// Config configures Repos.
type Config struct {
	// Git is the git executable; "" means "git" looked up in PATH.
	Git string
	// MirrorDir holds the bare mirrors of repositories given by URL. It is
	// required to open URLs; local paths are read in place.
	MirrorDir string
	// MaxAge is how old a mirror's last fetch by this Repos may be before
	// Open fetches again. Zero fetches once per Repos.
	MaxAge time.Duration
	// Env is added to the environment of every git command, after the
	// process's own (for example GIT_SSH_COMMAND, or HOME and
	// GIT_CONFIG_NOSYSTEM=1 in tests).
	Env []string
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Repos opens repositories with the git command line. It implements
// formulas.Repos and is safe for concurrent use.
type Repos struct {
	cfg Config
	git string
	env []string

	mu    sync.Mutex
	repos map[string]*Repo
}

// New checks cfg and finds the git executable.
func New(cfg Config) (*Repos, error) {
	name := cfg.Git
	if name == "" {
		name = "git"
	}
	git, err := exec.LookPath(name)
	if err != nil {
		return nil, fmt.Errorf("gitrepo: Config.Git: %w", err)
	}
	if cfg.MirrorDir != "" {
		abs, err := filepath.Abs(cfg.MirrorDir)
		if err != nil {
			return nil, fmt.Errorf("gitrepo: Config.MirrorDir: %w", err)
		}
		cfg.MirrorDir = abs
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	env := append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "LC_ALL=C", "LANG=C")
	env = append(env, cfg.Env...)
	return &Repos{cfg: cfg, git: git, env: env, repos: map[string]*Repo{}}, nil
}

var urlRE = regexp.MustCompile(`^([a-zA-Z][a-zA-Z0-9+.-]*://|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:)`)

// Open returns the repository at location: an absolute path to a git
// repository (bare or not), or a URL, which is mirrored under MirrorDir and
// fetched if this Repos has not fetched it within MaxAge.
func (r *Repos) Open(ctx context.Context, location string) (formulas.Repo, error) {
	return r.OpenRepo(ctx, location)
}

// OpenRepo is Open returning the concrete type.
func (r *Repos) OpenRepo(ctx context.Context, location string) (*Repo, error) {
	r.mu.Lock()
	repo, ok := r.repos[location]
	if !ok {
		repo = &Repo{repos: r, location: location}
		if urlRE.MatchString(location) {
			if r.cfg.MirrorDir == "" {
				r.mu.Unlock()
				return nil, fmt.Errorf("gitrepo: %s: Config.MirrorDir is required to open URLs", location)
			}
			repo.mirror = true
			repo.dir = filepath.Join(r.cfg.MirrorDir, mirrorName(location))
		} else {
			if !filepath.IsAbs(location) {
				r.mu.Unlock()
				return nil, fmt.Errorf("gitrepo: %s: a local repository path must be absolute", location)
			}
			repo.dir = location
		}
		r.repos[location] = repo
	}
	r.mu.Unlock()
	if err := repo.open(ctx); err != nil {
		return nil, err
	}
	return repo, nil
}

var unsafeRE = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// mirrorName is a readable, collision-free directory name for a URL.
func mirrorName(url string) string {
	h := sha256.Sum256([]byte(url))
	s := unsafeRE.ReplaceAllString(url, "_")
	s = strings.Trim(s, "._-")
	if len(s) > 60 {
		s = s[len(s)-60:]
	}
	return s + "-" + hex.EncodeToString(h[:6]) + ".git"
}

// Repo is one repository. Its methods are safe for concurrent use.
type Repo struct {
	repos    *Repos
	location string
	dir      string
	mirror   bool

	mu        sync.Mutex
	checked   bool
	fetchedAt time.Time
}

// Dir returns the directory git runs in: the repository itself, or its
// mirror.
func (p *Repo) Dir() string { return p.dir }

// open checks a local repository once, and clones or refreshes a mirror.
func (p *Repo) open(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.mirror {
		if p.checked {
			return nil
		}
		if _, err := p.git(ctx, "rev-parse", "--git-dir"); err != nil {
			return fmt.Errorf("gitrepo: %s is not a git repository: %w", p.location, err)
		}
		p.checked = true
		return nil
	}
	maxAge := p.repos.cfg.MaxAge
	if !p.fetchedAt.IsZero() && (maxAge == 0 || p.repos.cfg.Now().Sub(p.fetchedAt) < maxAge) {
		return nil
	}
	return p.fetchLocked(ctx)
}

// Fetch updates a mirror from its URL now; for a local repository it does
// nothing.
func (p *Repo) Fetch(ctx context.Context) error {
	if !p.mirror {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fetchLocked(ctx)
}

func (p *Repo) fetchLocked(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(p.dir, "HEAD")); err != nil {
		// Clone beside the final place and rename, so an interrupted clone
		// never looks like a mirror.
		if err := os.MkdirAll(filepath.Dir(p.dir), 0o755); err != nil {
			return fmt.Errorf("gitrepo: %w", err)
		}
		tmp, err := os.MkdirTemp(filepath.Dir(p.dir), ".tmp-clone-")
		if err != nil {
			return fmt.Errorf("gitrepo: %w", err)
		}
		defer os.RemoveAll(tmp)
		if _, err := p.repos.run(ctx, filepath.Dir(p.dir), "clone", "--mirror", "--quiet", "--", p.location, tmp); err != nil {
			return fmt.Errorf("gitrepo: clone %s: %w", p.location, err)
		}
		if err := os.Rename(tmp, p.dir); err != nil && !isGitDir(p.dir) {
			return fmt.Errorf("gitrepo: %w", err)
		}
	} else if _, err := p.git(ctx, "fetch", "--quiet", "--prune", "--force", "origin"); err != nil {
		return fmt.Errorf("gitrepo: fetch %s: %w", p.location, err)
	}
	p.fetchedAt = p.repos.cfg.Now()
	return nil
}

func isGitDir(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "HEAD"))
	return err == nil
}

// Tags lists the repository's tags, annotated tags peeled to their commit.
// Tags of anything but a commit are left out.
func (p *Repo) Tags(ctx context.Context) ([]formulas.Tag, error) {
	out, err := p.git(ctx, "for-each-ref", "--format=%(objecttype) %(objectname) %(*objecttype) %(*objectname) %(refname)", "refs/tags/")
	if err != nil {
		return nil, fmt.Errorf("gitrepo: %s: list tags: %w", p.location, err)
	}
	var tags []formulas.Tag
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		var typ, obj, ptyp, pobj, ref string
		switch len(f) {
		case 3: // lightweight: the peeled fields are empty
			typ, obj, ref = f[0], f[1], f[2]
		case 5:
			typ, obj, ptyp, pobj, ref = f[0], f[1], f[2], f[3], f[4]
		default:
			continue
		}
		name := strings.TrimPrefix(ref, "refs/tags/")
		switch {
		case typ == "commit":
			tags = append(tags, formulas.Tag{Name: name, Commit: obj})
		case typ == "tag" && ptyp == "commit":
			tags = append(tags, formulas.Tag{Name: name, Commit: pobj})
		case typ == "tag":
			// A tag of a tag: let git peel it all the way.
			if c, err := p.ResolveRef(ctx, ref); err == nil {
				tags = append(tags, formulas.Tag{Name: name, Commit: c})
			}
		}
	}
	return tags, nil
}

// ResolveRef returns the commit a ref names: refs/heads/<branch>, a tag, or
// a full or abbreviated commit id.
func (p *Repo) ResolveRef(ctx context.Context, ref string) (string, error) {
	if ref == "" || strings.HasPrefix(ref, "-") || strings.ContainsAny(ref, " \n\x00") {
		return "", fmt.Errorf("gitrepo: %s: bad ref %q: %w", p.location, ref, formulas.ErrRefNotFound)
	}
	out, err := p.git(ctx, "rev-parse", "--verify", "--quiet", ref+"^{commit}")
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 1 {
			return "", fmt.Errorf("gitrepo: %s: %s: %w", p.location, ref, formulas.ErrRefNotFound)
		}
		return "", fmt.Errorf("gitrepo: %s: resolve %s: %w", p.location, ref, err)
	}
	return strings.TrimSpace(out), nil
}

var hexRE = regexp.MustCompile(`^[0-9a-f]{40}([0-9a-f]{24})?$`)

// Export writes the tree of commit (or of its subdirectory subdir) into
// dst, an existing empty directory, with git archive. A mirror missing the
// commit (a moved tag, a force-pushed branch) fetches it by id once before
// giving up with formulas.ErrRefNotFound.
func (p *Repo) Export(ctx context.Context, commit, subdir, dst string) error {
	if !hexRE.MatchString(commit) {
		return fmt.Errorf("gitrepo: %s: %q is not a full commit id", p.location, commit)
	}
	if strings.HasPrefix(subdir, "/") || strings.Contains(subdir, "..") || strings.ContainsAny(subdir, ":\x00\n") {
		return fmt.Errorf("gitrepo: %s: bad subdirectory %q", p.location, subdir)
	}
	if !p.has(ctx, commit+"^{commit}") {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if p.mirror {
			// Works where the server allows fetching by id (protocol v2
			// and most hosting); harmless where it does not.
			_, _ = p.git(ctx, "fetch", "--quiet", "origin", commit)
		}
		if !p.has(ctx, commit+"^{commit}") {
			return fmt.Errorf("gitrepo: %s: commit %s: %w", p.location, commit, formulas.ErrRefNotFound)
		}
	}
	treeish := commit
	if subdir != "" {
		treeish = commit + ":" + subdir
		if typ, err := p.git(ctx, "cat-file", "-t", treeish); err != nil || strings.TrimSpace(typ) != "tree" {
			return fmt.Errorf("gitrepo: %s: commit %s has no directory %q: %w", p.location, commit, subdir, formulas.ErrRefNotFound)
		}
	}
	return p.archive(ctx, treeish, dst)
}

func (p *Repo) has(ctx context.Context, obj string) bool {
	_, err := p.git(ctx, "cat-file", "-e", obj)
	return err == nil
}

// archive streams git archive's tar output into dst.
func (p *Repo) archive(ctx context.Context, treeish, dst string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := p.repos.command(ctx, p.dir, "archive", "--format=tar", treeish)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("gitrepo: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("gitrepo: %s: git archive: %w", p.location, err)
	}
	xerr := extract(stdout, dst)
	if xerr != nil {
		cancel() // stop git; its error is then of no interest
	}
	werr := cmd.Wait()
	switch {
	case xerr != nil:
		return fmt.Errorf("gitrepo: %s: export %s: %w", p.location, treeish, xerr)
	case werr != nil:
		return fmt.Errorf("gitrepo: %s: git archive %s: %w: %s", p.location, treeish, werr, strings.TrimSpace(stderr.String()))
	}
	return nil
}

func (p *Repo) git(ctx context.Context, args ...string) (string, error) {
	return p.repos.run(ctx, p.dir, args...)
}

func (r *Repos) command(ctx context.Context, dir string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, r.git, append([]string{"-C", dir}, args...)...)
	cmd.Env = r.env
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// run runs git in dir and returns its standard output; a failure's error
// includes git's standard error.
func (r *Repos) run(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := r.command(ctx, dir, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return "", fmt.Errorf("git %s: %w: %s", args[0], err, msg)
		}
		return "", fmt.Errorf("git %s: %w", args[0], err)
	}
	return stdout.String(), nil
}
