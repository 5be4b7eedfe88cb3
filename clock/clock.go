// Package clock is fleetkit's source of time. The aggregator (sources)
// and the rollout Runner read the time and wait through a Clock, so that
// a test can run a week of refreshes or rollout in milliseconds with a
// Fake, and deterministically.
package clock

import (
	"context"
	"sync"
	"time"
)

// Clock is a source of time.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// After returns a channel that receives the time once d has passed.
	After(d time.Duration) <-chan time.Time
}

// System is the real clock.
type System struct{}

// Now returns time.Now().
func (System) Now() time.Time { return time.Now() }

// After returns time.After(d).
func (System) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Fake is a Clock that moves only when told to, for tests. It is
// safe for concurrent use.
//
// In manual mode (the default) time moves by Advance and Set, and
// Waiters and BlockUntilWaiters let a test wait for the code under test
// to block on the clock. In auto mode every After moves time forward by
// its duration at once, as if the caller had slept: a single goroutine
// that only waits on the clock then runs through days of schedule
// without the test doing anything, deterministically.
type Fake struct {
	mu      sync.Mutex
	now     time.Time
	auto    bool
	waiters []waiter
	changed chan struct{} // closed and replaced when waiters change
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

// NewFake returns a manual Fake set to start.
func NewFake(start time.Time) *Fake {
	return &Fake{now: start, changed: make(chan struct{})}
}

// SetAuto switches auto mode on or off.
func (c *Fake) SetAuto(auto bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.auto = auto
}

// Now returns the fake time.
func (c *Fake) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// After returns a channel that receives the fake time once it has moved
// d past now. In auto mode it moves time by d first.
func (c *Fake) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, waiter{at: c.now.Add(d), ch: ch})
	if c.auto {
		c.setLocked(c.now.Add(d))
	} else {
		c.notifyLocked()
	}
	return ch
}

// Advance moves the clock forward by d, firing the waiters it passes.
func (c *Fake) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.setLocked(c.now.Add(d))
}

// Set moves the clock to t, firing the waiters it passes. Setting it back
// in time fires none.
func (c *Fake) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.setLocked(t)
}

func (c *Fake) setLocked(t time.Time) {
	c.now = t
	keep := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(t) {
			w.ch <- t
			continue
		}
		keep = append(keep, w)
	}
	clear(c.waiters[len(keep):])
	if len(keep) != len(c.waiters) {
		c.waiters = keep
		c.notifyLocked()
	}
}

func (c *Fake) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// Waiters returns how many After channels are waiting for time to move.
func (c *Fake) Waiters() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.waiters)
}

// Next returns the earliest time a waiter waits for, and false when none
// waits.
func (c *Fake) Next() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.waiters) == 0 {
		return time.Time{}, false
	}
	next := c.waiters[0].at
	for _, w := range c.waiters[1:] {
		if w.at.Before(next) {
			next = w.at
		}
	}
	return next, true
}

// BlockUntilWaiters waits until at least n After channels are waiting,
// or ctx ends.
func (c *Fake) BlockUntilWaiters(ctx context.Context, n int) error {
	for {
		c.mu.Lock()
		got, ch := len(c.waiters), c.changed
		c.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Pending returns, for every After channel still waiting, how long after
// now it fires, in the order the channels were made.
func (c *Fake) Pending() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	ds := make([]time.Duration, len(c.waiters))
	for i, w := range c.waiters {
		ds[i] = w.at.Sub(c.now)
	}
	return ds
}
