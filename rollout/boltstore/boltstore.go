package boltstore

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/fleetkit/fleetkit/rollout"
)

// DefaultBucket is the top-level bucket that holds the rollouts.
const DefaultBucket = "fleetkit.rollouts"

// DefaultTimeout is how long Open waits for another process's lock on
// the file.
const DefaultTimeout = time.Second

// Options configure Open. The zero value is usable.
type Options struct {
	// Timeout bounds the wait for the file lock; 0 means DefaultTimeout.
	Timeout time.Duration
	// SkipVerify skips reading every record on Open. Verification costs
	// one pass over the file, and finds damage before a rollout is
	// resumed from it.
	SkipVerify bool
	// NoSync skips fsync on commit: for tests and benchmarks only, since
	// a crash may then lose appends that returned.
	NoSync bool
}

// Store is a rollout.Store in one bbolt file: a top-level bucket holding a
// bucket per rollout, whose keys are the events' sequence numbers
// (8 bytes, big-endian) and whose values are a CRC-32C of the event's
// JSON followed by the JSON. It is safe for concurrent use: readers use
// bbolt read transactions and never block the writer.
type Store struct {
	db     *bolt.DB
	path   string
	bucket []byte
	own    bool // Close closes db
}

var _ rollout.Store = (*Store)(nil)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Open opens or creates the store file at path. An existing file is
// checked before use: an empty file, a file shorter than its last
// transaction needs (truncated), bad bbolt meta pages or, unless
// opts.SkipVerify, a damaged record give an error wrapping
// rollout.ErrCorrupt that names the file (and the rollout and sequence
// number, for a record). opts may be nil.
func Open(path string, opts *Options) (*Store, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	fi, err := os.Stat(path)
	switch {
	case err == nil && fi.Size() == 0:
		return nil, &rollout.CorruptError{Path: path, Err: errors.New("the file is empty (a store that was never written has its bbolt pages); move it away to start a new store")}
	case err == nil:
		if err := precheck(path, fi.Size(), o.Timeout); err != nil {
			return nil, err
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("boltstore: %w", err)
	}
	var db *bolt.DB
	err = guard(path, func() error {
		var err error
		db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: o.Timeout, NoSync: o.NoSync})
		return err
	})
	if err != nil {
		return nil, boltErr(path, err)
	}
	s := &Store{db: db, path: path, bucket: []byte(DefaultBucket), own: true}
	if err := s.init(); err != nil {
		db.Close()
		return nil, err
	}
	if !o.SkipVerify {
		if err := s.Verify(context.Background()); err != nil {
			db.Close()
			return nil, err
		}
	}
	return s, nil
}

// New returns a Store in bucket of an open bbolt database, for programs
// that keep other data in the same file. The caller owns db: Close does
// not close it. bucket "" means DefaultBucket.
func New(db *bolt.DB, bucket string) (*Store, error) {
	if bucket == "" {
		bucket = DefaultBucket
	}
	s := &Store{db: db, path: db.Path(), bucket: []byte(bucket)}
	if err := s.init(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Store) init() error {
	return guard(s.path, func() error {
		return s.db.Update(func(tx *bolt.Tx) error {
			_, err := tx.CreateBucketIfNotExists(s.bucket)
			return err
		})
	})
}

// Close closes the file, unless the Store was made by New.
func (s *Store) Close() error {
	if !s.own {
		return nil
	}
	return s.db.Close()
}

// Path returns the file's path.
func (s *Store) Path() string { return s.path }

// precheck opens the file read-only and compares its size with what its
// last transaction needs, so that a truncated file is an error rather
// than a read past its end.
func precheck(path string, size int64, timeout time.Duration) error {
	var db *bolt.DB
	err := guard(path, func() error {
		var err error
		db, err = bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: timeout})
		return err
	})
	if err != nil {
		return boltErr(path, err)
	}
	defer db.Close()
	var need int64
	if err := guard(path, func() error {
		return db.View(func(tx *bolt.Tx) error {
			need = tx.Size()
			return nil
		})
	}); err != nil {
		return err
	}
	if size < need {
		return &rollout.CorruptError{Path: path, Err: fmt.Errorf("the file is truncated: %d bytes, its last transaction needs %d", size, need)}
	}
	return nil
}

// boltErr classifies an error of bolt.Open: bad meta pages are
// corruption, the rest (a lock timeout, permissions) is not.
func boltErr(path string, err error) error {
	var ce *rollout.CorruptError
	switch {
	case errors.As(err, &ce):
		return err
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum),
		errors.Is(err, berrors.ErrVersionMismatch), errors.Is(err, berrors.ErrInvalidMapping):
		return &rollout.CorruptError{Path: path, Err: fmt.Errorf("not a readable bbolt file: %w", err)}
	}
	return fmt.Errorf("boltstore: open %s: %w", path, err)
}

// guard runs fn, turning a panic or a memory fault inside bbolt (which
// trusts the pages it reads) into an error wrapping rollout.ErrCorrupt.
func guard(path string, fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = &rollout.CorruptError{Path: path, Err: fmt.Errorf("bbolt failed reading the file: %v", r)}
		}
	}()
	return fn()
}

func seqKey(n uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], n)
	return k[:]
}

// encode returns an event's record: CRC-32C of the JSON, then the JSON.
func encode(e *rollout.Event) ([]byte, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	rec := make([]byte, 4+len(b))
	binary.BigEndian.PutUint32(rec, crc32.Checksum(b, castagnoli))
	copy(rec[4:], b)
	return rec, nil
}

func (s *Store) corrupt(id string, seq uint64, format string, args ...any) error {
	return &rollout.CorruptError{Path: s.path, Rollout: id, Seq: seq, Err: fmt.Errorf(format, args...)}
}

// decode checks and decodes the record of event seq.
func (s *Store) decode(id string, seq uint64, k, v []byte, e *rollout.Event) error {
	if len(k) != 8 {
		return s.corrupt(id, seq, "key %x is not a sequence number", k)
	}
	if got := binary.BigEndian.Uint64(k); got != seq {
		if got > seq {
			return s.corrupt(id, seq, "record missing (the next is %d)", got)
		}
		return s.corrupt(id, seq, "record out of order (key %d)", got)
	}
	if len(v) < 4 {
		return s.corrupt(id, seq, "record truncated to %d bytes", len(v))
	}
	body := v[4:]
	if want, got := binary.BigEndian.Uint32(v), crc32.Checksum(body, castagnoli); want != got {
		return s.corrupt(id, seq, "checksum mismatch (stored %08x, computed %08x)", want, got)
	}
	if err := json.Unmarshal(body, e); err != nil {
		return s.corrupt(id, seq, "undecodable record: %v", err)
	}
	if e.Seq != seq {
		return s.corrupt(id, seq, "record holds event %d", e.Seq)
	}
	return nil
}

// Append implements rollout.Store: the events are written in one bbolt
// transaction, durable (fsynced) when it returns.
func (s *Store) Append(ctx context.Context, id string, expectedSeq uint64, events ...rollout.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := rollout.CheckAppend(id, expectedSeq, events); err != nil {
		return err
	}
	recs := make([][]byte, len(events))
	for i := range events {
		rec, err := encode(&events[i])
		if err != nil {
			return fmt.Errorf("boltstore: rollout %s: encode event %d: %w", id, events[i].Seq, err)
		}
		recs[i] = rec
	}
	return guard(s.path, func() error {
		return s.db.Update(func(tx *bolt.Tx) error {
			root := tx.Bucket(s.bucket)
			if root == nil {
				return s.corrupt("", 0, "bucket %q is missing", s.bucket)
			}
			b := root.Bucket([]byte(id))
			var last uint64
			if b != nil {
				if k, _ := b.Cursor().Last(); k != nil {
					if len(k) != 8 {
						return s.corrupt(id, 0, "last key %x is not a sequence number", k)
					}
					last = binary.BigEndian.Uint64(k)
				}
			}
			if last != expectedSeq {
				return fmt.Errorf("boltstore: rollout %s: %w: expected sequence %d, log is at %d", id, rollout.ErrConflict, expectedSeq, last)
			}
			if b == nil {
				var err error
				if b, err = root.CreateBucket([]byte(id)); err != nil {
					return fmt.Errorf("boltstore: rollout %s: %w", id, err)
				}
			}
			for i, rec := range recs {
				if err := b.Put(seqKey(events[i].Seq), rec); err != nil {
					return fmt.Errorf("boltstore: rollout %s: event %d: %w", id, events[i].Seq, err)
				}
			}
			return nil
		})
	})
}

// Load implements rollout.Store. Every record is checked: a missing,
// reordered, truncated or altered one is a *rollout.CorruptError naming
// the rollout and sequence number.
func (s *Store) Load(ctx context.Context, id string) ([]rollout.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []rollout.Event
	err := guard(s.path, func() error {
		return s.db.View(func(tx *bolt.Tx) error {
			var err error
			out, err = s.load(tx, id)
			return err
		})
	})
	return out, err
}

func (s *Store) load(tx *bolt.Tx, id string) ([]rollout.Event, error) {
	root := tx.Bucket(s.bucket)
	if root == nil {
		return nil, s.corrupt("", 0, "bucket %q is missing", s.bucket)
	}
	b := root.Bucket([]byte(id))
	if b == nil {
		return nil, fmt.Errorf("boltstore: rollout %s: %w", id, rollout.ErrNotFound)
	}
	var out []rollout.Event
	c := b.Cursor()
	seq := uint64(1)
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if v == nil {
			return nil, s.corrupt(id, seq, "nested bucket %q in a rollout's log", k)
		}
		out = append(out, rollout.Event{})
		if err := s.decode(id, seq, k, v, &out[len(out)-1]); err != nil {
			return nil, err
		}
		seq++
	}
	return out, nil
}

// List implements rollout.Store.
func (s *Store) List(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var ids []string
	err := guard(s.path, func() error {
		return s.db.View(func(tx *bolt.Tx) error {
			root := tx.Bucket(s.bucket)
			if root == nil {
				return s.corrupt("", 0, "bucket %q is missing", s.bucket)
			}
			return root.ForEach(func(k, v []byte) error {
				if v != nil {
					return s.corrupt(string(k), 0, "a value where a rollout's bucket should be")
				}
				ids = append(ids, string(k))
				return nil
			})
		})
	})
	return ids, err
}

// Verify reads and checks every record of every rollout in one read
// transaction, and returns the first damage found.
func (s *Store) Verify(ctx context.Context) error {
	return guard(s.path, func() error {
		return s.db.View(func(tx *bolt.Tx) error {
			root := tx.Bucket(s.bucket)
			if root == nil {
				return s.corrupt("", 0, "bucket %q is missing", s.bucket)
			}
			return root.ForEach(func(k, v []byte) error {
				if err := ctx.Err(); err != nil {
					return err
				}
				if v != nil {
					return s.corrupt(string(k), 0, "a value where a rollout's bucket should be")
				}
				_, err := s.load(tx, string(k))
				return err
			})
		})
	})
}
