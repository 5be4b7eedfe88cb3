package gitrepo_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/formulas"
	"github.com/fleetkit/fleetkit/formulas/gitrepo"
	"github.com/fleetkit/fleetkit/formulas/internal/gittest"
)

func newRepos(t *testing.T, cfg gitrepo.Config) *gitrepo.Repos {
	t.Helper()
	cfg.Env = gittest.Env(t.TempDir())
	if cfg.MirrorDir == "" {
		cfg.MirrorDir = t.TempDir()
	}
	r, err := gitrepo.New(cfg)
	require.NoError(t, err)
	return r
}

func TestTagsAndRefs(t *testing.T) {
	g := gittest.New(t)
	c1 := g.Commit("one", map[string]string{"init.sls": "one\n"})
	g.Tag("v1.0.0", c1)
	c2 := g.Commit("two", map[string]string{"init.sls": "two\n"})
	g.AnnotatedTag("v1.1.0", c2, "annotated")
	g.Git("tag", "-a", "-m", "tag of a tag", "v1.1.0-again", "v1.1.0")
	g.Git("tag", "tree-tag", c2+"^{tree}") // not a commit: left out
	g.Branch("feature", c1)
	ctx := context.Background()

	repo, err := newRepos(t, gitrepo.Config{}).Open(ctx, g.Dir)
	require.NoError(t, err)
	tags, err := repo.Tags(ctx)
	require.NoError(t, err)
	want := []formulas.Tag{{Name: "v1.0.0", Commit: c1}, {Name: "v1.1.0", Commit: c2}, {Name: "v1.1.0-again", Commit: c2}}
	if d := cmp.Diff(want, tags); d != "" {
		t.Fatalf("tags (-want +got):\n%s", d)
	}

	for ref, want := range map[string]string{
		"refs/heads/feature": c1,
		"refs/heads/main":    c2,
		"v1.1.0":             c2,
		c1[:8]:               c1,
		c2:                   c2,
	} {
		got, err := repo.ResolveRef(ctx, ref)
		require.NoError(t, err, ref)
		require.Equal(t, want, got, ref)
	}
	for _, ref := range []string{"refs/heads/nope", "v9", "0000000000", "--all", ""} {
		_, err := repo.ResolveRef(ctx, ref)
		require.ErrorIs(t, err, formulas.ErrRefNotFound, ref)
	}
}

func TestExport(t *testing.T) {
	g := gittest.New(t)
	g.Commit("files", map[string]string{
		"README.md":             "root\n",
		"nginx/init.sls":        "nginx\n",
		"nginx/files/reload.sh": "#!/bin/sh\n",
	})
	g.Chmod("nginx/files/reload.sh", 0o755)
	g.Symlink("nginx/files/current", "reload.sh")
	c := g.Commit("mode and link", nil)
	ctx := context.Background()
	repo, err := newRepos(t, gitrepo.Config{}).Open(ctx, g.Dir)
	require.NoError(t, err)

	dst := t.TempDir()
	require.NoError(t, repo.Export(ctx, c, "nginx", dst))
	data, err := os.ReadFile(filepath.Join(dst, "init.sls"))
	require.NoError(t, err)
	require.Equal(t, "nginx\n", string(data))
	fi, err := os.Stat(filepath.Join(dst, "files", "reload.sh"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o755), fi.Mode().Perm()&0o755)
	link, err := os.Readlink(filepath.Join(dst, "files", "current"))
	require.NoError(t, err)
	require.Equal(t, "reload.sh", link)
	_, err = os.Stat(filepath.Join(dst, "README.md"))
	require.ErrorIs(t, err, os.ErrNotExist)

	root := t.TempDir()
	require.NoError(t, repo.Export(ctx, c, "", root))
	_, err = os.Stat(filepath.Join(root, "README.md"))
	require.NoError(t, err)

	require.ErrorIs(t, repo.Export(ctx, c, "apache", t.TempDir()), formulas.ErrRefNotFound)
	require.ErrorIs(t, repo.Export(ctx, "0123456789012345678901234567890123456789", "", t.TempDir()), formulas.ErrRefNotFound)
	require.ErrorContains(t, repo.Export(ctx, c[:10], "", t.TempDir()), "is not a full commit id")
	require.ErrorContains(t, repo.Export(ctx, c, "../x", t.TempDir()), "bad subdirectory")

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	require.ErrorIs(t, repo.Export(cancelled, c, "", t.TempDir()), context.Canceled)
}

func TestMirror(t *testing.T) {
	g := gittest.New(t)
	c1 := g.Commit("one", map[string]string{"init.sls": "one\n"})
	g.Tag("v1.0.0", c1)
	ctx := context.Background()
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	mirrors := t.TempDir()
	repos := newRepos(t, gitrepo.Config{MirrorDir: mirrors, MaxAge: time.Minute, Now: func() time.Time { return now }})

	repo, err := repos.OpenRepo(ctx, g.URL())
	require.NoError(t, err)
	require.True(t, filepath.IsAbs(repo.Dir()))
	require.Equal(t, mirrors, filepath.Dir(repo.Dir()))
	tags, err := repo.Tags(ctx)
	require.NoError(t, err)
	require.Equal(t, []formulas.Tag{{Name: "v1.0.0", Commit: c1}}, tags)

	// Upstream moves on: a new tag, and a moved one.
	c2 := g.Commit("two", map[string]string{"init.sls": "two\n"})
	g.Tag("v1.1.0", c2)
	g.MoveTag("v1.0.0", c2)

	// Within MaxAge, Open does not fetch.
	repo, err = repos.OpenRepo(ctx, g.URL())
	require.NoError(t, err)
	tags, err = repo.Tags(ctx)
	require.NoError(t, err)
	require.Equal(t, []formulas.Tag{{Name: "v1.0.0", Commit: c1}}, tags)

	// Export of a commit the mirror lacks fetches it by id.
	dst := t.TempDir()
	require.NoError(t, repo.Export(ctx, c2, "", dst))
	data, err := os.ReadFile(filepath.Join(dst, "init.sls"))
	require.NoError(t, err)
	require.Equal(t, "two\n", string(data))

	// Past MaxAge, Open fetches: the moved tag moves, the old commit stays.
	now = now.Add(2 * time.Minute)
	repo, err = repos.OpenRepo(ctx, g.URL())
	require.NoError(t, err)
	tags, err = repo.Tags(ctx)
	require.NoError(t, err)
	require.Equal(t, []formulas.Tag{{Name: "v1.0.0", Commit: c2}, {Name: "v1.1.0", Commit: c2}}, tags)
	require.NoError(t, repo.Export(ctx, c1, "", t.TempDir()))

	// A second Repos (another process) reuses the mirror.
	again := newRepos(t, gitrepo.Config{MirrorDir: mirrors})
	repo2, err := again.OpenRepo(ctx, g.URL())
	require.NoError(t, err)
	require.Equal(t, repo.Dir(), repo2.Dir())
	require.NoError(t, repo2.Fetch(ctx))
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	repos := newRepos(t, gitrepo.Config{})
	_, err := repos.Open(ctx, t.TempDir())
	require.ErrorContains(t, err, "is not a git repository")
	_, err = repos.Open(ctx, "relative/path")
	require.ErrorContains(t, err, "a local repository path must be absolute")
	_, err = repos.Open(ctx, "file://"+filepath.Join(t.TempDir(), "missing"))
	require.ErrorContains(t, err, "gitrepo: clone file://")

	noMirror, err := gitrepo.New(gitrepo.Config{Env: gittest.Env(t.TempDir())})
	require.NoError(t, err)
	_, err = noMirror.Open(ctx, "https://git.example.net/salt/nginx.git")
	require.ErrorContains(t, err, "Config.MirrorDir is required to open URLs")

	_, err = gitrepo.New(gitrepo.Config{Git: "/nonexistent/git"})
	require.ErrorContains(t, err, "gitrepo: Config.Git")
}
