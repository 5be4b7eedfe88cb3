// Package gittest builds real git repositories in temporary directories for
// the tests of package formulas and its subpackages, isolated from the
// machine's and the user's git configuration.
package gittest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Env returns environment variables that isolate git from the system and
// user configuration: no /etc/gitconfig, HOME in a temporary directory, no
// prompts.
func Env(home string) []string {
	return []string{
		"GIT_CONFIG_NOSYSTEM=1",
		"HOME=" + home,
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"GIT_CONFIG_GLOBAL=" + filepath.Join(home, ".gitconfig"),
		"GIT_TERMINAL_PROMPT=0",
		"LC_ALL=C",
	}
}

// Repo is a git repository with a work tree in a temporary directory.
type Repo struct {
	tb    testing.TB
	Dir   string
	home  string
	ticks int
}

// New creates an empty repository whose first branch is main. It skips
// the test when git is not installed.
func New(tb testing.TB) *Repo {
	tb.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		tb.Skip("gittest: the git command is not installed")
	}
	r := &Repo{tb: tb, Dir: tb.TempDir(), home: tb.TempDir()}
	r.Git("-c", "init.defaultBranch=main", "init", "--quiet")
	return r
}

// Env returns the environment git runs with for this repository.
func (r *Repo) Env() []string { return Env(r.home) }

// Home returns the temporary HOME git runs with.
func (r *Repo) Home() string { return r.home }

// URL returns the repository's file:// URL, to exercise mirroring.
func (r *Repo) URL() string { return "file://" + r.Dir }

// Git runs git in the repository with a fixed identity and returns its
// trimmed output; it fails the test on error.
func (r *Repo) Git(args ...string) string {
	r.tb.Helper()
	full := append([]string{
		"-c", "user.name=fleetkit test", "-c", "user.email=test@fleetkit.invalid",
		"-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false",
	}, args...)
	cmd := exec.Command("git", full...)
	cmd.Dir = r.Dir
	// Fixed, increasing dates make commit ids depend only on content and
	// history.
	r.ticks++
	date := fmt.Sprintf("2024-01-01T00:%02d:%02d+0000", r.ticks/60%60, r.ticks%60)
	cmd.Env = append(os.Environ(), r.Env()...)
	cmd.Env = append(cmd.Env, "GIT_AUTHOR_DATE="+date, "GIT_COMMITTER_DATE="+date)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		r.tb.Fatalf("git %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(out.String())
}

// Commit writes files (path -> content; an empty content deletes the
// path), commits everything and returns the new commit id.
func (r *Repo) Commit(msg string, files map[string]string) string {
	r.tb.Helper()
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range paths {
		full := filepath.Join(r.Dir, filepath.FromSlash(p))
		if files[p] == "" {
			if err := os.RemoveAll(full); err != nil {
				r.tb.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			r.tb.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(files[p]), 0o644); err != nil {
			r.tb.Fatal(err)
		}
	}
	r.Git("add", "--all")
	r.Git("commit", "--quiet", "--allow-empty", "-m", msg)
	return r.Head()
}

// Symlink creates a symlink in the work tree, for the next Commit.
func (r *Repo) Symlink(name, target string) {
	r.tb.Helper()
	full := filepath.Join(r.Dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		r.tb.Fatal(err)
	}
	if err := os.Symlink(target, full); err != nil {
		r.tb.Fatal(err)
	}
}

// Chmod changes a work tree file's mode, for the next Commit.
func (r *Repo) Chmod(name string, mode os.FileMode) {
	r.tb.Helper()
	if err := os.Chmod(filepath.Join(r.Dir, filepath.FromSlash(name)), mode); err != nil {
		r.tb.Fatal(err)
	}
}

// Head returns the commit id of HEAD.
func (r *Repo) Head() string { return r.Git("rev-parse", "HEAD") }

// Tag creates a lightweight tag.
func (r *Repo) Tag(name, rev string) { r.Git("tag", name, rev) }

// AnnotatedTag creates an annotated tag.
func (r *Repo) AnnotatedTag(name, rev, msg string) { r.Git("tag", "-a", "-m", msg, name, rev) }

// MoveTag points an existing tag at another commit.
func (r *Repo) MoveTag(name, rev string) { r.Git("tag", "--force", name, rev) }

// Branch creates or moves a branch.
func (r *Repo) Branch(name, rev string) { r.Git("branch", "--force", name, rev) }

// Checkout switches the work tree to a branch.
func (r *Repo) Checkout(branch string) { r.Git("checkout", "--quiet", branch) }
