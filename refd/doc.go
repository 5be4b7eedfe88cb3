// Package refd is the reference daemon of fleetkit as an embeddable
// server: an authenticated REST API over a disposition index kept up to
// date from the sources, with rollout planning and control, formula
// resolution, manual overrides, an audit log, Prometheus metrics and
// health checks.
//
// A Server is a Config, validated by New, served by Run (or mounted
// anywhere as an http.Handler):
//
//	store, err := refd.OpenStore("/var/lib/refd/refd.db")
//	ov, err := overrides.New(ctx, overrides.Config{Store: store})
//	srv, err := refd.New(refd.Config{
//		Index:     ix,
//		Updater:   agg, // a *sources.Aggregator writing ix, ov among its sources
//		Store:     store,
//		Overrides: ov,
//		Planner:   refd.RolloutPlanner(),
//		Tokens:    []refd.Token{{Name: "ci", Hash: refd.HashToken(secret), Scopes: []refd.Scope{refd.ScopeRead}}},
//	})
//	err = srv.Run(ctx) // until ctx ends; then a graceful shutdown
//
// LoadConfigFile builds the same from a refd.yaml, and NewDemo from an
// embedded default (a generated fleet).
//
// # Rollouts
//
// With Config.Runner set, rollouts created through the API (and by
// applying a trial) are driven by a rollout.Runner while Run or Serve
// runs:
//
//	logs, err := boltstore.Open("/var/lib/refd/rollouts.db", nil)
//	runner, err := refd.NewRolloutRunner(refd.RolloutRunnerConfig{Store: logs, Fleet: ix, Deployer: d})
//	srv, err := refd.New(refd.Config{..., Planner: refd.RolloutPlanner(), Runner: runner})
//
// The runner's event log is the truth about a rollout; the Rollout record
// refd keeps (GET /v1/rollouts/{id}) is a view of it, rewritten by one
// goroutine whenever the runner reports an event, so the runner never
// waits for refd's store. Its state is running, paused (with the reason
// and cause: an operator, a failure budget exceeded, a deployer that kept
// failing, a re-plan that failed), rolling-back, rolled-back, aborted or
// completed; its events are the operators' requests and the runner's log.
// Pause, resume, abort, rollback, promote, skip and pin (POST
// /v1/rollouts/{id}/<action>, body {"server", "reason"}) call the
// runner's methods and are audited like every write. When Serve starts,
// the runner resumes every rollout that has not finished, so a restarted
// refd carries on where it stopped; when it ends, the runner stops them
// and waits. Without a Runner, refd only keeps each rollout's state
// machine (Next) and nothing is deployed.
//
// The API lives under /v1 (its OpenAPI document at /v1/openapi.json);
// /healthz, /readyz and /metrics are outside it and need no token. Every
// /v1 error has the body {"error": {"code", "message", "field"}}.
package refd
