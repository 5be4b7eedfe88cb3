package refd_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/refd"
	"github.com/fleetkit/fleetkit/rollout"
	"github.com/fleetkit/fleetkit/rollout/boltstore"
	"github.com/fleetkit/fleetkit/testkit/fleet"
)

// A refd over an index filled by hand, mounted as an http.Handler. In a
// deployment the index is fed by a sources.Aggregator given as
// Config.Updater, and Run serves it.
func ExampleNew() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "refd-example")
	defer os.RemoveAll(dir)

	f, _ := fleet.Generate(fleet.Config{Size: 200, Seed: 1})
	ix := disposition.NewIndex()
	_, _ = ix.Apply(ctx, disposition.Batch{Upserts: f.Nodes})
	store, err := refd.OpenStore(filepath.Join(dir, "refd.db"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()

	srv, err := refd.New(refd.Config{
		Index: ix,
		Store: store,
		Tokens: []refd.Token{
			{Name: "dashboards", Hash: refd.HashToken("s3cret"), Scopes: []refd.Scope{refd.ScopeRead}},
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()

	req, _ := http.NewRequest("GET", ts.URL+"/v1/aggregate?by=role&state=in-service", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	fmt.Println(res.Status, res.Header.Get("ETag"))
	fmt.Print(string(body[:40]))
	// Output:
	// 200 OK "v1-gqjlsscafccj"
	// {"version":1,"by":["role"],"groups":[{"k
}

// New names the field at fault.
func ExampleNew_invalid() {
	_, err := refd.New(refd.Config{Index: disposition.NewIndex()})
	fmt.Println(err)
	// Output: refd: Config.Store: required
}

// A refd whose rollouts a rollout.Runner drives: a rollout created
// through the API runs wave after wave, and its record follows the
// runner's log. The log deployer deploys nothing; a fake clock in auto
// mode runs the deploy and bake times through at once.
func ExampleNewRolloutRunner() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "refd-runner-example")
	defer os.RemoveAll(dir)

	f, _ := fleet.Generate(fleet.Config{Size: 200, Seed: 1})
	ix := disposition.NewIndex()
	_, _ = ix.Apply(ctx, disposition.Batch{Upserts: f.Nodes})
	store, err := refd.OpenStore(filepath.Join(dir, "refd.db"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()
	logs, err := boltstore.Open(filepath.Join(dir, "rollouts.db"), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer logs.Close()
	clock := rollout.NewFakeClock(time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC))
	clock.SetAuto(true)

	runner, err := refd.NewRolloutRunner(refd.RolloutRunnerConfig{
		Store: logs, Fleet: ix, Deployer: refd.LogDeployer(nil), Clock: clock,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	srv, err := refd.New(refd.Config{
		Index: ix, Store: store, Planner: refd.RolloutPlanner(), Runner: runner,
		Tokens: []refd.Token{{Name: "ci", Hash: refd.HashToken("s3cret"), Scopes: []refd.Scope{refd.ScopeRollout}}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go func() { _ = srv.Serve(ctx, ln) }()
	defer srv.Close() // stops the runner, before the stores close
	url := "http://" + ln.Addr().String()

	call := func(method, path, body string, v any) int {
		req, _ := http.NewRequest(method, url+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer s3cret")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		defer res.Body.Close()
		_ = json.NewDecoder(res.Body).Decode(v)
		return res.StatusCode
	}
	var ro refd.Rollout
	spec := "name: app-2.0\ncomponent: app\nversion: 2.0.0\nselect: role=edge\ngrowth: {steps: [2, \"50%\"], bake: 1h}\n"
	fmt.Println(call("POST", "/v1/rollouts", spec, &ro))
	for deadline := time.Now().Add(10 * time.Second); ro.State != refd.RolloutCompleted && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		call("GET", "/v1/rollouts/"+ro.ID, "", &ro)
	}
	fmt.Println(ro.ID, ro.State, ro.WavesDone, "of", ro.Waves, "waves,", ro.Deployed, "servers")
	// Output:
	// 201
	// r000001 completed 3 of 3 waves, 147 servers
}
