package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/client"
	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/refd"
	"github.com/fleetkit/fleetkit/rollout"
	"github.com/fleetkit/fleetkit/testkit/fleet"
)

// TestTrialEndToEnd applies a trial to the demo daemon, in-process, with
// the CLI: exactly the cluster's servers move to the trial's release
// state, its rollout runs to completion and deploys the candidate version
// to exactly the servers it planned, and ending the trial rolls the
// rollout back and restores every server's release state and version.
func TestTrialEndToEnd(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The runner's clock jumps over every wait: a rollout of waves with
	// deploy and bake times runs through at once.
	clock := rollout.NewFakeClock(time.Now())
	clock.SetAuto(true)
	d, err := refd.NewDemo(ctx, refd.DemoConfig{
		DataDir: t.TempDir(), Size: 2000, Addr: "127.0.0.1:0", Clock: clock, DeployFailureRate: -1,
	})
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

	before, err := c.Nodes(ctx, client.NodesQuery{Fields: []string{"id", "cluster", "release_state", "state", "health", "versions"}})
	require.NoError(t, err)
	cluster := before.Nodes[len(before.Nodes)/2].Cluster
	prev := map[string]string{}
	prevVersion := map[string]string{}
	var want, deployable []string
	for _, n := range before.Nodes {
		prev[n.ID] = n.ReleaseState
		prevVersion[n.ID] = n.Versions["cdn-app"]
		if n.Cluster == cluster {
			want = append(want, n.ID)
			if n.State == disposition.StateInService && n.Health == disposition.HealthHealthy {
				deployable = append(deployable, n.ID)
			}
		}
	}
	slices.Sort(want)
	slices.Sort(deployable)
	require.NotEmpty(t, deployable)

	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
		return p
	}
	expiry := time.Now().Add(6 * time.Hour).UTC().Format(time.RFC3339)
	good := write("e2e.yaml", fmt.Sprintf("name: e2e\nowner: sre\nversions: {cdn-app: 9.9.9-rc1}\nformulas: {nginx: v1.5.0-rc.1}\ntargets:\n  clusters: [%s]\n  max: 500\nrollout:\n  growth:\n    steps: [1, \"50%%\"]\n    bake: 1h\nexpiry: %s\nrollback_on_end: true\n", cluster, expiry))
	clash := write("clash.yaml", fmt.Sprintf("name: clash\nowner: sre\ntargets:\n  servers: [%s]\n  max: 5\nexpiry: %s\n", want[0], expiry))
	bad := write("bad.yaml", "name: bad\nowner: sre\ntargets:\n  max: zero\n")

	cli := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := run(ctx, args, &out, &errb, getenv)
		return code, out.String() + errb.String()
	}
	// envOf resolves the formula environment a server gets.
	envOf := func(id string) (string, map[string]string) {
		t.Helper()
		raw, err := c.ResolveFormulas(ctx, client.FormulaTarget{Node: id})
		require.NoError(t, err, id)
		var env struct {
			Name string `json:"name"`
			Pins []struct {
				Formula string `json:"formula"`
				Ref     string `json:"ref"`
			} `json:"pins"`
		}
		require.NoError(t, json.Unmarshal(raw, &env), id)
		pins := map[string]string{}
		for _, p := range env.Pins {
			pins[p.Formula] = p.Ref
		}
		return env.Name, pins
	}
	// A sample of servers outside the trial, to see theirs unchanged.
	var outside []string
	for i, n := range before.Nodes {
		if n.Cluster != cluster && i%97 == 0 {
			outside = append(outside, n.ID)
		}
	}
	envBefore := map[string]string{}
	for _, id := range append(slices.Clone(want), outside...) {
		envBefore[id], _ = envOf(id)
	}

	code, out := cli("trial", "plan", good)
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "release state  trial-e2e")
	require.Regexp(t, `environment +\S+ -> [a-z]+-trial-e2e`, out)
	require.Contains(t, out, "-> tag:v1.5.0-rc.1@")
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
	// The trial's servers get its formula environment, with its nginx;
	// the others keep theirs.
	for _, id := range want {
		name, pins := envOf(id)
		require.Regexp(t, `^[a-z]+-trial-e2e$`, name, id)
		if pins["nginx"] != "" || !strings.HasPrefix(name, "dns-") {
			require.Equal(t, "v1.5.0-rc.1", pins["nginx"], id)
		}
	}
	for _, id := range outside {
		name, _ := envOf(id)
		require.Equal(t, envBefore[id], name, id)
	}
	tr, err := c.Trial(ctx, "e2e")
	require.NoError(t, err)
	ro, err := c.Rollout(ctx, tr.RolloutID)
	require.NoError(t, err)
	require.Positive(t, ro.Targets)

	// The rollout runs to completion, and its deploys show in the index:
	// exactly the planned servers have the candidate version, from the
	// demo's deploys source.
	ro = waitRollout(t, c, tr.RolloutID, "completed")
	require.Equal(t, ro.Waves, ro.WavesDone)
	require.Equal(t, len(deployable), ro.Deployed)
	waitNodes(t, c, "version.cdn-app=9.9.9-rc1", deployable)
	node, err := c.Node(ctx, deployable[0])
	require.NoError(t, err)
	require.Equal(t, refd.DemoDeploysSource, node.Provenance.Of(disposition.FieldVersions).Source)

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
	require.Regexp(t, `rollout r\d+ roll(ing|ed)-back`, out)

	after, err := c.Nodes(ctx, client.NodesQuery{Fields: []string{"id", "release_state"}})
	require.NoError(t, err)
	require.Len(t, after.Nodes, len(before.Nodes))
	for _, n := range after.Nodes {
		require.Equal(t, prev[n.ID], n.ReleaseState, n.ID)
	}
	for id, name := range envBefore {
		got, _ := envOf(id)
		require.Equal(t, name, got, id)
	}
	ro = waitRollout(t, c, tr.RolloutID, "rolled-back")
	require.Equal(t, len(deployable), ro.RolledBack)
	waitNodes(t, c, "version.cdn-app=9.9.9-rc1", nil)
	restored, err := c.Nodes(ctx, client.NodesQuery{Fields: []string{"id", "versions"}})
	require.NoError(t, err)
	for _, n := range restored.Nodes {
		require.Equal(t, prevVersion[n.ID], n.Versions["cdn-app"], n.ID)
	}
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
	code := run(context.Background(), []string{"trial", "plan", "-fleet", path, "-now", "2027-01-11T00:00:00Z", example}, &out, &errb, func(string) string { return "" })
	require.Equal(t, 0, code, "%s%s", out.String(), errb.String())
	require.Contains(t, out.String(), "trial nginx-1-5-rc1 (owner edge-team@example.net) planned")
	require.Contains(t, out.String(), "wave 1 ")

	// The same file with a maximum below its size is a conflict (exit 3).
	data, err := os.ReadFile(example)
	require.NoError(t, err)
	small := filepath.Join(t.TempDir(), "small.yaml")
	require.NoError(t, os.WriteFile(small, bytes.Replace(data, []byte("max: 200"), []byte("max: 2"), 1), 0o600))
	out.Reset()
	code = run(context.Background(), []string{"trial", "plan", "-fleet", path, "-now", "2027-01-11T00:00:00Z", small}, &out, &errb, func(string) string { return "" })
	require.Equal(t, 3, code, out.String())
	require.Contains(t, out.String(), "CONFLICT too-large: "+small+":12: targets.max: the targets select")
}

// waitRollout polls a rollout until it is in state, failing after 30 s
// with the state it last had.
func waitRollout(t *testing.T, c *client.Client, id, state string) *client.Rollout {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ro, err := c.Rollout(context.Background(), id)
		require.NoError(t, err)
		if ro.State == state {
			return ro
		}
		if time.Now().After(deadline) {
			t.Fatalf("rollout %s is %s, not %s, after 30 s (waves %d/%d, reason %q)", id, ro.State, state, ro.WavesDone, ro.Waves, ro.Reason)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitNodes polls the nodes matching query until they are exactly want,
// failing after 30 s with what it last saw.
func waitNodes(t *testing.T, c *client.Client, query string, want []string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		page, err := c.Nodes(context.Background(), client.NodesQuery{Query: query, Fields: []string{"id"}})
		require.NoError(t, err)
		var got []string
		for _, n := range page.Nodes {
			got = append(got, n.ID)
		}
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: got %d servers %v, want %d %v after 30 s", query, len(got), got, len(want), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
