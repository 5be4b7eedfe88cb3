package rollout

import (
	"fmt"
	"math"
	"time"
)

// FailureAction is what the Runner does when a failure budget is exceeded.
type FailureAction string

// The failure actions. The zero value means ActionPause.
const (
	ActionPause    FailureAction = "pause"
	ActionRollback FailureAction = "rollback"
)

// Failure holds the failure budgets of a rollout, which the Runner checks
// after every wave's health gate: how many of the rollout's servers may
// fail per scope before it stops. A server fails when the Deployer reports
// it failed or when it is not healthy at the end of its wave's health
// gate; servers that were not healthy when their wave started, and
// servers skipped or pinned out by an operator, do not count.
//
// Each budget is a count or a percentage of the scope's servers in the
// rollout (for Wave, of the wave's servers), rounded down: "metro: 5%"
// lets a metro of 30 servers in the rollout fail 1. A scope exceeds its
// budget when its failures are more than the budget; nil means no limit.
// Cluster, Metro and Global count failures over the whole rollout; after
// an operator resumes a rollout paused by a breach, the failures counted
// so far are acknowledged and count no more.
type Failure struct {
	Wave    *Amount `json:"wave,omitempty"`
	Cluster *Amount `json:"cluster,omitempty"`
	Metro   *Amount `json:"metro,omitempty"`
	Global  *Amount `json:"global,omitempty"`
	// Action is what exceeding a budget does: ActionPause (the default)
	// holds the rollout before its next wave, ActionRollback redeploys the
	// previous version to every server the rollout touched.
	Action FailureAction `json:"action,omitempty"`
	// RollbackBatch is how many servers one rollback deploy may hold;
	// zero means four times the largest wave of the rollout.
	RollbackBatch int `json:"rollback_batch,omitempty"`
}

// Gate is the health gate after each wave's deploy: the wave's servers
// must be healthy, continuously, for MinHealthy. Servers that are not by
// Timeout after the deploy count as failed.
type Gate struct {
	// MinHealthy is how long each server must stay healthy; zero means a
	// single healthy reading.
	MinHealthy Duration `json:"min_healthy,omitempty"`
	// Timeout bounds the gate, from the end of the deploy; zero means
	// the spec's deploy time plus MinHealthy.
	Timeout Duration `json:"timeout,omitempty"`
	// Poll is how often the gate reads the disposition; zero means
	// DefaultGatePoll.
	Poll Duration `json:"poll,omitempty"`
}

// DefaultGatePoll is how often a health gate reads the disposition when
// the spec does not say.
const DefaultGatePoll = 30 * time.Second

// allowed resolves a failure budget against a scope of n servers: a
// percentage rounds down, with no minimum.
func (a Amount) allowed(n int) int {
	if !a.Percent {
		return a.Count
	}
	return int(math.Floor(a.Pct*float64(n)/100 + 1e-9))
}

func (f Failure) check() error {
	for _, b := range []struct {
		name string
		a    *Amount
	}{{"wave", f.Wave}, {"cluster", f.Cluster}, {"metro", f.Metro}, {"global", f.Global}} {
		if b.a != nil {
			if err := b.a.check(); err != nil {
				return fieldErr("failure."+b.name, "%v", err)
			}
		}
	}
	switch f.Action {
	case "", ActionPause, ActionRollback:
	default:
		return fieldErr("failure.action", "%q is not %s or %s", f.Action, ActionPause, ActionRollback)
	}
	if f.RollbackBatch < 0 {
		return fieldErr("failure.rollback_batch", "must not be negative")
	}
	return nil
}

func (g Gate) check() error {
	for _, d := range []struct {
		name string
		d    Duration
	}{{"min_healthy", g.MinHealthy}, {"timeout", g.Timeout}, {"poll", g.Poll}} {
		if d.d < 0 || time.Duration(d.d) > MaxHorizon {
			return fieldErr("gate."+d.name, "must be between 0 and %v", MaxHorizon)
		}
	}
	if g.Timeout != 0 && g.Timeout < g.MinHealthy {
		return fieldErr("gate.timeout", "must be at least min_healthy (%v)", g.MinHealthy)
	}
	return nil
}

// gateTimes returns the gate's minimum healthy time, timeout and poll
// interval with their defaults.
func (s *Spec) gateTimes() (minHealthy, timeout, poll time.Duration) {
	minHealthy = time.Duration(s.Gate.MinHealthy)
	timeout = time.Duration(s.Gate.Timeout)
	if timeout == 0 {
		timeout = s.deployDur() + minHealthy
	}
	poll = time.Duration(s.Gate.Poll)
	if poll == 0 {
		poll = DefaultGatePoll
	}
	return minHealthy, timeout, poll
}

func (s *Spec) failureAction() FailureAction {
	if s.Failure.Action == "" {
		return ActionPause
	}
	return s.Failure.Action
}

// String names the budget scope of a breach, e.g. "metro DEN".
func (b Breach) String() string {
	if b.Name == "" {
		return fmt.Sprintf("%s budget: %d failures, %d allowed", b.Scope, b.Failures, b.Allowed)
	}
	return fmt.Sprintf("%s %s budget: %d failures, %d allowed", b.Scope, b.Name, b.Failures, b.Allowed)
}
