package file_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/sources"
	"github.com/fleetkit/fleetkit/sources/file"
	"github.com/fleetkit/fleetkit/testkit/fleet"
)

// writeFleet writes f in the given format into dir.
func writeFleet(t *testing.T, f *fleet.Fleet, dir string, format file.Format) string {
	t.Helper()
	var buf bytes.Buffer
	switch format {
	case file.CSV:
		require.NoError(t, f.WriteCSV(&buf))
	case file.JSON:
		require.NoError(t, f.WriteJSON(&buf))
	case file.YAML:
		// YAML: the JSON form, re-encoded.
		var js bytes.Buffer
		require.NoError(t, f.WriteJSON(&js))
		var v []map[string]any
		require.NoError(t, json.Unmarshal(js.Bytes(), &v))
		out, err := yaml.Marshal(v)
		require.NoError(t, err)
		buf.Write(out)
	}
	path := filepath.Join(dir, "inventory."+string(format))
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
	return path
}

// TestGeneratedFleetRoundTrips reads a generated fleet back through the
// adapter and the aggregator into an index and compares every node with
// the generated one.
func TestGeneratedFleetRoundTrips(t *testing.T) {
	f, err := fleet.Generate(fleet.Config{Size: 2000, Seed: 3})
	require.NoError(t, err)
	for _, format := range []file.Format{file.CSV, file.JSON, file.YAML} {
		t.Run(string(format), func(t *testing.T) {
			path := writeFleet(t, f, t.TempDir(), format)
			src, err := file.New("inventory", file.Options{Path: path})
			require.NoError(t, err)
			ix := disposition.NewIndex()
			agg, err := sources.NewAggregator(ix, sources.AggregatorConfig{}, sources.Registered{Source: src, Authoritative: true})
			require.NoError(t, err)
			require.NoError(t, agg.Refresh(t.Context()))

			// Node has an Equal method, which cmp uses: compare copies
			// without provenance.
			var got []*disposition.Node
			require.NoError(t, ix.Snapshot().Scan(disposition.Query{}, func(n *disposition.Node) bool {
				require.Equal(t, "inventory", n.Provenance.Of(disposition.FieldMetro).Source)
				c := n.Clone()
				c.Provenance = disposition.Provenance{}
				got = append(got, c)
				return true
			}))
			require.Empty(t, cmp.Diff(f.Nodes, got))
			require.Equal(t, 2000, agg.Status()[0].Observations)
		})
	}
}

func TestEmptyCellIsUnknown(t *testing.T) {
	obs, err := file.ParseCSV("x.csv", []byte("id,metro,health,label.tier,version.app,traffic_gbps\na,DEN,,,,\nb,,down,1,2.0,0\n"))
	require.NoError(t, err)
	require.Len(t, obs, 2)
	a, b := obs[0], obs[1]
	require.True(t, a.Known.Has(disposition.FieldMetro))
	for _, f := range []disposition.Field{disposition.FieldHealth, disposition.FieldLabels, disposition.FieldVersions, disposition.FieldTraffic} {
		require.False(t, a.Known.Has(f), "field %s", f)
		require.True(t, b.Known.Has(f), "field %s", f)
	}
	require.False(t, b.Known.Has(disposition.FieldMetro))
	require.Equal(t, map[string]string{"tier": "1"}, b.Values.Labels)
	require.Equal(t, map[string]string{"app": "2.0"}, b.Values.Versions)
	require.Equal(t, disposition.HealthDown, b.Values.Health)
}

func TestJSONAbsentKeyIsUnknown(t *testing.T) {
	obs, err := file.ParseJSON("x.json", []byte(`[{"id":"a","metro":"DEN","health":null,"labels":{},"provenance":{"metro":{"source":"x","observed_at":"2026-01-01T00:00:00Z"}}},
	{"id":"b","traffic_gbps":1.5,"capacity_gbps":0,"versions":{"app":"1"},"state":"in-service","kind":"vm"}]`))
	require.NoError(t, err)
	require.Len(t, obs, 2)
	a, b := obs[0], obs[1]
	require.True(t, a.Known.Has(disposition.FieldMetro))
	require.False(t, a.Known.Has(disposition.FieldHealth), "null is unknown")
	require.True(t, a.Known.Has(disposition.FieldLabels), "an empty object is known: no labels")
	require.False(t, a.Known.Has(disposition.FieldTraffic))
	require.True(t, b.Known.Has(disposition.FieldCapacity))
	require.Equal(t, 1.5, b.Values.TrafficGbps)
	require.Equal(t, disposition.StateInService, b.Values.State)
	require.Equal(t, disposition.KindVM, b.Values.Kind)
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		format file.Format
		data   string
		want   string
	}{
		{"csv unknown column", file.CSV, "id,metro,colour\n", `f:1:10: colour: unknown column: unknown value "colour" for field`},
		{"csv bad enum", file.CSV, "id,health\na,ok\n", `f:2:3: health: unknown value "ok" for health (valid: unknown, healthy, degraded, down)`},
		{"csv bad number", file.CSV, "id,metro,traffic_gbps\na,DEN,fast\n", `f:2:7: traffic_gbps: "fast" is not a number`},
		{"csv negative", file.CSV, "id,capacity_gbps\na,-1\n", `f:2:3: capacity_gbps: -1 is not a non-negative number of Gbps`},
		{"csv duplicate id", file.CSV, "id\na\nb\na\n", `f:4:1: id: "a" already on line 2`},
		{"csv no id column", file.CSV, "metro\nDEN\n", `f:1: no "id" column`},
		{"csv empty id", file.CSV, "metro,id\nDEN,\n", `f:2:5: id: empty`},
		{"csv duplicate column", file.CSV, "id,metro,metro\n", `f:1:10: metro: duplicate column (also column 2)`},
		{"csv ragged", file.CSV, "id,metro\na\n", `f:2:1: wrong number of fields`},
		{"csv quote", file.CSV, "id,metro\na,\"DEN\n", `f:2:8: extraneous or missing " in quoted-field`},
		{"csv empty", file.CSV, "", `f:1: empty file: want a header row naming the columns`},
		{"csv labels column", file.CSV, "id,labels\n", `f:1:4: labels: unknown column: "labels" needs a key: use label.<key>`},
		{"json not array", file.JSON, `{"id":"a"}`, `f:1:1: want an array of nodes, got an object`},
		{"json unknown key", file.JSON, "[\n {\"id\":\"a\",\n  \"colour\":\"red\"}]", `f:3:3: colour: unknown key`},
		{"json wrong type", file.JSON, `[{"id":"a","metro":3}]`, `f:1:20: metro: want a string, got 3`},
		{"json number as string", file.JSON, `[{"id":"a","traffic_gbps":"3"}]`, `f:1:27: traffic_gbps: want a number, got "3"`},
		{"json bad enum", file.JSON, `[{"id":"a","state":"gone"}]`, `f:1:20: state: unknown value "gone" for lifecycle state`},
		{"json syntax", file.JSON, "[\n{\"id\":\"a\",}]", `f:2:11: invalid character '}' looking for beginning of object key string`},
		{"json truncated", file.JSON, "[{\"id\":\"a\"}", `f:1:12: unexpected EOF`},
		{"json trailing", file.JSON, "[]\n[]", `f:2:1: unexpected an array after the array`},
		{"json no id", file.JSON, `[{"metro":"DEN"}]`, `f:1:2: id: node 1 has no id`},
		{"json duplicate", file.JSON, "[{\"id\":\"a\"},\n{\"id\":\"a\"}]", `f:2:1: id: "a" already on line 1`},
		{"json duplicate key", file.JSON, `[{"id":"a","id":"b"}]`, `f:1:12: id: duplicate key`},
		{"json label not string", file.JSON, `[{"id":"a","labels":{"x":1}}]`, `f:1:26: labels.x: want a string, got the number 1`},
		{"json labels array", file.JSON, `[{"id":"a","labels":[]}]`, `f:1:21: labels: want an object of strings, got an array`},
		{"json node not object", file.JSON, `[1]`, `f:1:2: node 1: want an object, got the number 1`},
		{"yaml not list", file.YAML, "id: a\n", `f:1:1: want a list of nodes`},
		{"yaml unknown key", file.YAML, "- id: a\n  colour: red\n", `f:2:3: colour: unknown key`},
		{"yaml bad enum", file.YAML, "- id: a\n  kind: toaster\n", `f:2:9: kind: unknown value "toaster" for kind`},
		{"yaml no id", file.YAML, "- metro: DEN\n", `f:1:3: id: node 1 has no id`},
		{"yaml duplicate", file.YAML, "- id: a\n- id: a\n", `f:2:7: id: "a" already on line 1`},
		{"yaml syntax", file.YAML, "- id: [a\n", `f:1: did not find expected ',' or ']'`},
		{"yaml labels list", file.YAML, "- id: a\n  labels: [x]\n", `f:2:11: labels: want a mapping of strings`},
		{"yaml scalar wanted", file.YAML, "- id: a\n  metro: {x: 1}\n", `f:2:10: metro: want a scalar`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := file.Parse("f", tc.format, []byte(tc.data))
			require.Error(t, err)
			require.True(t, strings.HasPrefix(err.Error(), tc.want), "got  %s\nwant %s", err, tc.want)
			var pe *file.ParseError
			require.ErrorAs(t, err, &pe)
			require.Equal(t, "f", pe.File)
		})
	}
}

func TestYAMLInventory(t *testing.T) {
	obs, err := file.ParseYAML("x.yaml", []byte(`
- id: a
  metro: DEN
  rack: 12
  traffic_gbps: 2.5
  health: ~
  labels: {tier: "1"}
- id: b
  versions: {app: 3.1.4}
  provenance: {anything: [1]}
`))
	require.NoError(t, err)
	require.Len(t, obs, 2)
	require.Equal(t, "12", obs[0].Values.Rack)
	require.Equal(t, 2.5, obs[0].Values.TrafficGbps)
	require.False(t, obs[0].Known.Has(disposition.FieldHealth))
	require.Equal(t, map[string]string{"app": "3.1.4"}, obs[1].Values.Versions)
	empty, err := file.ParseYAML("x.yaml", nil)
	require.NoError(t, err)
	require.Empty(t, empty)
}

func TestFetchRereadsOnlyWhenChanged(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "inv.csv")
	require.NoError(t, os.WriteFile(path, []byte("id,metro\na,DEN\n"), 0o644))
	src, err := file.New("inv", file.Options{Path: path})
	require.NoError(t, err)
	first, err := src.Fetch(t.Context())
	require.NoError(t, err)
	again, err := src.Fetch(t.Context())
	require.NoError(t, err)
	require.Same(t, &first[0], &again[0], "unchanged file: the cached slice")

	// Rewritten in place, with another size.
	require.NoError(t, os.WriteFile(path, []byte("id,metro\na,NYC\nb,DEN\n"), 0o644))
	changed, err := src.Fetch(t.Context())
	require.NoError(t, err)
	require.Len(t, changed, 2)
	require.Equal(t, "NYC", changed[0].Values.Metro)

	// Same size, new modification time.
	require.NoError(t, os.WriteFile(path, []byte("id,metro\na,LAX\nb,DEN\n"), 0o644))
	require.NoError(t, os.Chtimes(path, time.Time{}, time.Now().Add(time.Hour)))
	changed, err = src.Fetch(t.Context())
	require.NoError(t, err)
	require.Equal(t, "LAX", changed[0].Values.Metro)

	// Replaced by rename (another file), same size and time.
	tmp := filepath.Join(dir, "tmp.csv")
	require.NoError(t, os.WriteFile(tmp, []byte("id,metro\na,SEA\nb,DEN\n"), 0o644))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.NoError(t, os.Chtimes(tmp, time.Time{}, fi.ModTime()))
	require.NoError(t, os.Rename(tmp, path))
	changed, err = src.Fetch(t.Context())
	require.NoError(t, err)
	require.Equal(t, "SEA", changed[0].Values.Metro)

	// A broken file is an error; the cache is not replaced.
	require.NoError(t, os.WriteFile(path, []byte("id,metro\na,SEA\nb\n"), 0o644))
	_, err = src.Fetch(t.Context())
	require.ErrorContains(t, err, "inv.csv:3:1: wrong number of fields")

	require.NoError(t, os.Remove(path))
	_, err = src.Fetch(t.Context())
	require.ErrorIs(t, err, os.ErrNotExist)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = src.Fetch(ctx)
	require.ErrorIs(t, err, context.Canceled)
}

func TestNewAndFactory(t *testing.T) {
	_, err := file.New("x", file.Options{})
	require.ErrorContains(t, err, "path: required")
	_, err = file.New("x", file.Options{Path: "/etc/inventory.txt"})
	require.ErrorIs(t, err, file.ErrUnknownFormat)
	_, err = file.New("x", file.Options{Path: "/etc/inventory.txt", Format: "xml"})
	require.ErrorIs(t, err, file.ErrUnknownFormat)
	src, err := file.New("x", file.Options{Path: "/etc/inventory.txt", Format: file.JSON})
	require.NoError(t, err)
	require.Equal(t, "x", src.Name())

	cfg, err := sources.ParseConfig("refd.yaml", []byte(`
sources:
  - name: inventory
    type: file
    authoritative: true
    options:
      path: /etc/fleet/inv.yml
      formatt: yaml
`))
	require.NoError(t, err)
	_, err = sources.Build(cfg, sources.Registry{"file": file.Factory})
	require.ErrorContains(t, err, "refd.yaml:8: sources[0].options.formatt: unknown key (valid: path, format)")

	cfg.Sources[0].Options = nil
	_, err = sources.Build(cfg, sources.Registry{"file": file.Factory})
	require.ErrorContains(t, err, "refd.yaml:3: sources[0].options: path: required")

	var dir = t.TempDir()
	_, err = file.New("d", file.Options{Path: dir, Format: file.CSV})
	require.NoError(t, err)
	d, _ := file.New("d", file.Options{Path: dir, Format: file.CSV})
	_, err = d.Fetch(t.Context())
	require.True(t, err != nil && !errors.Is(err, os.ErrNotExist))
}
