package boltstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/fleetkit/fleetkit/rollout"
	"github.com/fleetkit/fleetkit/rollout/boltstore"
)

// A Store keeps each rollout's event log; an append names the sequence
// number it expects to follow, so two writers cannot interleave.
func ExampleOpen() {
	dir, err := os.MkdirTemp("", "boltstore")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()

	s, err := boltstore.Open(filepath.Join(dir, "rollouts.db"), nil)
	if err != nil {
		panic(err)
	}
	defer s.Close()

	at := time.Date(2026, 1, 5, 22, 0, 0, 0, time.UTC)
	err = s.Append(ctx, "r1", 0,
		rollout.Event{Seq: 1, At: at, Type: rollout.EventPaused, Reason: "hold for review", Cause: rollout.CauseOperator},
		rollout.Event{Seq: 2, At: at.Add(time.Hour), Type: rollout.EventResumed, Reason: "reviewed"})
	if err != nil {
		panic(err)
	}
	// A writer that has not seen event 2 is refused.
	err = s.Append(ctx, "r1", 1, rollout.Event{Seq: 2, At: at, Type: rollout.EventAborted})
	fmt.Println("stale append refused:", errors.Is(err, rollout.ErrConflict))

	events, err := s.Load(ctx, "r1")
	if err != nil {
		panic(err)
	}
	for _, e := range events {
		fmt.Println(e.Seq, e.Type, e.Reason)
	}
	// Output:
	// stale append refused: true
	// 1 paused hold for review
	// 2 resumed reviewed
}
