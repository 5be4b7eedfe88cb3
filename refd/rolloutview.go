package refd

import (
	"context"
	"errors"
	"slices"

	"github.com/fleetkit/fleetkit/rollout"
)

// The runner's event types as refd's view records them.
var (
	evCreated         = RolloutAction(rollout.EventCreated)
	evPaused          = RolloutAction(rollout.EventPaused)
	evResumed         = RolloutAction(rollout.EventResumed)
	evAborted         = RolloutAction(rollout.EventAborted)
	evRollbackStarted = RolloutAction(rollout.EventRollbackStarted)
	evRolledBack      = RolloutAction(rollout.EventRolledBack)
	evCompleted       = RolloutAction(rollout.EventCompleted)
	evWaveDeployed    = RolloutAction(rollout.EventWaveDeployed)
	evRollbackDeploy  = RolloutAction(rollout.EventRollbackDeployed)
	evDeployError     = RolloutAction(rollout.EventDeployError)
)

// rolloutChanged is the Runner's report that rollout id has news: it
// marks the view for the view writer and never blocks, since the runner
// calls it with the rollout locked.
func (s *Server) rolloutChanged(id string) {
	s.dirtyMu.Lock()
	s.dirty[id] = true
	s.dirtyMu.Unlock()
	select {
	case s.viewWake <- struct{}{}:
	default:
	}
}

// writeViews rewrites the views of the rollouts the Runner reported
// changed, until runDone is closed (the Runner has stopped); then it
// writes what is left and returns.
func (s *Server) writeViews(ctx context.Context, runDone <-chan struct{}) {
	// The views must land even while shutting down: the store outlives
	// the server.
	ctx = context.WithoutCancel(ctx)
	for {
		select {
		case <-s.viewWake:
			s.flushViews(ctx)
		case <-runDone:
			s.flushViews(ctx)
			return
		}
	}
}

func (s *Server) flushViews(ctx context.Context) {
	s.dirtyMu.Lock()
	ids := make([]string, 0, len(s.dirty))
	for id := range s.dirty {
		ids = append(ids, id)
	}
	clear(s.dirty)
	s.dirtyMu.Unlock()
	slices.Sort(ids)
	for _, id := range ids {
		if _, err := s.syncView(ctx, id, nil); err != nil {
			s.log.Error("rollout view update failed; the next change retries it", "rollout", id, "err", err)
		}
	}
}

// syncView brings the view of rollout id up to date with its Runner and
// stores it, adding op (an operator's request) to its events, before the
// runner's new ones, when given.
func (s *Server) syncView(ctx context.Context, id string, op *RolloutEvent) (*Rollout, error) {
	s.viewMu.Lock()
	defer s.viewMu.Unlock()
	return s.syncViewLocked(ctx, id, op)
}

// syncViewLocked is syncView with s.viewMu held. Every write of a view
// holds it, so reading the record and writing it back is one step.
func (s *Server) syncViewLocked(ctx context.Context, id string, op *RolloutEvent) (*Rollout, error) {
	ro, err := s.cfg.Store.Rollout(ctx, id)
	switch {
	case errors.Is(err, ErrNotFound):
		ro = nil
	case err != nil:
		return nil, err
	}
	var after uint64
	if ro != nil {
		after = ro.RunnerSeq
	}
	v, err := s.cfg.Runner.View(ctx, id, after)
	if err != nil {
		if ro != nil && op == nil && errors.Is(err, ErrNotFound) {
			return ro, nil // recorded before a runner was configured
		}
		return nil, err
	}
	if ro == nil {
		// The runner recorded the rollout but refd stopped before its
		// view was stored: make it again from the runner's log.
		s.log.Warn("rollout view rebuilt from the runner's log", "rollout", id)
		ro = &Rollout{
			ID: id, State: RolloutPending, CreatedBy: RunnerPrincipal, CreatedAt: v.CreatedAt.UTC(),
			Spec: string(v.Spec), Events: []RolloutEvent{},
		}
	} else if v.Status.Seq <= ro.RunnerSeq && op == nil {
		return ro, nil
	}
	added := applyView(ro, v, op)
	ro.UpdatedAt = s.cfg.Now().UTC()
	if err := s.cfg.Store.PutRollout(ctx, ro); err != nil {
		return nil, err
	}
	s.metrics.rolloutEvents(added)
	return ro, nil
}

// applyView folds a runner's view into refd's record of a rollout: the
// runner's events it does not have yet (with the state each led from and
// to), then op, then the status. It returns the events added.
func applyView(ro *Rollout, v *RunnerView, op *RolloutEvent) []RolloutEvent {
	if op != nil {
		ro.Events = append(ro.Events, *op)
	}
	state, resume := ro.State, ro.Resume
	var added []RolloutEvent
	for _, e := range v.Events {
		if e.Seq <= ro.RunnerSeq {
			continue
		}
		to := state
		switch e.Action {
		case evCreated:
			to = RolloutRunning
		case evPaused:
			resume, to = state, RolloutPaused
		case evResumed:
			to = resume
			if to == "" {
				to = RolloutRunning
			}
			resume = ""
		case evAborted:
			to, resume = RolloutAborted, ""
		case evRollbackStarted:
			to, resume = RolloutRollingBack, ""
		case evRolledBack:
			to = RolloutRolledBack
		case evCompleted:
			to = RolloutCompleted
		}
		if to != state {
			e.From = state
		}
		e.To, state = to, to
		ro.Events = append(ro.Events, e)
		added = append(added, e)
		ro.RunnerSeq = e.Seq
	}
	st := v.Status
	ro.State, ro.Reason = st.State, st.Reason
	ro.Resume, ro.PauseCause = "", ""
	if st.State == RolloutPaused {
		ro.Resume = resume
		for i := len(ro.Events) - 1; i >= 0; i-- {
			if e := ro.Events[i]; e.Who == RunnerPrincipal && e.Action == evPaused {
				ro.PauseCause = e.Cause
				break
			}
		}
	}
	ro.Waves, ro.WavesDone = st.Waves, st.WavesDone
	ro.Deployed, ro.Failed, ro.Planned, ro.RolledBack = st.Deployed, st.Failed, st.Planned, st.RolledBack
	return added
}

// commandLeadsTo is the state an accepted operator's command leads a
// rollout to from its view: the state right after the command, whatever
// the runner did next.
func commandLeadsTo(ro *Rollout, a RolloutAction) RolloutState {
	switch a {
	case ActionPause:
		return RolloutPaused
	case ActionResume:
		if ro.Resume != "" {
			return ro.Resume
		}
		return RolloutRunning
	case ActionAbort:
		return RolloutAborted
	case ActionRollback:
		return RolloutRollingBack
	}
	return ro.State
}
