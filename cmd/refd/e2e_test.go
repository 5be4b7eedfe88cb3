package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// buildRefd builds the refd binary into a temporary directory.
func buildRefd(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the refd binary; skipped with -short")
	}
	bin := filepath.Join(t.TempDir(), "refd")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

// daemon is a refd process started by the test.
type daemon struct {
	cmd    *exec.Cmd
	addr   string
	token  string
	lines  chan string
	exited chan error
}

var (
	listeningRE = regexp.MustCompile(`"msg":"listening","addr":"([^"]+)"`)
	tokenRE     = regexp.MustCompile(`^admin token: (refd_\S+)$`)
)

// startDemo runs refd serve --demo on a free port and waits until it
// listens.
func startDemo(t *testing.T, bin, data string) *daemon {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--demo", "-data", data, "-listen", "127.0.0.1:0")
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	d := &daemon{cmd: cmd, lines: make(chan string, 1000), exited: make(chan error, 1)}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-d.exited
		}
	})
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			select {
			case d.lines <- sc.Text():
			default:
			}
		}
		close(d.lines)
		d.exited <- cmd.Wait()
	}()
	deadline := time.After(30 * time.Second)
	for d.addr == "" {
		select {
		case l, ok := <-d.lines:
			require.True(t, ok, "refd exited before listening")
			if m := tokenRE.FindStringSubmatch(l); m != nil {
				d.token = m[1]
			}
			if m := listeningRE.FindStringSubmatch(l); m != nil {
				d.addr = m[1]
			}
		case <-deadline:
			t.Fatal("refd did not listen within 30 s")
		}
	}
	return d
}

func (d *daemon) url() string { return "http://" + d.addr }

// waitReady polls /readyz, bounded.
func (d *daemon) waitReady(t *testing.T) {
	t.Helper()
	require.Eventually(t, func() bool {
		res, err := http.Get(d.url() + "/readyz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	}, 30*time.Second, 50*time.Millisecond, "refd not ready within 30 s")
}

// stop sends SIGTERM and returns the exit error (nil for exit code 0).
func (d *daemon) stop(t *testing.T) error {
	t.Helper()
	require.NoError(t, d.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-d.exited:
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("refd did not exit within 20 s of SIGTERM")
	}
	return nil
}

// cli runs a refd CLI command against d.
func (d *daemon) cli(t *testing.T, bin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "REFD_URL="+d.url(), "REFD_TOKEN="+d.token)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func get(t *testing.T, url, token string, v any) int {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	if v != nil && res.StatusCode == http.StatusOK {
		require.NoError(t, json.Unmarshal(b, v), "%s", b)
	}
	return res.StatusCode
}

// TestDemoEndToEnd runs refd serve --demo as a process, queries it with
// the CLI and over HTTP, sets an override, stops it with SIGTERM, and
// restarts it on the same data directory.
func TestDemoEndToEnd(t *testing.T) {
	bin := buildRefd(t)
	data := t.TempDir()
	d := startDemo(t, bin, data)
	require.NotEmpty(t, d.token, "the first start prints the admin token")
	d.waitReady(t)

	// HTTP: the full listing, auth.
	var page struct {
		Version uint64            `json:"version"`
		Count   int               `json:"count"`
		Nodes   []json.RawMessage `json:"nodes"`
	}
	require.Equal(t, http.StatusOK, get(t, d.url()+"/v1/nodes", d.token, &page))
	require.Equal(t, 20000, page.Count)
	require.Len(t, page.Nodes, 20000)
	require.Equal(t, http.StatusUnauthorized, get(t, d.url()+"/v1/nodes", "", nil))
	require.Equal(t, http.StatusUnauthorized, get(t, d.url()+"/v1/nodes", "refd_wrong", nil))
	var first struct {
		Nodes []struct {
			ID    string `json:"id"`
			Metro string `json:"metro"`
		} `json:"nodes"`
	}
	require.Equal(t, http.StatusOK, get(t, d.url()+"/v1/nodes?limit=1&fields=id,metro&role=edge", d.token, &first))
	require.Len(t, first.Nodes, 1)
	id, metro := first.Nodes[0].ID, first.Nodes[0].Metro

	// CLI: nodes, aggregate, sources.
	out, err := d.cli(t, bin, "nodes", "-limit", "5", "metro="+metro, "health!=down")
	require.NoError(t, err, out)
	require.Contains(t, out, "(5 nodes")
	require.Equal(t, 5+2, strings.Count(out, "\n"), out)
	out, err = d.cli(t, bin, "aggregate", "-by", "health", "role=edge")
	require.NoError(t, err, out)
	require.Contains(t, out, "healthy")
	out, err = d.cli(t, bin, "sources")
	require.NoError(t, err, out)
	require.Contains(t, out, "inventory")
	require.Contains(t, out, "traffic")
	out, err = d.cli(t, bin, "nodes", "colour=red")
	require.Error(t, err)
	require.Contains(t, out, "colour")

	// Plan a rollout through the server and offline; same figures.
	spec := filepath.Join(t.TempDir(), "spec.yaml")
	require.NoError(t, os.WriteFile(spec, []byte("name: e2e\nselect: role=edge\nbudgets: {metro: 10%, cluster: 25%}\ngrowth: {steps: [1, 5, \"5%\", \"25%\"], bake: 30m}\n"), 0o600))
	out, err = d.cli(t, bin, "plan", "-json", "-spec", spec, "-start", "2026-01-05T12:00:00Z")
	require.NoError(t, err, out)
	var online, offline struct{ Waves, Targets int }
	require.NoError(t, json.Unmarshal([]byte(out), &online), out)
	require.Greater(t, online.Waves, 1)
	out, err = d.cli(t, bin, "plan", "-json", "-fleet", filepath.Join(data, "inventory.csv"), "-spec", spec, "-start", "2026-01-05T12:00:00Z")
	require.NoError(t, err, out)
	require.NoError(t, json.Unmarshal([]byte(out), &offline), out)
	require.Greater(t, offline.Waves, 1)

	// A rollout, driven by the demo's runner: create, pause, resume, skip
	// a server, abort, get.
	out, err = d.cli(t, bin, "rollout", "create", "-json", "-spec", spec)
	require.NoError(t, err, out)
	var ro struct{ ID, State string }
	require.NoError(t, json.Unmarshal([]byte(out), &ro), out)
	require.Equal(t, "running", ro.State, out)
	out, err = d.cli(t, bin, "rollout", "pause", ro.ID, "-reason", "e2e")
	require.NoError(t, err, out)
	require.Contains(t, out, "rollout "+ro.ID+"  paused (operator)\n  reason      e2e\n")
	out, err = d.cli(t, bin, "rollout", "resume", ro.ID)
	require.NoError(t, err, out)
	out, err = d.cli(t, bin, "rollout", "skip", ro.ID, id, "-reason", "e2e", "-json")
	require.NoError(t, err, out)
	require.Contains(t, out, `"action": "server-skipped"`)
	out, err = d.cli(t, bin, "rollout", "abort", ro.ID)
	require.NoError(t, err, out)
	out, err = d.cli(t, bin, "rollout", "get", ro.ID)
	require.NoError(t, err, out)
	require.Contains(t, out, "rollout "+ro.ID+"  aborted\n")
	require.Regexp(t, `server-skipped +refd-runner +`+regexp.QuoteMeta(id)+` +\(e2e\)`, out)

	// An override shows in the node at once.
	out, err = d.cli(t, bin, "override", "set", id, "-state", "drained", "-owner", "e2e", "-reason", "test", "-ttl", "1h")
	require.NoError(t, err, out)
	var node struct {
		State      string `json:"state"`
		Provenance map[string]struct {
			Source string `json:"source"`
		} `json:"provenance"`
	}
	require.Equal(t, http.StatusOK, get(t, d.url()+"/v1/nodes/"+id, d.token, &node))
	require.Equal(t, "drained", node.State)
	require.Equal(t, "overrides", node.Provenance["state"].Source)

	require.NoError(t, d.stop(t), "SIGTERM ends refd with exit code 0")

	// Restarted on the same data: no new token, the override persists.
	d2 := startDemo(t, bin, data)
	require.Empty(t, d2.token, "the admin token is printed once")
	d2.token = d.token
	d2.waitReady(t)
	require.Equal(t, http.StatusOK, get(t, d2.url()+"/v1/nodes/"+id, d2.token, &node))
	require.Equal(t, "drained", node.State)
	var audit struct {
		Entries []struct{ Who, Action string }
	}
	require.Equal(t, http.StatusOK, get(t, d2.url()+"/v1/audit", d2.token, &audit))
	require.NotEmpty(t, audit.Entries)
	require.Equal(t, "admin", audit.Entries[0].Who)
	require.Equal(t, "PUT /v1/overrides/{id}", audit.Entries[0].Action)
	require.NoError(t, d2.stop(t))
}
