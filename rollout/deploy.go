package rollout

import "context"

// Deployer deploys a release to a set of servers: the Runner's one seam
// to the systems that change servers (salt-api's state.apply, a webhook).
//
// IdempotencyKey names one deploy decision. The Runner calls Deploy again
// with the same key when it cannot know whether an earlier call with it
// happened (it was killed mid-call, or the call failed as a whole), so a
// Deployer must treat a repeated key as "the same deploy": return the
// earlier call's results if it completed, or finish it, but never deploy
// twice.
type Deployer interface {
	// Deploy deploys req.Version (of req.Component) to req.Servers and
	// returns one result per server. An error means the deploy as a whole
	// failed or its outcome is unknown; the Runner retries it with the
	// same key. Per-server failures are results with OK false.
	Deploy(ctx context.Context, req DeployRequest) ([]ServerResult, error)
}

// DeployRequest is one Deployer call: a wave, or a batch of a rollback.
type DeployRequest struct {
	Rollout string `json:"rollout"`
	// Wave is the wave number, from 1; 0 for a rollback batch.
	Wave int `json:"wave,omitempty"`
	// Batch is the rollback batch number, from 1; 0 for a wave.
	Batch int `json:"batch,omitempty"`
	// Attempt counts the operator's resumes after the Deployer kept
	// failing, from 1; each attempt has its own key.
	Attempt int `json:"attempt,omitempty"`
	// IdempotencyKey is "<rollout>/wave/<wave>/<attempt>" or
	// "<rollout>/rollback/<batch>".
	IdempotencyKey string `json:"idempotency_key"`
	Component      string `json:"component,omitempty"`
	// Version is the version to deploy; for a rollback, the version the
	// servers had before the rollout ("" if the disposition did not say).
	Version  string   `json:"version"`
	Rollback bool     `json:"rollback,omitempty"`
	Servers  []string `json:"servers"`
}

// DeployerFunc adapts a function to a Deployer.
type DeployerFunc func(ctx context.Context, req DeployRequest) ([]ServerResult, error)

// Deploy calls f.
func (f DeployerFunc) Deploy(ctx context.Context, req DeployRequest) ([]ServerResult, error) {
	return f(ctx, req)
}
