package file_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/sources/file"
)

// A JSON inventory: keys that are absent are unknown, not zero.
func ExampleNew() {
	dir, err := os.MkdirTemp("", "inventory")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "inventory.json")
	err = os.WriteFile(path, []byte(`[
  {"id": "edge-den-1", "metro": "DEN", "state": "in-service", "labels": {"tier": "1"}},
  {"id": "edge-den-2", "metro": "DEN"}
]`), 0o644)
	if err != nil {
		log.Fatal(err)
	}
	src, err := file.New("inventory", file.Options{Path: path})
	if err != nil {
		log.Fatal(err)
	}
	obs, err := src.Fetch(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	for _, o := range obs {
		fmt.Println(o.ID, o.Values.Metro, o.Known.Has(disposition.FieldState), o.Values.Labels)
	}
	// Output:
	// edge-den-1 DEN true map[tier:1]
	// edge-den-2 DEN false map[]
}

// Errors name the file, line, column and field.
func ExampleParseCSV() {
	_, err := file.ParseCSV("inventory.csv", []byte("id,metro,state\nedge-den-1,DEN,serving\n"))
	fmt.Println(err)
	// Output:
	// inventory.csv:2:16: state: unknown value "serving" for lifecycle state (valid: provisioning, in-service, maintenance, drained, repair, repurpose, decommissioned)
}
