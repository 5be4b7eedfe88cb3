package refd

import (
	"github.com/fleetkit/fleetkit/sources"
	"github.com/fleetkit/fleetkit/sources/alertmanager"
	"github.com/fleetkit/fleetkit/sources/file"
	"github.com/fleetkit/fleetkit/sources/maas"
	"github.com/fleetkit/fleetkit/sources/netbox"
	"github.com/fleetkit/fleetkit/sources/prometheus"
	"github.com/fleetkit/fleetkit/sources/saltapi"
)

// DefaultRegistry returns the source types refd.yaml may name, each with
// its adapter's factory.
func DefaultRegistry() sources.Registry {
	return sources.Registry{
		"alertmanager": alertmanager.Factory,
		"file":         file.Factory,
		"maas":         maas.Factory,
		"netbox":       netbox.Factory,
		"prometheus":   prometheus.Factory,
		"saltapi":      saltapi.Factory,
	}
}
