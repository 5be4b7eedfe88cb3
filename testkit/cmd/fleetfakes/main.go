// Command fleetfakes serves the fakes of every system fleetkit reads
// (NetBox, MaaS, Prometheus, Alertmanager, salt-api) and a Prometheus
// exporter over one generated fleet, at one address: what the testkit
// fakes container runs.
//
//	fleetfakes -size 2000 -seed 1 -listen 0.0.0.0:8080
//
// The layout is testkit.NewFakesMux's: /netbox/api/..., /maas/MAAS/api/2.0/...,
// /prometheus/api/v1/query, /alertmanager/api/v2/alerts, /salt, /metrics
// (testkit.FleetExporter) and /healthz. It stops on SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/fleetkit/fleetkit/testkit"
	"github.com/fleetkit/fleetkit/testkit/fleet"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stderr, nil)
	stop()
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "fleetfakes:", err)
		os.Exit(1)
	}
}

// run serves until ctx ends. listening, if not nil, receives the bound
// address.
func run(ctx context.Context, args []string, stderr io.Writer, listening chan<- string) error {
	fs := flag.NewFlagSet("fleetfakes", flag.ContinueOnError)
	fs.SetOutput(stderr)
	size := fs.Int("size", 1000, "number of servers in the generated fleet")
	seed := fs.Int64("seed", 1, "generator seed")
	start := fs.String("start", "", "the moment the fleet's traffic is generated for, RFC 3339 (default the generator's)")
	listen := fs.String("listen", "127.0.0.1:8080", "listen address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	cfg := fleet.Config{Size: *size, Seed: *seed}
	if *start != "" {
		t, err := time.Parse(time.RFC3339Nano, *start)
		if err != nil {
			return fmt.Errorf("-start: want an RFC 3339 time, got %q", *start)
		}
		cfg.Start = t
	}
	f, err := fleet.Generate(cfg)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	log.Info("listening", "addr", l.Addr().String(), "size", *size, "seed", *seed, "start", f.Config.Start)
	if listening != nil {
		listening <- l.Addr().String()
	}
	srv := &http.Server{Handler: testkit.NewFakesMux(f), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
