package fleet_test

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/testkit/fleet"
)

func TestDiurnal(t *testing.T) {
	require.Equal(t, 1.0, fleet.Diurnal(20.5))
	require.Equal(t, 0.25, fleet.Diurnal(4.5))
	lo, hi := math.Inf(1), math.Inf(-1)
	var loAt, hiAt float64
	prev := fleet.Diurnal(-48)
	for h := -48.0; h <= 48; h += 1.0 / 64 {
		d := fleet.Diurnal(h)
		require.GreaterOrEqual(t, d, 0.0, "hour %v", h)
		require.LessOrEqual(t, d, 1.0, "hour %v", h)
		require.InDelta(t, d, fleet.Diurnal(h+24), 1e-9, "hour %v", h)
		require.InDelta(t, prev, d, 0.02, "jump at hour %v", h) // smooth
		prev = d
		if h >= 0 && h < 24 {
			if d < lo {
				lo, loAt = d, h
			}
			if d > hi {
				hi, hiAt = d, h
			}
		}
	}
	require.True(t, loAt >= 4 && loAt <= 5, "trough at %v", loAt)
	require.True(t, hiAt >= 20 && hiAt <= 21, "peak at %v", hiAt)
	require.Zero(t, fleet.Diurnal(math.NaN()))
	require.Zero(t, fleet.Diurnal(math.Inf(1)))
	require.InDelta(t, fleet.Diurnal(0), fleet.Diurnal(math.Nextafter(0, -1)), 1e-9)
}

// metroTraffic sums the traffic of a metro's nodes.
func metroTraffic(f *fleet.Fleet, code string) float64 {
	var sum float64
	for _, n := range f.Nodes {
		if n.Metro == code {
			sum += n.TrafficGbps
		}
	}
	return sum
}

// Traffic follows each metro's local clock, daylight saving included: a
// metro carries more at its local 20:00 than at its local 04:00 in
// January and in July, in both hemispheres.
func TestTrafficFollowsLocalTimeAcrossDST(t *testing.T) {
	for _, c := range []struct {
		metro, zone string
		// UTC offsets in January and July
		jan, jul time.Duration
	}{
		{"ADL", "Australia/Adelaide", 10*time.Hour + 30*time.Minute, 9*time.Hour + 30*time.Minute},
		{"LHR", "Europe/London", 0, time.Hour},
	} {
		loc, err := time.LoadLocation(c.zone)
		require.NoError(t, err)
		for _, month := range []time.Month{time.January, time.July} {
			t.Run(fmt.Sprintf("%s/%s", c.metro, month), func(t *testing.T) {
				// Given as UTC instants, so nothing can lean on Start's location.
				evening := time.Date(2026, month, 15, 20, 0, 0, 0, loc).UTC()
				night := time.Date(2026, month, 15, 4, 0, 0, 0, loc).UTC()
				offset := c.jan
				if month == time.July {
					offset = c.jul
				}
				require.Equal(t, 20*time.Hour-offset, evening.Sub(time.Date(2026, month, 15, 0, 0, 0, 0, time.UTC)))

				fe := generate(t, fleet.Config{Size: 20000, Seed: 3, Start: evening})
				fn := generate(t, fleet.Config{Size: 20000, Seed: 3, Start: night})
				m := fe.Metro(c.metro)
				require.NotNil(t, m)
				require.Equal(t, 20.0, m.LocalHour(evening))
				require.Equal(t, 4.0, m.LocalHour(night))
				require.Equal(t, m.Load*fleet.Diurnal(20), m.Utilisation(evening))

				te, tn := metroTraffic(fe, c.metro), metroTraffic(fn, c.metro)
				require.Greater(t, te, 2*tn, "traffic at 20:00 local %.0f, at 04:00 %.0f", te, tn)
				// The nodes' traffic is the metro's forecast, give or take
				// the per-server noise.
				require.InEpsilon(t, m.ForecastGbps(evening), te, 0.02)
				require.InEpsilon(t, m.ForecastGbps(night), tn, 0.02)
			})
		}
	}
}

// Stepping through days with a daylight saving change in either
// hemisphere, every metro peaks between 20:00 and 21:00 local and is
// quietest between 04:00 and 05:00 local.
func TestTrafficAtPeaksInTheEveningLocalTime(t *testing.T) {
	f := generate(t, fleet.Config{Size: 2000, Seed: 5})
	for _, day := range []time.Time{
		time.Date(2026, 3, 29, 0, 0, 0, 0, time.UTC), // Europe springs forward
		time.Date(2026, 4, 5, 0, 0, 0, 0, time.UTC),  // Australia falls back
		time.Date(2026, 7, 15, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 10, 4, 0, 0, 0, 0, time.UTC), // Australia springs forward
		time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), // the US falls back
	} {
		peak := make([]float64, len(f.Metros))
		trough := make([]float64, len(f.Metros))
		for i := range trough {
			trough[i] = math.Inf(1)
		}
		peakAt := make([]time.Time, len(f.Metros))
		troughAt := make([]time.Time, len(f.Metros))
		// Two days from the day before, so every metro sees a whole local day.
		for at := day.Add(-24 * time.Hour); at.Before(day.Add(24 * time.Hour)); at = at.Add(10 * time.Minute) {
			for i, mt := range f.TrafficAt(at) {
				require.Equal(t, f.Metros[i].Code, mt.Metro)
				require.InDelta(t, mt.CapacityGbps*mt.Utilisation, mt.TrafficGbps, 1e-9)
				if mt.TrafficGbps > peak[i] {
					peak[i], peakAt[i] = mt.TrafficGbps, mt.Local
				}
				if mt.TrafficGbps < trough[i] {
					trough[i], troughAt[i] = mt.TrafficGbps, mt.Local
				}
			}
		}
		for i, m := range f.Metros {
			require.Equal(t, m.Location, peakAt[i].Location())
			require.True(t, peakAt[i].Hour() == 20 || peakAt[i].Hour() == 21 && peakAt[i].Minute() == 0,
				"%s on %s: peak at %s", m.Code, day.Format(time.DateOnly), peakAt[i])
			require.True(t, troughAt[i].Hour() == 4 || troughAt[i].Hour() == 5 && troughAt[i].Minute() == 0,
				"%s on %s: trough at %s", m.Code, day.Format(time.DateOnly), troughAt[i])
			require.InDelta(t, m.PeakGbps, peak[i], 1e-6)
		}
	}
}

// Metro capacity is the capacity of the nodes that serve.
func TestMetroCapacity(t *testing.T) {
	f := generate(t, fleet.Config{Size: 20000, Seed: 9})
	capacity := make(map[string]float64)
	for _, n := range f.Nodes {
		if n.State == disposition.StateInService && n.Health != disposition.HealthDown {
			capacity[n.Metro] += n.CapacityGbps
		}
	}
	for _, m := range f.Metros {
		require.InDelta(t, capacity[m.Code], m.CapacityGbps, 1e-6, m.Code)
	}
}

func ExampleFleet_TrafficAt() {
	f, err := fleet.Generate(fleet.Config{Size: 1000, Seed: 1})
	if err != nil {
		panic(err)
	}
	// When is Denver busiest on the day the US falls back?
	den := f.Metro("DEN")
	var peak fleet.MetroTraffic
	for at := time.Date(2026, 11, 1, 6, 0, 0, 0, time.UTC); at.Before(time.Date(2026, 11, 2, 6, 0, 0, 0, time.UTC)); at = at.Add(15 * time.Minute) {
		for _, mt := range f.TrafficAt(at) {
			if mt.Metro == den.Code && mt.TrafficGbps > peak.TrafficGbps {
				peak = mt
			}
		}
	}
	fmt.Println(peak.Metro, "peaks at", peak.Local.Format("15:04 MST"), "local,", peak.Local.UTC().Format("15:04 UTC"))
	// Output:
	// DEN peaks at 20:00 MST local, 03:00 UTC
}
