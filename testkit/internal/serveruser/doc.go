// Package serveruser runs a test server that refuses to run as root
// (PostgreSQL's initdb and postgres) as user postgres, or nobody, when the
// tests run as root, for the fixtures of testkit and testkit/realserver.
package serveruser
