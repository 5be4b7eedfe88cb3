package rollout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fleetkit/fleetkit/disposition"
)

// Fleet is the live disposition a Runner reads: before every wave (to
// re-plan when the fleet changed) and during health gates.
// *disposition.Index satisfies it.
type Fleet interface {
	Snapshot() *disposition.Snapshot
}

// Calendar supplies blackouts declared while rollouts run, on top of
// their specs' own. The Runner asks before every wave and re-plans the
// remaining waves when the answer changes.
type Calendar interface {
	Blackouts(ctx context.Context) ([]Blackout, error)
}

// Runner defaults.
const (
	DefaultDeployAttempts = 3
	DefaultDeployBackoff  = 10 * time.Second
	maxDeployBackoff      = 10 * time.Minute
	// startSlack is how long after its planned start a wave may begin
	// without being re-planned as late: the planner's resolution.
	startSlack = time.Second
)

// Runner errors.
var (
	// ErrRunning is returned by Run for a rollout this Runner already
	// drives.
	ErrRunning = errors.New("rollout is already running")
	// ErrExists is wrapped by Create's error for an ID in use.
	ErrExists = errors.New("rollout already exists")
	// ErrInvalidOperation is wrapped by the error of an operation that
	// does not apply in the rollout's status.
	ErrInvalidOperation = errors.New("invalid rollout operation")
)

// RunnerConfig configures a Runner. Store, Fleet and Deployer are
// required.
type RunnerConfig struct {
	Store    Store
	Fleet    Fleet
	Deployer Deployer
	// Clock is the source of time; nil means SystemClock.
	Clock Clock
	// Calendar supplies live blackouts; nil means only the specs'.
	Calendar Calendar
	// DeployAttempts is how many failed Deployer calls in a row pause a
	// rollout; 0 means DefaultDeployAttempts.
	DeployAttempts int
	// DeployBackoff is the wait after a failed Deployer call, doubling
	// with each failure up to 10 minutes; 0 means DefaultDeployBackoff.
	// It is also the wait before asking a failing Calendar again.
	DeployBackoff time.Duration
	// Logger receives a line per event; nil discards them.
	Logger *slog.Logger
	// OnEvent, if set, is called with every event once it is stored. It
	// runs with the rollout locked: it must return quickly and must not
	// call the Runner.
	OnEvent func(id string, e Event)
}

// Runner drives rollouts: it deploys each planned wave through the
// Deployer, holds it to its health gate and bake time, counts failures
// against the spec's budgets, re-plans the waves not yet started when the
// fleet changes, and carries out operators' pause, resume, abort,
// rollback, promote, skip and pin.
//
// Every decision is an Event appended to the Store before it is acted on,
// and every outcome one appended after, so that a Runner killed at any
// point and started again on the same Store (Run) continues where it
// stopped: no wave repeated, none skipped, and a deploy that was in
// flight asked again with the same idempotency key.
//
// A Runner may drive many rollouts, each in its own Run call; its methods
// are safe for concurrent use.
type Runner struct {
	cfg   RunnerConfig
	clock Clock
	log   *slog.Logger

	mu     sync.Mutex
	active map[string]*driver
}

// driver is the in-memory state of a rollout a Run drives.
type driver struct {
	mu   sync.Mutex
	st   *State
	wake chan struct{}
	// valid says the remaining waves are known to be current for the
	// snapshot version and live blackouts below; it is memory only, so a
	// restarted Runner re-plans (and records it only if the waves change).
	valid          bool
	validVersion   uint64
	validBlackouts []Blackout
}

func (d *driver) signal() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// NewRunner validates cfg and returns a Runner.
func NewRunner(cfg RunnerConfig) (*Runner, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("rollout: RunnerConfig.Store is required")
	case cfg.Fleet == nil:
		return nil, errors.New("rollout: RunnerConfig.Fleet is required")
	case cfg.Deployer == nil:
		return nil, errors.New("rollout: RunnerConfig.Deployer is required")
	case cfg.DeployAttempts < 0:
		return nil, fmt.Errorf("rollout: RunnerConfig.DeployAttempts must not be negative, got %d", cfg.DeployAttempts)
	case cfg.DeployBackoff < 0:
		return nil, fmt.Errorf("rollout: RunnerConfig.DeployBackoff must not be negative, got %v", cfg.DeployBackoff)
	}
	if cfg.DeployAttempts == 0 {
		cfg.DeployAttempts = DefaultDeployAttempts
	}
	if cfg.DeployBackoff == 0 {
		cfg.DeployBackoff = DefaultDeployBackoff
	}
	r := &Runner{cfg: cfg, clock: cfg.Clock, log: cfg.Logger, active: map[string]*driver{}}
	if r.clock == nil {
		r.clock = SystemClock{}
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	return r, nil
}

// Create plans spec over the fleet as it is now and records the rollout
// under id, without running it (Run does). The error wraps ErrExists when
// id is taken, is a *SpecError for a bad spec, and wraps ErrInfeasible
// when the spec cannot be planned.
func (r *Runner) Create(ctx context.Context, id string, spec *Spec) (*State, error) {
	if id == "" || strings.ContainsAny(id, "/\x00") {
		return nil, fmt.Errorf("rollout: invalid rollout ID %q", id)
	}
	if spec == nil {
		return nil, errors.New("rollout: nil spec")
	}
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	live, err := r.blackouts(ctx)
	if err != nil {
		return nil, err
	}
	snap := r.cfg.Fleet.Snapshot()
	now := r.clock.Now()
	st := &State{ID: id, Spec: spec, Servers: map[string]*ServerState{}}
	sc, err := r.plan(ctx, st, snap, live, now)
	if err != nil {
		return nil, err
	}
	e := Event{Seq: 1, At: now, Type: EventCreated, Spec: spec, Schedule: sc, IndexVersion: snap.Version(), Blackouts: live}
	if err := r.cfg.Store.Append(ctx, id, 0, e); err != nil {
		if errors.Is(err, ErrConflict) {
			return nil, fmt.Errorf("rollout %s: %w", id, ErrExists)
		}
		return nil, err
	}
	st = &State{ID: id}
	if err := st.Apply(e); err != nil {
		return nil, err
	}
	r.logEvent(id, e)
	if r.cfg.OnEvent != nil {
		r.cfg.OnEvent(id, e)
	}
	return st, nil
}

// State returns the current state of rollout id.
func (r *Runner) State(ctx context.Context, id string) (*State, error) {
	r.mu.Lock()
	d := r.active[id]
	r.mu.Unlock()
	if d == nil {
		return r.load(ctx, id)
	}
	// The driver's state is changed in place: give the caller its own.
	d.mu.Lock()
	defer d.mu.Unlock()
	events, err := r.cfg.Store.Load(ctx, id)
	if err != nil {
		return nil, err
	}
	return Fold(id, events[:min(len(events), int(d.st.Seq))])
}

// Summary returns the state of rollout id in short.
func (r *Runner) Summary(ctx context.Context, id string) (Summary, error) {
	r.mu.Lock()
	d := r.active[id]
	r.mu.Unlock()
	if d == nil {
		st, err := r.load(ctx, id)
		if err != nil {
			return Summary{}, err
		}
		return st.Summary(), nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.st.Summary(), nil
}

func (r *Runner) load(ctx context.Context, id string) (*State, error) {
	events, err := r.cfg.Store.Load(ctx, id)
	if err != nil {
		return nil, err
	}
	if len(events) == 0 {
		return nil, fmt.Errorf("rollout %s: %w", id, ErrNotFound)
	}
	return Fold(id, events)
}

// Run drives rollout id until it completes, aborts or finishes rolling
// back (then it returns nil), ctx ends (ctx's error), or the Store or the
// log fails. While the rollout is paused Run waits for Resume. Call Run
// again, on this or another Runner over the same Store, to continue a
// rollout whose Run ended early, or one rolled back after it completed.
func (r *Runner) Run(ctx context.Context, id string) error {
	d, err := r.attach(ctx, id)
	if err != nil {
		return err
	}
	defer r.detach(id)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		done, err := r.step(ctx, id, d)
		if err != nil || done {
			return err
		}
	}
}

func (r *Runner) attach(ctx context.Context, id string) (*driver, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.active[id] != nil {
		return nil, fmt.Errorf("rollout %s: %w", id, ErrRunning)
	}
	st, err := r.load(ctx, id)
	if err != nil {
		return nil, err
	}
	d := &driver{st: st, wake: make(chan struct{}, 1)}
	r.active[id] = d
	return d, nil
}

func (r *Runner) detach(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.active, id)
}

// appendLocked stamps events with their sequence numbers and the time,
// appends them and folds them into d's state. The caller holds d.mu.
func (r *Runner) appendLocked(ctx context.Context, id string, d *driver, events ...Event) error {
	return r.appendTo(ctx, id, d.st, events...)
}

func (r *Runner) appendTo(ctx context.Context, id string, st *State, events ...Event) error {
	now := r.clock.Now()
	for i := range events {
		events[i].Seq = st.Seq + uint64(i) + 1
		events[i].At = now
	}
	if err := r.cfg.Store.Append(ctx, id, st.Seq, events...); err != nil {
		return fmt.Errorf("rollout %s: append: %w", id, err)
	}
	for _, e := range events {
		if err := st.Apply(e); err != nil {
			return err
		}
		r.logEvent(id, e)
		if r.cfg.OnEvent != nil {
			r.cfg.OnEvent(id, e)
		}
	}
	return nil
}

func (r *Runner) logEvent(id string, e Event) {
	attrs := []slog.Attr{slog.String("rollout", id), slog.Uint64("seq", e.Seq), slog.String("type", string(e.Type))}
	if e.Wave > 0 {
		attrs = append(attrs, slog.Int("wave", e.Wave))
	}
	if e.Batch > 0 {
		attrs = append(attrs, slog.Int("batch", e.Batch))
	}
	if e.Reason != "" {
		attrs = append(attrs, slog.String("reason", e.Reason))
	}
	if e.Error != "" {
		attrs = append(attrs, slog.String("error", e.Error))
	}
	r.log.LogAttrs(context.Background(), slog.LevelInfo, "rollout event", attrs...)
}

// sleepUntil waits until the clock reaches t, an operation wakes the
// rollout, or ctx ends.
func (r *Runner) sleepUntil(ctx context.Context, d *driver, t time.Time) error {
	delay := t.Sub(r.clock.Now())
	if delay <= 0 {
		return nil
	}
	// A Run that was told to stop must not move a fake clock on.
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case <-r.clock.After(delay):
		return nil
	case <-d.wake:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// waitWake waits for an operation on the rollout or for ctx to end.
func (r *Runner) waitWake(ctx context.Context, d *driver) error {
	select {
	case <-d.wake:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *Runner) backoff(tries int) time.Duration {
	b := r.cfg.DeployBackoff
	for i := 1; i < tries && b < maxDeployBackoff; i++ {
		b *= 2
	}
	return min(b, maxDeployBackoff)
}

// step does one thing for the rollout: appends the next decision, calls
// the Deployer, runs a health gate or waits. It reports true when the
// rollout has nothing more to do.
func (r *Runner) step(ctx context.Context, id string, d *driver) (bool, error) {
	d.mu.Lock()
	st := d.st
	if st.Status.Terminal() {
		d.mu.Unlock()
		return true, nil
	}
	now := r.clock.Now()
	cur := st.Current()
	rollingBack := st.Status == StatusRollingBack || st.Status == StatusPaused && st.PausedFrom == StatusRollingBack

	// A deploy in flight is finished first: it was decided before
	// anything that came after it.
	if cur != nil && cur.Phase == PhaseStarted {
		if st.Status == StatusPaused && (st.PauseCause == CauseDeploy || cur.DeployErrors >= r.cfg.DeployAttempts) {
			d.mu.Unlock()
			return false, r.waitWake(ctx, d)
		}
		if cur.RetryAt.After(now) {
			at := cur.RetryAt
			d.mu.Unlock()
			return false, r.sleepUntil(ctx, d, at)
		}
		req := DeployRequest{
			Rollout: id, Wave: cur.Number, Attempt: cur.Attempt, IdempotencyKey: cur.Key,
			Component: st.Spec.Component, Version: st.Spec.Version, Servers: serverIDs(cur.Servers),
		}
		d.mu.Unlock()
		return false, r.deploy(ctx, id, d, req)
	}

	if rollingBack {
		return r.stepRollback(ctx, id, d, now)
	}

	if cur != nil {
		switch cur.Phase {
		case PhaseDeployed:
			n := cur.Number
			d.mu.Unlock()
			return false, r.gate(ctx, id, d, n)
		case PhaseGated:
			if !cur.Breached {
				if b := st.breaches(cur); len(b) > 0 {
					err := r.breach(ctx, id, d, cur, b)
					d.mu.Unlock()
					return false, err
				}
			}
			if cur.Promoted || !now.Before(cur.BakeUntil) {
				err := r.appendLocked(ctx, id, d, Event{Type: EventWaveCompleted, Wave: cur.Number})
				d.mu.Unlock()
				return false, err
			}
			until := cur.BakeUntil
			d.mu.Unlock()
			return false, r.sleepUntil(ctx, d, until)
		}
	}

	// Between waves.
	if st.Status == StatusPaused {
		d.mu.Unlock()
		return false, r.waitWake(ctx, d)
	}
	if len(st.Remaining) == 0 {
		err := r.appendLocked(ctx, id, d, Event{Type: EventCompleted})
		d.mu.Unlock()
		return false, err
	}
	seq := st.Seq
	d.mu.Unlock()

	// Ask the calendar without holding the rollout, then check nothing
	// happened meanwhile.
	live, err := r.blackouts(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		r.log.Warn("calendar failed; asking again", "rollout", id, "err", err)
		return false, r.sleepUntil(ctx, d, r.clock.Now().Add(r.cfg.DeployBackoff))
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if st.Seq != seq {
		return false, nil
	}
	snap := r.cfg.Fleet.Snapshot()
	now = r.clock.Now()
	next := st.Remaining[0]
	// Plans are in whole seconds, and a real clock wakes a sleeper a
	// little after the time it asked for: a wave begun within a second of
	// its start is on time, or every wake-up would re-plan it a second
	// later, for ever.
	late := now.After(next.Start.Add(startSlack))
	if !d.valid || d.validVersion != snap.Version() || !slices.EqualFunc(d.validBlackouts, live, equalBlackout) || late {
		// The reason is worded from the log, not from this runner's
		// memory, so that a restarted runner records the same.
		var why []string
		if v := snap.Version(); v != st.IndexVersion {
			why = append(why, fmt.Sprintf("fleet changed (index version %d to %d)", st.IndexVersion, v))
		}
		if !slices.EqualFunc(st.Blackouts, live, equalBlackout) {
			why = append(why, "blackouts changed")
		}
		if late {
			why = append(why, fmt.Sprintf("late: wave planned for %s", next.Start.UTC().Format(time.RFC3339)))
		}
		if len(why) == 0 {
			why = append(why, "checked again after a restart")
		}
		return false, r.replan(ctx, id, d, snap, live, now, strings.Join(why, "; "))
	}
	if now.Before(next.Start) {
		d.mu.Unlock()
		err := r.sleepUntil(ctx, d, next.Start)
		d.mu.Lock()
		return false, err
	}
	return false, r.startWave(ctx, id, d, snap, next)
}

func serverIDs(ws []WaveServer) []string {
	ids := make([]string, len(ws))
	for i, s := range ws {
		ids[i] = s.ID
	}
	return ids
}

func equalBlackout(a, b Blackout) bool {
	return a.Scope == b.Scope && a.From.Equal(b.From) && a.To.Equal(b.To) && a.Reason == b.Reason
}

func (r *Runner) blackouts(ctx context.Context) ([]Blackout, error) {
	if r.cfg.Calendar == nil {
		return nil, nil
	}
	bs, err := r.cfg.Calendar.Blackouts(ctx)
	if err != nil {
		return nil, fmt.Errorf("rollout: calendar: %w", err)
	}
	return bs, nil
}

// replanSpec returns the spec that plans what is left of the rollout:
// the servers already in a wave, skipped or pinned are omitted, the live
// blackouts added, the canary dropped once it has run, and the growth
// continued from where the remaining waves were (as counts, so that
// percentages stay those of the whole rollout).
func replanSpec(st *State, live []Blackout) *Spec {
	sp := *st.Spec
	sp.Omit = slices.Clone(st.Spec.Omit)
	for id, ss := range st.Servers {
		if ss.Wave > 0 || ss.Skipped {
			sp.Omit = append(sp.Omit, id)
		}
	}
	slices.Sort(sp.Omit)
	if len(live) > 0 {
		sp.Blackouts = append(slices.Clone(st.Spec.Blackouts), live...)
	}
	if len(st.Waves) > 0 && (len(st.Remaining) == 0 || st.Remaining[0].Stage != StageCanary) {
		sp.Canary = Canary{}
	}
	var steps []Amount
	for _, w := range st.Remaining {
		if w.Stage == StageGrowth {
			steps = append(steps, Amount{Count: w.Step})
		}
	}
	if len(steps) > 0 {
		sp.Growth = Growth{Steps: steps, Bake: st.Spec.Growth.Bake}
	}
	return &sp
}

// plan plans what is left of st over snap and returns it as a Schedule.
func (r *Runner) plan(ctx context.Context, st *State, snap *disposition.Snapshot, live []Blackout, now time.Time) (*Schedule, error) {
	sp := st.Spec
	if st.Seq > 0 {
		sp = replanSpec(st, live)
	} else if len(live) > 0 {
		c := *sp
		c.Blackouts = append(slices.Clone(sp.Blackouts), live...)
		sp = &c
	}
	p, err := NewPlan(ctx, sp, snap, now)
	if err != nil {
		return nil, err
	}
	sc := &Schedule{
		Start: p.Start, Waves: make([]PlannedWave, len(p.Waves)),
		Totals:  Totals{Metro: map[string]int{}, Cluster: map[string]int{}},
		Skipped: len(p.Skipped), Unschedulable: len(p.Unschedulable),
	}
	for _, ss := range st.Servers {
		if ss.Wave > 0 {
			sc.Totals.Servers++
			sc.Totals.Metro[ss.Metro]++
			sc.Totals.Cluster[ss.Cluster]++
		}
	}
	for i, w := range p.Waves {
		sc.Waves[i] = PlannedWave{Stage: w.Stage, Step: w.Step, Start: w.Start, End: w.End, Bake: w.Bake, Servers: w.Servers}
		sc.Totals.Servers += len(w.Servers)
		for m, n := range w.Domains.Metro {
			sc.Totals.Metro[m] += n
		}
		for c, n := range w.Domains.Cluster {
			sc.Totals.Cluster[c] += n
		}
	}
	return sc, nil
}

func equalWaves(a, b []PlannedWave) bool {
	return slices.EqualFunc(a, b, func(x, y PlannedWave) bool {
		return x.Stage == y.Stage && x.Step == y.Step && x.Start.Equal(y.Start) && x.End.Equal(y.End) &&
			x.Bake == y.Bake && slices.Equal(x.Servers, y.Servers)
	})
}

// replan re-plans the waves not yet started and records the new plan if
// it differs. A plan that fails pauses the rollout. The caller holds d.mu.
func (r *Runner) replan(ctx context.Context, id string, d *driver, snap *disposition.Snapshot, live []Blackout, now time.Time, why string) error {
	st := d.st
	sc, err := r.plan(ctx, st, snap, live, now)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return r.appendLocked(ctx, id, d, Event{Type: EventPaused, Cause: CausePlan, Reason: fmt.Sprintf("re-plan failed (%s): %v", why, err)})
	}
	if !equalWaves(sc.Waves, st.Remaining) || !slices.EqualFunc(st.Blackouts, live, equalBlackout) {
		err := r.appendLocked(ctx, id, d, Event{Type: EventReplanned, Reason: why, Schedule: sc, IndexVersion: snap.Version(), Blackouts: live})
		if err != nil {
			return err
		}
	}
	d.valid, d.validVersion, d.validBlackouts = true, snap.Version(), live
	return nil
}

// startWave records the decision to deploy the next planned wave, with
// each server's place and version as snap shows them. The caller holds
// d.mu.
func (r *Runner) startWave(ctx context.Context, id string, d *driver, snap *disposition.Snapshot, next PlannedWave) error {
	st := d.st
	n := len(st.Waves) + 1
	servers := make([]WaveServer, len(next.Servers))
	for i, sid := range next.Servers {
		ws := WaveServer{ID: sid, Unhealthy: true}
		if node, ok := snap.Get(sid); ok {
			ws.Metro, ws.Cluster = node.Metro, node.Cluster
			ws.Prev = node.Versions[st.Spec.Component]
			ws.Unhealthy = node.Health != disposition.HealthHealthy || node.State != disposition.StateInService
		}
		servers[i] = ws
	}
	return r.appendLocked(ctx, id, d, Event{
		Type: EventWaveStarted, Wave: n, Attempt: 1, Key: waveKey(id, n, 1),
		Stage: next.Stage, Bake: next.Bake, Servers: servers,
	})
}

// deploy calls the Deployer for a started wave and records the outcome.
func (r *Runner) deploy(ctx context.Context, id string, d *driver, req DeployRequest) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	res, derr := r.cfg.Deployer.Deploy(ctx, req)
	if err := ctx.Err(); err != nil {
		// Stopped mid-call: the outcome is not recorded, and a restarted
		// Runner asks again with the same key.
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.st
	if req.Batch > 0 {
		rb := st.Rollback
		if rb == nil || len(rb.Done)+1 != req.Batch {
			return nil
		}
		if derr != nil {
			return r.deployFailed(ctx, id, d, Event{Type: EventDeployError, Batch: req.Batch, Key: req.IdempotencyKey}, rb.DeployErrors+1, derr)
		}
		return r.appendLocked(ctx, id, d, Event{Type: EventRollbackDeployed, Batch: req.Batch, Key: req.IdempotencyKey, Results: resultsFor(req.Servers, res)})
	}
	w := st.Current()
	if w == nil || w.Number != req.Wave || w.Phase != PhaseStarted || w.Key != req.IdempotencyKey {
		return nil
	}
	if derr != nil {
		return r.deployFailed(ctx, id, d, Event{Type: EventDeployError, Wave: req.Wave, Key: req.IdempotencyKey}, w.DeployErrors+1, derr)
	}
	return r.appendLocked(ctx, id, d, Event{Type: EventWaveDeployed, Wave: req.Wave, Key: req.IdempotencyKey, Results: resultsFor(req.Servers, res)})
}

// deployFailed records a failed Deployer call, and pauses the rollout
// once too many failed in a row. The caller holds d.mu.
func (r *Runner) deployFailed(ctx context.Context, id string, d *driver, e Event, tries int, derr error) error {
	e.Error = derr.Error()
	e.RetryAt = r.clock.Now().Add(r.backoff(tries))
	events := []Event{e}
	if tries >= r.cfg.DeployAttempts && d.st.Status != StatusPaused {
		events = append(events, Event{Type: EventPaused, Cause: CauseDeploy,
			Reason: fmt.Sprintf("deployer failed %d times in a row: %v", tries, derr)})
	}
	return r.appendLocked(ctx, id, d, events...)
}

// resultsFor returns one result per requested server, in request order;
// a server the Deployer did not report on failed.
func resultsFor(servers []string, res []ServerResult) []ServerResult {
	got := make(map[string]ServerResult, len(res))
	for _, r := range res {
		got[r.Server] = r
	}
	out := make([]ServerResult, len(servers))
	for i, s := range servers {
		r, ok := got[s]
		if !ok {
			r = ServerResult{Server: s, Error: "no result from the deployer"}
		}
		if !r.OK && r.Error == "" {
			r.Error = "failed"
		}
		if r.OK {
			r.Error = ""
		}
		out[i] = r
	}
	return out
}

// breach records the budgets wave cur exceeded and what follows. The
// caller holds d.mu.
func (r *Runner) breach(ctx context.Context, id string, d *driver, cur *WaveState, bs []Breach) error {
	st := d.st
	parts := make([]string, len(bs))
	for i, b := range bs {
		parts[i] = b.String()
	}
	reason := fmt.Sprintf("wave %d exceeded the failure budget: %s", cur.Number, strings.Join(parts, "; "))
	events := []Event{{Type: EventBudgetExceeded, Wave: cur.Number, Breaches: bs, Reason: reason}}
	switch {
	case st.Spec.failureAction() == ActionRollback:
		events = append(events, Event{Type: EventRollbackStarted, Reason: reason, Batches: rollbackBatches(st)})
	case st.Status == StatusRunning:
		events = append(events, Event{Type: EventPaused, Cause: CauseBudget, Reason: reason})
	}
	return r.appendLocked(ctx, id, d, events...)
}

// rollbackBatches plans a rollback of every server a wave was sent to,
// except pinned ones: latest waves first, each batch holding servers that
// go back to one version, at most Failure.RollbackBatch (default four
// times the largest wave) per batch.
func rollbackBatches(st *State) []RollbackBatch {
	size := st.Spec.Failure.RollbackBatch
	if size == 0 {
		for _, w := range st.Waves {
			size = max(size, 4*len(w.Servers))
		}
	}
	var out []RollbackBatch
	open := map[string]int{} // version -> index of its batch being filled
	for i := len(st.Waves) - 1; i >= 0; i-- {
		for _, ws := range st.Waves[i].Servers {
			if ss := st.Servers[ws.ID]; ss == nil || ss.Pinned {
				continue
			}
			b, ok := open[ws.Prev]
			if !ok || len(out[b].Servers) >= size {
				out = append(out, RollbackBatch{Key: rollbackKey(st.ID, len(out)+1), Version: ws.Prev})
				b = len(out) - 1
				open[ws.Prev] = b
			}
			out[b].Servers = append(out[b].Servers, ws.ID)
		}
	}
	return out
}

// stepRollback deploys the next rollback batch, or ends the rollback.
// The caller holds d.mu; stepRollback releases it.
func (r *Runner) stepRollback(ctx context.Context, id string, d *driver, now time.Time) (bool, error) {
	st := d.st
	rb := st.Rollback
	if len(rb.Done) == len(rb.Batches) {
		err := r.appendLocked(ctx, id, d, Event{Type: EventRolledBack})
		d.mu.Unlock()
		return false, err
	}
	if st.Status == StatusPaused {
		d.mu.Unlock()
		return false, r.waitWake(ctx, d)
	}
	if rb.RetryAt.After(now) {
		at := rb.RetryAt
		d.mu.Unlock()
		return false, r.sleepUntil(ctx, d, at)
	}
	n := len(rb.Done) + 1
	b := rb.Batches[n-1]
	if len(b.Servers) == 0 {
		err := r.appendLocked(ctx, id, d, Event{Type: EventRollbackDeployed, Batch: n, Key: b.Key})
		d.mu.Unlock()
		return false, err
	}
	req := DeployRequest{
		Rollout: id, Batch: n, Attempt: 1, IdempotencyKey: b.Key, Component: st.Spec.Component,
		Version: b.Version, Rollback: true, Servers: slices.Clone(b.Servers),
	}
	d.mu.Unlock()
	return false, r.deploy(ctx, id, d, req)
}

// gate holds wave n to the health gate: every server the Deployer
// reported deployed must read healthy, continuously, for the spec's
// min_healthy, by its timeout. It polls the fleet through the clock, and
// stops without recording anything when the rollout aborts or rolls back
// meanwhile.
func (r *Runner) gate(ctx context.Context, id string, d *driver, n int) error {
	d.mu.Lock()
	st := d.st
	w := st.Waves[n-1]
	minHealthy, timeout, poll := st.Spec.gateTimes()
	deploy := st.Spec.deployDur()
	var watch []string
	for _, res := range w.Results {
		if res.OK {
			watch = append(watch, res.Server)
		}
	}
	begin := r.clock.Now()
	deadline := w.DeployedAt.Add(timeout)
	if deadline.Before(begin.Add(minHealthy)) {
		deadline = begin.Add(minHealthy)
	}
	d.mu.Unlock()

	since := map[string]time.Time{}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		d.mu.Lock()
		if w.Phase != PhaseDeployed || st.Status == StatusAborted || st.Status == StatusRollingBack {
			d.mu.Unlock()
			return nil
		}
		watch = slices.DeleteFunc(watch, func(s string) bool { return st.Servers[s].Skipped })
		d.mu.Unlock()

		snap := r.cfg.Fleet.Snapshot()
		now := r.clock.Now()
		next := now.Add(poll)
		var waiting []string
		for _, s := range watch {
			node, ok := snap.Get(s)
			if !ok || node.Health != disposition.HealthHealthy {
				delete(since, s)
				waiting = append(waiting, s)
				continue
			}
			t, ok := since[s]
			if !ok {
				t = now
				since[s] = t
			}
			if now.Sub(t) < minHealthy {
				waiting = append(waiting, s)
				if at := t.Add(minHealthy); at.Before(next) {
					next = at
				}
			}
		}
		if len(waiting) == 0 || !now.Before(deadline) {
			d.mu.Lock()
			defer d.mu.Unlock()
			if w.Phase != PhaseDeployed || st.Status == StatusAborted || st.Status == StatusRollingBack {
				return nil
			}
			waiting = slices.DeleteFunc(waiting, func(s string) bool { return st.Servers[s].Skipped })
			from := now
			if out := w.StartedAt.Add(deploy); out.After(from) {
				from = out
			}
			return r.appendLocked(ctx, id, d, Event{Type: EventWaveGated, Wave: n, Unhealthy: waiting, BakeUntil: from.Add(time.Duration(w.Bake))})
		}
		if next.After(deadline) {
			next = deadline
		}
		if err := r.sleepUntil(ctx, d, next); err != nil {
			return err
		}
	}
}

// op validates and records an operator's operation on rollout id.
func (r *Runner) op(ctx context.Context, id string, fn func(*State) ([]Event, error)) error {
	r.mu.Lock()
	d := r.active[id]
	if d == nil {
		// Not driven here: work on the stored log. Holding r.mu keeps a
		// Run from attaching meanwhile.
		defer r.mu.Unlock()
		st, err := r.load(ctx, id)
		if err != nil {
			return err
		}
		events, err := fn(st)
		if err != nil || len(events) == 0 {
			return err
		}
		return r.appendTo(ctx, id, st, events...)
	}
	r.mu.Unlock()
	d.mu.Lock()
	events, err := fn(d.st)
	if err == nil && len(events) > 0 {
		err = r.appendLocked(ctx, id, d, events...)
	}
	d.mu.Unlock()
	d.signal()
	return err
}

func invalidOp(st *State, op string) error {
	return fmt.Errorf("rollout %s: cannot %s a rollout that is %s: %w", st.ID, op, st.Status, ErrInvalidOperation)
}

// Pause holds the rollout before its next wave; a wave in progress
// finishes its deploy, gate and bake.
func (r *Runner) Pause(ctx context.Context, id, reason string) error {
	return r.op(ctx, id, func(st *State) ([]Event, error) {
		if st.Status != StatusRunning {
			return nil, invalidOp(st, "pause")
		}
		return []Event{{Type: EventPaused, Cause: CauseOperator, Reason: reason}}, nil
	})
}

// Resume releases a paused rollout. After a pause for a failure budget,
// the failures counted so far are acknowledged and count no more; after a
// pause for a failing Deployer, the wave in flight is deployed again
// under a new attempt.
func (r *Runner) Resume(ctx context.Context, id, reason string) error {
	return r.op(ctx, id, func(st *State) ([]Event, error) {
		if st.Status != StatusPaused {
			return nil, invalidOp(st, "resume")
		}
		return []Event{{Type: EventResumed, Reason: reason}}, nil
	})
}

// Abort stops the rollout for good, leaving servers as they are. A
// deploy in flight is not interrupted, but nothing follows it.
func (r *Runner) Abort(ctx context.Context, id, reason string) error {
	return r.op(ctx, id, func(st *State) ([]Event, error) {
		if st.Status.Terminal() {
			return nil, invalidOp(st, "abort")
		}
		return []Event{{Type: EventAborted, Reason: reason}}, nil
	})
}

// Rollback redeploys each server's previous version to every server a
// wave was sent to (pinned ones excepted), latest waves first, in batches
// of the spec's failure.rollback_batch. It applies to a running, paused,
// aborted or completed rollout; Run drives it.
func (r *Runner) Rollback(ctx context.Context, id, reason string) error {
	return r.op(ctx, id, func(st *State) ([]Event, error) {
		switch {
		case st.Rollback != nil:
			return nil, invalidOp(st, "roll back")
		case st.Status == StatusRunning, st.Status == StatusPaused, st.Status == StatusAborted, st.Status == StatusCompleted:
			return []Event{{Type: EventRollbackStarted, Reason: reason, Batches: rollbackBatches(st)}}, nil
		}
		return nil, invalidOp(st, "roll back")
	})
}

// Promote ends the current wave's bake as soon as its health gate
// passes.
func (r *Runner) Promote(ctx context.Context, id string) error {
	return r.op(ctx, id, func(st *State) ([]Event, error) {
		cur := st.Current()
		if (st.Status != StatusRunning && st.Status != StatusPaused) || cur == nil {
			return nil, fmt.Errorf("rollout %s: no wave to promote (%s): %w", st.ID, st.Status, ErrInvalidOperation)
		}
		if cur.Promoted {
			return nil, nil
		}
		return []Event{{Type: EventPromoted, Wave: cur.Number}}, nil
	})
}

// SkipServer leaves a server out of the rest of the rollout: it is taken
// out of the planned waves and of a health gate in progress, and its
// failures no longer count. A rollback still covers it if a wave was sent
// to it.
func (r *Runner) SkipServer(ctx context.Context, id, server, reason string) error {
	return r.serverOp(ctx, id, server, reason, EventServerSkipped)
}

// PinServer is SkipServer that also keeps the server out of any
// rollback: it stays at whatever version it has.
func (r *Runner) PinServer(ctx context.Context, id, server, reason string) error {
	return r.serverOp(ctx, id, server, reason, EventServerPinned)
}

func (r *Runner) serverOp(ctx context.Context, id, server, reason string, t EventType) error {
	if server == "" {
		return fmt.Errorf("rollout %s: empty server ID: %w", id, ErrInvalidOperation)
	}
	return r.op(ctx, id, func(st *State) ([]Event, error) {
		ok := st.Status == StatusRunning || st.Status == StatusPaused
		if t == EventServerPinned {
			ok = ok || st.Status == StatusCompleted || st.Status == StatusAborted || st.Status == StatusRollingBack
		}
		if !ok {
			return nil, invalidOp(st, strings.TrimPrefix(string(t), "server-"))
		}
		if ss := st.Servers[server]; ss != nil && (ss.Pinned || ss.Skipped && t == EventServerSkipped) {
			return nil, nil
		}
		return []Event{{Type: t, Server: server, Reason: reason}}, nil
	})
}
