package testkit

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

func TestComposeRefdConfig(t *testing.T) {
	out, err := composeRefdConfig("sources:\n  - {name: a, type: file, authoritative: true, options: {path: /x.csv}}\n", "adm", "rd")
	require.NoError(t, err)
	var doc struct {
		Sources []map[string]any `yaml:"sources"`
		Store   string           `yaml:"store"`
		Tokens  []struct {
			Name, Hash string
			Scopes     []string
		} `yaml:"tokens"`
	}
	require.NoError(t, yaml.Unmarshal(out, &doc))
	require.Len(t, doc.Sources, 1)
	require.Equal(t, "/var/lib/refd/refd.db", doc.Store)
	require.Len(t, doc.Tokens, 2)
	require.Equal(t, []string{"admin"}, doc.Tokens[0].Scopes)
	require.Equal(t, []string{"read"}, doc.Tokens[1].Scopes)
	require.NotContains(t, string(out), "adm\"", "only hashes are written")

	_, err = composeRefdConfig("sources: []\ntokens: []\n", "a", "b")
	require.ErrorContains(t, err, "line 2: tokens: the fixture sets it")
	_, err = composeRefdConfig("- a\n", "a", "b")
	require.ErrorContains(t, err, "want a mapping")
	_, err = composeRefdConfig("a: [\n", "a", "b")
	require.Error(t, err)
}

// TestImageContextKey checks that the context hash depends on content
// only: the same files give the same key, one changed byte another.
func TestImageContextKey(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "a"), []byte("one"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "d"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "d", "b"), []byte("two"), 0o644))
	require.NoError(t, os.Symlink("../a", filepath.Join(dir, "d", "link")))
	key := func() string {
		c, err := newImageContext()
		require.NoError(t, err)
		defer c.close()
		c.bytes("Dockerfile", 0o644, scratchDockerfile("USER 1"))
		c.tree("rootfs/opt", dir, nil)
		c.dir("rootfs/tmp", 0o1777)
		k, err := c.key()
		require.NoError(t, err)
		return k
	}
	k1 := key()
	require.Len(t, k1, 12)
	require.Equal(t, k1, key())
	require.NoError(t, os.WriteFile(filepath.Join(dir, "d", "b"), []byte("twO"), 0o644))
	require.NotEqual(t, k1, key())
}

func TestSharedLibraries(t *testing.T) {
	if _, err := exec.LookPath("ldd"); err != nil {
		t.Skip("no ldd")
	}
	sh, err := exec.LookPath("sh")
	require.NoError(t, err)
	libs, err := sharedLibraries(context.Background(), sh)
	require.NoError(t, err)
	require.NotEmpty(t, libs, "sh is dynamically linked on Debian")
	for _, l := range libs {
		require.True(t, strings.HasPrefix(l, "/"), l)
	}
	// A static binary needs nothing.
	static := filepath.Join(t.TempDir(), "static")
	require.NoError(t, os.WriteFile(static, []byte("#!/bin/sh\n"), 0o755))
	_, err = sharedLibraries(context.Background(), static)
	require.NoError(t, err)
}

func TestWithoutRace(t *testing.T) {
	require.Equal(t, "-tags=x -v", withoutRace("-race -tags=x --race -v"))
	require.Equal(t, "", withoutRace(""))
}

func TestStale(t *testing.T) {
	p := &Pool{host: "here", pid: os.Getpid()}
	labels := func(host, pid, created string) map[string]string {
		return map[string]string{LabelHost: host, LabelPID: pid, LabelCreated: created}
	}
	now := "9999999999"
	require.False(t, p.stale(labels("here", "1", now)), "pid 1 is alive")
	require.False(t, p.stale(labels("here", itoa(os.Getpid()), now)), "our own")
	require.False(t, p.stale(labels("elsewhere", "99999999", now)), "another host's process cannot be checked")
	require.True(t, p.stale(labels("elsewhere", "1", "1")), "older than StaleAfter")
	require.True(t, p.stale(labels("here", "not-a-pid", now)))
	dead := exec.Command("true")
	require.NoError(t, dead.Run())
	require.True(t, p.stale(labels("here", itoa(dead.Process.Pid), now)), "a process that exited")
}

func itoa(i int) string { return strconv.Itoa(i) }
