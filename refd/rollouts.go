package refd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/fleetkit/fleetkit/disposition"
)

// Planner plans rollout specs: the seam to package rollout
// (RolloutPlanner adapts rollout.ParseSpec and rollout.NewPlan).
type Planner interface {
	// Plan parses spec (YAML or JSON; name is used in its errors) and
	// plans it over snap from start. An error that wraps ErrInvalidSpec
	// is the caller's fault (422, naming the line and field); any other
	// is internal.
	Plan(ctx context.Context, name string, spec []byte, snap *disposition.Snapshot, start time.Time) (*PlanResult, error)
}

// ErrInvalidSpec is wrapped by Planner errors about the spec itself.
var ErrInvalidSpec = errors.New("invalid rollout spec")

// PlanResult is a planned rollout: the planner's plan as JSON and the
// figures refd keeps about it.
type PlanResult struct {
	// Waves is the number of waves; Targets the servers in them; Skipped
	// the selected servers left out, each with a reason in Plan.
	Waves   int `json:"waves"`
	Targets int `json:"targets"`
	Skipped int `json:"skipped"`
	// IndexVersion is the index version planned over.
	IndexVersion uint64 `json:"index_version"`
	// Plan is the planner's plan.
	Plan json.RawMessage `json:"plan"`
}

// Runner drives created rollouts: the seam to rollout.Runner. refd keeps
// each rollout's state machine in its Store and tells the Runner about
// every accepted transition; a Runner error rejects the transition.
type Runner interface {
	// Start begins driving a created rollout.
	Start(ctx context.Context, r *Rollout) error
	// Control applies an action to a rollout it drives. refd calls it
	// inside the Store transaction that records the transition, so it
	// must not write the Store itself before returning (record progress
	// from the runner's own goroutine, with Store.UpdateRollout).
	Control(ctx context.Context, id string, a RolloutAction) error
}

// RolloutState is where a rollout is in its life.
type RolloutState string

// The rollout states. Without a Runner a rollout stays pending until it is
// paused, aborted or rolled back: nothing deploys it.
const (
	RolloutPending    RolloutState = "pending"     // created, waiting for the runner
	RolloutRunning    RolloutState = "running"     // the runner is driving it
	RolloutPaused     RolloutState = "paused"      // held before its next wave
	RolloutAborted    RolloutState = "aborted"     // stopped for good, servers left as they are
	RolloutRolledBack RolloutState = "rolled-back" // reverted
	RolloutCompleted  RolloutState = "completed"   // every wave done
)

// RolloutAction is an operator's command on a rollout.
type RolloutAction string

// The rollout actions.
const (
	ActionPause    RolloutAction = "pause"
	ActionResume   RolloutAction = "resume"
	ActionAbort    RolloutAction = "abort"
	ActionRollback RolloutAction = "rollback"
	ActionPromote  RolloutAction = "promote" // skip the current bake or canary hold
)

// transitions says, for each action, the states it applies in and the
// state it leads to (resume goes back to where pause came from).
var transitions = map[RolloutAction]struct {
	from []RolloutState
	to   RolloutState
}{
	ActionPause:    {[]RolloutState{RolloutPending, RolloutRunning}, RolloutPaused},
	ActionResume:   {[]RolloutState{RolloutPaused}, ""},
	ActionAbort:    {[]RolloutState{RolloutPending, RolloutRunning, RolloutPaused}, RolloutAborted},
	ActionRollback: {[]RolloutState{RolloutPending, RolloutRunning, RolloutPaused, RolloutAborted, RolloutCompleted}, RolloutRolledBack},
	ActionPromote:  {[]RolloutState{RolloutPending, RolloutRunning, RolloutPaused}, ""},
}

// Next returns the state action a leads to from state s, or an error when
// a does not apply in s. prev is the state before the last pause, which
// resume returns to.
func Next(s, prev RolloutState, a RolloutAction) (RolloutState, error) {
	t, ok := transitions[a]
	if !ok {
		return "", fmt.Errorf("unknown action %q", a)
	}
	if !slices.Contains(t.from, s) {
		return "", fmt.Errorf("cannot %s a rollout that is %s", a, s)
	}
	switch {
	case t.to != "":
		return t.to, nil
	case a == ActionResume && prev != "":
		return prev, nil
	case a == ActionResume:
		return RolloutPending, nil
	}
	return s, nil // promote keeps the state
}

// Rollout is a created rollout as the Store keeps it.
type Rollout struct {
	ID    string       `json:"id"`
	State RolloutState `json:"state"`
	// Resume is the state a paused rollout resumes to.
	Resume    RolloutState `json:"resume_to,omitempty"`
	CreatedBy string       `json:"created_by"`
	CreatedAt time.Time    `json:"created_at"`
	UpdatedAt time.Time    `json:"updated_at"`
	// Spec is the spec as submitted.
	Spec string `json:"spec"`
	// Waves, Targets and Skipped are the plan's figures; WavesDone is the
	// runner's progress.
	Waves        int             `json:"waves"`
	Targets      int             `json:"targets"`
	Skipped      int             `json:"skipped"`
	WavesDone    int             `json:"waves_done"`
	IndexVersion uint64          `json:"index_version"`
	Plan         json.RawMessage `json:"plan,omitempty"`
	Events       []RolloutEvent  `json:"events"`
}

// RolloutEvent is one step of a rollout's history.
type RolloutEvent struct {
	At     time.Time     `json:"at"`
	Who    string        `json:"who"`
	Action RolloutAction `json:"action"`
	From   RolloutState  `json:"from,omitempty"`
	To     RolloutState  `json:"to"`
}

// RolloutsResult is the body of GET /v1/rollouts.
type RolloutsResult struct {
	Rollouts []*Rollout `json:"rollouts"`
}

// plan runs the planner over the request body.
func (s *Server) plan(r *http.Request) (*PlanResult, []byte, error) {
	if s.cfg.Planner == nil {
		return nil, nil, notConfigured("rollout planning")
	}
	spec, err := readAll(r)
	if err != nil {
		return nil, nil, err
	}
	if len(spec) == 0 {
		return nil, nil, badRequest("", "empty body: want a rollout spec in YAML or JSON")
	}
	start := s.cfg.Now()
	if raw := r.URL.Query().Get("start"); raw != "" {
		t, err := time.Parse(time.RFC3339, raw)
		if err != nil {
			return nil, nil, badRequest("start", "want an RFC 3339 time, got %q", raw)
		}
		start = t
	}
	snap := s.cfg.Index.Snapshot()
	res, err := s.cfg.Planner.Plan(r.Context(), "spec", spec, snap, start)
	if err != nil {
		if errors.Is(err, ErrInvalidSpec) {
			return nil, nil, apiErr(http.StatusUnprocessableEntity, CodePlanFailed, "", "%v", err)
		}
		return nil, nil, err
	}
	res.IndexVersion = snap.Version()
	return res, spec, nil
}

func (s *Server) handlePlan(w http.ResponseWriter, r *http.Request) error {
	res, _, err := s.plan(r)
	if err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusOK, res)
	return nil
}

func (s *Server) handleCreateRollout(w http.ResponseWriter, r *http.Request) error {
	res, spec, err := s.plan(r)
	if err != nil {
		return err
	}
	id, err := s.cfg.Store.NewRolloutID(r.Context())
	if err != nil {
		return err
	}
	now := s.cfg.Now().UTC()
	who := Principal(r.Context())
	ro := &Rollout{
		ID: id, State: RolloutPending, CreatedBy: who, CreatedAt: now, UpdatedAt: now,
		Spec: string(spec), Waves: res.Waves, Targets: res.Targets, Skipped: res.Skipped,
		IndexVersion: res.IndexVersion, Plan: res.Plan,
		Events: []RolloutEvent{{At: now, Who: who, Action: "create", To: RolloutPending}},
	}
	if s.cfg.Runner != nil {
		if err := s.cfg.Runner.Start(r.Context(), ro); err != nil {
			return apiErr(http.StatusConflict, CodeConflict, "", "runner refused the rollout: %v", err)
		}
		ro.State = RolloutRunning
		ro.Events = append(ro.Events, RolloutEvent{At: now, Who: who, Action: "start", From: RolloutPending, To: RolloutRunning})
	}
	if err := s.cfg.Store.PutRollout(r.Context(), ro); err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/rollouts/"+id)
	s.writeJSON(w, r, http.StatusCreated, ro)
	return nil
}

func (s *Server) handleRollouts(w http.ResponseWriter, r *http.Request) error {
	all, err := s.cfg.Store.Rollouts(r.Context())
	if err != nil {
		return err
	}
	if all == nil {
		all = []*Rollout{}
	}
	s.writeJSON(w, r, http.StatusOK, RolloutsResult{Rollouts: all})
	return nil
}

func (s *Server) handleRollout(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	ro, err := s.cfg.Store.Rollout(r.Context(), id)
	if errors.Is(err, ErrNotFound) {
		return apiErr(http.StatusNotFound, CodeNotFound, "id", "no rollout %q", id)
	}
	if err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusOK, ro)
	return nil
}

// rolloutAction returns the handler of POST /v1/rollouts/{id}/<action>.
func (s *Server) rolloutAction(a RolloutAction) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		id := r.PathValue("id")
		who := Principal(r.Context())
		ro, err := s.cfg.Store.UpdateRollout(r.Context(), id, func(ro *Rollout) error {
			next, err := Next(ro.State, ro.Resume, a)
			if err != nil {
				return apiErr(http.StatusConflict, CodeConflict, "", "rollout %s: %v", id, err)
			}
			if s.cfg.Runner != nil {
				if err := s.cfg.Runner.Control(r.Context(), id, a); err != nil {
					return apiErr(http.StatusConflict, CodeConflict, "", "rollout %s: runner refused %s: %v", id, a, err)
				}
			}
			now := s.cfg.Now().UTC()
			if a == ActionPause {
				ro.Resume = ro.State
			} else if a == ActionResume {
				ro.Resume = ""
			}
			ro.Events = append(ro.Events, RolloutEvent{At: now, Who: who, Action: a, From: ro.State, To: next})
			ro.State, ro.UpdatedAt = next, now
			return nil
		})
		if errors.Is(err, ErrNotFound) {
			return apiErr(http.StatusNotFound, CodeNotFound, "id", "no rollout %q", id)
		}
		if err != nil {
			return err
		}
		s.writeJSON(w, r, http.StatusOK, ro)
		return nil
	}
}

// readAll reads a request body the middleware already bounded.
func readAll(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	b, err := readBody(r)
	if err != nil {
		return nil, badRequest("", "reading body: %v", err)
	}
	return b, nil
}
