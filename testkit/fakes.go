package testkit

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/fleetkit/fleetkit/testkit/fakes"
	"github.com/fleetkit/fleetkit/testkit/fleet"
)

// FakesPackage is the main package the fakes image is built from.
const FakesPackage = "github.com/fleetkit/fleetkit/testkit/cmd/fleetfakes"

// ExporterPath is where the fakes serve FleetExporter.
const ExporterPath = "/metrics"

const fakesPort = "8080/tcp"

// Service is one fake system: where to reach it and with which
// credentials.
type Service struct {
	// URL is the base URL from the test process, as the system's source
	// takes it (http://127.0.0.1:<port>/netbox for NetBox).
	URL string
	// InternalURL is the base URL from other testkit containers, such as
	// a refd container's sources; "" for an in-process fake.
	InternalURL string
	// Token is the credential of systems that take one: the NetBox token,
	// the MaaS API key. User and Password are salt-api's.
	Token    string
	User     string
	Password string
	// Container is the container serving it; nil for an in-process fake.
	Container *Container
	// Faults injects failures into an in-process fake; nil for a
	// container.
	Faults *fakes.Faults
}

// FakeServices are the fakes of every system fleetkit reads, over one
// generated fleet, at one address: NetBox, MaaS, Prometheus (its HTTP
// API), Alertmanager, salt-api, and Exporter, a Prometheus exporter of
// the fleet (FleetExporter) for a real Prometheus to scrape.
type FakeServices struct {
	NetBox, MaaS, Prometheus, Alertmanager, Salt, Exporter Service
	// ExporterTarget is the exporter's address as other testkit
	// containers reach it ("<name>:8080"), for PrometheusScrapeConfig;
	// for in-process fakes, the loopback address.
	ExporterTarget string
	// Container serves them all; nil in process.
	Container *Container
}

// FakesMux is the http.Handler of the fakes: fakes.Mux's layout with
// every fake reachable for fault injection, plus FleetExporter at
// ExporterPath.
type FakesMux struct {
	http.Handler
	NetBox       *fakes.NetBox
	MaaS         *fakes.MaaS
	Prometheus   *fakes.Prometheus
	Alertmanager *fakes.Alertmanager
	Salt         *fakes.Salt
}

// NewFakesMux serves the fakes over f with their default options and
// credentials, under the prefixes of fakes.Mux (fakes.NetBoxPrefix, ...),
// with /healthz and FleetExporter at ExporterPath. It is what the fakes
// container runs.
func NewFakesMux(f *fleet.Fleet) *FakesMux {
	m := &FakesMux{
		NetBox:       fakes.NewNetBox(f, fakes.NetBoxOptions{}),
		MaaS:         fakes.NewMaaS(f, fakes.MaaSOptions{}),
		Prometheus:   fakes.NewPrometheus(f),
		Alertmanager: fakes.NewAlertmanager(f, fakes.AlertmanagerOptions{}),
		Salt:         fakes.NewSalt(f, fakes.SaltOptions{}),
	}
	mux := http.NewServeMux()
	mount := func(prefix string, h http.Handler) { mux.Handle(prefix+"/", http.StripPrefix(prefix, h)) }
	mount(fakes.NetBoxPrefix, m.NetBox)
	mount(fakes.MaaSPrefix, m.MaaS)
	mount(fakes.PrometheusPrefix, m.Prometheus)
	mount(fakes.AlertmanagerPrefix, m.Alertmanager)
	mount(fakes.SaltPrefix, m.Salt)
	mux.Handle(ExporterPath, FleetExporter(f))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	m.Handler = mux
	return m
}

// services returns the fakes at base (and internal, "" for none).
func services(base, internal string) FakeServices {
	svc := func(prefix string) Service {
		s := Service{URL: base + prefix}
		if internal != "" {
			s.InternalURL = internal + prefix
		}
		return s
	}
	fs := FakeServices{
		NetBox: svc(fakes.NetBoxPrefix), MaaS: svc(fakes.MaaSPrefix + "/MAAS"), Prometheus: svc(fakes.PrometheusPrefix),
		Alertmanager: svc(fakes.AlertmanagerPrefix), Salt: svc(fakes.SaltPrefix), Exporter: svc(ExporterPath),
	}
	fs.NetBox.Token = fakes.DefaultToken
	fs.MaaS.Token = fakes.DefaultMaaSAPIKey
	fs.Salt.User, fs.Salt.Password = fakes.DefaultSaltUser, fakes.DefaultSaltPassword
	return fs
}

// FakesServer serves every fake over f in process (httptest, loopback)
// for the rest of the test: no Docker needed, and each fake's Faults
// reachable.
func FakesServer(t testing.TB, f *fleet.Fleet) *FakeServices {
	t.Helper()
	m := NewFakesMux(f)
	srv := httptest.NewServer(m)
	t.Cleanup(srv.Close)
	fs := services(srv.URL, "")
	fs.NetBox.Faults, fs.MaaS.Faults, fs.Prometheus.Faults = &m.NetBox.Faults, &m.MaaS.Faults, &m.Prometheus.Faults
	fs.Alertmanager.Faults, fs.Salt.Faults = &m.Alertmanager.Faults, &m.Salt.Faults
	fs.ExporterTarget = srv.Listener.Addr().String()
	return &fs
}

// FakeNetBoxServer serves the NetBox fake over f in process for the rest
// of the test.
func FakeNetBoxServer(t testing.TB, f *fleet.Fleet) *Service {
	t.Helper()
	nb := fakes.NewNetBox(f, fakes.NetBoxOptions{})
	srv := httptest.NewServer(nb)
	t.Cleanup(srv.Close)
	return &Service{URL: srv.URL, Token: fakes.DefaultToken, Faults: &nb.Faults}
}

// FakePrometheusServer serves the Prometheus API fake over f in process
// for the rest of the test.
func FakePrometheusServer(t testing.TB, f *fleet.Fleet) *Service {
	t.Helper()
	p := fakes.NewPrometheus(f)
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return &Service{URL: srv.URL, Faults: &p.Faults}
}

// Fakes starts the fakes container (testkit/cmd/fleetfakes) serving the
// fleet that cfg generates (the container generates it again: the same
// Config gives the same fleet) and returns its services once it answers.
// The image is built with the go command like refd's, unless WithImage or
// WithBinary says otherwise.
func Fakes(t testing.TB, cfg fleet.Config, opts ...Option) *FakeServices {
	t.Helper()
	s := apply(t, "Fakes", opts)
	p := Docker(t)
	ref := s.image
	if ref == "" {
		var err error
		if ref, err = p.goImage(context.Background(), "fleetfakes", FakesPackage, s.binary); err != nil {
			t.Fatalf("testkit: fakes: %v", err)
		}
	}
	cmd := []string{"-listen", "0.0.0.0:8080", "-size", strconv.Itoa(cfg.Size), "-seed", strconv.FormatInt(cfg.Seed, 10)}
	if !cfg.Start.IsZero() {
		cmd = append(cmd, "-start", cfg.Start.Format(time.RFC3339Nano))
	}
	c := Run(t, ContainerSpec{
		Kind: "fakes", Image: ref, Pull: s.pull, Cmd: cmd, Ports: []string{fakesPort},
		Env: s.env, Files: s.files, StartTimeout: s.timeout,
		Ready: func(ctx context.Context, c *Container) error {
			return httpStatus(ctx, "http://"+c.HostAddr(fakesPort)+"/healthz", "", http.StatusOK)
		},
	})
	fs := services("http://"+c.HostAddr(fakesPort), "http://"+c.InternalAddr(fakesPort))
	fs.Container = c
	for _, svc := range []*Service{&fs.NetBox, &fs.MaaS, &fs.Prometheus, &fs.Alertmanager, &fs.Salt, &fs.Exporter} {
		svc.Container = c
	}
	fs.ExporterTarget = c.InternalAddr(fakesPort)
	return &fs
}

// FakeNetBox starts the fakes container for the fleet cfg generates and
// returns its NetBox.
func FakeNetBox(t testing.TB, cfg fleet.Config, opts ...Option) *Service {
	t.Helper()
	fs := Fakes(t, cfg, opts...)
	return &fs.NetBox
}
