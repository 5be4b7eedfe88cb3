package refd

import (
	"encoding/json"
	"math"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/testkit/fleet"
)

// marshalSelected is the reference: encoding/json of n with the fields
// not selected zeroed, which omitempty then leaves out.
func marshalSelected(t testing.TB, n *disposition.Node, fs fieldSet) []byte {
	c := n.Clone()
	if fs&(1<<provBit) == 0 {
		c.Provenance = disposition.Provenance{}
	}
	var zero disposition.Node
	for _, f := range disposition.Fields() {
		if fs.has(f) {
			continue
		}
		switch f {
		case disposition.FieldKind:
			c.Kind = zero.Kind
		case disposition.FieldRegion:
			c.Region = ""
		case disposition.FieldMetro:
			c.Metro = ""
		case disposition.FieldSite:
			c.Site = ""
		case disposition.FieldCluster:
			c.Cluster = ""
		case disposition.FieldRack:
			c.Rack = ""
		case disposition.FieldTimezone:
			c.Timezone = ""
		case disposition.FieldRole:
			c.Role = ""
		case disposition.FieldPlatform:
			c.Platform = ""
		case disposition.FieldState:
			c.State = zero.State
		case disposition.FieldReleaseState:
			c.ReleaseState = ""
		case disposition.FieldHealth:
			c.Health = zero.Health
		case disposition.FieldVersions:
			c.Versions = nil
		case disposition.FieldTraffic:
			c.TrafficGbps = 0
		case disposition.FieldCapacity:
			c.CapacityGbps = 0
		case disposition.FieldLabels:
			c.Labels = nil
		}
	}
	b, err := json.Marshal(c)
	require.NoError(t, err)
	return b
}

// TestEncoderMatchesEncodingJSON holds the hand-written node encoder to
// encoding/json byte for byte, over a generated fleet and nodes with
// awkward strings and numbers.
func TestEncoderMatchesEncodingJSON(t *testing.T) {
	f, err := fleet.Generate(fleet.Config{Size: 3000, Seed: 3})
	require.NoError(t, err)
	nodes := f.Nodes
	odd := &disposition.Node{
		ID: "weird<&>\"\\\u2028\x01é\xff", Metro: "SÃO", Role: "a\tb", ReleaseState: "<script>",
		TrafficGbps: 1e-7, CapacityGbps: 1e21, Labels: map[string]string{"k\"": "v<", "": "empty"},
		Versions: map[string]string{"z": "1", "a": "2"}, Health: disposition.HealthDown,
	}
	odd.Provenance[disposition.FieldMetro] = &disposition.Origin{Source: "x", ObservedAt: time.Unix(5, 7).UTC(), Stale: true}
	nodes = append(nodes, odd,
		&disposition.Node{ID: "tiny", TrafficGbps: 0.000001, CapacityGbps: 123456789.125},
		&disposition.Node{ID: "huge", TrafficGbps: math.MaxFloat64, CapacityGbps: 5e-324},
		&disposition.Node{ID: "zero"})
	for _, fs := range []fieldSet{allFields, allFields | 1<<provBit, 1 << disposition.FieldID,
		1<<disposition.FieldMetro | 1<<disposition.FieldLabels | 1<<disposition.FieldTraffic} {
		enc := nodeEncoder{fields: fs}
		for _, n := range nodes {
			var got []byte
			if fs&(1<<disposition.FieldID) == 0 {
				continue
			}
			got = enc.appendNode(nil, n)
			want := marshalSelected(t, n, fs)
			require.Equal(t, string(want), string(got), "node %q fields %x", n.ID, fs)
		}
	}
}

func TestAppendFloatMatchesEncodingJSON(t *testing.T) {
	for _, f := range []float64{0, 1, -1, 0.1, 1e-6, 9.99e-7, 1e20, 1e21, 1.5e-9, 123.456, 5e-324, math.MaxFloat64, 1e-10} {
		want, err := json.Marshal(f)
		require.NoError(t, err)
		require.Equal(t, string(want), string(appendFloat(nil, f)), "%v", f)
	}
}

// FuzzParseQuery feeds arbitrary query strings to the URL query parser:
// it must not panic, and a query it accepts must be one the index accepts
// and stable under re-parsing of its text form.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{
		"metro=DEN,NYC&health!=down", "q=role%3Dedge", "version.x%3E=1.2.0", "version.x<1.2", "label.tier=1&label.tier=2",
		"health!=", "!=x", "a=b=c", "cursor=bjpmb28", "fields=id", "q=+++", "%3C%3E=1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, aerr := parseQuery(v)
		if aerr != nil {
			if aerr.Status != 400 || aerr.Field == "" && !strings.Contains(aerr.Message, "no name") {
				t.Fatalf("bad error for %q: %+v", raw, aerr)
			}
			return
		}
		if _, err := disposition.NewIndex().Snapshot().Query(q); err != nil {
			t.Fatalf("accepted %q but the index rejects it: %v", raw, err)
		}
		for _, term := range q.Terms {
			for _, val := range term.Values {
				if strings.ContainsFunc(val, unicode.IsSpace) {
					return // values with spaces have no text form
				}
			}
		}
		q2, err := disposition.ParseQuery(q.String())
		if err != nil {
			t.Fatalf("accepted %q, but its text form %q does not parse: %v", raw, q.String(), err)
		}
		if q2.String() != q.String() {
			t.Fatalf("unstable: %q -> %q -> %q", raw, q.String(), q2.String())
		}
		_, _ = decodeCursor(v)
		_, _, _ = parseFields(v)
		_, _ = parseLimit(v)
	})
}
