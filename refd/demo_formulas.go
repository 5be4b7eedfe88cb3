package refd

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/fleetkit/fleetkit/testkit/saltrepo"
)

// The demo's formulas, under DemoFormulasDir of its data directory.
const (
	DemoFormulasDir     = "formulas"      // the control file, the repositories and the built trees
	DemoFormulasControl = "formulas.yaml" // the control file, rewritten at every start
)

// demoFormulaRepos are the demo's formula repositories and their releases.
var demoFormulaRepos = []saltrepo.Formula{
	{Name: "nginx", Releases: []string{"v1.4.0", "v1.4.1", "v1.5.0-rc.1"}},
	{Name: "cdn-app", Releases: []string{"v3.1.4", "v3.2.0", "v3.3.0", "v3.3.1"}},
	{Name: "node-exporter", Releases: []string{"v1.7.0", "v1.8.2", "v2.0.0"}},
	{Name: "bind", Releases: []string{"v9.18.24", "v9.20.1"}},
}

// demoControl is the demo's control file: ga, nrt and trial as the
// generated fleet uses them, dns servers without the CDN formulas.
const demoControl = `# The demo's formula control file: which version of each Salt formula
# each kind of server runs. Environments are <role>-<release state>.
formulas:
  nginx: {repo: repos/nginx-formula}
  cdn-app: {repo: repos/cdn-app-formula}
  node-exporter: {repo: repos/node-exporter-formula}
  bind: {repo: repos/bind-formula}

roles: [edge, mid, shield, dns]

states:
  ga:
    nginx: "~1.4"
    cdn-app: v3.2.0
    node-exporter: ">=1.7 <2"
    roles:
      dns: {nginx: none, cdn-app: none, bind: v9.18.24}
  nrt:
    inherit: ga
    cdn-app: "~3.3"
  trial:
    inherit: nrt
    nginx: v1.5.0-rc.1
    roles:
      dns: {bind: v9.20.1}
`

// demoFormulas sets up the demo's formulas in dir: it creates the formula
// repositories on first use (with git) and writes the control file. It
// wraps saltrepo.ErrNoGit when git is not installed: the demo then runs
// without formulas.
func demoFormulas(ctx context.Context, dir string) (*FormulasService, error) {
	for _, f := range demoFormulaRepos {
		repo := filepath.Join(dir, "repos", f.Name+"-formula")
		if _, err := os.Stat(filepath.Join(repo, ".git")); err == nil {
			continue
		}
		// A half-made repository from an interrupted start is made again.
		if err := os.RemoveAll(repo); err != nil {
			return nil, fmt.Errorf("refd: demo formulas: %w", err)
		}
		if _, err := saltrepo.Create(ctx, repo, f); err != nil {
			os.RemoveAll(repo)
			return nil, fmt.Errorf("refd: demo formulas: %w", err)
		}
	}
	control := filepath.Join(dir, DemoFormulasControl)
	if err := writeFileAtomic(control, func(w io.Writer) error {
		_, err := io.WriteString(w, demoControl)
		return err
	}); err != nil {
		return nil, fmt.Errorf("refd: demo formulas: %w", err)
	}
	return NewFormulasService(ctx, FormulasConfig{
		Control: control,
		Root:    filepath.Join(dir, "salt"),
	})
}
