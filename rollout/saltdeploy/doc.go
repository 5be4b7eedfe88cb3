// Package saltdeploy is a rollout.Deployer that deploys with Salt:
// state.apply on a wave's minions through salt-api's rest_cherrypy
// interface.
//
//	d, err := saltdeploy.New(saltdeploy.Config{
//		URL:      "https://salt.example.com:8000",
//		Username: "fleetkit", Password: password, EAuth: "pam",
//		State:    "app",        // empty: highstate
//		Saltenv:  "edge-ga",    // or SaltenvFunc, per request
//	})
//	runner, err := rollout.NewRunner(rollout.RunnerConfig{Deployer: d, ...})
//
// # Protocol
//
// Deploy logs in (POST /login with external auth; the token goes in
// X-Auth-Token) and starts one job per batch of servers:
//
//	POST /  [{"client": "local_async", "fun": "state.apply",
//	          "tgt": "L@edge-1,edge-2", "tgt_type": "compound",
//	          "kwarg": {"mods": "app", "saltenv": "edge-ga", "pillar": {"fleetkit": {...}}},
//	          "metadata": {"fleetkit_idempotency_key": "...", "fleetkit_job": 0, "fleetkit_jobs": 1}}]
//	-> {"return": [{"jid": "20260105120000123456", "minions": ["edge-1", "edge-2"]}]}
//
// then polls GET /jobs/<jid> every PollInterval until every minion the
// job targeted has returned, or JobTimeout has passed. Server IDs are
// minion IDs. The pillar key "fleetkit" carries the request (rollout,
// component, version, idempotency_key, wave, batch, attempt, rollback),
// over the extra Config.Pillar. When salt-api refuses the token (401,
// such as after a master restart), Deploy logs in again, once.
//
// # Results
//
// A minion whose every state has result true is OK. One with a state
// that failed is not, with the first failed state (by run order) and its
// comment as the error. A return that is a list of strings (render or
// compile errors) or a string is a failure with that text. A targeted
// minion that has not returned by JobTimeout fails with NoReturn; a
// server that is not a minion the master knows fails with NotMinion. A
// batch that matched no minion at all fails the call (ErrNoMinions), as
// that is more likely a wrong salt-api than a wave of broken servers.
//
// # Idempotency
//
// The Deployer remembers, per idempotency key, the jobs it started and
// their final results, so a repeated key polls the same jobs or returns
// the same results instead of starting new jobs. Every job also carries
// the key in its metadata: for a key it does not remember (after a
// restart, or after a start whose answer was lost) it searches salt's
// job cache with the jobs.list_jobs runner (search_metadata) before
// starting anything. That finds jobs as long as the master keeps them
// (keep_jobs, 24 hours by default); the search reads the whole job
// cache, so masters with a very large one may set NoRecovery, at the
// price of a repeated deploy after a restart. The user needs @runner
// (jobs.list_jobs) for the search and @jobs for GET /jobs.
//
// # Batches
//
// With BatchSize, a wave's servers are deployed BatchSize at a time, one
// job after the other: salt-api's local_async has no batch mode, so the
// Deployer batches itself. A failing batch does not stop the next: the
// Runner's failure budgets decide what failures mean.
package saltdeploy
