package refd

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/formulas"
	"github.com/fleetkit/fleetkit/testkit/saltrepo"
)

func TestDemoFormulas(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "formulas")
	svc, err := demoFormulas(t.Context(), dir)
	if errors.Is(err, saltrepo.ErrNoGit) {
		t.Skip(err)
	}
	require.NoError(t, err)
	pins := func(svc *FormulasService, role, state string) map[string]string {
		t.Helper()
		v, err := svc.Resolve(t.Context(), role, state)
		require.NoError(t, err, "%s-%s", role, state)
		env := v.(formulas.Env)
		out := map[string]string{}
		for _, p := range env.Pins {
			out[p.Formula] = p.Ref
		}
		return out
	}
	// Every role in every release state of the generated fleet resolves.
	for _, role := range []string{"edge", "mid", "shield", "dns"} {
		for _, state := range []string{"ga", "nrt", "trial"} {
			pins(svc, role, state)
		}
	}
	require.Equal(t, map[string]string{"nginx": "v1.4.1", "cdn-app": "v3.2.0", "node-exporter": "v1.8.2"}, pins(svc, "edge", "ga"))
	require.Equal(t, map[string]string{"nginx": "v1.5.0-rc.1", "cdn-app": "v3.3.1", "node-exporter": "v1.8.2"}, pins(svc, "edge", "trial"))
	require.Equal(t, map[string]string{"bind": "v9.18.24", "node-exporter": "v1.8.2"}, pins(svc, "dns", "ga"))

	// A second start reuses the repositories and builds.
	again, err := demoFormulas(t.Context(), dir)
	require.NoError(t, err)
	built, err := again.Build(t.Context(), "edge", "ga")
	require.NoError(t, err)
	require.Len(t, built, 1)
}
