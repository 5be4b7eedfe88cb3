package boltstore_test

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/fleetkit/fleetkit/rollout"
	"github.com/fleetkit/fleetkit/rollout/boltstore"
	"github.com/fleetkit/fleetkit/rollout/storetest"
)

// written returns the path of a closed store holding five events of r1.
func written(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "rollouts.db")
	s := open(t, path)
	require.NoError(t, s.Append(context.Background(), "r1", 0, storetest.Events(1, 5)...))
	require.NoError(t, s.Close())
	return path
}

// TestDamagedRecord flips a byte of one stored event behind the store's
// back: opening the file names it, the rollout and the sequence number.
func TestDamagedRecord(t *testing.T) {
	path := written(t)
	db, err := bolt.Open(path, 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(boltstore.DefaultBucket)).Bucket([]byte("r1"))
		k := binary.BigEndian.AppendUint64(nil, 3)
		v := append([]byte(nil), b.Get(k)...)
		v[len(v)-2] ^= 0x20
		return b.Put(k, v)
	}))
	require.NoError(t, db.Close())

	_, err = boltstore.Open(path, nil)
	require.ErrorIs(t, err, rollout.ErrCorrupt)
	var ce *rollout.CorruptError
	require.True(t, errors.As(err, &ce))
	require.Equal(t, path, ce.Path)
	require.Contains(t, err.Error(), "r1")
	require.Contains(t, err.Error(), "3")

	// SkipVerify opens it; loading the rollout still refuses the record.
	s, err := boltstore.Open(path, &boltstore.Options{SkipVerify: true})
	require.NoError(t, err)
	defer s.Close()
	_, err = s.Load(context.Background(), "r1")
	require.ErrorIs(t, err, rollout.ErrCorrupt)
}

// TestTruncatedAndEmptyFiles: a cut file and an empty one are refused with
// an error naming the file, never opened as a new, empty store.
func TestTruncatedAndEmptyFiles(t *testing.T) {
	path := written(t)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.NoError(t, os.Truncate(path, fi.Size()/4))
	_, err = boltstore.Open(path, nil)
	require.ErrorIs(t, err, rollout.ErrCorrupt)
	require.Contains(t, err.Error(), path)

	empty := filepath.Join(t.TempDir(), "empty.db")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))
	_, err = boltstore.Open(empty, nil)
	require.ErrorIs(t, err, rollout.ErrCorrupt)
	require.Contains(t, err.Error(), "empty")
}
