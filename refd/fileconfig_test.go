package refd

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/sources"
)

// staticSource reports a fixed fleet of n nodes.
type staticSource struct {
	name string
	n    int
}

func (s staticSource) Name() string { return s.name }

func (s staticSource) Fetch(ctx context.Context) ([]sources.Observation, error) {
	out := make([]sources.Observation, s.n)
	for i := range out {
		out[i] = *sources.Observe(fmt.Sprintf("n%03d", i)).Metro("DEN").State(disposition.StateInService).ReleaseState("ga")
	}
	return out, nil
}

func staticRegistry() sources.Registry {
	return sources.Registry{"static": func(name string, opts *yaml.Node) (sources.Source, error) {
		var o struct {
			N int `yaml:"n"`
		}
		if err := sources.DecodeOptions(opts, &o); err != nil {
			return nil, err
		}
		return staticSource{name: name, n: o.N}, nil
	}}
}

func configText(dir string) string {
	return fmt.Sprintf(`# refd test configuration
listen: 127.0.0.1:0
store: %s
tokens:
  - name: ops
    hash: %s
    scopes: [admin]
sources:
  - name: inventory
    type: static
    authoritative: true
    interval: 1m
    options: {n: 5}
limits:
  max_body_bytes: 2048
precedence:
  metro: [inventory]
`, filepath.Join(dir, "refd.db"), HashToken("ops-secret"))
}

func TestLoadConfigServes(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d, err := LoadConfig(ctx, "refd.yaml", []byte(configText(dir)), FileOptions{Registry: staticRegistry()})
	require.NoError(t, err)
	defer d.Close()
	require.Equal(t, []string{"inventory", "overrides"}, d.Sources)
	require.Equal(t, int64(2048), d.Server.cfg.MaxBodyBytes)
	require.NotNil(t, d.Server.cfg.Planner)

	require.NoError(t, d.Server.cfg.Updater.Refresh(ctx))
	ts := httptest.NewServer(d.Server)
	defer ts.Close()
	req, _ := http.NewRequest("GET", ts.URL+"/v1/nodes?fields=id", nil)
	req.Header.Set("Authorization", "Bearer ops-secret")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, 5, d.Server.cfg.Index.Snapshot().Len())

	// An override wins over the inventory for state.
	body := `{"state":"repair","owner":"o","reason":"r","ttl":"1h"}`
	req, _ = http.NewRequest("PUT", ts.URL+"/v1/overrides/n001", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer ops-secret")
	res, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	n, ok := d.Server.cfg.Index.Snapshot().Get("n001")
	require.True(t, ok)
	require.Equal(t, disposition.StateRepair, n.State)
	require.Equal(t, "overrides", n.Provenance.Of(disposition.FieldState).Source)
}

func TestLoadConfigErrorsNameTheLine(t *testing.T) {
	dir := t.TempDir()
	base := configText(dir)
	tests := []struct {
		name, edit, want string
	}{
		{"bad hash", strings.Replace(base, "hash: sha256:", "hash: md5:", 1), "refd.yaml:6: tokens[0].hash"},
		{"bad scope", strings.Replace(base, "[admin]", "[root]", 1), "refd.yaml:7: tokens[0].scopes[0]"},
		{"no store", strings.Replace(base, "store: ", "# store: ", 1), "store: required"},
		{"unknown refd key", strings.Replace(base, "max_body_bytes", "max_body", 1), "refd.yaml:15: limits.max_body"},
		{"unknown top key", base + "colour: red\n", "refd.yaml:18: colour: unknown key (valid: listen, store"},
		{"bad source option", strings.Replace(base, "{n: 5}", "{n: five}", 1), "refd.yaml:13"},
		{"unknown source type", strings.Replace(base, "type: static", "type: nope", 1), "refd.yaml:10"},
		{"bad duration", strings.Replace(base, "interval: 1m", "interval: soon", 1), "refd.yaml:12"},
		{"tls half", base + "tls: {cert: /x}\n", "tls"},
		{"overrides name clash", strings.Replace(base, "name: inventory", "name: overrides", 1), "overrides"},
		{"flow style", "{store: x}", "block style"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadConfig(context.Background(), "refd.yaml", []byte(tt.edit), FileOptions{Registry: staticRegistry()})
			require.Error(t, err)
			require.Contains(t, err.Error(), tt.want)
		})
	}
}

// TestDeployExampleLoads keeps examples/deploy/refd.yaml valid.
func TestDeployExampleLoads(t *testing.T) {
	data, err := os.ReadFile("../examples/deploy/refd.yaml")
	require.NoError(t, err)
	text := strings.Replace(string(data), "store: /var/lib/refd/refd.db", "store: "+filepath.Join(t.TempDir(), "refd.db"), 1)
	require.NotEqual(t, string(data), text)
	d, err := LoadConfig(context.Background(), "refd.yaml", []byte(text), FileOptions{})
	require.NoError(t, err)
	defer d.Close()
	require.Equal(t, []string{"netbox", "prometheus", "overrides"}, d.Sources)
	require.Equal(t, "0.0.0.0:8080", d.Server.cfg.Addr)
}
