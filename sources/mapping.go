package sources

import (
	"fmt"
	"maps"
	"slices"

	"github.com/fleetkit/fleetkit/disposition"
)

// FieldMapping is one node value an adapter fills from an attribute of
// its system's records (a JSON attribute, a tag, a grain path).
type FieldMapping struct {
	// Target is the value's name as configured, such as "metro" or
	// "label.rack" (see ParseFieldName); Field and Key are it parsed.
	Target string
	Field  disposition.Field
	Key    string
	// Attr is the adapter's attribute the value comes from.
	Attr string
}

// MergeFieldMap applies an adapter's configured field map to its
// defaults, as the adapters' `fields` options do: an entry replaces the
// default for its target, and an empty attribute drops the target. It
// checks every configured target with ParseFieldName and returns the
// mappings sorted by target, without the dropped ones.
func MergeFieldMap(defaults, overrides map[string]string) ([]FieldMapping, error) {
	merged := maps.Clone(defaults)
	if merged == nil {
		merged = map[string]string{}
	}
	for _, target := range slices.Sorted(maps.Keys(overrides)) {
		if _, _, err := ParseFieldName(target); err != nil {
			return nil, err
		}
		merged[target] = overrides[target]
	}
	var out []FieldMapping
	for _, target := range slices.Sorted(maps.Keys(merged)) {
		attr := merged[target]
		if attr == "" {
			continue
		}
		f, key, err := ParseFieldName(target)
		if err != nil {
			return nil, err
		}
		out = append(out, FieldMapping{Target: target, Field: f, Key: key, Attr: attr})
	}
	return out, nil
}

// ParseStateMap applies an adapter's configured status map (its system's
// status names to lifecycle state names) to its defaults and parses every
// state. An unknown state is an error that names its status.
func ParseStateMap(defaults, overrides map[string]string) (map[string]disposition.State, error) {
	merged := maps.Clone(defaults)
	if merged == nil {
		merged = map[string]string{}
	}
	maps.Copy(merged, overrides)
	out := make(map[string]disposition.State, len(merged))
	for _, status := range slices.Sorted(maps.Keys(merged)) {
		st, err := disposition.ParseState(merged[status])
		if err != nil {
			return nil, fmt.Errorf("%s: %v", status, err)
		}
		out[status] = st
	}
	return out, nil
}
