package rollout_test

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/rollout"
)

func TestParseSpecExample(t *testing.T) {
	data, err := os.ReadFile("testdata/spec.yaml")
	require.NoError(t, err)
	got, err := rollout.ParseSpec("spec.yaml", data)
	require.NoError(t, err)
	pack := rollout.Duration(6 * time.Hour)
	want := &rollout.Spec{
		Name:      "cdn-app-3.2.0",
		Component: "cdn-app",
		Version:   "3.2.0",
		Select:    "role=edge,mid",
		Exclude:   "release_state=frozen",
		Deploy:    rollout.Duration(20 * time.Minute),
		Horizon:   rollout.Duration(14 * 24 * time.Hour),
		Pack:      pack,
		Budgets: rollout.Budgets{
			Global: rollout.Percent(5), Region: rollout.Percent(20), Metro: rollout.Percent(10),
			Site: rollout.Percent(15), Cluster: rollout.Percent(25), MetrosPerRegion: 1,
		},
		Capacity: &rollout.Capacity{Headroom: 0.2, ObservedAt: time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC)},
		Windows: []rollout.Window{
			{Days: []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday}, Start: 22 * 60, End: 6 * 60, TZ: "metro"},
			{Scope: rollout.Scope{Metro: "SYD"}, Start: 60, End: 5 * 60},
		},
		Blackouts: []rollout.Blackout{{
			Scope: rollout.Scope{Region: "eu-west"},
			From:  time.Date(2026, 1, 9, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC),
			Reason: "sales event",
		}},
		Canary: rollout.Canary{Count: 2, Where: "metro=DEN", Bake: rollout.Duration(2 * time.Hour)},
		Growth: rollout.Growth{
			Steps: []rollout.Amount{{Count: 1}, {Count: 5}, {Pct: 1, Percent: true}, {Pct: 5, Percent: true}, {Pct: 25, Percent: true}},
			Bake:  rollout.Duration(30 * time.Minute),
		},
		Order: []rollout.Preference{{By: "release_state", First: []string{"trial", "nrt"}}, {By: "metro_utilisation"}},
	}
	require.Empty(t, cmp.Diff(want, got))
}

func TestParseSpecErrors(t *testing.T) {
	const base = "growth: {steps: [1]}\n"
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"bad amount", base + "budgets:\n  metro: 12x\n", `spec.yaml:3: budgets.metro: "12x" is not a count or percentage`},
		{"percent over 100", base + "budgets:\n  site: 120%\n", `spec.yaml:3: budgets.site: percentage 120% is outside 0%..100%`},
		{"unknown key", base + "budgets:\n  metros: 1\n", `spec.yaml:3: budgets: unknown key "metros"`},
		{"unknown top key", base + "selector: role=edge\n", `spec.yaml:2: unknown key "selector"`},
		{"bad duration", base + "deploy: soon\n", `spec.yaml:2: deploy: "soon" is not a duration`},
		{"bad clock", base + "windows:\n  - start: \"25:00\"\n    end: \"06:00\"\n", `spec.yaml:3: windows[0].start: "25:00" is not a time of day`},
		{"bad weekday", base + "windows:\n  - days: [mon, funday]\n    start: \"01:00\"\n    end: \"02:00\"\n", `spec.yaml:3: windows[0].days[1]: "funday" is not a weekday`},
		{"missing end", base + "windows:\n  - start: \"01:00\"\n", `spec.yaml:3: windows[0].end: is required`},
		{"bad zone", base + "windows:\n  - start: \"01:00\"\n    end: \"02:00\"\n    tz: Mars/Olympus\n", `spec.yaml:5: windows[0].tz: unknown time zone "Mars/Olympus"`},
		{"bad query", base + "select: role\n", `spec.yaml:2: select: invalid query`},
		{"no growth", "deploy: 10m\n", `growth: set exactly one of steps, exponential or linear`},
		{"two growths", "growth:\n  steps: [1]\n  linear: {start: 1, step: 1}\n", `spec.yaml:1: growth: set exactly one`},
		{"zero step", "growth:\n  steps: [0]\n", `spec.yaml:2: growth.steps[0]: must be positive`},
		{"blackout backwards", base + "blackouts:\n  - from: 2026-01-02\n    to: 2026-01-01\n    reason: x\n", `spec.yaml:4: blackouts[0].to: must be after from`},
		{"blackout no reason", base + "blackouts:\n  - from: 2026-01-01\n    to: 2026-01-02\n", `blackouts[0].reason: is required`},
		{"wrong type", base + "budgets: 5\n", `spec.yaml:2: budgets: budgets must be a mapping`},
		{"list expected", base + "windows: {start: x}\n", `spec.yaml:2: windows: must be a list`},
		{"bad yaml", "growth: [1\n", `spec.yaml:`},
		{"empty", "", `spec.yaml:1: empty document`},
		{"bad order", base + "order:\n  - by: colour\n    first: [red]\n", `spec.yaml:3: order[0].by: "colour" is neither`},
		{"profile length", base + "capacity:\n  headroom: 0.1\n  profile: [1, 2]\n", `spec.yaml:4: capacity.profile: needs 24 hourly values, got 2`},
		{"factor", "growth:\n  exponential: {start: 1, factor: 0.5}\n", `spec.yaml:2: growth.exponential.factor: must be between 1.01 and 1000`},
		{"pack too long", base + "pack: 400d\n", `spec.yaml:2: pack: must be between 0 and 8784h0m0s`},
		{"canary where without count", base + "canary: {where: metro=DEN}\n", `spec.yaml:2: canary.count: must be positive`},
		{"version alone", base + "version: 1.2.3\n", `spec.yaml:2: version: component and version must be set together`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := rollout.ParseSpec("spec.yaml", []byte(tc.yaml))
			require.Error(t, err)
			require.ErrorIs(t, err, rollout.ErrInvalidSpec)
			var se *rollout.SpecError
			require.True(t, errors.As(err, &se))
			require.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestValidateGoSpec(t *testing.T) {
	s := &rollout.Spec{Growth: rollout.Growth{Steps: []rollout.Amount{{Count: 1}}}}
	require.NoError(t, s.Validate())
	s.Budgets.Metro = &rollout.Amount{Count: -1}
	err := s.Validate()
	require.ErrorIs(t, err, rollout.ErrInvalidSpec)
	require.Equal(t, "budgets.metro: count -1 is negative", err.Error())
}

func TestParseAmount(t *testing.T) {
	for in, want := range map[string]rollout.Amount{
		"12": {Count: 12}, "0": {}, "12.5%": {Pct: 12.5, Percent: true}, " 5 % ": {Pct: 5, Percent: true},
	} {
		got, err := rollout.ParseAmount(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "x", "-1", "1.5", "NaN%", "%", "101%", "-1%"} {
		_, err := rollout.ParseAmount(in)
		require.Error(t, err, in)
	}
}

func FuzzParseSpec(f *testing.F) {
	data, err := os.ReadFile("testdata/spec.yaml")
	require.NoError(f, err)
	f.Add(data)
	f.Add([]byte("growth: {steps: [1, \"5%\"]}\nbudgets: {metro: 12x}\n"))
	f.Add([]byte("growth:\n  exponential: {start: 1, factor: 2, cap: 10%}\nwindows:\n  - {start: \"22:00\", end: \"06:00\", days: [fri]}\n"))
	f.Add([]byte("growth: {linear: {start: 1, step: 2%}}\ncapacity: {headroom: 0.1, forecast: {DEN: [1,2]}}\n"))
	f.Add([]byte("a: &x [1, *x]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := rollout.ParseSpec("fuzz.yaml", data)
		if err != nil {
			var se *rollout.SpecError
			if !errors.As(err, &se) || !errors.Is(err, rollout.ErrInvalidSpec) {
				t.Fatalf("error %v (%T) is not a *SpecError", err, err)
			}
			if !strings.HasPrefix(err.Error(), "fuzz.yaml") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("parsed spec does not validate: %v", err)
		}
	})
}

func TestSpecJSONRoundTrip(t *testing.T) {
	data, err := os.ReadFile("testdata/spec.yaml")
	require.NoError(t, err)
	s, err := rollout.ParseSpec("spec.yaml", data)
	require.NoError(t, err)
	b, err := json.Marshal(s)
	require.NoError(t, err)
	require.Contains(t, string(b), `"metro":"10%"`)
	require.Contains(t, string(b), `"start":"22:00"`)
	var back rollout.Spec
	require.NoError(t, json.Unmarshal(b, &back))
	require.Empty(t, cmp.Diff(s, &back))
	require.NoError(t, back.Validate())
}
