package refd

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/sources"
	"github.com/fleetkit/fleetkit/sources/overrides"
	"github.com/fleetkit/fleetkit/testkit/fleet"
)

func TestNewNamesTheBadField(t *testing.T) {
	ix := disposition.NewIndex()
	store, err := OpenStore(t.TempDir() + "/refd.db")
	require.NoError(t, err)
	defer store.Close()
	good := func() Config { return Config{Index: ix, Store: store, Tokens: testTokens()} }
	tests := []struct {
		field string
		edit  func(*Config)
	}{
		{"Index", func(c *Config) { c.Index = nil }},
		{"Store", func(c *Config) { c.Store = nil }},
		{"Tokens", func(c *Config) { c.Tokens = nil }},
		{"Tokens[1].Name", func(c *Config) { c.Tokens[1].Name = "" }},
		{"Tokens[1].Name", func(c *Config) { c.Tokens[1].Name = c.Tokens[0].Name }},
		{"Tokens[2].Hash", func(c *Config) { c.Tokens[2].Hash = "plaintext" }},
		{"Tokens[2].Hash", func(c *Config) { c.Tokens[2].Hash = "sha256:abcd" }},
		{"Tokens[0].Scopes", func(c *Config) { c.Tokens[0].Scopes = nil }},
		{"Tokens[0].Scopes[0]", func(c *Config) { c.Tokens[0].Scopes = []Scope{"root"} }},
		{"TLSKeyFile", func(c *Config) { c.TLSCertFile = "/x/cert.pem" }},
		{"TLSCertFile", func(c *Config) { c.TLSKeyFile = "/x/key.pem" }},
		{"TLSCertFile", func(c *Config) { c.TLSCertFile, c.TLSKeyFile = "/nonexistent/c", "/nonexistent/k" }},
		{"MaxBodyBytes", func(c *Config) { c.MaxBodyBytes = -1 }},
		{"ReadTimeout", func(c *Config) { c.ReadTimeout = -time.Second }},
		{"ShutdownTimeout", func(c *Config) { c.ShutdownTimeout = -time.Second }},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			c := good()
			c.Tokens = slices.Clone(c.Tokens)
			tt.edit(&c)
			_, err := New(c)
			var ce *ConfigError
			require.ErrorAs(t, err, &ce)
			require.Equal(t, tt.field, ce.Field, "error: %v", err)
			require.Contains(t, err.Error(), "Config."+tt.field)
		})
	}
	_, err = New(good())
	require.NoError(t, err)
}

// TestAuthOnEveryRoute checks every authenticated route: 401 with a
// challenge without a token or with a wrong one, 403 for a token without
// the scope, and neither for a token with it.
func TestAuthOnEveryRoute(t *testing.T) {
	e := newTestEnv(t, 50)
	id := e.nodes[0].ID
	for _, rt := range e.srv.routes {
		path := strings.ReplaceAll(rt.Path, "{id}", id)
		t.Run(rt.Method+" "+rt.Path, func(t *testing.T) {
			if rt.Scope == "" {
				r := e.do(rt.Method, path, "", "")
				require.Equal(t, http.StatusOK, r.status, "public route: %s", r.body)
				return
			}
			r := e.do(rt.Method, path, "", "")
			require.Equal(t, http.StatusUnauthorized, r.status)
			require.Equal(t, CodeUnauthorized, r.apiError(t).Code)
			require.Contains(t, r.header.Get("WWW-Authenticate"), "Bearer")

			r = e.do(rt.Method, path, "", "", "Authorization", "Bearer not-a-token")
			require.Equal(t, http.StatusUnauthorized, r.status)
			require.Contains(t, r.header.Get("WWW-Authenticate"), `error="invalid_token"`)

			r = e.do(rt.Method, path, "", "", "Authorization", "Basic "+testSecrets[ScopeAdmin])
			require.Equal(t, http.StatusUnauthorized, r.status, "a non-bearer scheme is no token")

			for sc := range testSecrets {
				r = e.do(rt.Method, path, sc, "")
				if grants([]Scope{sc}, rt.Scope) {
					require.NotContains(t, []int{401, 403}, r.status, "scope %s on %s: %s", sc, rt.Scope, r.body)
				} else {
					require.Equal(t, http.StatusForbidden, r.status, "scope %s on %s", sc, rt.Scope)
					require.Equal(t, CodeForbidden, r.apiError(t).Code)
				}
			}
		})
	}
}

func TestGrants(t *testing.T) {
	require.True(t, grants([]Scope{ScopeAdmin}, ScopeRollout))
	require.True(t, grants([]Scope{ScopeWrite}, ScopeRead))
	require.True(t, grants([]Scope{ScopeRollout}, ScopeRead))
	require.False(t, grants([]Scope{ScopeRead}, ScopeWrite))
	require.False(t, grants([]Scope{ScopeWrite}, ScopeRollout))
	require.False(t, grants([]Scope{ScopeRollout}, ScopeAdmin))
	require.False(t, grants(nil, ScopeRead))
}

func ids(nodes []*disposition.Node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.ID
	}
	return out
}

func decodePage(t *testing.T, r resp) NodesPage {
	t.Helper()
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	var p NodesPage
	require.NoError(t, json.Unmarshal(r.body, &p))
	require.Equal(t, len(p.Nodes), p.Count)
	return p
}

// TestNodesQueryMatchesIndex checks that the URL forms of queries select
// exactly what the index's own query does.
func TestNodesQueryMatchesIndex(t *testing.T) {
	e := newTestEnv(t, 2000)
	snap := e.ix.Snapshot()
	tests := []struct {
		params string
		query  string
	}{
		{"metro=" + e.nodes[0].Metro, "metro=" + e.nodes[0].Metro},
		{"health!=healthy", "health!=healthy"},
		{"role=edge&health!=down&state=in-service", "role=edge health!=down state=in-service"},
		{"metro=" + e.nodes[0].Metro + "&metro=" + e.nodes[len(e.nodes)-1].Metro, "metro=" + e.nodes[0].Metro + "," + e.nodes[len(e.nodes)-1].Metro},
		{"q=" + url.QueryEscape("role=mid release_state!=ga"), "role=mid release_state!=ga"},
		{"q=" + url.QueryEscape("role=edge") + "&health=healthy", "role=edge health=healthy"},
		{"label.tier=1", "label.tier=1"},
		{"version.cdn-app>=0.0.1", "version.cdn-app>=0.0.1"},
		{"version.cdn-app<99.0.0", "version.cdn-app<99.0.0"},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.params, func(t *testing.T) {
			want, err := snap.Query(disposition.MustParseQuery(tt.query))
			require.NoError(t, err)
			p := decodePage(t, e.do("GET", "/v1/nodes?"+tt.params+"&fields=id", ScopeRead, ""))
			require.Equal(t, ids(want), ids(p.Nodes))
			require.Equal(t, snap.Version(), p.Version)
		})
	}
}

func TestBadQueryTermsAre400NamingTheTerm(t *testing.T) {
	e := newTestEnv(t, 20)
	tests := []struct {
		params, field, mention string
	}{
		{"colour=red", "colour", "colour"},
		{"health=sick", "health", "sick"},
		{"health!=sick", "health", "sick"},
		{"state=", "state", "state"},
		{"q=" + url.QueryEscape("role=edge metro="), "q", "metro="},
		{"q=" + url.QueryEscape("nope"), "q", "nope"},
		{"version.x>=notaversion", "version.x", "notaversion"},
		{"version.x<1=2", "version.x", "version.x"},
		{"fields=id,colour", "fields", "colour"},
		{"limit=0", "limit", "0"},
		{"limit=abc", "limit", "abc"},
		{"cursor=!!!", "cursor", "cursor"},
	}
	for _, tt := range tests {
		t.Run(tt.params, func(t *testing.T) {
			r := e.do("GET", "/v1/nodes?"+tt.params, ScopeRead, "")
			require.Equal(t, http.StatusBadRequest, r.status, "body: %s", r.body)
			ae := r.apiError(t)
			require.Equal(t, tt.field, ae.Field)
			require.Contains(t, ae.Message, tt.mention)
		})
	}
	r := e.do("GET", "/v1/aggregate?by=metro,colour", ScopeRead, "")
	require.Equal(t, http.StatusBadRequest, r.status)
	require.Equal(t, "by", r.apiError(t).Field)
	r = e.do("GET", "/v1/aggregate?by=metro&health=sick", ScopeRead, "")
	require.Equal(t, http.StatusBadRequest, r.status)
	require.Equal(t, "health", r.apiError(t).Field)
}

func TestNodeGetWithProvenanceAnd404(t *testing.T) {
	e := newTestEnv(t, 20)
	n := e.nodes[3].Clone()
	n.Provenance[disposition.FieldHealth] = &disposition.Origin{Source: "prometheus", ObservedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	_, err := e.ix.Apply(context.Background(), disposition.Batch{Upserts: []*disposition.Node{n}})
	require.NoError(t, err)

	r := e.do("GET", "/v1/nodes/"+n.ID, ScopeRead, "")
	require.Equal(t, http.StatusOK, r.status)
	var got disposition.Node
	require.NoError(t, json.Unmarshal(r.body, &got))
	require.True(t, n.Equal(&got), cmp.Diff(n, &got))
	require.Equal(t, "prometheus", got.Provenance.Of(disposition.FieldHealth).Source)

	r = e.do("GET", "/v1/nodes/no-such-host", ScopeRead, "")
	require.Equal(t, http.StatusNotFound, r.status)
	ae := r.apiError(t)
	require.Equal(t, CodeNotFound, ae.Code)
	require.Contains(t, ae.Message, "no-such-host")
}

func TestFieldSelection(t *testing.T) {
	e := newTestEnv(t, 100)
	p := e.do("GET", "/v1/nodes?fields=id,metro,health&limit=5", ScopeRead, "")
	require.Equal(t, http.StatusOK, p.status)
	var raw struct {
		Nodes []map[string]any `json:"nodes"`
	}
	require.NoError(t, json.Unmarshal(p.body, &raw))
	require.Len(t, raw.Nodes, 5)
	for i, n := range raw.Nodes {
		for k := range n {
			require.Contains(t, []string{"id", "metro", "health"}, k)
		}
		require.Equal(t, e.nodes[i].ID, n["id"])
		require.Equal(t, e.nodes[i].Metro, n["metro"])
	}
}

// TestPaginationStableWhileIndexChanges pages through the fleet while
// nodes are added and removed between pages: every node present from
// start to end is seen exactly once, in ID order.
func TestPaginationStableWhileIndexChanges(t *testing.T) {
	e := newTestEnv(t, 1000)
	ctx := context.Background()
	removed := map[string]bool{}
	added := map[string]bool{}
	var seen []string
	cursor := ""
	for page := 0; ; page++ {
		path := "/v1/nodes?limit=37&fields=id&role!=dns"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		p := decodePage(t, e.do("GET", path, ScopeRead, ""))
		seen = append(seen, ids(p.Nodes)...)
		if p.NextCursor == "" {
			break
		}
		cursor = p.NextCursor
		// Remove a node ahead and one behind, add one ahead and one behind.
		snap := e.ix.Snapshot()
		all, err := snap.Query(disposition.Query{})
		require.NoError(t, err)
		last := seen[len(seen)-1]
		i, _ := slices.BinarySearchFunc(all, last, func(n *disposition.Node, id string) int { return strings.Compare(n.ID, id) })
		b := disposition.Batch{}
		if i+5 < len(all) {
			removed[all[i+5].ID] = true
			b.Deletes = append(b.Deletes, all[i+5].ID)
		}
		if i > 3 {
			removed[all[i-3].ID] = true
			b.Deletes = append(b.Deletes, all[i-3].ID)
		}
		for _, nid := range []string{last + "-new", "a-" + fmt.Sprint(page)} {
			n := all[0].Clone()
			n.ID = nid
			n.Role = "edge"
			added[nid] = true
			b.Upserts = append(b.Upserts, n)
		}
		_, err = e.ix.Apply(ctx, b)
		require.NoError(t, err)
	}
	require.True(t, slices.IsSorted(seen), "pages come in ID order")
	count := map[string]int{}
	for _, id := range seen {
		count[id]++
	}
	for _, n := range e.nodes {
		if n.Role == "dns" || removed[n.ID] {
			continue
		}
		require.Equal(t, 1, count[n.ID], "node %s present throughout must be seen once", n.ID)
	}
	for id, c := range count {
		require.Equal(t, 1, c, "node %s seen twice", id)
	}
}

func TestETagAndNotModified(t *testing.T) {
	e := newTestEnv(t, 200)
	for _, path := range []string{"/v1/nodes", "/v1/nodes?metro=" + e.nodes[0].Metro, "/v1/aggregate?by=metro", "/v1/nodes/" + e.nodes[0].ID} {
		t.Run(path, func(t *testing.T) {
			r := e.do("GET", path, ScopeRead, "")
			require.Equal(t, http.StatusOK, r.status)
			etag := r.header.Get("ETag")
			require.NotEmpty(t, etag)
			r2 := e.do("GET", path, ScopeRead, "", "If-None-Match", etag)
			require.Equal(t, http.StatusNotModified, r2.status)
			require.Empty(t, r2.body)
			r3 := e.do("GET", path, ScopeRead, "", "If-None-Match", `"v0", W/`+etag)
			require.Equal(t, http.StatusNotModified, r3.status)

			// A change of the index changes the ETag.
			n := e.nodes[1].Clone()
			n.TrafficGbps += 1
			_, err := e.ix.Apply(context.Background(), disposition.Batch{Upserts: []*disposition.Node{n}})
			require.NoError(t, err)
			e.nodes[1] = n
			r4 := e.do("GET", path, ScopeRead, "", "If-None-Match", etag)
			require.Equal(t, http.StatusOK, r4.status)
			require.NotEqual(t, etag, r4.header.Get("ETag"))
		})
	}
	r := e.do("GET", "/v1/nodes", ScopeRead, "")
	require.Equal(t, fmt.Sprintf(`"v%d"`, e.ix.Version()), r.header.Get("ETag"), "the full listing's ETag is its version")
}

// TestFullListingIsCachedPerVersion checks that the cached listing is the
// index at the version it names, and is rebuilt after a change.
func TestFullListingIsCachedPerVersion(t *testing.T) {
	e := newTestEnv(t, 300)
	for round := range 3 {
		p := decodePage(t, e.do("GET", "/v1/nodes", ScopeRead, ""))
		snap := e.ix.Snapshot()
		require.Equal(t, snap.Version(), p.Version)
		want, err := snap.Query(disposition.Query{})
		require.NoError(t, err)
		require.Len(t, p.Nodes, len(want))
		for i := range want {
			w := want[i].Clone()
			w.Provenance = disposition.Provenance{}
			require.True(t, w.Equal(p.Nodes[i]), "round %d node %d: %s", round, i, cmp.Diff(w, p.Nodes[i]))
		}
		_, err = e.ix.Apply(context.Background(), disposition.Batch{Deletes: []string{want[round].ID}})
		require.NoError(t, err)
	}
}

func TestGzipWhenAsked(t *testing.T) {
	e := newTestEnv(t, 300)
	for _, path := range []string{"/v1/nodes", "/v1/nodes?role=edge"} {
		plain := e.do("GET", path, ScopeRead, "")
		require.Empty(t, plain.header.Get("Content-Encoding"))
		// The test client must not decompress for us: ask explicitly.
		gz := e.do("GET", path, ScopeRead, "", "Accept-Encoding", "gzip")
		require.Equal(t, "gzip", gz.header.Get("Content-Encoding"))
		zr, err := gzip.NewReader(bytes.NewReader(gz.body))
		require.NoError(t, err)
		got, err := io.ReadAll(zr)
		require.NoError(t, err)
		require.Equal(t, plain.body, got)
		require.Less(t, len(gz.body), len(plain.body))
	}
}

func TestAggregateMatchesIndex(t *testing.T) {
	e := newTestEnv(t, 1500)
	r := e.do("GET", "/v1/aggregate?by=metro,health&role=edge", ScopeRead, "")
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	var got AggregateResult
	require.NoError(t, json.Unmarshal(r.body, &got))
	want, err := e.ix.Snapshot().Aggregate(disposition.MustParseQuery("role=edge"), "metro", "health")
	require.NoError(t, err)
	require.Empty(t, cmp.Diff(want, got.Groups))
	require.Equal(t, []string{"metro", "health"}, got.By)
}

func TestOversizedBodyIs413(t *testing.T) {
	e := newTestEnv(t, 20)
	big := `{"owner":"` + strings.Repeat("x", 5000) + `","reason":"r","ttl":"1h","state":"drained"}`
	r := e.do("PUT", "/v1/overrides/"+e.nodes[0].ID, ScopeWrite, big)
	require.Equal(t, http.StatusRequestEntityTooLarge, r.status)
	require.Equal(t, CodeTooLarge, r.apiError(t).Code)

	// Without a Content-Length the limit still holds.
	req, err := http.NewRequest("POST", e.ts.URL+"/v1/rollouts/plan", io.MultiReader(strings.NewReader(strings.Repeat("y", 5000))))
	require.NoError(t, err)
	req.ContentLength = -1
	req.Header.Set("Authorization", "Bearer "+testSecrets[ScopeRead])
	res, err := e.ts.Client().Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusRequestEntityTooLarge, res.StatusCode)
}

func TestUnknownRouteAndMethod(t *testing.T) {
	e := newTestEnv(t, 20)
	r := e.do("GET", "/v1/nope", ScopeRead, "")
	require.Equal(t, http.StatusNotFound, r.status)
	require.Equal(t, CodeNotFound, r.apiError(t).Code)
	r = e.do("DELETE", "/v1/nodes", ScopeAdmin, "")
	require.Equal(t, http.StatusMethodNotAllowed, r.status)
	require.Equal(t, "GET", r.header.Get("Allow"))
	require.Equal(t, CodeMethod, r.apiError(t).Code)
}

func TestOverridesAndAudit(t *testing.T) {
	u := &fakeUpdater{ready: true}
	e := newTestEnv(t, 20, func(c *Config) { c.Updater = u })
	id := e.nodes[2].ID

	r := e.do("PUT", "/v1/overrides/"+id, ScopeWrite, `{"state":"drained","owner":"alice","reason":"INC-1","ttl":"2h"}`)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	var o struct {
		ID    string `json:"id"`
		State string `json:"state"`
		SetBy string `json:"set_by"`
	}
	require.NoError(t, json.Unmarshal(r.body, &o))
	require.Equal(t, "drained", o.State)
	require.Equal(t, "write-token", o.SetBy)
	require.Equal(t, 1, u.refreshes, "a write refreshes the index")

	r = e.do("GET", "/v1/overrides", ScopeRead, "")
	require.Equal(t, http.StatusOK, r.status)
	require.Contains(t, string(r.body), id)

	for _, tt := range []struct{ body, field string }{
		{`{"state":"sleeping","owner":"a","reason":"r","ttl":"1h"}`, "state"},
		{`{"owner":"a","reason":"r","ttl":"1h"}`, "state"},
		{`{"state":"drained","reason":"r","ttl":"1h"}`, "owner"},
		{`{"state":"drained","owner":"a","reason":"r"}`, "expires"},
		{`{"state":"drained","owner":"a","reason":"r","ttl":"-1h"}`, "ttl"},
		{`{"state":"drained","owner":"a","reason":"r","ttl":"1h","colour":"red"}`, "colour"},
		{`{"state":7,"owner":"a","reason":"r","ttl":"1h"}`, "state"},
	} {
		r := e.do("PUT", "/v1/overrides/"+id, ScopeWrite, tt.body)
		require.Equal(t, http.StatusBadRequest, r.status, "%s -> %s", tt.body, r.body)
		require.Equal(t, tt.field, r.apiError(t).Field, tt.body)
	}
	r = e.do("PUT", "/v1/overrides/no-such-node", ScopeWrite, `{"state":"drained","owner":"a","reason":"r","ttl":"1h"}`)
	require.Equal(t, http.StatusNotFound, r.status)

	r = e.do("DELETE", "/v1/overrides/"+id, ScopeWrite, "")
	require.Equal(t, http.StatusNoContent, r.status)
	r = e.do("DELETE", "/v1/overrides/"+id, ScopeWrite, "")
	require.Equal(t, http.StatusNotFound, r.status)

	// Every write is in the audit log, newest first, with who and what.
	r = e.do("GET", "/v1/audit?limit=100", ScopeAdmin, "")
	require.Equal(t, http.StatusOK, r.status)
	var audit struct{ Entries []AuditEntry }
	require.NoError(t, json.Unmarshal(r.body, &audit))
	require.Len(t, audit.Entries, 1+7+1+2)
	first := audit.Entries[len(audit.Entries)-1]
	require.Equal(t, "write-token", first.Who)
	require.Equal(t, "PUT /v1/overrides/{id}", first.Action)
	require.Equal(t, "/v1/overrides/"+id, first.Target)
	require.Equal(t, http.StatusOK, first.Status)
	require.Contains(t, string(first.Body), "INC-1")
	require.Equal(t, "DELETE /v1/overrides/{id}", audit.Entries[0].Action)
	require.Equal(t, http.StatusNotFound, audit.Entries[0].Status)
	for i := 1; i < len(audit.Entries); i++ {
		require.Greater(t, audit.Entries[i-1].Seq, audit.Entries[i].Seq)
	}
	r = e.do("GET", fmt.Sprintf("/v1/audit?limit=2&before=%d", audit.Entries[0].Seq), ScopeAdmin, "")
	require.NoError(t, json.Unmarshal(r.body, &audit))
	require.Len(t, audit.Entries, 2)
	require.Equal(t, "DELETE /v1/overrides/{id}", audit.Entries[0].Action)
	require.Equal(t, http.StatusNoContent, audit.Entries[0].Status)
}

func TestRolloutsStateMachine(t *testing.T) {
	e := newTestEnv(t, 20, func(c *Config) { c.Planner = fakePlanner{} })

	r := e.do("POST", "/v1/rollouts/plan", ScopeRead, "wave\nwave\n")
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	var plan PlanResult
	require.NoError(t, json.Unmarshal(r.body, &plan))
	require.Equal(t, 2, plan.Waves)
	require.Equal(t, e.ix.Version(), plan.IndexVersion)

	r = e.do("POST", "/v1/rollouts/plan", ScopeRead, "bad spec")
	require.Equal(t, http.StatusUnprocessableEntity, r.status)
	require.Contains(t, r.apiError(t).Message, "field select")
	r = e.do("POST", "/v1/rollouts/plan?start=yesterday", ScopeRead, "wave")
	require.Equal(t, "start", r.apiError(t).Field)

	r = e.do("POST", "/v1/rollouts", ScopeRollout, "wave wave wave")
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	var ro Rollout
	require.NoError(t, json.Unmarshal(r.body, &ro))
	require.Equal(t, RolloutPending, ro.State)
	require.Equal(t, 3, ro.Waves)
	require.Equal(t, "rollout-token", ro.CreatedBy)
	require.Equal(t, "/v1/rollouts/"+ro.ID, r.header.Get("Location"))

	step := func(action string, status int, want RolloutState) {
		t.Helper()
		r := e.do("POST", "/v1/rollouts/"+ro.ID+"/"+action, ScopeRollout, "")
		require.Equal(t, status, r.status, "%s: %s", action, r.body)
		if status == http.StatusOK {
			var got Rollout
			require.NoError(t, json.Unmarshal(r.body, &got))
			require.Equal(t, want, got.State, action)
		} else {
			require.Equal(t, CodeConflict, r.apiError(t).Code)
		}
	}
	step("resume", http.StatusConflict, "")
	step("pause", http.StatusOK, RolloutPaused)
	step("pause", http.StatusConflict, "")
	step("promote", http.StatusOK, RolloutPaused)
	step("resume", http.StatusOK, RolloutPending)
	step("abort", http.StatusOK, RolloutAborted)
	step("resume", http.StatusConflict, "")
	step("rollback", http.StatusOK, RolloutRolledBack)
	step("abort", http.StatusConflict, "")

	r = e.do("GET", "/v1/rollouts/"+ro.ID, ScopeRead, "")
	require.Equal(t, http.StatusOK, r.status)
	require.NoError(t, json.Unmarshal(r.body, &ro))
	var actions []RolloutAction
	for _, ev := range ro.Events {
		actions = append(actions, ev.Action)
	}
	require.Equal(t, []RolloutAction{"create", "pause", "promote", "resume", "abort", "rollback"}, actions)

	r = e.do("GET", "/v1/rollouts", ScopeRead, "")
	var list RolloutsResult
	require.NoError(t, json.Unmarshal(r.body, &list))
	require.Len(t, list.Rollouts, 1)
	require.Nil(t, list.Rollouts[0].Plan, "the list leaves plans out")

	require.Equal(t, http.StatusNotFound, e.do("GET", "/v1/rollouts/r999", ScopeRead, "").status)
	require.Equal(t, http.StatusNotFound, e.do("POST", "/v1/rollouts/r999/pause", ScopeRollout, "").status)
}

// TestNextIsTotal checks the state machine over every state and action:
// an allowed action leads to a known state, and terminal states refuse
// everything but rollback (from aborted and completed).
func TestNextIsTotal(t *testing.T) {
	states := []RolloutState{RolloutPending, RolloutRunning, RolloutPaused, RolloutAborted, RolloutRolledBack, RolloutCompleted}
	actions := []RolloutAction{ActionPause, ActionResume, ActionAbort, ActionRollback, ActionPromote}
	for _, s := range states {
		for _, a := range actions {
			next, err := Next(s, RolloutRunning, a)
			if err != nil {
				require.Contains(t, err.Error(), string(a))
				continue
			}
			require.Contains(t, states, next, "%s --%s--> %s", s, a, next)
			require.NotEqual(t, RolloutRolledBack, s, "rolled-back is final")
		}
	}
	_, err := Next(RolloutPaused, "", "explode")
	require.Error(t, err)
}

func TestNotConfigured501(t *testing.T) {
	e := newTestEnv(t, 20, func(c *Config) { c.Overrides = nil })
	for _, p := range []struct{ method, path string }{
		{"GET", "/v1/overrides"}, {"POST", "/v1/rollouts/plan"}, {"GET", "/v1/formulas/resolve?role=edge&release_state=ga"},
	} {
		r := e.do(p.method, p.path, ScopeAdmin, "x")
		require.Equal(t, http.StatusNotImplemented, r.status, p.path)
		require.Equal(t, CodeNotConfigured, r.apiError(t).Code)
	}
}

func TestReadyzFollowsTheUpdater(t *testing.T) {
	u := &fakeUpdater{}
	e := newTestEnv(t, 20, func(c *Config) { c.Updater = u })
	r := e.do("GET", "/readyz", "", "")
	require.Equal(t, http.StatusServiceUnavailable, r.status)
	u.mu.Lock()
	u.ready = true
	u.mu.Unlock()
	require.Equal(t, http.StatusOK, e.do("GET", "/readyz", "", "").status)

	r = e.do("GET", "/v1/sources", ScopeRead, "")
	var st SourcesResult
	require.NoError(t, json.Unmarshal(r.body, &st))
	require.True(t, st.Ready)
	require.Len(t, st.Sources, 1)
	require.Equal(t, "inventory", st.Sources[0].Name)
}

func TestMetrics(t *testing.T) {
	e := newTestEnv(t, 20, func(c *Config) { c.Updater = &fakeUpdater{ready: true} })
	e.do("GET", "/v1/nodes", ScopeRead, "")
	e.do("GET", "/v1/nodes", "", "")
	r := e.do("GET", "/metrics", "", "")
	require.Equal(t, http.StatusOK, r.status)
	body := string(r.body)
	for _, want := range []string{
		`refd_http_request_duration_seconds_count{code="200",method="GET",route="GET /v1/nodes"} 1`,
		`refd_http_request_duration_seconds_count{code="401",method="GET",route="GET /v1/nodes"} 1`,
		fmt.Sprintf("refd_index_version %d", e.ix.Version()),
		"refd_index_nodes 20",
		`refd_source_last_success_timestamp_seconds{source="inventory"} 1.7e+09`,
		"refd_ready 1",
		"go_goroutines",
	} {
		require.Contains(t, body, want)
	}
}

func TestRunServesAndShutsDownGracefully(t *testing.T) {
	e := newTestEnv(t, 50, func(c *Config) { c.Addr = "127.0.0.1:0" })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.srv.Run(ctx) }()
	var addr string
	require.Eventually(t, func() bool {
		if a := e.srv.Addr(); a != nil {
			addr = a.String()
			return true
		}
		return false
	}, 10*time.Second, 5*time.Millisecond)
	res, err := http.Get("http://" + addr + "/healthz")
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	_, err = http.Get("http://" + addr + "/healthz")
	require.Error(t, err, "the listener is closed")
	require.ErrorContains(t, e.srv.Run(context.Background()), "already started", "a Server serves once")
}

// TestAnswersFollowTheIndex checks that repeated queries and aggregates,
// answered from the per-version cache, change as soon as the index does.
func TestAnswersFollowTheIndex(t *testing.T) {
	e := newTestEnv(t, 400)
	metro := e.nodes[0].Metro
	for round := range 3 {
		for range 2 { // the second answer comes from the cache
			r := e.do("GET", "/v1/aggregate?by=health&metro="+metro, ScopeRead, "")
			var got AggregateResult
			require.NoError(t, json.Unmarshal(r.body, &got))
			want, err := e.ix.Snapshot().Aggregate(disposition.MustParseQuery("metro="+metro), "health")
			require.NoError(t, err)
			require.Empty(t, cmp.Diff(want, got.Groups), "round %d", round)

			p := decodePage(t, e.do("GET", "/v1/nodes?fields=id&metro="+metro, ScopeRead, ""))
			wantNodes, err := e.ix.Snapshot().Query(disposition.MustParseQuery("metro=" + metro))
			require.NoError(t, err)
			require.Equal(t, ids(wantNodes), ids(p.Nodes))
		}
		victim := e.ix.Snapshot()
		nodes, _ := victim.Query(disposition.MustParseQuery("metro=" + metro))
		n := nodes[0].Clone()
		n.Health = disposition.HealthDown
		_, err := e.ix.Apply(context.Background(), disposition.Batch{Upserts: []*disposition.Node{n}, Deletes: []string{nodes[1].ID}})
		require.NoError(t, err)
	}
}

func TestRespCacheIsBounded(t *testing.T) {
	var c respCache
	big := make([]byte, respCacheMaxEntry)
	c.put(1, "a", []byte("x"))
	b, ok := c.get(1, "a")
	require.True(t, ok)
	require.Equal(t, "x", string(b))
	_, ok = c.get(2, "a")
	require.False(t, ok, "another version misses")
	c.put(1, "huge", append(big, 'x'))
	_, ok = c.get(1, "huge")
	require.False(t, ok, "answers over the entry limit are not kept")
	for i := range respCacheBytes/respCacheMaxEntry + 2 {
		c.put(1, fmt.Sprint(i), big)
		require.LessOrEqual(t, c.bytes, respCacheBytes)
	}
	c.put(0, "old", []byte("y"))
	_, ok = c.get(0, "old")
	require.False(t, ok, "an older version is not cached over a newer one")
	c.put(3, "b", []byte("z"))
	_, ok = c.get(1, "a")
	require.False(t, ok, "a new version empties the cache")
}

// countingSource is an inventory that counts its fetches.
type countingSource struct {
	obs   []sources.Observation
	calls atomic.Int64
}

func (c *countingSource) Name() string { return "inventory" }

func (c *countingSource) Fetch(context.Context) ([]sources.Observation, error) {
	c.calls.Add(1)
	return c.obs, nil
}

// TestOverrideRefreshesOnlyOverrides: with the aggregator as Updater, an
// override write shows in the node at once, and the other sources are not
// fetched for it.
func TestOverrideRefreshesOnlyOverrides(t *testing.T) {
	f, err := fleet.Generate(fleet.Config{Size: 30, Seed: 3})
	require.NoError(t, err)
	inv := &countingSource{}
	for _, n := range f.Nodes {
		inv.obs = append(inv.obs, *sources.Observe(n.ID).Metro(n.Metro).Role(n.Role).State(n.State).Health(n.Health))
	}
	store, err := OpenStore(filepath.Join(t.TempDir(), "refd.db"))
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	ov, err := overrides.New(t.Context(), overrides.Config{Store: store})
	require.NoError(t, err)
	ix := disposition.NewIndex()
	agg, err := sources.NewAggregator(ix, sources.AggregatorConfig{
		Precedence: map[disposition.Field][]string{disposition.FieldState: {ov.Name()}},
	}, sources.Registered{Source: inv, Authoritative: true, Interval: time.Hour},
		sources.Registered{Source: ov, Interval: time.Hour})
	require.NoError(t, err)
	require.NoError(t, agg.Refresh(t.Context()))
	var _ SourceRefresher = agg

	srv, err := New(Config{Index: ix, Updater: agg, Store: store, Tokens: testTokens(), Overrides: ov})
	require.NoError(t, err)
	e := &testEnv{t: t, ts: httptest.NewServer(srv)}
	defer e.ts.Close()
	before := inv.calls.Load()
	id := f.Nodes[0].ID
	r := e.do("PUT", "/v1/overrides/"+id, ScopeWrite, `{"state":"maintenance","owner":"alice","reason":"INC-2","ttl":"2h"}`)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	n, ok := ix.Snapshot().Get(id)
	require.True(t, ok)
	require.Equal(t, disposition.StateMaintenance, n.State)
	require.Equal(t, ov.Name(), n.Provenance.Of(disposition.FieldState).Source)
	require.Equal(t, before, inv.calls.Load(), "the override write fetched the inventory")
}
