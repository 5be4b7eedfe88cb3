package rollout

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/fleetkit/fleetkit/disposition"
)

// ErrInvalidSpec is wrapped by every error about a malformed spec.
var ErrInvalidSpec = errors.New("invalid rollout spec")

// SpecError reports a bad value in a spec. File and Line are set when the
// spec came from YAML; Field is the dotted path of the field, such as
// "budgets.metro" or "windows[2].start".
type SpecError struct {
	File  string
	Line  int
	Field string
	Err   error
}

// Error formats the error as file:line: field: message.
func (e *SpecError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns ErrInvalidSpec and the underlying error.
func (e *SpecError) Unwrap() []error { return []error{ErrInvalidSpec, e.Err} }

// Default values of a spec's optional settings.
const (
	DefaultDeploy  = 15 * time.Minute
	DefaultHorizon = 30 * 24 * time.Hour
	// MaxHorizon bounds how far ahead a plan may look.
	MaxHorizon = 366 * 24 * time.Hour
)

// Spec says what to roll out and how. The zero value of an optional field
// means "no constraint" unless its comment says otherwise. A Spec is
// usable directly from Go; call Validate (Plan does) before use.
type Spec struct {
	// Name identifies the rollout in plans and reports.
	Name string `json:"name,omitempty"`
	// Component and Version name the release. When both are set, targets
	// whose Versions[Component] already equals Version are skipped.
	Component string `json:"component,omitempty"`
	Version   string `json:"version,omitempty"`
	// Select and Exclude are disposition queries (the index's syntax,
	// "role=edge metro=DEN,NYC"). Targets are the nodes matching Select
	// and not matching Exclude; an empty Select matches every node and an
	// empty Exclude excludes none.
	Select  string `json:"select,omitempty"`
	Exclude string `json:"exclude,omitempty"`
	// Deploy is how long a wave's servers are out of service; zero means
	// DefaultDeploy.
	Deploy Duration `json:"deploy,omitempty"`
	// Horizon is how far past the start the plan may reach; zero means
	// DefaultHorizon. A plan that cannot place every schedulable target
	// within it fails with ErrInfeasible.
	Horizon Duration `json:"horizon,omitempty"`
	// Pack is the longest a wave may be held back for an instant at which
	// it can hold more of the metros that bound the number of waves, where
	// windows and metros_per_region keep metros apart. It trades calendar
	// time for fewer, fuller waves: on the generator's fleets 12h takes
	// 15-30% fewer waves and 1.5-4x the calendar time (BENCHMARKS.md).
	// Zero, the default, never holds a wave back: each wave starts at the
	// first instant any metro can join, and the rollout ends soonest.
	// Where holding waves would run past the horizon, the planner holds
	// them half as long (up to three times), then not at all.
	Pack Duration `json:"pack,omitempty"`
	// Budgets bound how many servers of each failure domain one wave may
	// take out.
	Budgets Budgets `json:"budgets,omitzero"`
	// Capacity, when set, keeps enough serving capacity in each metro for
	// its forecast traffic.
	Capacity *Capacity `json:"capacity,omitempty"`
	// Windows are the local-time windows waves may run in. With none,
	// waves may run at any time.
	Windows []Window `json:"windows,omitempty"`
	// Blackouts are periods in which nothing runs.
	Blackouts []Blackout `json:"blackouts,omitempty"`
	// Canary is the optional first wave.
	Canary Canary `json:"canary,omitzero"`
	// Growth sets the size of the waves after the canary.
	Growth Growth `json:"growth"`
	// Order lists ordering preferences, most important first. They are
	// preferences: a server goes ahead of its order when a wave could
	// not take it otherwise (its preferred peers are held back by a
	// budget), or when its site or cluster needs as many waves as its
	// whole metro and so must be in every one of them.
	Order []Preference `json:"order,omitempty"`
	// Failure sets the failure budgets the Runner enforces.
	Failure Failure `json:"failure,omitzero"`
	// Gate is the Runner's health gate after each wave.
	Gate Gate `json:"gate,omitzero"`
	// Omit lists server IDs that are not targets whatever Select says.
	// The Runner sets it to re-plan what is left of a rollout; it has no
	// YAML key.
	Omit []string `json:"omit,omitempty"`
}

// Amount is a count of servers or a percentage.
type Amount struct {
	// Count is used when Percent is false.
	Count int `json:"count,omitempty"`
	// Pct is the percentage, 0 to 100, used when Percent is true.
	Pct     float64 `json:"pct,omitempty"`
	Percent bool    `json:"percent,omitempty"`
}

// Count returns an Amount of n servers.
func Count(n int) *Amount { return &Amount{Count: n} }

// Percent returns an Amount of p percent.
func Percent(p float64) *Amount { return &Amount{Pct: p, Percent: true} }

// String writes the amount as "12" or "12.5%".
func (a Amount) String() string {
	if a.Percent {
		return strconv.FormatFloat(a.Pct, 'f', -1, 64) + "%"
	}
	return strconv.Itoa(a.Count)
}

// ParseAmount parses "12" or "12.5%".
func ParseAmount(s string) (Amount, error) {
	t := strings.TrimSpace(s)
	if p, ok := strings.CutSuffix(t, "%"); ok {
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return Amount{}, fmt.Errorf("%q is not a count or percentage", s)
		}
		a := Amount{Pct: f, Percent: true}
		return a, a.check()
	}
	n, err := strconv.Atoi(t)
	if err != nil {
		return Amount{}, fmt.Errorf("%q is not a count or percentage", s)
	}
	a := Amount{Count: n}
	return a, a.check()
}

func (a Amount) check() error {
	if a.Percent {
		if !(a.Pct >= 0 && a.Pct <= 100) {
			return fmt.Errorf("percentage %v%% is outside 0%%..100%%", a.Pct)
		}
		return nil
	}
	if a.Count < 0 {
		return fmt.Errorf("count %d is negative", a.Count)
	}
	return nil
}

// MarshalText writes the amount as "12" or "12.5%".
func (a Amount) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText parses "12" or "12.5%".
func (a *Amount) UnmarshalText(b []byte) (err error) { *a, err = ParseAmount(string(b)); return err }

// budget resolves a budget Amount against a domain of n in-service
// servers: a percentage rounds down but is at least 1 unless it is 0%.
func (a Amount) budget(n int) int {
	if !a.Percent {
		return a.Count
	}
	if a.Pct == 0 {
		return 0
	}
	return max(1, int(math.Floor(a.Pct*float64(n)/100+1e-9)))
}

// size resolves a growth Amount against a total of n servers: a
// percentage rounds up, and every size is at least 1.
func (a Amount) size(n int) int {
	if !a.Percent {
		return max(1, a.Count)
	}
	return max(1, int(math.Ceil(a.Pct*float64(n)/100-1e-9)))
}

// Duration is a time.Duration written as Go writes durations ("90m",
// "1h30m"), also accepting a whole number of days ("2d").
type Duration time.Duration

// ParseDuration parses "45m", "1h30m" or "2d".
func ParseDuration(s string) (Duration, error) {
	t := strings.TrimSpace(s)
	if d, ok := strings.CutSuffix(t, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n < 0 || n > 100000 {
			return 0, fmt.Errorf("%q is not a duration", s)
		}
		return Duration(time.Duration(n) * 24 * time.Hour), nil
	}
	d, err := time.ParseDuration(t)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("duration %q is negative", s)
	}
	return Duration(d), nil
}

// String writes the duration as time.Duration does.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText writes the duration as time.Duration.String does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText parses a duration.
func (d *Duration) UnmarshalText(b []byte) (err error) {
	*d, err = ParseDuration(string(b))
	return err
}

// Budgets are the failure-domain budgets: how many servers of one domain
// one wave may take out, as a count or a percentage of the domain's
// in-service servers (all of them, targets or not). A percentage rounds
// down but is at least 1 unless it is 0%. Nil means no limit. Waves run
// one after another and servers return to service before the next wave
// starts, so a per-wave budget is also the most that are out at once.
type Budgets struct {
	// Global caps every wave, against the fleet's in-service servers.
	Global  *Amount `json:"global,omitempty"`
	Region  *Amount `json:"region,omitempty"`
	Metro   *Amount `json:"metro,omitempty"`
	Site    *Amount `json:"site,omitempty"`
	Cluster *Amount `json:"cluster,omitempty"`
	// MetrosPerRegion, SitesPerMetro and ClustersPerSite, when positive,
	// bound how many distinct children of one domain a wave may touch:
	// MetrosPerRegion 1 is "at most one metro per region at a time".
	MetrosPerRegion int `json:"metros_per_region,omitempty"`
	SitesPerMetro   int `json:"sites_per_metro,omitempty"`
	ClustersPerSite int `json:"clusters_per_site,omitempty"`
}

// Capacity is the traffic constraint: a wave may take servers out of a
// metro only while the metro's remaining serving capacity carries its
// forecast traffic times (1 + Headroom) for the whole deploy.
//
// A metro's serving capacity is the capacity of its in-service servers
// whose health is not down. Its forecast at an instant is its daily peak
// times Profile at the metro's local hour; the peak is derived from the
// snapshot's traffic (the same servers' traffic, taken to be measured at
// ObservedAt) unless Forecast gives the metro's traffic by local hour.
type Capacity struct {
	// Headroom is the spare share kept above the forecast, e.g. 0.2.
	Headroom float64 `json:"headroom"`
	// Profile is the traffic at each local hour 0..23 as a share of the
	// daily peak; nil means DefaultProfile.
	Profile []float64 `json:"profile,omitempty"`
	// ObservedAt is when the snapshot's traffic was measured; the zero
	// time means the plan's start.
	ObservedAt time.Time `json:"observed_at,omitzero"`
	// Forecast gives, per metro, its traffic in Gbps at each local hour
	// 0..23, replacing the derivation from the snapshot.
	Forecast map[string][]float64 `json:"forecast,omitempty"`
}

// DefaultProfile returns the default diurnal traffic profile: the share of
// the daily peak at each local hour, lowest from 04:00 to 06:00 and peaking
// from 20:00 to 22:00, the shape of consumer video traffic.
func DefaultProfile() []float64 {
	return []float64{
		0.72, 0.56, 0.42, 0.32, 0.25, 0.25, 0.29, 0.36,
		0.44, 0.50, 0.55, 0.59, 0.63, 0.65, 0.66, 0.67,
		0.69, 0.74, 0.81, 0.90, 1.00, 1.00, 0.94, 0.84,
	}
}

// Scope says where a window or blackout applies: the whole fleet (both
// empty), one region, or one metro.
type Scope struct {
	Region string `json:"region,omitempty"`
	Metro  string `json:"metro,omitempty"`
}

// String names the scope: "global", "region X" or "metro X".
func (s Scope) String() string {
	switch {
	case s.Metro != "":
		return "metro " + s.Metro
	case s.Region != "":
		return "region " + s.Region
	}
	return "global"
}

// TimeOfDay is a wall-clock time of day in minutes after midnight, 0 to 1440
// (24:00, allowed only as a window's end).
type TimeOfDay int

// ParseTimeOfDay parses "HH:MM".
func ParseTimeOfDay(s string) (TimeOfDay, error) {
	h, m, ok := strings.Cut(strings.TrimSpace(s), ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || len(m) != 2 || hh < 0 || mm < 0 || mm > 59 || hh > 24 || hh == 24 && mm != 0 {
		return 0, fmt.Errorf("%q is not a time of day (HH:MM)", s)
	}
	return TimeOfDay(hh*60 + mm), nil
}

// String writes the time of day as "HH:MM".
func (c TimeOfDay) String() string { return fmt.Sprintf("%02d:%02d", int(c)/60, int(c)%60) }

// MarshalText writes "HH:MM".
func (c TimeOfDay) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText parses "HH:MM".
func (c *TimeOfDay) UnmarshalText(b []byte) (err error) {
	*c, err = ParseTimeOfDay(string(b))
	return err
}

// Window is a recurring local-time window in which waves may run.
//
// It holds every instant whose wall-clock time in TZ lies in [Start, End)
// on one of Days; an End at or before Start runs past midnight into the
// next day, and Days then names the day it starts on. Because it is
// defined on wall-clock time, a window is DST-correct: on a spring-forward
// day a window over the skipped hour is shorter (or empty), and on a
// fall-back day one over the repeated hour is longer, by real elapsed
// time.
//
// For a metro, the windows of the narrowest scope that has any apply: its
// metro's windows if there are some, else its region's, else the global
// ones. With no window for a metro at all, it is always open.
type Window struct {
	Scope
	// Days are the weekdays the window opens on; empty means every day.
	Days []time.Weekday `json:"days,omitempty"`
	// Start and End are wall-clock times; End may be 24:00.
	Start TimeOfDay `json:"start"`
	End   TimeOfDay `json:"end"`
	// TZ is an IANA zone, or "" or "metro" for each metro's own zone.
	TZ string `json:"tz,omitempty"`
}

// Blackout is a period [From, To) in which no wave of the scope runs: a
// wave touching a metro must neither start, run nor bake inside a blackout
// of that metro, its region or the whole fleet.
type Blackout struct {
	Scope
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	Reason string    `json:"reason"`
}

// Canary is the first wave: Count servers, chosen among the targets
// matching Where (a disposition query; empty means any target), followed
// by Bake.
type Canary struct {
	Count int      `json:"count,omitempty"`
	Where string   `json:"where,omitempty"`
	Bake  Duration `json:"bake,omitempty"`
}

// Growth sets the size of the waves after the canary, as exactly one of
// Steps, Exponential or Linear. Sizes that are percentages are of the
// number of servers the plan schedules, rounded up, and every size is at
// least 1. Bake is the wait after each growth wave.
type Growth struct {
	// Steps are the wave sizes in order; the last repeats until done.
	Steps []Amount `json:"steps,omitempty"`
	// Exponential multiplies the size by Factor each wave.
	Exponential *Exponential `json:"exponential,omitempty"`
	// Linear adds Step to the size each wave.
	Linear *Linear  `json:"linear,omitempty"`
	Bake   Duration `json:"bake,omitempty"`
}

// Exponential growth: sizes Start, Start*Factor, Start*Factor^2, ...
// (rounded up), never above Cap when Cap is set.
type Exponential struct {
	Start  Amount  `json:"start"`
	Factor float64 `json:"factor"`
	Cap    *Amount `json:"cap,omitempty"`
}

// Linear growth: sizes Start, Start+Step, Start+2*Step, ..., never above
// Cap when Cap is set.
type Linear struct {
	Start Amount  `json:"start"`
	Step  Amount  `json:"step"`
	Cap   *Amount `json:"cap,omitempty"`
}

// Preference is one ordering preference. By is either a metro measure,
// "metro_utilisation", "metro_traffic" or "metro_size" (ascending, so
// low-traffic or small metros first; Desc reverses), or a node field as in
// queries (region, metro, site, cluster, role, platform, release_state,
// kind, label.<key>, version.<component>) with First listing the values
// that go first, in order, before all others.
type Preference struct {
	By    string   `json:"by"`
	First []string `json:"first,omitempty"`
	Desc  bool     `json:"desc,omitempty"`
}

// The metro measures a Preference may order by.
const (
	ByMetroUtilisation = "metro_utilisation"
	ByMetroTraffic     = "metro_traffic"
	ByMetroSize        = "metro_size"
)

func (p Preference) metroMeasure() bool {
	switch p.By {
	case ByMetroUtilisation, ByMetroTraffic, ByMetroSize:
		return true
	}
	return false
}

// deployDur returns the deploy duration with its default.
func (s *Spec) deployDur() time.Duration {
	if s.Deploy == 0 {
		return DefaultDeploy
	}
	return time.Duration(s.Deploy)
}

func (s *Spec) horizonDur() time.Duration {
	if s.Horizon == 0 {
		return DefaultHorizon
	}
	return time.Duration(s.Horizon)
}

// DeployDuration returns how long a wave's servers are out of service.
func (s *Spec) DeployDuration() time.Duration { return s.deployDur() }

// HorizonDuration returns how far past its start a plan may reach.
func (s *Spec) HorizonDuration() time.Duration { return s.horizonDur() }

// Validate checks the spec and returns a *SpecError naming the first bad
// field.
func (s *Spec) Validate() error {
	_, err := s.compile()
	return err
}

func fieldErr(field string, format string, args ...any) error {
	return &SpecError{Field: field, Err: fmt.Errorf(format, args...)}
}

// compiled holds what Validate derives from a spec.
type compiled struct {
	sel, exc, where disposition.Query
	hasExclude      bool
	zones           map[string]*time.Location // explicit window zones
	profile         []float64
	deploy          time.Duration
	horizon         time.Duration
	pack            time.Duration
	canaryBake      time.Duration
	growthBake      time.Duration
}

func (s *Spec) compile() (*compiled, error) {
	c := &compiled{zones: map[string]*time.Location{}}
	var err error
	if c.sel, err = disposition.ParseQuery(s.Select); err != nil {
		return nil, fieldErr("select", "%v", err)
	}
	if strings.TrimSpace(s.Exclude) != "" {
		c.hasExclude = true
		if c.exc, err = disposition.ParseQuery(s.Exclude); err != nil {
			return nil, fieldErr("exclude", "%v", err)
		}
	}
	if (s.Component == "") != (s.Version == "") {
		return nil, fieldErr("version", "component and version must be set together")
	}
	if s.Deploy < 0 {
		return nil, fieldErr("deploy", "must not be negative")
	}
	c.deploy = s.deployDur()
	c.horizon = s.horizonDur()
	if c.horizon < 0 || c.horizon > MaxHorizon {
		return nil, fieldErr("horizon", "must be between 0 and %v", MaxHorizon)
	}
	c.pack = time.Duration(s.Pack)
	if c.pack < 0 || c.pack > MaxHorizon {
		return nil, fieldErr("pack", "must be between 0 and %v", MaxHorizon)
	}
	b := s.Budgets
	for _, f := range []struct {
		name string
		a    *Amount
	}{{"global", b.Global}, {"region", b.Region}, {"metro", b.Metro}, {"site", b.Site}, {"cluster", b.Cluster}} {
		if f.a != nil {
			if err := f.a.check(); err != nil {
				return nil, fieldErr("budgets."+f.name, "%v", err)
			}
		}
	}
	for _, f := range []struct {
		name string
		n    int
	}{{"metros_per_region", b.MetrosPerRegion}, {"sites_per_metro", b.SitesPerMetro}, {"clusters_per_site", b.ClustersPerSite}} {
		if f.n < 0 {
			return nil, fieldErr("budgets."+f.name, "must not be negative")
		}
	}
	if cp := s.Capacity; cp != nil {
		if !(cp.Headroom >= 0 && cp.Headroom <= 100) {
			return nil, fieldErr("capacity.headroom", "must be between 0 and 100, got %v", cp.Headroom)
		}
		c.profile = cp.Profile
		if c.profile == nil {
			c.profile = DefaultProfile()
		}
		if err := checkHourly(c.profile, true); err != nil {
			return nil, fieldErr("capacity.profile", "%v", err)
		}
		for m, f := range cp.Forecast {
			if err := checkHourly(f, false); err != nil {
				return nil, fieldErr("capacity.forecast."+m, "%v", err)
			}
		}
	}
	for i, w := range s.Windows {
		name := fmt.Sprintf("windows[%d]", i)
		if w.Region != "" && w.Metro != "" {
			return nil, fieldErr(name, "set region or metro, not both")
		}
		if w.Start < 0 || w.Start >= 1440 {
			return nil, fieldErr(name+".start", "must be between 00:00 and 23:59")
		}
		if w.End < 0 || w.End > 1440 {
			return nil, fieldErr(name+".end", "must be between 00:00 and 24:00")
		}
		if w.Start == w.End {
			return nil, fieldErr(name+".end", "equals start; use 00:00 to 24:00 for a whole day")
		}
		for _, d := range w.Days {
			if d < time.Sunday || d > time.Saturday {
				return nil, fieldErr(name+".days", "invalid weekday %d", d)
			}
		}
		if w.TZ != "" && w.TZ != "metro" {
			if _, ok := c.zones[w.TZ]; !ok {
				loc, err := time.LoadLocation(w.TZ)
				if err != nil {
					return nil, fieldErr(name+".tz", "unknown time zone %q", w.TZ)
				}
				c.zones[w.TZ] = loc
			}
		}
	}
	for i, bo := range s.Blackouts {
		name := fmt.Sprintf("blackouts[%d]", i)
		if bo.Region != "" && bo.Metro != "" {
			return nil, fieldErr(name, "set region or metro, not both")
		}
		if bo.From.IsZero() || bo.To.IsZero() {
			return nil, fieldErr(name, "needs from and to")
		}
		if !bo.To.After(bo.From) {
			return nil, fieldErr(name+".to", "must be after from")
		}
		if strings.TrimSpace(bo.Reason) == "" {
			return nil, fieldErr(name+".reason", "is required")
		}
	}
	if s.Canary.Count < 0 {
		return nil, fieldErr("canary.count", "must not be negative")
	}
	if c.where, err = disposition.ParseQuery(s.Canary.Where); err != nil {
		return nil, fieldErr("canary.where", "%v", err)
	}
	if s.Canary.Count == 0 && (s.Canary.Where != "" || s.Canary.Bake != 0) {
		return nil, fieldErr("canary.count", "must be positive when canary.where or canary.bake is set")
	}
	c.canaryBake = time.Duration(s.Canary.Bake)
	c.growthBake = time.Duration(s.Growth.Bake)
	for _, d := range []struct {
		field string
		d     time.Duration
	}{{"deploy", c.deploy}, {"canary.bake", c.canaryBake}, {"growth.bake", c.growthBake}} {
		if d.d < 0 || d.d > MaxHorizon {
			return nil, fieldErr(d.field, "must be between 0 and %v", MaxHorizon)
		}
	}
	if err := s.Growth.check(); err != nil {
		return nil, err
	}
	if err := s.Failure.check(); err != nil {
		return nil, err
	}
	if err := s.Gate.check(); err != nil {
		return nil, err
	}
	for i, p := range s.Order {
		name := fmt.Sprintf("order[%d]", i)
		if p.metroMeasure() {
			if len(p.First) > 0 {
				return nil, fieldErr(name+".first", "applies only to node fields, not %s", p.By)
			}
			continue
		}
		if _, err := disposition.ParseTerm(p.By + "=x"); err != nil || strings.ContainsAny(p.By, "=!<> ,") {
			return nil, fieldErr(name+".by", "%q is neither a metro measure (%s, %s, %s) nor a node field", p.By, ByMetroUtilisation, ByMetroTraffic, ByMetroSize)
		}
		if len(p.First) == 0 {
			return nil, fieldErr(name+".first", "lists no values")
		}
		if p.Desc {
			return nil, fieldErr(name+".desc", "applies only to metro measures")
		}
	}
	return c, nil
}

func checkHourly(v []float64, share bool) error {
	if len(v) != 24 {
		return fmt.Errorf("needs 24 hourly values, got %d", len(v))
	}
	for h, x := range v {
		if !(x >= 0) || math.IsInf(x, 0) || share && x == 0 {
			return fmt.Errorf("hour %d: %v is not a positive number", h, x)
		}
	}
	return nil
}

func (g Growth) check() error {
	n := 0
	if len(g.Steps) > 0 {
		n++
	}
	if g.Exponential != nil {
		n++
	}
	if g.Linear != nil {
		n++
	}
	if n != 1 {
		return fieldErr("growth", "set exactly one of steps, exponential or linear")
	}
	for i, a := range g.Steps {
		if err := a.check(); err != nil {
			return fieldErr(fmt.Sprintf("growth.steps[%d]", i), "%v", err)
		}
		if !a.Percent && a.Count == 0 || a.Percent && a.Pct == 0 {
			return fieldErr(fmt.Sprintf("growth.steps[%d]", i), "must be positive")
		}
	}
	positive := func(field string, a Amount) error {
		if err := a.check(); err != nil {
			return fieldErr(field, "%v", err)
		}
		if !a.Percent && a.Count == 0 || a.Percent && a.Pct == 0 {
			return fieldErr(field, "must be positive")
		}
		return nil
	}
	if e := g.Exponential; e != nil {
		if err := positive("growth.exponential.start", e.Start); err != nil {
			return err
		}
		if !(e.Factor >= 1.01 && e.Factor <= 1000) {
			return fieldErr("growth.exponential.factor", "must be between 1.01 and 1000, got %v", e.Factor)
		}
		if e.Cap != nil {
			if err := positive("growth.exponential.cap", *e.Cap); err != nil {
				return err
			}
		}
	}
	if l := g.Linear; l != nil {
		if err := positive("growth.linear.start", l.Start); err != nil {
			return err
		}
		if err := l.Step.check(); err != nil {
			return fieldErr("growth.linear.step", "%v", err)
		}
		if l.Cap != nil {
			if err := positive("growth.linear.cap", *l.Cap); err != nil {
				return err
			}
		}
	}
	return nil
}

// sizes returns the growth wave sizes for a total of n servers: the
// explicit prefix, after which every wave has size tail.
func (g Growth) sizes(n int) (prefix []int, tail int) {
	n = max(n, 1)
	switch {
	case len(g.Steps) > 0:
		for _, a := range g.Steps {
			prefix = append(prefix, a.size(n))
		}
		return prefix[:len(prefix)-1], prefix[len(prefix)-1]
	case g.Exponential != nil:
		e := g.Exponential
		limit := n
		if e.Cap != nil {
			limit = min(limit, e.Cap.size(n))
		}
		x := float64(e.Start.size(n))
		for {
			v := min(int(math.Ceil(x-1e-9)), limit)
			if v >= limit {
				return prefix, v
			}
			prefix = append(prefix, v)
			x *= e.Factor
		}
	default:
		l := g.Linear
		limit := n
		if l.Cap != nil {
			limit = min(limit, l.Cap.size(n))
		}
		start := l.Start.size(n)
		step := 0
		if l.Step.Percent && l.Step.Pct > 0 || !l.Step.Percent && l.Step.Count > 0 {
			step = l.Step.size(n)
		}
		for v := start; ; v += step {
			if v >= limit || step == 0 {
				return prefix, min(v, limit)
			}
			prefix = append(prefix, v)
		}
	}
}
