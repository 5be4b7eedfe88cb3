package overrides_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/sources"
	"github.com/fleetkit/fleetkit/sources/overrides"
)

// memStore is an overrides.Store in memory that can be made to fail.
type memStore struct {
	mu   sync.Mutex
	m    map[string]overrides.Override
	fail error
}

func (s *memStore) LoadOverrides(ctx context.Context) ([]overrides.Override, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []overrides.Override
	for _, o := range s.m {
		out = append(out, o)
	}
	return out, s.fail
}

func (s *memStore) PutOverride(ctx context.Context, o overrides.Override) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	s.m[o.ID] = o
	return nil
}

func (s *memStore) DeleteOverride(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	delete(s.m, id)
	return nil
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestSetFetchExpire(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	st := &memStore{m: map[string]overrides.Override{}}
	ov, err := overrides.New(ctx, overrides.Config{Store: st, Now: clk.now})
	require.NoError(t, err)
	require.Equal(t, overrides.DefaultName, ov.Name())

	_, err = ov.Set(ctx, overrides.Override{ID: "a", State: disposition.StateDrained, Owner: "alice", Reason: "INC-1", Expires: clk.t.Add(time.Hour), SetBy: "tok"})
	require.NoError(t, err)
	_, err = ov.Set(ctx, overrides.Override{ID: "b", ReleaseState: "trial", Owner: "bob", Reason: "trial", Expires: clk.t.Add(3 * time.Hour)})
	require.NoError(t, err)

	obs, err := ov.Fetch(ctx)
	require.NoError(t, err)
	require.Len(t, obs, 2)
	require.Equal(t, "a", obs[0].ID)
	require.True(t, obs[0].Known.Has(disposition.FieldState))
	require.False(t, obs[0].Known.Has(disposition.FieldReleaseState), "an override reports only what it overrides")
	require.Equal(t, disposition.StateDrained, obs[0].Values.State)
	require.Contains(t, obs[0].Note, "alice")
	require.True(t, obs[1].Known.Has(disposition.FieldReleaseState))
	require.False(t, obs[1].Known.Has(disposition.FieldState))
	require.Equal(t, "trial", obs[1].Values.ReleaseState)

	// Persisted, and reloaded by a new Source.
	again, err := overrides.New(ctx, overrides.Config{Store: st, Now: clk.now})
	require.NoError(t, err)
	require.Len(t, again.List(), 2)

	// Past its expiry an override vanishes from Fetch, List and Get, and
	// the next write purges it from the store.
	clk.t = clk.t.Add(2 * time.Hour)
	obs, err = ov.Fetch(ctx)
	require.NoError(t, err)
	require.Len(t, obs, 1)
	require.Equal(t, "b", obs[0].ID)
	_, ok := ov.Get("a")
	require.False(t, ok)
	require.ErrorIs(t, ov.Delete(ctx, "a"), overrides.ErrNotFound)
	_, err = ov.Set(ctx, overrides.Override{ID: "c", State: disposition.StateRepair, Owner: "o", Reason: "r", Expires: clk.t.Add(time.Minute)})
	require.NoError(t, err)
	st.mu.Lock()
	_, stored := st.m["a"]
	st.mu.Unlock()
	require.False(t, stored, "expired overrides are purged from the store")

	require.NoError(t, ov.Delete(ctx, "b"))
	require.Len(t, ov.List(), 1)
}

func TestValidationNamesTheField(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ov, err := overrides.New(ctx, overrides.Config{Now: func() time.Time { return now }, MaxTTL: 24 * time.Hour})
	require.NoError(t, err)
	good := overrides.Override{ID: "a", State: disposition.StateDrained, Owner: "o", Reason: "r", Expires: now.Add(time.Hour)}
	tests := []struct {
		field string
		edit  func(*overrides.Override)
	}{
		{"id", func(o *overrides.Override) { o.ID = " " }},
		{"state", func(o *overrides.Override) { o.State = 99 }},
		{"state", func(o *overrides.Override) { o.State = disposition.StateUnknown }},
		{"release_state", func(o *overrides.Override) { o.ReleaseState = "a b" }},
		{"owner", func(o *overrides.Override) { o.Owner = "" }},
		{"reason", func(o *overrides.Override) { o.Reason = "" }},
		{"expires", func(o *overrides.Override) { o.Expires = time.Time{} }},
		{"expires", func(o *overrides.Override) { o.Expires = now }},
		{"expires", func(o *overrides.Override) { o.Expires = now.Add(25 * time.Hour) }},
	}
	for _, tt := range tests {
		o := good
		tt.edit(&o)
		_, err := ov.Set(ctx, o)
		var ve *overrides.ValidationError
		require.ErrorAs(t, err, &ve, "%+v", o)
		require.Equal(t, tt.field, ve.Field)
		require.ErrorIs(t, err, overrides.ErrInvalid)
	}
	require.Empty(t, ov.List(), "a rejected override is not stored")
	_, err = ov.Set(ctx, good)
	require.NoError(t, err)
}

func TestStoreFailureLeavesStateUnchanged(t *testing.T) {
	ctx := context.Background()
	boom := errors.New("disk full")
	st := &memStore{m: map[string]overrides.Override{}}
	ov, err := overrides.New(ctx, overrides.Config{Store: st})
	require.NoError(t, err)
	st.fail = boom
	_, err = ov.Set(ctx, overrides.Override{ID: "a", State: disposition.StateDrained, Owner: "o", Reason: "r", Expires: time.Now().Add(time.Hour)})
	require.ErrorIs(t, err, boom)
	require.Empty(t, ov.List())

	_, err = overrides.New(ctx, overrides.Config{Store: st})
	require.ErrorIs(t, err, boom)
	_, err = overrides.New(ctx, overrides.Config{MaxTTL: -1})
	require.Error(t, err)
}

func TestFetchHonoursContext(t *testing.T) {
	ov, err := overrides.New(context.Background(), overrides.Config{})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = ov.Fetch(ctx)
	require.ErrorIs(t, err, context.Canceled)
}

var _ sources.Source = (*overrides.Source)(nil)

func ExampleSource() {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ov, _ := overrides.New(ctx, overrides.Config{Now: func() time.Time { return now }})
	_, err := ov.Set(ctx, overrides.Override{
		ID:      "edge-den1-c07-001.fleet.example",
		State:   disposition.StateDrained,
		Owner:   "alice",
		Reason:  "NIC flapping, INC-1234",
		Expires: now.Add(24 * time.Hour),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	obs, _ := ov.Fetch(ctx)
	fmt.Println(obs[0].ID, obs[0].Values.State, obs[0].Note)
	// Output: edge-den1-c07-001.fleet.example drained owner=alice reason="NIC flapping, INC-1234" expires=2026-03-02T12:00:00Z
}
