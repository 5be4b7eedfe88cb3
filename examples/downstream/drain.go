package downstream

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/fleetkit/fleetkit/client"
	"github.com/fleetkit/fleetkit/disposition"
)

// DrainCandidates returns the healthy in-service servers of role in
// metro that can be drained while keeping at least keep of them in
// service, lowest traffic first: the tool under test.
func DrainCandidates(ctx context.Context, c *client.Client, metro, role string, keep int) ([]*disposition.Node, error) {
	page, err := c.Nodes(ctx, client.NodesQuery{Query: fmt.Sprintf("metro=%s role=%s state=in-service health=healthy", metro, role)})
	if err != nil {
		return nil, err
	}
	nodes := page.Nodes
	if len(nodes) <= keep {
		return nil, nil
	}
	slices.SortFunc(nodes, func(a, b *disposition.Node) int {
		return cmp.Or(cmp.Compare(a.TrafficGbps, b.TrafficGbps), strings.Compare(a.ID, b.ID))
	})
	return nodes[:len(nodes)-keep], nil
}
