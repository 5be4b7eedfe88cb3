// Package realserver starts real servers (Prometheus, PostgreSQL) from
// their installed binaries for the duration of a test, on free loopback
// ports, so that fleetkit's adapters and later fixtures are tested against
// the real thing and not only against fakes.
//
//	addr := realserver.Prometheus(t, promYAML) // "127.0.0.1:port"
//	dsn := realserver.Postgres(t)              // "postgres://postgres@127.0.0.1:port/postgres?sslmode=disable"
//
// A test whose server's binary is not installed is skipped, or fails when
// FLEETKIT_REQUIRE_DOCKER=1 (CI), so that CI cannot pass by skipping.
// Installing them on Debian: apt-get install -y prometheus postgresql.
package realserver
