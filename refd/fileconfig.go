package refd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/rollout/boltstore"
	"github.com/fleetkit/fleetkit/sources"
	"github.com/fleetkit/fleetkit/sources/overrides"
)

// DefaultOverridesInterval is how often the aggregator reads the
// overrides source when the file does not say; writes through the API
// refresh at once anyway.
const DefaultOverridesInterval = 15 * time.Second

// FileOptions are the settings of LoadConfig that do not come from the
// file.
type FileOptions struct {
	// Registry makes the sources by type; nil means DefaultRegistry().
	Registry sources.Registry
	// Addr, when set, replaces the file's listen address.
	Addr string
	// Logger receives the logs; nil discards them.
	Logger *slog.Logger
	// Metrics is the Prometheus registry; nil means the server's own.
	Metrics *prometheus.Registry
}

// Daemon is a Server built from a configuration file, with what it owns.
type Daemon struct {
	Server *Server
	// Sources are the names of the configured sources, overrides included.
	Sources []string
	// Deployer is the rollout deployer's type ("" with the runner
	// disabled).
	Deployer string
	store    *Store
	rollouts *boltstore.Store
}

// Close closes what the daemon owns (its stores). Call it after the
// server has stopped.
func (d *Daemon) Close() error {
	var err error
	if d.rollouts != nil {
		err = d.rollouts.Close()
	}
	return errors.Join(err, d.store.Close())
}

// DefaultRolloutStoreFile is the rollout runner's store file, in the
// directory of refd's store, when refd.yaml does not name one.
const DefaultRolloutStoreFile = "rollouts.db"

// fileConfig is the part of refd.yaml that is refd's own; the rest
// (sources, precedence, removal_guard, grace, concurrency, jitter) is a
// sources configuration.
type fileConfig struct {
	Listen    string      `yaml:"listen"`
	Store     string      `yaml:"store"`
	TLS       fileTLS     `yaml:"tls"`
	Tokens    []fileToken `yaml:"tokens"`
	Overrides struct {
		Disabled bool          `yaml:"disabled"`
		MaxTTL   time.Duration `yaml:"max_ttl"`
		Interval time.Duration `yaml:"interval"`
	} `yaml:"overrides"`
	Formulas FormulasConfig `yaml:"formulas"`
	Rollout  struct {
		Disabled       bool          `yaml:"disabled"`
		Store          string        `yaml:"store"`
		DeployAttempts int           `yaml:"deploy_attempts"`
		DeployBackoff  time.Duration `yaml:"deploy_backoff"`
		Deployer       yaml.Node     `yaml:"deployer"`
	} `yaml:"rollout"`
	Limits struct {
		MaxBodyBytes    int64         `yaml:"max_body_bytes"`
		ReadTimeout     time.Duration `yaml:"read_timeout"`
		WriteTimeout    time.Duration `yaml:"write_timeout"`
		IdleTimeout     time.Duration `yaml:"idle_timeout"`
		ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	} `yaml:"limits"`
}

type fileTLS struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

type fileToken struct {
	Name   string   `yaml:"name"`
	Hash   string   `yaml:"hash"`
	Scopes []string `yaml:"scopes"`
}

// refdKeys are the top-level keys of refd.yaml that are refd's own.
var refdKeys = []string{"listen", "store", "tls", "tokens", "overrides", "formulas", "rollout", "limits"}

// LoadConfigFile reads a refd configuration file; see LoadConfig.
func LoadConfigFile(ctx context.Context, path string, opts FileOptions) (*Daemon, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("refd: %w", err)
	}
	return LoadConfig(ctx, path, data, opts)
}

// LoadConfig builds a Daemon from the text of a refd configuration
// (name is the file name used in errors):
//
//	listen: 127.0.0.1:8080
//	store: /var/lib/refd/refd.db
//	tls: {cert: /etc/refd/tls.crt, key: /etc/refd/tls.key}
//	tokens:
//	  - {name: ci, hash: "sha256:…", scopes: [read]}
//	overrides: {max_ttl: 720h}         # or disabled: true
//	formulas: {control: /etc/refd/formulas.yaml, lock: /etc/refd/formulas.lock, mirror_dir: /var/cache/refd/git, root: /srv/salt/fleetkit}
//	rollout:                           # the rollout runner; or disabled: true
//	  store: /var/lib/refd/rollouts.db # default: rollouts.db beside store
//	  deploy_attempts: 3               # failed deployer calls in a row that pause
//	  deploy_backoff: 10s
//	  deployer: {type: log}            # see DeployerTypes
//	limits: {max_body_bytes: 1048576, read_timeout: 30s, write_timeout: 60s}
//	sources: [...]                     # and precedence, removal_guard, grace,
//	precedence: {...}                  # concurrency, jitter: see sources.ParseConfig
//
// The overrides source is added unless disabled, with the highest
// precedence for state and release_state unless the precedence lists
// name it. The rollout runner drives created rollouts unless disabled,
// with its event logs in a rollout/boltstore file of its own. Errors name
// the file, line and field.
func LoadConfig(ctx context.Context, name string, data []byte, opts FileOptions) (*Daemon, error) {
	cerr := func(line int, path, format string, args ...any) error {
		return &sources.ConfigError{File: name, Line: line, Path: path, Err: fmt.Errorf(format, args...)}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, &sources.ConfigError{File: name, Err: err}
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, cerr(1, "", "want a mapping of settings")
	}
	root := doc.Content[0]
	if root.Style&yaml.FlowStyle != 0 {
		return nil, cerr(root.Line, "", "write the top level in block style, one key per line")
	}
	// Split the document: refd's keys are decoded here, the rest goes to
	// sources.ParseConfig with refd's lines blanked, so that its errors
	// keep the file's line numbers.
	own := &yaml.Node{Kind: yaml.MappingNode, Line: root.Line}
	lines := strings.SplitAfter(string(data), "\n")
	keyLines := map[string]int{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		keyLines[k.Value] = k.Line
		if !slices.Contains(refdKeys, k.Value) {
			continue
		}
		own.Content = append(own.Content, k, v)
		end := len(lines)
		if i+2 < len(root.Content) {
			end = root.Content[i+2].Line - 1
		}
		for l := k.Line - 1; l < end && l < len(lines); l++ {
			lines[l] = "\n"
		}
	}
	var fc fileConfig
	if err := sources.DecodeOptions(own, &fc); err != nil {
		var ce *sources.ConfigError
		if errors.As(err, &ce) {
			return nil, &sources.ConfigError{File: name, Line: ce.Line, Path: ce.Path, Err: ce.Err}
		}
		return nil, err
	}
	scfg, err := sources.ParseConfig(name, []byte(strings.Join(lines, "")))
	if err != nil {
		var ce *sources.ConfigError
		if errors.As(err, &ce) && errors.Is(err, sources.ErrUnknownKey) && !strings.ContainsAny(ce.Path, ".[") {
			return nil, cerr(ce.Line, ce.Path, "%w (valid: %s, sources, precedence, removal_guard, grace, concurrency, jitter)",
				sources.ErrUnknownKey, strings.Join(refdKeys, ", "))
		}
		return nil, err
	}

	if fc.Store == "" {
		return nil, cerr(max(keyLines["store"], 1), "store", "required: the path of the store file")
	}
	if len(fc.Tokens) == 0 {
		return nil, cerr(max(keyLines["tokens"], 1), "tokens", "at least one token is required (make one with: refd token new)")
	}
	tokNodes := valueOf(root, "tokens")
	var tokens []Token
	for i, ft := range fc.Tokens {
		line := keyLines["tokens"]
		var tn *yaml.Node
		if tokNodes != nil && i < len(tokNodes.Content) {
			tn = tokNodes.Content[i]
			line = tn.Line
		}
		at := func(key string) int {
			if tn != nil {
				if v := valueOf(tn, key); v != nil {
					return v.Line
				}
			}
			return line
		}
		path := fmt.Sprintf("tokens[%d]", i)
		switch {
		case ft.Name == "":
			return nil, cerr(line, path+".name", "required")
		case ft.Hash == "":
			return nil, cerr(line, path+".hash", "required")
		}
		if _, err := parseHash(ft.Hash); err != nil {
			return nil, cerr(at("hash"), path+".hash", "%v", err)
		}
		if len(ft.Scopes) == 0 {
			return nil, cerr(line, path+".scopes", "at least one scope is required")
		}
		t := Token{Name: ft.Name, Hash: ft.Hash}
		for j, s := range ft.Scopes {
			sc, err := ParseScope(s)
			if err != nil {
				return nil, cerr(at("scopes"), fmt.Sprintf("%s.scopes[%d]", path, j), "%v", err)
			}
			t.Scopes = append(t.Scopes, sc)
		}
		tokens = append(tokens, t)
	}
	for _, f := range []struct{ path, file string }{{"tls.cert", fc.TLS.Cert}, {"tls.key", fc.TLS.Key}} {
		if (fc.TLS.Cert == "") != (fc.TLS.Key == "") {
			return nil, cerr(keyLines["tls"], "tls", "give both cert and key, or neither")
		}
		if f.file == "" {
			continue
		}
		if _, err := os.Stat(f.file); err != nil {
			return nil, cerr(keyLines["tls"], f.path, "%v", err)
		}
	}

	reg := opts.Registry
	if reg == nil {
		reg = DefaultRegistry()
	}
	regs, err := sources.Build(scfg, reg)
	if err != nil {
		return nil, err
	}
	store, err := OpenStore(fc.Store)
	if err != nil {
		return nil, cerr(keyLines["store"], "store", "%v", err)
	}
	fail := func(err error) (*Daemon, error) {
		store.Close()
		return nil, err
	}
	var ov *overrides.Source
	agg := scfg.Aggregator
	agg.Logger = opts.Logger
	if !fc.Overrides.Disabled {
		for _, r := range regs {
			if r.Source.Name() == overrides.DefaultName {
				return fail(cerr(keyLines["sources"], "sources", "a source is named %q, the built-in overrides source's name: rename it or set overrides.disabled", overrides.DefaultName))
			}
		}
		ov, err = overrides.New(ctx, overrides.Config{Store: store, MaxTTL: fc.Overrides.MaxTTL})
		if err != nil {
			return fail(cerr(keyLines["overrides"], "overrides", "%v", err))
		}
		interval := fc.Overrides.Interval
		if interval == 0 {
			interval = DefaultOverridesInterval
		}
		regs = append(regs, sources.Registered{Source: ov, Interval: interval, Retries: -1})
		agg.Precedence = withOverridesFirst(agg.Precedence, ov.Name())
	}
	ix := disposition.NewIndex()
	a, err := sources.NewAggregator(ix, agg, regs...)
	if err != nil {
		return fail(fmt.Errorf("%s: %w", name, err))
	}
	cfg := Config{
		Index: ix, Updater: a, Store: store, Tokens: tokens, Overrides: ov,
		Planner: RolloutPlanner(),
		Addr:    fc.Listen, TLSCertFile: fc.TLS.Cert, TLSKeyFile: fc.TLS.Key,
		MaxBodyBytes: fc.Limits.MaxBodyBytes, ReadTimeout: fc.Limits.ReadTimeout,
		WriteTimeout: fc.Limits.WriteTimeout, IdleTimeout: fc.Limits.IdleTimeout,
		ShutdownTimeout: fc.Limits.ShutdownTimeout,
		Logger:          opts.Logger, Registry: opts.Metrics,
	}
	if opts.Addr != "" {
		cfg.Addr = opts.Addr
	}
	d := &Daemon{store: store}
	fail = func(err error) (*Daemon, error) {
		d.Close()
		return nil, err
	}
	if !fc.Rollout.Disabled {
		rootLine := keyLines["rollout"]
		if rootLine == 0 {
			rootLine = max(keyLines["store"], 1)
		}
		rn := valueOf(root, "rollout")
		at := func(key string) int {
			if rn != nil {
				if v := valueOf(rn, key); v != nil {
					return v.Line
				}
			}
			return rootLine
		}
		if fc.Rollout.DeployAttempts < 0 {
			return fail(cerr(at("deploy_attempts"), "rollout.deploy_attempts", "must not be negative, got %d", fc.Rollout.DeployAttempts))
		}
		if fc.Rollout.DeployBackoff < 0 {
			return fail(cerr(at("deploy_backoff"), "rollout.deploy_backoff", "must not be negative, got %v", fc.Rollout.DeployBackoff))
		}
		dep, typ, err := newDeployer(name, &fc.Rollout.Deployer, at("deployer"), opts.Logger)
		if err != nil {
			return fail(err)
		}
		path := fc.Rollout.Store
		if path == "" {
			path = filepath.Join(filepath.Dir(fc.Store), DefaultRolloutStoreFile)
		}
		if path == fc.Store {
			return fail(cerr(at("store"), "rollout.store", "must not be refd's own store file %s", fc.Store))
		}
		d.rollouts, err = boltstore.Open(path, nil)
		if err != nil {
			return fail(cerr(at("store"), "rollout.store", "%v", err))
		}
		runner, err := NewRolloutRunner(RolloutRunnerConfig{
			Store: d.rollouts, Fleet: ix, Deployer: dep, Logger: opts.Logger,
			DeployAttempts: fc.Rollout.DeployAttempts, DeployBackoff: fc.Rollout.DeployBackoff,
		})
		if err != nil {
			return fail(cerr(rootLine, "rollout", "%v", err))
		}
		cfg.Runner, d.Deployer = runner, typ
	}
	if fc.Formulas.Control != "" {
		f, err := NewFormulasService(ctx, fc.Formulas)
		if err != nil {
			return fail(cerr(keyLines["formulas"], "formulas", "%v", err))
		}
		cfg.Formulas = f
	}
	srv, err := New(cfg)
	if err != nil {
		return fail(fmt.Errorf("%s: %w", name, err))
	}
	d.Server = srv
	for _, r := range regs {
		d.Sources = append(d.Sources, r.Source.Name())
	}
	return d, nil
}

// valueOf returns the value of key in mapping n, or nil.
func valueOf(n *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// withOverridesFirst gives the overrides source the highest precedence
// for state and release_state, unless the configuration already places
// it for that field.
func withOverridesFirst(prec map[disposition.Field][]string, name string) map[disposition.Field][]string {
	out := make(map[disposition.Field][]string, len(prec)+2)
	for f, l := range prec {
		out[f] = l
	}
	for _, f := range []disposition.Field{disposition.FieldState, disposition.FieldReleaseState} {
		if !slices.Contains(out[f], name) {
			out[f] = append([]string{name}, out[f]...)
		}
	}
	return out
}
