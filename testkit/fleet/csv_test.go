package fleet_test

import (
	"bytes"
	"encoding/csv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/testkit/fleet"
)

func csvBytes(t testing.TB, f *fleet.Fleet) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, f.WriteCSV(&buf))
	return buf.Bytes()
}

func TestCSVRoundTrip(t *testing.T) {
	f := generate(t, fleet.Config{Size: 3000, Seed: 12})
	data := csvBytes(t, f)

	header, _, _ := strings.Cut(string(data), "\n")
	require.Equal(t, "id,kind,region,metro,site,cluster,rack,timezone,role,platform,state,release_state,health,"+
		"traffic_gbps,capacity_gbps,version.cdn-app,version.knot,version.nginx,label.hw,label.tier", header)
	records, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	require.NoError(t, err, "WriteCSV writes what encoding/csv reads")
	require.Len(t, records, 1+len(f.Nodes))

	got, err := fleet.ReadCSV(bytes.NewReader(data))
	require.NoError(t, err)
	require.Empty(t, cmp.Diff(f.Nodes, got, cmpopts.EquateEmpty()))
	require.Equal(t, string(data), string(csvBytes(t, &fleet.Fleet{Nodes: got})))
}

// Columns may come in any order and only id is required.
func TestReadCSVColumnsInAnyOrder(t *testing.T) {
	in := "label.tier,health,id,version.cdn-app\n" +
		"1,down,a.example,3.1.4\n" +
		",,b.example,\n"
	got, err := fleet.ReadCSV(strings.NewReader(in))
	require.NoError(t, err)
	want := []*disposition.Node{
		{ID: "a.example", Health: disposition.HealthDown, Labels: map[string]string{"tier": "1"}, Versions: map[string]string{"cdn-app": "3.1.4"}},
		{ID: "b.example"},
	}
	require.Empty(t, cmp.Diff(want, got, cmpopts.EquateEmpty()))
}

func TestReadCSVErrors(t *testing.T) {
	const header = "id,kind,state,traffic_gbps\n"
	for _, c := range []struct {
		name, in, want string
		is             error
	}{
		{"empty", "", "fleet: CSV line 1: empty input, want a header row", nil},
		{"unknown column", "id,colour\n", `fleet: CSV line 1, column 4 ("colour"): unknown value "colour" for column (valid: id, kind,`, disposition.ErrUnknownValue},
		{"map field as column", "id,versions\n", `fleet: CSV line 1, column 4 ("versions"): unknown value`, disposition.ErrUnknownValue},
		{"duplicate column", "id,kind,kind\n", `fleet: CSV line 1, column 9 ("kind"): duplicate column`, nil},
		{"empty version", "id,version.\n", `fleet: CSV line 1, column 4 ("version."): want version.<component>`, nil},
		{"no id column", "kind,state\n", `fleet: CSV line 1: no "id" column`, nil},
		{"unknown kind", header + "a,vm,in-service,1\nb,robot,in-service,1\n", `fleet: CSV line 3, column 3 (kind): unknown value "robot" for kind`, disposition.ErrUnknownValue},
		{"unknown state", header + "a,vm,broken,1\n", `fleet: CSV line 2, column 6 (state): unknown value "broken" for lifecycle state`, disposition.ErrUnknownValue},
		{"not a number", header + "a,vm,in-service,lots\n", `fleet: CSV line 2, column 17 (traffic_gbps): want a number of Gbps, got "lots"`, nil},
		{"NaN", header + "a,vm,in-service,NaN\n", `fleet: CSV line 2, column 17 (traffic_gbps): want a finite, non-negative number`, nil},
		{"infinite", header + "a,vm,in-service,+Inf\n", `fleet: CSV line 2, column 17 (traffic_gbps): want a finite`, nil},
		{"negative", header + "a,vm,in-service,-1\n", `fleet: CSV line 2, column 17 (traffic_gbps): want a finite, non-negative`, nil},
		{"no id", header + ",vm,in-service,1\n", `fleet: CSV line 2, column 1 (id): field id: empty`, nil},
		{"duplicate id", header + "a,vm,,1\nb,vm,,1\na,vm,,1\n", `fleet: CSV line 4, column 1 (id): duplicate id "a" (first on line 2)`, nil},
		{"field count", header + "a,vm,in-service,1\nb,vm\n", "fleet: CSV: record on line 3: wrong number of fields", csv.ErrFieldCount},
		{"bare quote", header + "a,v\"m,in-service,1\n", `fleet: CSV: parse error on line 2, column 4: bare " in non-quoted-field`, csv.ErrBareQuote},
		{"quoted across lines", header + "\"a\nb\",vm,broken,1\n", `fleet: CSV line 3, column 7 (state): unknown value "broken"`, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := fleet.ReadCSV(strings.NewReader(c.in))
			require.Error(t, err)
			require.True(t, strings.HasPrefix(err.Error(), c.want), "got  %s\nwant %s...", err, c.want)
			if c.is != nil {
				require.ErrorIs(t, err, c.is)
			}
		})
	}
}

func FuzzReadCSV(f *testing.F) {
	small, err := fleet.Generate(fleet.Config{Size: 12, Seed: 1})
	require.NoError(f, err)
	f.Add(csvBytes(f, small))
	f.Add([]byte("id,kind,state,health,traffic_gbps,label.x\na,vm,repair,down,1.5,\"q\"\"x\"\n"))
	f.Add([]byte("id,state\na,broken\n"))
	f.Add([]byte("id,id\n"))
	f.Add([]byte("id,kind\na,\"vm\nb\n"))
	f.Add([]byte("version.,id\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		nodes, err := fleet.ReadCSV(bytes.NewReader(data))
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
		// encoding/csv turns \r\n inside quotes into \n, so only inputs
		// without \r are expected to survive a second round unchanged.
		if bytes.IndexByte(data, '\r') >= 0 {
			return
		}
		var out bytes.Buffer
		require.NoError(t, (&fleet.Fleet{Nodes: nodes}).WriteCSV(&out))
		again, err := fleet.ReadCSV(&out)
		require.NoError(t, err)
		require.Empty(t, cmp.Diff(nodes, again, cmpopts.EquateEmpty()))
	})
}
