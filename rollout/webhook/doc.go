// Package webhook is a rollout.Deployer that asks an HTTP endpoint to
// deploy: each Deploy is a POST of the rollout.DeployRequest as JSON,
// signed with HMAC-SHA256, retried on network errors, 5xx and 429.
//
//	d, err := webhook.New(webhook.Config{
//		URL:    "https://deploy.example.com/fleetkit",
//		Secret: secret,
//		Header: map[string]string{"Authorization": "Bearer " + token},
//	})
//	runner, err := rollout.NewRunner(rollout.RunnerConfig{Deployer: d, ...})
//
// # Request
//
//	POST <URL>
//	Content-Type: application/json
//	Idempotency-Key: <req.IdempotencyKey>
//	X-Fleetkit-Timestamp: <unix seconds>
//	X-Fleetkit-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>
//
//	{"rollout": "app-1.1", "wave": 2, "attempt": 1,
//	 "idempotency_key": "app-1.1/wave/2/1", "component": "app",
//	 "version": "1.1", "servers": ["edge-1", "edge-2"]}
//
// The signed message is the decimal timestamp, a dot, and the exact body
// bytes. A receiver checks it with Verify, which also rejects timestamps
// too far from its clock, so that a captured request cannot be replayed
// later. Every attempt is signed afresh with its own timestamp.
//
// # Response
//
// A 2xx answer carries one result per server:
//
//	{"results": [{"server": "edge-1", "ok": true},
//	             {"server": "edge-2", "ok": false, "error": "disk full"}]}
//
// A requested server the response leaves out is a failure with the
// error "no result from webhook". Results for servers that were not
// requested are ignored, and a server listed twice is OK only if every
// entry says so. A body that is not this JSON is an error wrapping
// ErrBadResponse, and is not retried.
//
// # Retries and idempotency
//
// Network errors (including a per-attempt Timeout), 5xx and 429 are
// retried, up to Attempts in all, waiting Backoff and doubling up to
// MaxBackoff; a 429's or 503's Retry-After (seconds or an HTTP date)
// replaces the wait, and one longer than MaxBackoff ends the retries. Any
// other 4xx is not retried: its error is a *StatusError wrapping
// ErrRejected. When retries run out, Deploy fails as a whole and the
// rollout.Runner calls it again later with the same key.
//
// Because a request may be retried after the receiver acted on it (the
// answer was lost), the receiver must treat a repeated Idempotency-Key
// as the same deploy: answer with the first call's results, or finish
// that deploy, but never deploy twice. This is the rollout.Deployer
// contract, passed on to the receiver; the Deployer itself keeps no
// state.
package webhook
