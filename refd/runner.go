package refd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/fleetkit/fleetkit/rollout"
)

// RolloutRunnerConfig configures NewRolloutRunner. Store, Fleet and
// Deployer are required; the other fields have rollout.RunnerConfig's
// zero values.
type RolloutRunnerConfig struct {
	// Store keeps every rollout's event log: a boltstore.Store in refd's
	// data directory, for one.
	Store rollout.Store
	// Fleet is the live disposition, the server's Index.
	Fleet rollout.Fleet
	// Deployer deploys the waves (see DeployerFromConfig).
	Deployer rollout.Deployer
	// Clock is the runner's time; nil means the system clock.
	Clock rollout.Clock
	// Calendar supplies blackouts declared while rollouts run; nil means
	// only the specs' own.
	Calendar rollout.Calendar
	// DeployAttempts and DeployBackoff: see rollout.RunnerConfig.
	DeployAttempts int
	DeployBackoff  time.Duration
	// Logger receives a line per runner event; nil discards them.
	Logger *slog.Logger
}

// RolloutRunner is the Runner of package rollout: rollout.Runner over a
// rollout.Store, driving each rollout in a goroutine of its own while Run
// runs. It keeps the events of the runner's log that refd's views have
// not taken yet, so that View does not read the log back. Its methods are
// safe for concurrent use.
type RolloutRunner struct {
	r     *rollout.Runner
	store rollout.Store
	clock rollout.Clock
	log   *slog.Logger

	mu      sync.Mutex
	events  map[string][]RolloutEvent // per rollout, contiguous, not yet viewed
	changed func(string)
	ctx     context.Context // Run's, while it runs
	driving map[string]bool // a goroutine runs the rollout
	again   map[string]bool // run it again when its Run returns
	wg      sync.WaitGroup
}

var _ Runner = (*RolloutRunner)(nil)

// NewRolloutRunner validates cfg and returns a RolloutRunner. The error
// of a missing or invalid field names it.
func NewRolloutRunner(cfg RolloutRunnerConfig) (*RolloutRunner, error) {
	for _, f := range []struct {
		name string
		nil  bool
	}{{"Store", cfg.Store == nil}, {"Fleet", cfg.Fleet == nil}, {"Deployer", cfg.Deployer == nil}} {
		if f.nil {
			return nil, fmt.Errorf("refd: RolloutRunnerConfig.%s is required", f.name)
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = rollout.SystemClock{}
	}
	a := &RolloutRunner{
		store: cfg.Store, clock: cfg.Clock, log: cfg.Logger,
		events: map[string][]RolloutEvent{}, driving: map[string]bool{}, again: map[string]bool{},
	}
	r, err := rollout.NewRunner(rollout.RunnerConfig{
		Store: cfg.Store, Fleet: cfg.Fleet, Deployer: cfg.Deployer, Clock: cfg.Clock,
		Calendar: cfg.Calendar, DeployAttempts: cfg.DeployAttempts, DeployBackoff: cfg.DeployBackoff,
		Logger: cfg.Logger, OnEvent: a.onEvent,
	})
	if err != nil {
		return nil, fmt.Errorf("refd: RolloutRunnerConfig: %w", err)
	}
	a.r = r
	return a, nil
}

// Runner returns the rollout.Runner underneath, for what refd does not
// expose (its full State, say).
func (a *RolloutRunner) Runner() *rollout.Runner { return a.r }

// onEvent runs with the rollout locked by the runner: it only keeps the
// event and passes the news on, without blocking.
func (a *RolloutRunner) onEvent(id string, e rollout.Event) {
	ev := viewEvent(e)
	a.mu.Lock()
	a.events[id] = append(a.events[id], ev)
	changed := a.changed
	a.mu.Unlock()
	if changed != nil {
		changed(id)
	}
}

// viewEvent is the view's short account of a runner event.
func viewEvent(e rollout.Event) RolloutEvent {
	ev := RolloutEvent{
		At: e.At.UTC(), Who: RunnerPrincipal, Action: RolloutAction(e.Type), Seq: e.Seq,
		Wave: e.Wave, Batch: e.Batch, Server: e.Server, Reason: e.Reason, Cause: string(e.Cause), Error: e.Error,
	}
	switch e.Type {
	case rollout.EventWaveStarted:
		ev.Servers = len(e.Servers)
	case rollout.EventWaveDeployed, rollout.EventRollbackDeployed:
		ev.Servers = len(e.Results)
		for _, r := range e.Results {
			if !r.OK {
				ev.Failed++
			}
		}
	case rollout.EventWaveGated:
		ev.Failed = len(e.Unhealthy)
	case rollout.EventCreated, rollout.EventReplanned:
		if e.Schedule != nil {
			for _, w := range e.Schedule.Waves {
				ev.Servers += len(w.Servers)
			}
		}
	case rollout.EventRollbackStarted:
		for _, b := range e.Batches {
			ev.Servers += len(b.Servers)
		}
	}
	return ev
}

// runnerErr maps the rollout package's errors to refd's.
func runnerErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, rollout.ErrNotFound):
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	case errors.Is(err, rollout.ErrInvalidOperation), errors.Is(err, rollout.ErrExists), errors.Is(err, rollout.ErrRunning):
		return fmt.Errorf("%w: %w", ErrRefused, err)
	case errors.Is(err, rollout.ErrInvalidSpec), errors.Is(err, rollout.ErrInfeasible):
		return &specError{err}
	}
	return err
}

// Start implements Runner: it parses r.Spec, records the rollout with
// rollout.Runner.Create and drives it if Run runs. A start after the
// runner's clock becomes a blackout of the whole fleet until then, so
// that re-planning keeps it.
func (a *RolloutRunner) Start(ctx context.Context, r *Rollout, start time.Time) error {
	spec, err := rollout.ParseSpec("spec", []byte(r.Spec))
	if err != nil {
		return runnerErr(err)
	}
	if now := a.clock.Now(); start.After(now) {
		spec.Blackouts = append(spec.Blackouts, rollout.Blackout{
			From: now, To: start, Reason: "the rollout starts at " + start.UTC().Format(time.RFC3339),
		})
	}
	if _, err := a.r.Create(ctx, r.ID, spec); err != nil {
		return runnerErr(err)
	}
	a.drive(r.ID)
	return nil
}

// Control implements Runner.
func (a *RolloutRunner) Control(ctx context.Context, id string, c RolloutCommand) error {
	var err error
	switch c.Action {
	case ActionPause:
		err = a.r.Pause(ctx, id, c.Reason)
	case ActionResume:
		err = a.r.Resume(ctx, id, c.Reason)
	case ActionAbort:
		err = a.r.Abort(ctx, id, c.Reason)
	case ActionRollback:
		err = a.r.Rollback(ctx, id, c.Reason)
	case ActionPromote:
		err = a.r.Promote(ctx, id)
	case ActionSkip:
		err = a.r.SkipServer(ctx, id, c.Server, c.Reason)
	case ActionPin:
		err = a.r.PinServer(ctx, id, c.Server, c.Reason)
	default:
		return fmt.Errorf("%w: unknown action %q", ErrRefused, c.Action)
	}
	if err != nil {
		return runnerErr(err)
	}
	// A rollback of a finished rollout needs a Run again.
	a.drive(id)
	return nil
}

// View implements Runner. The events come from memory when it still
// holds them all, from the Store otherwise (the first view of a rollout,
// after a restart).
func (a *RolloutRunner) View(ctx context.Context, id string, after uint64) (*RunnerView, error) {
	sum, err := a.r.Summary(ctx, id)
	if err != nil {
		return nil, runnerErr(err)
	}
	v := &RunnerView{Status: runnerStatus(sum)}
	a.mu.Lock()
	kept := a.events[id]
	i := 0
	for i < len(kept) && kept[i].Seq <= after {
		i++
	}
	// The caller has stored what it asked past: forget it.
	kept = kept[i:]
	if len(kept) == 0 {
		delete(a.events, id)
	} else {
		a.events[id] = kept
	}
	fromMemory := after > 0 && (sum.Seq <= after ||
		len(kept) > 0 && kept[0].Seq == after+1 && kept[len(kept)-1].Seq >= sum.Seq)
	if fromMemory {
		for _, e := range kept {
			if e.Seq > sum.Seq {
				break
			}
			v.Events = append(v.Events, e)
		}
	}
	a.mu.Unlock()
	if fromMemory {
		return v, nil
	}
	events, err := a.store.Load(ctx, id)
	if err != nil {
		return nil, runnerErr(err)
	}
	for _, e := range events {
		if e.Seq > after && e.Seq <= sum.Seq {
			v.Events = append(v.Events, viewEvent(e))
		}
	}
	if after == 0 && len(events) > 0 && events[0].Spec != nil {
		v.CreatedAt = events[0].At
		if v.Spec, err = json.Marshal(events[0].Spec); err != nil {
			return nil, fmt.Errorf("refd: rollout %s: encode spec: %w", id, err)
		}
	}
	return v, nil
}

func runnerStatus(sum rollout.Summary) RunnerStatus {
	return RunnerStatus{
		Seq: sum.Seq, State: RolloutState(sum.Status), Reason: sum.Reason,
		Waves: sum.Waves, WavesDone: sum.WavesDone, Deployed: sum.Deployed, Failed: sum.Failed,
		Planned: sum.Planned, RolledBack: sum.RolledBack, UpdatedAt: sum.UpdatedAt,
	}
}

// Run implements Runner. A rollout whose Run fails (its log is damaged,
// the Store fails) is logged and left until the next Run.
func (a *RolloutRunner) Run(ctx context.Context, changed func(id string)) error {
	ids, err := a.store.List(ctx)
	if err != nil {
		return fmt.Errorf("refd: rollout store: %w", err)
	}
	a.mu.Lock()
	if a.ctx != nil {
		a.mu.Unlock()
		return errors.New("refd: RolloutRunner.Run is already running")
	}
	a.ctx, a.changed = ctx, changed
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		a.ctx, a.changed = nil, nil
		a.mu.Unlock()
	}()

	for _, id := range ids {
		if changed != nil {
			changed(id)
		}
		sum, err := a.r.Summary(ctx, id)
		if err != nil {
			a.log.Error("rollout not resumed: its log cannot be read", "rollout", id, "err", err)
			continue
		}
		if !sum.Status.Terminal() {
			a.drive(id)
		}
	}
	<-ctx.Done()
	a.wg.Wait()
	return nil
}

// drive runs rollout id in a goroutine of its own while Run runs, unless
// one already does; then that one runs it again once its Run returns, so
// that a rollout rolled back just as its Run finished is driven.
func (a *RolloutRunner) drive(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ctx := a.ctx
	if ctx == nil || ctx.Err() != nil {
		return
	}
	if a.driving[id] {
		a.again[id] = true
		return
	}
	a.driving[id] = true
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		for {
			err := a.r.Run(ctx, id)
			switch {
			case ctx.Err() != nil:
			case errors.Is(err, rollout.ErrRunning):
			case err != nil:
				a.log.Error("rollout stopped: its runner failed", "rollout", id, "err", err)
			}
			a.mu.Lock()
			if a.again[id] && err == nil && ctx.Err() == nil {
				delete(a.again, id)
				a.mu.Unlock()
				continue
			}
			delete(a.again, id)
			delete(a.driving, id)
			a.mu.Unlock()
			return
		}
	}()
}
