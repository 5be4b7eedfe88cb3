// Package file is a sources.Source that reads a server inventory from a
// local CSV, JSON or YAML file, and reads it again when the file changes.
//
//	src, err := file.New("inventory", file.Options{Path: "/etc/fleet/inventory.csv"})
//	agg, err := sources.NewAggregator(ix, sources.AggregatorConfig{},
//		sources.Registered{Source: src, Authoritative: true})
//
// A CSV file has a header row naming its columns, in any order: id
// (required), kind, region, metro, site, cluster, rack, timezone, role,
// platform, state, release_state, health, traffic_gbps, capacity_gbps,
// and "version.<component>" and "label.<key>" for deployed versions and
// labels. An empty cell means the value is unknown, not empty: the file
// does not report it. testkit/fleet's WriteCSV writes this format.
//
// A JSON file is an array of objects with the field names of
// disposition.Node's JSON form (as testkit/fleet's WriteJSON and the
// index's API write it); a YAML file is a list of the same mappings. A key
// that is absent, null or an empty string is unknown. "provenance" is
// accepted and ignored; any other unknown key is an error.
//
// The format comes from Options.Format or else the file's extension
// (.csv, .json, .yaml, .yml). Every error names the file, the line and
// the column or key.
package file
