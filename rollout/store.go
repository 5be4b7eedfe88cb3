package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// Store keeps rollouts as append-only event logs; a rollout's current
// state is the fold of its log (Fold). Implementations must make an
// Append durable before it returns, apply it whole or not at all, and be
// safe for concurrent use. The embedded default is package boltstore.
type Store interface {
	// Append adds events to the log of rollout id, whose last event must
	// have sequence number expectedSeq (0 for a new rollout); the events
	// must be numbered expectedSeq+1, expectedSeq+2, ... It returns an
	// error wrapping ErrConflict when the log has moved on.
	Append(ctx context.Context, id string, expectedSeq uint64, events ...Event) error
	// Load returns every event of rollout id in order, or an error
	// wrapping ErrNotFound. A damaged log is an error wrapping
	// ErrCorrupt that names the rollout and sequence number, never a
	// shorter log.
	Load(ctx context.Context, id string) ([]Event, error)
	// List returns the IDs of every rollout, sorted.
	List(ctx context.Context) ([]string, error)
}

// Store errors.
var (
	// ErrConflict is wrapped by an Append whose expected sequence number
	// is not the log's last: another writer got there first.
	ErrConflict = errors.New("rollout log changed concurrently")
	// ErrNotFound is wrapped by the error about an unknown rollout.
	ErrNotFound = errors.New("rollout not found")
	// ErrCorrupt is wrapped by the error about a damaged store.
	ErrCorrupt = errors.New("rollout store is corrupt")
)

// CorruptError reports a damaged record of a rollout's log.
type CorruptError struct {
	// Path is the store's file, if it has one.
	Path    string
	Rollout string
	// Seq is the sequence number of the damaged or missing record; 0 when
	// the damage is not in one record.
	Seq uint64
	Err error
}

// Error implements the error interface.
func (e *CorruptError) Error() string {
	var where string
	switch {
	case e.Rollout != "" && e.Seq > 0:
		where = fmt.Sprintf("rollout %s, event %d", e.Rollout, e.Seq)
	case e.Rollout != "":
		where = "rollout " + e.Rollout
	}
	switch {
	case e.Path != "" && where != "":
		return fmt.Sprintf("%s: %s: %v", e.Path, where, e.Err)
	case e.Path != "":
		return fmt.Sprintf("%s: %v", e.Path, e.Err)
	}
	return fmt.Sprintf("%s: %v", where, e.Err)
}

// Unwrap returns ErrCorrupt and the cause.
func (e *CorruptError) Unwrap() []error { return []error{ErrCorrupt, e.Err} }

// CheckAppend validates the arguments of Store.Append: a rollout ID, at
// least one event, and sequence numbers following expectedSeq. Stores
// call it first.
func CheckAppend(id string, expectedSeq uint64, events []Event) error {
	if id == "" {
		return errors.New("rollout: empty rollout ID")
	}
	if len(events) == 0 {
		return fmt.Errorf("rollout %s: append of no events", id)
	}
	for i, e := range events {
		if e.Seq != expectedSeq+uint64(i)+1 {
			return fmt.Errorf("rollout %s: event %d of the append has sequence number %d, want %d", id, i, e.Seq, expectedSeq+uint64(i)+1)
		}
	}
	return nil
}

// MemStore is a Store in memory, for tests and as a baseline. Events are
// kept JSON-encoded, as a durable store keeps them, so that what a test
// reads back went through the same encoding.
type MemStore struct {
	mu   sync.RWMutex
	logs map[string][][]byte
}

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore { return &MemStore{logs: map[string][][]byte{}} }

// Append implements Store.
func (m *MemStore) Append(ctx context.Context, id string, expectedSeq uint64, events ...Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := CheckAppend(id, expectedSeq, events); err != nil {
		return err
	}
	enc := make([][]byte, len(events))
	for i := range events {
		b, err := json.Marshal(&events[i])
		if err != nil {
			return fmt.Errorf("rollout %s: encode event %d: %w", id, events[i].Seq, err)
		}
		enc[i] = b
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if have := uint64(len(m.logs[id])); have != expectedSeq {
		return fmt.Errorf("rollout %s: %w: expected sequence %d, log is at %d", id, ErrConflict, expectedSeq, have)
	}
	m.logs[id] = append(m.logs[id], enc...)
	return nil
}

// Load implements Store.
func (m *MemStore) Load(ctx context.Context, id string) ([]Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	log, ok := m.logs[id]
	log = log[:len(log):len(log)]
	m.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("rollout %s: %w", id, ErrNotFound)
	}
	out := make([]Event, len(log))
	for i, b := range log {
		if err := json.Unmarshal(b, &out[i]); err != nil {
			return nil, &CorruptError{Rollout: id, Seq: uint64(i) + 1, Err: err}
		}
	}
	return out, nil
}

// List implements Store.
func (m *MemStore) List(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	ids := make([]string, 0, len(m.logs))
	for id := range m.logs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, nil
}
