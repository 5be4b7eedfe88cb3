package refd

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/fleetkit/fleetkit/disposition"
)

// fieldSet selects the members of a node's JSON object: bit i for
// disposition.Field(i), and provBit for provenance.
type fieldSet uint32

const provBit = 31

var numFields = len(disposition.Fields())

// allFields is every node field, provenance excluded: the listing default.
var allFields = fieldSet(1<<numFields - 1)

func (s fieldSet) has(f disposition.Field) bool { return s&(1<<f) != 0 }

// nodeEncoder appends nodes as JSON objects byte-for-byte equal to what
// encoding/json writes for a *disposition.Node restricted to the selected
// fields (omitempty included), several times faster and without
// reflection. A test holds it to that.
type nodeEncoder struct {
	fields fieldSet
	keys   []string // scratch for map keys
}

func (e *nodeEncoder) appendNode(b []byte, n *disposition.Node) []byte {
	b = append(b, '{')
	first := true
	sep := func(name string) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, '"', ':')
	}
	str := func(f disposition.Field, name, v string) {
		if v == "" || !e.fields.has(f) {
			return
		}
		sep(name)
		b = appendString(b, v)
	}
	if e.fields.has(disposition.FieldID) {
		sep("id")
		b = appendString(b, n.ID)
	}
	if n.Kind != disposition.KindUnknown && e.fields.has(disposition.FieldKind) {
		sep("kind")
		b = appendString(b, n.Kind.String())
	}
	str(disposition.FieldRegion, "region", n.Region)
	str(disposition.FieldMetro, "metro", n.Metro)
	str(disposition.FieldSite, "site", n.Site)
	str(disposition.FieldCluster, "cluster", n.Cluster)
	str(disposition.FieldRack, "rack", n.Rack)
	str(disposition.FieldTimezone, "timezone", n.Timezone)
	str(disposition.FieldRole, "role", n.Role)
	str(disposition.FieldPlatform, "platform", n.Platform)
	if n.State != disposition.StateUnknown && e.fields.has(disposition.FieldState) {
		sep("state")
		b = appendString(b, n.State.String())
	}
	str(disposition.FieldReleaseState, "release_state", n.ReleaseState)
	if n.Health != disposition.HealthUnknown && e.fields.has(disposition.FieldHealth) {
		sep("health")
		b = appendString(b, n.Health.String())
	}
	if len(n.Versions) > 0 && e.fields.has(disposition.FieldVersions) {
		sep("versions")
		b = e.appendMap(b, n.Versions)
	}
	if n.TrafficGbps != 0 && e.fields.has(disposition.FieldTraffic) {
		sep("traffic_gbps")
		b = appendFloat(b, n.TrafficGbps)
	}
	if n.CapacityGbps != 0 && e.fields.has(disposition.FieldCapacity) {
		sep("capacity_gbps")
		b = appendFloat(b, n.CapacityGbps)
	}
	if len(n.Labels) > 0 && e.fields.has(disposition.FieldLabels) {
		sep("labels")
		b = e.appendMap(b, n.Labels)
	}
	if e.fields&(1<<provBit) != 0 && !n.Provenance.IsZero() {
		sep("provenance")
		p, err := json.Marshal(n.Provenance)
		if err != nil { // only for times out of JSON's range
			p = []byte("{}")
		}
		b = append(b, p...)
	}
	return append(b, '}')
}

func (e *nodeEncoder) appendMap(b []byte, m map[string]string) []byte {
	e.keys = e.keys[:0]
	for k := range m {
		e.keys = append(e.keys, k)
	}
	slices.Sort(e.keys)
	b = append(b, '{')
	for i, k := range e.keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = appendString(b, m[k])
	}
	return append(b, '}')
}

// appendString appends s as a JSON string, escaped as encoding/json does
// (HTML characters included). The common case, plain ASCII, is copied.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendFloat appends f as encoding/json formats a float64. Nodes in an
// index are validated finite.
func appendFloat(b []byte, f float64) []byte {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return append(b, '0')
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	start := len(b)
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9, as encoding/json does
		n := len(b) - start
		if n >= 4 && b[len(b)-4] == 'e' && b[len(b)-3] == '-' && b[len(b)-2] == '0' {
			b[len(b)-2] = b[len(b)-1]
			b = b[:len(b)-1]
		}
	}
	return b
}
