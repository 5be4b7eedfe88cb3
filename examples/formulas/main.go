// Command formulas resolves and builds Salt formula environments from a
// control file: it makes two formula repositories with tagged releases in
// a temporary directory (with git), writes a control file keyed by role
// and release state, resolves every environment to pinned commits, writes
// the lock, builds the Salt file_roots trees and prints them with the top
// file.
//
//	go run ./examples/formulas
//
// It needs the git command.
package main

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/fleetkit/fleetkit/formulas"
	"github.com/fleetkit/fleetkit/formulas/gitrepo"
	"github.com/fleetkit/fleetkit/testkit/saltrepo"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "formulas:", err)
		os.Exit(1)
	}
}

const control = `formulas:
  nginx: {repo: repos/nginx-formula, subdir: nginx}
  cdn-app: {repo: repos/cdn-app-formula, subdir: cdn-app}
roles: [edge, dns]
states:
  ga:
    nginx: "~1.4"
    cdn-app: v3.2.0
    roles:
      dns: {cdn-app: none}
  trial:
    inherit: ga
    nginx: v1.5.0-rc.1
    cdn-app: "^3.3.0-0"
`

func run(ctx context.Context) error {
	if _, err := exec.LookPath("git"); err != nil {
		return fmt.Errorf("this example needs git: %w", err)
	}
	dir, err := os.MkdirTemp("", "fleetkit-formulas-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	for _, f := range []saltrepo.Formula{
		{Name: "nginx", Releases: []string{"v1.4.0", "v1.4.1", "v1.5.0-rc.1"}},
		{Name: "cdn-app", Releases: []string{"v3.2.0", "v3.3.0-rc.2"}},
	} {
		if _, err := saltrepo.Create(ctx, filepath.Join(dir, "repos", f.Name+"-formula"), f); err != nil {
			return err
		}
	}
	ctlPath := filepath.Join(dir, "formulas.yaml")
	if err := os.WriteFile(ctlPath, []byte(control), 0o644); err != nil {
		return err
	}

	ctl, err := formulas.ParseFile(ctlPath)
	if err != nil {
		return err
	}
	repos, err := gitrepo.New(gitrepo.Config{MirrorDir: filepath.Join(dir, "mirrors"), Env: saltrepo.Env()})
	if err != nil {
		return err
	}
	res, err := formulas.ResolveAll(ctx, ctl, formulas.ResolveOptions{Repos: repos})
	if err != nil {
		return err
	}
	fmt.Println("resolved environments:")
	for _, env := range res.Envs {
		fmt.Printf("  %s\n", env.Name)
		for _, p := range env.Pins {
			fmt.Printf("    %-8s %-12s %s  (spec %s)\n", p.Formula, p.Ref, p.Commit[:10], p.Spec)
		}
	}
	lockPath := filepath.Join(dir, "formulas.lock")
	if err := formulas.WriteLock(lockPath, res.Lock(nil)); err != nil {
		return err
	}
	// A rebuild from the lock alone, as automated repair does: no
	// repository needed to resolve.
	lock, err := formulas.ReadLock(lockPath)
	if err != nil {
		return err
	}
	if _, err := formulas.ResolveAll(ctx, ctl, formulas.ResolveOptions{Lock: lock, Frozen: true}); err != nil {
		return fmt.Errorf("frozen resolution: %w", err)
	}

	root := filepath.Join(dir, "salt")
	b, err := formulas.NewBuilder(formulas.BuilderConfig{Root: root, Repos: repos})
	if err != nil {
		return err
	}
	built, err := b.BuildAll(ctx, res)
	if err != nil {
		return err
	}
	files, err := b.WriteSalt(ctx, res, "")
	if err != nil {
		return err
	}
	fmt.Printf("\nbuilt %d environments under %s:\n", len(built), filepath.Base(root))
	for _, br := range built {
		fmt.Printf("  %s (%d trees exported, %d from cache)\n", br.Env, br.Exported, br.Cached)
		if err := printTree(br.Path); err != nil {
			return err
		}
	}
	fmt.Printf("\ntop file:\n%s", indent(files.TopFile))
	fmt.Printf("\nfile_roots fragment:\n%s", indent(files.FileRoots))
	return nil
}

// printTree prints the files of an environment's tree, whose entries
// are symbolic links into the builder's cache.
func printTree(env string) error {
	entries, err := os.ReadDir(env)
	if err != nil {
		return err
	}
	for _, e := range entries {
		top := filepath.Join(env, e.Name())
		err := filepath.WalkDir(top+string(filepath.Separator), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, err := filepath.Rel(env, p)
			if err != nil {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			version := ""
			for line := range strings.SplitSeq(string(b), "\n") {
				if v, ok := strings.CutPrefix(strings.TrimSpace(line), "- version: "); ok {
					version = v
				}
			}
			fmt.Printf("    %-16s installs version %s\n", filepath.ToSlash(rel), version)
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// indent reads a file the builder wrote and indents it for printing.
func indent(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "  (" + err.Error() + ")\n"
	}
	return "  " + strings.ReplaceAll(strings.TrimRight(string(b), "\n"), "\n", "\n  ") + "\n"
}
