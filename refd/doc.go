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
// The API lives under /v1 (its OpenAPI document at /v1/openapi.json);
// /healthz, /readyz and /metrics are outside it and need no token. Every
// /v1 error has the body {"error": {"code", "message", "field"}}.
package refd
