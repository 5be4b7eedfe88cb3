package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/refd"
)

func runCLI(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	env := func(string) string { return "" }
	code := run(context.Background(), args, &out, &errb, env)
	return code, out.String(), errb.String()
}

func TestUsageErrorsExit2(t *testing.T) {
	for _, args := range [][]string{
		{}, {"bogus"}, {"serve"}, {"serve", "--demo", "-config", "x"}, {"serve", "-log-level", "loud", "--demo"},
		{"plan"}, {"rollout"}, {"rollout", "get"}, {"formulas", "twist"}, {"override", "set"},
		{"token"}, {"token", "new", "-scopes", "root"}, {"nodes", "-limit", "x"},
	} {
		code, _, stderr := runCLI(args...)
		require.Equal(t, 2, code, "%v: %s", args, stderr)
		require.NotEmpty(t, stderr)
	}
	code, out, _ := runCLI("help")
	require.Equal(t, 0, code)
	require.Contains(t, out, "refd serve --demo")
}

func TestTokenNewPrintsAConfigEntry(t *testing.T) {
	code, out, _ := runCLI("token", "new", "-name", "ci", "-scopes", "read,rollout")
	require.Equal(t, 0, code)
	m := regexp.MustCompile(`secret: (\S+)\n[\s\S]*hash: (sha256:[0-9a-f]{64})\n    scopes: \[read, rollout\]`).FindStringSubmatch(out)
	require.NotNil(t, m, out)
	require.Equal(t, refd.HashToken(m[1]), m[2])
}

func TestPlanOfflineReportsTheSpecLine(t *testing.T) {
	dir := t.TempDir()
	fleetFile := filepath.Join(dir, "fleet.json")
	require.NoError(t, os.WriteFile(fleetFile, []byte(`[{"id":"a","metro":"DEN","state":"in-service","health":"healthy","role":"edge"}]`), 0o600))
	spec := filepath.Join(dir, "spec.yaml")
	require.NoError(t, os.WriteFile(spec, []byte("select: role=edge\ngrowth:\n  steps: [zero]\n"), 0o600))
	code, _, stderr := runCLI("plan", "-fleet", fleetFile, "-spec", spec)
	require.Equal(t, 1, code)
	require.Contains(t, stderr, spec+":3")

	require.NoError(t, os.WriteFile(spec, []byte("select: role=edge\ngrowth: {steps: [1]}\n"), 0o600))
	code, out, stderr := runCLI("plan", "-fleet", fleetFile, "-spec", spec, "-start", "2026-01-05T12:00:00Z")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, "1 server in 1 wave")
	require.Contains(t, out, "wave 1 (growth): 1 server")

	code, out, stderr = runCLI("plan", "-json", "-fleet", fleetFile, "-spec", spec, "-start", "2026-01-05T12:00:00Z")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, `"waves": 1`)
}
