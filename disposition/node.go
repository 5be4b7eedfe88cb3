package disposition

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"time"
)

// Node is the disposition of one server: what every source knows about it,
// merged. The zero value of every field means "not known".
//
// Nodes returned by a Snapshot are shared with the index and must not be
// modified; use Clone to get a copy to change.
type Node struct {
	// ID is the server's unique hostname.
	ID           string            `json:"id"`
	Kind         Kind              `json:"kind,omitempty"`
	Region       string            `json:"region,omitempty"`
	Metro        string            `json:"metro,omitempty"`
	Site         string            `json:"site,omitempty"`
	Cluster      string            `json:"cluster,omitempty"`
	Rack         string            `json:"rack,omitempty"`
	Timezone     string            `json:"timezone,omitempty"` // IANA zone, e.g. "America/Denver"
	Role         string            `json:"role,omitempty"`
	Platform     string            `json:"platform,omitempty"` // OS or platform, e.g. "debian-12"
	State        State             `json:"state,omitempty"`
	ReleaseState string            `json:"release_state,omitempty"` // free-form cohort: ga, canary, trial, frozen, ...
	Health       Health            `json:"health,omitempty"`
	Versions     map[string]string `json:"versions,omitempty"` // deployed version per component
	TrafficGbps  float64           `json:"traffic_gbps,omitempty"`
	CapacityGbps float64           `json:"capacity_gbps,omitempty"`
	Labels       map[string]string `json:"labels,omitempty"`
	// Provenance says which source gave each field its value, and when.
	Provenance Provenance `json:"provenance,omitzero"`
}

// Clone returns a deep copy of n.
func (n *Node) Clone() *Node {
	c := *n
	c.Versions = maps.Clone(n.Versions)
	c.Labels = maps.Clone(n.Labels)
	return &c
}

// Equal reports whether n and o hold the same disposition, provenance
// included. Nil and empty maps are equal.
func (n *Node) Equal(o *Node) bool {
	return n.ID == o.ID && n.Kind == o.Kind && n.Region == o.Region &&
		n.Metro == o.Metro && n.Site == o.Site && n.Cluster == o.Cluster &&
		n.Rack == o.Rack && n.Timezone == o.Timezone && n.Role == o.Role &&
		n.Platform == o.Platform && n.State == o.State &&
		n.ReleaseState == o.ReleaseState && n.Health == o.Health &&
		n.TrafficGbps == o.TrafficGbps && n.CapacityGbps == o.CapacityGbps &&
		maps.Equal(n.Versions, o.Versions) && maps.Equal(n.Labels, o.Labels) &&
		n.Provenance.Equal(o.Provenance)
}

// CopyField copies the value of field f from src to dst. Versions and
// Labels are shared, not copied, as nodes are immutable once stored; the
// ID and Provenance are not fields a source reports and are left alone.
func CopyField(dst, src *Node, f Field) {
	switch f {
	case FieldKind:
		dst.Kind = src.Kind
	case FieldRegion:
		dst.Region = src.Region
	case FieldMetro:
		dst.Metro = src.Metro
	case FieldSite:
		dst.Site = src.Site
	case FieldCluster:
		dst.Cluster = src.Cluster
	case FieldRack:
		dst.Rack = src.Rack
	case FieldTimezone:
		dst.Timezone = src.Timezone
	case FieldRole:
		dst.Role = src.Role
	case FieldPlatform:
		dst.Platform = src.Platform
	case FieldState:
		dst.State = src.State
	case FieldReleaseState:
		dst.ReleaseState = src.ReleaseState
	case FieldHealth:
		dst.Health = src.Health
	case FieldVersions:
		dst.Versions = src.Versions
	case FieldTraffic:
		dst.TrafficGbps = src.TrafficGbps
	case FieldCapacity:
		dst.CapacityGbps = src.CapacityGbps
	case FieldLabels:
		dst.Labels = src.Labels
	}
}

// Validate checks that n can be stored: it needs an ID, valid enums and
// non-negative, finite traffic and capacity. The error names the node and
// the field.
func (n *Node) Validate() error {
	bad := func(f Field, format string, args ...any) error {
		return &FieldError{Node: n.ID, Field: f.String(), Err: fmt.Errorf(format, args...)}
	}
	switch {
	case n.ID == "":
		return bad(FieldID, "empty")
	case n.Kind > KindContainer:
		return bad(FieldKind, "invalid value %d", n.Kind)
	case n.State > StateDecommissioned:
		return bad(FieldState, "invalid value %d", n.State)
	case n.Health > HealthDown:
		return bad(FieldHealth, "invalid value %d", n.Health)
	case !(n.TrafficGbps >= 0 && n.TrafficGbps <= math.MaxFloat64): // rejects NaN and Inf
		return bad(FieldTraffic, "must be a non-negative number, got %v", n.TrafficGbps)
	case !(n.CapacityGbps >= 0 && n.CapacityGbps <= math.MaxFloat64):
		return bad(FieldCapacity, "must be a non-negative number, got %v", n.CapacityGbps)
	}
	return nil
}

// FieldError reports a bad value in one field of one node.
type FieldError struct {
	Node  string // node ID, empty if unknown
	Field string
	Err   error
}

// Error implements the error interface.
func (e *FieldError) Error() string {
	if e.Node == "" {
		return fmt.Sprintf("field %s: %v", e.Field, e.Err)
	}
	return fmt.Sprintf("node %q: field %s: %v", e.Node, e.Field, e.Err)
}

// Unwrap returns the underlying error, for errors.Is and errors.As.
func (e *FieldError) Unwrap() error { return e.Err }

// Origin records where the value of one field came from.
type Origin struct {
	// Source is the name of the source whose value won.
	Source string `json:"source"`
	// ObservedAt is when that source first reported the current value.
	// Fetches that confirm an unchanged value do not move it, so a steady
	// fleet causes no index writes; a source's last fetch time is part of
	// its status instead.
	ObservedAt time.Time `json:"observed_at"`
	// Stale is set when the source's last fetch failed and the value is
	// kept from an earlier one.
	Stale bool `json:"stale,omitempty"`
	// Note is the source's detail on the value, such as the names of the
	// alerts that made a server degraded.
	Note string `json:"note,omitempty"`
}

// Provenance holds the origin of every field of a Node, indexed by Field.
// A nil entry means no source gave that field a value. Origins are
// immutable once stored and may be shared between nodes.
type Provenance [numFields]*Origin

// Of returns the origin of field f, or nil.
func (p *Provenance) Of(f Field) *Origin {
	if f >= numFields {
		return nil
	}
	return p[f]
}

// Equal reports whether p and o record the same origins.
func (p Provenance) Equal(o Provenance) bool {
	for i := range p {
		a, b := p[i], o[i]
		if a == b {
			continue
		}
		if a == nil || b == nil || a.Source != b.Source || a.Stale != b.Stale || a.Note != b.Note || !a.ObservedAt.Equal(b.ObservedAt) {
			return false
		}
	}
	return true
}

// IsZero reports whether no field has an origin.
func (p Provenance) IsZero() bool { return p == Provenance{} }

// MarshalJSON encodes p as an object keyed by field name.
func (p Provenance) MarshalJSON() ([]byte, error) {
	m := make(map[string]*Origin, len(p))
	for i, o := range p {
		if o != nil {
			m[Field(i).String()] = o
		}
	}
	return json.Marshal(m)
}

// UnmarshalJSON decodes an object keyed by field name; unknown field names
// are an error.
func (p *Provenance) UnmarshalJSON(b []byte) error {
	var m map[string]*Origin
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	var out Provenance
	for k, o := range m {
		f, err := ParseField(k)
		if err != nil {
			return fmt.Errorf("provenance: %w", err)
		}
		out[f] = o
	}
	*p = out
	return nil
}
