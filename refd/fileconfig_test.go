package refd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/rollout"
	"github.com/fleetkit/fleetkit/rollout/webhook"
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
	t.Setenv("REFD_SALT_PASSWORD", "not-a-real-password")
	d, err := LoadConfig(context.Background(), "refd.yaml", []byte(text), FileOptions{})
	require.NoError(t, err)
	defer d.Close()
	require.Equal(t, "salt-api", d.Deployer)
	require.Equal(t, []string{"netbox", "prometheus", "overrides"}, d.Sources)
	require.Equal(t, "0.0.0.0:8080", d.Server.cfg.Addr)
}

func TestLoadConfigRolloutRunner(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d, err := LoadConfig(ctx, "refd.yaml", []byte(configText(dir)), FileOptions{Registry: staticRegistry()})
	require.NoError(t, err)
	require.Equal(t, "log", d.Deployer, "the log deployer is the default")
	require.NotNil(t, d.Server.cfg.Runner)
	_, err = os.Stat(filepath.Join(dir, DefaultRolloutStoreFile))
	require.NoError(t, err, "the runner's store is beside refd's")
	require.NoError(t, d.Close())

	text := configText(dir) + "rollout:\n  store: " + filepath.Join(dir, "other.db") + "\n  deploy_attempts: 5\n  deployer:\n    type: log\n"
	d, err = LoadConfig(ctx, "refd.yaml", []byte(text), FileOptions{Registry: staticRegistry()})
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(dir, "other.db"))
	require.NoError(t, err)
	require.NoError(t, d.Close())

	d, err = LoadConfig(ctx, "refd.yaml", []byte(configText(dir)+"rollout: {disabled: true}\n"), FileOptions{Registry: staticRegistry()})
	require.NoError(t, err)
	require.Nil(t, d.Server.cfg.Runner)
	require.Empty(t, d.Deployer)
	require.NoError(t, d.Close())
}

func TestLoadConfigRolloutErrorsNameTheLine(t *testing.T) {
	dir := t.TempDir()
	base := configText(dir) // 17 lines
	tests := []struct {
		name, extra, want string
	}{
		{"unknown key", "rollout:\n  colour: red\n", "refd.yaml:19: rollout.colour: unknown key"},
		{"unknown deployer type", "rollout:\n  deployer:\n    type: carrier-pigeon\n", "refd.yaml:20: rollout.deployer.type: unknown deployer type \"carrier-pigeon\" (valid: log"},
		{"unknown deployer key", "rollout:\n  deployer:\n    type: log\n    url: http://x\n", "refd.yaml:21: rollout.deployer.url: unknown key"},
		{"deployer not a mapping", "rollout:\n  deployer: log\n", "refd.yaml:19: rollout.deployer: want a mapping"},
		{"bad attempts", "rollout:\n  deploy_attempts: -1\n", "refd.yaml:19: rollout.deploy_attempts: must not be negative"},
		{"bad backoff", "rollout:\n  deploy_backoff: soon\n", "refd.yaml:19: rollout.deploy_backoff"},
		{"own store", "rollout:\n  store: " + filepath.Join(dir, "refd.db") + "\n", "refd.yaml:19: rollout.store: must not be refd's own store"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadConfig(context.Background(), "refd.yaml", []byte(base+tt.extra), FileOptions{Registry: staticRegistry()})
			require.Error(t, err)
			require.Contains(t, err.Error(), tt.want)
		})
	}
}

// healthySource reports n healthy in-service edge servers in DEN.
type healthySource struct{ n int }

func (s healthySource) Name() string { return "inventory" }

func (s healthySource) Fetch(ctx context.Context) ([]sources.Observation, error) {
	out := make([]sources.Observation, s.n)
	for i := range out {
		out[i] = *sources.Observe(fmt.Sprintf("n%03d", i)).Metro("DEN").Cluster("den-c1").Role("edge").
			State(disposition.StateInService).Health(disposition.HealthHealthy)
	}
	return out, nil
}

// TestLoadConfigWebhookDeployer runs a rollout of a refd configured from a
// file with the webhook deployer, its secret in a file: the receiver gets
// every deploy, signed with that secret.
func TestLoadConfigWebhookDeployer(t *testing.T) {
	dir := t.TempDir()
	secret := "hook-secret-123"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "hook.secret"), []byte(secret+"\n"), 0o600))
	t.Setenv("REFD_TEST_DEPLOY_AUTH", "Bearer abc")
	var mu sync.Mutex
	var got []rollout.DeployRequest
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := webhook.Verify([]byte(secret), r.Header, body, time.Now(), 0); err != nil || r.Header.Get("Authorization") != "Bearer abc" {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var req rollout.DeployRequest
		if err := json.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, req)
		mu.Unlock()
		res := []rollout.ServerResult{}
		for _, s := range req.Servers {
			res = append(res, rollout.ServerResult{Server: s, OK: true})
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"results": res})
	}))
	defer hook.Close()

	text := fmt.Sprintf(`listen: 127.0.0.1:0
store: %s
tokens:
  - {name: ops, hash: %s, scopes: [admin]}
sources:
  - {name: inventory, type: healthy, authoritative: true, interval: 1m}
rollout:
  deployer:
    type: webhook
    url: %s
    secret_file: %s
    header_env: {Authorization: REFD_TEST_DEPLOY_AUTH}
`, filepath.Join(dir, "refd.db"), HashToken("ops-secret"), hook.URL, filepath.Join(dir, "hook.secret"))
	reg := sources.Registry{"healthy": func(name string, opts *yaml.Node) (sources.Source, error) { return healthySource{n: 6}, nil }}
	d, err := LoadConfig(t.Context(), "refd.yaml", []byte(text), FileOptions{Registry: reg})
	require.NoError(t, err)
	require.Equal(t, "webhook", d.Deployer)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- d.Server.Serve(t.Context(), ln) }()
	defer func() {
		require.NoError(t, d.Server.Close())
		require.NoError(t, <-done)
		require.NoError(t, d.Close())
	}()
	e := &testEnv{t: t, srv: d.Server, ts: httptest.NewServer(d.Server)}
	defer e.ts.Close()
	call := func(method, path, body string) resp {
		req, _ := http.NewRequest(method, e.ts.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer ops-secret")
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return resp{status: res.StatusCode, body: b}
	}
	require.Eventually(t, d.Server.Ready, 10*time.Second, 5*time.Millisecond)
	r := call("POST", "/v1/rollouts", "component: app\nversion: '2'\nselect: role=edge\ndeploy: 1s\ngrowth: {steps: ['100%']}\n")
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	var ro Rollout
	require.NoError(t, json.Unmarshal(r.body, &ro))
	deadline := time.Now().Add(20 * time.Second)
	for ro.State != RolloutCompleted {
		require.True(t, time.Now().Before(deadline), "rollout not completed within 20 s: %+v", ro)
		time.Sleep(20 * time.Millisecond)
		require.NoError(t, json.Unmarshal(call("GET", "/v1/rollouts/"+ro.ID, "").body, &ro))
	}
	require.Equal(t, 6, ro.Deployed)
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, got, 1)
	require.Equal(t, "2", got[0].Version)
	require.Len(t, got[0].Servers, 6)
}

func TestLoadConfigDeployerSecrets(t *testing.T) {
	dir := t.TempDir()
	base := configText(dir) // 17 lines
	require.NoError(t, os.WriteFile(filepath.Join(dir, "pw"), []byte("salt-pw-secret\n"), 0o600))
	t.Setenv("REFD_TEST_SALT_PW", "salt-pw-secret")
	tests := []struct {
		name, extra, want string
	}{
		{"webhook without secret", "rollout:\n  deployer:\n    type: webhook\n    url: http://x\n", "refd.yaml:20: rollout.deployer.secret: required: secret_file or secret_env"},
		{"webhook secret env unset", "rollout:\n  deployer:\n    type: webhook\n    url: http://x\n    secret_env: REFD_TEST_UNSET\n", "refd.yaml:22: rollout.deployer.secret: environment variable REFD_TEST_UNSET is not set"},
		{"webhook both", "rollout:\n  deployer:\n    type: webhook\n    url: http://x\n    secret_env: A\n    secret_file: B\n", "refd.yaml:23: rollout.deployer.secret: give secret_file or secret_env, not both"},
		{"webhook missing file", "rollout:\n  deployer:\n    type: webhook\n    url: http://x\n    secret_file: " + filepath.Join(dir, "nope") + "\n", "refd.yaml:22: rollout.deployer.secret: open "},
		{"webhook no url", "rollout:\n  deployer:\n    type: webhook\n    insecure: true\n", "refd.yaml:20: rollout.deployer: webhook: Config.URL: want an http or https URL"},
		{"salt no url", "rollout:\n  deployer:\n    type: salt-api\n    username: refd\n    password_file: " + filepath.Join(dir, "pw") + "\n", "refd.yaml:20: rollout.deployer: saltdeploy: Config.URL: want an http or https URL"},
		{"salt unknown key", "rollout:\n  deployer:\n    type: salt-api\n    password: inline\n", "refd.yaml:21: rollout.deployer.password: unknown key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadConfig(context.Background(), "refd.yaml", []byte(base+tt.extra), FileOptions{Registry: staticRegistry()})
			require.Error(t, err)
			require.Contains(t, err.Error(), tt.want)
			require.NotContains(t, err.Error(), "salt-pw-secret")
		})
	}
	for _, extra := range []string{
		"rollout:\n  deployer:\n    type: salt-api\n    url: https://salt.example:8000\n    username: refd\n    password_env: REFD_TEST_SALT_PW\n    eauth: pam\n    state: app\n    pillar: {channel: stable}\n    batch_size: 10\n",
		"rollout:\n  deployer:\n    type: webhook\n    url: https://deploy.example\n    insecure: true\n    header: {X-Team: edge}\n",
	} {
		d, err := LoadConfig(context.Background(), "refd.yaml", []byte(base+extra), FileOptions{Registry: staticRegistry()})
		require.NoError(t, err, extra)
		require.NoError(t, d.Close())
	}
}
