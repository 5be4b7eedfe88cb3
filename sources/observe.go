package sources

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/fleetkit/fleetkit/disposition"
)

// nFields is the number of disposition fields, FieldID included.
const nFields = len(disposition.Provenance{})

// ParseFieldName parses the name of a value an adapter can report: a
// field name as in the index's JSON ("metro", "traffic_gbps"), or
// "label.<key>" / "version.<component>" for one entry of the labels or
// versions map, in which case key is the entry's key. "id", "labels" and
// "versions" are not values of their own and are rejected.
func ParseFieldName(name string) (f disposition.Field, key string, err error) {
	for _, p := range [...]struct {
		prefix string
		field  disposition.Field
	}{{"label.", disposition.FieldLabels}, {"version.", disposition.FieldVersions}} {
		if k, ok := strings.CutPrefix(name, p.prefix); ok {
			if k == "" {
				return 0, "", fmt.Errorf("empty key after %q", p.prefix)
			}
			return p.field, k, nil
		}
	}
	f, err = disposition.ParseField(name)
	if err != nil {
		return 0, "", err
	}
	switch f {
	case disposition.FieldID:
		return 0, "", errors.New(`"id" is the node ID, not a field`)
	case disposition.FieldLabels, disposition.FieldVersions:
		return 0, "", fmt.Errorf("%q needs a key: use %s.<key>", name, strings.TrimSuffix(name, "s"))
	}
	return f, "", nil
}

// Set sets field f from its text form, as the index's JSON and query
// language write it: enum names for kind, state and health, a decimal
// number of Gbps for traffic and capacity, and for FieldLabels and
// FieldVersions the entry named key. The error says what was wrong with
// the value, not where it came from; callers add the file, line or item.
//
// Set never marks an empty value known: an empty string is "not known",
// except for labels and versions, whose entries may be empty.
func (o *Observation) Set(f disposition.Field, key, value string) error {
	if value == "" && f != disposition.FieldLabels && f != disposition.FieldVersions {
		return nil
	}
	switch f {
	case disposition.FieldKind:
		k, err := disposition.ParseKind(value)
		if err != nil {
			return err
		}
		o.Kind(k)
	case disposition.FieldRegion:
		o.Region(value)
	case disposition.FieldMetro:
		o.Metro(value)
	case disposition.FieldSite:
		o.Site(value)
	case disposition.FieldCluster:
		o.Cluster(value)
	case disposition.FieldRack:
		o.Rack(value)
	case disposition.FieldTimezone:
		o.Timezone(value)
	case disposition.FieldRole:
		o.Role(value)
	case disposition.FieldPlatform:
		o.Platform(value)
	case disposition.FieldState:
		s, err := disposition.ParseState(value)
		if err != nil {
			return err
		}
		o.State(s)
	case disposition.FieldReleaseState:
		o.ReleaseState(value)
	case disposition.FieldHealth:
		h, err := disposition.ParseHealth(value)
		if err != nil {
			return err
		}
		o.Health(h)
	case disposition.FieldTraffic, disposition.FieldCapacity:
		g, err := ParseGbps(value)
		if err != nil {
			return err
		}
		if f == disposition.FieldTraffic {
			o.Traffic(g)
		} else {
			o.Capacity(g)
		}
	case disposition.FieldLabels:
		if key == "" {
			return errors.New("empty label key")
		}
		o.Label(key, value)
	case disposition.FieldVersions:
		if key == "" {
			return errors.New("empty version component")
		}
		o.Version(key, value)
	default:
		return fmt.Errorf("field %s cannot be set", f)
	}
	return nil
}

// ParseGbps parses a non-negative, finite number of Gbps.
func ParseGbps(s string) (float64, error) {
	g, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	if err := CheckGbps(g); err != nil {
		return 0, err
	}
	return g, nil
}

// CheckGbps reports an error unless g is a non-negative, finite number.
func CheckGbps(g float64) error {
	if !(g >= 0) || math.IsInf(g, 1) {
		return fmt.Errorf("%v is not a non-negative number of Gbps", g)
	}
	return nil
}

// validate checks that o can go into the index: an ID and valid values
// for the known fields.
func (o *Observation) validate() error {
	if o.ID == "" {
		return errors.New("observation without an ID")
	}
	if o.Known.Has(disposition.FieldID) {
		return fmt.Errorf("node %q: field id cannot be observed", o.ID)
	}
	if o.Known>>nFields != 0 {
		return fmt.Errorf("node %q: Known holds bits past the last field", o.ID)
	}
	v := o.Values
	v.ID = o.ID
	if err := v.Validate(); err != nil {
		return err
	}
	if math.IsInf(v.TrafficGbps, 1) || math.IsInf(v.CapacityGbps, 1) {
		return fmt.Errorf("node %q: traffic and capacity must be finite", o.ID)
	}
	return nil
}
