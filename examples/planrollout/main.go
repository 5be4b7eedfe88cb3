// Command planrollout plans a staged release over a generated fleet and
// prints the plan: its waves with their servers per metro, what was
// skipped and why, and how close it comes to the lower bound. It then
// checks the plan against every invariant with testkit.CheckPlan, as a
// test of your own specs would.
//
//	go run ./examples/planrollout [-size 5000] [-spec spec.yaml]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/rollout"
	"github.com/fleetkit/fleetkit/testkit"
	"github.com/fleetkit/fleetkit/testkit/fleet"
)

const defaultSpec = `
name: cdn-app-3.2.0
component: cdn-app
version: 3.2.0
select: role=edge
exclude: label.tier=3
deploy: 20m
budgets: {global: 10%, metro: 20%, site: 25%, cluster: 25%, metros_per_region: 2}
capacity: {headroom: 0.2}
windows:
  - {days: [mon, tue, wed, thu], start: "21:00", end: "07:00", tz: metro}
blackouts:
  - {region: eu-west, from: 2026-01-07T00:00:00Z, to: 2026-01-08T00:00:00Z, reason: sales event}
canary: {count: 2, bake: 1h}
growth: {steps: [1, 5, "2%", "10%", "25%"], bake: 30m}
order:
  - {by: release_state, first: [trial, nrt]}
`

func main() {
	size := flag.Int("size", 5000, "servers in the generated fleet")
	specFile := flag.String("spec", "", "rollout spec file (default: a built-in one)")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := run(ctx, *size, *specFile); err != nil {
		fmt.Fprintln(os.Stderr, "planrollout:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, size int, specFile string) error {
	name, data := "spec.yaml", []byte(defaultSpec)
	if specFile != "" {
		b, err := os.ReadFile(specFile)
		if err != nil {
			return err
		}
		name, data = specFile, b
	}
	spec, err := rollout.ParseSpec(name, data)
	if err != nil {
		return err
	}
	f, err := fleet.Generate(fleet.Config{Size: size, Seed: 1})
	if err != nil {
		return err
	}
	ix := disposition.NewIndex()
	if _, err := ix.Apply(ctx, disposition.Batch{Upserts: f.Nodes}); err != nil {
		return err
	}
	snap := ix.Snapshot()
	start := time.Now()
	plan, err := rollout.NewPlan(ctx, spec, snap, f.Config.Start)
	if err != nil {
		return err
	}
	took := time.Since(start)
	if err := plan.WriteText(os.Stdout); err != nil {
		return err
	}
	fmt.Printf("\nplanned %d servers in %v\n", snap.Len(), took.Round(time.Microsecond))
	if vs := testkit.CheckPlan(spec, snap, plan); len(vs) > 0 {
		for _, v := range vs {
			fmt.Fprintln(os.Stderr, "violation:", v)
		}
		return fmt.Errorf("the plan breaks %d invariants", len(vs))
	}
	fmt.Println("every invariant holds (testkit.CheckPlan)")
	if len(plan.Waves) > 0 && len(plan.Waves[0].Servers) > 0 {
		fmt.Println()
		fmt.Println(plan.Explain(plan.Waves[0].Servers[0]))
	}
	return nil
}
