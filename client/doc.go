// Package client is a small Go client for the refd REST API, for tools
// and CI jobs that query the fleet or drive rollouts.
//
//	c, err := client.New("https://refd.example:8443", os.Getenv("REFD_TOKEN"))
//	page, err := c.Nodes(ctx, client.NodesQuery{Query: "metro=DEN role=edge health!=down"})
//	byMetro, err := c.Aggregate(ctx, "role=edge", "metro", "health")
//	plan, err := c.Plan(ctx, specYAML, time.Time{})
//
// API errors are *Error values carrying the API's stable code and the
// field at fault.
package client
