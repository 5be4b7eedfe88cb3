// Package formulas decides which version of each Salt formula each kind of
// server runs, from one control file keyed by role and release state, and
// materialises those versions as Salt environments.
//
// The control file (see Parse) declares the formulas and their git
// repositories, the roles, and the release states with their versions,
// per-role overrides and inheritance. Resolution turns it into
// environments, one per role and release state (edge-trial), each formula
// pinned to a commit together with the control file line that chose it:
//
//	ctl, err := formulas.ParseFile("formulas.yaml")
//	repos, err := gitrepo.New(gitrepo.Config{MirrorDir: "/var/cache/fleetkit/git"})
//	res, err := formulas.ResolveAll(ctx, ctl, formulas.ResolveOptions{Repos: repos, Lock: lock})
//	err = formulas.WriteLock("formulas.lock", res.Lock(lock))
//	env, err := res.ForNode(node)
//
// A Lock pins every environment; resolving against it needs no repository
// as long as the control file still asks for what was locked, and Frozen
// resolution refuses anything else. Promote copies one release state's
// locked commits to another, recorded in the lock and reversible with
// RevertPromotion. DiffLocks and DiffControls say which environments and
// formulas change and, with a disposition snapshot, how many servers that
// touches.
//
// A Builder materialises environments as Salt file_roots trees:
//
//	b, err := formulas.NewBuilder(formulas.BuilderConfig{Root: "/srv/fleetkit", Repos: repos})
//	_, err = b.BuildAll(ctx, res)
//	files, err := b.WriteSalt(ctx, res, "")
//
// Trees are exported once per commit into a content-addressed cache, each
// environment is assembled beside its live tree and swapped in with an
// atomic rename of a symlink, and GC removes what no environment uses.
// FileRoots and TopFile give the Salt master's file_roots fragment and a
// top file mapping minions by their role and release_state grains.
//
// Git is reached through the small Repo interface; package gitrepo
// implements it with the git command line.
package formulas
