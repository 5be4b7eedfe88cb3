// Package trials reads GitOps trial files and plans trials: a candidate
// release that the engineers who own it try on chosen servers by merging
// a file in git.
//
// A trial file names the trial, its owner, the candidate versions (formula
// versions for the trial's own release state and component versions), the
// servers to try it on (clusters, servers or a disposition query, with a
// maximum size), a rollout spec, a start and an expiry:
//
//	t, err := trials.Parse("trials/nginx-rc.yaml", data)
//	p, err := trials.Plan(ctx, t, snap, trials.Options{Active: active, Now: now})
//	var ce *trials.ConflictError
//	if errors.As(err, &ce) { ... } // p still says what the trial would do
//
// Plan is pure: it says which servers the trial takes, the release state
// they get (ReleaseState), the rollout plan over them, the formula
// environments they move between when given a control file, and the
// conflicts that refuse the trial (another trial on the same servers,
// frozen servers, more servers than the maximum, a blackout). Acting on
// it (overrides, rollouts, audit) is refd's job.
package trials
