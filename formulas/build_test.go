package formulas_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/formulas"
)

func newBuilder(t testing.TB, repos formulas.Repos) *formulas.Builder {
	t.Helper()
	b, err := formulas.NewBuilder(formulas.BuilderConfig{Root: t.TempDir(), Repos: repos, Grace: -1})
	require.NoError(t, err)
	return b
}

func TestBuildTree(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	res, err := formulas.ResolveAll(ctx, f.control(), formulas.ResolveOptions{Repos: f.repos})
	require.NoError(t, err)
	b := newBuilder(t, f.repos)

	env, _ := res.Env("edge-ga")
	r, err := b.Build(ctx, env)
	require.NoError(t, err)
	require.True(t, r.Changed)
	require.Equal(t, 2, r.Exported)
	require.Equal(t, b.EnvPath("edge-ga"), r.Path)

	// File by file: nginx's subdirectory at v1.4.1 (README.md at the
	// repository root is not in it), app's root at v3.2.0.
	want := map[string]string{
		"nginx/init.sls":        "nginx: 1.4.1\n",
		"nginx/map.jinja":       "{% set nginx = {} %}\n",
		"nginx/files/reload.sh": "#!/bin/sh\nnginx -s reload\n",
		"nginx/files/current":   "-> reload.sh",
		"app/init.sls":          "app: 3.2.0\n",
		"app/config.sls":        "app-config: 3.2.0\n",
	}
	if d := cmp.Diff(want, readTree(t, r.Path)); d != "" {
		t.Fatalf("tree (-want +got):\n%s", d)
	}
	fi, err := os.Stat(filepath.Join(r.Path, "nginx/files/reload.sh"))
	require.NoError(t, err)
	require.NotZero(t, fi.Mode()&0o111, "executable bit kept")

	// The live path is a symlink to the build, which links the cache.
	live, err := b.Live("edge-ga")
	require.NoError(t, err)
	require.Equal(t, r.Tree, live)
	target, err := os.Readlink(filepath.Join(r.Tree, "nginx"))
	require.NoError(t, err)
	require.Equal(t, "../../cache/"+formulas.CacheKey(f.c["nginx-1.4.1"], "nginx"), target)

	// Salt outputs for the whole resolution.
	_, err = b.BuildAll(ctx, res)
	require.NoError(t, err)
	files, err := b.WriteSalt(ctx, res, "")
	require.NoError(t, err)
	roots := readFile(t, filepath.Dir(files.FileRoots), filepath.Base(files.FileRoots))
	require.Contains(t, roots, "  edge-trial:\n    - "+b.EnvPath("edge-trial")+"\n")
	require.Contains(t, roots, "  base:\n    - "+filepath.Join(b.Root(), "top")+"\n")
	top := readFile(t, filepath.Dir(files.TopFile), "top.sls")
	require.Contains(t, top, "edge-trial:\n  'G@role:edge and G@release_state:trial':\n    - match: compound\n    - nginx\n    - app\n    - app.config\n")
	require.Equal(t, "app: main\n", readFile(t, b.EnvPath("edge-trial"), "app/init.sls"))
	require.Equal(t, "nginx: 1.5.0-rc.1\n", readFile(t, b.EnvPath("dns-trial"), "nginx/init.sls"))
	_, err = os.Stat(filepath.Join(b.EnvPath("dns-ga"), "nginx"))
	require.ErrorIs(t, err, os.ErrNotExist, "dns does not get nginx in ga")
}

func TestBuildCacheReuse(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	res, err := formulas.ResolveAll(ctx, f.control(), formulas.ResolveOptions{Repos: f.repos})
	require.NoError(t, err)
	counting := &countingRepos{inner: f.repos}
	b := newBuilder(t, counting)

	edgeGA, _ := res.Env("edge-ga")
	dnsGA, _ := res.Env("dns-ga")
	r, err := b.Build(ctx, edgeGA)
	require.NoError(t, err)
	require.Equal(t, formulas.BuildResult{Env: "edge-ga", Path: r.Path, Tree: r.Tree, Changed: true, Exported: 2}, r)
	require.Equal(t, int64(2), counting.exports.Load())

	// dns-ga pins app at the same commit: served from the cache.
	r, err = b.Build(ctx, dnsGA)
	require.NoError(t, err)
	require.Equal(t, 0, r.Exported)
	require.Equal(t, 1, r.Cached)
	require.Equal(t, int64(2), counting.exports.Load())

	// Rebuilding an unchanged environment does nothing.
	r, err = b.Build(ctx, edgeGA)
	require.NoError(t, err)
	require.False(t, r.Changed)
	require.Equal(t, 2, r.Cached)
	require.Equal(t, int64(2), counting.exports.Load())

	// An environment with the same pins under another name shares the tree.
	twin := edgeGA
	twin.Name, twin.Role = "mid-ga", "mid"
	r2, err := b.Build(ctx, twin)
	require.NoError(t, err)
	require.Equal(t, r.Tree, r2.Tree)
	require.Equal(t, int64(2), counting.exports.Load())
}

func TestBuildSingleflight(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	res, err := formulas.ResolveAll(ctx, f.control(), formulas.ResolveOptions{Repos: f.repos})
	require.NoError(t, err)
	counting := &countingRepos{inner: f.repos}
	b := newBuilder(t, counting)
	env, _ := res.Env("edge-ga")

	const n = 8
	var wg sync.WaitGroup
	results := make([]formulas.BuildResult, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { results[i], errs[i] = b.Build(ctx, env) })
	}
	wg.Wait()
	changed := 0
	for i := range n {
		require.NoError(t, errs[i])
		require.Equal(t, results[0].Tree, results[i].Tree)
		if results[i].Changed {
			changed++
		}
	}
	require.Equal(t, int64(2), counting.exports.Load(), "each commit exported once")
	require.GreaterOrEqual(t, changed, 1)
	require.Equal(t, "nginx: 1.4.1\n", readFile(t, b.EnvPath("edge-ga"), "nginx/init.sls"))
}

// TestBuildAtomicSwap swaps an environment between two versions while a
// reader keeps reading through the live path: every read must succeed and
// see one whole version or the other.
func TestBuildAtomicSwap(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	v13 := f.control(`nginx: "~1.4"`, `nginx: v1.3.0`)
	v14 := f.control()
	resolve := func(ctl *formulas.Control) formulas.Env {
		e, err := formulas.Resolve(ctx, ctl, "edge", "ga", formulas.ResolveOptions{Repos: f.repos})
		require.NoError(t, err)
		return e
	}
	envA, envB := resolve(v13), resolve(v14)
	b := newBuilder(t, f.repos)
	_, err := b.Build(ctx, envA)
	require.NoError(t, err)

	// A job that resolved the tree before the swaps keeps it.
	jobTree, err := filepath.EvalSymlinks(b.EnvPath("edge-ga"))
	require.NoError(t, err)

	var stop atomic.Bool
	var reads atomic.Int64
	readerErr := make(chan error, 1)
	go func() {
		defer close(readerErr)
		path := filepath.Join(b.EnvPath("edge-ga"), "nginx", "init.sls")
		for !stop.Load() {
			data, err := os.ReadFile(path)
			if err != nil {
				readerErr <- err
				return
			}
			if s := string(data); s != "nginx: 1.3.0\n" && s != "nginx: 1.4.1\n" {
				readerErr <- &os.PathError{Op: "read", Path: path, Err: os.ErrInvalid}
				return
			}
			reads.Add(1)
		}
	}()
	for i := range 60 {
		env := envB
		if i%2 == 1 {
			env = envA
		}
		r, err := b.Build(ctx, env)
		require.NoError(t, err)
		require.True(t, r.Changed)
		if i == 0 {
			require.Equal(t, "nginx: 1.3.0\n", readFile(t, jobTree, "nginx/init.sls"), "the job's tree is unchanged after a swap")
		}
	}
	// Let the reader see the last tree at least once.
	for start := reads.Load(); reads.Load() == start; {
		time.Sleep(time.Millisecond)
	}
	stop.Store(true)
	require.NoError(t, <-readerErr)
	require.Positive(t, reads.Load())
}

func TestGC(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	resolve := func(ctl *formulas.Control) formulas.Env {
		e, err := formulas.Resolve(ctx, ctl, "edge", "ga", formulas.ResolveOptions{Repos: f.repos})
		require.NoError(t, err)
		return e
	}
	v13 := resolve(f.control(`nginx: "~1.4"`, `nginx: v1.3.0`))
	v140 := resolve(f.control(`nginx: "~1.4"`, `nginx: v1.4.0`))
	v141 := resolve(f.control())
	now := time.Now()
	clock := func() time.Time { return now }
	b, err := formulas.NewBuilder(formulas.BuilderConfig{Root: t.TempDir(), Repos: f.repos, Grace: time.Hour, Now: clock})
	require.NoError(t, err)

	var trees []string
	for _, e := range []formulas.Env{v13, v140, v141} {
		r, err := b.Build(ctx, e)
		require.NoError(t, err)
		trees = append(trees, filepath.Base(r.Tree))
	}
	// Leftover of an interrupted build.
	require.NoError(t, os.Mkdir(filepath.Join(b.Root(), formulas.BuildsDir, ".tmp-crashed"), 0o755))

	// Within the grace period nothing goes.
	got, err := b.GC(ctx, formulas.GCOptions{})
	require.NoError(t, err)
	require.Equal(t, formulas.GCResult{}, got)

	// Past it, the first tree and the cache entry only it used go; the
	// live and previous trees and what they link stay.
	now = now.Add(2 * time.Hour)
	got, err = b.GC(ctx, formulas.GCOptions{})
	require.NoError(t, err)
	require.ElementsMatch(t, []string{trees[0], ".tmp-crashed"}, got.Builds)
	require.Equal(t, []string{formulas.CacheKey(f.c["nginx-1.3.0"], "nginx")}, got.Cache)
	require.Equal(t, "nginx: 1.4.1\n", readFile(t, b.EnvPath("edge-ga"), "nginx/init.sls"))
	require.Equal(t, "nginx: 1.4.0\n", readFile(t, filepath.Join(b.Root(), formulas.BuildsDir, trees[1]), "nginx/init.sls"))
	require.NoDirExists(t, filepath.Join(b.Root(), formulas.BuildsDir, trees[0]))

	// The collected version builds again from git.
	r, err := b.Build(ctx, v13)
	require.NoError(t, err)
	require.Equal(t, 1, r.Exported)
	require.Equal(t, "nginx: 1.3.0\n", readFile(t, b.EnvPath("edge-ga"), "nginx/init.sls"))

	// Dropping the environment removes its links, then everything.
	now = now.Add(2 * time.Hour)
	got, err = b.GC(ctx, formulas.GCOptions{Envs: []string{}})
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"edge-ga", ".prev.edge-ga"}, got.Links)
	require.Len(t, got.Builds, 3) // live, previous and the unreferenced v1.4.0 tree
	require.Len(t, got.Cache, 4)
	for _, d := range []string{formulas.CacheDir, formulas.BuildsDir, formulas.EnvsDir} {
		entries, err := os.ReadDir(filepath.Join(b.Root(), d))
		require.NoError(t, err)
		require.Empty(t, entries, d)
	}
}

func TestBuildErrors(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	b := newBuilder(t, f.repos)
	commit := f.c["nginx-1.4.1"]
	tests := []struct {
		name string
		env  formulas.Env
		msg  string
	}{
		{"bad name", formulas.Env{Name: "../etc"}, `formulas: build: bad environment name "../etc"`},
		{"short commit", formulas.Env{Name: "e", Pins: []formulas.Pin{{Formula: "nginx", Repo: f.nginx.Dir, Commit: "abc"}}},
			`formulas: build e: formula nginx: "abc" is not a full commit id`},
		{"missing commit", formulas.Env{Name: "e", Pins: []formulas.Pin{{Formula: "nginx", Repo: f.nginx.Dir, Commit: "0123456789012345678901234567890123456789"}}},
			"formulas: build e: formula nginx: gitrepo: " + f.nginx.Dir + ": commit 0123456789012345678901234567890123456789: ref not in repository"},
		{"missing subdir", formulas.Env{Name: "e", Pins: []formulas.Pin{{Formula: "nginx", Repo: f.nginx.Dir, Subdir: "apache", Commit: commit}}},
			"formulas: build e: formula nginx: gitrepo: " + f.nginx.Dir + ": commit " + commit + ` has no directory "apache": ref not in repository`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := b.Build(ctx, tt.env)
			require.EqualError(t, err, tt.msg)
		})
	}
	// Nothing half-built is left behind.
	entries, err := os.ReadDir(filepath.Join(b.Root(), formulas.CacheDir))
	require.NoError(t, err)
	require.Empty(t, entries)

	_, err = formulas.NewBuilder(formulas.BuilderConfig{Repos: f.repos})
	require.EqualError(t, err, "formulas: BuilderConfig.Root is required")
	_, err = formulas.NewBuilder(formulas.BuilderConfig{Root: t.TempDir()})
	require.EqualError(t, err, "formulas: BuilderConfig.Repos is required")
}
