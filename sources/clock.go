package sources

import "github.com/fleetkit/fleetkit/clock"

// Clock is the aggregator's source of time: fetch times, staleness,
// grace periods, intervals and backoff all go through it, so that tests
// can move time by hand instead of sleeping (clock.Fake). Per-fetch
// timeouts are context deadlines and use the real clock. It is
// clock.Clock.
type Clock = clock.Clock
