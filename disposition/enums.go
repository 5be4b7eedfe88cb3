package disposition

import (
	"errors"
	"fmt"
	"strings"
)

// ErrUnknownValue is wrapped by every error about a value outside an
// enumeration (kind, lifecycle state, health, field name).
var ErrUnknownValue = errors.New("unknown value")

func unknown(what, got string, valid []string) error {
	return fmt.Errorf("%w %q for %s (valid: %s)", ErrUnknownValue, got, what, strings.Join(valid, ", "))
}

// parseEnum maps s to its index in names; names[0] is the zero value's
// name, usually empty, and is left out of the list of valid names.
func parseEnum(what, s string, names []string) (uint8, error) {
	for i, n := range names {
		if n == s {
			return uint8(i), nil
		}
	}
	return 0, unknown(what, s, names[1:])
}

// Kind is what a server is: bare metal, a VM or a container.
type Kind uint8

// The kinds of server. KindUnknown is the zero value.
const (
	KindUnknown Kind = iota
	KindBaremetal
	KindVM
	KindContainer
)

var kindNames = []string{"", "baremetal", "vm", "container"}

// String returns the name, as in JSON and queries.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// ParseKind parses a kind name; the empty string is KindUnknown.
func ParseKind(s string) (Kind, error) {
	v, err := parseEnum("kind", s, kindNames)
	return Kind(v), err
}

// MarshalText implements encoding.TextMarshaler.
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler and rejects unknown names.
func (k *Kind) UnmarshalText(b []byte) (err error) { *k, err = ParseKind(string(b)); return err }

// State is a server's lifecycle state.
type State uint8

// The lifecycle states. StateUnknown is the zero value.
const (
	StateUnknown State = iota
	StateProvisioning
	StateInService
	StateMaintenance
	StateDrained
	StateRepair
	StateRepurpose
	StateDecommissioned
)

var stateNames = []string{"", "provisioning", "in-service", "maintenance", "drained", "repair", "repurpose", "decommissioned"}

// String returns the name, as in JSON and queries.
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// ParseState parses a lifecycle state name; the empty string is StateUnknown.
func ParseState(s string) (State, error) {
	v, err := parseEnum("lifecycle state", s, stateNames)
	return State(v), err
}

// MarshalText implements encoding.TextMarshaler.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler and rejects unknown names.
func (s *State) UnmarshalText(b []byte) (err error) { *s, err = ParseState(string(b)); return err }

// Health is a server's health as monitoring and alerting see it.
type Health uint8

// The health values. HealthUnknown is the zero value.
const (
	HealthUnknown Health = iota
	HealthHealthy
	HealthDegraded
	HealthDown
)

var healthNames = []string{"unknown", "healthy", "degraded", "down"}

// String returns the name, as in JSON and queries.
func (h Health) String() string {
	if int(h) < len(healthNames) {
		return healthNames[h]
	}
	return fmt.Sprintf("Health(%d)", uint8(h))
}

// ParseHealth parses a health name; "unknown" and "" are HealthUnknown.
func ParseHealth(s string) (Health, error) {
	if s == "" {
		return HealthUnknown, nil
	}
	for i, n := range healthNames {
		if n == s {
			return Health(i), nil
		}
	}
	return 0, unknown("health", s, healthNames)
}

// MarshalText implements encoding.TextMarshaler.
func (h Health) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler and rejects unknown names.
func (h *Health) UnmarshalText(b []byte) (err error) { *h, err = ParseHealth(string(b)); return err }

// Field names one field of a Node, for provenance, queries and grouping.
type Field uint8

// The fields of a Node.
const (
	FieldID Field = iota
	FieldKind
	FieldRegion
	FieldMetro
	FieldSite
	FieldCluster
	FieldRack
	FieldTimezone
	FieldRole
	FieldPlatform
	FieldState
	FieldReleaseState
	FieldHealth
	FieldVersions
	FieldTraffic
	FieldCapacity
	FieldLabels
	numFields
)

var fieldNames = [numFields]string{
	"id", "kind", "region", "metro", "site", "cluster", "rack", "timezone", "role",
	"platform", "state", "release_state", "health", "versions", "traffic_gbps",
	"capacity_gbps", "labels",
}

// Fields lists every Field in declaration order.
func Fields() []Field {
	fs := make([]Field, numFields)
	for i := range fs {
		fs[i] = Field(i)
	}
	return fs
}

// String returns the name, as in JSON and queries.
func (f Field) String() string {
	if f < numFields {
		return fieldNames[f]
	}
	return fmt.Sprintf("Field(%d)", uint8(f))
}

// ParseField parses a field name as it appears in JSON.
func ParseField(s string) (Field, error) {
	for i, n := range fieldNames {
		if n == s {
			return Field(i), nil
		}
	}
	return 0, unknown("field", s, fieldNames[:])
}

// MarshalText implements encoding.TextMarshaler.
func (f Field) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (f *Field) UnmarshalText(b []byte) (err error) { *f, err = ParseField(string(b)); return err }
