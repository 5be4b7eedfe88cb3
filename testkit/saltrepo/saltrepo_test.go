package saltrepo_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/formulas/gitrepo"
	"github.com/fleetkit/fleetkit/testkit/saltrepo"
)

func TestCreate(t *testing.T) {
	ctx := context.Background()
	f := saltrepo.Formula{Name: "nginx", Releases: []string{"v1.4.0", "v1.5.0-rc.1"}}
	a := filepath.Join(t.TempDir(), "nginx-formula")
	tags, err := saltrepo.Create(ctx, a, f)
	if errors.Is(err, saltrepo.ErrNoGit) {
		t.Skip(err)
	}
	require.NoError(t, err)
	require.Len(t, tags, 2)
	require.NotEqual(t, tags["v1.4.0"], tags["v1.5.0-rc.1"])

	// The same formula again has the same commits.
	again, err := saltrepo.Create(ctx, filepath.Join(t.TempDir(), "x"), f)
	require.NoError(t, err)
	require.Equal(t, tags, again)

	// package formulas sees the tags and the tree.
	repos, err := gitrepo.New(gitrepo.Config{Env: saltrepo.Env()})
	require.NoError(t, err)
	repo, err := repos.Open(ctx, a)
	require.NoError(t, err)
	listed, err := repo.Tags(ctx)
	require.NoError(t, err)
	got := map[string]string{}
	for _, tg := range listed {
		got[tg.Name] = tg.Commit
	}
	require.Equal(t, tags, got)
	dst := t.TempDir()
	require.NoError(t, repo.Export(ctx, tags["v1.4.0"], "nginx", dst))
	sls, err := os.ReadFile(filepath.Join(dst, "init.sls"))
	require.NoError(t, err)
	require.Contains(t, string(sls), "version: 1.4.0")
}

func TestCreateErrors(t *testing.T) {
	ctx := context.Background()
	_, err := saltrepo.Create(ctx, t.TempDir(), saltrepo.Formula{Name: "nginx"})
	if errors.Is(err, saltrepo.ErrNoGit) {
		t.Skip(err)
	}
	require.ErrorContains(t, err, `formula "nginx" needs a name and at least one release`)

	full := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(full, "x"), nil, 0o644))
	_, err = saltrepo.Create(ctx, full, saltrepo.Formula{Name: "nginx", Releases: []string{"v1"}})
	require.ErrorContains(t, err, "is not empty")

	_, err = saltrepo.Create(ctx, filepath.Join(t.TempDir(), "r"), saltrepo.Formula{Name: "nginx", Releases: []string{"v1", "v1"}})
	require.ErrorContains(t, err, `formula "nginx": release "v1" twice`)
}
