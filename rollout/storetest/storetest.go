// Package storetest checks that a rollout.Store behaves as the Runner
// needs: users writing their own Store (on etcd, on a database) run it
// from their tests.
//
//	func TestMyStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) rollout.Store { return newMyStore(t) })
//	}
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/rollout"
)

// Events returns n events numbered from first, of several types and
// with most fields set, for round trips.
func Events(first uint64, n int) []rollout.Event {
	at := time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC)
	out := make([]rollout.Event, n)
	for i := range out {
		seq := first + uint64(i)
		e := rollout.Event{Seq: seq, At: at.Add(time.Duration(seq) * time.Minute)}
		switch seq % 4 {
		case 1:
			e.Type = rollout.EventWaveStarted
			e.Wave, e.Attempt, e.Key, e.Stage = int(seq), 1, fmt.Sprintf("r/wave/%d/1", seq), rollout.StageGrowth
			e.Servers = []rollout.WaveServer{{ID: "edge-1", Metro: "DEN", Cluster: "den1-c01", Prev: "3.1.4"}, {ID: "edge-2", Unhealthy: true}}
		case 2:
			e.Type = rollout.EventWaveDeployed
			e.Wave, e.Key = int(seq), fmt.Sprintf("r/wave/%d/1", seq)
			e.Results = []rollout.ServerResult{{Server: "edge-1", OK: true}, {Server: "edge-2", Error: "state.apply: 2 states failed"}}
		case 3:
			e.Type = rollout.EventBudgetExceeded
			e.Breaches = []rollout.Breach{{Scope: "metro", Name: "DEN", Failures: 2, Allowed: 1}}
			e.Reason = "über budget ✓"
		default:
			e.Type = rollout.EventPaused
			e.Cause, e.Reason = rollout.CauseOperator, "hold"
		}
		out[i] = e
	}
	return out
}

// Run runs the conformance tests; newStore returns an empty Store, and
// is called once per subtest.
func Run(t *testing.T, newStore func(t *testing.T) rollout.Store) {
	ctx := context.Background()

	t.Run("RoundTrip", func(t *testing.T) {
		s := newStore(t)
		want := Events(1, 9)
		require.NoError(t, s.Append(ctx, "r1", 0, want[:1]...))
		require.NoError(t, s.Append(ctx, "r1", 1, want[1:5]...))
		require.NoError(t, s.Append(ctx, "r1", 5, want[5:]...))
		got, err := s.Load(ctx, "r1")
		require.NoError(t, err)
		require.Empty(t, cmp.Diff(want, got))
	})

	t.Run("Conflict", func(t *testing.T) {
		s := newStore(t)
		require.NoError(t, s.Append(ctx, "r1", 0, Events(1, 3)...))
		require.ErrorIs(t, s.Append(ctx, "r1", 0, Events(1, 1)...), rollout.ErrConflict, "a new rollout under an existing ID")
		require.ErrorIs(t, s.Append(ctx, "r1", 2, Events(3, 1)...), rollout.ErrConflict, "behind the log")
		require.ErrorIs(t, s.Append(ctx, "r1", 4, Events(5, 1)...), rollout.ErrConflict, "ahead of the log")
		got, err := s.Load(ctx, "r1")
		require.NoError(t, err)
		require.Len(t, got, 3, "a refused append writes nothing")
	})

	t.Run("BadAppend", func(t *testing.T) {
		s := newStore(t)
		require.Error(t, s.Append(ctx, "r1", 0))
		require.Error(t, s.Append(ctx, "r1", 0, Events(2, 1)...), "numbered wrong")
		require.Error(t, s.Append(ctx, "", 0, Events(1, 1)...), "no ID")
		_, err := s.Load(ctx, "r1")
		require.ErrorIs(t, err, rollout.ErrNotFound)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		require.ErrorIs(t, s.Append(cctx, "r1", 0, Events(1, 1)...), context.Canceled)
	})

	t.Run("List", func(t *testing.T) {
		s := newStore(t)
		ids, err := s.List(ctx)
		require.NoError(t, err)
		require.Empty(t, ids)
		for _, id := range []string{"r3", "r1", "r10", "r2"} {
			require.NoError(t, s.Append(ctx, id, 0, Events(1, 1)...))
		}
		ids, err = s.List(ctx)
		require.NoError(t, err)
		require.Equal(t, []string{"r1", "r10", "r2", "r3"}, ids)
	})

	t.Run("ConcurrentReadersWhileWriting", func(t *testing.T) {
		s := newStore(t)
		const n = 200
		all := Events(1, n)
		require.NoError(t, s.Append(ctx, "r1", 0, all[0]))
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		stop := make(chan struct{})
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					got, err := s.Load(ctx, "r1")
					if err != nil {
						errs <- err
						return
					}
					// Every read is a whole prefix of the log.
					if d := cmp.Diff(all[:len(got)], got); d != "" {
						errs <- errors.New(d)
						return
					}
				}
			}()
		}
		// Two writers race for every sequence number: exactly one wins.
		var wins sync.Map
		for w := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for seq := uint64(1); seq < n; seq++ {
					for {
						err := s.Append(ctx, "r1", seq, all[seq])
						if err == nil {
							if _, dup := wins.LoadOrStore(seq, w); dup {
								errs <- fmt.Errorf("event %d appended twice", seq+1)
							}
							break
						}
						if !errors.Is(err, rollout.ErrConflict) {
							errs <- err
							return
						}
						got, err := s.Load(ctx, "r1")
						if err != nil {
							errs <- err
							return
						}
						if uint64(len(got)) > seq {
							break // the other writer appended it
						}
					}
				}
			}()
		}
		deadline := time.Now().Add(60 * time.Second)
		for {
			got, err := s.Load(ctx, "r1")
			require.NoError(t, err)
			if len(got) == n {
				break
			}
			if time.Now().After(deadline) {
				close(stop)
				t.Fatal("the writers did not finish")
			}
			time.Sleep(time.Millisecond)
		}
		close(stop)
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		got, err := s.Load(ctx, "r1")
		require.NoError(t, err)
		require.Empty(t, cmp.Diff(all, got))
	})
}
