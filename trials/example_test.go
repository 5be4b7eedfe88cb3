package trials_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/trials"
)

func Example() {
	ix := disposition.NewIndex()
	_, _ = ix.Apply(context.Background(), disposition.Batch{Upserts: []*disposition.Node{
		{ID: "edge-1", Cluster: "den1-c01", Metro: "DEN", Role: "edge", ReleaseState: "ga", State: disposition.StateInService, Health: disposition.HealthHealthy},
		{ID: "edge-2", Cluster: "den1-c01", Metro: "DEN", Role: "edge", ReleaseState: "frozen", State: disposition.StateInService, Health: disposition.HealthHealthy},
		{ID: "edge-3", Cluster: "nyc1-c01", Metro: "NYC", Role: "edge", ReleaseState: "ga", State: disposition.StateInService, Health: disposition.HealthHealthy},
	}})
	t, err := trials.Parse("trials/nginx-rc.yaml", []byte(`name: nginx-rc
owner: edge-team
targets:
  clusters: [den1-c01]
  max: 5
expiry: 2030-06-08T00:00:00Z
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	now := time.Date(2030, 6, 1, 0, 0, 0, 0, time.UTC)
	p, err := trials.Plan(context.Background(), t, ix.Snapshot(), trials.Options{Now: now})
	fmt.Println(p.ReleaseState, p.Servers)
	var ce *trials.ConflictError
	if errors.As(err, &ce) {
		for _, c := range ce.Conflicts {
			fmt.Println(c)
		}
	}
	// Output:
	// trial-nginx-rc [edge-1 edge-2]
	// trials/nginx-rc.yaml:4: targets.clusters: 1 servers are frozen (release state frozen): edge-2
}
