package fleet

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/fleetkit/fleetkit/disposition"
)

// csvFields are the node fields of a CSV file, in the order WriteCSV
// writes them, before the version and label columns. Provenance has no
// column.
var csvFields = [...]disposition.Field{
	disposition.FieldID, disposition.FieldKind, disposition.FieldRegion,
	disposition.FieldMetro, disposition.FieldSite, disposition.FieldCluster,
	disposition.FieldRack, disposition.FieldTimezone, disposition.FieldRole,
	disposition.FieldPlatform, disposition.FieldState, disposition.FieldReleaseState,
	disposition.FieldHealth, disposition.FieldTraffic, disposition.FieldCapacity,
}

// The column name prefixes of versions and labels: "version.cdn-app",
// "label.tier".
const (
	versionPrefix = "version."
	labelPrefix   = "label."
)

// WriteCSV writes f.Nodes as CSV: a header row, then one row per node. The
// columns are id, kind, region, metro, site, cluster, rack, timezone, role,
// platform, state, release_state, health, traffic_gbps and capacity_gbps,
// then "version.<component>" for every component and "label.<key>" for
// every label key any node has, each group sorted. A node without a
// component or label has an empty cell. Provenance is not written.
func (f *Fleet) WriteCSV(w io.Writer) error {
	versions, labels := make(map[string]bool), make(map[string]bool)
	for _, n := range f.Nodes {
		for k := range n.Versions {
			versions[k] = true
		}
		for k := range n.Labels {
			labels[k] = true
		}
	}
	vkeys, lkeys := sortedKeys(versions), sortedKeys(labels)

	header := make([]string, 0, len(csvFields)+len(vkeys)+len(lkeys))
	for _, fld := range csvFields {
		header = append(header, fld.String())
	}
	for _, k := range vkeys {
		header = append(header, versionPrefix+k)
	}
	for _, k := range lkeys {
		header = append(header, labelPrefix+k)
	}

	bw := bufio.NewWriterSize(w, 64<<10)
	cw := csv.NewWriter(bw)
	if err := cw.Write(header); err != nil {
		return fmt.Errorf("fleet: CSV header: %w", err)
	}
	rec := make([]string, len(header))
	for _, n := range f.Nodes {
		for i, fld := range csvFields {
			rec[i] = csvValue(n, fld)
		}
		i := len(csvFields)
		for _, k := range vkeys {
			rec[i] = n.Versions[k]
			i++
		}
		for _, k := range lkeys {
			rec[i] = n.Labels[k]
			i++
		}
		if err := cw.Write(rec); err != nil {
			return fmt.Errorf("fleet: CSV node %q: %w", n.ID, err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("fleet: CSV: %w", err)
	}
	return bw.Flush()
}

func sortedKeys(m map[string]bool) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func csvValue(n *disposition.Node, f disposition.Field) string {
	if v, ok := n.Text(f); ok {
		return v
	}
	switch f {
	case disposition.FieldTraffic:
		return strconv.FormatFloat(n.TrafficGbps, 'f', -1, 64)
	case disposition.FieldCapacity:
		return strconv.FormatFloat(n.CapacityGbps, 'f', -1, 64)
	}
	return "" // unreachable: the round-trip tests cover every field of csvFields
}

// csvColumn is what one column of a CSV file holds: a node field, or one
// version component or label key.
type csvColumn struct {
	field          disposition.Field
	version, label string
}

func (c csvColumn) set(n *disposition.Node, v string, in interner) error {
	switch {
	case c.version != "":
		if v != "" {
			if n.Versions == nil {
				n.Versions = make(map[string]string, 2)
			}
			n.Versions[c.version] = in.str(v)
		}
		return nil
	case c.label != "":
		if v != "" {
			if n.Labels == nil {
				n.Labels = make(map[string]string, 2)
			}
			n.Labels[c.label] = in.str(v)
		}
		return nil
	}
	var err error
	switch c.field {
	case disposition.FieldID:
		n.ID = strings.Clone(v)
	case disposition.FieldKind:
		n.Kind, err = disposition.ParseKind(v)
	case disposition.FieldRegion:
		n.Region = in.str(v)
	case disposition.FieldMetro:
		n.Metro = in.str(v)
	case disposition.FieldSite:
		n.Site = in.str(v)
	case disposition.FieldCluster:
		n.Cluster = in.str(v)
	case disposition.FieldRack:
		n.Rack = in.str(v)
	case disposition.FieldTimezone:
		n.Timezone = in.str(v)
	case disposition.FieldRole:
		n.Role = in.str(v)
	case disposition.FieldPlatform:
		n.Platform = in.str(v)
	case disposition.FieldState:
		n.State, err = disposition.ParseState(v)
	case disposition.FieldReleaseState:
		n.ReleaseState = in.str(v)
	case disposition.FieldHealth:
		n.Health, err = disposition.ParseHealth(v)
	case disposition.FieldTraffic:
		n.TrafficGbps, err = parseGbps(v)
	case disposition.FieldCapacity:
		n.CapacityGbps, err = parseGbps(v)
	}
	return err
}

// parseGbps parses a traffic or capacity cell; empty is 0 (unknown).
func parseGbps(v string) (float64, error) {
	if v == "" {
		return 0, nil
	}
	x, err := strconv.ParseFloat(v, 64)
	switch {
	case err != nil:
		return 0, fmt.Errorf("want a number of Gbps, got %q", v)
	case math.IsNaN(x) || math.IsInf(x, 0) || x < 0:
		return 0, fmt.Errorf("want a finite, non-negative number of Gbps, got %q", v)
	}
	return x, nil
}

// csvColumnsHelp lists the valid column names for errors.
func csvColumnsHelp() string {
	names := make([]string, 0, len(csvFields)+2)
	for _, f := range csvFields {
		names = append(names, f.String())
	}
	return strings.Join(append(names, versionPrefix+"<component>", labelPrefix+"<key>"), ", ")
}

func parseCSVHeader(cr *csv.Reader, header []string) ([]csvColumn, error) {
	cols := make([]csvColumn, len(header))
	seen := make(map[string]bool, len(header))
	hasID := false
	for i, h := range header {
		line, col := cr.FieldPos(i)
		bad := func(format string, args ...any) error {
			return fmt.Errorf("fleet: CSV line %d, column %d (%q): %w", line, col, h, fmt.Errorf(format, args...))
		}
		if seen[h] {
			return nil, bad("duplicate column")
		}
		seen[h] = true
		switch {
		case strings.HasPrefix(h, versionPrefix):
			cols[i].version = strings.Clone(h[len(versionPrefix):])
			if cols[i].version == "" {
				return nil, bad("want %s<component>", versionPrefix)
			}
		case strings.HasPrefix(h, labelPrefix):
			cols[i].label = strings.Clone(h[len(labelPrefix):])
			if cols[i].label == "" {
				return nil, bad("want %s<key>", labelPrefix)
			}
		default:
			f, err := disposition.ParseField(h)
			if err != nil || !slices.Contains(csvFields[:], f) {
				return nil, bad("%w %q for column (valid: %s)", disposition.ErrUnknownValue, h, csvColumnsHelp())
			}
			cols[i].field = f
			hasID = hasID || f == disposition.FieldID
		}
	}
	if !hasID {
		line, _ := cr.FieldPos(0)
		return nil, fmt.Errorf("fleet: CSV line %d: no %q column", line, disposition.FieldID.String())
	}
	return cols, nil
}

// ReadCSV reads nodes from CSV as WriteCSV writes it. The header row names
// the columns, in any order; only id is required. Empty cells are unknown
// values (no version, no label, zero traffic). Every node must be valid
// (disposition.Node.Validate) and have a unique ID, and enumerations must
// hold known values. Errors name the line and column (in bytes, from 1).
func ReadCSV(r io.Reader) ([]*disposition.Node, error) {
	cr := csv.NewReader(bufio.NewReaderSize(r, 64<<10))
	cr.ReuseRecord = true
	rec, err := cr.Read()
	if err == io.EOF {
		return nil, errors.New("fleet: CSV line 1: empty input, want a header row")
	}
	if err != nil {
		return nil, csvReadError(err, 0)
	}
	header := make([]string, len(rec))
	for i, h := range rec {
		header[i] = strings.Clone(h)
	}
	cols, err := parseCSVHeader(cr, header)
	if err != nil {
		return nil, err
	}

	var (
		nodes    []*disposition.Node
		seen     = make(map[string]int) // ID -> line
		in       = make(interner)
		lastLine int
	)
	lastLine, _ = cr.FieldPos(0)
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, csvReadError(err, lastLine)
		}
		lastLine, _ = cr.FieldPos(0)
		at := func(i int, err error) error {
			line, col := cr.FieldPos(i)
			return fmt.Errorf("fleet: CSV line %d, column %d (%s): %w", line, col, header[i], err)
		}
		n := new(disposition.Node)
		for i, v := range rec {
			if err := cols[i].set(n, v, in); err != nil {
				return nil, at(i, err)
			}
		}
		if err := n.Validate(); err != nil {
			i := 0
			var fe *disposition.FieldError
			if errors.As(err, &fe) {
				i = max(0, slices.Index(header, fe.Field))
			}
			return nil, at(i, err)
		}
		if first, dup := seen[n.ID]; dup {
			return nil, at(slices.Index(header, disposition.FieldID.String()),
				fmt.Errorf("duplicate id %q (first on line %d)", n.ID, first))
		}
		seen[n.ID] = lastLine
		nodes = append(nodes, n)
	}
	return nodes, nil
}

// csvReadError wraps an error of the CSV reader; a csv.ParseError names
// its line itself.
func csvReadError(err error, lastLine int) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("fleet: CSV: %w", err)
	}
	return fmt.Errorf("fleet: CSV after line %d: %w", lastLine, err)
}
