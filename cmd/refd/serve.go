package main

import (
	"context"
	"log/slog"

	"github.com/fleetkit/fleetkit/refd"
)

// serveConfig runs refd from a configuration file.
func serveConfig(ctx context.Context, path, listen string, log *slog.Logger) error {
	d, err := refd.LoadConfigFile(ctx, path, refd.FileOptions{Logger: log, Addr: listen})
	if err != nil {
		return err
	}
	defer d.Close()
	log.Info("configuration loaded", "file", path, "sources", len(d.Sources))
	return d.Server.Run(ctx)
}
