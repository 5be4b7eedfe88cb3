package refd

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/formulas"
	"github.com/fleetkit/fleetkit/sources/overrides"
	"github.com/fleetkit/fleetkit/trials"
)

// trialEnv is a test server with the rollout planner and a clock the test
// moves.
func trialEnv(t *testing.T) (*testEnv, *atomic.Int64) {
	var offset atomic.Int64
	e := newTestEnv(t, 300, func(c *Config) {
		c.Planner = RolloutPlanner()
		c.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
		c.MaxBodyBytes = 64 << 10
	})
	return e, &offset
}

// clusterOf returns the IDs of a cluster's nodes, sorted.
func clusterOf(nodes []*disposition.Node, cluster string) []string {
	var ids []string
	for _, n := range nodes {
		if n.Cluster == cluster {
			ids = append(ids, n.ID)
		}
	}
	slices.Sort(ids)
	return ids
}

func trialFile(name, cluster string, max int, extra string) string {
	return fmt.Sprintf(`name: %s
owner: edge-team
targets:
  clusters: [%s]
  max: %d
rollout:
  growth:
    steps: [1, "50%%"]
expiry: %s
%s`, name, cluster, max, time.Now().Add(time.Hour).UTC().Format(time.RFC3339), extra)
}

func TestTrialsAPIApplyAndEnd(t *testing.T) {
	e, _ := trialEnv(t)
	cluster := e.nodes[0].Cluster
	servers := clusterOf(e.nodes, cluster)
	// One server has a manual override the trial must keep and restore.
	manual, err := e.ov.Set(t.Context(), overrides.Override{ID: servers[0], State: disposition.StateDrained, Owner: "ops", Reason: "disk", Expires: time.Now().Add(48 * time.Hour)})
	require.NoError(t, err)
	file := trialFile("rc1", cluster, 100, "rollback_on_end: true\n")

	r := e.do("POST", "/v1/trials/plan?file=trials/rc1.yaml", ScopeRead, file)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	var p trials.TrialPlan
	require.NoError(t, json.Unmarshal(r.body, &p))
	require.Equal(t, servers, p.Servers)
	require.Empty(t, p.Conflicts)

	require.Equal(t, http.StatusForbidden, e.do("POST", "/v1/trials", ScopeRead, file).status)
	r = e.do("POST", "/v1/trials?file=trials/rc1.yaml", ScopeRollout, file)
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	var applied TrialApplyResult
	require.NoError(t, json.Unmarshal(r.body, &applied))
	rec := applied.Trial
	require.Equal(t, TrialActive, rec.State)
	require.Equal(t, servers, rec.Servers)
	require.NotEmpty(t, rec.RolloutID)
	for _, id := range servers {
		o, ok := e.ov.Get(id)
		require.True(t, ok, id)
		require.Equal(t, "trial-rc1", o.ReleaseState)
		require.Equal(t, "edge-team", o.Owner)
		require.Equal(t, "trial rc1", o.Reason)
		require.Equal(t, rec.Expiry, o.Expires)
		if id == manual.ID {
			require.Equal(t, disposition.StateDrained, o.State, "the trial dropped the lifecycle override")
		}
	}
	ro, err := e.store.Rollout(t.Context(), rec.RolloutID)
	require.NoError(t, err)
	require.Contains(t, ro.Spec, "select: id="+strings.Join(servers, ","))
	require.Positive(t, ro.Targets)

	// The same file again changes nothing.
	r = e.do("POST", "/v1/trials?file=trials/rc1.yaml", ScopeRollout, file)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	require.Contains(t, string(r.body), `"unchanged":true`)
	rs, err := e.store.Rollouts(t.Context())
	require.NoError(t, err)
	require.Len(t, rs, 1)

	// Another trial on the same servers is refused, naming file and line.
	r = e.do("POST", "/v1/trials?file=trials/rc2.yaml", ScopeRollout, trialFile("rc2", cluster, 100, ""))
	require.Equal(t, http.StatusConflict, r.status, "%s", r.body)
	ae := r.apiError(t)
	require.Contains(t, ae.Message, "trials/rc2.yaml:4: targets.clusters: ")
	require.Contains(t, ae.Message, "already in trial rc1")
	// A changed file of an active trial too.
	r = e.do("POST", "/v1/trials?file=trials/rc1.yaml", ScopeRollout, file+"# changed\n")
	require.Equal(t, http.StatusConflict, r.status, "%s", r.body)
	require.Contains(t, r.apiError(t).Message, "end it first")

	r = e.do("GET", "/v1/trials/rc1", ScopeRead, "")
	require.Equal(t, http.StatusOK, r.status)
	r = e.do("POST", "/v1/trials/rc1/end", ScopeRollout, "")
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	var ended TrialRecord
	require.NoError(t, json.Unmarshal(r.body, &ended))
	require.Equal(t, TrialEnded, ended.State)
	require.Equal(t, fmt.Sprintf("rollout %s rolled-back", rec.RolloutID), ended.EndNote)
	for _, id := range servers {
		o, ok := e.ov.Get(id)
		if id == manual.ID {
			require.True(t, ok)
			require.Equal(t, manual.State, o.State)
			require.Empty(t, o.ReleaseState)
			require.Equal(t, "disk", o.Reason)
			continue
		}
		require.False(t, ok, "%s still has an override: %+v", id, o)
	}
	ro, err = e.store.Rollout(t.Context(), rec.RolloutID)
	require.NoError(t, err)
	require.Equal(t, RolloutRolledBack, ro.State)
	require.Equal(t, http.StatusConflict, e.do("POST", "/v1/trials/rc1/end", ScopeRollout, "").status)
	require.Equal(t, http.StatusNotFound, e.do("POST", "/v1/trials/nope/end", ScopeRollout, "").status)

	// Now rc2 fits.
	r = e.do("POST", "/v1/trials?file=trials/rc2.yaml", ScopeRollout, trialFile("rc2", cluster, 100, ""))
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)

	entries, err := e.store.Audit(t.Context(), 100, 0)
	require.NoError(t, err)
	var actions []string
	for _, en := range entries {
		actions = append(actions, fmt.Sprintf("%s %d", en.Action, en.Status))
	}
	require.Contains(t, actions, "POST /v1/trials 201")
	require.Contains(t, actions, "POST /v1/trials 409")
	require.Contains(t, actions, "POST /v1/trials/{name}/end 200")
}

func TestTrialsAPIBadFiles(t *testing.T) {
	e, _ := trialEnv(t)
	for _, tc := range []struct {
		body, field, msg string
		status           int
	}{
		{"name: x\nowner: me\ncolour: red\n", "", `t.yaml:3: unknown key "colour"`, http.StatusUnprocessableEntity},
		{"name: x\nowner: me\ntargets: {servers: [nope], max: 1}\nexpiry: 2999-01-01\n", "targets.servers[0]", `t.yaml:3: targets.servers[0]: no server "nope" in the fleet`, http.StatusUnprocessableEntity},
		{trialFile("big", e.nodes[0].Cluster, 1, ""), "targets.max", "t.yaml:5: targets.max: the targets select", http.StatusConflict},
		{"", "", "empty body", http.StatusBadRequest},
	} {
		for _, path := range []string{"/v1/trials?file=t.yaml", "/v1/trials/plan?file=t.yaml"} {
			r := e.do("POST", path, ScopeRollout, tc.body)
			status := tc.status
			if path == "/v1/trials/plan?file=t.yaml" && status == http.StatusConflict {
				// A dry run reports conflicts in its plan.
				require.Equal(t, http.StatusOK, r.status, "%s", r.body)
				require.Contains(t, string(r.body), "targets.max")
				continue
			}
			require.Equal(t, status, r.status, "%s %s", path, r.body)
			ae := r.apiError(t)
			require.Contains(t, ae.Message, tc.msg)
			require.Equal(t, tc.field, ae.Field)
		}
	}
	trs, err := e.store.Trials(t.Context())
	require.NoError(t, err)
	require.Empty(t, trs, "a refused trial left a record")
}

func TestTrialsAPIExpiry(t *testing.T) {
	e, offset := trialEnv(t)
	cluster := e.nodes[0].Cluster
	r := e.do("POST", "/v1/trials", ScopeRollout, trialFile("soon", cluster, 100, "rollback_on_end: true\n"))
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	offset.Store(int64(2 * time.Hour))
	r = e.do("GET", "/v1/trials", ScopeRead, "")
	require.Equal(t, http.StatusOK, r.status)
	var res TrialsResult
	require.NoError(t, json.Unmarshal(r.body, &res))
	require.Len(t, res.Trials, 1)
	rec := res.Trials[0]
	require.Equal(t, TrialExpired, rec.State)
	require.Equal(t, trialExpiryPrincipal, rec.EndedBy)
	require.Contains(t, rec.EndNote, "rolled-back")
	for _, id := range rec.Servers {
		_, ok := e.ov.Get(id)
		require.False(t, ok)
	}
	entries, err := e.store.Audit(t.Context(), 10, 0)
	require.NoError(t, err)
	require.Equal(t, "trial expired", entries[0].Action)
}

// TestTrialsAPIFormulas checks that a trial's formula overrides become its
// own release state while it is in force, and only then.
func TestTrialsAPIFormulas(t *testing.T) {
	repo := gitRepo(t)
	control := filepath.Join(t.TempDir(), "formulas.yaml")
	text := "formulas:\n  nginx: {repo: " + repo + ", subdir: nginx}\nroles: [edge, mid, shield, dns]\nstates:\n  ga:\n    nginx: v1.0.0\n  nrt:\n    inherit: ga\n"
	require.NoError(t, os.WriteFile(control, []byte(text), 0o644))
	svc, err := NewFormulasService(t.Context(), FormulasConfig{Control: control})
	require.NoError(t, err)
	e := newTestEnv(t, 300, func(c *Config) {
		c.Planner = RolloutPlanner()
		c.Formulas = svc
		c.MaxBodyBytes = 64 << 10
	})
	cluster := e.nodes[0].Cluster
	resolve := func(state string) resp {
		return e.do("GET", "/v1/formulas/resolve?role=edge&release_state="+state, ScopeRead, "")
	}
	pinRef := func(r resp) string {
		t.Helper()
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		var env struct {
			Name string
			Pins []struct{ Formula, Ref string }
		}
		require.NoError(t, json.Unmarshal(r.body, &env))
		require.Len(t, env.Pins, 1)
		return env.Name + " " + env.Pins[0].Ref
	}

	// A formula the control file lacks is refused, naming the line.
	bad := trialFile("f1", cluster, 100, "formulas:\n  bind: v9.0.0\n")
	r := e.do("POST", "/v1/trials?file=trials/f1.yaml", ScopeRollout, bad)
	require.Equal(t, http.StatusUnprocessableEntity, r.status, "%s", r.body)
	require.Contains(t, r.apiError(t).Message, `trials/f1.yaml:11: formulas.bind: no formula "bind"`)
	require.Equal(t, http.StatusUnprocessableEntity, resolve("trial-f1").status)

	file := trialFile("f1", cluster, 100, "inherit: nrt\nformulas:\n  nginx: v1.1.0\n")
	r = e.do("POST", "/v1/trials/plan?file=trials/f1.yaml", ScopeRead, file)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	var p trials.TrialPlan
	require.NoError(t, json.Unmarshal(r.body, &p))
	require.NotEmpty(t, p.Environments)
	for _, c := range p.Environments {
		require.Equal(t, formulas.EnvName(c.Role, "trial-f1"), c.After)
		require.Empty(t, c.Error)
	}
	require.Equal(t, http.StatusUnprocessableEntity, resolve("trial-f1").status, "a dry run served the state")

	r = e.do("POST", "/v1/trials?file=trials/f1.yaml", ScopeRollout, file)
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	require.Equal(t, "edge-trial-f1 v1.1.0", pinRef(resolve("trial-f1")))
	require.Equal(t, "edge-nrt v1.0.0", pinRef(resolve("nrt")), "the trial changed another state")

	// restarted is a new server on the same store, with the formulas of
	// the control file at path.
	restarted := func(path string) *testEnv {
		t.Helper()
		svc, err := NewFormulasService(t.Context(), FormulasConfig{Control: path})
		require.NoError(t, err)
		srv, err := New(Config{Index: e.ix, Store: e.store, Tokens: testTokens(), Overrides: e.ov, Formulas: svc})
		require.NoError(t, err)
		re := &testEnv{t: t, ts: httptest.NewServer(srv)}
		t.Cleanup(re.ts.Close)
		return re
	}
	// A restarted server serves the trials in force from its store.
	e2 := restarted(control)
	require.Equal(t, "edge-trial-f1 v1.1.0", pinRef(e2.do("GET", "/v1/formulas/resolve?role=edge&release_state=trial-f1", ScopeRead, "")))

	// Over a control file the trial no longer fits (no state nrt to
	// inherit), its state is left out and everything else is served.
	control2 := filepath.Join(t.TempDir(), "formulas.yaml")
	require.NoError(t, os.WriteFile(control2, []byte(strings.Replace(text, "  nrt:\n    inherit: ga\n", "", 1)), 0o644))
	e3 := restarted(control2)
	require.Equal(t, "edge-ga v1.0.0", pinRef(e3.do("GET", "/v1/formulas/resolve?role=edge&release_state=ga", ScopeRead, "")))
	require.Equal(t, http.StatusUnprocessableEntity, e3.do("GET", "/v1/formulas/resolve?role=edge&release_state=trial-f1", ScopeRead, "").status)

	r = e.do("POST", "/v1/trials/f1/end", ScopeRollout, "")
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	require.Equal(t, http.StatusUnprocessableEntity, resolve("trial-f1").status, "the ended trial's state is still served")
	require.Equal(t, "edge-nrt v1.0.0", pinRef(resolve("nrt")))
}
