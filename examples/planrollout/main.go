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
	_ "embed"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/rollout"
	"github.com/fleetkit/fleetkit/testkit"
	"github.com/fleetkit/fleetkit/testkit/fleet"
)

// defaultSpec is spec.yaml, the spec planned when -spec is not given.
//
//go:embed spec.yaml
var defaultSpec string

func main() {
	size := flag.Int("size", 5000, "servers in the generated fleet")
	specFile := flag.String("spec", "", "rollout spec file (default: spec.yaml beside this example, built in)")
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
