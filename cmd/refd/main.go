// Command refd is the fleetkit reference daemon and its CLI.
//
//	refd serve --demo                  # a generated 20K-server fleet on 127.0.0.1:8080
//	refd serve -config refd.yaml       # a real deployment
//	refd nodes metro=DEN health!=down  # query a running refd (REFD_URL, REFD_TOKEN)
//
// Run "refd help" for every subcommand.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
