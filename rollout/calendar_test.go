package rollout

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	require.NoError(t, err)
	return loc
}

// spansOn returns the window's spans that start on the given local date,
// as local times, with their real length.
func spansOn(t *testing.T, w Window, loc *time.Location, y int, m time.Month, d int) []time.Duration {
	t.Helper()
	from := time.Date(y, m, d, 0, 0, 0, 0, loc).Add(-12 * time.Hour).Unix()
	to := time.Date(y, m, d, 0, 0, 0, 0, loc).Add(36 * time.Hour).Unix()
	var out []time.Duration
	for _, s := range normalise(windowSpans(w, loc, from, to, nil)) {
		st := time.Unix(s.a, 0).In(loc)
		if st.Year() == y && st.Month() == m && st.Day() == d {
			out = append(out, time.Duration(s.b-s.a)*time.Second)
		}
	}
	return out
}

func TestWindowSpringForward(t *testing.T) {
	den := mustLoc(t, "America/Denver")
	// 2026-03-08: clocks jump from 02:00 MST to 03:00 MDT.
	skipped := Window{Start: 2 * 60, End: 3 * 60}
	require.Equal(t, []time.Duration{time.Hour}, spansOn(t, skipped, den, 2026, 3, 7))
	require.Empty(t, spansOn(t, skipped, den, 2026, 3, 8), "02:00-03:00 does not exist on spring-forward day")
	require.Equal(t, []time.Duration{time.Hour}, spansOn(t, skipped, den, 2026, 3, 9))

	across := Window{Start: 1 * 60, End: 5 * 60}
	require.Equal(t, []time.Duration{3 * time.Hour}, spansOn(t, across, den, 2026, 3, 8), "01:00-05:00 lasts 3 real hours")
	ss := normalise(windowSpans(across, den, time.Date(2026, 3, 8, 0, 0, 0, 0, den).Unix(), time.Date(2026, 3, 8, 12, 0, 0, 0, den).Unix(), nil))
	require.Len(t, ss, 1)
	require.Equal(t, "01:00 MST", time.Unix(ss[0].a, 0).In(den).Format("15:04 MST"))
	require.Equal(t, "05:00 MDT", time.Unix(ss[0].b, 0).In(den).Format("15:04 MST"))
}

func TestWindowFallBack(t *testing.T) {
	den := mustLoc(t, "America/Denver")
	// 2026-11-01: 01:00-02:00 happens twice (MDT, then MST).
	w := Window{Start: 1 * 60, End: 2 * 60}
	require.Equal(t, []time.Duration{2 * time.Hour}, spansOn(t, w, den, 2026, 11, 1), "the repeated hour counts twice")
	require.Equal(t, []time.Duration{time.Hour}, spansOn(t, w, den, 2026, 11, 2))
	wide := Window{Start: 0, End: 4 * 60}
	require.Equal(t, []time.Duration{5 * time.Hour}, spansOn(t, wide, den, 2026, 11, 1))
}

func TestWindowEastOfUTC12(t *testing.T) {
	kir := mustLoc(t, "Pacific/Kiritimati") // UTC+14
	w := Window{Days: []time.Weekday{time.Monday}, Start: 1 * 60, End: 3 * 60}
	// Monday 2026-01-05 01:00 local is Sunday 2026-01-04 11:00 UTC.
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	to := time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC).Unix()
	ss := normalise(windowSpans(w, kir, from, to, nil))
	require.Len(t, ss, 2)
	require.Equal(t, time.Date(2026, 1, 4, 11, 0, 0, 0, time.UTC), time.Unix(ss[0].a, 0).UTC())
	require.Equal(t, time.Date(2026, 1, 4, 13, 0, 0, 0, time.UTC), time.Unix(ss[0].b, 0).UTC())
	require.Equal(t, time.Date(2026, 1, 11, 11, 0, 0, 0, time.UTC), time.Unix(ss[1].a, 0).UTC())

	// Auckland in summer is UTC+13: Tuesday 00:30 local is Monday 11:30 UTC.
	akl := mustLoc(t, "Pacific/Auckland")
	w = Window{Days: []time.Weekday{time.Tuesday}, Start: 30, End: 90}
	ss = normalise(windowSpans(w, akl, from, to, nil))
	require.Equal(t, time.Date(2026, 1, 5, 11, 30, 0, 0, time.UTC), time.Unix(ss[0].a, 0).UTC())
}

func TestWindowOvernightAndWeekdays(t *testing.T) {
	w := Window{Days: []time.Weekday{time.Friday}, Start: 22 * 60, End: 6 * 60}
	from := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC).Unix() // Monday
	to := time.Date(2026, 1, 12, 0, 0, 0, 0, time.UTC).Unix()
	ss := normalise(windowSpans(w, time.UTC, from, to, nil))
	require.Equal(t, []span{{time.Date(2026, 1, 9, 22, 0, 0, 0, time.UTC).Unix(), time.Date(2026, 1, 10, 6, 0, 0, 0, time.UTC).Unix()}}, ss)

	// A window opening on the day before the horizon still counts.
	w = Window{Start: 22 * 60, End: 6 * 60}
	ss = normalise(windowSpans(w, time.UTC, from, from+3600, nil))
	require.Equal(t, []span{{from, from + 3600}}, ss)
}

func TestSubtract(t *testing.T) {
	ss := []span{{0, 10}, {20, 30}, {40, 50}}
	cut := []span{{5, 25}, {45, 60}}
	require.Equal(t, []span{{0, 5}, {25, 30}, {40, 45}}, subtract(ss, cut))
	require.Equal(t, ss, subtract(ss, nil))
	require.Empty(t, subtract(ss, []span{{-1, 100}}))
}

func TestGrowthSizes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		g      Growth
		n      int
		prefix []int
		tail   int
	}{
		{"steps", Growth{Steps: []Amount{{Count: 1}, {Count: 5}, {Pct: 1, Percent: true}, {Pct: 25, Percent: true}}}, 1000, []int{1, 5, 10}, 250},
		{"steps round up", Growth{Steps: []Amount{{Pct: 1, Percent: true}}}, 150, nil, 2},
		{"exponential", Growth{Exponential: &Exponential{Start: Amount{Count: 1}, Factor: 2, Cap: &Amount{Count: 10}}}, 1000, []int{1, 2, 4, 8}, 10},
		{"exponential uncapped", Growth{Exponential: &Exponential{Start: Amount{Count: 3}, Factor: 3}}, 50, []int{3, 9, 27}, 50},
		{"linear", Growth{Linear: &Linear{Start: Amount{Count: 2}, Step: Amount{Count: 3}, Cap: &Amount{Pct: 1, Percent: true}}}, 1000, []int{2, 5, 8}, 10},
		{"linear flat", Growth{Linear: &Linear{Start: Amount{Count: 4}}}, 1000, nil, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prefix, tail := tc.g.sizes(tc.n)
			if len(tc.prefix) == 0 {
				require.Empty(t, prefix)
			} else {
				require.Equal(t, tc.prefix, prefix)
			}
			require.Equal(t, tc.tail, tail)
		})
	}
}

func TestBudgetRounding(t *testing.T) {
	require.Equal(t, 2, Amount{Pct: 25, Percent: true}.budget(11), "rounds down")
	require.Equal(t, 1, Amount{Pct: 25, Percent: true}.budget(1), "at least 1")
	require.Equal(t, 0, Amount{Pct: 0, Percent: true}.budget(100), "0% is 0")
	require.Equal(t, 100, Amount{Pct: 100, Percent: true}.budget(100))
	require.Equal(t, 3, Amount{Count: 3}.budget(1))
}
