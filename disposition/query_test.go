package disposition

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

func TestParseQuery(t *testing.T) {
	q, err := ParseQuery("metro=DEN,NYC  role=edge health!=down label.tier=1 version.cdn-app<3.2.0 version.nginx!=1.24.0")
	require.NoError(t, err)
	want := Query{Terms: []Term{
		{Field: "metro", Op: Eq, Values: []string{"DEN", "NYC"}},
		{Field: "role", Op: Eq, Values: []string{"edge"}},
		{Field: "health", Op: Ne, Values: []string{"down"}},
		{Field: "label.tier", Op: Eq, Values: []string{"1"}},
		{Field: "version.cdn-app", Op: Lt, Values: []string{"3.2.0"}},
		{Field: "version.nginx", Op: Ne, Values: []string{"1.24.0"}},
	}}
	require.Empty(t, cmp.Diff(want, q))
	require.Equal(t, "metro=DEN,NYC role=edge health!=down label.tier=1 version.cdn-app<3.2.0 version.nginx!=1.24.0", q.String())

	empty, err := ParseQuery("   ")
	require.NoError(t, err)
	require.Empty(t, empty.Terms)
}

func TestParseQueryErrorsNameTheBadTerm(t *testing.T) {
	cases := []struct{ in, want string }{
		{"metro=DEN helth=down", `term 2 "helth=down": unknown field "helth"`},
		{"metro", `term 1 "metro": no operator`},
		{"=DEN", `term 1 "=DEN": missing field name`},
		{"metro=", `term 1 "metro=": missing value`},
		{"metro=DEN,,NYC", `empty value in list`},
		{"role=edge health=sick", `term 2 "health=sick": unknown value "sick" for health`},
		{"state=in-servce", `unknown value "in-servce" for lifecycle state`},
		{"metro<DEN", `term 1 "metro<DEN": operator < applies only to version.<component>`},
		{"version.x>=1,2", `operator >= takes one value`},
		{"version.x>banana", `version "banana"`},
		{"label.=1", `empty label key`},
		{"version.=1", `empty component`},
		{"metro=a=b", `contains an operator character`},
		{"metro!x", `bad operator in "!x"`},
		{"metro=!x", `value "!x" contains an operator character`},
		{"traffic_gbps=1", `unknown field "traffic_gbps"`},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			_, err := ParseQuery(c.in)
			require.ErrorIs(t, err, ErrInvalidQuery)
			require.ErrorContains(t, err, c.want)
			var qe *QueryError
			require.ErrorAs(t, err, &qe)
		})
	}
}

// FuzzParseQuery checks that the parser never panics, and that whatever
// it accepts prints back to a query that parses to the same terms.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{
		"metro=DEN,NYC role=edge health!=down",
		"label.tier=1 version.cdn-app<=3.2.0",
		"version.x>1.0.0-rc.1", "id=a", "=", "!=", "a!=b!=c", "metro=DEN\x00",
		"state=in-service,repair kind=vm", "label.a.b=c", "version.cdn-app>=v3",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := ParseQuery(s)
		if err != nil {
			return
		}
		again, err := ParseQuery(q.String())
		if err != nil {
			t.Fatalf("ParseQuery(%q) ok, but its String %q fails: %v", s, q.String(), err)
		}
		if d := cmp.Diff(q, again); d != "" {
			t.Fatalf("round trip of %q differs:\n%s", s, d)
		}
		// Any parsed query runs.
		if _, err := NewIndex().Snapshot().Query(q); err != nil {
			t.Fatalf("parsed query %q fails to run: %v", s, err)
		}
	})
}
