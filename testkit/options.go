package testkit

import (
	"testing"
	"time"
)

// Option changes how a container fixture starts. Options that apply to
// one fixture only (RefdConfig, RefdDemo) fail the test when given to
// another.
type Option func(*settings)

// settings are what the options set.
type settings struct {
	image   string
	pull    bool
	binary  string
	files   []File
	env     []string
	timeout time.Duration

	refdConfig   string
	refdDemoSize int

	// only lists the fixture-specific options given, with the fixture
	// each belongs to.
	only []struct{ option, fixture string }
}

func (s *settings) restrict(option, fixture string) {
	s.only = append(s.only, struct{ option, fixture string }{option, fixture})
}

// apply returns the settings of opts for fixture, failing t if one of
// them belongs to another fixture.
func apply(t testing.TB, fixture string, opts []Option) *settings {
	t.Helper()
	s := &settings{}
	for _, o := range opts {
		o(s)
	}
	for _, o := range s.only {
		if o.fixture != fixture {
			t.Fatalf("testkit: %s: option %s applies to %s only", fixture, o.option, o.fixture)
		}
	}
	return s
}

// WithImage runs the fixture from an existing image instead of building
// one: an image loaded or built beforehand, or, with a registry, an
// upstream image such as "prom/prometheus:v2.53.0" or "postgres:16"
// (pulled when missing). The image must follow the layout the fixture
// expects, which is the upstream images' (see the package doc).
func WithImage(ref string) Option {
	return func(s *settings) { s.image, s.pull = ref, true }
}

// WithBinary builds the fixture's image around the given static linux
// binary instead of building one with the go command: for refd (a
// CGO_ENABLED=0 build of cmd/refd) and the fakes (of testkit/cmd/fleetfakes).
func WithBinary(path string) Option {
	return func(s *settings) { s.binary = path }
}

// WithFile writes a file into the container before it starts, such as an
// inventory for a file source of refd.
func WithFile(f File) Option {
	return func(s *settings) { s.files = append(s.files, f) }
}

// WithEnv adds KEY=value environment variables to the container.
func WithEnv(kv ...string) Option {
	return func(s *settings) { s.env = append(s.env, kv...) }
}

// WithStartTimeout bounds the wait for the container to become ready;
// the default is DefaultStartTimeout.
func WithStartTimeout(d time.Duration) Option {
	return func(s *settings) { s.timeout = d }
}
