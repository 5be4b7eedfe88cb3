package fleet

import (
	"math"
	"time"
)

// Metro is one metropolitan area of a generated fleet, with the totals
// Generate drew for it.
type Metro struct {
	// Code is a short, airport-like code such as "DEN"; site names start
	// with it ("DEN1") and cluster names with its lower case ("den1-c07").
	Code      string `json:"code"`
	City      string `json:"city"`      // e.g. "Denver"
	Region    string `json:"region"`    // e.g. "na-west", "eu-central", "oc"
	Continent string `json:"continent"` // e.g. "north-america", "oceania"
	Timezone  string `json:"timezone"`  // IANA zone, e.g. "America/Denver"
	// Tier is 1 for the largest metros and 3 for the smallest; nodes carry
	// it as label "tier".
	Tier int `json:"tier"`
	// Weight is the metro's drawn share of the fleet (weights sum to 1);
	// Servers follows it, after every metro gets a small minimum.
	Weight float64 `json:"weight"`
	// Load is the share of serving capacity in use at the daily peak
	// (Diurnal = 1); utilisation at any instant is Load * Diurnal.
	Load float64 `json:"load"`
	// Servers is the number of nodes in the metro, Sites their site names.
	Servers int      `json:"servers"`
	Sites   []string `json:"sites"`
	// CapacityGbps is the capacity of the metro's serving nodes (in
	// service and not down) at generation; PeakGbps = CapacityGbps * Load
	// is the forecast traffic at the daily peak.
	CapacityGbps float64 `json:"capacity_gbps"`
	PeakGbps     float64 `json:"peak_gbps"`
	// Location is Timezone loaded; Generate always sets it. A nil
	// Location is treated as UTC.
	Location *time.Location `json:"-"`
}

// LocalHour returns the wall-clock hour of t in the metro's time zone, as a
// fraction in [0, 24): 20:30 local is 20.5, whatever t's own location.
func (m *Metro) LocalHour(t time.Time) float64 {
	loc := m.Location
	if loc == nil {
		loc = time.UTC
	}
	lt := t.In(loc)
	return float64(lt.Hour()) + float64(lt.Minute())/60 +
		(float64(lt.Second())+float64(lt.Nanosecond())/1e9)/3600
}

// Utilisation returns the forecast share of the metro's serving capacity
// in use at t: Load * Diurnal(LocalHour(t)).
func (m *Metro) Utilisation(t time.Time) float64 {
	return m.Load * Diurnal(m.LocalHour(t))
}

// ForecastGbps returns the metro's forecast traffic at t:
// CapacityGbps * Utilisation(t).
func (m *Metro) ForecastGbps(t time.Time) float64 {
	return m.CapacityGbps * m.Utilisation(t)
}

// diurnalKnots is the share of peak traffic at each full local hour: a
// trough from 04:00 to 05:00 and the peak from 20:00 to 21:00, the shape of
// consumer video and download traffic.
var diurnalKnots = [24]float64{
	0.72, 0.56, 0.42, 0.32, 0.25, 0.25, 0.29, 0.36, // 00-07
	0.44, 0.50, 0.55, 0.59, 0.63, 0.65, 0.66, 0.67, // 08-15
	0.69, 0.74, 0.81, 0.90, 1.00, 1.00, 0.94, 0.84, // 16-23
}

// Diurnal returns the share of the daily peak traffic a metro carries at
// localHour (wall-clock hours in the metro's zone, 20.5 for 20:30). It is
// lowest, 0.25, between 04:00 and 05:00 and 1 between 20:00 and 21:00,
// and it eases smoothly between full hours. Hours outside [0, 24) wrap;
// NaN and infinities give 0.
func Diurnal(localHour float64) float64 {
	if math.IsNaN(localHour) || math.IsInf(localHour, 0) {
		return 0
	}
	h := math.Mod(localHour, 24)
	if h < 0 {
		h += 24
	}
	if h >= 24 { // -tiny + 24 rounds up to 24
		h = 0
	}
	i := int(h)
	f := h - float64(i)
	a, b := diurnalKnots[i], diurnalKnots[(i+1)%24]
	return a + (b-a)*(1-math.Cos(math.Pi*f))/2
}

// MetroTraffic is one metro's forecast at an instant.
type MetroTraffic struct {
	Metro string `json:"metro"`
	// Local is the instant in the metro's time zone.
	Local time.Time `json:"local"`
	// Utilisation is the share of CapacityGbps in use.
	Utilisation  float64 `json:"utilisation"`
	TrafficGbps  float64 `json:"traffic_gbps"`
	CapacityGbps float64 `json:"capacity_gbps"`
}

// TrafficAt returns the forecast traffic of every metro at t, in the order
// of f.Metros, from the diurnal curve in each metro's local time. It works
// from the metros' totals at generation, so a planner or a demo can step
// through a day cheaply; it does not look at f.Nodes.
func (f *Fleet) TrafficAt(t time.Time) []MetroTraffic {
	out := make([]MetroTraffic, len(f.Metros))
	for i := range f.Metros {
		m := &f.Metros[i]
		loc := m.Location
		if loc == nil {
			loc = time.UTC
		}
		u := m.Utilisation(t)
		out[i] = MetroTraffic{
			Metro:        m.Code,
			Local:        t.In(loc),
			Utilisation:  u,
			TrafficGbps:  m.CapacityGbps * u,
			CapacityGbps: m.CapacityGbps,
		}
	}
	return out
}

// Metro returns the metro with the given code, or nil.
func (f *Fleet) Metro(code string) *Metro {
	for i := range f.Metros {
		if f.Metros[i].Code == code {
			return &f.Metros[i]
		}
	}
	return nil
}

// metroSpec is one entry of the catalog Generate draws metros from.
type metroSpec struct {
	code, city, region, continent, zone string
	tier                                int
}

// catalog lists the metros in the order small fleets take them: the first
// six span six continents, and every metro after adds another zone or
// region, so that a fleet of any size covers several continents and both
// hemispheres' daylight saving rules.
var catalog = [...]metroSpec{
	{"NYC", "New York", "na-east", "north-america", "America/New_York", 1},
	{"LHR", "London", "eu-west", "europe", "Europe/London", 1},
	{"NRT", "Tokyo", "ap-east", "asia", "Asia/Tokyo", 1},
	{"SYD", "Sydney", "oc", "oceania", "Australia/Sydney", 1},
	{"GRU", "Sao Paulo", "sa", "south-america", "America/Sao_Paulo", 1},
	{"JNB", "Johannesburg", "af", "africa", "Africa/Johannesburg", 2},
	{"FRA", "Frankfurt", "eu-central", "europe", "Europe/Berlin", 1},
	{"BOM", "Mumbai", "ap-south", "asia", "Asia/Kolkata", 1},
	{"DEN", "Denver", "na-west", "north-america", "America/Denver", 2},
	{"SCL", "Santiago", "sa", "south-america", "America/Santiago", 2},
	{"DXB", "Dubai", "me", "asia", "Asia/Dubai", 2},
	{"ADL", "Adelaide", "oc", "oceania", "Australia/Adelaide", 3},
	{"LAX", "Los Angeles", "na-west", "north-america", "America/Los_Angeles", 1},
	{"SIN", "Singapore", "ap-south", "asia", "Asia/Singapore", 1},
	{"ORD", "Chicago", "na-central", "north-america", "America/Chicago", 1},
	{"AMS", "Amsterdam", "eu-west", "europe", "Europe/Amsterdam", 1},
	{"HKG", "Hong Kong", "ap-east", "asia", "Asia/Hong_Kong", 1},
	{"KTM", "Kathmandu", "ap-south", "asia", "Asia/Kathmandu", 3},
	{"YYT", "St. John's", "na-east", "north-america", "America/St_Johns", 3},
	{"IAD", "Ashburn", "na-east", "north-america", "America/New_York", 1},
	{"PAR", "Paris", "eu-west", "europe", "Europe/Paris", 1},
	{"SJC", "San Jose", "na-west", "north-america", "America/Los_Angeles", 1},
	{"DFW", "Dallas", "na-central", "north-america", "America/Chicago", 1},
	{"AKL", "Auckland", "oc", "oceania", "Pacific/Auckland", 3},
	{"CAI", "Cairo", "af", "africa", "Africa/Cairo", 3},
	{"ICN", "Seoul", "ap-east", "asia", "Asia/Seoul", 2},
	{"MEL", "Melbourne", "oc", "oceania", "Australia/Melbourne", 2},
	{"EZE", "Buenos Aires", "sa", "south-america", "America/Argentina/Buenos_Aires", 2},
	{"MAD", "Madrid", "eu-west", "europe", "Europe/Madrid", 2},
	{"WAW", "Warsaw", "eu-central", "europe", "Europe/Warsaw", 2},
	{"ATL", "Atlanta", "na-east", "north-america", "America/New_York", 2},
	{"SEA", "Seattle", "na-west", "north-america", "America/Los_Angeles", 2},
	{"YYZ", "Toronto", "na-east", "north-america", "America/Toronto", 2},
	{"MIA", "Miami", "na-east", "north-america", "America/New_York", 2},
	{"MEX", "Mexico City", "na-central", "north-america", "America/Mexico_City", 2},
	{"DEL", "New Delhi", "ap-south", "asia", "Asia/Kolkata", 2},
	{"IST", "Istanbul", "me", "europe", "Europe/Istanbul", 2},
	{"MXP", "Milan", "eu-central", "europe", "Europe/Rome", 2},
	{"DUB", "Dublin", "eu-west", "europe", "Europe/Dublin", 2},
	{"LOS", "Lagos", "af", "africa", "Africa/Lagos", 3},
	{"NBO", "Nairobi", "af", "africa", "Africa/Nairobi", 3},
	{"CMN", "Casablanca", "af", "africa", "Africa/Casablanca", 3},
	{"TLV", "Tel Aviv", "me", "asia", "Asia/Jerusalem", 3},
	{"RUH", "Riyadh", "me", "asia", "Asia/Riyadh", 3},
	{"BKK", "Bangkok", "ap-south", "asia", "Asia/Bangkok", 3},
	{"CGK", "Jakarta", "ap-south", "asia", "Asia/Jakarta", 3},
	{"MNL", "Manila", "ap-south", "asia", "Asia/Manila", 3},
	{"TPE", "Taipei", "ap-east", "asia", "Asia/Taipei", 3},
	{"PER", "Perth", "oc", "oceania", "Australia/Perth", 3},
	{"BNE", "Brisbane", "oc", "oceania", "Australia/Brisbane", 3},
	{"BOG", "Bogota", "sa", "south-america", "America/Bogota", 3},
	{"LIM", "Lima", "sa", "south-america", "America/Lima", 3},
	{"PHX", "Phoenix", "na-west", "north-america", "America/Phoenix", 3},
	{"YVR", "Vancouver", "na-west", "north-america", "America/Vancouver", 3},
	{"HNL", "Honolulu", "na-west", "north-america", "Pacific/Honolulu", 3},
	{"ARN", "Stockholm", "eu-central", "europe", "Europe/Stockholm", 3},
	{"HEL", "Helsinki", "eu-central", "europe", "Europe/Helsinki", 3},
	{"ZRH", "Zurich", "eu-central", "europe", "Europe/Zurich", 3},
	{"KUL", "Kuala Lumpur", "ap-south", "asia", "Asia/Kuala_Lumpur", 3},
	{"MAA", "Chennai", "ap-south", "asia", "Asia/Kolkata", 3},
}
