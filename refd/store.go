package refd

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fleetkit/fleetkit/sources/overrides"
)

// ErrNotFound is returned by Store lookups of absent records.
var ErrNotFound = errors.New("refd: not found")

var (
	bucketAudit     = []byte("audit")
	bucketOverrides = []byte("overrides")
	bucketRollouts  = []byte("rollouts")
)

// Store is refd's local store, a bbolt file: the audit log, the rollouts
// and the manual overrides. It is safe for concurrent use.
type Store struct {
	db *bolt.DB
}

var _ overrides.Store = (*Store)(nil)

// OpenStore opens or creates the store file at path. It fails after a
// second if another process holds the file.
func OpenStore(path string) (*Store, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("refd: open store %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketAudit, bucketOverrides, bucketRollouts} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("refd: init store %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

// AuditEntry is one write through the API: who, what, when, and how it
// ended.
type AuditEntry struct {
	Seq    uint64    `json:"seq"`
	At     time.Time `json:"at"`
	Who    string    `json:"who"`    // the token name
	Action string    `json:"action"` // the route, e.g. "PUT /v1/overrides/{id}"
	Target string    `json:"target"` // the request path
	Status int       `json:"status"` // the response status
	// Body is the request body as sent (JSON bodies as JSON, others as a
	// string), cut at maxAuditBody bytes.
	Body json.RawMessage `json:"body,omitempty"`
}

const maxAuditBody = 8 << 10

// AppendAudit appends e to the audit log, giving it the next sequence
// number.
func (s *Store) AppendAudit(ctx context.Context, e AuditEntry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAudit)
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		e.Seq = seq
		v, err := json.Marshal(e)
		if err != nil {
			return err
		}
		return b.Put(seqKey(seq), v)
	})
}

// Audit returns up to limit audit entries, newest first, older than
// before (0: from the newest).
func (s *Store) Audit(ctx context.Context, limit int, before uint64) ([]AuditEntry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []AuditEntry
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketAudit).Cursor()
		var k, v []byte
		if before == 0 {
			k, v = c.Last()
		} else {
			k, v = c.Seek(seqKey(before))
			if k == nil {
				k, v = c.Last()
			}
			for k != nil && binary.BigEndian.Uint64(k) >= before {
				k, v = c.Prev()
			}
		}
		for ; k != nil && len(out) < limit; k, v = c.Prev() {
			var e AuditEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("audit entry %d: %w", binary.BigEndian.Uint64(k), err)
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

func seqKey(n uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], n)
	return k[:]
}

// LoadOverrides implements overrides.Store.
func (s *Store) LoadOverrides(ctx context.Context) ([]overrides.Override, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []overrides.Override
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketOverrides).ForEach(func(k, v []byte) error {
			var o overrides.Override
			if err := json.Unmarshal(v, &o); err != nil {
				return fmt.Errorf("override %q: %w", k, err)
			}
			out = append(out, o)
			return nil
		})
	})
	return out, err
}

// PutOverride implements overrides.Store.
func (s *Store) PutOverride(ctx context.Context, o overrides.Override) error {
	return s.put(ctx, bucketOverrides, o.ID, o)
}

// DeleteOverride implements overrides.Store.
func (s *Store) DeleteOverride(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketOverrides).Delete([]byte(id)) })
}

func (s *Store) put(ctx context.Context, bucket []byte, key string, v any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Put([]byte(key), b) })
}

// NewRolloutID returns a new rollout ID, "r" and a sequence number.
func (s *Store) NewRolloutID(ctx context.Context) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	var id string
	err := s.db.Update(func(tx *bolt.Tx) error {
		n, err := tx.Bucket(bucketRollouts).NextSequence()
		id = fmt.Sprintf("r%06d", n)
		return err
	})
	return id, err
}

// PutRollout stores r, replacing the rollout of the same ID.
func (s *Store) PutRollout(ctx context.Context, r *Rollout) error {
	return s.put(ctx, bucketRollouts, r.ID, r)
}

// UpdateRollout applies fn to the stored rollout id in one transaction
// and stores the result unless fn fails. It returns ErrNotFound for an
// unknown ID.
func (s *Store) UpdateRollout(ctx context.Context, id string, fn func(*Rollout) error) (*Rollout, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var r Rollout
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRollouts)
		v := b.Get([]byte(id))
		if v == nil {
			return ErrNotFound
		}
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("rollout %q: %w", id, err)
		}
		if err := fn(&r); err != nil {
			return err
		}
		nv, err := json.Marshal(&r)
		if err != nil {
			return err
		}
		return b.Put([]byte(id), nv)
	})
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// Rollout returns the stored rollout id, or ErrNotFound.
func (s *Store) Rollout(ctx context.Context, id string) (*Rollout, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var r *Rollout
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketRollouts).Get([]byte(id))
		if v == nil {
			return ErrNotFound
		}
		r = new(Rollout)
		return json.Unmarshal(v, r)
	})
	return r, err
}

// Rollouts returns every stored rollout, ordered by ID, without their
// plans.
func (s *Store) Rollouts(ctx context.Context) ([]*Rollout, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []*Rollout
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRollouts).ForEach(func(k, v []byte) error {
			r := new(Rollout)
			if err := json.Unmarshal(v, r); err != nil {
				return fmt.Errorf("rollout %q: %w", k, err)
			}
			r.Plan = nil
			out = append(out, r)
			return nil
		})
	})
	return out, err
}
