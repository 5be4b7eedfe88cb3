package saltdeploy_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/rollout"
	"github.com/fleetkit/fleetkit/rollout/saltdeploy"
	"github.com/fleetkit/fleetkit/testkit/fakes"
	"github.com/fleetkit/fleetkit/testkit/fleet"
)

var start = time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC)

type env struct {
	fake  *fakes.Salt
	url   string
	up    []string // minions that answer
	clock *rollout.FakeClock
}

func newEnv(t *testing.T) *env {
	t.Helper()
	f, err := fleet.Generate(fleet.Config{Size: 20, Seed: 21})
	require.NoError(t, err)
	fake := fakes.NewSalt(f, fakes.SaltOptions{})
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	e := &env{fake: fake, url: srv.URL, clock: rollout.NewFakeClock(start)}
	e.clock.SetAuto(true)
	for _, n := range f.Nodes {
		if n.Health != disposition.HealthDown {
			e.up = append(e.up, n.ID)
		}
	}
	require.GreaterOrEqual(t, len(e.up), 6)
	return e
}

func (e *env) deployer(t *testing.T, mod func(*saltdeploy.Config)) *saltdeploy.Deployer {
	t.Helper()
	cfg := saltdeploy.Config{
		URL: e.url, Username: fakes.DefaultSaltUser, Password: fakes.DefaultSaltPassword,
		State: "app", PollInterval: 5 * time.Second, JobTimeout: time.Minute, Clock: e.clock,
	}
	if mod != nil {
		mod(&cfg)
	}
	d, err := saltdeploy.New(cfg)
	require.NoError(t, err)
	return d
}

func request(key string, servers ...string) rollout.DeployRequest {
	return rollout.DeployRequest{Rollout: "app-1.1", Wave: 2, Attempt: 1, IdempotencyKey: key, Component: "app", Version: "1.1", Servers: servers}
}

func allOK(servers ...string) []rollout.ServerResult {
	out := make([]rollout.ServerResult, len(servers))
	for i, s := range servers {
		out[i] = rollout.ServerResult{Server: s, OK: true}
	}
	return out
}

func TestDeployAppliesState(t *testing.T) {
	e := newEnv(t)
	d := e.deployer(t, func(c *saltdeploy.Config) {
		c.Saltenv, c.Queue = "edge-ga", true
		c.Pillar = map[string]any{"site": "den"}
	})
	servers := e.up[:3]
	got, err := d.Deploy(context.Background(), request("app-1.1/wave/2/1", servers...))
	require.NoError(t, err)
	require.Equal(t, allOK(servers...), got)

	jobs := e.fake.Jobs()
	require.Len(t, jobs, 1)
	j := jobs[0]
	require.Equal(t, "state.apply", j.Function)
	require.Equal(t, "compound", j.TargetType)
	require.Equal(t, "L@"+strings.Join(servers, ","), j.Target)
	require.ElementsMatch(t, servers, j.Minions)
	require.Equal(t, map[string]any{
		"mods": "app", "saltenv": "edge-ga", "queue": true,
		"pillar": map[string]any{
			"site": "den",
			"fleetkit": map[string]any{
				"rollout": "app-1.1", "component": "app", "version": "1.1", "idempotency_key": "app-1.1/wave/2/1",
				"wave": float64(2), "batch": float64(0), "attempt": float64(1), "rollback": false,
			},
		},
	}, j.Kwarg)
	require.Equal(t, "app-1.1/wave/2/1", j.Metadata[saltdeploy.MetaKey])
}

func TestDeployHighstateWithSaltenvFunc(t *testing.T) {
	e := newEnv(t)
	d := e.deployer(t, func(c *saltdeploy.Config) {
		c.State = ""
		c.SaltenvFunc = func(r rollout.DeployRequest) (string, error) {
			if r.Rollback {
				return "", errors.New("no environment for rollbacks")
			}
			return r.Component + "-trial", nil
		}
	})
	_, err := d.Deploy(context.Background(), request("k1", e.up[0]))
	require.NoError(t, err)
	kw := e.fake.Jobs()[0].Kwarg
	require.NotContains(t, kw, "mods")
	require.Equal(t, "app-trial", kw["saltenv"])

	rb := request("k2", e.up[0])
	rb.Rollback = true
	_, err = d.Deploy(context.Background(), rb)
	require.ErrorContains(t, err, "no environment for rollbacks")
	require.Len(t, e.fake.Jobs(), 1)
}

func TestDeployFailures(t *testing.T) {
	e := newEnv(t)
	e.fake.SetStateRun(e.up[1], fakes.StateRun{Fail: "E: Unable to locate package app"})
	e.fake.SetStateRun(e.up[2], fakes.StateRun{Errors: []string{"Rendering SLS 'base:app' failed: mapping values are not allowed here"}})
	d := e.deployer(t, nil)
	got, err := d.Deploy(context.Background(), request("k", e.up[0], e.up[1], e.up[2], "ghost.fleet.example", "two,minions", e.up[0]))
	require.NoError(t, err)
	require.Equal(t, []rollout.ServerResult{
		{Server: e.up[0], OK: true},
		{Server: e.up[1], Error: "pkg.installed app: E: Unable to locate package app (and 1 more failed states)"},
		{Server: e.up[2], Error: "Rendering SLS 'base:app' failed: mapping values are not allowed here"},
		{Server: "ghost.fleet.example", Error: saltdeploy.NotMinion},
		{Server: "two,minions", Error: `server ID "two,minions" cannot be targeted as a minion ID`},
		{Server: e.up[0], OK: true},
	}, got)
	require.Equal(t, "L@"+e.up[0]+","+e.up[1]+","+e.up[2]+",ghost.fleet.example", e.fake.Jobs()[0].Target)
}

func TestDeployPollsUntilReturned(t *testing.T) {
	e := newEnv(t)
	e.fake.SetReturnAfter(3)
	d := e.deployer(t, nil)
	got, err := d.Deploy(context.Background(), request("k", e.up[:2]...))
	require.NoError(t, err)
	require.Equal(t, allOK(e.up[:2]...), got)
	require.Equal(t, 10*time.Second, e.clock.Now().Sub(start), "two waits of PollInterval")
}

func TestDeployMinionNeverReturns(t *testing.T) {
	e := newEnv(t)
	e.fake.SetStateRun(e.up[1], fakes.StateRun{NoReturn: true})
	d := e.deployer(t, func(c *saltdeploy.Config) { c.PollInterval = 7 * time.Second })
	got, err := d.Deploy(context.Background(), request("k", e.up[:2]...))
	require.NoError(t, err)
	require.Equal(t, []rollout.ServerResult{{Server: e.up[0], OK: true}, {Server: e.up[1], Error: saltdeploy.NoReturn}}, got)
	require.Equal(t, time.Minute, e.clock.Now().Sub(start), "polled until JobTimeout, not past it")
}

func TestDeployRepeatedKeyStartsNoSecondJob(t *testing.T) {
	e := newEnv(t)
	e.fake.SetStateRun(e.up[1], fakes.StateRun{Fail: "boom"})
	ctx := context.Background()
	req := request("app-1.1/wave/2/1", e.up[:3]...)
	d0 := e.deployer(t, nil)
	first, err := d0.Deploy(ctx, req)
	require.NoError(t, err)
	require.False(t, first[1].OK)

	// Final results are remembered: salt-api is not even asked.
	e.fake.Inject(fakes.Fault{Status: http.StatusInternalServerError})
	again, err := d0.Deploy(ctx, req)
	require.NoError(t, err)
	require.Equal(t, first, again)
	e.fake.ClearFaults()

	// The same Deployer answers from memory; a new one (a restarted
	// refd) finds the job in the job cache.
	d := e.deployer(t, nil)
	for range 2 {
		got, err := d.Deploy(ctx, req)
		require.NoError(t, err)
		require.Equal(t, first, got)
	}
	require.Len(t, e.fake.Jobs(), 1)

	// Without the search, a restart deploys again.
	_, err = e.deployer(t, func(c *saltdeploy.Config) { c.NoRecovery = true }).Deploy(ctx, req)
	require.NoError(t, err)
	require.Len(t, e.fake.Jobs(), 2)
}

func TestDeployLostStartAnswerFindsTheJob(t *testing.T) {
	e := newEnv(t)
	d := e.deployer(t, nil)
	// Requests: login, the job cache search, then the start, whose
	// answer is cut short after the job started.
	e.fake.Inject(fakes.Fault{Request: 3, Malformed: true})
	req := request("k", e.up[:2]...)
	_, err := d.Deploy(context.Background(), req)
	require.ErrorIs(t, err, saltdeploy.ErrBadResponse)
	require.Len(t, e.fake.Jobs(), 1)

	got, err := d.Deploy(context.Background(), req)
	require.NoError(t, err)
	require.Equal(t, allOK(e.up[:2]...), got)
	require.Len(t, e.fake.Jobs(), 1, "the retry found the job instead of starting another")
}

func TestDeployBadJSONThenResume(t *testing.T) {
	e := newEnv(t)
	d := e.deployer(t, nil)
	e.fake.Inject(fakes.Fault{Path: "/jobs/", Malformed: true})
	req := request("k", e.up[:2]...)
	_, err := d.Deploy(context.Background(), req)
	require.ErrorIs(t, err, saltdeploy.ErrBadResponse)
	require.ErrorContains(t, err, "job "+e.fake.Jobs()[0].JID)

	e.fake.ClearFaults()
	got, err := d.Deploy(context.Background(), req)
	require.NoError(t, err)
	require.Equal(t, allOK(e.up[:2]...), got)
	require.Len(t, e.fake.Jobs(), 1)
}

func TestDeployLogsInAgain(t *testing.T) {
	e := newEnv(t)
	d := e.deployer(t, nil)
	ctx := context.Background()
	_, err := d.Deploy(ctx, request("k1", e.up[0]))
	require.NoError(t, err)

	e.fake.ExpireTokens()
	got, err := d.Deploy(ctx, request("k2", e.up[1]))
	require.NoError(t, err)
	require.Equal(t, allOK(e.up[1]), got)

	// Refused even with a fresh token: one more login, then the error.
	e.fake.Inject(fakes.Fault{Path: "/jobs/", Status: http.StatusUnauthorized})
	before := e.fake.Requests()
	_, err = d.Deploy(ctx, request("k3", e.up[2]))
	require.ErrorIs(t, err, saltdeploy.ErrUnauthorized)
	// search, start, poll (401), login, poll (401).
	require.Equal(t, 5, e.fake.Requests()-before)
}

func TestDeployLoginRefused(t *testing.T) {
	e := newEnv(t)
	d := e.deployer(t, func(c *saltdeploy.Config) { c.Password = "wrong" })
	_, err := d.Deploy(context.Background(), request("k", e.up[0]))
	require.ErrorIs(t, err, saltdeploy.ErrUnauthorized)
	require.ErrorContains(t, err, "login")
	require.Empty(t, e.fake.Jobs())
}

func TestDeployNoMinionMatched(t *testing.T) {
	e := newEnv(t)
	_, err := e.deployer(t, nil).Deploy(context.Background(), request("k", "ghost-1", "ghost-2"))
	require.ErrorIs(t, err, saltdeploy.ErrNoMinions)
	require.ErrorContains(t, err, "L@ghost-1,ghost-2")
}

func TestDeployBatches(t *testing.T) {
	e := newEnv(t)
	d := e.deployer(t, func(c *saltdeploy.Config) { c.BatchSize = 2 })
	req := request("k", e.up[:5]...)
	got, err := d.Deploy(context.Background(), req)
	require.NoError(t, err)
	require.Equal(t, allOK(e.up[:5]...), got)
	jobs := e.fake.Jobs()
	require.Len(t, jobs, 3)
	for i, j := range jobs {
		require.Equal(t, "L@"+strings.Join(e.up[2*i:min(2*i+2, 5)], ","), j.Target)
		require.EqualValues(t, i, j.Metadata[saltdeploy.MetaJob])
		require.EqualValues(t, 3, j.Metadata[saltdeploy.MetaJobs])
	}
	// After a restart, every batch is found again.
	_, err = e.deployer(t, func(c *saltdeploy.Config) { c.BatchSize = 2 }).Deploy(context.Background(), req)
	require.NoError(t, err)
	require.Len(t, e.fake.Jobs(), 3)
}

func TestDeployCancelThenResume(t *testing.T) {
	e := newEnv(t)
	e.clock.SetAuto(false)
	e.fake.SetReturnAfter(2)
	d := e.deployer(t, nil)
	req := request("k", e.up[:2]...)

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := d.Deploy(ctx, req)
		errc <- err
	}()
	require.NoError(t, e.clock.BlockUntilWaiters(context.Background(), 1), "waiting to poll again")
	cancel()
	require.ErrorIs(t, <-errc, context.Canceled)

	e.clock.SetAuto(true)
	got, err := d.Deploy(context.Background(), req)
	require.NoError(t, err)
	require.Equal(t, allOK(e.up[:2]...), got)
	require.Len(t, e.fake.Jobs(), 1)
}

func TestNewChecksConfig(t *testing.T) {
	ok := saltdeploy.Config{URL: "https://salt:8000", Username: "u"}
	for _, tc := range []struct {
		mod   func(*saltdeploy.Config)
		field string
	}{
		{func(c *saltdeploy.Config) { c.URL = "" }, "Config.URL"},
		{func(c *saltdeploy.Config) { c.URL = "salt:8000" }, "Config.URL"},
		{func(c *saltdeploy.Config) { c.Username = "" }, "Config.Username"},
		{func(c *saltdeploy.Config) { c.State = "app nginx" }, "Config.State"},
		{func(c *saltdeploy.Config) {
			c.Saltenv, c.SaltenvFunc = "base", func(rollout.DeployRequest) (string, error) { return "", nil }
		}, "Config.SaltenvFunc"},
		{func(c *saltdeploy.Config) { c.Pillar = map[string]any{"fleetkit": 1} }, "Config.Pillar"},
		{func(c *saltdeploy.Config) { c.Pillar = map[string]any{"f": func() {}} }, "Config.Pillar"},
		{func(c *saltdeploy.Config) { c.BatchSize = -1 }, "Config.BatchSize"},
		{func(c *saltdeploy.Config) { c.PollInterval = -time.Second }, "Config.PollInterval"},
		{func(c *saltdeploy.Config) { c.JobTimeout = -time.Second }, "Config.JobTimeout"},
		{func(c *saltdeploy.Config) { c.Timeout = -time.Second }, "Config.Timeout"},
	} {
		cfg := ok
		tc.mod(&cfg)
		_, err := saltdeploy.New(cfg)
		require.ErrorContains(t, err, tc.field)
	}
	_, err := saltdeploy.New(ok)
	require.NoError(t, err)
}

func TestDeployNeedsKey(t *testing.T) {
	e := newEnv(t)
	_, err := e.deployer(t, nil).Deploy(context.Background(), request("", e.up[0]))
	require.ErrorContains(t, err, "idempotency key")
}
