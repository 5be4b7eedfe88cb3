package sources

import (
	"maps"

	"github.com/fleetkit/fleetkit/disposition"
)

// fieldEqual reports whether a and b hold the same value of field f.
func fieldEqual(a, b *disposition.Node, f disposition.Field) bool {
	switch f {
	case disposition.FieldKind:
		return a.Kind == b.Kind
	case disposition.FieldRegion:
		return a.Region == b.Region
	case disposition.FieldMetro:
		return a.Metro == b.Metro
	case disposition.FieldSite:
		return a.Site == b.Site
	case disposition.FieldCluster:
		return a.Cluster == b.Cluster
	case disposition.FieldRack:
		return a.Rack == b.Rack
	case disposition.FieldTimezone:
		return a.Timezone == b.Timezone
	case disposition.FieldRole:
		return a.Role == b.Role
	case disposition.FieldPlatform:
		return a.Platform == b.Platform
	case disposition.FieldState:
		return a.State == b.State
	case disposition.FieldReleaseState:
		return a.ReleaseState == b.ReleaseState
	case disposition.FieldHealth:
		return a.Health == b.Health
	case disposition.FieldVersions:
		return maps.Equal(a.Versions, b.Versions)
	case disposition.FieldTraffic:
		return a.TrafficGbps == b.TrafficGbps
	case disposition.FieldCapacity:
		return a.CapacityGbps == b.CapacityGbps
	case disposition.FieldLabels:
		return maps.Equal(a.Labels, b.Labels)
	}
	return true
}

// stringFieldPtr returns a pointer to the string field f of n, or nil
// when f is not a plain string field.
func stringFieldPtr(n *disposition.Node, f disposition.Field) *string {
	switch f {
	case disposition.FieldRegion:
		return &n.Region
	case disposition.FieldMetro:
		return &n.Metro
	case disposition.FieldSite:
		return &n.Site
	case disposition.FieldCluster:
		return &n.Cluster
	case disposition.FieldRack:
		return &n.Rack
	case disposition.FieldTimezone:
		return &n.Timezone
	case disposition.FieldRole:
		return &n.Role
	case disposition.FieldPlatform:
		return &n.Platform
	case disposition.FieldReleaseState:
		return &n.ReleaseState
	}
	return nil
}

// obsEqual reports whether a and b (of the same node) report the same
// fields with the same values.
func obsEqual(a, b *Observation) bool {
	if a.Known != b.Known || a.Note != b.Note {
		return false
	}
	for f := disposition.FieldKind; int(f) < nFields; f++ {
		if a.Known.Has(f) && !fieldEqual(&a.Values, &b.Values, f) {
			return false
		}
	}
	return true
}
