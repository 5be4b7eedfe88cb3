// Package postgres is a fleetkit source that reads nodes from a SQL query
// on PostgreSQL (through pgx): each row is one node, and its columns map
// to disposition fields by name (a column named metro is the metro) or
// through Options.Columns. NULL is unknown.
//
//	src, err := postgres.New("cmdb", postgres.Options{
//		DSN:   "postgres://fleetkit@cmdb:5432/inventory",
//		Query: `select hostname as id, dc as site, state, uplink_gbps as capacity_gbps, tags as labels from servers`,
//	})
//	obs, err := src.Fetch(ctx)
package postgres
