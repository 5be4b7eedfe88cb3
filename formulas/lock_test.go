package formulas_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/formulas"
)

func TestLockRoundTrip(t *testing.T) {
	f := newFixture(t)
	res, err := formulas.ResolveAll(context.Background(), f.control(), formulas.ResolveOptions{Repos: f.repos})
	require.NoError(t, err)
	lock := res.Lock(nil)

	path := filepath.Join(t.TempDir(), "formulas.lock")
	require.NoError(t, formulas.WriteLock(path, lock))
	back, err := formulas.ReadLock(path)
	require.NoError(t, err)
	require.Equal(t, path, back.File)
	back.File = ""
	if d := cmp.Diff(lock, back); d != "" {
		t.Fatalf("lock changed in a round trip (-want +got):\n%s", d)
	}
	// Deterministic bytes.
	a, err := lock.Marshal()
	require.NoError(t, err)
	b, err := back.Marshal()
	require.NoError(t, err)
	require.Equal(t, string(a), string(b))
	require.Contains(t, string(a), "edge-trial:")
	require.Contains(t, string(a), "commit: "+f.c["app-main"])
}

// TestLockReproducible moves the world under a lock (a tag moved, a new tag
// matching a constraint, a branch advanced) and checks that resolution
// against the lock still gives the locked commits, offline, while a lock
// update picks the changes up and warns about the moved tag.
func TestLockReproducible(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	ctl := f.control()
	res, err := formulas.ResolveAll(ctx, ctl, formulas.ResolveOptions{Repos: f.repos})
	require.NoError(t, err)
	lock := res.Lock(nil)

	// Change every repository.
	f.c["app-3.2.0-moved"] = f.app.Commit("hotfix", map[string]string{"init.sls": "app: 3.2.0 hotfix\n"})
	f.app.MoveTag("v3.2.0", "HEAD")
	f.c["nginx-1.4.2"] = f.nginx.Commit("1.4.2", map[string]string{"nginx/init.sls": "nginx: 1.4.2\n"})
	f.nginx.Tag("v1.4.2", "HEAD")

	// Offline: no repository at all.
	offline, err := formulas.ResolveAll(ctx, ctl, formulas.ResolveOptions{Lock: lock})
	require.NoError(t, err)
	if d := cmp.Diff(res.Envs, offline.Envs); d != "" {
		t.Fatalf("offline resolution differs from the locked one (-want +got):\n%s", d)
	}
	// With repositories available, a matching lock still wins and no
	// repository is asked.
	withRepos, err := formulas.ResolveAll(ctx, ctl, formulas.ResolveOptions{Lock: lock, Repos: failingRepos{t}})
	require.NoError(t, err)
	require.Empty(t, cmp.Diff(res.Envs, withRepos.Envs))
	// Frozen too.
	frozen, err := formulas.ResolveAll(ctx, ctl, formulas.ResolveOptions{Lock: lock, Frozen: true})
	require.NoError(t, err)
	require.Empty(t, cmp.Diff(res.Envs, frozen.Envs))

	// A fresh Repos (a new process) sees the new tags; update re-resolves.
	updated, err := formulas.ResolveAll(ctx, ctl, formulas.ResolveOptions{Lock: lock, Repos: f.repos, Update: true})
	require.NoError(t, err)
	ga, _ := updated.Env("edge-ga")
	require.Equal(t, []pinned{
		{"nginx", f.c["nginx-1.4.2"], "v1.4.2", "states.ga.nginx"},
		{"app", f.c["app-3.2.0-moved"], "v3.2.0", "states.ga.app"},
	}, pinsOf(ga))
	require.Contains(t, strings.Join(updated.Warnings, "\n"),
		"control.yaml:9 states.ga.app: tag v3.2.0 of formula app moved from "+f.c["app-3.2.0"][:12]+" to "+f.c["app-3.2.0-moved"][:12]+" since the lock")

	// Building the old lock still works: the moved-away commit is in the
	// repository.
	b := newBuilder(t, f.repos)
	old, _ := res.Env("edge-ga")
	_, err = b.Build(ctx, old)
	require.NoError(t, err)
	require.Equal(t, "app: 3.2.0\n", readFile(t, b.EnvPath("edge-ga"), "app/init.sls"))
}

func TestLockPartialRefresh(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	res, err := formulas.ResolveAll(ctx, f.control(), formulas.ResolveOptions{Repos: f.repos})
	require.NoError(t, err)
	lock := res.Lock(nil)
	f.c["nginx-1.4.2"] = f.nginx.Commit("1.4.2", map[string]string{"nginx/init.sls": "nginx: 1.4.2\n"})
	f.nginx.Tag("v1.4.2", "HEAD")

	// The control file changes app in ga only: app is resolved again, the
	// nginx constraint keeps its locked v1.4.1 although v1.4.2 exists.
	ctl := f.control("app: v3.2.0", "app: v3.3.0")
	counting := &countingRepos{inner: f.repos}
	res2, err := formulas.ResolveAll(ctx, ctl, formulas.ResolveOptions{Lock: lock, Repos: counting})
	require.NoError(t, err)
	ga, _ := res2.Env("edge-ga")
	require.Equal(t, []pinned{
		{"nginx", f.c["nginx-1.4.1"], "v1.4.1", "states.ga.nginx"},
		{"app", f.c["app-3.3.0"], "v3.3.0", "states.ga.app"},
	}, pinsOf(ga))
	require.Equal(t, int64(1), counting.opens.Load(), "only app's repository is opened")
	require.Equal(t, int64(1), counting.tags.Load(), "its tags are listed once for every environment")
}

func TestLockMismatch(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	res, err := formulas.ResolveAll(ctx, f.control(), formulas.ResolveOptions{Repos: f.repos})
	require.NoError(t, err)
	lock := res.Lock(nil)
	lock.File = "formulas.lock"
	changed := f.control(`nginx: "~1.4"`, `nginx: "~1.3"`)

	// Frozen: every disagreement, named by control file line.
	_, err = formulas.ResolveAll(ctx, changed, formulas.ResolveOptions{Lock: lock, Frozen: true, Repos: f.repos})
	require.ErrorIs(t, err, formulas.ErrLockMismatch)
	var list formulas.ErrorList
	require.True(t, errors.As(err, &list))
	var msgs []string
	for _, e := range list {
		msgs = append(msgs, e.Error())
	}
	require.Equal(t, []string{
		"control.yaml:8: states.ga.nginx: edge-ga: control file asks for constraint:~1.3, lock has constraint:~1.4 (frozen)",
		"control.yaml:8: states.ga.nginx: edge-nrt: control file asks for constraint:~1.3, lock has constraint:~1.4 (frozen)",
	}, msgs)

	// Offline without frozen: the changed pin cannot be resolved.
	_, err = formulas.ResolveAll(ctx, changed, formulas.ResolveOptions{Lock: lock})
	require.ErrorIs(t, err, formulas.ErrOffline)
	require.ErrorContains(t, err, "control.yaml:8: states.ga.nginx: formula nginx: constraint:~1.3 needs repository "+f.nginx.Dir+", no lock entry matches (resolving offline)")

	// Frozen against a lock missing an environment, or pinning a formula
	// the control file no longer gives.
	delete(lock.Environments, "dns-ga")
	lock.Environments["dns-nrt"].Pins["nginx"] = lock.Environments["edge-nrt"].Pins["nginx"]
	_, err = formulas.ResolveAll(ctx, f.control(), formulas.ResolveOptions{Lock: lock, Frozen: true})
	require.ErrorIs(t, err, formulas.ErrLockMismatch)
	require.ErrorContains(t, err, "formulas.lock: environments.dns-ga: environment dns-ga is not in the lock (frozen: run lock first)")
	require.ErrorContains(t, err, "formulas.lock: environments.dns-nrt.pins.nginx: lock pins formula nginx in dns-nrt but the control file does not give it (frozen)")
}

func TestParseLockErrors(t *testing.T) {
	commit := strings.Repeat("a", 40)
	valid := "version: 1\nenvironments:\n  edge-ga:\n    role: edge\n    state: ga\n    pins:\n      nginx:\n        repo: /r\n        spec: tag:v1\n        commit: " + commit + "\n"
	_, err := formulas.ParseLock("l", []byte(valid))
	require.NoError(t, err)
	tests := []struct {
		name, in, msg string
	}{
		{"unknown key", strings.Replace(valid, "spec:", "spek:", 1), "l:9: field spek not found in type formulas.LockPin"},
		{"bad commit", strings.Replace(valid, commit, "abc", 1), `l:7: environments.edge-ga.pins.nginx.commit: commit "abc" is not a full commit id`},
		{"bad spec", strings.Replace(valid, "tag:v1", "v1", 1), `l:7: environments.edge-ga.pins.nginx.spec: bad spec "v1"`},
		{"wrong name", strings.Replace(valid, "state: ga", "state: nrt", 1), `l:3: environments.edge-ga: environment name does not match role "edge" and state "nrt"`},
		{"version", strings.Replace(valid, "version: 1", "version: 2", 1), "l:1: version: unsupported lock version 2 (want 1)"},
		{"empty", "", "l: empty lock file"},
		{"wrong type", "version: [1]\n", "l:1: cannot unmarshal !!seq into int"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := formulas.ParseLock("l", []byte(tt.in))
			require.ErrorIs(t, err, formulas.ErrSyntax)
			require.EqualError(t, err, tt.msg)
		})
	}
}

func readFile(t *testing.T, dir, rel string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(rel)))
	require.NoError(t, err)
	return string(data)
}
