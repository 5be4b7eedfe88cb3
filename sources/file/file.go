package file

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"

	"github.com/fleetkit/fleetkit/sources"
)

// Format is the syntax of an inventory file.
type Format string

// The formats a file can be in.
const (
	CSV  Format = "csv"
	JSON Format = "json"
	YAML Format = "yaml"
)

// ErrUnknownFormat is returned when the format is neither given nor
// implied by the file's extension.
var ErrUnknownFormat = errors.New("unknown file format")

// Options configure a file source; in YAML, the source's options.
type Options struct {
	// Path is the file to read. Required.
	Path string `yaml:"path"`
	// Format is csv, json or yaml; empty means from Path's extension.
	Format Format `yaml:"format"`
}

// Source is a file-backed inventory. It is safe for concurrent use.
type Source struct {
	name   string
	path   string
	format Format

	mu   sync.Mutex
	info os.FileInfo // of the file the cached observations came from
	obs  []sources.Observation
}

// New returns a source reading the file opts names. The file need not
// exist yet: Fetch reports it missing.
func New(name string, opts Options) (*Source, error) {
	if name == "" {
		return nil, errors.New("file: empty source name")
	}
	if opts.Path == "" {
		return nil, errors.New("path: required")
	}
	f := opts.Format
	if f == "" {
		switch strings.ToLower(filepath.Ext(opts.Path)) {
		case ".csv":
			f = CSV
		case ".json":
			f = JSON
		case ".yaml", ".yml":
			f = YAML
		default:
			return nil, fmt.Errorf("format: %w: set format: csv, json or yaml for %q", ErrUnknownFormat, opts.Path)
		}
	}
	switch f {
	case CSV, JSON, YAML:
	default:
		return nil, fmt.Errorf("format: %w %q (valid: csv, json, yaml)", ErrUnknownFormat, f)
	}
	return &Source{name: name, path: opts.Path, format: f}, nil
}

// Factory makes a file source from its YAML options, for a
// sources.Registry.
func Factory(name string, options *yaml.Node) (sources.Source, error) {
	return sources.Decode(name, options, New)
}

// Name returns the source's name.
func (s *Source) Name() string { return s.name }

// Fetch returns the file's observations. It reads and parses the file
// only when it changed since the last successful read (another file, size
// or modification time); otherwise it returns the same slice as before,
// which tells the aggregator that nothing changed. A file that does not
// parse is an error, and the aggregator keeps the last good read.
func (s *Source) Fetch(ctx context.Context) ([]sources.Observation, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := os.Open(s.path)
	if err != nil {
		return nil, fmt.Errorf("file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("file: %s is not a regular file", s.path)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.info != nil && os.SameFile(fi, s.info) && fi.Size() == s.info.Size() && fi.ModTime().Equal(s.info.ModTime()) {
		return s.obs, nil
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("file: reading %s: %w", s.path, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	obs, err := Parse(s.path, s.format, data)
	if err != nil {
		return nil, err
	}
	s.info, s.obs = fi, obs
	return obs, nil
}

// Parse parses an inventory in the given format. name is used in errors
// only.
func Parse(name string, format Format, data []byte) ([]sources.Observation, error) {
	switch format {
	case CSV:
		return ParseCSV(name, data)
	case JSON:
		return ParseJSON(name, data)
	case YAML:
		return ParseYAML(name, data)
	}
	return nil, fmt.Errorf("file: %w %q", ErrUnknownFormat, format)
}

// ParseError is a problem in an inventory file, with its position.
type ParseError struct {
	File string
	// Line and Column are 1-based; 0 when not known.
	Line, Column int
	// Field is the column or key, when the problem is in one.
	Field string
	Err   error
}

// Error implements the error interface.
func (e *ParseError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, ":%d", e.Column)
		}
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns the underlying error, for errors.Is and errors.As.
func (e *ParseError) Unwrap() error { return e.Err }
