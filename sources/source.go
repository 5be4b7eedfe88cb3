package sources

import (
	"context"

	"github.com/fleetkit/fleetkit/disposition"
)

// Source is one system that knows something about servers: an inventory,
// a provisioning system, monitoring, alerting, a config-management master.
type Source interface {
	// Name identifies the source in provenance, precedence and status.
	Name() string
	// Fetch returns what the source currently knows, one Observation per
	// server. It must honour ctx's deadline and cancellation.
	//
	// The aggregator keeps what Fetch returns without copying it, so a
	// source must not modify a returned slice, or the maps its
	// observations hold, afterwards. A source whose data did not change
	// may return the very slice it returned last time; the aggregator
	// then skips comparing it. The aggregator never calls Fetch again
	// before the previous call has returned.
	Fetch(ctx context.Context) ([]Observation, error)
}

// FieldSet is a set of disposition fields.
type FieldSet uint32

// Has reports whether f is in the set.
func (s FieldSet) Has(f disposition.Field) bool { return s&(1<<f) != 0 }

// With returns the set with f added.
func (s FieldSet) With(f disposition.Field) FieldSet { return s | 1<<f }

// Observation is what one source knows about one server: the fields in
// Known, with their values in Values. Fields not in Known are unknown to
// the source, which is not the same as zero.
type Observation struct {
	// ID is the server's hostname, the disposition node ID.
	ID string
	// Known says which fields of Values the source reported.
	Known FieldSet
	// Values holds the reported values; its ID and Provenance are ignored.
	Values disposition.Node
	// Note is optional detail kept in provenance, such as the names of
	// the alerts that made a server degraded.
	Note string
}

// Observe starts an Observation of the server with the given ID, to be
// filled in with the setter methods:
//
//	sources.Observe("edge-den1-001").Metro("DEN").Health(disposition.HealthDown)
func Observe(id string) *Observation { return &Observation{ID: id} }

func (o *Observation) set(f disposition.Field) *Observation { o.Known = o.Known.With(f); return o }

// Kind sets the server kind.
func (o *Observation) Kind(v disposition.Kind) *Observation {
	o.Values.Kind = v
	return o.set(disposition.FieldKind)
}

// Region sets the region.
func (o *Observation) Region(v string) *Observation {
	o.Values.Region = v
	return o.set(disposition.FieldRegion)
}

// Metro sets the metro.
func (o *Observation) Metro(v string) *Observation {
	o.Values.Metro = v
	return o.set(disposition.FieldMetro)
}

// Site sets the site.
func (o *Observation) Site(v string) *Observation {
	o.Values.Site = v
	return o.set(disposition.FieldSite)
}

// Cluster sets the cluster.
func (o *Observation) Cluster(v string) *Observation {
	o.Values.Cluster = v
	return o.set(disposition.FieldCluster)
}

// Rack sets the rack.
func (o *Observation) Rack(v string) *Observation {
	o.Values.Rack = v
	return o.set(disposition.FieldRack)
}

// Timezone sets the IANA time zone.
func (o *Observation) Timezone(v string) *Observation {
	o.Values.Timezone = v
	return o.set(disposition.FieldTimezone)
}

// Role sets the role.
func (o *Observation) Role(v string) *Observation {
	o.Values.Role = v
	return o.set(disposition.FieldRole)
}

// Platform sets the platform or OS.
func (o *Observation) Platform(v string) *Observation {
	o.Values.Platform = v
	return o.set(disposition.FieldPlatform)
}

// State sets the lifecycle state.
func (o *Observation) State(v disposition.State) *Observation {
	o.Values.State = v
	return o.set(disposition.FieldState)
}

// ReleaseState sets the release state.
func (o *Observation) ReleaseState(v string) *Observation {
	o.Values.ReleaseState = v
	return o.set(disposition.FieldReleaseState)
}

// Health sets the health.
func (o *Observation) Health(v disposition.Health) *Observation {
	o.Values.Health = v
	return o.set(disposition.FieldHealth)
}

// Version sets the deployed version of one component.
func (o *Observation) Version(component, version string) *Observation {
	if o.Values.Versions == nil {
		o.Values.Versions = map[string]string{}
	}
	o.Values.Versions[component] = version
	return o.set(disposition.FieldVersions)
}

// Traffic sets the current traffic in Gbps.
func (o *Observation) Traffic(gbps float64) *Observation {
	o.Values.TrafficGbps = gbps
	return o.set(disposition.FieldTraffic)
}

// Capacity sets the capacity in Gbps.
func (o *Observation) Capacity(gbps float64) *Observation {
	o.Values.CapacityGbps = gbps
	return o.set(disposition.FieldCapacity)
}

// Label sets one label.
func (o *Observation) Label(key, value string) *Observation {
	if o.Values.Labels == nil {
		o.Values.Labels = map[string]string{}
	}
	o.Values.Labels[key] = value
	return o.set(disposition.FieldLabels)
}
