package fleet_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/testkit/fleet"
)

func TestJSONRoundTrip(t *testing.T) {
	f := generate(t, fleet.Config{Size: 3000, Seed: 11})
	// Provenance is not generated, but a JSON file carries it.
	at := time.Date(2026, 1, 5, 11, 0, 0, 0, time.FixedZone("", 3600))
	f.Nodes[0] = f.Nodes[0].Clone()
	f.Nodes[0].Provenance[disposition.FieldState] = &disposition.Origin{Source: "maas", ObservedAt: at}
	f.Nodes[0].Provenance[disposition.FieldHealth] = &disposition.Origin{Source: "prometheus", ObservedAt: at, Stale: true}

	data := jsonBytes(t, f)
	require.True(t, json.Valid(data))
	var plain []*disposition.Node
	require.NoError(t, json.Unmarshal(data, &plain), "WriteJSON writes what encoding/json reads")
	require.Len(t, plain, len(f.Nodes))
	require.Equal(t, 2+len(f.Nodes), bytes.Count(data, []byte("\n")), "one node per line")

	got, err := fleet.ReadJSON(bytes.NewReader(data))
	require.NoError(t, err)
	require.Empty(t, cmp.Diff(f.Nodes, got, cmpopts.EquateEmpty()))

	again := jsonBytes(t, &fleet.Fleet{Nodes: got})
	require.Equal(t, string(data), string(again))
}

func TestJSONEmpty(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, (&fleet.Fleet{}).WriteJSON(&buf))
	require.Equal(t, "[\n]\n", buf.String())
	got, err := fleet.ReadJSON(&buf)
	require.NoError(t, err)
	require.Empty(t, got)
}

func TestReadJSONErrors(t *testing.T) {
	const ok = `{"id":"a","state":"in-service"}`
	for _, c := range []struct {
		name, in, want string
		is             error
	}{
		{"empty", "", "fleet: JSON line 1, column 1: unexpected EOF", nil},
		{"not an array", `{"id":"a"}`, "fleet: JSON line 1, column 1: want an array of nodes", nil},
		{"truncated", "[\n" + ok + ",\n{\"id\":", "fleet: JSON line 3, column 7: node 2: unexpected EOF", nil},
		{"syntax", "[\n" + ok + ",\n{\"id\":\"b\",\n \"kind\": vm}\n]", "fleet: JSON line 4, column 10: node 2: invalid character 'v'", nil},
		{"missing comma", "[\n" + ok + "\n" + ok + "\n]", "fleet: JSON line 3, column 1: node 2: expected comma", nil},
		{"unknown state", "[\n" + ok + ",\n{\"id\":\"b\",\"state\":\"broken\"}\n]", `fleet: JSON line 3, column 1: node 2: unknown value "broken" for lifecycle state`, disposition.ErrUnknownValue},
		{"unknown provenance field", "[\n{\"id\":\"b\",\"provenance\":{\"colour\":null}}\n]", `fleet: JSON line 2, column 1: node 1: provenance: unknown value "colour" for field`, disposition.ErrUnknownValue},
		{"wrong type", "[\n" + ok + ",\n  {\"id\":\"b\",\"traffic_gbps\":\"lots\"}\n]", "fleet: JSON line 3, column 34: node 2: json: cannot unmarshal string", nil},
		{"null", "[\n" + ok + ",\nnull]", "fleet: JSON line 3, column 1: node 2: null", nil},
		{"no id", "[\n{\"kind\":\"vm\"}]", "fleet: JSON line 2, column 1: node 1: field id: empty", nil},
		{"negative", "[{\"id\":\"a\",\"capacity_gbps\":-1}]", "fleet: JSON line 1, column 2: node 1: node \"a\": field capacity_gbps", nil},
		{"duplicate", "[\n" + ok + ",\n" + ok + "\n]", `fleet: JSON line 3, column 1: node 2: duplicate id "a" (first on line 2)`, nil},
		{"trailing", "[\n" + ok + "\n] x", "fleet: JSON line 3, column 3: after the array: invalid character 'x'", nil},
		{"second array", "[]\n[]", "fleet: JSON line 2, column 1: unexpected [ after the array", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := fleet.ReadJSON(strings.NewReader(c.in))
			require.Error(t, err)
			require.True(t, strings.HasPrefix(err.Error(), c.want), "got  %s\nwant %s...", err, c.want)
			if c.is != nil {
				require.ErrorIs(t, err, c.is)
			}
		})
	}
}

func FuzzReadJSON(f *testing.F) {
	small, err := fleet.Generate(fleet.Config{Size: 12, Seed: 1})
	require.NoError(f, err)
	var buf bytes.Buffer
	require.NoError(f, small.WriteJSON(&buf))
	f.Add(buf.Bytes())
	f.Add([]byte(`[{"id":"a","provenance":{"state":{"source":"s","observed_at":"2026-01-01T00:00:00Z"}}}]`))
	f.Add([]byte(`[{"id":"a","state":"nope"}]`))
	f.Add([]byte("[\n{\"id\":\"a\"},\n{\"id\":"))
	f.Add([]byte(`[{"id":"a"}] [`))
	f.Fuzz(func(t *testing.T, data []byte) {
		nodes, err := fleet.ReadJSON(bytes.NewReader(data))
		if err != nil {
			require.Contains(t, err.Error(), "line ")
			return
		}
		seen := make(map[string]bool)
		for _, n := range nodes {
			require.NoError(t, n.Validate())
			require.False(t, seen[n.ID], "duplicate %q", n.ID)
			seen[n.ID] = true
		}
		var out bytes.Buffer
		require.NoError(t, (&fleet.Fleet{Nodes: nodes}).WriteJSON(&out))
		again, err := fleet.ReadJSON(&out)
		require.NoError(t, err)
		require.Empty(t, cmp.Diff(nodes, again, cmpopts.EquateEmpty()))
	})
}
