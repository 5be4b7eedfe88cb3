package refd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

// Runner drives created rollouts: the seam to rollout.Runner, which
// NewRolloutRunner adapts. With a Runner, the runner's event log is the
// truth about a rollout, and refd's Rollout record is a view of it: refd
// rewrites the record from View whenever Run reports a change, and after
// every Start and Control. Without one, refd keeps each rollout's state
// machine itself (Next) and nothing is deployed.
type Runner interface {
	// Start records rollout r (r.ID, planned from r.Spec over the fleet
	// as it is now, its first wave not before start) and drives it while
	// Run runs. An error wrapping ErrInvalidSpec is the spec's fault; one
	// wrapping ErrRefused says the ID is taken.
	Start(ctx context.Context, r *Rollout, start time.Time) error
	// Control carries out an operator's command. An error wrapping
	// ErrNotFound means the runner has no such rollout; one wrapping
	// ErrRefused, that the command does not apply in its status.
	Control(ctx context.Context, id string, c RolloutCommand) error
	// View returns rollout id as the runner has it: its status, and its
	// events numbered after after, in order, up to the status. An error
	// wrapping ErrNotFound means the runner has no such rollout.
	View(ctx context.Context, id string, after uint64) (*RunnerView, error)
	// Run drives every rollout that has not finished, and every one
	// started or rolled back while it runs, until ctx ends; then it stops
	// them and waits for them. It calls changed with the ID of a rollout
	// that has news for View, at once for every rollout it knows (so that
	// a view left behind catches up) and then after every event;
	// changed must not block.
	Run(ctx context.Context, changed func(id string)) error
}

// ErrRefused is wrapped by Runner errors about an operation that does not
// apply to the rollout as it is (409).
var ErrRefused = errors.New("refused by the rollout runner")

// RolloutCommand is an operator's command to a Runner.
type RolloutCommand struct {
	Action RolloutAction
	// Server is the server ActionSkip and ActionPin apply to.
	Server string
	// Reason is the operator's reason, recorded in the runner's log.
	Reason string
	// Who is the principal that asked.
	Who string
}

// RunnerView is a rollout as its Runner has it.
type RunnerView struct {
	Status RunnerStatus
	// Events are the runner's events after the sequence number asked
	// for, up to Status.Seq.
	Events []RolloutEvent
	// CreatedAt and Spec (the spec as the runner keeps it, JSON) are set
	// when View is asked for every event (after 0), so that a view lost
	// by refd can be made again.
	CreatedAt time.Time
	Spec      json.RawMessage
}

// RunnerStatus is a rollout's status after runner event Seq.
type RunnerStatus struct {
	Seq   uint64
	State RolloutState
	// Reason is why it is paused, aborted or rolled back.
	Reason string
	// Waves counts the waves started and planned, WavesDone those
	// completed.
	Waves     int
	WavesDone int
	// Deployed counts servers deployed successfully, Failed those whose
	// failures count against the budgets, Planned those of waves not
	// started, RolledBack those rolled back.
	Deployed   int
	Failed     int
	Planned    int
	RolledBack int
	UpdatedAt  time.Time
}

// RolloutState is where a rollout is in its life.
type RolloutState string

// The rollout states. Without a Runner a rollout stays pending until it is
// paused, aborted or rolled back: nothing deploys it. With one, a rollout
// is running from its creation, and rolling-back while the runner
// redeploys the previous versions.
const (
	RolloutPending     RolloutState = "pending"      // created, waiting for the runner
	RolloutRunning     RolloutState = "running"      // the runner is driving it
	RolloutPaused      RolloutState = "paused"       // held before its next wave
	RolloutRollingBack RolloutState = "rolling-back" // the runner is redeploying the previous versions
	RolloutAborted     RolloutState = "aborted"      // stopped for good, servers left as they are
	RolloutRolledBack  RolloutState = "rolled-back"  // reverted
	RolloutCompleted   RolloutState = "completed"    // every wave done
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
	// ActionSkip leaves a server out of the rest of the rollout, and
	// ActionPin also out of any rollback; both need a Runner.
	ActionSkip RolloutAction = "skip"
	ActionPin  RolloutAction = "pin"
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
	// Targets and Skipped are the figures of the plan at creation, and
	// Plan that plan. Waves counts the waves started and planned (the
	// runner re-plans as the fleet changes), WavesDone those completed.
	Waves        int             `json:"waves"`
	Targets      int             `json:"targets"`
	Skipped      int             `json:"skipped"`
	WavesDone    int             `json:"waves_done"`
	IndexVersion uint64          `json:"index_version"`
	Plan         json.RawMessage `json:"plan,omitempty"`
	// Reason is why the rollout is paused, aborted or rolled back, and
	// PauseCause what paused it: operator, budget (a failure budget was
	// exceeded), deploy (the deployer kept failing) or plan (the
	// remaining waves could not be re-planned). Runner only.
	Reason     string `json:"reason,omitempty"`
	PauseCause string `json:"pause_cause,omitempty"`
	// Deployed counts servers deployed successfully, Failed those whose
	// failures count against the budgets, Planned those of waves not yet
	// started, RolledBack those rolled back. Runner only.
	Deployed   int `json:"deployed"`
	Failed     int `json:"failed"`
	Planned    int `json:"planned"`
	RolledBack int `json:"rolled_back"`
	// RunnerSeq is the runner's last event in Events; 0 without a Runner.
	RunnerSeq uint64         `json:"runner_seq,omitempty"`
	Events    []RolloutEvent `json:"events"`
}

// RunnerPrincipal is the Who of the events a Runner records by itself.
const RunnerPrincipal = "refd-runner"

// RolloutEvent is one step of a rollout's history: an operator's request
// (Who is the token's name), or an event of the runner's log (Who is
// RunnerPrincipal, Seq its sequence number and Action its type, such as
// wave-started or budget-exceeded).
type RolloutEvent struct {
	At     time.Time     `json:"at"`
	Who    string        `json:"who"`
	Action RolloutAction `json:"action"`
	From   RolloutState  `json:"from,omitempty"`
	To     RolloutState  `json:"to"`
	Seq    uint64        `json:"seq,omitempty"`
	// Wave or Batch (of a rollback) the event is about.
	Wave  int `json:"wave,omitempty"`
	Batch int `json:"batch,omitempty"`
	// Server of a skip or pin.
	Server string `json:"server,omitempty"`
	// Servers counts the servers of a started wave or a deploy; Failed
	// those that failed (deploys) or were unhealthy (health gates).
	Servers int `json:"servers,omitempty"`
	Failed  int `json:"failed,omitempty"`
	// Reason, Cause (of a pause) and Error (of a failed deploy call).
	Reason string `json:"reason,omitempty"`
	Cause  string `json:"cause,omitempty"`
	Error  string `json:"error,omitempty"`
}

// RolloutsResult is the body of GET /v1/rollouts.
type RolloutsResult struct {
	Rollouts []*Rollout `json:"rollouts"`
}

// plan runs the planner over the request body. start is the ?start= time,
// zero when the request has none.
func (s *Server) plan(r *http.Request) (res *PlanResult, spec []byte, start time.Time, err error) {
	if s.cfg.Planner == nil {
		return nil, nil, start, notConfigured("rollout planning")
	}
	spec, err = readAll(r)
	if err != nil {
		return nil, nil, start, err
	}
	if len(spec) == 0 {
		return nil, nil, start, badRequest("", "empty body: want a rollout spec in YAML or JSON")
	}
	if raw := r.URL.Query().Get("start"); raw != "" {
		t, err := time.Parse(time.RFC3339, raw)
		if err != nil {
			return nil, nil, start, badRequest("start", "want an RFC 3339 time, got %q", raw)
		}
		start = t
	}
	from := start
	if from.IsZero() {
		from = s.cfg.Now()
	}
	snap := s.cfg.Index.Snapshot()
	res, err = s.cfg.Planner.Plan(r.Context(), "spec", spec, snap, from)
	if err != nil {
		if errors.Is(err, ErrInvalidSpec) {
			return nil, nil, start, apiErr(http.StatusUnprocessableEntity, CodePlanFailed, "", "%v", err)
		}
		return nil, nil, start, err
	}
	res.IndexVersion = snap.Version()
	return res, spec, start, nil
}

func (s *Server) handlePlan(w http.ResponseWriter, r *http.Request) error {
	res, _, _, err := s.plan(r)
	if err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusOK, res)
	return nil
}

func (s *Server) handleCreateRollout(w http.ResponseWriter, r *http.Request) error {
	res, spec, start, err := s.plan(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	id, err := s.cfg.Store.NewRolloutID(ctx)
	if err != nil {
		return err
	}
	now := s.cfg.Now().UTC()
	who := Principal(ctx)
	ro := &Rollout{
		ID: id, State: RolloutPending, CreatedBy: who, CreatedAt: now, UpdatedAt: now,
		Spec: string(spec), Waves: res.Waves, Targets: res.Targets, Skipped: res.Skipped,
		IndexVersion: res.IndexVersion, Plan: res.Plan,
		Events: []RolloutEvent{{At: now, Who: who, Action: "create", To: RolloutPending}},
	}
	if s.cfg.Runner != nil {
		if ro, err = s.startRollout(ctx, ro, start); err != nil {
			return err
		}
	} else if err := s.cfg.Store.PutRollout(ctx, ro); err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/rollouts/"+id)
	s.writeJSON(w, r, http.StatusCreated, ro)
	return nil
}

// startRollout hands a new rollout to the Runner and stores its view.
func (s *Server) startRollout(ctx context.Context, ro *Rollout, start time.Time) (*Rollout, error) {
	// Holding the view lock until the record exists keeps the runner's
	// first reports from looking for it before.
	s.viewMu.Lock()
	defer s.viewMu.Unlock()
	if err := s.cfg.Runner.Start(ctx, ro, start); err != nil {
		switch {
		case errors.Is(err, ErrInvalidSpec):
			return nil, apiErr(http.StatusUnprocessableEntity, CodePlanFailed, "", "%v", err)
		case errors.Is(err, ErrRefused):
			return nil, apiErr(http.StatusConflict, CodeConflict, "", "runner refused the rollout: %v", err)
		}
		return nil, err
	}
	if err := s.cfg.Store.PutRollout(ctx, ro); err != nil {
		return nil, err
	}
	return s.syncViewLocked(ctx, ro.ID, nil)
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

// RolloutActionRequest is the optional body of POST
// /v1/rollouts/{id}/<action>: the reason, recorded in the runner's log,
// and for skip and pin (where it is required) the server.
type RolloutActionRequest struct {
	Server string `json:"server,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// rolloutAction returns the handler of POST /v1/rollouts/{id}/<action>.
func (s *Server) rolloutAction(a RolloutAction) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		if s.cfg.Runner != nil {
			return s.runnerAction(w, r, a)
		}
		if a == ActionSkip || a == ActionPin {
			return notConfigured("the rollout runner (" + string(a) + " needs it)")
		}
		id := r.PathValue("id")
		who := Principal(r.Context())
		ro, err := s.cfg.Store.UpdateRollout(r.Context(), id, func(ro *Rollout) error {
			next, err := Next(ro.State, ro.Resume, a)
			if err != nil {
				return apiErr(http.StatusConflict, CodeConflict, "", "rollout %s: %v", id, err)
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

// runnerAction carries out an action through the Runner, then records
// the request in the rollout's view, refreshed from the runner.
func (s *Server) runnerAction(w http.ResponseWriter, r *http.Request, a RolloutAction) error {
	ctx := r.Context()
	id := r.PathValue("id")
	var req RolloutActionRequest
	if body, err := readAll(r); err != nil {
		return err
	} else if len(bytes.TrimSpace(body)) > 0 {
		r.Body = io.NopCloser(bytes.NewReader(body))
		if err := decodeJSON(r, &req); err != nil {
			return err
		}
	}
	switch {
	case (a == ActionSkip || a == ActionPin) && req.Server == "":
		return badRequest("server", "required: the server to %s", a)
	case a != ActionSkip && a != ActionPin && req.Server != "":
		return badRequest("server", "only skip and pin take a server")
	}
	if req.Server != "" {
		if _, ok := s.cfg.Index.Snapshot().Get(req.Server); !ok {
			return apiErr(http.StatusUnprocessableEntity, CodeBadRequest, "server", "no server %q in the fleet", req.Server)
		}
	}
	// The view is brought up to date first and the lock held until the
	// request is recorded, so that the request comes after the runner's
	// earlier events and before those it causes.
	s.viewMu.Lock()
	defer s.viewMu.Unlock()
	before, err := s.syncViewLocked(ctx, id, nil)
	if errors.Is(err, ErrNotFound) {
		return apiErr(http.StatusNotFound, CodeNotFound, "id", "no rollout %q", id)
	} else if err != nil {
		return err
	}
	who := Principal(ctx)
	reason := req.Reason
	if reason == "" {
		reason = fmt.Sprintf("%s by %s", a, who)
	}
	err = s.cfg.Runner.Control(ctx, id, RolloutCommand{Action: a, Server: req.Server, Reason: reason, Who: who})
	switch {
	case errors.Is(err, ErrNotFound):
		return apiErr(http.StatusConflict, CodeConflict, "id", "rollout %s: the runner does not have it (created before the runner was configured?)", id)
	case errors.Is(err, ErrRefused):
		return apiErr(http.StatusConflict, CodeConflict, "", "rollout %s: %v", id, err)
	case err != nil:
		return err
	}
	op := RolloutEvent{
		At: s.cfg.Now().UTC(), Who: who, Action: a, From: before.State, To: commandLeadsTo(before, a),
		Server: req.Server, Reason: req.Reason,
	}
	ro, err := s.syncViewLocked(ctx, id, &op)
	if err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusOK, ro)
	return nil
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
