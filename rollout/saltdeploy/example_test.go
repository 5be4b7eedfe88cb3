package saltdeploy_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/rollout"
	"github.com/fleetkit/fleetkit/rollout/saltdeploy"
	"github.com/fleetkit/fleetkit/testkit/fakes"
	"github.com/fleetkit/fleetkit/testkit/fleet"
)

func ExampleNew() {
	// A salt-api fake over a small fleet stands in for salt-master.
	f, err := fleet.Generate(fleet.Config{Size: 20, Seed: 21})
	if err != nil {
		panic(err)
	}
	fake := fakes.NewSalt(f, fakes.SaltOptions{})
	srv := httptest.NewServer(fake)
	defer srv.Close()
	var servers []string
	for _, n := range f.Nodes {
		if n.Health != disposition.HealthDown && len(servers) < 3 {
			servers = append(servers, n.ID)
		}
	}
	fake.SetStateRun(servers[1], fakes.StateRun{Fail: "E: Unable to locate package app"})

	d, err := saltdeploy.New(saltdeploy.Config{
		URL:      srv.URL,
		Username: fakes.DefaultSaltUser,
		Password: fakes.DefaultSaltPassword,
		State:    "app",
		Saltenv:  "edge-ga",
	})
	if err != nil {
		panic(err)
	}
	res, err := d.Deploy(context.Background(), rollout.DeployRequest{
		Rollout: "app-1.1", Wave: 1, Attempt: 1, IdempotencyKey: "app-1.1/wave/1/1",
		Component: "app", Version: "1.1", Servers: servers,
	})
	if err != nil {
		panic(err)
	}
	job := fake.Jobs()[0]
	fmt.Println(job.Function, job.TargetType, job.Kwarg["mods"], job.Kwarg["saltenv"])
	for _, r := range res {
		if r.OK {
			fmt.Println(r.Server, "deployed")
		} else {
			fmt.Println(r.Server, "failed:", r.Error)
		}
	}
	// Output:
	// state.apply compound app edge-ga
	// edge-gru1-c01-001.fleet.example deployed
	// edge-gru1-c01-002.fleet.example failed: pkg.installed app: E: Unable to locate package app (and 1 more failed states)
	// edge-gru1-c01-003.fleet.example deployed
}
