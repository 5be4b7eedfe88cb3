package testkit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ory/dockertest/v3"
	dc "github.com/ory/dockertest/v3/docker"
)

// RequireDockerEnv names the environment variable that turns a missing
// Docker engine (or a missing host binary an image is built from) into a
// test failure instead of a skip. CI sets it to 1, so that CI cannot pass
// by skipping.
const RequireDockerEnv = "FLEETKIT_REQUIRE_DOCKER"

// Labels testkit puts on every container, network and image it creates.
// Containers and networks carry the creating process's ID, host name and
// creation time, so that a later test binary can reap what a killed one
// left behind.
const (
	LabelTestkit = "fleetkit.testkit"         // "1" on every container and network
	LabelPID     = "fleetkit.testkit.pid"     // the creating process's ID
	LabelHost    = "fleetkit.testkit.host"    // the creating process's host name
	LabelCreated = "fleetkit.testkit.created" // Unix seconds
	LabelImage   = "fleetkit.testkit.image"   // "1" on every image testkit builds
)

// StaleAfter is the age past which a labelled container or network made
// on another host (whose process testkit cannot check) is reaped.
const StaleAfter = 2 * time.Hour

// Pool is the Docker engine connection that the fixtures of one test
// binary share, with the images they built and the network their
// containers join. Get it with Docker; it is safe for concurrent use.
type Pool struct {
	docker *dockertest.Pool
	host   string
	pid    int
	tag    string // random, in container names: pids repeat across hosts
	arch   string // the engine's GOARCH

	reapErr error     // of the reaping at start, logged once
	logReap sync.Once // by the first test that uses the pool

	mu      sync.Mutex
	seq     int
	netID   string
	netName string
	netRefs int
	images  map[string]*once
}

// once is a build shared by every caller that asks for the same thing:
// the first does it, the others wait for its result.
type once struct {
	done chan struct{}
	val  string
	err  error
}

// do returns the result of the build of key in m, running build if
// nobody has. p.mu guards m.
func (p *Pool) do(m map[string]*once, key string, build func() (string, error)) (string, error) {
	p.mu.Lock()
	o := m[key]
	if o == nil {
		o = &once{done: make(chan struct{})}
		m[key] = o
		p.mu.Unlock()
		o.val, o.err = build()
		close(o.done)
		return o.val, o.err
	}
	p.mu.Unlock()
	<-o.done
	return o.val, o.err
}

// lazyPool holds the pool of this test binary.
type lazyPool struct {
	once sync.Once
	pool *Pool
	err  error
}

// processPool is the one package-level value of testkit, and it is
// deliberate: fixtures share one Docker connection, one image cache and
// one network per test binary (as dockertest users do), and the fixtures'
// API (testkit.Refd(t), testkit.Postgres(t)) has no place to pass a pool
// through, nor should every test have to. It is created on first use,
// never at init, and holds nothing that outlives the process but labelled
// containers, which the next process's pool reaps if this one is killed.
var processPool lazyPool

// Docker returns the test binary's shared pool, connecting to the Docker
// engine (DOCKER_HOST, or the default socket) on first use and reaping
// containers and networks left behind by test processes that were killed.
// Without a reachable engine it skips t with a one-line reason, or fails
// it when FLEETKIT_REQUIRE_DOCKER=1.
func Docker(t testing.TB) *Pool {
	t.Helper()
	processPool.once.Do(func() {
		processPool.pool, processPool.err = newPool(context.Background())
	})
	if processPool.err != nil {
		unavailable(t, "no Docker engine", processPool.err)
	}
	p := processPool.pool
	p.logReap.Do(func() {
		if p.reapErr != nil {
			t.Logf("testkit: reaping containers of killed test processes: %v", p.reapErr)
		}
	})
	return p
}

// unavailable skips t, or fails it under FLEETKIT_REQUIRE_DOCKER=1, for
// something a fixture needs and does not have.
func unavailable(t testing.TB, what string, err error) {
	t.Helper()
	msg := err.Error()
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	if os.Getenv(RequireDockerEnv) == "1" {
		t.Fatalf("testkit: %s: %s (%s=1, so this fails instead of skipping)", what, msg, RequireDockerEnv)
	}
	t.Skipf("testkit: %s: %s", what, msg)
}

func newPool(ctx context.Context) (*Pool, error) {
	dp, err := dockertest.NewPool("")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := dp.Client.PingWithContext(ctx); err != nil {
		return nil, fmt.Errorf("%s: %w", dp.Client.Endpoint(), err)
	}
	env, err := dp.Client.Version()
	if err != nil {
		return nil, fmt.Errorf("%s: version: %w", dp.Client.Endpoint(), err)
	}
	host, _ := os.Hostname()
	var tag [3]byte
	_, _ = rand.Read(tag[:]) // crypto/rand.Read does not fail
	p := &Pool{
		tag:    hex.EncodeToString(tag[:]),
		docker: dp,
		host:   host,
		pid:    os.Getpid(),
		arch:   env.Get("Arch"),
		images: map[string]*once{},
	}
	// Reaping is best effort: another process may be removing the same
	// containers, and a leftover must not cost this run its fixtures.
	p.reapErr = p.reap()
	return p, nil
}

// Client returns the Docker client, for what the fixtures do not cover.
func (p *Pool) Client() *dc.Client { return p.docker.Client }

// labels returns the labels of a new container or network.
func (p *Pool) labels() map[string]string {
	return map[string]string{
		LabelTestkit: "1",
		LabelPID:     strconv.Itoa(p.pid),
		LabelHost:    p.host,
		LabelCreated: strconv.FormatInt(time.Now().Unix(), 10),
	}
}

// stale reports whether a container or network with labels l was left
// behind: made on this host by a process that is gone, or made anywhere
// longer than StaleAfter ago.
func (p *Pool) stale(l map[string]string) bool {
	if created, err := strconv.ParseInt(l[LabelCreated], 10, 64); err == nil &&
		time.Since(time.Unix(created, 0)) > StaleAfter {
		return true
	}
	if l[LabelHost] != p.host {
		return false
	}
	pid, err := strconv.Atoi(l[LabelPID])
	if err != nil {
		return true
	}
	return pid != p.pid && !processAlive(pid)
}

// reap removes the labelled containers and networks that stale reports,
// so that a test binary that was killed (SIGKILL, a -timeout panic, a
// CI job cancelled) leaks nothing past the next run.
func (p *Pool) reap() error {
	filter := map[string][]string{"label": {LabelTestkit + "=1"}}
	cs, err := p.docker.Client.ListContainers(dc.ListContainersOptions{All: true, Filters: filter})
	if err != nil {
		return err
	}
	var errs []error
	for _, c := range cs {
		if !p.stale(c.Labels) {
			continue
		}
		err := p.docker.Client.RemoveContainer(dc.RemoveContainerOptions{ID: c.ID, Force: true, RemoveVolumes: true})
		var nsc *dc.NoSuchContainer
		if err != nil && !errors.As(err, &nsc) {
			errs = append(errs, fmt.Errorf("container %s: %w", c.ID[:12], err))
		}
	}
	nets, err := p.docker.Client.FilteredListNetworks(dc.NetworkFilterOpts{"label": {LabelTestkit + "=1": true}})
	if err != nil {
		return err
	}
	for _, n := range nets {
		if p.stale(n.Labels) {
			// A network still in use belongs to a live process after all.
			_ = p.docker.Client.RemoveNetwork(n.ID)
		}
	}
	return errors.Join(errs...)
}

// acquireNetwork returns the name of the pool's network, creating it for
// the first container; release gives it back, and the last release
// removes it, so that no network outlives the containers using it.
func (p *Pool) acquireNetwork() (name string, release func(), err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.netRefs == 0 {
		p.seq++
		name := fmt.Sprintf("fleetkit-testkit-%d-%s-%d", p.pid, p.tag, p.seq)
		n, err := p.docker.Client.CreateNetwork(dc.CreateNetworkOptions{
			Name: name, Driver: "bridge", Labels: p.labels(), CheckDuplicate: true,
		})
		if err != nil {
			return "", nil, fmt.Errorf("creating network %s: %w", name, err)
		}
		p.netID, p.netName = n.ID, name
	}
	p.netRefs++
	released := false
	return p.netName, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if released {
			return
		}
		released = true
		p.netRefs--
		if p.netRefs == 0 {
			_ = p.docker.Client.RemoveNetwork(p.netID)
			p.netID, p.netName = "", ""
		}
	}, nil
}

// nextName returns a new container name for kind, unique in this process
// and, through the process ID and host labels, recognisable to reap.
func (p *Pool) nextName(kind string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seq++
	return fmt.Sprintf("fleetkit-%s-%d-%s-%d", kind, p.pid, p.tag, p.seq)
}

// unavailableOrFatal ends t because a fixture's image could not be had:
// a skip (or a failure under FLEETKIT_REQUIRE_DOCKER=1) when the host
// lacks the binary it is built from, a failure otherwise.
func unavailableOrFatal(t testing.TB, fixture string, err error) {
	t.Helper()
	if errors.Is(err, ErrNoHostBinary) {
		unavailable(t, fixture, err)
	}
	t.Fatalf("testkit: %s: %v", fixture, err)
}
