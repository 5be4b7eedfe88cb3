package rollout

import (
	"time"

	"github.com/fleetkit/fleetkit/clock"
)

// Clock is the Runner's source of time: waiting for a wave's window, the
// health gate's polls and minimum healthy time, bake times and deploy
// retries all go through it, so that tests can run a week of rollout in
// milliseconds. It is clock.Clock.
type Clock = clock.Clock

// SystemClock is the real clock, clock.System.
type SystemClock = clock.System

// FakeClock is a Clock that moves only when told to, for tests:
// clock.Fake, with its manual and auto modes.
type FakeClock = clock.Fake

// NewFakeClock returns a manual FakeClock set to start.
func NewFakeClock(start time.Time) *FakeClock { return clock.NewFake(start) }
