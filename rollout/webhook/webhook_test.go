package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/rollout"
	"github.com/fleetkit/fleetkit/rollout/webhook"
)

var (
	secret = []byte("s3cret")
	start  = time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC)
)

// receiver is a webhook endpoint as the package doc asks users to write
// one: it checks signatures with Verify, deploys each key once and
// answers a repeated key with the first call's results.
type receiver struct {
	t     *testing.T
	clock rollout.Clock
	// fail gives a server's error; "" deploys it.
	fail func(server string) string
	// lose is how many answers per key are lost: the receiver deploys,
	// then answers 503 as if the response never arrived.
	lose int
	// status answers every request with this status before anything
	// else, if not zero.
	status int

	mu       sync.Mutex
	answers  map[string][]byte
	lost     map[string]int
	deployed map[string]int
	requests int
	keys     []string
}

func newReceiver(t *testing.T, clock rollout.Clock) *receiver {
	return &receiver{t: t, clock: clock, answers: map[string][]byte{}, lost: map[string]int{}, deployed: map[string]int{}}
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.requests++
	if rc.status != 0 {
		http.Error(w, "busy", rc.status)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	if err := webhook.Verify(secret, r.Header, body, rc.clock.Now(), time.Minute); err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var req rollout.DeployRequest
	if err := json.Unmarshal(body, &req); err != nil || r.Header.Get("Content-Type") != "application/json" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	key := r.Header.Get(webhook.HeaderIdempotencyKey)
	if key != req.IdempotencyKey {
		http.Error(w, "key mismatch", http.StatusBadRequest)
		return
	}
	rc.keys = append(rc.keys, key)
	answer, done := rc.answers[key]
	if !done {
		var res []map[string]any
		for _, s := range req.Servers {
			rc.deployed[s]++
			e := ""
			if rc.fail != nil {
				e = rc.fail(s)
			}
			res = append(res, map[string]any{"server": s, "ok": e == "", "error": e})
		}
		answer, _ = json.Marshal(map[string]any{"results": res})
		rc.answers[key] = answer
	}
	if rc.lost[key] < rc.lose {
		rc.lost[key]++
		http.Error(w, "answer lost", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(answer)
}

func (rc *receiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.requests
}

// seen returns how many times each server was deployed, and the key of
// every request, in order.
func (rc *receiver) seen() (map[string]int, []string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return maps.Clone(rc.deployed), slices.Clone(rc.keys)
}

func newDeployer(t *testing.T, url string, clock rollout.Clock, mod func(*webhook.Config)) *webhook.Deployer {
	t.Helper()
	cfg := webhook.Config{URL: url, Secret: secret, Clock: clock}
	if mod != nil {
		mod(&cfg)
	}
	d, err := webhook.New(cfg)
	require.NoError(t, err)
	return d
}

func autoClock() *rollout.FakeClock {
	c := rollout.NewFakeClock(start)
	c.SetAuto(true)
	return c
}

func request(key string, servers ...string) rollout.DeployRequest {
	return rollout.DeployRequest{Rollout: "app-1.1", Wave: 1, Attempt: 1, IdempotencyKey: key, Component: "app", Version: "1.1", Servers: servers}
}

func TestDeploySignedAndMapped(t *testing.T) {
	clock := autoClock()
	rc := newReceiver(t, clock)
	rc.fail = func(s string) string {
		if s == "b" {
			return "disk full"
		}
		return ""
	}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	d := newDeployer(t, srv.URL+"/deploy", clock, nil)

	got, err := d.Deploy(context.Background(), request("k1", "a", "b", "c"))
	require.NoError(t, err)
	require.Equal(t, []rollout.ServerResult{
		{Server: "a", OK: true}, {Server: "b", Error: "disk full"}, {Server: "c", OK: true},
	}, got)
	deployed, _ := rc.seen()
	require.Equal(t, map[string]int{"a": 1, "b": 1, "c": 1}, deployed)

	// Signed with another secret: the receiver refuses, and a 401 is not
	// retried.
	bad := newDeployer(t, srv.URL+"/deploy", clock, func(c *webhook.Config) { c.Secret = []byte("wrong") })
	_, err = bad.Deploy(context.Background(), request("k2", "a"))
	require.ErrorIs(t, err, webhook.ErrRejected)
	var se *webhook.StatusError
	require.ErrorAs(t, err, &se)
	require.Equal(t, http.StatusUnauthorized, se.Code)
	require.Contains(t, se.Body, "signature does not match")
	require.Equal(t, 2, rc.count())
}

func TestDeployResponseMapping(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
		want []rollout.ServerResult
	}{
		{"missing and unknown servers", `{"results":[{"server":"a","ok":true},{"server":"zz","ok":true}]}`,
			[]rollout.ServerResult{{Server: "a", OK: true}, {Server: "b", Error: webhook.NoResult}}},
		{"a failure stands", `{"results":[{"server":"a","ok":false},{"server":"a","ok":true},{"server":"b","ok":true,"error":"ignored"},{"server":"b","ok":false,"error":"late"}]}`,
			[]rollout.ServerResult{{Server: "a", Error: "failed (the webhook gave no error)"}, {Server: "b", Error: "late"}}},
		{"empty list", `{"results":[]}`,
			[]rollout.ServerResult{{Server: "a", Error: webhook.NoResult}, {Server: "b", Error: webhook.NoResult}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			got, err := newDeployer(t, srv.URL, autoClock(), nil).Deploy(context.Background(), request("k", "a", "b"))
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestDeployBadResponse(t *testing.T) {
	for _, body := range []string{`{"results": [`, `[]`, `{"ok": true}`, `{"results": null}`, `{"results": [{"ok": true}]}`, ``} {
		t.Run(body, func(t *testing.T) {
			var n atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n.Add(1)
				_, _ = io.WriteString(w, body)
			}))
			defer srv.Close()
			_, err := newDeployer(t, srv.URL, autoClock(), nil).Deploy(context.Background(), request("k", "a"))
			require.ErrorIs(t, err, webhook.ErrBadResponse)
			require.Contains(t, err.Error(), srv.URL)
			require.Contains(t, err.Error(), "attempt 1 of 3")
			require.EqualValues(t, 1, n.Load(), "a bad body is not retried")
		})
	}
}

// flaky answers the given statuses (with headers) first, then the
// results of a receiver.
type flaky struct {
	mu      sync.Mutex
	answers []func(http.ResponseWriter)
	n       int
	next    http.Handler
}

func (f *flaky) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	i := f.n
	f.n++
	f.mu.Unlock()
	if i < len(f.answers) {
		f.answers[i](w)
		return
	}
	f.next.ServeHTTP(w, r)
}

func status(code int, header ...string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		http.Error(w, http.StatusText(code), code)
	}
}

func TestDeployRetries(t *testing.T) {
	for _, tc := range []struct {
		name     string
		answers  []func(http.ResponseWriter)
		mod      func(*webhook.Config)
		requests int
		waited   time.Duration
		err      error // nil: success
	}{
		{name: "503 then success, backoff doubles", answers: []func(http.ResponseWriter){status(503), status(502)},
			requests: 3, waited: 3 * time.Second},
		{name: "429 honours Retry-After seconds", answers: []func(http.ResponseWriter){status(429, "Retry-After", "7")},
			requests: 2, waited: 7 * time.Second},
		{name: "503 honours Retry-After date", answers: []func(http.ResponseWriter){status(503, "Retry-After", start.Add(12*time.Second).Format(http.TimeFormat))},
			requests: 2, waited: 12 * time.Second},
		{name: "backoff is capped", answers: []func(http.ResponseWriter){status(500), status(500), status(500)},
			mod:      func(c *webhook.Config) { c.Attempts, c.Backoff, c.MaxBackoff = 4, 2*time.Second, 3*time.Second },
			requests: 4, waited: 8 * time.Second},
		{name: "Retry-After beyond MaxBackoff gives up", answers: []func(http.ResponseWriter){status(429, "Retry-After", "3600")},
			requests: 1, err: &webhook.StatusError{}},
		{name: "400 is not retried", answers: []func(http.ResponseWriter){status(400)},
			requests: 1, err: webhook.ErrRejected},
		{name: "attempts run out", answers: []func(http.ResponseWriter){status(503), status(503), status(503)},
			requests: 3, waited: 3 * time.Second, err: &webhook.StatusError{}},
		{name: "one attempt", answers: []func(http.ResponseWriter){status(503)},
			mod:      func(c *webhook.Config) { c.Attempts = 1 },
			requests: 1, err: &webhook.StatusError{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := autoClock()
			f := &flaky{answers: tc.answers, next: newReceiver(t, clock)}
			srv := httptest.NewServer(f)
			defer srv.Close()
			got, err := newDeployer(t, srv.URL, clock, tc.mod).Deploy(context.Background(), request("k", "a"))
			require.Equal(t, tc.requests, f.count())
			require.Equal(t, tc.waited, clock.Now().Sub(start))
			switch want := tc.err.(type) {
			case nil:
				require.NoError(t, err)
				require.Equal(t, []rollout.ServerResult{{Server: "a", OK: true}}, got)
			case *webhook.StatusError:
				require.ErrorAs(t, err, &want)
				require.NotErrorIs(t, err, webhook.ErrRejected)
				require.Contains(t, err.Error(), fmt.Sprintf("attempt %d of", tc.requests))
			default:
				require.ErrorIs(t, err, want)
			}
		})
	}
}

func TestDeployRetriesNetworkErrors(t *testing.T) {
	clock := autoClock()
	rc := newReceiver(t, clock)
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			// Hang up without answering.
			conn, _, err := w.(http.Hijacker).Hijack()
			require.NoError(t, err)
			conn.Close()
			return
		}
		rc.ServeHTTP(w, r)
	}))
	defer srv.Close()
	got, err := newDeployer(t, srv.URL, clock, nil).Deploy(context.Background(), request("k", "a"))
	require.NoError(t, err)
	require.Equal(t, []rollout.ServerResult{{Server: "a", OK: true}}, got)
	require.EqualValues(t, 2, n.Load())
}

func TestDeployCancelStopsRetries(t *testing.T) {
	clock := rollout.NewFakeClock(start) // manual: the retry waits until told
	rc := newReceiver(t, clock)
	rc.status = http.StatusServiceUnavailable
	srv := httptest.NewServer(rc)
	defer srv.Close()
	d := newDeployer(t, srv.URL, clock, nil)

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := d.Deploy(ctx, request("k", "a"))
		errc <- err
	}()
	require.NoError(t, clock.BlockUntilWaiters(context.Background(), 1))
	cancel()
	err := <-errc
	require.ErrorIs(t, err, context.Canceled)
	require.Contains(t, err.Error(), "stopped before attempt 2")
	require.Equal(t, 1, rc.count())
}

func TestDeployUnsigned(t *testing.T) {
	headers := make(chan http.Header, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		headers <- r.Header.Clone()
		_, _ = io.WriteString(w, `{"results":[]}`)
	}))
	defer srv.Close()
	d := newDeployer(t, srv.URL, autoClock(), func(c *webhook.Config) {
		c.Secret, c.Insecure = nil, true
		c.Header = map[string]string{"Authorization": "Bearer t0ken"}
	})
	_, err := d.Deploy(context.Background(), request("k", "a"))
	require.NoError(t, err)
	got := <-headers
	require.Empty(t, got.Get(webhook.HeaderSignature))
	require.Equal(t, fmt.Sprint(start.Unix()), got.Get(webhook.HeaderTimestamp))
	require.Equal(t, "k", got.Get(webhook.HeaderIdempotencyKey))
	require.Equal(t, "Bearer t0ken", got.Get("Authorization"))
}

func TestNewChecksConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg   webhook.Config
		field string
	}{
		{webhook.Config{Secret: secret}, "Config.URL"},
		{webhook.Config{URL: "ftp://x", Secret: secret}, "Config.URL"},
		{webhook.Config{URL: "http://"}, "Config.URL"},
		{webhook.Config{URL: "http://x"}, "Config.Secret"},
		{webhook.Config{URL: "http://x", Secret: secret, Header: map[string]string{"idempotency-key": "k"}}, "Config.Header"},
		{webhook.Config{URL: "http://x", Secret: secret, Attempts: -1}, "Config.Attempts"},
		{webhook.Config{URL: "http://x", Secret: secret, Backoff: -time.Second}, "Config.Backoff"},
		{webhook.Config{URL: "http://x", Secret: secret, Backoff: time.Hour}, "Config.Backoff"},
		{webhook.Config{URL: "http://x", Secret: secret, Timeout: -1}, "Config.Timeout"},
	} {
		_, err := webhook.New(tc.cfg)
		require.ErrorContains(t, err, tc.field)
	}
	_, err := webhook.New(webhook.Config{URL: "http://x", Insecure: true})
	require.NoError(t, err)
}

func TestVerify(t *testing.T) {
	body := []byte(`{"servers":["a"]}`)
	signed := func(ts time.Time, b []byte, key []byte) http.Header {
		h := http.Header{}
		h.Set(webhook.HeaderTimestamp, fmt.Sprint(ts.Unix()))
		h.Set(webhook.HeaderSignature, webhook.Sign(key, ts.Unix(), b))
		return h
	}
	require.NoError(t, webhook.Verify(secret, signed(start, body, secret), body, start.Add(time.Minute), 0))

	noSig := signed(start, body, secret)
	noSig.Del(webhook.HeaderSignature)
	noTS := signed(start, body, secret)
	noTS.Del(webhook.HeaderTimestamp)
	badHex := signed(start, body, secret)
	badHex.Set(webhook.HeaderSignature, "sha256=zz")
	moved := signed(start, body, secret)
	moved.Set(webhook.HeaderTimestamp, fmt.Sprint(start.Unix()+1))
	for name, tc := range map[string]struct {
		h    http.Header
		body []byte
		now  time.Time
		skew time.Duration
	}{
		"tampered body":        {signed(start, body, secret), []byte(`{"servers":["b"]}`), start, 0},
		"other secret":         {signed(start, body, []byte("other")), body, start, 0},
		"stale":                {signed(start, body, secret), body, start.Add(10 * time.Minute), 0},
		"future beyond skew":   {signed(start, body, secret), body, start.Add(-2 * time.Second), time.Second},
		"no signature":         {noSig, body, start, 0},
		"no timestamp":         {noTS, body, start, 0},
		"not hex":              {badHex, body, start, 0},
		"timestamp not signed": {moved, body, start, 0},
	} {
		err := webhook.Verify(secret, tc.h, tc.body, tc.now, tc.skew)
		require.ErrorIs(t, err, webhook.ErrSignature, name)
	}
}

// TestRunnerDeploysEachServerOnce runs a rollout through rollout.Runner
// against a receiver that loses answers: the webhook retries within a
// Deploy call, and the Runner retries the whole call with the same key,
// yet every server is deployed exactly once.
func TestRunnerDeploysEachServerOnce(t *testing.T) {
	ctx := context.Background()
	var nodes []*disposition.Node
	var ids []string
	for i := range 6 {
		id := fmt.Sprintf("edge-%d", i)
		ids = append(ids, id)
		nodes = append(nodes, &disposition.Node{
			ID: id, Region: "na", Metro: "DEN", Site: "DEN1", Cluster: "DEN1-c1",
			Timezone: "America/Denver", Role: "edge", State: disposition.StateInService,
			Health: disposition.HealthHealthy, Versions: map[string]string{"app": "1.0"},
		})
	}
	ix := disposition.NewIndex()
	_, err := ix.Apply(ctx, disposition.Batch{Upserts: nodes})
	require.NoError(t, err)
	spec, err := rollout.ParseSpec("spec.yaml", []byte(`
component: app
version: "1.1"
select: role=edge
deploy: 10m
growth: {steps: [1, 2], bake: 20m}
gate: {min_healthy: 5m}
`))
	require.NoError(t, err)

	clock := autoClock()
	rc := newReceiver(t, clock)
	rc.lose = 4 // more than one Deploy call's attempts
	srv := httptest.NewServer(rc)
	defer srv.Close()
	d := newDeployer(t, srv.URL, clock, nil)
	// A paused rollout would make Run wait for an operator: stop it at
	// the second failed call in a row instead, which the test reports.
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	failures := 0
	guard := rollout.DeployerFunc(func(ctx context.Context, req rollout.DeployRequest) ([]rollout.ServerResult, error) {
		res, err := d.Deploy(ctx, req)
		if err == nil {
			failures = 0
		} else if failures++; failures > 1 {
			cancel()
		}
		return res, err
	})

	store := rollout.NewMemStore()
	runner, err := rollout.NewRunner(rollout.RunnerConfig{Store: store, Fleet: ix, Deployer: guard, Clock: clock})
	require.NoError(t, err)
	_, err = runner.Create(ctx, "app-1.1", spec)
	require.NoError(t, err)
	require.NoError(t, runner.Run(runCtx, "app-1.1"))

	events, err := store.Load(ctx, "app-1.1")
	require.NoError(t, err)
	st, err := rollout.Fold("app-1.1", events)
	require.NoError(t, err)
	require.Equal(t, rollout.StatusCompleted, st.Status)
	deployErrors := 0
	for _, e := range events {
		if e.Type == rollout.EventDeployError {
			deployErrors++
			require.Contains(t, e.Error, "attempt 3 of 3")
		}
	}
	require.Equal(t, len(st.Waves), deployErrors, "each wave's first Deploy call failed as a whole")

	want := map[string]int{}
	for _, id := range ids {
		want[id] = 1
	}
	deployed, all := rc.seen()
	require.Equal(t, want, deployed)
	// Every request of a wave carried that wave's one key.
	keys := slices.Compact(slices.Clone(all))
	require.Len(t, keys, len(st.Waves))
	require.Len(t, all, len(st.Waves)*5)
	for i, k := range keys {
		require.True(t, strings.HasSuffix(k, fmt.Sprintf("/wave/%d/1", i+1)), k)
	}
}

func TestDeployNeedsKey(t *testing.T) {
	rc := newReceiver(t, autoClock())
	srv := httptest.NewServer(rc)
	defer srv.Close()
	_, err := newDeployer(t, srv.URL, autoClock(), nil).Deploy(context.Background(), request("", "a"))
	require.ErrorContains(t, err, "idempotency key")
	require.Zero(t, rc.count())
}

func TestStatusErrorUnwrap(t *testing.T) {
	for code, rejected := range map[int]bool{400: true, 401: true, 404: true, 409: true, 429: false, 500: false, 503: false, 302: false} {
		require.Equal(t, rejected, errors.Is(&webhook.StatusError{Code: code}, webhook.ErrRejected), code)
	}
}
