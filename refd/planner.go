package refd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/rollout"
)

// RolloutPlanner returns the Planner of package rollout: rollout.ParseSpec
// (YAML, or JSON, which is YAML too) then rollout.NewPlan.
func RolloutPlanner() Planner { return rolloutPlanner{} }

type rolloutPlanner struct{}

// specError marks a rollout error as the spec's fault while keeping its
// message, which names the file, line and field.
type specError struct{ err error }

func (e *specError) Error() string   { return e.err.Error() }
func (e *specError) Unwrap() []error { return []error{ErrInvalidSpec, e.err} }

func (rolloutPlanner) Plan(ctx context.Context, name string, spec []byte, snap *disposition.Snapshot, start time.Time) (*PlanResult, error) {
	s, err := rollout.ParseSpec(name, spec)
	if err != nil {
		if errors.Is(err, rollout.ErrInvalidSpec) {
			return nil, &specError{err}
		}
		return nil, err
	}
	p, err := rollout.NewPlan(ctx, s, snap, start)
	if err != nil {
		if errors.Is(err, rollout.ErrInvalidSpec) || errors.Is(err, rollout.ErrInfeasible) {
			return nil, &specError{err}
		}
		return nil, err
	}
	return planResult(p, snap)
}

func planResult(p *rollout.Plan, snap *disposition.Snapshot) (*PlanResult, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("refd: encode plan: %w", err)
	}
	res := &PlanResult{Waves: len(p.Waves), Skipped: len(p.Skipped) + len(p.Unschedulable), IndexVersion: snap.Version(), Plan: b}
	for _, w := range p.Waves {
		res.Targets += len(w.Servers)
	}
	return res, nil
}
