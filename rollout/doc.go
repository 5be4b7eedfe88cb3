// Package rollout plans staged releases ("Release On Demand") over a fleet:
// given a disposition snapshot and a Spec, NewPlan returns the waves a
// release should follow, respecting failure-domain budgets, each metro's
// traffic and capacity, deploy windows in each metro's local time,
// blackouts and a growth policy.
//
//	spec, err := rollout.ParseSpec("spec.yaml", data)
//	plan, err := rollout.NewPlan(ctx, spec, ix.Snapshot(), time.Now())
//	fmt.Print(plan.Text())
//	fmt.Println(plan.Explain("edge-den1-c07-003.fleet.example"))
//
// A Plan is plain data and a pure, deterministic function of the spec,
// the snapshot and the start time: the same inputs give byte-identical
// JSON. Planning only decides; the Runner (a separate step) acts.
//
// Per-metro work (calendars, forecasts, ordering) runs concurrently with
// errgroup; each goroutine writes only its own metro and the results are
// merged in metro order, so the plan does not depend on scheduling.
//
// # Spec
//
// A spec in YAML (every key optional but growth):
//
//	name: cdn-app-3.2.0
//	component: cdn-app          # with version: skip servers already at it
//	version: 3.2.0
//	select: role=edge           # disposition queries
//	exclude: label.tier=3
//	deploy: 20m                 # how long a wave's servers are out (default 15m)
//	horizon: 14d                # how far ahead to plan (default 30d)
//	pack: 12h                   # hold a wave back up to this for a fuller one: fewer waves, more days (default 0: never)
//	budgets:                    # per wave, count or % of the domain's in-service servers
//	  global: 5%
//	  region: 20%
//	  metro: 10%
//	  site: 15%
//	  cluster: 25%
//	  metros_per_region: 1      # at most one metro per region at a time
//	capacity:
//	  headroom: 0.2             # keep forecast x 1.2 in service
//	windows:
//	  - days: [mon, tue, wed, thu]
//	    start: "22:00"          # local wall clock; an end before start runs overnight
//	    end: "06:00"
//	    tz: metro               # each metro's own zone, or an IANA zone
//	  - metro: SYD              # a metro's own windows replace the global ones
//	    start: "01:00"
//	    end: "05:00"
//	blackouts:
//	  - from: 2026-01-09T00:00:00Z
//	    to: 2026-01-10T00:00:00Z
//	    region: eu-west         # or metro: X, or neither for the whole fleet
//	    reason: sales event
//	canary:
//	  count: 2
//	  where: metro=DEN
//	  bake: 2h
//	growth:
//	  steps: [1, 5, "1%", "5%", "25%"]   # the last step repeats until done
//	  bake: 30m
//	order:
//	  - by: release_state
//	    first: [trial, nrt]
//	  - by: metro_utilisation   # low-traffic metros first
//
// # Semantics
//
// Budgets hold per wave, and since waves run one after another with the
// servers back in service before the next starts, that is also the most
// out at once. A percentage budget rounds down but is at least 1 unless it
// is 0%. Growth percentages are of the plan's Total (the servers the waves
// hold), rounded up. A wave may be smaller than its growth step only when
// another constraint binds, and Wave.BoundBy names it.
//
// A wave touching a metro must fit, with its bake, inside one of the
// metro's windows and outside every blackout of the metro, its region or
// the fleet. Windows are read on the wall clock, so they are correct
// across daylight-saving changes: a window over a skipped hour is shorter
// and one over a repeated hour is longer, by real elapsed time.
//
// With a capacity section, a wave takes servers out of a metro only if the
// metro's remaining serving capacity stays at or above the forecast
// traffic x (1 + headroom) throughout the deploy. The forecast follows a
// diurnal profile by local hour, scaled so that it matches the snapshot's
// traffic at the time it was observed, unless the spec gives the metro's
// forecast directly.
//
// Targets that are not in service, not healthy, already at the version or
// in a metro blacked out for the whole horizon are Skipped with a reason;
// targets that no wave could ever hold (a window shorter than a wave and
// its bake, a zero budget, a server larger than any capacity slack) are
// Unschedulable with a reason. Bounds gives lower bounds on waves and time
// from the constraints alone, so plan quality is a measured ratio.
package rollout
