package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/client"
	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/refd"
	"github.com/fleetkit/fleetkit/sources/overrides"
	"github.com/fleetkit/fleetkit/testkit/fleet"
)

// server starts a refd over a generated fleet and returns its URL.
func server(t testing.TB, size int) (string, *disposition.Index) {
	t.Helper()
	f, err := fleet.Generate(fleet.Config{Size: size, Seed: 5})
	require.NoError(t, err)
	ix := disposition.NewIndex()
	_, err = ix.Apply(context.Background(), disposition.Batch{Upserts: f.Nodes})
	require.NoError(t, err)
	store, err := refd.OpenStore(filepath.Join(t.TempDir(), "refd.db"))
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	ov, err := overrides.New(context.Background(), overrides.Config{Store: store})
	require.NoError(t, err)
	srv, err := refd.New(refd.Config{
		Index: ix, Store: store, Overrides: ov, Planner: refd.RolloutPlanner(),
		Tokens: []refd.Token{
			{Name: "ops", Hash: refd.HashToken("ops"), Scopes: []refd.Scope{refd.ScopeAdmin}},
			{Name: "ro", Hash: refd.HashToken("ro"), Scopes: []refd.Scope{refd.ScopeRead}},
		},
	})
	require.NoError(t, err)
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return ts.URL, ix
}

func TestNodesPagesAndETag(t *testing.T) {
	ctx := context.Background()
	url, ix := server(t, 500)
	c, err := client.New(url, "ro")
	require.NoError(t, err)

	var ids []string
	q := client.NodesQuery{Query: "role=edge", Limit: 64, Fields: []string{"id", "role"}}
	for {
		p, err := c.Nodes(ctx, q)
		require.NoError(t, err)
		for _, n := range p.Nodes {
			require.Equal(t, "edge", n.Role)
			ids = append(ids, n.ID)
		}
		if p.NextCursor == "" {
			break
		}
		q.Cursor = p.NextCursor
	}
	want, err := ix.Snapshot().Query(disposition.MustParseQuery("role=edge"))
	require.NoError(t, err)
	require.Len(t, ids, len(want))

	all, err := c.Nodes(ctx, client.NodesQuery{})
	require.NoError(t, err)
	require.Equal(t, 500, all.Count)
	require.NotEmpty(t, all.ETag)
	_, err = c.Nodes(ctx, client.NodesQuery{IfNoneMatch: all.ETag})
	require.ErrorIs(t, err, client.ErrNotModified)

	n, err := c.Node(ctx, want[0].ID)
	require.NoError(t, err)
	require.Equal(t, want[0].ID, n.ID)

	a, err := c.Aggregate(ctx, "role=edge", "health")
	require.NoError(t, err)
	total := 0
	for _, g := range a.Groups {
		total += g.Count
	}
	require.Equal(t, len(want), total)
}

func TestErrorsCarryCodeAndField(t *testing.T) {
	ctx := context.Background()
	url, _ := server(t, 20)
	c, err := client.New(url, "ro")
	require.NoError(t, err)

	_, err = c.Nodes(ctx, client.NodesQuery{Query: "colour=red"})
	var ae *client.Error
	require.ErrorAs(t, err, &ae)
	require.Equal(t, 400, ae.Status)
	require.Equal(t, "invalid_query", ae.Code)
	require.Equal(t, "q", ae.Field)

	_, err = c.Node(ctx, "ghost")
	require.ErrorAs(t, err, &ae)
	require.Equal(t, "not_found", ae.Code)

	_, err = c.SetOverride(ctx, "x", client.OverrideRequest{Owner: "o", Reason: "r", TTL: "1h", State: "drained"})
	require.ErrorAs(t, err, &ae)
	require.Equal(t, 403, ae.Status, "a read token cannot write")

	bad, err := client.New(url, "wrong")
	require.NoError(t, err)
	_, err = bad.Sources(ctx)
	require.ErrorAs(t, err, &ae)
	require.Equal(t, 401, ae.Status)

	_, err = client.New("ftp://x", "")
	require.Error(t, err)
	_, err = client.New("http://", "")
	require.Error(t, err)
}

func TestRolloutsAndOverrides(t *testing.T) {
	ctx := context.Background()
	url, ix := server(t, 400)
	c, err := client.New(url, "ops")
	require.NoError(t, err)
	spec := []byte("name: t\nselect: role=edge\nbudgets: {cluster: 50%}\ngrowth: {steps: [1, \"10%\", \"50%\"], bake: 10m}\n")
	start := time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC)
	p, err := c.Plan(ctx, spec, start)
	require.NoError(t, err)
	require.Greater(t, p.Waves, 1)

	_, err = c.Plan(ctx, []byte("growth: {steps: [zero]}\n"), start)
	var ae *client.Error
	require.ErrorAs(t, err, &ae)
	require.Equal(t, "plan_failed", ae.Code)
	require.Contains(t, ae.Message, "spec:1")

	r, err := c.CreateRollout(ctx, spec, start)
	require.NoError(t, err)
	require.Equal(t, "pending", r.State)
	r, err = c.RolloutAction(ctx, r.ID, client.Pause)
	require.NoError(t, err)
	require.Equal(t, "paused", r.State)
	_, err = c.RolloutAction(ctx, r.ID, client.Pause)
	require.ErrorAs(t, err, &ae)
	require.Equal(t, "conflict", ae.Code)
	list, err := c.Rollouts(ctx)
	require.NoError(t, err)
	require.Len(t, list, 1)
	got, err := c.Rollout(ctx, r.ID)
	require.NoError(t, err)
	require.Equal(t, p.Waves, got.Waves)

	id := ix.Snapshot().Len()
	require.Positive(t, id)
	nodes, _ := ix.Snapshot().Query(disposition.Query{})
	o, err := c.SetOverride(ctx, nodes[0].ID, client.OverrideRequest{State: "repair", Owner: "me", Reason: "disk", TTL: "2h"})
	require.NoError(t, err)
	require.Equal(t, "ops", o.SetBy)
	os, err := c.Overrides(ctx)
	require.NoError(t, err)
	require.Len(t, os, 1)
	require.NoError(t, c.DeleteOverride(ctx, nodes[0].ID))
	require.ErrorAs(t, c.DeleteOverride(ctx, nodes[0].ID), &ae)
	require.Equal(t, 404, ae.Status)

	_, err = c.ResolveFormulas(ctx, client.FormulaTarget{Role: "edge", ReleaseState: "ga"})
	require.ErrorAs(t, err, &ae)
	require.Equal(t, "not_configured", ae.Code)
	require.True(t, errors.As(err, &ae))
}

// exampleServer is server for examples, which have no testing.T.
func exampleServer(size int) (url string, stop func()) {
	dir, _ := os.MkdirTemp("", "refd-example")
	f, _ := fleet.Generate(fleet.Config{Size: size, Seed: 5})
	ix := disposition.NewIndex()
	_, _ = ix.Apply(context.Background(), disposition.Batch{Upserts: f.Nodes})
	store, _ := refd.OpenStore(filepath.Join(dir, "refd.db"))
	srv, _ := refd.New(refd.Config{Index: ix, Store: store,
		Tokens: []refd.Token{{Name: "ro", Hash: refd.HashToken("ro"), Scopes: []refd.Scope{refd.ScopeRead}}}})
	ts := httptest.NewServer(srv)
	return ts.URL, func() { ts.Close(); store.Close(); os.RemoveAll(dir) }
}

func ExampleClient_Nodes() {
	url, stop := exampleServer(100)
	defer stop()
	c, err := client.New(url, "ro")
	if err != nil {
		fmt.Println(err)
		return
	}
	page, err := c.Nodes(context.Background(), client.NodesQuery{Query: "role=edge health!=down", Fields: []string{"id"}, Limit: 3})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, n := range page.Nodes {
		fmt.Println(n.ID)
	}
	fmt.Println(page.NextCursor != "")
	// Output:
	// edge-gru1-c01-001.fleet.example
	// edge-gru1-c01-002.fleet.example
	// edge-gru1-c01-003.fleet.example
	// true
}
