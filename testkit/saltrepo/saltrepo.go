// Package saltrepo creates Salt formula repositories with the git command,
// one commit and one tag per release, for demos, examples and tests that
// need real repositories for package formulas to resolve and build.
//
// Commits have a fixed author and fixed dates, so a repository created
// twice from the same Formula has the same commit ids. git runs without
// the system's or the user's configuration.
//
//	tags, err := saltrepo.Create(ctx, "repos/nginx-formula", saltrepo.Formula{
//		Name:     "nginx",
//		Releases: []string{"v1.4.0", "v1.4.1", "v1.5.0-rc.1"},
//	})
package saltrepo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// ErrNoGit is returned when the git command is not installed.
var ErrNoGit = errors.New("saltrepo: the git command is not installed")

// Formula describes a formula repository.
type Formula struct {
	// Name is the formula's name: its SLS directory and the package its
	// states install.
	Name string
	// Subdir is the directory the formula's states live in; "" means
	// Name, the layout of the saltstack-formulas repositories.
	Subdir string
	// Releases are the tags to create, oldest first; each is one commit
	// that changes the formula's init.sls.
	Releases []string
	// Branch is the repository's branch; "" means main.
	Branch string
}

// epoch is the date of a repository's first commit; each later commit is
// a minute later.
var epoch = time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC)

// Create makes a git repository of f in dir, which must not exist or be
// empty, and returns the commit id of each release tag.
func Create(ctx context.Context, dir string, f Formula) (map[string]string, error) {
	if _, err := exec.LookPath("git"); err != nil {
		return nil, ErrNoGit
	}
	if f.Name == "" || len(f.Releases) == 0 {
		return nil, fmt.Errorf("saltrepo: formula %q needs a name and at least one release", f.Name)
	}
	for i, tag := range f.Releases {
		if slices.Contains(f.Releases[:i], tag) {
			return nil, fmt.Errorf("saltrepo: formula %q: release %q twice", f.Name, tag)
		}
	}
	subdir, branch := f.Subdir, f.Branch
	if subdir == "" {
		subdir = f.Name
	}
	if branch == "" {
		branch = "main"
	}
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return nil, fmt.Errorf("saltrepo: %s is not empty", dir)
	}
	if err := os.MkdirAll(filepath.Join(dir, subdir), 0o755); err != nil {
		return nil, fmt.Errorf("saltrepo: %w", err)
	}
	step := 0
	git := func(args ...string) (string, error) {
		date := epoch.Add(time.Duration(step) * time.Minute).Format(time.RFC3339)
		full := append([]string{"-c", "user.name=fleetkit", "-c", "user.email=fleetkit@example.invalid",
			"-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"}, args...)
		cmd := exec.CommandContext(ctx, "git", full...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), Env()...)
		cmd.Env = append(cmd.Env, "GIT_AUTHOR_DATE="+date, "GIT_COMMITTER_DATE="+date)
		var out, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &stderr
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("saltrepo: git %s in %s: %w: %s", strings.Join(args, " "), dir, err, strings.TrimSpace(stderr.String()))
		}
		return strings.TrimSpace(out.String()), nil
	}
	if _, err := git("init", "--quiet", "--initial-branch="+branch); err != nil {
		return nil, err
	}
	tags := make(map[string]string, len(f.Releases))
	for _, tag := range f.Releases {
		step++
		sls := fmt.Sprintf("# %s formula %s\n%s-package:\n  pkg.installed:\n    - name: %s\n    - version: %s\n",
			f.Name, tag, f.Name, f.Name, strings.TrimPrefix(tag, "v"))
		if err := os.WriteFile(filepath.Join(dir, subdir, "init.sls"), []byte(sls), 0o644); err != nil {
			return nil, fmt.Errorf("saltrepo: %w", err)
		}
		if _, err := git("add", "--all"); err != nil {
			return nil, err
		}
		if _, err := git("commit", "--quiet", "-m", f.Name+" "+tag); err != nil {
			return nil, err
		}
		if _, err := git("tag", tag); err != nil {
			return nil, err
		}
		commit, err := git("rev-parse", "HEAD")
		if err != nil {
			return nil, err
		}
		tags[tag] = commit
	}
	return tags, nil
}

// Env returns the environment variables that keep git away from the
// system's and the user's configuration and from prompting; pass them to
// other git commands run on these repositories (gitrepo.Config.Env).
func Env() []string {
	return []string{
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=" + os.DevNull,
		"GIT_TERMINAL_PROMPT=0",
		"LC_ALL=C",
	}
}
