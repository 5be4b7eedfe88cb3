package clock_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/clock"
)

var start = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)

func TestFake(t *testing.T) {
	c := clock.NewFake(start)
	a := c.After(time.Minute)
	b := c.After(time.Hour)
	require.Equal(t, 2, c.Waiters())
	require.Equal(t, []time.Duration{time.Minute, time.Hour}, c.Pending())
	next, ok := c.Next()
	require.True(t, ok)
	require.Equal(t, start.Add(time.Minute), next)
	c.Advance(30 * time.Second)
	select {
	case <-a:
		t.Fatal("fired early")
	default:
	}
	require.Equal(t, []time.Duration{30 * time.Second, time.Hour - 30*time.Second}, c.Pending())
	c.Advance(30 * time.Second)
	require.Equal(t, start.Add(time.Minute), <-a)
	require.Equal(t, 1, c.Waiters())
	c.Set(start.Add(2 * time.Hour))
	require.Equal(t, start.Add(2*time.Hour), <-b)
	require.Zero(t, c.Waiters())
	require.Empty(t, c.Pending())
	_, ok = c.Next()
	require.False(t, ok)
	require.Equal(t, c.Now(), <-c.After(0))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go func() { c.After(time.Second) }()
	require.NoError(t, c.BlockUntilWaiters(ctx, 1))

	c.SetAuto(true)
	t0 := c.Now()
	require.Equal(t, t0.Add(time.Hour), <-c.After(time.Hour), "auto mode sleeps at once")
	require.Equal(t, t0.Add(time.Hour), c.Now())
}

func TestBlockUntilWaitersEndsWithContext(t *testing.T) {
	c := clock.NewFake(start)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, c.BlockUntilWaiters(ctx, 1), context.Canceled)
}

func TestSystem(t *testing.T) {
	var c clock.Clock = clock.System{}
	before := time.Now()
	require.False(t, c.Now().Before(before))
	<-c.After(time.Millisecond)
	require.GreaterOrEqual(t, time.Since(before), time.Millisecond)
}

// A Fake in manual mode moves only when told to: code under test waits on
// After, the test waits for it to do so, then moves time. A channel
// receives the time the clock was moved to.
func ExampleFake() {
	c := clock.NewFake(start)
	done := make(chan time.Time)
	go func() { done <- <-c.After(90 * time.Minute) }() // the code under test sleeps

	_ = c.BlockUntilWaiters(context.Background(), 1)
	fmt.Println("pending:", c.Pending())
	c.Advance(2 * time.Hour)
	fmt.Println("woke at:", (<-done).Format(time.TimeOnly))
	// Output:
	// pending: [1h30m0s]
	// woke at: 02:00:00
}
