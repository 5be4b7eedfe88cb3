package rollout

import (
	"fmt"
	"slices"
	"strings"

	"github.com/fleetkit/fleetkit/disposition"
)

// prefSet is the compiled ordering preferences.
type prefSet struct {
	fields []fieldPref
	radix  uint64 // product of the field preferences' radices
	metro  []Preference
}

type fieldPref struct {
	get   func(n *disposition.Node) string
	first map[string]uint64
	radix uint64
}

const maxPrefRank = 1 << 20

func (p *planner) compilePrefs() (*prefSet, error) {
	ps := &prefSet{radix: 1}
	for i, pr := range p.spec.Order {
		if pr.metroMeasure() {
			ps.metro = append(ps.metro, pr)
			continue
		}
		get, err := fieldGetter(pr.By)
		if err != nil {
			return nil, fieldErr(fmt.Sprintf("order[%d].by", i), "%v", err)
		}
		fp := fieldPref{get: get, first: map[string]uint64{}, radix: uint64(len(pr.First)) + 1}
		for r, v := range pr.First {
			if _, dup := fp.first[v]; !dup {
				fp.first[v] = uint64(r)
			}
		}
		ps.radix *= fp.radix
		if ps.radix > maxPrefRank {
			return nil, fieldErr("order", "too many preferred values (the product of len(first)+1 over preferences exceeds %d)", maxPrefRank)
		}
		ps.fields = append(ps.fields, fp)
	}
	return ps, nil
}

// fieldGetter returns a function reading a node field by its query name.
func fieldGetter(by string) (func(n *disposition.Node) string, error) {
	if k, ok := strings.CutPrefix(by, "label."); ok && k != "" {
		return func(n *disposition.Node) string { return n.Labels[k] }, nil
	}
	if k, ok := strings.CutPrefix(by, "version."); ok && k != "" {
		return func(n *disposition.Node) string { return n.Versions[k] }, nil
	}
	f, err := disposition.ParseField(by)
	if err != nil {
		return nil, err
	}
	switch f {
	case disposition.FieldID:
		return func(n *disposition.Node) string { return n.ID }, nil
	case disposition.FieldKind:
		return func(n *disposition.Node) string { return n.Kind.String() }, nil
	case disposition.FieldRegion:
		return func(n *disposition.Node) string { return n.Region }, nil
	case disposition.FieldMetro:
		return func(n *disposition.Node) string { return n.Metro }, nil
	case disposition.FieldSite:
		return func(n *disposition.Node) string { return n.Site }, nil
	case disposition.FieldCluster:
		return func(n *disposition.Node) string { return n.Cluster }, nil
	case disposition.FieldRack:
		return func(n *disposition.Node) string { return n.Rack }, nil
	case disposition.FieldTimezone:
		return func(n *disposition.Node) string { return n.Timezone }, nil
	case disposition.FieldRole:
		return func(n *disposition.Node) string { return n.Role }, nil
	case disposition.FieldPlatform:
		return func(n *disposition.Node) string { return n.Platform }, nil
	case disposition.FieldState:
		return func(n *disposition.Node) string { return n.State.String() }, nil
	case disposition.FieldReleaseState:
		return func(n *disposition.Node) string { return n.ReleaseState }, nil
	case disposition.FieldHealth:
		return func(n *disposition.Node) string { return n.Health.String() }, nil
	}
	return nil, fmt.Errorf("cannot order by %q", by)
}

func (ps *prefSet) rank(n *disposition.Node) uint64 {
	var r uint64
	for _, f := range ps.fields {
		v, ok := f.first[f.get(n)]
		if !ok {
			v = f.radix - 1
		}
		r = r*f.radix + v
	}
	return r
}

// order returns the metro's targets in the order waves take them: by
// preference rank, then spread over clusters in proportion to their
// size (the i-th of a cluster's n targets comes at i/n), then by ID. The
// spread keeps every cluster's progress even, so cluster and site budgets
// rarely hold a wave back.
func (p *planner) order(cands []int32, ps *prefSet) ([]int32, []uint32) {
	size := make(map[int32]int32, 16)
	for _, ti := range cands {
		size[p.tg[ti].dom[lvCluster]]++
	}
	seen := make(map[int32]int32, len(size))
	keys := make([]uint64, len(cands))
	for i, ti := range cands {
		c := p.tg[ti].dom[lvCluster]
		r := seen[c]
		seen[c] = r + 1
		frac := uint64(r) << 20 / uint64(size[c])
		keys[i] = uint64(p.tg[ti].rank)<<44 | frac<<24 | uint64(i)
	}
	slices.Sort(keys)
	out := make([]int32, len(cands))
	ranks := make([]uint32, len(cands))
	for i, k := range keys {
		out[i] = cands[k&(1<<24-1)]
		ranks[i] = uint32(k >> 44)
	}
	return out, ranks
}

// metroMeasures returns the metro's values of the metro preferences,
// smaller first.
func (ps *prefSet) metroMeasures(p *planner, m *metroPlan, targets int) []float64 {
	out := make([]float64, len(ps.metro))
	for i, pr := range ps.metro {
		var v float64
		switch pr.By {
		case ByMetroUtilisation:
			if m.capacity > 0 {
				v = m.traffic / m.capacity
			}
		case ByMetroTraffic:
			v = m.traffic
		case ByMetroSize:
			v = float64(targets)
		}
		if pr.Desc {
			v = -v
		}
		out[i] = v
	}
	return out
}
