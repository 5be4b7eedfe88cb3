package formulas_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/formulas"
	"github.com/fleetkit/fleetkit/formulas/gitrepo"
	"github.com/fleetkit/fleetkit/formulas/internal/gittest"
)

// fixture is two real formula repositories and a control file over them.
//
// nginx keeps its states in the nginx/ subdirectory (the salt-formula
// layout) and has tags v1.3.0, v1.4.0 (annotated), v1.4.1 and v1.5.0-rc.1.
// app keeps its states at the root and has tags v3.2.0 and v3.3.0, and
// main one commit past v3.3.0.
type fixture struct {
	t      *testing.T
	nginx  *gittest.Repo
	app    *gittest.Repo
	c      map[string]string // commit ids by label
	repos  *gitrepo.Repos
	ctlSrc string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, nginx: gittest.New(t), app: gittest.New(t), c: map[string]string{}}
	n := f.nginx
	f.c["nginx-1.3.0"] = n.Commit("1.3.0", map[string]string{
		"README.md":       "nginx formula\n",
		"nginx/init.sls":  "nginx: 1.3.0\n",
		"nginx/map.jinja": "{% set nginx = {} %}\n",
	})
	n.Tag("v1.3.0", "HEAD")
	f.c["nginx-1.4.0"] = n.Commit("1.4.0", map[string]string{"nginx/init.sls": "nginx: 1.4.0\n"})
	n.AnnotatedTag("v1.4.0", "HEAD", "release 1.4.0")
	f.c["nginx-1.4.1"] = n.Commit("1.4.1", map[string]string{
		"nginx/init.sls":        "nginx: 1.4.1\n",
		"nginx/files/reload.sh": "#!/bin/sh\nnginx -s reload\n",
	})
	n.Chmod("nginx/files/reload.sh", 0o755)
	n.Symlink("nginx/files/current", "reload.sh")
	f.c["nginx-1.4.1"] = n.Commit("1.4.1 files", nil)
	n.Tag("v1.4.1", "HEAD")
	f.c["nginx-1.5.0-rc.1"] = n.Commit("1.5.0-rc.1", map[string]string{"nginx/init.sls": "nginx: 1.5.0-rc.1\n"})
	n.Tag("v1.5.0-rc.1", "HEAD")

	a := f.app
	f.c["app-3.2.0"] = a.Commit("3.2.0", map[string]string{"init.sls": "app: 3.2.0\n", "config.sls": "app-config: 3.2.0\n"})
	a.Tag("v3.2.0", "HEAD")
	f.c["app-3.3.0"] = a.Commit("3.3.0", map[string]string{"init.sls": "app: 3.3.0\n"})
	a.Tag("v3.3.0", "HEAD")
	f.c["app-main"] = a.Commit("main", map[string]string{"init.sls": "app: main\n"})
	a.Tag("not-a-version", "HEAD")

	repos, err := gitrepo.New(gitrepo.Config{Env: gittest.Env(t.TempDir()), MirrorDir: t.TempDir()})
	require.NoError(t, err)
	f.repos = repos
	f.ctlSrc = fmt.Sprintf(`formulas:
  nginx: {repo: %s, subdir: nginx}
  app: {repo: %s, sls: [app, app.config]}
roles: [edge, dns]
states:
  ga:
    share: 75%%
    nginx: "~1.4"
    app: v3.2.0
    roles:
      dns:
        nginx: none
  nrt:
    inherit: ga
    share: 20%%
    app: "~3.3"
  trial:
    inherit: nrt
    share: 5%%
    nginx: v1.5.0-rc.1
    roles:
      edge:
        app: {branch: main, unpinned: true}
`, f.nginx.Dir, f.app.Dir)
	return f
}

// control parses the fixture's control file, after applying replacements
// (old, new, old, new, ...).
func (f *fixture) control(repl ...string) *formulas.Control {
	f.t.Helper()
	src := f.ctlSrc
	for i := 0; i+1 < len(repl); i += 2 {
		require.Contains(f.t, src, repl[i])
		src = strings.Replace(src, repl[i], repl[i+1], 1)
	}
	ctl, err := formulas.Parse("control.yaml", []byte(src))
	require.NoError(f.t, err)
	return ctl
}

// countingRepos wraps Repos and counts calls, to prove what is cached and
// what is offline.
type countingRepos struct {
	inner   formulas.Repos
	opens   atomic.Int64
	tags    atomic.Int64
	refs    atomic.Int64
	exports atomic.Int64
}

func (c *countingRepos) Open(ctx context.Context, loc string) (formulas.Repo, error) {
	c.opens.Add(1)
	r, err := c.inner.Open(ctx, loc)
	if err != nil {
		return nil, err
	}
	return &countingRepo{c: c, inner: r}, nil
}

type countingRepo struct {
	c     *countingRepos
	inner formulas.Repo
}

func (r *countingRepo) Tags(ctx context.Context) ([]formulas.Tag, error) {
	r.c.tags.Add(1)
	return r.inner.Tags(ctx)
}

func (r *countingRepo) ResolveRef(ctx context.Context, ref string) (string, error) {
	r.c.refs.Add(1)
	return r.inner.ResolveRef(ctx, ref)
}

func (r *countingRepo) Export(ctx context.Context, commit, subdir, dst string) error {
	r.c.exports.Add(1)
	return r.inner.Export(ctx, commit, subdir, dst)
}

// failingRepos fails the test if anything asks for a repository.
type failingRepos struct{ t *testing.T }

func (f failingRepos) Open(_ context.Context, loc string) (formulas.Repo, error) {
	f.t.Errorf("repository %s opened during offline resolution", loc)
	return nil, fmt.Errorf("offline")
}

// memRepos is an in-memory Repos: tags and branches, no trees.
type memRepos struct {
	mu    sync.Mutex
	repos map[string]*memRepo
}

type memRepo struct {
	tags     []formulas.Tag
	branches map[string]string
}

func (m *memRepos) Open(_ context.Context, loc string) (formulas.Repo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.repos[loc]
	if !ok {
		return nil, fmt.Errorf("no repository %s", loc)
	}
	return r, nil
}

func (r *memRepo) Tags(context.Context) ([]formulas.Tag, error) { return r.tags, nil }

func (r *memRepo) ResolveRef(_ context.Context, ref string) (string, error) {
	if c, ok := r.branches[strings.TrimPrefix(ref, "refs/heads/")]; ok {
		return c, nil
	}
	for _, t := range r.tags {
		if t.Commit == ref || strings.HasPrefix(t.Commit, ref) {
			return t.Commit, nil
		}
	}
	return "", fmt.Errorf("%s: %w", ref, formulas.ErrRefNotFound)
}

func (r *memRepo) Export(context.Context, string, string, string) error {
	return fmt.Errorf("memRepo has no trees")
}

// readTree returns every regular file under dir, following symlinks, by
// slash-separated relative path; symlinks inside a formula are reported as
// "-> target".
func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	var walk func(rel string)
	walk = func(rel string) {
		entries, err := os.ReadDir(filepath.Join(dir, rel))
		require.NoError(t, err)
		for _, e := range entries {
			p := filepath.Join(rel, e.Name())
			full := filepath.Join(dir, p)
			fi, err := os.Lstat(full)
			require.NoError(t, err)
			if fi.Mode()&os.ModeSymlink != 0 && strings.Count(filepath.ToSlash(p), "/") > 0 {
				target, err := os.Readlink(full)
				require.NoError(t, err)
				out[filepath.ToSlash(p)] = "-> " + target
				continue
			}
			st, err := os.Stat(full)
			require.NoError(t, err)
			if st.IsDir() {
				walk(p)
				continue
			}
			data, err := os.ReadFile(full)
			require.NoError(t, err)
			out[filepath.ToSlash(p)] = string(data)
		}
	}
	walk("")
	return out
}
