package refd

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/rollout"
	"github.com/fleetkit/fleetkit/rollout/boltstore"
	"github.com/fleetkit/fleetkit/sources"
	"github.com/fleetkit/fleetkit/sources/file"
	"github.com/fleetkit/fleetkit/sources/overrides"
	"github.com/fleetkit/fleetkit/testkit/fleet"
)

// Demo defaults.
const (
	DefaultDemoSize    = 20_000
	DefaultDemoSeed    = 1
	DefaultDemoDataDir = ".fleetkit/demo"
	// DefaultDemoDeployFailureRate is the share of servers a simulated
	// deploy fails.
	DefaultDemoDeployFailureRate = 0.005
)

// The files of a demo data directory.
const (
	DemoInventoryFile = "inventory.csv"      // the generated fleet, the authoritative source
	DemoStoreFile     = "refd.db"            // the store
	DemoTokenFile     = "admin-token.sha256" // the admin token's hash
	DemoRolloutsFile  = "rollouts.db"        // the rollout runner's event logs
	DemoDeploysFile   = "deploys.json"       // the versions the simulated deployer deployed
)

// DemoDeploysSource is the name of the demo's source of deployed
// versions: provenance names it for the versions its deployer set.
const DemoDeploysSource = "deploys"

// DemoConfig configures NewDemo.
type DemoConfig struct {
	// DataDir holds the inventory, the store and the admin token's hash;
	// "" means DefaultDemoDataDir. It is created if missing.
	DataDir string
	// Addr is the listen address; "" means DefaultAddr.
	Addr string
	// Size and Seed select the generated fleet; 0 means DefaultDemoSize
	// and DefaultDemoSeed.
	Size int
	Seed int64
	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
	// Registry receives the metrics; nil means the server's own.
	Registry *prometheus.Registry
	// Now is the clock of the server and the simulated traffic; nil
	// means time.Now.
	Now func() time.Time
	// Clock is the rollout runner's clock; nil means the system clock. A
	// rollout.FakeClock in auto mode runs rollouts through at once.
	Clock rollout.Clock
	// DeployFailureRate is the share of servers (0 to 1) a simulated
	// deploy fails, decided from Seed, the deploy's idempotency key and
	// the server; 0 means DefaultDemoDeployFailureRate, negative none.
	// Rollbacks never fail.
	DeployFailureRate float64
}

// Demo is a refd on an embedded default setup: a generated fleet written
// as CSV and read back by an authoritative file source, a simulated
// traffic source with diurnal traffic at the current time in each metro,
// the overrides source, a local store, one admin token, and a rollout
// runner whose simulated deployer "deploys" by reporting the new versions
// through a source of its own (DemoDeploysSource), so that the index
// shows each server's deployed version with its provenance. When git is
// installed it also serves formulas: a control file over formula
// repositories it makes in the data directory (DemoFormulasDir).
type Demo struct {
	// Server is the configured server; Run it.
	Server *Server
	// AdminToken is the admin token's secret when NewDemo created it, or
	// "" when the data directory already had one (only its hash is kept).
	AdminToken string
	// DataDir is the data directory in use.
	DataDir string

	store    *Store
	rollouts *boltstore.Store
}

// NewDemo prepares a demo in cfg.DataDir: it writes the fleet, opens the
// store, creates the admin token on first use and builds the server.
// Close the Demo after the server has stopped.
func NewDemo(ctx context.Context, cfg DemoConfig) (*Demo, error) {
	if cfg.DataDir == "" {
		cfg.DataDir = DefaultDemoDataDir
	}
	if cfg.Size == 0 {
		cfg.Size = DefaultDemoSize
	}
	if cfg.Seed == 0 {
		cfg.Seed = DefaultDemoSeed
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case cfg.DeployFailureRate == 0:
		cfg.DeployFailureRate = DefaultDemoDeployFailureRate
	case cfg.DeployFailureRate < 0:
		cfg.DeployFailureRate = 0
	case cfg.DeployFailureRate > 1:
		return nil, &ConfigError{Field: "DemoConfig.DeployFailureRate", Err: fmt.Errorf("must be at most 1, got %v", cfg.DeployFailureRate)}
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("refd: demo data dir: %w", err)
	}
	f, err := fleet.Generate(fleet.Config{Size: cfg.Size, Seed: cfg.Seed})
	if err != nil {
		return nil, fmt.Errorf("refd: demo fleet: %w", err)
	}
	invPath := filepath.Join(cfg.DataDir, DemoInventoryFile)
	if err := writeFileAtomic(invPath, func(w io.Writer) error { return writeInventory(w, f) }); err != nil {
		return nil, fmt.Errorf("refd: demo inventory: %w", err)
	}
	secret, hash, err := demoToken(filepath.Join(cfg.DataDir, DemoTokenFile))
	if err != nil {
		return nil, err
	}
	store, err := OpenStore(filepath.Join(cfg.DataDir, DemoStoreFile))
	if err != nil {
		return nil, err
	}
	rstore, err := boltstore.Open(filepath.Join(cfg.DataDir, DemoRolloutsFile), nil)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("refd: demo rollouts: %w", err)
	}
	d := &Demo{AdminToken: secret, DataDir: cfg.DataDir, store: store, rollouts: rstore}
	fail := func(err error) (*Demo, error) {
		d.Close()
		return nil, err
	}
	deploys, err := newDemoDeploys(filepath.Join(cfg.DataDir, DemoDeploysFile), uint64(cfg.Seed), cfg.DeployFailureRate)
	if err != nil {
		return fail(err)
	}
	ov, err := overrides.New(ctx, overrides.Config{Store: store, Now: cfg.Now})
	if err != nil {
		return fail(err)
	}
	inv, err := file.New("inventory", file.Options{Path: invPath})
	if err != nil {
		return fail(err)
	}
	ix := disposition.NewIndex()
	agg, err := sources.NewAggregator(ix, sources.AggregatorConfig{
		Precedence: map[disposition.Field][]string{
			disposition.FieldState:        {ov.Name()},
			disposition.FieldReleaseState: {ov.Name()},
			disposition.FieldTraffic:      {"traffic"},
			disposition.FieldVersions:     {DemoDeploysSource},
		},
		Logger: cfg.Logger,
	},
		sources.Registered{Source: inv, Authoritative: true, Interval: time.Minute},
		sources.Registered{Source: &trafficSource{fleet: f, ix: ix, now: cfg.Now}, Interval: 30 * time.Second},
		sources.Registered{Source: ov, Interval: 15 * time.Second},
		sources.Registered{Source: deploys, Interval: 2 * time.Second},
	)
	if err != nil {
		return fail(fmt.Errorf("refd: demo aggregator: %w", err))
	}
	runner, err := NewRolloutRunner(RolloutRunnerConfig{
		Store: rstore, Fleet: ix, Deployer: deploys, Clock: cfg.Clock, Logger: cfg.Logger,
	})
	if err != nil {
		return fail(err)
	}
	var formulaSvc Formulas
	// Formulas are the one part of the demo that needs a program (git):
	// without it, or if making the repositories fails, the rest runs.
	if svc, err := demoFormulas(ctx, filepath.Join(cfg.DataDir, DemoFormulasDir)); err == nil {
		formulaSvc = svc
	} else if ctx.Err() != nil {
		return fail(ctx.Err())
	} else {
		cfg.Logger.Warn("the demo runs without formulas", "reason", err.Error())
	}
	d.Server, err = New(Config{
		Index:     ix,
		Updater:   agg,
		Store:     store,
		Overrides: ov,
		Planner:   RolloutPlanner(),
		Runner:    runner,
		Formulas:  formulaSvc,
		Tokens:    []Token{{Name: "admin", Hash: hash, Scopes: []Scope{ScopeAdmin}}},
		Addr:      cfg.Addr,
		Logger:    cfg.Logger,
		Registry:  cfg.Registry,
		Now:       cfg.Now,
	})
	if err != nil {
		return fail(err)
	}
	return d, nil
}

// Close closes the demo's stores. Call it after the server has stopped.
func (d *Demo) Close() error {
	return errors.Join(d.rollouts.Close(), d.store.Close())
}

// demoToken returns the admin token's hash from path, creating a new
// token (and returning its secret) when the file does not exist.
func demoToken(path string) (secret, hash string, err error) {
	b, err := os.ReadFile(path)
	if err == nil {
		hash = strings.TrimSpace(string(b))
		if _, err := parseHash(hash); err != nil {
			return "", "", fmt.Errorf("refd: %s: %v (delete it to get a new admin token)", path, err)
		}
		return "", hash, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", "", fmt.Errorf("refd: demo token: %w", err)
	}
	secret, err = NewTokenSecret()
	if err != nil {
		return "", "", err
	}
	hash = HashToken(secret)
	if err := os.WriteFile(path, []byte(hash+"\n"), 0o600); err != nil {
		return "", "", fmt.Errorf("refd: demo token: %w", err)
	}
	return secret, hash, nil
}

// writeFileAtomic writes path through a temporary file and a rename, so
// that a reader never sees half a file.
func writeFileAtomic(path string, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	bw := bufio.NewWriter(tmp)
	if err := write(bw); err != nil {
		tmp.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// writeInventory writes the fleet as CSV without its traffic column: an
// inventory does not know traffic, the traffic source does.
func writeInventory(w io.Writer, f *fleet.Fleet) error {
	var buf bytes.Buffer
	if err := f.WriteCSV(&buf); err != nil {
		return err
	}
	r := csv.NewReader(&buf)
	r.ReuseRecord = true
	cw := csv.NewWriter(w)
	drop := -1
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if drop < 0 {
			drop = slices.Index(rec, disposition.FieldTraffic.String())
		}
		if drop >= 0 {
			rec = slices.Delete(rec, drop, drop+1)
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// trafficSource simulates a traffic source: each serving node carries its
// metro's diurnal utilisation at the current minute, with a steady
// per-node spread, rounded to 10 Mbps; other nodes carry none.
type trafficSource struct {
	fleet *fleet.Fleet
	ix    *disposition.Index
	now   func() time.Time
}

func (s *trafficSource) Name() string { return "traffic" }

func (s *trafficSource) Fetch(ctx context.Context) ([]sources.Observation, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// Sampled once a minute, like a metrics pipeline: a refresh within
	// the minute (after an override, say) changes no traffic.
	now := s.now().Truncate(time.Minute)
	util := make(map[string]float64, len(s.fleet.Metros))
	for i := range s.fleet.Metros {
		m := &s.fleet.Metros[i]
		util[m.Code] = m.Utilisation(now)
	}
	snap := s.ix.Snapshot()
	out := make([]sources.Observation, len(s.fleet.Nodes))
	for i, gen := range s.fleet.Nodes {
		n := gen
		if cur, ok := snap.Get(gen.ID); ok {
			n = cur
		}
		gbps := 0.0
		if n.State == disposition.StateInService && n.Health != disposition.HealthDown {
			gbps = math.Round(n.CapacityGbps*util[n.Metro]*spread(n.ID)*100) / 100
		}
		out[i] = sources.Observation{ID: gen.ID}
		out[i].Traffic(gbps)
	}
	return out, nil
}

// spread is a node's steady share of its metro's utilisation, 0.9 to 1.1.
func spread(id string) float64 {
	h := fnv.New32a()
	h.Write([]byte(id))
	return 0.9 + 0.2*float64(h.Sum32())/math.MaxUint32
}
