package refd

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/testkit/saltrepo"
)

// gitRepo makes a local repository with a formula tagged v1.0.0 and
// v1.1.0.
func gitRepo(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "nginx-formula")
	_, err := saltrepo.Create(t.Context(), dir, saltrepo.Formula{Name: "nginx", Releases: []string{"v1.0.0", "v1.1.0"}})
	if errors.Is(err, saltrepo.ErrNoGit) {
		t.Skip(err)
	}
	require.NoError(t, err)
	return dir
}

func TestFormulasServiceOverHTTP(t *testing.T) {
	repo := gitRepo(t)
	dir := t.TempDir()
	control := filepath.Join(dir, "formulas.yaml")
	text := "formulas:\n  nginx:\n    repo: " + repo + "\n    subdir: nginx\nroles: [edge, mid, shield, dns]\nstates:\n  ga:\n    nginx: v1.0.0\n  nrt:\n    inherit: ga\n"
	require.NoError(t, os.WriteFile(control, []byte(text), 0o644))
	svc, err := NewFormulasService(context.Background(), FormulasConfig{Control: control, Root: filepath.Join(dir, "salt")})
	require.NoError(t, err)
	e := newTestEnv(t, 40, func(c *Config) { c.Formulas = svc })

	n := e.nodes[0]
	r := e.do("GET", "/v1/formulas/resolve?node="+n.ID, ScopeRead, "")
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	var env struct {
		Name string `json:"name"`
		Pins []struct {
			Formula, Commit, Ref string
		} `json:"pins"`
	}
	require.NoError(t, json.Unmarshal(r.body, &env))
	require.Equal(t, n.Role+"-"+n.ReleaseState, env.Name)
	require.Len(t, env.Pins, 1)
	require.Equal(t, "v1.0.0", env.Pins[0].Ref)
	require.Len(t, env.Pins[0].Commit, 40)

	r = e.do("GET", "/v1/formulas/resolve?role=edge&release_state=nope", ScopeRead, "")
	require.Equal(t, http.StatusUnprocessableEntity, r.status, "%s", r.body)
	require.Equal(t, CodeFormulasFailed, r.apiError(t).Code)

	// A diff moving ga to v1.1.0 changes every ga and nrt environment
	// and counts the servers in them.
	r = e.do("POST", "/v1/formulas/diff", ScopeRead, strings.Replace(text, "v1.0.0", "v1.1.0", 1))
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	require.Contains(t, string(r.body), "edge-ga")
	r = e.do("POST", "/v1/formulas/diff", ScopeRead, "formulas: [\n")
	require.Equal(t, http.StatusUnprocessableEntity, r.status, "%s", r.body)
	require.Contains(t, r.apiError(t).Message, "request:")

	r = e.do("POST", "/v1/formulas/build?role=edge&release_state=ga", ScopeRollout, "")
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	var built []struct {
		Env  string `json:"env"`
		Path string `json:"path"`
	}
	require.NoError(t, json.Unmarshal(r.body, &built))
	require.Len(t, built, 1)
	b, err := os.ReadFile(filepath.Join(built[0].Path, "nginx", "init.sls"))
	require.NoError(t, err)
	require.Contains(t, string(b), "- version: 1.0.0\n")
}
