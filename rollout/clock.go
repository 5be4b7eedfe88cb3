package rollout

import (
	"context"
	"sort"
	"sync"
	"time"
)

// Clock is the Runner's source of time: waiting for a wave's window, the
// health gate's polls and minimum healthy time, bake times and deploy
// retries all go through it, so that tests can run a week of rollout in
// milliseconds.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// After returns a channel that receives the time once d has passed.
	After(d time.Duration) <-chan time.Time
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// After returns time.After(d).
func (SystemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// FakeClock is a Clock that moves only when told to, for tests. It is
// safe for concurrent use.
//
// In manual mode (the default) time moves by Advance and Set, and
// Waiters and BlockUntilWaiters let a test wait for the code under test
// to block on the clock. In auto mode every After moves time forward by
// its duration at once, as if the caller had slept: a single goroutine
// that only waits on the clock then runs through days of schedule
// without the test doing anything, deterministically.
type FakeClock struct {
	mu      sync.Mutex
	now     time.Time
	auto    bool
	waiters []fakeWaiter
	changed chan struct{} // closed and replaced when waiters change
}

type fakeWaiter struct {
	at time.Time
	ch chan time.Time
}

// NewFakeClock returns a manual FakeClock set to start.
func NewFakeClock(start time.Time) *FakeClock {
	return &FakeClock{now: start, changed: make(chan struct{})}
}

// SetAuto switches auto mode on or off.
func (c *FakeClock) SetAuto(auto bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.auto = auto
}

// Now returns the fake time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// After returns a channel that receives the fake time once it has moved
// d past now. In auto mode it moves time by d first.
func (c *FakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, fakeWaiter{at: c.now.Add(d), ch: ch})
	if c.auto {
		c.setLocked(c.now.Add(d))
	} else {
		c.notifyLocked()
	}
	return ch
}

// Advance moves the clock forward by d, firing the waiters it passes.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.setLocked(c.now.Add(d))
}

// Set moves the clock to t, firing the waiters it passes. Setting it back
// in time fires none.
func (c *FakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.setLocked(t)
}

func (c *FakeClock) setLocked(t time.Time) {
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

func (c *FakeClock) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// Waiters returns how many After channels are waiting for time to move.
func (c *FakeClock) Waiters() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.waiters)
}

// Next returns the earliest time a waiter waits for, and false when none
// waits.
func (c *FakeClock) Next() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.waiters) == 0 {
		return time.Time{}, false
	}
	ats := make([]time.Time, len(c.waiters))
	for i, w := range c.waiters {
		ats[i] = w.at
	}
	sort.Slice(ats, func(i, j int) bool { return ats[i].Before(ats[j]) })
	return ats[0], true
}

// BlockUntilWaiters waits until at least n After channels are waiting,
// or ctx ends.
func (c *FakeClock) BlockUntilWaiters(ctx context.Context, n int) error {
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
