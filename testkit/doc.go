// Package testkit gives test suites (fleetkit's and its users') shared
// fixtures, running refd, fakes of the systems fleetkit reads and real
// servers in containers, plus invariant checkers to call from tests.
//
// A fixture is one call that returns a handle with the address to reach
// it on 127.0.0.1, and is cleaned up by t.Cleanup:
//
//	func TestMyTool(t *testing.T) {
//		fakes := testkit.Fakes(t, fleet.Config{Size: 2000, Seed: 1})  // NetBox, MaaS, Prometheus, ...
//		prom := testkit.Prometheus(t, testkit.PrometheusScrapeConfig(fakes.ExporterTarget))
//		r := testkit.Refd(t, testkit.RefdConfig(`sources: [...]`))   // sources use fakes.NetBox.InternalURL
//		page, err := r.Client.Nodes(ctx, client.NodesQuery{Query: "metro=DEN"})
//		pg := testkit.Postgres(t)                                      // pg.DSN
//		testkit.VerifyAPI(t, testkit.API{URL: r.URL, Token: r.Token, ReadToken: r.ReadToken})
//	}
//
// Containers of one test binary share a Docker network, on which they
// reach each other by name (the InternalURL and InternalDSN fields), and
// publish their ports on 127.0.0.1 only (URL, DSN). Run starts any other
// image the same way.
//
// # Images
//
// No registry is needed: every image is built locally, FROM scratch,
// and tagged with the SHA-256 of its build context, so it is built once
// and reused until its content changes (an older tag of the same image
// is removed when a new one is built):
//
//   - fleetkit-testkit/refd and fleetkit-testkit/fleetfakes: static
//     binaries of cmd/refd and testkit/cmd/fleetfakes, built with the go
//     command of the test (CGO_ENABLED=0) from the module the test
//     belongs to, so a downstream module gets the fleetkit version it
//     requires. WithBinary gives a prebuilt binary instead.
//   - fleetkit-testkit/prometheus and fleetkit-testkit/postgres: the
//     host's Debian packages' binaries (apt-get install prometheus
//     postgresql) with the shared libraries ldd names and, for
//     PostgreSQL, its modules, share files, time zones and a cluster
//     initialised on the host at build time, so the container needs no
//     shell. Prometheus's web UI assets are left out: the API is all a
//     test needs.
//
// A first run builds them (well under a minute once the go build cache
// is warm); later runs only start containers. The fakes binary imports
// testkit, so a change to testkit rebuilds its image. `docker images --filter label=fleetkit.testkit.image=1`
// lists them.
//
// # Upstream images
//
// Where a registry is reachable, WithImage points a fixture at any image
// with the layout the fixture expects, which is the upstream one:
//
//	testkit.Prometheus(t, cfg, testkit.WithImage("prom/prometheus:v2.53.0"))
//	testkit.Postgres(t, testkit.WithImage("postgres:16"))   // runs with POSTGRES_HOST_AUTH_METHOD=trust
//	testkit.Refd(t, testkit.WithImage("registry.example/fleetkit/refd:1.4"))  // built from cmd/refd/Dockerfile
//
// Prometheus: entrypoint prometheus, config /etc/prometheus/prometheus.yml,
// data /prometheus, port 9090. PostgreSQL: command postgres on PATH,
// PGDATA /var/lib/postgresql/data, user postgres, port 5432. refd:
// entrypoint refd, writable /var/lib/refd, port 8080. A missing image is
// pulled.
//
// # Skipping, failing and clean-up
//
// Without a Docker engine (DOCKER_HOST, or the default socket) a fixture
// skips its test with a one-line reason; so does Prometheus or Postgres
// without the host binary its image is built from. With
// FLEETKIT_REQUIRE_DOCKER=1 (CI sets it) they fail instead, so that CI
// cannot pass by skipping.
//
// A fixture waits for readiness with a bounded retry (DefaultStartTimeout,
// WithStartTimeout); a container that exits or does not become ready
// fails the test with its state and last logs, and the logs of every
// container of a test that failed are logged at clean-up. Containers are
// removed by t.Cleanup, which also runs when the test panics. Every
// container and network carries labels with the creating process's ID
// and host (LabelPID, LabelHost); when a test binary starts its pool, it
// removes those whose process on this host is gone, or that are older
// than StaleAfter, so a test binary that is killed (a -timeout, a
// cancelled CI job) leaks nothing past the next run.
//
// The test binary's containers share one Docker connection and image
// cache, the package's one process-wide value (see Docker).
//
// # In process
//
// FakesServer, FakeNetBoxServer and FakePrometheusServer serve the fakes
// in process with httptest, with no Docker, and expose each fake's Faults
// to inject failures.
//
// # Checks
//
// CheckPlan (rollout plans keep every budget, window, blackout, capacity
// and growth rule), CheckIndex (an index agrees with its sources) and
// CheckAPI (a refd keeps its REST contract: error shape, 401 and 403,
// ETags and 304, cursor pagination) return the broken invariants;
// VerifyPlan, VerifyIndex and VerifyAPI report them as test errors.
// PlanWithRefd plans with a running refd and returns what CheckPlan needs.
package testkit
