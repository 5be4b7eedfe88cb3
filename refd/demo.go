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
)

// The files of a demo data directory.
const (
	DemoInventoryFile = "inventory.csv"      // the generated fleet, the authoritative source
	DemoStoreFile     = "refd.db"            // the store
	DemoTokenFile     = "admin-token.sha256" // the admin token's hash
)

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
	// Now is the clock of the simulated traffic; nil means time.Now.
	Now func() time.Time
}

// Demo is a refd on an embedded default setup: a generated fleet written
// as CSV and read back by an authoritative file source, a simulated
// traffic source with diurnal traffic at the current time in each metro,
// the overrides source, a local store and one admin token.
type Demo struct {
	// Server is the configured server; Run it.
	Server *Server
	// AdminToken is the admin token's secret when NewDemo created it, or
	// "" when the data directory already had one (only its hash is kept).
	AdminToken string
	// DataDir is the data directory in use.
	DataDir string

	store *Store
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
	d := &Demo{AdminToken: secret, DataDir: cfg.DataDir, store: store}
	fail := func(err error) (*Demo, error) {
		store.Close()
		return nil, err
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
		},
		Logger: cfg.Logger,
	},
		sources.Registered{Source: inv, Authoritative: true, Interval: time.Minute},
		sources.Registered{Source: &trafficSource{fleet: f, ix: ix, now: cfg.Now}, Interval: 30 * time.Second},
		sources.Registered{Source: ov, Interval: 15 * time.Second},
	)
	if err != nil {
		return fail(fmt.Errorf("refd: demo aggregator: %w", err))
	}
	d.Server, err = New(Config{
		Index:     ix,
		Updater:   agg,
		Store:     store,
		Overrides: ov,
		Planner:   RolloutPlanner(),
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

// Close closes the demo's store.
func (d *Demo) Close() error { return d.store.Close() }

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
