package formulas_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/formulas"
)

// staticRepos is a tiny in-memory formulas.Repos for the examples: each
// commit's tree is one init.sls naming the commit.
type staticRepos map[string][]formulas.Tag

func (s staticRepos) Open(_ context.Context, loc string) (formulas.Repo, error) {
	tags, ok := s[loc]
	if !ok {
		return nil, fmt.Errorf("no repository %s", loc)
	}
	return staticRepo(tags), nil
}

type staticRepo []formulas.Tag

func (r staticRepo) Tags(context.Context) ([]formulas.Tag, error) { return r, nil }

func (r staticRepo) ResolveRef(_ context.Context, ref string) (string, error) {
	for _, t := range r {
		if t.Name == ref || t.Commit == ref {
			return t.Commit, nil
		}
	}
	return "", formulas.ErrRefNotFound
}

func (r staticRepo) Export(_ context.Context, commit, _, dst string) error {
	return os.WriteFile(filepath.Join(dst, "init.sls"), []byte("# "+commit[:7]+"\n"), 0o644)
}

func commitID(c byte) string { return strings.Repeat(string(c), 40) }

var exampleRepos = staticRepos{
	"/srv/git/nginx": {
		{Name: "v1.4.0", Commit: commitID('a')},
		{Name: "v1.4.1", Commit: commitID('b')},
		{Name: "v1.5.0-rc.1", Commit: commitID('c')},
	},
	"/srv/git/app": {
		{Name: "v3.2.0", Commit: commitID('d')},
	},
}

const exampleControl = `formulas:
  nginx: /srv/git/nginx
  app: /srv/git/app
roles: [edge, dns]
states:
  ga:
    nginx: "~1.4"
    app: v3.2.0
    roles:
      dns: {nginx: none}
  trial: {inherit: ga, nginx: v1.5.0-rc.1}
`

func ExampleParse() {
	_, err := formulas.Parse("formulas.yaml", []byte(`formulas:
  nginx: /srv/git/nginx
roles: [edge]
states:
  ga: {nginx: "~1.4", ngnix: v1.0.0}
  trial: {inherit: gaa}
`))
	fmt.Println(err)
	// Output:
	// formulas.yaml:5: states.ga.ngnix: unknown formula "ngnix" (not in formulas)
	// formulas.yaml:6: states.trial.inherit: unknown release state "gaa"
}

func ExampleResolveAll() {
	ctl, err := formulas.Parse("formulas.yaml", []byte(exampleControl))
	if err != nil {
		fmt.Println(err)
		return
	}
	res, err := formulas.ResolveAll(context.Background(), ctl, formulas.ResolveOptions{Repos: exampleRepos})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, env := range res.Envs {
		fmt.Println(env.Name)
		for _, p := range env.Pins {
			fmt.Printf("  %s %s %s (%s)\n", p.Formula, p.Ref, p.Commit[:7], p.Rule)
		}
	}
	// Output:
	// dns-ga
	//   app v3.2.0 ddddddd (formulas.yaml:8 states.ga.app)
	// dns-trial
	//   nginx v1.5.0-rc.1 ccccccc (formulas.yaml:11 states.trial.nginx)
	//   app v3.2.0 ddddddd (formulas.yaml:8 states.ga.app)
	// edge-ga
	//   nginx v1.4.1 bbbbbbb (formulas.yaml:7 states.ga.nginx)
	//   app v3.2.0 ddddddd (formulas.yaml:8 states.ga.app)
	// edge-trial
	//   nginx v1.5.0-rc.1 ccccccc (formulas.yaml:11 states.trial.nginx)
	//   app v3.2.0 ddddddd (formulas.yaml:8 states.ga.app)
}

func ExampleResolution_ForNode() {
	ctl, _ := formulas.Parse("formulas.yaml", []byte(exampleControl))
	res, _ := formulas.ResolveAll(context.Background(), ctl, formulas.ResolveOptions{Repos: exampleRepos})
	// Resolving again from the lock needs no repository.
	res, err := formulas.ResolveAll(context.Background(), ctl, formulas.ResolveOptions{Lock: res.Lock(nil), Frozen: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	env, err := res.ForNode(&disposition.Node{ID: "edge-den-0001", Role: "edge", ReleaseState: "trial"})
	if err != nil {
		fmt.Println(err)
		return
	}
	pin, _ := env.Pin("nginx")
	fmt.Println(env.Name, pin.Ref)
	// Output:
	// edge-trial v1.5.0-rc.1
}

func ExamplePromote() {
	ctl, _ := formulas.Parse("formulas.yaml", []byte(exampleControl))
	res, _ := formulas.ResolveAll(context.Background(), ctl, formulas.ResolveOptions{Repos: exampleRepos})
	lock := res.Lock(nil)
	promoted, pr, err := formulas.Promote(lock, "trial", "ga", time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC), "alice")
	if err != nil {
		fmt.Println(err)
		return
	}
	d := formulas.DiffLocks(lock, promoted)
	fmt.Printf("promotion %d: %s -> %s\n%s", pr.ID, pr.From, pr.To, d)
	// Output:
	// promotion 1: trial -> ga
	// edge-ga changed (0 servers)
	//   nginx: v1.4.1@bbbbbbbbbbbb -> v1.5.0-rc.1@cccccccccccc
	// 1 environments, 0 servers
}

func ExampleBuilder_Build() {
	root, err := os.MkdirTemp("", "fleetkit-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(root)
	ctx := context.Background()
	ctl, _ := formulas.Parse("formulas.yaml", []byte(exampleControl))
	env, _ := formulas.Resolve(ctx, ctl, "edge", "ga", formulas.ResolveOptions{Repos: exampleRepos})

	b, err := formulas.NewBuilder(formulas.BuilderConfig{Root: root, Repos: exampleRepos})
	if err != nil {
		fmt.Println(err)
		return
	}
	for range 2 {
		r, err := b.Build(ctx, env)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("changed=%v exported=%d cached=%d\n", r.Changed, r.Exported, r.Cached)
	}
	data, _ := os.ReadFile(filepath.Join(b.EnvPath("edge-ga"), "nginx", "init.sls"))
	fmt.Print(string(data))
	// Output:
	// changed=true exported=2 cached=0
	// changed=false exported=0 cached=2
	// # bbbbbbb
}

func ExampleTopFile() {
	ctl, _ := formulas.Parse("formulas.yaml", []byte(exampleControl))
	res, _ := formulas.ResolveAll(context.Background(), ctl, formulas.ResolveOptions{Repos: exampleRepos})
	top, _ := formulas.TopFile(res)
	fmt.Print(string(top))
	// Output:
	// # Generated by fleetkit formulas from the formula control file; do not edit.
	// dns-ga:
	//   'G@role:dns and G@release_state:ga':
	//     - match: compound
	//     - app
	// dns-trial:
	//   'G@role:dns and G@release_state:trial':
	//     - match: compound
	//     - nginx
	//     - app
	// edge-ga:
	//   'G@role:edge and G@release_state:ga':
	//     - match: compound
	//     - nginx
	//     - app
	// edge-trial:
	//   'G@role:edge and G@release_state:trial':
	//     - match: compound
	//     - nginx
	//     - app
}
