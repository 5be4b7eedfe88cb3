package saltdeploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fleetkit/fleetkit/rollout"
)

// Defaults for Config fields left zero.
const (
	DefaultEAuth        = "pam"
	DefaultTimeout      = time.Minute
	DefaultPollInterval = 5 * time.Second
	DefaultJobTimeout   = 30 * time.Minute
)

// PillarKey is the pillar key under which Deploy passes the request to
// the states.
const PillarKey = "fleetkit"

// The job metadata Deploy sets, and searches salt's job cache for.
const (
	MetaKey  = "fleetkit_idempotency_key"
	MetaJob  = "fleetkit_job"  // the batch's index, from 0
	MetaJobs = "fleetkit_jobs" // how many batches the key has
)

// The errors of servers that failed without a state failing.
const (
	// NoReturn: the minion did not return within JobTimeout.
	NoReturn = "no return from the minion"
	// NotMinion: salt-master does not know the server as a minion.
	NotMinion = "not a minion of the salt master"
)

// ErrNoMinions is wrapped by the error of a batch whose target matched
// no minion: salt-api started no job.
var ErrNoMinions = errors.New("saltdeploy: no minion matched the target")

// maxKeys is how many idempotency keys a Deployer remembers; the oldest
// are forgotten first, and found again in the job cache if repeated.
const maxKeys = 1024

// Config configures a salt-api Deployer.
type Config struct {
	// URL is salt-api's (rest_cherrypy) base URL, such as
	// https://salt.example.com:8000. Required.
	URL string
	// Username, Password and EAuth are the external-auth credentials
	// for /login; EAuth defaults to DefaultEAuth. Username is required.
	Username string
	Password string
	EAuth    string
	// HTTPClient sends the requests; nil means a client of its own.
	HTTPClient *http.Client
	// Timeout bounds each request; default DefaultTimeout.
	Timeout time.Duration
	// State is the SLS to apply, or several separated by commas (the
	// mods of state.apply); empty applies the highstate.
	State string
	// Saltenv is the salt environment to apply from; empty leaves it to
	// the master (the top file's environments for a highstate).
	// SaltenvFunc, if set, chooses it per request instead, and must
	// give the same answer for the same request.
	Saltenv     string
	SaltenvFunc func(rollout.DeployRequest) (string, error)
	// Pillar is extra pillar data for every run; it may not hold
	// PillarKey, which Deploy sets.
	Pillar map[string]any
	// Queue passes queue=True, so that a run waits for a state run
	// already in progress on a minion instead of failing.
	Queue bool
	// BatchSize is how many servers one job targets at most; 0 targets
	// a whole request in one job.
	BatchSize int
	// PollInterval is the wait between looks at a running job; default
	// DefaultPollInterval.
	PollInterval time.Duration
	// JobTimeout is how long a job's minions may take to return before
	// those that did not fail with NoReturn; default DefaultJobTimeout.
	JobTimeout time.Duration
	// NoRecovery turns off the job cache search for idempotency keys
	// the Deployer does not remember (see the package doc).
	NoRecovery bool
	// Clock times polls and JobTimeout; nil means rollout.SystemClock.
	Clock rollout.Clock
}

// Deployer deploys with state.apply through salt-api. It is safe for
// concurrent use.
type Deployer struct {
	cfg    Config
	base   string
	client *http.Client
	clock  rollout.Clock

	authMu sync.Mutex // held while logging in
	token  string

	mu      sync.Mutex
	deploys map[string]*deploy
	order   []string // keys, oldest first
}

var _ rollout.Deployer = (*Deployer)(nil)

// deploy is what a Deployer remembers of one idempotency key.
type deploy struct {
	mu       sync.Mutex // held by the call working on the key
	searched bool       // the job cache was searched for the key
	jobs     []*job     // per batch; nil until started or found
	results  []rollout.ServerResult
}

// job is one salt job: a batch's state run.
type job struct {
	jid      string
	minions  []string // the minions expected to return; nil until known
	deadline time.Time
	returned map[string]rollout.ServerResult
}

// New checks cfg and returns a Deployer. An error names the first bad
// field.
func New(cfg Config) (*Deployer, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("saltdeploy: Config.URL: want an http or https URL, got %q", cfg.URL)
	}
	if cfg.Username == "" {
		return nil, errors.New("saltdeploy: Config.Username: empty")
	}
	if cfg.EAuth == "" {
		cfg.EAuth = DefaultEAuth
	}
	if strings.ContainsFunc(cfg.State, isSpace) {
		return nil, fmt.Errorf("saltdeploy: Config.State: %q holds white space (separate SLS with commas)", cfg.State)
	}
	if cfg.Saltenv != "" && cfg.SaltenvFunc != nil {
		return nil, errors.New("saltdeploy: Config.Saltenv and Config.SaltenvFunc are both set")
	}
	if _, ok := cfg.Pillar[PillarKey]; ok {
		return nil, fmt.Errorf("saltdeploy: Config.Pillar: key %q is set by the Deployer", PillarKey)
	}
	if _, err := json.Marshal(cfg.Pillar); err != nil {
		return nil, fmt.Errorf("saltdeploy: Config.Pillar: %w", err)
	}
	if cfg.BatchSize < 0 {
		return nil, fmt.Errorf("saltdeploy: Config.BatchSize must not be negative, got %d", cfg.BatchSize)
	}
	for _, f := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{{"Timeout", &cfg.Timeout, DefaultTimeout}, {"PollInterval", &cfg.PollInterval, DefaultPollInterval}, {"JobTimeout", &cfg.JobTimeout, DefaultJobTimeout}} {
		switch {
		case *f.v < 0:
			return nil, fmt.Errorf("saltdeploy: Config.%s must not be negative, got %s", f.name, *f.v)
		case *f.v == 0:
			*f.v = f.def
		}
	}
	d := &Deployer{cfg: cfg, base: strings.TrimSuffix(u.String(), "/"), client: cfg.HTTPClient, clock: cfg.Clock, deploys: map[string]*deploy{}}
	if d.client == nil {
		d.client = &http.Client{Timeout: cfg.Timeout}
	}
	if d.clock == nil {
		d.clock = rollout.SystemClock{}
	}
	return d, nil
}

func isSpace(r rune) bool { return r == ' ' || r == '\t' || r == '\n' || r == '\r' }

// targetable reports whether a server ID can be one name of an L@ list.
func targetable(id string) bool {
	return id != "" && !strings.ContainsFunc(id, func(r rune) bool { return r == ',' || isSpace(r) })
}

// Deploy applies the state to req.Servers and returns one result per
// server, in request order; see the package doc.
func (d *Deployer) Deploy(ctx context.Context, req rollout.DeployRequest) ([]rollout.ServerResult, error) {
	key := req.IdempotencyKey
	if key == "" {
		return nil, errors.New("saltdeploy: request has no idempotency key")
	}
	saltenv := d.cfg.Saltenv
	if d.cfg.SaltenvFunc != nil {
		var err error
		if saltenv, err = d.cfg.SaltenvFunc(req); err != nil {
			return nil, fmt.Errorf("saltdeploy: %s: saltenv: %w", key, err)
		}
	}
	dep := d.remember(key)
	dep.mu.Lock()
	defer dep.mu.Unlock()
	if dep.results != nil {
		return slices.Clone(dep.results), nil
	}

	results := make(map[string]rollout.ServerResult, len(req.Servers))
	var targets []string
	for _, s := range req.Servers {
		if _, dup := results[s]; dup {
			continue
		}
		if !targetable(s) {
			results[s] = rollout.ServerResult{Server: s, Error: fmt.Sprintf("server ID %q cannot be targeted as a minion ID", s)}
			continue
		}
		results[s] = rollout.ServerResult{}
		targets = append(targets, s)
	}
	size := d.cfg.BatchSize
	if size == 0 {
		size = max(len(targets), 1)
	}
	batches := slices.Collect(slices.Chunk(targets, size))
	if dep.jobs == nil {
		dep.jobs = make([]*job, len(batches))
	} else if len(dep.jobs) != len(batches) {
		return nil, fmt.Errorf("saltdeploy: %s: repeated with other servers (%d batches, had %d)", key, len(batches), len(dep.jobs))
	}
	if !dep.searched && !d.cfg.NoRecovery && len(batches) > 0 {
		if err := d.recover(ctx, key, dep); err != nil {
			return nil, fmt.Errorf("saltdeploy: %s: searching the job cache: %w", key, err)
		}
		dep.searched = true
	}
	for i, b := range batches {
		j := dep.jobs[i]
		if j == nil {
			var err error
			if j, err = d.start(ctx, req, saltenv, i, len(batches), b); err != nil {
				// The job may have started though the answer was lost:
				// look for it before starting another.
				dep.searched = false
				return nil, fmt.Errorf("saltdeploy: %s: starting job %d of %d: %w", key, i+1, len(batches), err)
			}
			dep.jobs[i] = j
		}
		if err := d.wait(ctx, j, b); err != nil {
			return nil, fmt.Errorf("saltdeploy: %s: job %s: %w", key, j.jid, err)
		}
		for _, s := range b {
			results[s] = j.result(s)
		}
	}
	out := make([]rollout.ServerResult, len(req.Servers))
	for i, s := range req.Servers {
		out[i] = results[s]
		out[i].Server = s
	}
	dep.results = out
	return slices.Clone(out), nil
}

// remember returns the record of key, making it if needed.
func (d *Deployer) remember(key string) *deploy {
	d.mu.Lock()
	defer d.mu.Unlock()
	if dep, ok := d.deploys[key]; ok {
		return dep
	}
	dep := &deploy{}
	d.deploys[key] = dep
	d.order = append(d.order, key)
	if len(d.order) > maxKeys {
		delete(d.deploys, d.order[0])
		d.order = slices.Delete(d.order, 0, 1)
	}
	return dep
}

// start starts batch i of n as a job.
func (d *Deployer) start(ctx context.Context, req rollout.DeployRequest, saltenv string, i, n int, servers []string) (*job, error) {
	pillar := make(map[string]any, len(d.cfg.Pillar)+1)
	for k, v := range d.cfg.Pillar {
		pillar[k] = v
	}
	pillar[PillarKey] = map[string]any{
		"rollout": req.Rollout, "component": req.Component, "version": req.Version,
		"idempotency_key": req.IdempotencyKey, "wave": req.Wave, "batch": req.Batch,
		"attempt": req.Attempt, "rollback": req.Rollback,
	}
	kwarg := map[string]any{"pillar": pillar}
	if d.cfg.State != "" {
		kwarg["mods"] = d.cfg.State
	}
	if saltenv != "" {
		kwarg["saltenv"] = saltenv
	}
	if d.cfg.Queue {
		kwarg["queue"] = true
	}
	chunk := map[string]any{
		"client": "local_async", "fun": "state.apply",
		"tgt": "L@" + strings.Join(servers, ","), "tgt_type": "compound",
		"kwarg":    kwarg,
		"metadata": map[string]any{MetaKey: req.IdempotencyKey, MetaJob: i, MetaJobs: n},
	}
	var pub struct {
		JID     string   `json:"jid"`
		Minions []string `json:"minions"`
	}
	if err := d.lowstate(ctx, chunk, &pub); err != nil {
		return nil, err
	}
	if pub.JID == "" {
		return nil, fmt.Errorf("%w: %s", ErrNoMinions, chunk["tgt"])
	}
	if pub.Minions == nil {
		pub.Minions = []string{}
	}
	return &job{jid: pub.JID, minions: pub.Minions, deadline: d.clock.Now().Add(d.cfg.JobTimeout), returned: map[string]rollout.ServerResult{}}, nil
}

// recover searches salt's job cache for jobs started for key, and takes
// the newest of each batch.
func (d *Deployer) recover(ctx context.Context, key string, dep *deploy) error {
	var found map[string]struct {
		Metadata map[string]any `json:"Metadata"`
	}
	err := d.lowstate(ctx, map[string]any{
		"client": "runner", "fun": "jobs.list_jobs",
		"search_metadata": map[string]any{MetaKey: key}, "search_function": "state.apply",
	}, &found)
	if err != nil {
		return err
	}
	for jid, j := range found {
		n, _ := j.Metadata[MetaJobs].(float64)
		i, _ := j.Metadata[MetaJob].(float64)
		if j.Metadata[MetaKey] != key || int(n) != len(dep.jobs) || i < 0 || int(i) >= len(dep.jobs) || i != float64(int(i)) {
			continue
		}
		if cur := dep.jobs[int(i)]; cur == nil || jid > cur.jid {
			dep.jobs[int(i)] = &job{jid: jid, deadline: d.clock.Now().Add(d.cfg.JobTimeout), returned: map[string]rollout.ServerResult{}}
		}
	}
	return nil
}

// wait polls j until every minion returned or its deadline passed.
// servers are the batch's, the minions expected when salt does not say.
func (d *Deployer) wait(ctx context.Context, j *job, servers []string) error {
	for {
		if err := d.poll(ctx, j, servers); err != nil {
			return err
		}
		if len(j.returned) == len(j.minions) {
			return nil
		}
		left := j.deadline.Sub(d.clock.Now())
		if left <= 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-d.clock.After(min(d.cfg.PollInterval, left)):
		}
	}
}

// poll looks at j once with GET /jobs/<jid>.
func (d *Deployer) poll(ctx context.Context, j *job, servers []string) error {
	var r struct {
		Info   []json.RawMessage            `json:"info"`
		Return []map[string]json.RawMessage `json:"return"`
	}
	if err := d.call(ctx, http.MethodGet, "/jobs/"+url.PathEscape(j.jid), nil, &r); err != nil {
		return err
	}
	if len(r.Return) != 1 {
		return fmt.Errorf("%w: %d returns for one job", ErrBadResponse, len(r.Return))
	}
	if j.minions == nil {
		var info struct {
			Minions []string `json:"Minions"`
		}
		if len(r.Info) > 0 && json.Unmarshal(r.Info[0], &info) == nil && info.Minions != nil {
			j.minions = info.Minions
		} else {
			j.minions = slices.Clone(servers)
		}
	}
	for _, m := range j.minions {
		if _, done := j.returned[m]; done {
			continue
		}
		if raw, ok := r.Return[0][m]; ok {
			ok, reason := outcome(raw)
			j.returned[m] = rollout.ServerResult{Server: m, OK: ok, Error: reason}
		}
	}
	return nil
}

// result is server's outcome once the job is over.
func (j *job) result(server string) rollout.ServerResult {
	if r, ok := j.returned[server]; ok {
		return r
	}
	if !slices.Contains(j.minions, server) {
		return rollout.ServerResult{Server: server, Error: NotMinion}
	}
	return rollout.ServerResult{Server: server, Error: NoReturn}
}
