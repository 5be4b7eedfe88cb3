// Package fleet generates realistic, deterministic CDN fleets for tests,
// benchmarks and demos.
//
// A fleet is a set of disposition.Node records spread over ~60 metros in
// real IANA time zones on every inhabited continent, in sites, racks and
// clusters of uneven size, with roles, kinds, platforms, release states,
// versions, a sprinkling of servers out of service or unhealthy, and
// traffic that follows a diurnal curve in each metro's local time:
//
//	f, err := fleet.Generate(fleet.Config{Size: 20000, Seed: 1})
//	ix := disposition.NewIndex()
//	_, err = ix.Apply(ctx, disposition.Batch{Upserts: f.Nodes})
//	for _, m := range f.TrafficAt(time.Now()) {
//		fmt.Println(m.Metro, m.TrafficGbps, m.CapacityGbps)
//	}
//
// The same Config always gives the same fleet. WriteJSON and WriteCSV
// write a fleet's nodes; ReadJSON and ReadCSV read them back, for fixtures
// and round trips.
//
// The package imports only the standard library and disposition (no
// Docker client), so that `refd serve --demo` can use it, and it embeds
// the time zone database (time/tzdata) so that it works on machines
// without one.
package fleet
