package refd

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/sources/overrides"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultAddr              = "127.0.0.1:8080"
	DefaultMaxBodyBytes      = 1 << 20
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultWriteTimeout      = 60 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultShutdownTimeout   = 10 * time.Second
	DefaultAuditLimit        = 100
)

// Config configures a Server. Index, Store and Tokens are required; every
// other field has a documented zero value.
type Config struct {
	// Index is the disposition index the API serves. Required.
	Index *disposition.Index
	// Updater keeps Index up to date from the sources while the server
	// runs, and reports their status: a *sources.Aggregator. Nil: Index
	// is served as it is, /v1/sources is empty and the server is ready at
	// once.
	Updater Updater
	// Store keeps the audit log and the rollouts. Required; the caller
	// owns it and closes it after the server.
	Store *Store
	// Tokens are the bearer tokens the API accepts. At least one.
	Tokens []Token
	// Overrides is the manual overrides source that /v1/overrides edits.
	// Nil: those routes answer 501.
	Overrides *overrides.Source
	// Planner plans rollout specs. Nil: the rollout routes that plan
	// answer 501.
	Planner Planner
	// Runner drives created rollouts (NewRolloutRunner), while Run or
	// Serve runs; each rollout's record in Store is then a view of the
	// runner's log. Nil: rollouts are recorded and their state machine
	// (pause, resume, abort, rollback, promote) is kept in Store, but
	// nothing is deployed, and skip and pin answer 501.
	Runner Runner
	// Formulas answers the /v1/formulas routes. Nil: they answer 501.
	Formulas Formulas

	// Addr is the TCP address Run listens on; "" means DefaultAddr. A
	// port of 0 picks a free one, logged as "listening".
	Addr string
	// TLSCertFile and TLSKeyFile, both set, make Run serve HTTPS. Both
	// empty: plain HTTP (put refd behind a TLS proxy).
	TLSCertFile string
	TLSKeyFile  string
	// MaxBodyBytes caps request bodies (413 past it); 0 means
	// DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// HTTP server timeouts; 0 means the Default*Timeout constants.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	// ShutdownTimeout bounds the graceful shutdown when Run's context
	// ends; 0 means DefaultShutdownTimeout.
	ShutdownTimeout time.Duration

	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
	// Registry receives the server's metrics and is what /metrics serves;
	// nil means a new registry of the server's own (Server.Registry).
	Registry *prometheus.Registry
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// ConfigError reports an invalid Config field.
type ConfigError struct {
	Field string
	Err   error
}

// Error implements the error interface.
func (e *ConfigError) Error() string { return fmt.Sprintf("refd: Config.%s: %v", e.Field, e.Err) }

// Unwrap returns the underlying error, for errors.Is and errors.As.
func (e *ConfigError) Unwrap() error { return e.Err }

// validate checks c and returns it with defaults applied, and its tokens
// parsed.
func (c Config) validate() (Config, []authToken, error) {
	bad := func(field string, format string, args ...any) error {
		return &ConfigError{Field: field, Err: fmt.Errorf(format, args...)}
	}
	if c.Index == nil {
		return c, nil, bad("Index", "required")
	}
	if c.Store == nil {
		return c, nil, bad("Store", "required")
	}
	if len(c.Tokens) == 0 {
		return c, nil, bad("Tokens", "at least one token is required")
	}
	names := map[string]bool{}
	toks := make([]authToken, len(c.Tokens))
	for i, t := range c.Tokens {
		field := fmt.Sprintf("Tokens[%d]", i)
		if t.Name == "" {
			return c, nil, bad(field+".Name", "required")
		}
		if names[t.Name] {
			return c, nil, bad(field+".Name", "duplicate token name %q", t.Name)
		}
		names[t.Name] = true
		h, err := parseHash(t.Hash)
		if err != nil {
			return c, nil, bad(field+".Hash", "%v", err)
		}
		if len(t.Scopes) == 0 {
			return c, nil, bad(field+".Scopes", "at least one scope is required")
		}
		for j, sc := range t.Scopes {
			if _, err := ParseScope(string(sc)); err != nil {
				return c, nil, bad(fmt.Sprintf("%s.Scopes[%d]", field, j), "%v", err)
			}
		}
		toks[i] = authToken{name: t.Name, hash: h, scopes: t.Scopes}
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		if c.TLSCertFile == "" {
			return c, nil, bad("TLSCertFile", "required when TLSKeyFile is set")
		}
		return c, nil, bad("TLSKeyFile", "required when TLSCertFile is set")
	}
	for _, f := range []struct {
		name string
		path string
	}{{"TLSCertFile", c.TLSCertFile}, {"TLSKeyFile", c.TLSKeyFile}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			return c, nil, bad(f.name, "%v", err)
		}
	}
	if c.MaxBodyBytes < 0 {
		return c, nil, bad("MaxBodyBytes", "must not be negative, got %d", c.MaxBodyBytes)
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"ReadHeaderTimeout", &c.ReadHeaderTimeout, DefaultReadHeaderTimeout},
		{"ReadTimeout", &c.ReadTimeout, DefaultReadTimeout},
		{"WriteTimeout", &c.WriteTimeout, DefaultWriteTimeout},
		{"IdleTimeout", &c.IdleTimeout, DefaultIdleTimeout},
		{"ShutdownTimeout", &c.ShutdownTimeout, DefaultShutdownTimeout},
	} {
		if *d.v < 0 {
			return c, nil, bad(d.name, "must not be negative, got %v", *d.v)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.Registry == nil {
		c.Registry = prometheus.NewRegistry()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, toks, nil
}

// ErrNotRunning is returned by Server.Addr before Run has bound its
// listener.
var ErrNotRunning = errors.New("refd: server is not listening")
