package sources

import "time"

// Clock is the aggregator's source of time: fetch times, staleness,
// grace periods, intervals and backoff all go through it, so that tests
// can move time by hand instead of sleeping. Per-fetch timeouts are
// context deadlines and use the real clock.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// After returns a channel that receives the time once d has passed.
	After(d time.Duration) <-chan time.Time
}

// systemClock is the real clock, the default.
type systemClock struct{}

func (systemClock) Now() time.Time                         { return time.Now() }
func (systemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
