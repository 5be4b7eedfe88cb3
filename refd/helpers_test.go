package refd

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/sources"
	"github.com/fleetkit/fleetkit/sources/overrides"
	"github.com/fleetkit/fleetkit/testkit/fleet"
)

// The test tokens, one per scope, and their secrets.
var testSecrets = map[Scope]string{
	ScopeRead:    "read-secret",
	ScopeWrite:   "write-secret",
	ScopeRollout: "rollout-secret",
	ScopeAdmin:   "admin-secret",
}

func testTokens() []Token {
	var out []Token
	for _, sc := range []Scope{ScopeRead, ScopeWrite, ScopeRollout, ScopeAdmin} {
		out = append(out, Token{Name: string(sc) + "-token", Hash: HashToken(testSecrets[sc]), Scopes: []Scope{sc}})
	}
	return out
}

type testEnv struct {
	t     *testing.T
	ix    *disposition.Index
	srv   *Server
	ts    *httptest.Server
	store *Store
	ov    *overrides.Source
	nodes []*disposition.Node
}

type envOpt func(*Config)

// newTestEnv starts a Server over a generated fleet of size nodes.
func newTestEnv(t *testing.T, size int, opts ...envOpt) *testEnv {
	t.Helper()
	f, err := fleet.Generate(fleet.Config{Size: size, Seed: 7})
	require.NoError(t, err)
	ix := disposition.NewIndex()
	_, err = ix.Apply(context.Background(), disposition.Batch{Upserts: f.Nodes})
	require.NoError(t, err)
	store, err := OpenStore(filepath.Join(t.TempDir(), "refd.db"))
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	ov, err := overrides.New(context.Background(), overrides.Config{Store: store})
	require.NoError(t, err)
	cfg := Config{Index: ix, Store: store, Tokens: testTokens(), Overrides: ov, MaxBodyBytes: 4096}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := New(cfg)
	require.NoError(t, err)
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return &testEnv{t: t, ix: ix, srv: srv, ts: ts, store: store, ov: ov, nodes: f.Nodes}
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) apiError(t *testing.T) *APIError {
	t.Helper()
	var b struct {
		Error *APIError `json:"error"`
	}
	require.NoError(t, json.Unmarshal(r.body, &b), "body: %s", r.body)
	require.NotNil(t, b.Error, "body: %s", r.body)
	return b.Error
}

// do sends a request with the secret of scope (none when scope is "").
func (e *testEnv) do(method, path string, scope Scope, body string, hdr ...string) resp {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.ts.URL+path, rd)
	require.NoError(e.t, err)
	if scope != "" {
		req.Header.Set("Authorization", "Bearer "+testSecrets[scope])
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := e.ts.Client().Do(req)
	require.NoError(e.t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(e.t, err)
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

// fakePlanner plans every spec as one wave per "wave" line.
type fakePlanner struct{}

func (fakePlanner) Plan(ctx context.Context, name string, spec []byte, snap *disposition.Snapshot, start time.Time) (*PlanResult, error) {
	if strings.Contains(string(spec), "bad") {
		return nil, &specErr{"spec:1: field select: bad"}
	}
	n := strings.Count(string(spec), "wave")
	plan, _ := json.Marshal(map[string]any{"waves": n, "start": start.UTC()})
	return &PlanResult{Waves: n, Targets: 10 * n, Plan: plan}, nil
}

type specErr struct{ msg string }

func (e *specErr) Error() string { return e.msg }
func (e *specErr) Unwrap() error { return ErrInvalidSpec }

// fakeUpdater reports one authoritative source, ready when told.
type fakeUpdater struct {
	mu        sync.Mutex
	ready     bool
	refreshes int
}

func (u *fakeUpdater) Run(ctx context.Context) error { <-ctx.Done(); return nil }

func (u *fakeUpdater) Refresh(ctx context.Context) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.refreshes++
	return nil
}

func (u *fakeUpdater) Status() []sources.SourceStatus {
	u.mu.Lock()
	defer u.mu.Unlock()
	st := sources.SourceStatus{Name: "inventory", Authoritative: true, Observations: 3}
	if u.ready {
		st.LastSuccess = time.Unix(1_700_000_000, 0)
	}
	return []sources.SourceStatus{st}
}
