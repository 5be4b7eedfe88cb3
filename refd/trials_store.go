package refd

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fleetkit/fleetkit/sources/overrides"
)

var bucketTrials = []byte("trials")

// TrialState is where an applied trial is in its life.
type TrialState string

// The trial states.
const (
	TrialApplying TrialState = "applying" // servers reserved, overrides and rollout on their way
	TrialActive   TrialState = "active"   // in force until it ends or expires
	TrialEnded    TrialState = "ended"    // ended by refd trial end
	TrialExpired  TrialState = "expired"  // ended by its expiry
)

// TrialRecord is an applied trial as the Store keeps it.
type TrialRecord struct {
	Name  string     `json:"name"`
	State TrialState `json:"state"`
	File  string     `json:"file"`
	Owner string     `json:"owner"`
	// Digest is the SHA-256 of Source: applying the same file again is a
	// no-op.
	Digest string `json:"digest"`
	// Source is the trial file as applied.
	Source       string `json:"source"`
	ReleaseState string `json:"release_state"`
	// Servers are the trial's servers, sorted; Previous their release
	// state before it.
	Servers  []string          `json:"servers"`
	Previous map[string]string `json:"previous"`
	// Replaced are the overrides the trial replaced, restored when it
	// ends (those still unexpired then).
	Replaced      []overrides.Override `json:"replaced,omitempty"`
	RolloutID     string               `json:"rollout_id,omitempty"`
	RollbackOnEnd bool                 `json:"rollback_on_end,omitempty"`
	Start         time.Time            `json:"start"`
	Expiry        time.Time            `json:"expiry"`
	AppliedBy     string               `json:"applied_by"`
	AppliedAt     time.Time            `json:"applied_at"`
	EndedBy       string               `json:"ended_by,omitempty"`
	EndedAt       time.Time            `json:"ended_at,omitzero"`
	// EndNote says what ending did beyond the overrides: the rollback,
	// or why it could not.
	EndNote string `json:"end_note,omitempty"`
}

// inForce reports whether the trial holds its servers at now.
func (t *TrialRecord) inForce(now time.Time) bool {
	return (t.State == TrialActive || t.State == TrialApplying) && t.Expiry.After(now)
}

// errTrialTaken is returned by ReserveTrial; the message says why.
type errTrialTaken struct{ msg string }

func (e *errTrialTaken) Error() string { return e.msg }

// ReserveTrial stores rec (in state TrialApplying) unless a trial in force
// at now has the same name or some of its servers; it checks and stores in
// one transaction, so two concurrent applies cannot take the same server.
// When the trial in force of the same name has the same digest it returns
// that record and stores nothing.
func (s *Store) ReserveTrial(ctx context.Context, rec *TrialRecord, now time.Time) (*TrialRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var same *TrialRecord
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketTrials)
		if err != nil {
			return err
		}
		err = b.ForEach(func(k, v []byte) error {
			var o TrialRecord
			if err := json.Unmarshal(v, &o); err != nil {
				return fmt.Errorf("trial %q: %w", k, err)
			}
			if !o.inForce(now) {
				return nil
			}
			if o.Name == rec.Name {
				if o.Digest == rec.Digest {
					same = &o
					return nil
				}
				return &errTrialTaken{fmt.Sprintf("trial %s is already %s with a different file (applied by %s at %s); end it first", o.Name, o.State, o.AppliedBy, o.AppliedAt.Format(time.RFC3339))}
			}
			for _, id := range rec.Servers {
				if _, ok := slices.BinarySearch(o.Servers, id); ok {
					return &errTrialTaken{fmt.Sprintf("server %s is already in trial %s", id, o.Name)}
				}
			}
			return nil
		})
		if err != nil || same != nil {
			return err
		}
		v, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		return b.Put([]byte(rec.Name), v)
	})
	return same, err
}

// PutTrial stores rec, replacing the trial of the same name.
func (s *Store) PutTrial(ctx context.Context, rec *TrialRecord) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	v, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketTrials)
		if err != nil {
			return err
		}
		return b.Put([]byte(rec.Name), v)
	})
}

// DeleteTrial removes a trial record.
func (s *Store) DeleteTrial(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketTrials); b != nil {
			return b.Delete([]byte(name))
		}
		return nil
	})
}

// Trials returns every stored trial, ordered by name.
func (s *Store) Trials(ctx context.Context) ([]*TrialRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []*TrialRecord
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTrials)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			t := new(TrialRecord)
			if err := json.Unmarshal(v, t); err != nil {
				return fmt.Errorf("trial %q: %w", k, err)
			}
			out = append(out, t)
			return nil
		})
	})
	return out, err
}

// Trial returns the stored trial name, or ErrNotFound.
func (s *Store) Trial(ctx context.Context, name string) (*TrialRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var t *TrialRecord
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTrials)
		if b == nil {
			return ErrNotFound
		}
		v := b.Get([]byte(name))
		if v == nil {
			return ErrNotFound
		}
		t = new(TrialRecord)
		return json.Unmarshal(v, t)
	})
	return t, err
}
