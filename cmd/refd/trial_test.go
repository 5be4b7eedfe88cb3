package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/client"
	"github.com/fleetkit/fleetkit/refd"
	"github.com/fleetkit/fleetkit/testkit/fleet"
)

// TestTrialEndToEnd applies a trial to the demo daemon, in-process, with
// the CLI: exactly the cluster's servers move to the trial's release
// state, a rollout is created, and ending the trial restores every server.
func TestTrialEndToEnd(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d, err := refd.NewDemo(ctx, refd.DemoConfig{DataDir: t.TempDir(), Size: 2000, Addr: "127.0.0.1:0"})
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	done := make(chan error, 1)
	go func() { done <- d.Server.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	require.Eventually(t, func() bool { return d.Server.Addr() != nil && d.Server.Ready() }, 20*time.Second, 10*time.Millisecond)
	url := "http://" + d.Server.Addr().String()
	env := map[string]string{"REFD_URL": url, "REFD_TOKEN": d.AdminToken}
	getenv := func(k string) string { return env[k] }
	c, err := client.New(url, d.AdminToken)
	require.NoError(t, err)

	before, err := c.Nodes(ctx, client.NodesQuery{Fields: []string{"id", "cluster", "release_state"}})
	require.NoError(t, err)
	cluster := before.Nodes[len(before.Nodes)/2].Cluster
	prev := map[string]string{}
	var want []string
	for _, n := range before.Nodes {
		prev[n.ID] = n.ReleaseState
		if n.Cluster == cluster {
			want = append(want, n.ID)
		}
	}
	slices.Sort(want)

	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
		return p
	}
	expiry := time.Now().Add(6 * time.Hour).UTC().Format(time.RFC3339)
	good := write("e2e.yaml", fmt.Sprintf("name: e2e\nowner: sre\ntargets:\n  clusters: [%s]\n  max: 500\nrollout:\n  growth:\n    steps: [1, \"50%%\"]\nexpiry: %s\nrollback_on_end: true\n", cluster, expiry))
	clash := write("clash.yaml", fmt.Sprintf("name: clash\nowner: sre\ntargets:\n  servers: [%s]\n  max: 5\nexpiry: %s\n", want[0], expiry))
	bad := write("bad.yaml", "name: bad\nowner: sre\ntargets:\n  max: zero\n")

	cli := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := run(ctx, args, &out, &errb, getenv)
		return code, out.String() + errb.String()
	}
	code, out := cli("trial", "plan", good)
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "release state  trial-e2e")
	require.Contains(t, out, fmt.Sprintf("servers        %d:", len(want)))

	code, out = cli("trial", "plan", bad)
	require.Equal(t, 2, code, out)
	require.Contains(t, out, "bad.yaml:4: targets.max: \"zero\": must be a positive count of servers")

	code, out = cli("trial", "apply", good)
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "applied")

	// Exactly the cluster's servers are in the trial's release state.
	in, err := c.Nodes(ctx, client.NodesQuery{Query: "release_state=trial-e2e", Fields: []string{"id"}})
	require.NoError(t, err)
	var got []string
	for _, n := range in.Nodes {
		got = append(got, n.ID)
	}
	require.Equal(t, want, got)
	others, err := c.Nodes(ctx, client.NodesQuery{Query: "release_state!=trial-e2e", Fields: []string{"id", "release_state"}})
	require.NoError(t, err)
	for _, n := range others.Nodes {
		require.Equal(t, prev[n.ID], n.ReleaseState, n.ID)
	}
	tr, err := c.Trial(ctx, "e2e")
	require.NoError(t, err)
	ro, err := c.Rollout(ctx, tr.RolloutID)
	require.NoError(t, err)
	require.Positive(t, ro.Targets)
	// The demo has no rollout runner wired yet: the rollout stays pending.
	require.Contains(t, []string{"pending", "running", "completed"}, ro.State)

	code, out = cli("trial", "apply", good)
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "unchanged")
	code, out = cli("trial", "apply", clash)
	require.Equal(t, 3, code, out)
	require.Contains(t, out, "clash.yaml:4: targets.servers: 1 servers are already in trial e2e")
	code, out = cli("trial", "plan", "-json", clash)
	require.Equal(t, 3, code, out)
	require.Contains(t, out, `"kind": "overlap"`)

	code, out = cli("trial", "list")
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "e2e")
	code, out = cli("trial", "end", "e2e")
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "rolled-back")

	after, err := c.Nodes(ctx, client.NodesQuery{Fields: []string{"id", "release_state"}})
	require.NoError(t, err)
	require.Len(t, after.Nodes, len(before.Nodes))
	for _, n := range after.Nodes {
		require.Equal(t, prev[n.ID], n.ReleaseState, n.ID)
	}
	ro, err = c.Rollout(ctx, tr.RolloutID)
	require.NoError(t, err)
	require.Equal(t, "rolled-back", ro.State)
	code, out = cli("trial", "list", "-json")
	require.Equal(t, 0, code, out)
	require.True(t, strings.Contains(out, `"state": "ended"`), out)
}

// TestTrialPlanOfflineExample plans the GitLab example's trial file over
// a generated fleet file, with no server.
func TestTrialPlanOfflineExample(t *testing.T) {
	f, err := fleet.Generate(fleet.Config{Size: 20000, Seed: 1})
	require.NoError(t, err)
	var csv bytes.Buffer
	require.NoError(t, f.WriteCSV(&csv))
	path := filepath.Join(t.TempDir(), "fleet.csv")
	require.NoError(t, os.WriteFile(path, csv.Bytes(), 0o600))
	example := "../../examples/gitlab-trials/trials/nginx-rc.yaml"
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"trial", "plan", "-fleet", path, "-now", "2026-06-01T00:00:00Z", example}, &out, &errb, func(string) string { return "" })
	require.Equal(t, 0, code, "%s%s", out.String(), errb.String())
	require.Contains(t, out.String(), "trial nginx-1-5-rc1 (owner edge-team@example.net) planned")
	require.Contains(t, out.String(), "wave 1 ")

	// The same file with a maximum below its size is a conflict (exit 3).
	data, err := os.ReadFile(example)
	require.NoError(t, err)
	small := filepath.Join(t.TempDir(), "small.yaml")
	require.NoError(t, os.WriteFile(small, bytes.Replace(data, []byte("max: 200"), []byte("max: 2"), 1), 0o600))
	out.Reset()
	code = run(context.Background(), []string{"trial", "plan", "-fleet", path, "-now", "2026-06-01T00:00:00Z", small}, &out, &errb, func(string) string { return "" })
	require.Equal(t, 3, code, out.String())
	require.Contains(t, out.String(), "CONFLICT too-large: "+small+":12: targets.max: the targets select")
}
