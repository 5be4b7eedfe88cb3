package sources

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/fleetkit/fleetkit/disposition"
)

// Config is a sources configuration as read from YAML by ParseConfig:
//
//	sources:
//	  - name: inventory
//	    type: file
//	    authoritative: true
//	    interval: 30s
//	    timeout: 10s
//	    max_stale: 10m
//	    options: {path: /etc/fleet/inventory.csv}
//	  - name: traffic
//	    type: prometheus
//	    interval: 15s
//	    max_stale: 2m
//	    retries: 2
//	    backoff: 1s
//	    options: {url: "http://prom:9090"}
//	precedence:
//	  state: [overrides, maas, netbox]
//	  health: [alertmanager, prometheus]
//	removal_guard: 0.10
//	grace: 15m
//	concurrency: 4
//	jitter: 0.1
//
// The top-level keys other than sources are the fields of
// AggregatorConfig, with the same meaning and defaults (zero or absent
// means the default; a negative grace or jitter means none). The keys of
// precedence are field names; sources not listed for a field follow the
// listed ones in configuration order.
type Config struct {
	// File is the name the configuration was read from, used in errors.
	File string
	// Sources are the configured sources, in order. Their order is the
	// default precedence.
	Sources []SourceConfig
	// Aggregator holds precedence, removal_guard, grace, concurrency and
	// jitter. Its Clock, Seed and Logger are for the caller to set.
	Aggregator AggregatorConfig
}

// SourceConfig is one entry of Config.Sources. The durations and retry
// settings have the defaults documented on Registered.
type SourceConfig struct {
	// Name identifies the source in provenance, precedence and status.
	Name string
	// Type selects the Factory in the Registry, e.g. "file".
	Type          string
	Authoritative bool
	Interval      time.Duration
	Timeout       time.Duration
	MaxStale      time.Duration
	Retries       int
	Backoff       time.Duration
	// Options is the source's options node, decoded by its Factory; nil
	// when the entry has none.
	Options *yaml.Node

	line, typeLine int // where the entry and its type are, for Build's errors
}

// Factory makes a Source of one type from its name and its options node
// (nil when the configuration gives none). Adapters provide one, e.g.
// file.Factory; errors should be *ConfigError values, as DecodeOptions
// returns, so that the final error names the line.
type Factory func(name string, options *yaml.Node) (Source, error)

// Registry maps source types, as written in the configuration's type
// key, to their factories. The caller builds it; there is no global
// registry:
//
//	reg := sources.Registry{"file": file.Factory, "httpjson": httpjson.Factory}
type Registry map[string]Factory

// rawSource is the YAML shape of one source entry.
type rawSource struct {
	Name          string        `yaml:"name"`
	Type          string        `yaml:"type"`
	Authoritative bool          `yaml:"authoritative"`
	Interval      time.Duration `yaml:"interval"`
	Timeout       time.Duration `yaml:"timeout"`
	MaxStale      time.Duration `yaml:"max_stale"`
	Retries       int           `yaml:"retries"`
	Backoff       time.Duration `yaml:"backoff"`
	Options       yaml.Node     `yaml:"options"`
}

// rawConfig is the YAML shape of a configuration. Sources and
// precedence are kept as nodes so that later checks can name lines.
type rawConfig struct {
	Sources      yaml.Node     `yaml:"sources"`
	Precedence   yaml.Node     `yaml:"precedence"`
	RemovalGuard float64       `yaml:"removal_guard"`
	Grace        time.Duration `yaml:"grace"`
	Concurrency  int           `yaml:"concurrency"`
	Jitter       float64       `yaml:"jitter"`
}

// ParseConfig parses a sources configuration. name is the file name used
// in errors. Unknown keys, values of the wrong type, duplicate or unknown
// source names, fields that do not exist and out-of-range numbers are
// errors; they are *ConfigError values naming the file, the line and the
// field.
func ParseConfig(name string, data []byte) (*Config, error) {
	cerr := func(line int, path string, format string, args ...any) error {
		return &ConfigError{File: name, Line: line, Path: path, Err: fmt.Errorf(format, args...)}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, syntaxError(name, err)
	}
	if len(doc.Content) == 0 {
		return nil, cerr(0, "", "empty configuration")
	}
	var raw rawConfig
	if err := withFile(name, DecodeOptions(&doc, &raw)); err != nil {
		return nil, err
	}
	root := doc.Content[0]
	cfg := &Config{File: name, Aggregator: AggregatorConfig{
		RemovalGuard: raw.RemovalGuard,
		Grace:        raw.Grace,
		Concurrency:  raw.Concurrency,
		Jitter:       raw.Jitter,
	}}
	if g := raw.RemovalGuard; !(g >= 0 && g <= 1) {
		return nil, cerr(keyLine(root, "removal_guard"), "removal_guard", "%v is not a fraction between 0 and 1", g)
	}
	if j := raw.Jitter; !(j < 1) {
		return nil, cerr(keyLine(root, "jitter"), "jitter", "%v is not a fraction below 1", j)
	}
	if raw.Concurrency < 0 {
		return nil, cerr(keyLine(root, "concurrency"), "concurrency", "must not be negative")
	}

	srcs := &raw.Sources
	if srcs.Kind == 0 || srcs.ShortTag() == "!!null" || (srcs.Kind == yaml.SequenceNode && len(srcs.Content) == 0) {
		return nil, cerr(keyLine(root, "sources"), "sources", "at least one source is required")
	}
	if srcs.Kind != yaml.SequenceNode {
		return nil, cerr(srcs.Line, "sources", "expected a list, got %s", kindName(srcs))
	}
	byName := map[string]int{}
	authoritative := false
	for i, n := range srcs.Content {
		path := fmt.Sprintf("sources[%d]", i)
		var rs rawSource
		if err := DecodeOptions(n, &rs); err != nil {
			var ce *ConfigError
			errors.As(err, &ce)
			return nil, &ConfigError{File: name, Line: ce.Line, Path: joinPath(path, ce.Path), Err: ce.Err}
		}
		for _, key := range []string{"name", "type"} {
			if keyLine(n, key) == 0 {
				return nil, cerr(n.Line, joinPath(path, key), "required")
			}
		}
		if rs.Name == "" || strings.ContainsFunc(rs.Name, func(r rune) bool { return r <= ' ' || r == ',' }) {
			return nil, cerr(keyLine(n, "name"), path+".name", "%q is not a valid source name (non-empty, no spaces or commas)", rs.Name)
		}
		if j, dup := byName[rs.Name]; dup {
			return nil, cerr(keyLine(n, "name"), path+".name", "%q is already the name of sources[%d]", rs.Name, j)
		}
		byName[rs.Name] = i
		if rs.Type == "" {
			return nil, cerr(keyLine(n, "type"), path+".type", "must not be empty")
		}
		for _, d := range []struct {
			key string
			v   time.Duration
		}{{"interval", rs.Interval}, {"timeout", rs.Timeout}, {"max_stale", rs.MaxStale}, {"backoff", rs.Backoff}} {
			if d.v < 0 {
				return nil, cerr(keyLine(n, d.key), path+"."+d.key, "must not be negative")
			}
		}
		sc := SourceConfig{
			Name: rs.Name, Type: rs.Type, Authoritative: rs.Authoritative,
			Interval: rs.Interval, Timeout: rs.Timeout, MaxStale: rs.MaxStale,
			Retries: rs.Retries, Backoff: rs.Backoff,
			line: n.Line, typeLine: keyLine(n, "type"),
		}
		if rs.Options.Kind != 0 && rs.Options.ShortTag() != "!!null" {
			opts := rs.Options
			sc.Options = &opts
		}
		authoritative = authoritative || rs.Authoritative
		cfg.Sources = append(cfg.Sources, sc)
	}
	if !authoritative {
		return nil, cerr(keyLine(root, "sources"), "sources", "no source is authoritative: set authoritative: true on the inventory that says which servers exist")
	}

	prec, err := parsePrecedence(name, &raw.Precedence, byName)
	if err != nil {
		return nil, err
	}
	cfg.Aggregator.Precedence = prec
	return cfg, nil
}

func parsePrecedence(file string, n *yaml.Node, byName map[string]int) (map[disposition.Field][]string, error) {
	if n.Kind == 0 || n.ShortTag() == "!!null" {
		return nil, nil
	}
	cerr := func(line int, path string, format string, args ...any) error {
		return &ConfigError{File: file, Line: line, Path: path, Err: fmt.Errorf(format, args...)}
	}
	if n.Kind != yaml.MappingNode {
		return nil, cerr(n.Line, "precedence", "expected a mapping of field to source names, got %s", kindName(n))
	}
	prec := map[disposition.Field][]string{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		path := "precedence." + k.Value
		f, err := disposition.ParseField(k.Value)
		if err != nil || f == disposition.FieldID {
			valid := make([]string, 0, nFields-1)
			for _, f := range disposition.Fields()[1:] {
				valid = append(valid, f.String())
			}
			return nil, cerr(k.Line, path, "unknown field (valid: %s)", strings.Join(valid, ", "))
		}
		if _, dup := prec[f]; dup {
			return nil, cerr(k.Line, path, "duplicate key")
		}
		var names []string
		if err := DecodeOptions(v, &names); err != nil {
			return nil, withPath(file, path, err)
		}
		for j, s := range names {
			if _, ok := byName[s]; !ok {
				return nil, cerr(v.Content[j].Line, fmt.Sprintf("%s[%d]", path, j), "unknown source %q (sources: %s)", s, strings.Join(slices.Sorted(maps.Keys(byName)), ", "))
			}
			if slices.Index(names, s) < j {
				return nil, cerr(v.Content[j].Line, fmt.Sprintf("%s[%d]", path, j), "source %q listed twice", s)
			}
		}
		prec[f] = names
	}
	return prec, nil
}

// Build makes the sources cfg lists with the factories in reg. The
// result is ready for NewAggregator together with cfg.Aggregator. Errors
// name the file, line and source: an unknown type, or whatever the
// source's factory rejected.
func Build(cfg *Config, reg Registry) ([]Registered, error) {
	out := make([]Registered, 0, len(cfg.Sources))
	for i, sc := range cfg.Sources {
		path := fmt.Sprintf("sources[%d]", i)
		f := reg[sc.Type]
		if f == nil {
			return nil, &ConfigError{File: cfg.File, Line: sc.typeLine, Path: path + ".type",
				Err: fmt.Errorf("unknown source type %q (registered: %s)", sc.Type, strings.Join(slices.Sorted(maps.Keys(reg)), ", "))}
		}
		src, err := f(sc.Name, sc.Options)
		if err != nil {
			line := sc.line
			if sc.Options != nil {
				line = sc.Options.Line
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				ce = &ConfigError{Line: line, Err: err}
			}
			if ce.Line == 0 {
				ce = &ConfigError{Line: line, Path: ce.Path, Err: ce.Err}
			}
			return nil, &ConfigError{File: cfg.File, Line: ce.Line, Path: joinPath(path+".options", ce.Path), Err: ce.Err}
		}
		if src == nil {
			return nil, &ConfigError{File: cfg.File, Line: sc.line, Path: path, Err: fmt.Errorf("factory for type %q returned no source", sc.Type)}
		}
		if src.Name() != sc.Name {
			return nil, &ConfigError{File: cfg.File, Line: sc.line, Path: path + ".name",
				Err: fmt.Errorf("factory for type %q named the source %q instead of %q", sc.Type, src.Name(), sc.Name)}
		}
		out = append(out, Registered{
			Source: src, Authoritative: sc.Authoritative,
			Interval: sc.Interval, Timeout: sc.Timeout, MaxStale: sc.MaxStale,
			Retries: sc.Retries, Backoff: sc.Backoff,
		})
	}
	return out, nil
}

// keyLine returns the line of key in mapping n, or 0.
func keyLine(n *yaml.Node, key string) int {
	if n.Kind != yaml.MappingNode {
		return 0
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i].Line
		}
	}
	return 0
}

// withFile sets the file name on a *ConfigError.
func withFile(file string, err error) error {
	var ce *ConfigError
	if err == nil || !errors.As(err, &ce) {
		return err
	}
	return &ConfigError{File: file, Line: ce.Line, Path: ce.Path, Err: ce.Err}
}

// withPath sets the file name and prefixes the path of a *ConfigError.
func withPath(file, prefix string, err error) error {
	var ce *ConfigError
	if !errors.As(err, &ce) {
		return &ConfigError{File: file, Path: prefix, Err: err}
	}
	p := prefix
	if ce.Path != "" {
		if strings.HasPrefix(ce.Path, "[") {
			p += ce.Path
		} else {
			p = joinPath(prefix, ce.Path)
		}
	}
	return &ConfigError{File: file, Line: ce.Line, Path: p, Err: ce.Err}
}
