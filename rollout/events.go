package rollout

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// EventType names what an Event records.
type EventType string

// The event types, with the Event fields each sets.
const (
	// EventCreated starts a rollout: Spec, and its first plan in
	// Schedule, IndexVersion and Blackouts.
	EventCreated EventType = "created"
	// EventReplanned replaces the waves not yet started: Reason,
	// IndexVersion and Blackouts, and Schedule unless the new plan's
	// waves equal the old ones.
	EventReplanned EventType = "replanned"
	// EventWaveStarted is the decision to deploy the next planned wave,
	// written before the Deployer is called: Wave, Attempt, Key, Stage,
	// Bake and Servers.
	EventWaveStarted EventType = "wave-started"
	// EventDeployError records a Deployer call that failed as a whole:
	// Wave (or Batch during a rollback), Key, Error, and RetryAt.
	EventDeployError EventType = "deploy-error"
	// EventWaveDeployed records the Deployer's per-server results: Wave,
	// Key, Results.
	EventWaveDeployed EventType = "wave-deployed"
	// EventWaveGated records the end of the health gate: Wave, Unhealthy
	// (servers that did not pass) and BakeUntil.
	EventWaveGated EventType = "wave-gated"
	// EventBudgetExceeded records failure budget breaches after a wave:
	// Wave, Breaches, and Reason. A paused or rollback-started event
	// follows.
	EventBudgetExceeded EventType = "budget-exceeded"
	// EventWaveCompleted ends a wave's bake: Wave.
	EventWaveCompleted EventType = "wave-completed"
	// EventPaused holds the rollout: Reason and Cause.
	EventPaused EventType = "paused"
	// EventResumed releases a pause: Reason.
	EventResumed EventType = "resumed"
	// EventAborted stops the rollout for good: Reason.
	EventAborted EventType = "aborted"
	// EventPromoted skips the rest of a wave's bake: Wave.
	EventPromoted EventType = "promoted"
	// EventServerSkipped leaves a server out of the rest of the rollout
	// and its failures out of the budgets: Server, Reason.
	EventServerSkipped EventType = "server-skipped"
	// EventServerPinned is EventServerSkipped that also keeps the server
	// out of a rollback: Server, Reason.
	EventServerPinned EventType = "server-pinned"
	// EventRollbackStarted is the decision to roll back, with every batch
	// planned: Reason, Batches.
	EventRollbackStarted EventType = "rollback-started"
	// EventRollbackDeployed records one rollback batch's results: Batch,
	// Key, Results.
	EventRollbackDeployed EventType = "rollback-deployed"
	// EventRolledBack ends a rollback.
	EventRolledBack EventType = "rolled-back"
	// EventCompleted ends a rollout whose every wave completed.
	EventCompleted EventType = "completed"
)

// PauseCause says why a rollout is paused.
type PauseCause string

// The pause causes.
const (
	CauseOperator PauseCause = "operator" // Runner.Pause
	CauseBudget   PauseCause = "budget"   // a failure budget was exceeded
	CauseDeploy   PauseCause = "deploy"   // the Deployer kept failing
	CausePlan     PauseCause = "plan"     // the remaining waves could not be re-planned
)

// Event is one entry of a rollout's event log. Which fields are set
// depends on Type (see the EventType constants). Events are plain JSON;
// Seq numbers a rollout's events from 1 without gaps.
type Event struct {
	Seq  uint64    `json:"seq"`
	At   time.Time `json:"at"`
	Type EventType `json:"type"`

	Spec         *Spec      `json:"spec,omitempty"`
	Schedule     *Schedule  `json:"schedule,omitempty"`
	IndexVersion uint64     `json:"index_version,omitempty"`
	Blackouts    []Blackout `json:"blackouts,omitempty"`

	Wave    int            `json:"wave,omitempty"`
	Batch   int            `json:"batch,omitempty"`
	Attempt int            `json:"attempt,omitempty"`
	Key     string         `json:"key,omitempty"`
	Stage   string         `json:"stage,omitempty"`
	Bake    Duration       `json:"bake,omitempty"`
	Servers []WaveServer   `json:"servers,omitempty"`
	Results []ServerResult `json:"results,omitempty"`
	Error   string         `json:"error,omitempty"`
	RetryAt time.Time      `json:"retry_at,omitzero"`

	Unhealthy []string  `json:"unhealthy,omitempty"`
	BakeUntil time.Time `json:"bake_until,omitzero"`
	Breaches  []Breach  `json:"breaches,omitempty"`

	Reason  string          `json:"reason,omitempty"`
	Cause   PauseCause      `json:"cause,omitempty"`
	Server  string          `json:"server,omitempty"`
	Batches []RollbackBatch `json:"batches,omitempty"`
}

// Schedule is a plan as the Runner keeps it: the waves still to run, and
// the counts failure budgets are measured against.
type Schedule struct {
	// Start is when the plan was made from.
	Start time.Time     `json:"start"`
	Waves []PlannedWave `json:"waves"`
	// Totals counts the servers of the whole rollout (started and
	// planned) per scope, for percentage failure budgets.
	Totals Totals `json:"totals"`
	// Skipped and Unschedulable count the targets the plan left out.
	Skipped       int `json:"skipped"`
	Unschedulable int `json:"unschedulable"`
}

// PlannedWave is a wave of a plan that has not started.
type PlannedWave struct {
	Stage   string    `json:"stage"`
	Step    int       `json:"step"`
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	Bake    Duration  `json:"bake"`
	Servers []string  `json:"servers"`
}

// Totals counts a rollout's servers per failure-budget scope.
type Totals struct {
	Servers int            `json:"servers"`
	Metro   map[string]int `json:"metro"`
	Cluster map[string]int `json:"cluster"`
}

// WaveServer is one server of a started wave, as the disposition showed
// it when the wave started.
type WaveServer struct {
	ID      string `json:"id"`
	Metro   string `json:"metro,omitempty"`
	Cluster string `json:"cluster,omitempty"`
	// Prev is the server's version of the spec's component before the
	// wave, which a rollback redeploys.
	Prev string `json:"prev,omitempty"`
	// Unhealthy is set when the server was not healthy as its wave
	// started; its failures do not count.
	Unhealthy bool `json:"unhealthy,omitempty"`
}

// ServerResult is a Deployer's outcome for one server.
type ServerResult struct {
	Server string `json:"server"`
	OK     bool   `json:"ok"`
	Error  string `json:"error,omitempty"`
}

// Breach is one failure budget exceeded.
type Breach struct {
	// Scope is "wave", "cluster", "metro" or "global"; Name the wave
	// number, cluster or metro, empty for global.
	Scope    string `json:"scope"`
	Name     string `json:"name,omitempty"`
	Failures int    `json:"failures"`
	Allowed  int    `json:"allowed"`
}

// RollbackBatch is one Deployer call of a rollback: servers that go back
// to the same version.
type RollbackBatch struct {
	Key     string   `json:"key"`
	Version string   `json:"version"`
	Servers []string `json:"servers"`
}

// Status is where a rollout is in its life.
type Status string

// The statuses.
const (
	StatusRunning     Status = "running"      // waves are being deployed, or waited for
	StatusPaused      Status = "paused"       // held before its next wave
	StatusRollingBack Status = "rolling-back" // redeploying the previous versions
	StatusRolledBack  Status = "rolled-back"  // rollback finished
	StatusAborted     Status = "aborted"      // stopped for good, servers left as they are
	StatusCompleted   Status = "completed"    // every wave done
)

// Terminal reports whether nothing more happens to a rollout in status s
// (a completed or aborted rollout may still be rolled back).
func (s Status) Terminal() bool {
	return s == StatusRolledBack || s == StatusAborted || s == StatusCompleted
}

// WavePhase is how far a started wave has gone.
type WavePhase string

// The wave phases, in order.
const (
	PhaseStarted   WavePhase = "started"   // the deploy is in flight
	PhaseDeployed  WavePhase = "deployed"  // results in, health gate running
	PhaseGated     WavePhase = "gated"     // health known, baking
	PhaseCompleted WavePhase = "completed" // bake over
)

// WaveState is a started wave.
type WaveState struct {
	Number  int          `json:"number"`
	Key     string       `json:"key"`
	Attempt int          `json:"attempt"`
	Stage   string       `json:"stage"`
	Bake    Duration     `json:"bake"`
	Phase   WavePhase    `json:"phase"`
	Servers []WaveServer `json:"servers"`

	StartedAt   time.Time `json:"started_at"`
	DeployedAt  time.Time `json:"deployed_at,omitzero"`
	GatedAt     time.Time `json:"gated_at,omitzero"`
	BakeUntil   time.Time `json:"bake_until,omitzero"`
	CompletedAt time.Time `json:"completed_at,omitzero"`

	Results   []ServerResult `json:"results,omitempty"`
	Unhealthy []string       `json:"unhealthy,omitempty"`
	Promoted  bool           `json:"promoted,omitempty"`
	Breached  bool           `json:"breached,omitempty"`
	// DeployErrors counts failed Deployer calls since the wave started
	// or the rollout last resumed; RetryAt is when to call again.
	DeployErrors int       `json:"deploy_errors,omitempty"`
	RetryAt      time.Time `json:"retry_at,omitzero"`
}

// ServerState is what a rollout did to one server.
type ServerState struct {
	// Wave is the started wave that holds the server, 0 if none.
	Wave    int    `json:"wave,omitempty"`
	Metro   string `json:"metro,omitempty"`
	Cluster string `json:"cluster,omitempty"`
	Prev    string `json:"prev,omitempty"`
	// Unhealthy before its wave: failures do not count.
	PreUnhealthy bool `json:"pre_unhealthy,omitempty"`
	// Failed: the Deployer reported a failure (Error says what).
	Failed bool   `json:"failed,omitempty"`
	Error  string `json:"error,omitempty"`
	// Unhealthy: not healthy at the end of its wave's health gate.
	Unhealthy bool `json:"unhealthy,omitempty"`
	Skipped   bool `json:"skipped,omitempty"`
	Pinned    bool `json:"pinned,omitempty"`
	// Forgiven: a failure acknowledged by resuming after a breach.
	Forgiven   bool `json:"forgiven,omitempty"`
	RolledBack bool `json:"rolled_back,omitempty"`
}

// counts reports whether the server's failure counts against budgets.
func (s *ServerState) counts() bool {
	return (s.Failed || s.Unhealthy) && !s.PreUnhealthy && !s.Skipped && !s.Pinned && !s.Forgiven
}

// RollbackState is a rollback in progress or done.
type RollbackState struct {
	Reason    string          `json:"reason"`
	StartedAt time.Time       `json:"started_at"`
	Batches   []RollbackBatch `json:"batches"`
	// Done holds the results of each deployed batch, in order.
	Done         [][]ServerResult `json:"done"`
	DeployErrors int              `json:"deploy_errors,omitempty"`
	RetryAt      time.Time        `json:"retry_at,omitzero"`
}

// State is a rollout's current state: the fold of its event log (see
// Apply). It is plain data.
type State struct {
	ID        string    `json:"id"`
	Seq       uint64    `json:"seq"`
	Spec      *Spec     `json:"spec"`
	Status    Status    `json:"status"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// PauseReason and PauseCause describe the pause while Status is
	// StatusPaused; PausedFrom is the status a resume returns to.
	PauseReason string     `json:"pause_reason,omitempty"`
	PauseCause  PauseCause `json:"pause_cause,omitempty"`
	PausedFrom  Status     `json:"paused_from,omitempty"`
	// Reason is why the rollout aborted or rolled back.
	Reason string `json:"reason,omitempty"`

	// IndexVersion and Blackouts are the disposition version and the live
	// blackouts the remaining waves were planned with.
	IndexVersion uint64     `json:"index_version"`
	Blackouts    []Blackout `json:"blackouts,omitempty"`
	// Remaining are the planned waves not yet started.
	Remaining     []PlannedWave `json:"remaining"`
	Totals        Totals        `json:"totals"`
	Replans       int           `json:"replans"`
	Skipped       int           `json:"skipped"`
	Unschedulable int           `json:"unschedulable"`

	Waves    []*WaveState            `json:"waves"`
	Servers  map[string]*ServerState `json:"servers"`
	Rollback *RollbackState          `json:"rollback,omitempty"`
	Breaches []Breach                `json:"breaches,omitempty"`
}

// ErrInvalidEvent is wrapped by the error of an event that does not
// follow from the state it is applied to: a log written by something
// other than a Runner, or damaged.
var ErrInvalidEvent = errors.New("invalid rollout event")

// EventError reports an event that cannot be applied.
type EventError struct {
	Rollout string
	Seq     uint64
	Type    EventType
	Err     error
}

// Error implements the error interface.
func (e *EventError) Error() string {
	return fmt.Sprintf("rollout %s: event %d (%s): %v", e.Rollout, e.Seq, e.Type, e.Err)
}

// Unwrap returns ErrInvalidEvent and the cause.
func (e *EventError) Unwrap() []error { return []error{ErrInvalidEvent, e.Err} }

// Fold returns the state of rollout id after its events, in order.
func Fold(id string, events []Event) (*State, error) {
	s := &State{ID: id}
	for _, e := range events {
		if err := s.Apply(e); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Current returns the wave in progress: the last started wave unless it
// completed, else nil.
func (s *State) Current() *WaveState {
	if n := len(s.Waves); n > 0 && s.Waves[n-1].Phase != PhaseCompleted {
		return s.Waves[n-1]
	}
	return nil
}

func (s *State) wave(n int) (*WaveState, error) {
	if n < 1 || n > len(s.Waves) {
		return nil, fmt.Errorf("no started wave %d", n)
	}
	return s.Waves[n-1], nil
}

// Apply folds one event into the state. It checks that the event follows
// from the state (its sequence number, and that what it records is
// possible now) before changing anything, and returns an *EventError
// otherwise, leaving the state as it was.
func (s *State) Apply(e Event) error {
	if err := s.apply(e); err != nil {
		return &EventError{Rollout: s.ID, Seq: e.Seq, Type: e.Type, Err: err}
	}
	s.Seq = e.Seq
	s.UpdatedAt = e.At
	return nil
}

func (s *State) apply(e Event) error {
	if e.Seq != s.Seq+1 {
		return fmt.Errorf("sequence number %d does not follow %d", e.Seq, s.Seq)
	}
	if s.Seq == 0 && e.Type != EventCreated {
		return errors.New("the first event must be created")
	}
	cur := s.Current()
	switch e.Type {
	case EventCreated:
		if s.Seq != 0 {
			return errors.New("created after the first event")
		}
		if e.Spec == nil || e.Schedule == nil {
			return errors.New("created without spec or schedule")
		}
		s.Spec, s.Status, s.CreatedAt = e.Spec, StatusRunning, e.At
		s.Servers = map[string]*ServerState{}
		s.setSchedule(e)

	case EventReplanned:
		if cur != nil {
			return fmt.Errorf("re-plan while wave %d is %s", cur.Number, cur.Phase)
		}
		s.Replans++
		s.setSchedule(e)

	case EventWaveStarted:
		if cur != nil {
			return fmt.Errorf("wave %d started while wave %d is %s", e.Wave, cur.Number, cur.Phase)
		}
		if s.Status != StatusRunning {
			return fmt.Errorf("wave started while %s", s.Status)
		}
		if e.Wave != len(s.Waves)+1 {
			return fmt.Errorf("wave %d started after %d waves", e.Wave, len(s.Waves))
		}
		if len(s.Remaining) == 0 {
			return errors.New("wave started with no planned wave left")
		}
		if len(e.Servers) == 0 || e.Key == "" {
			return errors.New("wave started without servers or key")
		}
		for _, ws := range e.Servers {
			if ss := s.Servers[ws.ID]; ss != nil && (ss.Wave != 0 || ss.Skipped || ss.Pinned) {
				return fmt.Errorf("server %s is already in wave %d or left out", ws.ID, ss.Wave)
			}
		}
		w := &WaveState{
			Number: e.Wave, Key: e.Key, Attempt: e.Attempt, Stage: e.Stage, Bake: e.Bake,
			Phase: PhaseStarted, Servers: e.Servers, StartedAt: e.At,
		}
		s.Waves = append(s.Waves, w)
		for _, ws := range e.Servers {
			s.Servers[ws.ID] = &ServerState{Wave: e.Wave, Metro: ws.Metro, Cluster: ws.Cluster, Prev: ws.Prev, PreUnhealthy: ws.Unhealthy}
		}
		s.Remaining = s.Remaining[1:]

	case EventDeployError:
		if e.Batch > 0 {
			rb := s.Rollback
			if rb == nil || e.Batch != len(rb.Done)+1 || e.Batch > len(rb.Batches) {
				return fmt.Errorf("deploy error of rollback batch %d that is not in flight", e.Batch)
			}
			rb.DeployErrors++
			rb.RetryAt = e.RetryAt
			return nil
		}
		w, err := s.wave(e.Wave)
		if err != nil {
			return err
		}
		if w.Phase != PhaseStarted {
			return fmt.Errorf("deploy error of wave %d that is %s", e.Wave, w.Phase)
		}
		w.DeployErrors++
		w.RetryAt = e.RetryAt

	case EventWaveDeployed:
		w, err := s.wave(e.Wave)
		if err != nil {
			return err
		}
		if w.Phase != PhaseStarted || e.Key != w.Key {
			return fmt.Errorf("results for wave %d (key %q) that is %s (key %q)", e.Wave, e.Key, w.Phase, w.Key)
		}
		w.Phase, w.DeployedAt, w.Results = PhaseDeployed, e.At, e.Results
		w.DeployErrors, w.RetryAt = 0, time.Time{}
		for _, r := range e.Results {
			if ss := s.Servers[r.Server]; ss != nil && ss.Wave == w.Number && !r.OK {
				ss.Failed, ss.Error = true, r.Error
			}
		}

	case EventWaveGated:
		w, err := s.wave(e.Wave)
		if err != nil {
			return err
		}
		if w.Phase != PhaseDeployed {
			return fmt.Errorf("gate of wave %d that is %s", e.Wave, w.Phase)
		}
		w.Phase, w.GatedAt, w.Unhealthy, w.BakeUntil = PhaseGated, e.At, e.Unhealthy, e.BakeUntil
		for _, id := range e.Unhealthy {
			if ss := s.Servers[id]; ss != nil && ss.Wave == w.Number {
				ss.Unhealthy = true
			}
		}

	case EventBudgetExceeded:
		w, err := s.wave(e.Wave)
		if err != nil {
			return err
		}
		if w.Breached {
			return fmt.Errorf("wave %d already exceeded a budget", e.Wave)
		}
		w.Breached = true
		s.Breaches = e.Breaches

	case EventWaveCompleted:
		w, err := s.wave(e.Wave)
		if err != nil {
			return err
		}
		if w.Phase != PhaseGated {
			return fmt.Errorf("wave %d completed while %s", e.Wave, w.Phase)
		}
		w.Phase, w.CompletedAt = PhaseCompleted, e.At

	case EventPaused:
		if s.Status != StatusRunning && s.Status != StatusRollingBack {
			return fmt.Errorf("pause while %s", s.Status)
		}
		s.PausedFrom, s.Status = s.Status, StatusPaused
		s.PauseReason, s.PauseCause = e.Reason, e.Cause

	case EventResumed:
		if s.Status != StatusPaused {
			return fmt.Errorf("resume while %s", s.Status)
		}
		switch s.PauseCause {
		case CauseBudget:
			for _, ss := range s.Servers {
				if ss.counts() {
					ss.Forgiven = true
				}
			}
			s.Breaches = nil
		case CauseDeploy:
			if cur != nil && cur.Phase == PhaseStarted {
				cur.Attempt++
				cur.Key = waveKey(s.ID, cur.Number, cur.Attempt)
				cur.DeployErrors, cur.RetryAt = 0, time.Time{}
			}
			if s.Rollback != nil {
				s.Rollback.DeployErrors, s.Rollback.RetryAt = 0, time.Time{}
			}
		}
		s.Status, s.PausedFrom, s.PauseReason, s.PauseCause = s.PausedFrom, "", "", ""

	case EventAborted:
		if s.Status.Terminal() {
			return fmt.Errorf("abort while %s", s.Status)
		}
		s.Status, s.Reason = StatusAborted, e.Reason
		s.PausedFrom, s.PauseReason, s.PauseCause = "", "", ""

	case EventPromoted:
		w, err := s.wave(e.Wave)
		if err != nil {
			return err
		}
		if w.Phase == PhaseCompleted {
			return fmt.Errorf("promote of wave %d that completed", e.Wave)
		}
		w.Promoted = true

	case EventServerSkipped, EventServerPinned:
		if e.Server == "" {
			return errors.New("no server")
		}
		ss := s.Servers[e.Server]
		if ss == nil {
			ss = &ServerState{}
			s.Servers[e.Server] = ss
		}
		ss.Skipped = true
		if e.Type == EventServerPinned {
			ss.Pinned = true
			if rb := s.Rollback; rb != nil {
				rb.Batches = slices.Clone(rb.Batches)
				for i := len(rb.Done); i < len(rb.Batches); i++ {
					rb.Batches[i].Servers = slices.DeleteFunc(slices.Clone(rb.Batches[i].Servers), func(id string) bool { return id == e.Server })
				}
			}
		}
		s.dropPlanned(e.Server)

	case EventRollbackStarted:
		if s.Rollback != nil {
			return errors.New("rollback started twice")
		}
		switch s.Status {
		case StatusRunning, StatusPaused, StatusAborted, StatusCompleted:
		default:
			return fmt.Errorf("rollback while %s", s.Status)
		}
		s.Rollback = &RollbackState{Reason: e.Reason, StartedAt: e.At, Batches: e.Batches}
		s.Status, s.Reason, s.Remaining = StatusRollingBack, e.Reason, nil
		s.PausedFrom, s.PauseReason, s.PauseCause = "", "", ""

	case EventRollbackDeployed:
		rb := s.Rollback
		if rb == nil || e.Batch != len(rb.Done)+1 || e.Batch > len(rb.Batches) || e.Key != rb.Batches[e.Batch-1].Key {
			return fmt.Errorf("results of rollback batch %d (key %q) that is not in flight", e.Batch, e.Key)
		}
		rb.Done = append(rb.Done, e.Results)
		rb.DeployErrors, rb.RetryAt = 0, time.Time{}
		for _, r := range e.Results {
			if ss := s.Servers[r.Server]; ss != nil && r.OK {
				ss.RolledBack = true
			}
		}

	case EventRolledBack:
		if s.Status != StatusRollingBack || len(s.Rollback.Done) != len(s.Rollback.Batches) {
			return fmt.Errorf("rolled back while %s", s.Status)
		}
		s.Status = StatusRolledBack

	case EventCompleted:
		if s.Status != StatusRunning || cur != nil || len(s.Remaining) > 0 {
			return fmt.Errorf("completed while %s with %d waves left", s.Status, len(s.Remaining))
		}
		s.Status = StatusCompleted

	default:
		return fmt.Errorf("unknown event type %q", e.Type)
	}
	return nil
}

func (s *State) setSchedule(e Event) {
	s.IndexVersion, s.Blackouts = e.IndexVersion, e.Blackouts
	if sc := e.Schedule; sc != nil {
		s.Remaining = sc.Waves
		s.Totals = sc.Totals
		s.Skipped, s.Unschedulable = sc.Skipped, sc.Unschedulable
		// Servers skipped or pinned after the plan was made stay out.
		for id, ss := range s.Servers {
			if ss.Skipped && ss.Wave == 0 {
				s.dropPlanned(id)
			}
		}
	}
}

// dropPlanned removes a server from the planned waves, and waves left
// empty with it. The slices are copied, not changed in place: they may be
// shared with the event that set them.
func (s *State) dropPlanned(id string) {
	for i := 0; i < len(s.Remaining); i++ {
		w := s.Remaining[i]
		j := slices.Index(w.Servers, id)
		if j < 0 {
			continue
		}
		s.Remaining = slices.Clone(s.Remaining)
		w.Servers = slices.Delete(slices.Clone(w.Servers), j, j+1)
		if len(w.Servers) == 0 {
			s.Remaining = slices.Delete(s.Remaining, i, i+1)
		} else {
			s.Remaining[i] = w
		}
		return
	}
}

func waveKey(id string, wave, attempt int) string {
	return fmt.Sprintf("%s/wave/%d/%d", id, wave, attempt)
}

func rollbackKey(id string, batch int) string {
	return fmt.Sprintf("%s/rollback/%d", id, batch)
}

// Summary is a short account of a rollout's state.
type Summary struct {
	ID     string `json:"id"`
	Status Status `json:"status"`
	// Reason is why it is paused, aborted or rolled back.
	Reason string `json:"reason,omitempty"`
	// WavesDone counts completed waves; Waves those started plus those
	// planned.
	WavesDone int `json:"waves_done"`
	Waves     int `json:"waves"`
	// Deployed counts servers a wave deployed successfully, Failed
	// those whose failure counts against the budgets, Planned the
	// servers of waves not yet started.
	Deployed   int       `json:"deployed"`
	Failed     int       `json:"failed"`
	Planned    int       `json:"planned"`
	RolledBack int       `json:"rolled_back"`
	UpdatedAt  time.Time `json:"updated_at"`
	Seq        uint64    `json:"seq"`
}

// Summary returns the state in short.
func (s *State) Summary() Summary {
	sum := Summary{ID: s.ID, Status: s.Status, Waves: len(s.Waves) + len(s.Remaining), UpdatedAt: s.UpdatedAt, Seq: s.Seq}
	switch s.Status {
	case StatusPaused:
		sum.Reason = s.PauseReason
	case StatusAborted, StatusRollingBack, StatusRolledBack:
		sum.Reason = s.Reason
	}
	for _, w := range s.Waves {
		if w.Phase == PhaseCompleted {
			sum.WavesDone++
		}
	}
	for _, w := range s.Remaining {
		sum.Planned += len(w.Servers)
	}
	for _, ss := range s.Servers {
		if ss.Wave > 0 && ss.RolledBack {
			sum.RolledBack++
		}
		if ss.counts() {
			sum.Failed++
		}
	}
	for _, w := range s.Waves {
		for _, r := range w.Results {
			if r.OK {
				sum.Deployed++
			}
		}
	}
	return sum
}

// breaches returns the failure budgets exceeded after wave w, in a fixed
// order: the wave, clusters, metros (each sorted by name), global.
func (s *State) breaches(w *WaveState) []Breach {
	f := s.Spec.Failure
	var out []Breach
	if f.Wave != nil {
		n := 0
		for _, ws := range w.Servers {
			if s.Servers[ws.ID].counts() {
				n++
			}
		}
		if a := f.Wave.allowed(len(w.Servers)); n > a {
			out = append(out, Breach{Scope: "wave", Name: fmt.Sprint(w.Number), Failures: n, Allowed: a})
		}
	}
	if f.Cluster == nil && f.Metro == nil && f.Global == nil {
		return out
	}
	clusters, metros, global := map[string]int{}, map[string]int{}, 0
	for _, ss := range s.Servers {
		if ss.Wave > 0 && ss.counts() {
			clusters[ss.Cluster]++
			metros[ss.Metro]++
			global++
		}
	}
	scope := func(name string, a *Amount, fails map[string]int, totals map[string]int) {
		if a == nil {
			return
		}
		for _, k := range sortedKeys(fails) {
			if al := a.allowed(totals[k]); fails[k] > al {
				out = append(out, Breach{Scope: name, Name: k, Failures: fails[k], Allowed: al})
			}
		}
	}
	scope("cluster", f.Cluster, clusters, s.Totals.Cluster)
	scope("metro", f.Metro, metros, s.Totals.Metro)
	if f.Global != nil {
		if a := f.Global.allowed(s.Totals.Servers); global > a {
			out = append(out, Breach{Scope: "global", Failures: global, Allowed: a})
		}
	}
	return out
}

func sortedKeys(m map[string]int) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
