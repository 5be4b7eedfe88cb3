package testkit

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/fleetkit/fleetkit/testkit/realserver"
)

// The paths of the Prometheus image, those of the upstream
// prom/prometheus image, so that WithImage can point at it.
const (
	prometheusPort       = "9090/tcp"
	prometheusConfigFile = "/etc/prometheus/prometheus.yml"
	prometheusDataDir    = "/prometheus"
)

// PrometheusContainer is a running Prometheus server.
type PrometheusContainer struct {
	*Container
	// URL is the base URL from the test process, "http://127.0.0.1:<port>".
	URL string
	// InternalURL is the base URL from other testkit containers.
	InternalURL string
}

// prometheusImage builds (or finds) a FROM scratch image of the host's
// Prometheus (Debian package prometheus) with its shared libraries.
func (p *Pool) prometheusImage(ctx context.Context) (string, error) {
	bin, err := realserver.PrometheusBinary()
	if err != nil {
		return "", fmt.Errorf("%w: %v (install it: apt-get install -y prometheus)", ErrNoHostBinary, err)
	}
	return p.ensureImage(ctx, image{
		repo: "fleetkit-testkit/prometheus",
		fill: func(c *imageContext) error {
			c.bytes("Dockerfile", 0o644, scratchDockerfile(
				"USER 65534:65534",
				"EXPOSE 9090",
				fmt.Sprintf("ENTRYPOINT [%q]", bin),
			))
			if err := hostFiles(ctx, c, bin); err != nil {
				return err
			}
			c.dir("rootfs/etc/prometheus", 0o755)
			c.dir("rootfs"+prometheusDataDir, 0o777)
			c.dir("rootfs/tmp", 0o1777)
			return nil
		},
	})
}

// Prometheus starts a real Prometheus server with configYAML as its
// prometheus.yml ("" for one that scrapes nothing) and returns it once
// /-/ready answers. The image holds the host's prometheus binary (Debian
// package prometheus) and its shared libraries, FROM scratch, cached by
// content hash; without that binary the test is skipped (or fails under
// FLEETKIT_REQUIRE_DOCKER=1). WithImage("prom/prometheus:<version>")
// runs the upstream image instead.
//
// To scrape the fakes, pass PrometheusScrapeConfig(fakes.ExporterTarget).
func Prometheus(t testing.TB, configYAML string, opts ...Option) *PrometheusContainer {
	t.Helper()
	s := apply(t, "Prometheus", opts)
	p := Docker(t)
	ref := s.image
	if ref == "" {
		var err error
		if ref, err = p.prometheusImage(context.Background()); err != nil {
			unavailableOrFatal(t, "prometheus", err)
		}
	}
	if configYAML == "" {
		configYAML = PrometheusScrapeConfig()
	}
	c := Run(t, ContainerSpec{
		Kind: "prometheus", Image: ref, Pull: s.pull, Ports: []string{prometheusPort},
		Cmd: []string{
			"--config.file=" + prometheusConfigFile,
			"--storage.tsdb.path=" + prometheusDataDir,
			"--web.listen-address=0.0.0.0:9090",
		},
		Env: s.env, StartTimeout: s.timeout,
		Files: append([]File{{Path: prometheusConfigFile, Data: []byte(configYAML)}}, s.files...),
		Ready: func(ctx context.Context, c *Container) error {
			return httpStatus(ctx, "http://"+c.HostAddr(prometheusPort)+"/-/ready", "", http.StatusOK)
		},
	})
	return &PrometheusContainer{
		Container:   c,
		URL:         "http://" + c.HostAddr(prometheusPort),
		InternalURL: "http://" + c.InternalAddr(prometheusPort),
	}
}

// Series returns how many series the instant query returns now.
func (pc *PrometheusContainer) Series(ctx context.Context, query string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, pc.URL+"/api/v1/query?query="+url.QueryEscape(query), nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return 0, fmt.Errorf("query %q: %s: %w", query, resp.Status, err)
	}
	if body.Status != "success" {
		return 0, fmt.Errorf("query %q: %s: %s", query, resp.Status, body.Error)
	}
	return len(body.Data.Result), nil
}

// WaitForSeries waits (up to a minute) until the instant query returns
// at least n series, as after Prometheus's first scrapes, and fails the
// test otherwise.
func (pc *PrometheusContainer) WaitForSeries(t testing.TB, query string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var got int
	var err error
	for pause := 200 * time.Millisecond; ; pause = min(pause*3/2, 2*time.Second) {
		got, err = pc.Series(ctx, query)
		if err == nil && got >= n {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("testkit: prometheus: query %q has %d series, want at least %d (last error: %v)", query, got, n, err)
		case <-time.After(pause):
		}
	}
}
