package testkit

import (
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/sources"
)

// SourceObservations is what one source reported, for CheckIndex.
type SourceObservations struct {
	// Name is the source's name, as in precedence lists and provenance.
	Name string
	// Authoritative sources say which nodes exist.
	Authoritative bool
	// Observations are the source's last fetch.
	Observations []sources.Observation
}

// The rules CheckIndex enforces.
const (
	RuleIndexMissing    = "index-missing"    // a node an authoritative source reports is not in the index
	RuleIndexExtra      = "index-extra"      // a node no authoritative source reports is in the index
	RuleIndexField      = "field"            // a field differs from the value its winning source reported
	RuleIndexProvenance = "provenance"       // a field's provenance names another source than the winner
	RuleIndexDuplicate  = "duplicate-report" // a source reports a node twice
)

// CheckIndex checks that an index agrees with its sources: that snap
// holds exactly the nodes the authoritative sources report, and that
// every field of every node has the value of the first source, in the
// field's precedence order, that reports it (labels and versions merged
// key by key in that order), with that source in its provenance when the
// snapshot carries provenance. It is an independent statement of the
// merge the sources.Aggregator performs, for tests that feed an index
// (a refd's, or one of their own) from sources they control.
//
// srcs are in registration order; precedence maps a field to the names of
// the sources that win it, first first; sources it does not list follow
// in registration order (AggregatorConfig.Precedence's rule). It assumes
// every source's last fetch succeeded and is current: no stale or
// expired source, no node in its removal grace period.
func CheckIndex(snap *disposition.Snapshot, precedence map[disposition.Field][]string, srcs ...SourceObservations) []Violation {
	var out []Violation
	bad := func(rule, subject, format string, args ...any) {
		out = append(out, Violation{Rule: rule, Subject: subject, Msg: fmt.Sprintf(format, args...)})
	}
	// byID[i] maps node IDs to source i's observation.
	byID := make([]map[string]*sources.Observation, len(srcs))
	exists := map[string]bool{}
	for i, s := range srcs {
		byID[i] = make(map[string]*sources.Observation, len(s.Observations))
		for j := range s.Observations {
			o := &s.Observations[j]
			if byID[i][o.ID] != nil {
				bad(RuleIndexDuplicate, o.ID, "source %s reports it twice", s.Name)
				continue
			}
			byID[i][o.ID] = o
			if s.Authoritative {
				exists[o.ID] = true
			}
		}
	}
	order := func(f disposition.Field) []int {
		var idx []int
		for _, name := range precedence[f] {
			if i := slices.IndexFunc(srcs, func(s SourceObservations) bool { return s.Name == name }); i >= 0 && !slices.Contains(idx, i) {
				idx = append(idx, i)
			}
		}
		for i := range srcs {
			if !slices.Contains(idx, i) {
				idx = append(idx, i)
			}
		}
		return idx
	}
	orders := map[disposition.Field][]int{}
	for _, f := range disposition.Fields()[1:] {
		orders[f] = order(f)
	}

	_ = snap.Scan(disposition.Query{}, func(n *disposition.Node) bool {
		if !exists[n.ID] {
			bad(RuleIndexExtra, n.ID, "in the index, but no authoritative source reports it")
		}
		return true
	})
	for _, id := range slices.Sorted(maps.Keys(exists)) {
		n, ok := snap.Get(id)
		if !ok {
			bad(RuleIndexMissing, id, "an authoritative source reports it, the index does not have it")
			continue
		}
		hasProv := false
		for _, o := range n.Provenance {
			hasProv = hasProv || o != nil
		}
		want := &disposition.Node{ID: id}
		for _, f := range disposition.Fields()[1:] {
			winner := ""
			for _, i := range orders[f] {
				o := byID[i][id]
				if o == nil || !o.Known.Has(f) {
					continue
				}
				if winner == "" {
					winner = srcs[i].Name
				}
				switch f {
				case disposition.FieldVersions:
					want.Versions = mergeUnder(want.Versions, o.Values.Versions)
					continue
				case disposition.FieldLabels:
					want.Labels = mergeUnder(want.Labels, o.Values.Labels)
					continue
				}
				copyValue(want, &o.Values, f)
				break
			}
			if got, exp := fieldValue(n, f), fieldValue(want, f); got != exp {
				from := "no source reports it"
				if winner != "" {
					from = "from " + winner
				}
				bad(RuleIndexField, id, "%s is %s, want %s (%s)", f, got, exp, from)
			}
			if !hasProv {
				continue
			}
			switch o := n.Provenance.Of(f); {
			case winner == "" && o != nil:
				bad(RuleIndexProvenance, id, "%s: provenance names %s, but no source reports it", f, o.Source)
			case winner != "" && o == nil:
				bad(RuleIndexProvenance, id, "%s: no provenance, want %s", f, winner)
			case winner != "" && o.Source != winner:
				bad(RuleIndexProvenance, id, "%s: provenance names %s, want %s", f, o.Source, winner)
			}
		}
	}
	return out
}

// VerifyIndex runs CheckIndex and reports every violation as a test
// error.
func VerifyIndex(t testing.TB, snap *disposition.Snapshot, precedence map[disposition.Field][]string, srcs ...SourceObservations) {
	t.Helper()
	report(t, "index", CheckIndex(snap, precedence, srcs...))
}

// mergeUnder adds to dst the keys of src it lacks: sources earlier in
// precedence keep their values.
func mergeUnder(dst, src map[string]string) map[string]string {
	if dst == nil {
		dst = map[string]string{}
	}
	for k, v := range src {
		if _, ok := dst[k]; !ok {
			dst[k] = v
		}
	}
	return dst
}

// copyValue copies the value of scalar field f from src to dst.
func copyValue(dst, src *disposition.Node, f disposition.Field) {
	switch f {
	case disposition.FieldKind:
		dst.Kind = src.Kind
	case disposition.FieldRegion:
		dst.Region = src.Region
	case disposition.FieldMetro:
		dst.Metro = src.Metro
	case disposition.FieldSite:
		dst.Site = src.Site
	case disposition.FieldCluster:
		dst.Cluster = src.Cluster
	case disposition.FieldRack:
		dst.Rack = src.Rack
	case disposition.FieldTimezone:
		dst.Timezone = src.Timezone
	case disposition.FieldRole:
		dst.Role = src.Role
	case disposition.FieldPlatform:
		dst.Platform = src.Platform
	case disposition.FieldState:
		dst.State = src.State
	case disposition.FieldReleaseState:
		dst.ReleaseState = src.ReleaseState
	case disposition.FieldHealth:
		dst.Health = src.Health
	case disposition.FieldTraffic:
		dst.TrafficGbps = src.TrafficGbps
	case disposition.FieldCapacity:
		dst.CapacityGbps = src.CapacityGbps
	}
}
