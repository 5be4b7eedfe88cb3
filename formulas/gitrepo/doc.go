// Package gitrepo gives package formulas its repositories through the git
// command line.
//
// It runs the git executable (exec.CommandContext) rather than a pure-Go
// git library: git is on every Salt master, it already speaks every
// transport and credential helper the operators configured (SSH agents,
// HTTPS tokens, proxies, insteadOf rewrites), it needs no cgo, and it keeps
// a large dependency out of the module. Only a handful of plumbing commands
// are used: for-each-ref, rev-parse, cat-file, archive, clone --mirror and
// fetch.
//
// Local paths are read in place. URLs are mirrored (git clone --mirror)
// under Config.MirrorDir and fetched on first use and when older than
// Config.MaxAge:
//
//	repos, err := gitrepo.New(gitrepo.Config{MirrorDir: "/var/cache/fleetkit/git"})
//	res, err := formulas.ResolveAll(ctx, ctl, formulas.ResolveOptions{Repos: repos})
package gitrepo
