package sources

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"weak"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"github.com/fleetkit/fleetkit/clock"
	"github.com/fleetkit/fleetkit/disposition"
)

// Defaults for the zero values of Registered and AggregatorConfig.
const (
	DefaultInterval     = time.Minute
	DefaultRetries      = 2
	DefaultBackoff      = time.Second
	DefaultRemovalGuard = 0.10
	DefaultGrace        = 15 * time.Minute
	DefaultJitter       = 0.1
	// DefaultConcurrency caps the concurrent fetches when
	// AggregatorConfig.Concurrency is zero.
	DefaultConcurrency = 8
)

// Registered is a source with the settings the aggregator runs it with.
type Registered struct {
	// Source is the system to fetch from. Its Name must be unique.
	Source Source
	// Authoritative sources define which nodes exist; the others only
	// enrich nodes an authoritative source reported.
	Authoritative bool
	// Interval is the time between fetches, jittered. Zero means
	// DefaultInterval.
	Interval time.Duration
	// Timeout bounds one fetch attempt. Zero means Interval.
	Timeout time.Duration
	// MaxStale is how long the observations of a source whose fetches
	// fail stay in use, counted from its last good fetch. Past it, the
	// source's fields are dropped from every node. Zero means three
	// intervals.
	MaxStale time.Duration
	// Retries is how many times a failed fetch is retried before the
	// round counts as failed. Zero means DefaultRetries; negative means
	// no retry.
	Retries int
	// Backoff is the wait before the first retry; it doubles with every
	// retry, up to Interval, and is jittered. Zero means DefaultBackoff.
	Backoff time.Duration
}

// AggregatorConfig tunes an Aggregator. The zero value is usable.
type AggregatorConfig struct {
	// Precedence lists, for a field, the names of the sources whose
	// value wins, highest first. Sources not listed follow in
	// registration order, so a source that reports a field is never
	// ignored; a field not in the map uses registration order. For
	// FieldLabels and FieldVersions precedence applies per key: each
	// label or component comes from the first source that has it.
	Precedence map[disposition.Field][]string
	// RemovalGuard is the largest fraction of the fleet one
	// authoritative fetch may remove; a fetch that would remove more is
	// rejected with a *GuardError. Zero means DefaultRemovalGuard; 1
	// disables the guard.
	RemovalGuard float64
	// Grace is how long a node missing from every authoritative source
	// is kept (with its provenance marked stale) before it is removed.
	// Zero means DefaultGrace; negative means nodes go at once.
	Grace time.Duration
	// Concurrency bounds the fetches running at once. Zero means the
	// number of sources, at most DefaultConcurrency.
	Concurrency int
	// Jitter spreads intervals and backoffs by up to this fraction
	// either way. Zero means DefaultJitter; negative means none.
	Jitter float64
	// Clock is the time source; nil means the system clock.
	Clock Clock
	// Seed seeds the jitter; zero means a seed from Clock.Now.
	Seed uint64
	// Logger receives failed fetches and guard rejections; nil discards.
	Logger *slog.Logger
}

// SourceStatus is what the API shows about one source.
type SourceStatus struct {
	Name          string `json:"name"`
	Authoritative bool   `json:"authoritative"`
	// LastAttempt is when the last fetch round started.
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	// LastSuccess is when the last accepted fetch completed.
	LastSuccess time.Time `json:"last_success,omitzero"`
	// LastError is the last failed round's error, kept after later
	// successes; Err is the same error for errors.Is/As.
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	Err         error     `json:"-"`
	// Duration is how long the last round took, retries included.
	Duration time.Duration `json:"duration"`
	// Observations counts the nodes in the observations in use.
	Observations int `json:"observations"`
	// Invalid counts observations the last accepted fetch dropped
	// (no ID, bad values); FirstInvalid says what was wrong with one.
	Invalid      int    `json:"invalid"`
	FirstInvalid string `json:"first_invalid,omitempty"`
	// Orphans counts observations of nodes no authoritative source
	// knows; OrphanSample lists a few of them, sorted.
	Orphans      int      `json:"orphans"`
	OrphanSample []string `json:"orphan_sample,omitempty"`
	// StaleSince is when the source started failing; zero while fresh.
	StaleSince time.Time `json:"stale_since,omitzero"`
	// Expired is set once a failing source is past MaxStale and its
	// fields are dropped.
	Expired bool `json:"expired"`
	// Fetches and Failures count rounds since the aggregator started.
	Fetches  uint64 `json:"fetches"`
	Failures uint64 `json:"failures"`
}

// orphanSampleSize is how many orphan IDs a status lists.
const orphanSampleSize = 10

// Aggregator fetches sources and keeps a disposition.Index up to date
// with their merged observations. See the package documentation.
type Aggregator struct {
	ix      *disposition.Index
	clock   Clock
	log     *slog.Logger
	srcs    []*sourceState
	byName  map[string]*sourceState
	prec    [nFields][]int // source indexes per field, highest first
	numAuth int
	guard   float64
	grace   time.Duration
	jitter  float64
	sem     *semaphore.Weighted
	running atomic.Bool

	rngMu sync.Mutex
	rng   *rand.Rand

	statusMu sync.Mutex // guards every sourceState.status

	// mu serialises ingest, merge and Apply, and guards what follows
	// and the merge state of every sourceState.
	mu         sync.Mutex
	nodes      map[string]*disposition.Node // what the index holds, as we wrote it
	authCount  map[string]int32             // per node ID, how many authoritative sources report it
	missing    map[string]time.Time         // nodes absent from every authoritative source, since when
	dirty      map[string]struct{}          // nodes to merge again
	full       bool                         // merge every node
	loadedAuth int                          // authoritative sources with an accepted fetch
	origins    map[originKey]*disposition.Origin
	originsCap int // prune origins past this size
	intern     map[string]string
	seq        *merger // merges under mu
	// mergeWorkers is how many goroutines a full merge of many nodes
	// uses.
	mergeWorkers int
}

// sourceState is one registered source and what the aggregator keeps
// about it.
type sourceState struct {
	reg      Registered
	name     string
	idx      int
	interval time.Duration
	timeout  time.Duration
	maxStale time.Duration
	retries  int
	backoff  time.Duration
	inflight chan struct{} // holds a token while Fetch runs

	// Guarded by Aggregator.mu.
	obs          map[string]*entry         // last accepted observations by node ID
	gen          uint32                    // counts fetches taken in
	last         weak.Pointer[Observation] // the first element of the slice last taken in
	lastLen      int                       // and its length
	loaded       bool                      // a fetch was accepted
	lastGood     time.Time
	lastAttempt  time.Time
	failing      bool
	expired      bool
	allowRemoval bool
	orphans      int  // observations of nodes no authoritative source reports
	sampleDirty  bool // orphans changed since the status last showed them

	// next is the status being written, guarded by Aggregator.mu; status
	// is what Status shows, guarded by Aggregator.statusMu. next becomes
	// status (publish) only once what it reports is in the index, so a
	// reader never sees a success the index does not hold yet.
	next   SourceStatus
	status SourceStatus
}

// entry is one source's observation of one node, as the aggregator keeps
// it. obs points into the slice the source returned when most of it
// changed, or to a copy of the observation when only a few did, so that a
// source's old slices do not stay alive for the sake of a few entries.
type entry struct {
	obs *Observation
	// at is when the source first reported the current value of each
	// known field, in Unix nanoseconds, unless since is set: then the
	// times differ between fields and since holds them.
	at    int64
	since *[nFields]int64
	gen   uint32 // the last fetch that reported the node (sourceState.gen)
}

// firstSeen returns when the source first reported the current value of
// field f.
func (e *entry) firstSeen(f disposition.Field) int64 {
	if e.since != nil {
		return e.since[f]
	}
	return e.at
}

type originKey struct {
	source string
	at     int64
	stale  bool
	note   string
}

// NewAggregator returns an aggregator that writes the merged
// observations of srcs into ix. It adopts the nodes ix already holds as
// the current fleet, and assumes it is the only writer of ix from then
// on. At least one source must be authoritative. Nothing is fetched until
// Refresh or Run.
func NewAggregator(ix *disposition.Index, cfg AggregatorConfig, srcs ...Registered) (*Aggregator, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("sources: NewAggregator: "+format, args...)
	}
	if ix == nil {
		return nil, bad("nil index")
	}
	if len(srcs) == 0 {
		return nil, bad("no sources")
	}
	a := &Aggregator{
		ix:        ix,
		clock:     cfg.Clock,
		log:       cfg.Logger,
		byName:    map[string]*sourceState{},
		guard:     cfg.RemovalGuard,
		grace:     cfg.Grace,
		jitter:    cfg.Jitter,
		nodes:     map[string]*disposition.Node{},
		authCount: map[string]int32{},
		missing:   map[string]time.Time{},
		dirty:     map[string]struct{}{},
		origins:   map[originKey]*disposition.Origin{},
		intern:    map[string]string{},
	}
	if a.clock == nil {
		a.clock = clock.System{}
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	switch g := a.guard; {
	case g == 0:
		a.guard = DefaultRemovalGuard
	case !(g > 0 && g <= 1):
		return nil, bad("RemovalGuard %v is not a fraction between 0 and 1", g)
	}
	if a.grace == 0 {
		a.grace = DefaultGrace
	}
	switch j := a.jitter; {
	case j == 0:
		a.jitter = DefaultJitter
	case j >= 1:
		return nil, bad("Jitter %v must be below 1", j)
	}
	conc := cfg.Concurrency
	if conc < 0 {
		return nil, bad("Concurrency %d is negative", conc)
	}
	if conc == 0 {
		conc = min(len(srcs), DefaultConcurrency)
	}
	a.sem = semaphore.NewWeighted(int64(conc))
	seed := cfg.Seed
	if seed == 0 {
		seed = uint64(a.clock.Now().UnixNano())
	}
	a.rng = rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))

	for i, r := range srcs {
		if r.Source == nil {
			return nil, bad("source %d is nil", i)
		}
		name := r.Source.Name()
		if name == "" {
			return nil, bad("source %d has no name", i)
		}
		if _, dup := a.byName[name]; dup {
			return nil, bad("two sources named %q", name)
		}
		s := &sourceState{reg: r, name: name, idx: i, interval: r.Interval, timeout: r.Timeout,
			maxStale: r.MaxStale, retries: r.Retries, backoff: r.Backoff,
			inflight: make(chan struct{}, 1), obs: map[string]*entry{}}
		if s.interval < 0 || s.timeout < 0 || s.maxStale < 0 || s.backoff < 0 {
			return nil, bad("source %q: negative duration", name)
		}
		if s.interval == 0 {
			s.interval = DefaultInterval
		}
		if s.timeout == 0 {
			s.timeout = s.interval
		}
		if s.maxStale == 0 {
			s.maxStale = 3 * s.interval
		}
		switch {
		case s.retries == 0:
			s.retries = DefaultRetries
		case s.retries < 0:
			s.retries = 0
		}
		if s.backoff == 0 {
			s.backoff = DefaultBackoff
		}
		s.status = SourceStatus{Name: name, Authoritative: r.Authoritative}
		s.next = s.status
		if r.Authoritative {
			a.numAuth++
		}
		a.srcs = append(a.srcs, s)
		a.byName[name] = s
	}
	a.seq = newMerger(a, false)
	a.mergeWorkers = min(runtime.GOMAXPROCS(0), maxMergeWorkers)
	if a.numAuth == 0 {
		return nil, bad("no source is authoritative, so no node would exist")
	}
	for f := disposition.FieldKind; int(f) < nFields; f++ {
		var order []int
		for j, name := range cfg.Precedence[f] {
			s, ok := a.byName[name]
			if !ok {
				return nil, bad("Precedence[%s][%d]: %w %q", f, j, ErrUnknownSource, name)
			}
			if slices.Contains(order, s.idx) {
				return nil, bad("Precedence[%s]: source %q listed twice", f, name)
			}
			order = append(order, s.idx)
		}
		for _, s := range a.srcs {
			if !slices.Contains(order, s.idx) {
				order = append(order, s.idx)
			}
		}
		a.prec[f] = order
	}
	for f := range cfg.Precedence {
		if f == disposition.FieldID || int(f) >= nFields {
			return nil, bad("Precedence: %s is not a field that sources report", f)
		}
	}
	err := ix.Snapshot().Scan(disposition.Query{}, func(n *disposition.Node) bool {
		a.nodes[n.ID] = n
		return true
	})
	if err != nil {
		return nil, bad("reading the index: %w", err)
	}
	a.originsCap = 1024
	return a, nil
}

// Refresh fetches every source once (one round each: an attempt and its
// retries), concurrently within the configured bound, then merges what
// changed and applies it to the index. Failed sources are handled as in
// Run (stale-on-error); their errors, *SourceError values, are returned
// joined after the successful ones have been applied. If ctx is done
// before the fetches complete, nothing is applied and ctx's error is
// returned.
func (a *Aggregator) Refresh(ctx context.Context) error {
	results := make([]fetchResult, len(a.srcs))
	var g errgroup.Group
	for i, s := range a.srcs {
		g.Go(func() error {
			results[i] = a.fetchRound(ctx, s)
			return nil
		})
	}
	_ = g.Wait() // the goroutines report through results
	if err := ctx.Err(); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	var errs []error
	for i, s := range a.srcs {
		if err := a.ingest(s, results[i]); err != nil {
			errs = append(errs, err)
		}
	}
	if err := a.mergeAndApply(ctx); err != nil {
		errs = append(errs, err)
	}
	a.publish()
	return errors.Join(errs...)
}

// RefreshSource fetches the named source once (an attempt and its
// retries), merges what changed and applies it to the index, as Refresh
// does for every source: for a change that only one source knows about,
// such as a manual override, without asking the others. An unknown name
// is an error wrapping ErrUnknownSource; a failed fetch is a *SourceError,
// handled as in Run (stale-on-error).
func (a *Aggregator) RefreshSource(ctx context.Context, name string) error {
	s, ok := a.byName[name]
	if !ok {
		return fmt.Errorf("sources: RefreshSource: %w %q", ErrUnknownSource, name)
	}
	r := a.fetchRound(ctx, s)
	if err := ctx.Err(); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	err := a.ingest(s, r)
	err = errors.Join(err, a.mergeAndApply(ctx))
	a.publish()
	return err
}

// Run fetches each source on its own jittered interval, merges and
// applies every result as it arrives, until ctx is done; it then returns
// nil. A source fetched within its interval before Run started (e.g. by
// Refresh) waits for the rest of its interval. Run must not be called
// again while it runs.
//
// A merge past a source's MaxStale or a node's grace period happens at
// the next fetch of any source, so it may lag by up to the shortest
// interval.
func (a *Aggregator) Run(ctx context.Context) error {
	if !a.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer a.running.Store(false)
	var g errgroup.Group
	for _, s := range a.srcs {
		g.Go(func() error {
			a.loop(ctx, s)
			return nil
		})
	}
	return g.Wait()
}

func (a *Aggregator) loop(ctx context.Context, s *sourceState) {
	a.mu.Lock()
	var delay time.Duration
	if !s.lastAttempt.IsZero() {
		delay = s.interval - a.clock.Now().Sub(s.lastAttempt)
	}
	a.mu.Unlock()
	for {
		if delay > 0 {
			select {
			case <-ctx.Done():
				return
			case <-a.clock.After(delay):
			}
		}
		if ctx.Err() != nil {
			return
		}
		r := a.fetchRound(ctx, s)
		if ctx.Err() != nil {
			return // shutting down is not a failure of the source
		}
		a.mu.Lock()
		if err := a.ingest(s, r); err != nil {
			a.log.Warn("source fetch failed", "source", s.name, "err", err)
		}
		if err := a.mergeAndApply(ctx); err != nil && ctx.Err() == nil {
			a.log.Error("applying merged observations", "err", err)
		}
		a.publish()
		a.mu.Unlock()
		delay = a.jittered(s.interval)
	}
}

// Status returns the status of every source, in registration order.
func (a *Aggregator) Status() []SourceStatus {
	a.statusMu.Lock()
	defer a.statusMu.Unlock()
	out := make([]SourceStatus, len(a.srcs))
	for i, s := range a.srcs {
		out[i] = s.status
		out[i].OrphanSample = slices.Clone(s.status.OrphanSample)
	}
	return out
}

// AllowRemovals lets the next fetch of the named authoritative source
// through the removal guard, however many nodes it removes: the operator
// has confirmed that the servers are really gone.
func (a *Aggregator) AllowRemovals(source string) error {
	s, ok := a.byName[source]
	if !ok {
		return fmt.Errorf("sources: AllowRemovals: %w %q", ErrUnknownSource, source)
	}
	if !s.reg.Authoritative {
		return fmt.Errorf("sources: AllowRemovals: %q is not authoritative", source)
	}
	a.mu.Lock()
	s.allowRemoval = true
	a.mu.Unlock()
	return nil
}

// fetchResult is the outcome of one fetch round.
type fetchResult struct {
	obs   []Observation
	err   error
	start time.Time
	at    time.Time // when the round ended
}

// fetchRound fetches s, retrying failures with backoff.
func (a *Aggregator) fetchRound(ctx context.Context, s *sourceState) fetchResult {
	start := a.clock.Now()
	backoff := s.backoff
	for attempt := 0; ; attempt++ {
		if err := a.sem.Acquire(ctx, 1); err != nil {
			return fetchResult{err: err, start: start, at: a.clock.Now()}
		}
		obs, err := a.fetchOnce(ctx, s)
		a.sem.Release(1)
		if err == nil || attempt >= s.retries || ctx.Err() != nil || errors.Is(err, ErrFetchInProgress) {
			return fetchResult{obs: obs, err: err, start: start, at: a.clock.Now()}
		}
		wait := a.jittered(backoff)
		a.log.Debug("source fetch failed, retrying", "source", s.name, "attempt", attempt+1, "wait", wait, "err", err)
		select {
		case <-ctx.Done():
			return fetchResult{err: ctx.Err(), start: start, at: a.clock.Now()}
		case <-a.clock.After(wait):
		}
		backoff = min(2*backoff, s.interval)
	}
}

// fetchOnce calls s.Fetch with the source's timeout. A Fetch that
// ignores its context is abandoned at the deadline; until it returns, the
// source is not called again.
func (a *Aggregator) fetchOnce(ctx context.Context, s *sourceState) ([]Observation, error) {
	select {
	case s.inflight <- struct{}{}:
	default:
		return nil, ErrFetchInProgress
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	type result struct {
		obs []Observation
		err error
	}
	ch := make(chan result, 1)
	go func() {
		var r result
		func() {
			defer func() {
				if p := recover(); p != nil {
					r = result{err: fmt.Errorf("%w: %v", ErrSourcePanic, p)}
				}
			}()
			r.obs, r.err = s.reg.Source.Fetch(ctx)
		}()
		<-s.inflight // before the send: whoever receives may fetch again
		ch <- r
	}()
	select {
	case r := <-ch:
		if r.err != nil && ctx.Err() != nil && errors.Is(r.err, ctx.Err()) {
			return nil, fmt.Errorf("no answer within %v: %w", s.timeout, r.err)
		}
		return r.obs, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("no answer within %v: %w", s.timeout, ctx.Err())
	}
}

// jittered spreads d by up to the configured jitter either way.
func (a *Aggregator) jittered(d time.Duration) time.Duration {
	if a.jitter <= 0 || d <= 0 {
		return d
	}
	a.rngMu.Lock()
	r := a.rng.Float64()
	a.rngMu.Unlock()
	return time.Duration(float64(d) * (1 + a.jitter*(2*r-1)))
}

// setStatus updates s's next status; the caller holds a.mu. publish
// makes it visible.
func (a *Aggregator) setStatus(s *sourceState, fn func(*SourceStatus)) {
	fn(&s.next)
}

// publish makes every source's next status the one Status returns, after
// a merge has reached the index; the caller holds a.mu.
func (a *Aggregator) publish() {
	a.statusMu.Lock()
	for _, s := range a.srcs {
		next := s.next
		next.OrphanSample = slices.Clone(s.next.OrphanSample)
		s.status = next
	}
	a.statusMu.Unlock()
}
