package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/refd"
	"github.com/fleetkit/fleetkit/testkit/fleet"
)

// planOffline plans spec over the fleet in fleetFile (CSV by its
// extension, else JSON), as the server would, with no server.
func planOffline(ctx context.Context, specName string, spec []byte, fleetFile string, start time.Time) (*refd.PlanResult, error) {
	fh, err := os.Open(fleetFile)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	var nodes []*disposition.Node
	if strings.EqualFold(filepath.Ext(fleetFile), ".csv") {
		nodes, err = fleet.ReadCSV(fh)
	} else {
		nodes, err = fleet.ReadJSON(fh)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fleetFile, err)
	}
	ix := disposition.NewIndex()
	if _, err := ix.Apply(ctx, disposition.Batch{Upserts: nodes}); err != nil {
		return nil, fmt.Errorf("%s: %w", fleetFile, err)
	}
	if start.IsZero() {
		start = time.Now()
	}
	return refd.RolloutPlanner().Plan(ctx, specName, spec, ix.Snapshot(), start)
}
