// Package downstream shows a downstream team's test suite built on
// testkit's fixtures: it is all in downstream_test.go. Its subject is a
// small tool of the kind such teams write against refd, DrainCandidates,
// which picks the servers of a metro that can be drained for
// maintenance; the tests run it against a real refd container fed by the
// fakes, and against in-process fakes where no container is needed.
//
//	go test ./examples/downstream/
//
// Without a Docker engine the container tests skip (or fail with
// FLEETKIT_REQUIRE_DOCKER=1).
package downstream
