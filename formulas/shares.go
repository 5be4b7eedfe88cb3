package formulas

import (
	"fmt"
	"math"

	"github.com/fleetkit/fleetkit/disposition"
)

// ShareCheck compares the share of the fleet a release state is meant to
// hold with the share it holds.
type ShareCheck struct {
	State   string  `json:"state"`
	Want    float64 `json:"want"`    // declared share, 0 to 1
	Got     float64 `json:"got"`     // actual share, 0 to 1
	Servers int     `json:"servers"` // servers in the state
	OK      bool    `json:"ok"`      // |Got-Want| <= tolerance
}

// CheckShares counts the servers matching q (for example
// state=in-service) by release state and compares each declared share
// with the actual one; tolerance is an absolute fraction (0.02 for two
// points). States without a declared share are not checked.
func (c *Control) CheckShares(snap *disposition.Snapshot, q disposition.Query, tolerance float64) ([]ShareCheck, error) {
	groups, err := snap.Aggregate(q, "release_state")
	if err != nil {
		return nil, fmt.Errorf("formulas: check shares: %w", err)
	}
	total := 0
	counts := map[string]int{}
	for _, g := range groups {
		counts[g.Key[0]] = g.Count
		total += g.Count
	}
	var out []ShareCheck
	for _, s := range c.States {
		if s.Share == 0 {
			continue
		}
		ch := ShareCheck{State: s.Name, Want: s.Share, Servers: counts[s.Name]}
		if total > 0 {
			ch.Got = float64(ch.Servers) / float64(total)
		}
		ch.OK = math.Abs(ch.Got-ch.Want) <= tolerance
		out = append(out, ch)
	}
	return out, nil
}
