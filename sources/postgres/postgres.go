package postgres

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"go.yaml.in/yaml/v3"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/sources"
)

// Defaults for Options fields left zero.
const (
	DefaultIDColumn = "id"
	DefaultTimeout  = 30 * time.Second
	DefaultMaxRows  = 2_000_000
)

// Whole-map targets for JSON object columns.
const (
	// TargetLabels takes every entry of a JSON object column as a label.
	TargetLabels = "labels"
	// TargetVersions takes every entry of a JSON object column as a
	// component's version.
	TargetVersions = "versions"
)

// ErrColumns is wrapped by errors about the query's result columns: no ID
// column, or a column the mapping does not place. Retrying does not help;
// the query or the mapping must change.
var ErrColumns = errors.New("result columns do not match the mapping")

// Querier runs a query; *pgx.Conn and *pgxpool.Pool are Queriers.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Options configure a PostgreSQL source.
type Options struct {
	// DSN is the connection string, as a URL
	// (postgres://user@host:5432/db?sslmode=verify-full) or key=value
	// pairs; libpq's environment variables fill in what it leaves out.
	// The source connects for each fetch and disconnects after. Not
	// needed with WithQuerier.
	DSN string `yaml:"dsn"`
	// Query is the SQL query; each row is one node.
	Query string `yaml:"query"`
	// IDColumn is the result column holding the node ID; default
	// DefaultIDColumn. Rows whose ID is NULL or empty are skipped.
	IDColumn string `yaml:"id_column"`
	// Columns maps result columns to targets: a disposition field name
	// ("metro", "traffic_gbps"), "label.<key>", "version.<component>",
	// TargetLabels or TargetVersions (for a JSON object column), or ""
	// to ignore the column. A column not in Columns maps to the target of
	// its own name, so a query can simply name its columns like the
	// fields: select host as id, dc as site, ... A column that is
	// neither mapped nor named like a target is an error (ErrColumns).
	Columns map[string]string `yaml:"columns"`
	// Timeout bounds each fetch, connection included; default
	// DefaultTimeout.
	Timeout time.Duration `yaml:"timeout"`
	// MaxRows bounds the rows read per fetch; default DefaultMaxRows.
	MaxRows int `yaml:"max_rows"`
}

// Source reads nodes from a SQL query. NULL is unknown: a NULL column
// leaves its field unknown for that row. Rows with the same ID are merged,
// later rows winning. It is safe for concurrent use when its Querier is.
type Source struct {
	name string
	opts Options
	db   Querier
}

// Option changes how New builds a Source.
type Option func(*Source)

// WithQuerier makes the source run its query on q (a connection or a
// pool the caller owns) instead of connecting to Options.DSN.
func WithQuerier(q Querier) Option { return func(s *Source) { s.db = q } }

// New returns a PostgreSQL source named name. It checks opts (not the
// connection, which is made at each fetch); an error is a
// *sources.ConfigError whose Path names the first bad option.
func New(name string, opts Options, options ...Option) (*Source, error) {
	bad := func(field, format string, args ...any) error {
		return &sources.ConfigError{Path: field, Err: fmt.Errorf(format, args...)}
	}
	if name == "" {
		return nil, bad("name", "empty")
	}
	s := &Source{name: name}
	for _, o := range options {
		o(s)
	}
	if s.db == nil {
		if opts.DSN == "" {
			return nil, bad("dsn", "empty")
		}
		if _, err := pgx.ParseConfig(opts.DSN); err != nil {
			return nil, bad("dsn", "%v", err)
		}
	}
	if strings.TrimSpace(opts.Query) == "" {
		return nil, bad("query", "empty")
	}
	if opts.IDColumn == "" {
		opts.IDColumn = DefaultIDColumn
	}
	for col, target := range opts.Columns {
		if col == opts.IDColumn {
			return nil, bad("columns", "%s is the ID column", col)
		}
		if err := checkTarget(target); err != nil {
			return nil, bad("columns", "%s: %v", col, err)
		}
	}
	switch {
	case opts.Timeout == 0:
		opts.Timeout = DefaultTimeout
	case opts.Timeout < 0:
		return nil, bad("timeout", "must be positive, got %s", opts.Timeout)
	}
	switch {
	case opts.MaxRows == 0:
		opts.MaxRows = DefaultMaxRows
	case opts.MaxRows < 0:
		return nil, bad("max_rows", "must be positive, got %d", opts.MaxRows)
	}
	s.opts = opts
	return s, nil
}

func checkTarget(t string) error {
	if t == "" || t == TargetLabels || t == TargetVersions {
		return nil
	}
	_, _, err := sources.ParseFieldName(t)
	return err
}

// Factory makes a PostgreSQL source from its YAML options, for a
// sources.Registry.
func Factory(name string, options *yaml.Node) (sources.Source, error) {
	return sources.Decode(name, options, func(n string, o Options) (*Source, error) { return New(n, o) })
}

// Name returns the source's name.
func (s *Source) Name() string { return s.name }

// column is where one result column goes.
type column struct {
	name   string
	id     bool
	skip   bool
	whole  disposition.Field // FieldLabels or FieldVersions for a whole map
	field  disposition.Field
	key    string
	target string
}

// plan maps the result columns to targets.
func (s *Source) plan(names []string) ([]column, error) {
	if !slices.Contains(names, s.opts.IDColumn) {
		return nil, fmt.Errorf("%w: no ID column %q among %s", ErrColumns, s.opts.IDColumn, strings.Join(names, ", "))
	}
	cols := make([]column, len(names))
	for i, n := range names {
		c := column{name: n}
		target, mapped := s.opts.Columns[n]
		if !mapped {
			target = n
		}
		switch {
		case n == s.opts.IDColumn:
			c.id = true
		case target == "":
			c.skip = true
		case target == TargetLabels:
			c.whole = disposition.FieldLabels
		case target == TargetVersions:
			c.whole = disposition.FieldVersions
		default:
			f, key, err := sources.ParseFieldName(target)
			if err != nil {
				return nil, fmt.Errorf("%w: column %q: %v (map it in columns, or to \"\" to ignore it)", ErrColumns, n, err)
			}
			c.field, c.key = f, key
		}
		c.target = target
		cols[i] = c
	}
	return cols, nil
}

// Fetch runs the query and returns one Observation per distinct ID, in
// the order the IDs first appear.
func (s *Source) Fetch(ctx context.Context) ([]sources.Observation, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	db := s.db
	if db == nil {
		conn, err := pgx.Connect(ctx, s.opts.DSN)
		if err != nil {
			return nil, fmt.Errorf("postgres: connect: %w", err)
		}
		defer conn.Close(context.Background())
		db = conn
	}
	rows, err := db.Query(ctx, s.opts.Query)
	if err != nil {
		return nil, fmt.Errorf("postgres: query: %w", err)
	}
	defer rows.Close()
	fds := rows.FieldDescriptions()
	names := make([]string, len(fds))
	for i, fd := range fds {
		names[i] = fd.Name
	}
	cols, err := s.plan(names)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	var out []sources.Observation
	at := map[string]int{}
	for n := 1; rows.Next(); n++ {
		if n > s.opts.MaxRows {
			return nil, fmt.Errorf("postgres: more than %d rows (max_rows)", s.opts.MaxRows)
		}
		vals, err := rows.Values()
		if err != nil {
			return nil, fmt.Errorf("postgres: row %d: %w", n, err)
		}
		o, err := observeRow(cols, vals)
		if err != nil {
			return nil, fmt.Errorf("postgres: row %d: %w", n, err)
		}
		if o == nil {
			continue
		}
		if i, ok := at[o.ID]; ok {
			merge(&out[i], o)
			continue
		}
		at[o.ID] = len(out)
		out = append(out, *o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: query: %w", err)
	}
	return out, nil
}

// observeRow makes the Observation of one row, or nil for a row without
// an ID.
func observeRow(cols []column, vals []any) (*sources.Observation, error) {
	var o *sources.Observation
	for i, c := range cols {
		if c.id {
			if vals[i] == nil {
				return nil, nil
			}
			id, err := text(vals[i])
			if err != nil {
				return nil, fmt.Errorf("column %q: %w", c.name, err)
			}
			if id == "" {
				return nil, nil
			}
			o = sources.Observe(id)
		}
	}
	for i, c := range cols {
		v := vals[i]
		if c.id || c.skip || v == nil {
			continue
		}
		if c.whole != 0 {
			m, ok := v.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("column %q: %s needs a JSON object, got %T", c.name, c.target, v)
			}
			for _, k := range slices.Sorted(maps.Keys(m)) {
				if m[k] == nil {
					continue
				}
				t, err := text(m[k])
				if err != nil {
					return nil, fmt.Errorf("column %q: key %q: %w", c.name, k, err)
				}
				if err := o.Set(c.whole, k, t); err != nil {
					return nil, fmt.Errorf("column %q: key %q: %w", c.name, k, err)
				}
			}
			continue
		}
		t, err := text(v)
		if err != nil {
			return nil, fmt.Errorf("column %q: %w", c.name, err)
		}
		if err := o.Set(c.field, c.key, t); err != nil {
			return nil, fmt.Errorf("column %q (%s): %w", c.name, c.target, err)
		}
	}
	return o, nil
}

// merge copies the known fields of b over a.
func merge(a, b *sources.Observation) {
	for _, f := range disposition.Fields() {
		if !b.Known.Has(f) {
			continue
		}
		switch f {
		case disposition.FieldLabels:
			for k, v := range b.Values.Labels {
				a.Label(k, v)
			}
		case disposition.FieldVersions:
			for k, v := range b.Values.Versions {
				a.Version(k, v)
			}
		default:
			disposition.CopyField(&a.Values, &b.Values, f)
		}
	}
	a.Known |= b.Known
}

// text renders a decoded column value as the text Observation.Set reads.
func text(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case []byte:
		return string(v), nil
	case bool:
		return strconv.FormatBool(v), nil
	case int8, int16, int32, int64, int, uint8, uint16, uint32, uint64, uint:
		return fmt.Sprint(v), nil
	case float32:
		return strconv.FormatFloat(float64(v), 'g', -1, 32), nil
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64), nil
	case pgtype.Numeric:
		if !v.Valid {
			return "", nil
		}
		f, err := v.Float64Value()
		if err != nil || !f.Valid {
			return "", fmt.Errorf("numeric does not fit a float64")
		}
		if math.IsNaN(f.Float64) {
			return "NaN", nil
		}
		return strconv.FormatFloat(f.Float64, 'g', -1, 64), nil
	case time.Time:
		return v.UTC().Format(time.RFC3339Nano), nil
	case [16]byte: // uuid
		h := hex.EncodeToString(v[:])
		return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], nil
	case fmt.Stringer:
		return v.String(), nil
	case map[string]any:
		return "", errors.New("a JSON object is not one value (map it to labels or versions)")
	case []any:
		return "", errors.New("an array is not one value")
	}
	return "", fmt.Errorf("unsupported type %T", v)
}
