package httpjson_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/sources"
	"github.com/fleetkit/fleetkit/sources/httpjson"
)

// host is one item of the fake API.
type host struct {
	Name         string            `json:"name"`
	Status       string            `json:"status"`
	Site         map[string]string `json:"site"`
	Rack         *int              `json:"rack"`
	Traffic      *float64          `json:"traffic"`
	CustomFields map[string]any    `json:"custom_fields"`
	Tags         []string          `json:"tags"`
	Software     map[string]string `json:"software,omitempty"`
}

var statuses = []string{"active", "offline", "planned", "active"}

func hosts(n int) []host {
	out := make([]host, n)
	for i := range out {
		h := host{
			Name:         fmt.Sprintf("edge-%03d", i),
			Status:       statuses[i%len(statuses)],
			Site:         map[string]string{"slug": fmt.Sprintf("den%d", i%3), "metro": "DEN"},
			CustomFields: map[string]any{"tier": strconv.Itoa(i % 2), "unused": nil},
			Tags:         []string{"cdn", fmt.Sprint("t", i%5)},
		}
		if i%7 != 0 {
			r, g := i/16, float64(i)/4
			h.Rack, h.Traffic = &r, &g
		}
		if i%2 == 0 {
			h.Software = map[string]string{"app": "3.1." + strconv.Itoa(i%3)}
		}
		out[i] = h
	}
	return out
}

// options maps the fake API's hosts.
func options(url string) httpjson.Options {
	return httpjson.Options{
		URL:   url,
		Items: "results",
		ID:    "name",
		Fields: map[string]string{
			"metro":        "site.metro",
			"site":         "site.slug",
			"rack":         "rack",
			"state":        "status",
			"traffic_gbps": "traffic",
			"label.tier":   "custom_fields.tier",
			"label.first":  "tags.1",
			"versions":     "software",
		},
		Values: map[string]map[string]string{
			"state": {"active": "in-service", "offline": "maintenance", "*": ""},
		},
	}
}

// want is what options(url) must make of hs.
func want(hs []host) []sources.Observation {
	out := make([]sources.Observation, len(hs))
	for i, h := range hs {
		o := sources.Observe(h.Name).Metro(h.Site["metro"]).Site(h.Site["slug"]).
			Label("tier", h.CustomFields["tier"].(string)).Label("first", h.Tags[1])
		switch h.Status {
		case "active":
			o.State(disposition.StateInService)
		case "offline":
			o.State(disposition.StateMaintenance)
		}
		if h.Rack != nil {
			o.Rack(strconv.Itoa(*h.Rack)).Traffic(*h.Traffic)
		}
		if h.Software != nil {
			for k, v := range h.Software {
				o.Version(k, v)
			}
		}
		out[i] = *o
	}
	return out
}

func requireObs(t *testing.T, want, got []sources.Observation) {
	t.Helper()
	require.Empty(t, cmp.Diff(want, got, cmpopts.EquateEmpty()))
}

// nextLinkServer serves hs NetBox-style: ?offset=&limit=, with a next
// link, absolute or relative.
func nextLinkServer(t *testing.T, hs []host, limit int, relative bool) *httptest.Server {
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		off, _ := strconv.Atoi(r.URL.Query().Get("offset"))
		end := min(off+limit, len(hs))
		var next any
		if end < len(hs) {
			link := fmt.Sprintf("/api/hosts/?limit=%d&offset=%d", limit, end)
			if !relative {
				link = srv.URL + link
			}
			next = link
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"count": len(hs), "next": next, "results": hs[min(off, end):end]})
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestNextLink(t *testing.T) {
	hs := hosts(250)
	for _, relative := range []bool{false, true} {
		t.Run(fmt.Sprint("relative=", relative), func(t *testing.T) {
			srv := nextLinkServer(t, hs, 100, relative)
			o := options(srv.URL + "/api/hosts/")
			o.Pagination = httpjson.Pagination{Type: httpjson.NextLink}
			src, err := httpjson.New("cmdb", o)
			require.NoError(t, err)
			got, err := src.Fetch(t.Context())
			require.NoError(t, err)
			requireObs(t, want(hs), got)
		})
	}
}

func TestCursor(t *testing.T) {
	hs := hosts(95)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start, _ := strconv.Atoi(r.URL.Query().Get("after"))
		end := min(start+40, len(hs))
		meta := map[string]any{"next_cursor": nil}
		if end < len(hs) {
			meta["next_cursor"] = strconv.Itoa(end)
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"data": map[string]any{"items": hs[start:end]}, "meta": meta})
	}))
	t.Cleanup(srv.Close)
	o := options(srv.URL)
	o.Items = "data.items"
	o.Pagination = httpjson.Pagination{Type: httpjson.Cursor, Param: "after", Path: "meta.next_cursor"}
	src, err := httpjson.New("cmdb", o)
	require.NoError(t, err)
	got, err := src.Fetch(t.Context())
	require.NoError(t, err)
	requireObs(t, want(hs), got)
}

// pageServer serves hs as a bare array, ?page=N (from start) and
// ?per_page=M.
func pageServer(t *testing.T, hs []host, start int, ignorePage bool) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		page, err := strconv.Atoi(r.URL.Query().Get("page"))
		if err != nil || ignorePage {
			page = start
		}
		per, err := strconv.Atoi(r.URL.Query().Get("per_page"))
		if err != nil {
			per = 30
		}
		off := min((page-start)*per, len(hs))
		_ = json.NewEncoder(w).Encode(hs[off:min(off+per, len(hs))])
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestPageNumbers(t *testing.T) {
	for _, tc := range []struct {
		name  string
		n     int
		start int
		size  int
	}{
		{"short last page", 250, 1, 100},
		{"full last page", 200, 1, 100},
		{"zero based", 130, 0, 50},
		{"no size: until empty", 95, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hs := hosts(tc.n)
			srv := pageServer(t, hs, tc.start, false)
			o := options(srv.URL)
			o.Items = ""
			o.Pagination = httpjson.Pagination{Type: httpjson.Page, Start: &tc.start}
			if tc.size > 0 {
				o.Pagination.SizeParam, o.Pagination.Size = "per_page", tc.size
			}
			src, err := httpjson.New("cmdb", o)
			require.NoError(t, err)
			got, err := src.Fetch(t.Context())
			require.NoError(t, err)
			requireObs(t, want(hs), got)
		})
	}
}

func TestPageLoops(t *testing.T) {
	hs := hosts(30)
	t.Run("next link back to the first page", func(t *testing.T) {
		var srv *httptest.Server
		srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next := srv.URL + "/hosts?offset=10"
			if r.URL.Query().Get("offset") == "10" {
				next = srv.URL + "/hosts"
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"next": next, "results": hs[:10]})
		}))
		t.Cleanup(srv.Close)
		o := options(srv.URL + "/hosts")
		o.Pagination.Type = httpjson.NextLink
		src, err := httpjson.New("cmdb", o)
		require.NoError(t, err)
		_, err = src.Fetch(t.Context())
		require.ErrorIs(t, err, httpjson.ErrPageLoop)
	})
	t.Run("next link to itself", func(t *testing.T) {
		var srv *httptest.Server
		srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_ = json.NewEncoder(w).Encode(map[string]any{"next": srv.URL + "/hosts?offset=1", "results": hs[:1]})
		}))
		t.Cleanup(srv.Close)
		o := options(srv.URL + "/hosts")
		o.Pagination.Type = httpjson.NextLink
		src, err := httpjson.New("cmdb", o)
		require.NoError(t, err)
		_, err = src.Fetch(t.Context())
		require.ErrorIs(t, err, httpjson.ErrPageLoop)
	})
	t.Run("cursor comes back", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			cur := map[string]string{"": "a", "a": "b", "b": "a"}[r.URL.Query().Get("cursor")]
			_ = json.NewEncoder(w).Encode(map[string]any{"results": hs[:3], "next": cur})
		}))
		t.Cleanup(srv.Close)
		o := options(srv.URL)
		o.Pagination = httpjson.Pagination{Type: httpjson.Cursor, Path: "next"}
		src, err := httpjson.New("cmdb", o)
		require.NoError(t, err)
		_, err = src.Fetch(t.Context())
		require.ErrorIs(t, err, httpjson.ErrPageLoop)
	})
	t.Run("page parameter ignored", func(t *testing.T) {
		srv := pageServer(t, hs, 1, true)
		o := options(srv.URL)
		o.Items = ""
		o.Pagination = httpjson.Pagination{Type: httpjson.Page, SizeParam: "per_page", Size: 10}
		src, err := httpjson.New("cmdb", o)
		require.NoError(t, err)
		_, err = src.Fetch(t.Context())
		require.ErrorIs(t, err, httpjson.ErrPageLoop)
	})
	t.Run("max pages", func(t *testing.T) {
		srv := nextLinkServer(t, hosts(50), 10, false)
		o := options(srv.URL + "/api/hosts/")
		o.Pagination.Type = httpjson.NextLink
		o.MaxPages = 4
		src, err := httpjson.New("cmdb", o)
		require.NoError(t, err)
		_, err = src.Fetch(t.Context())
		require.ErrorIs(t, err, httpjson.ErrTooManyPages)
		o.MaxPages = 5
		src, err = httpjson.New("cmdb", o)
		require.NoError(t, err)
		got, err := src.Fetch(t.Context())
		require.NoError(t, err)
		require.Len(t, got, 50)
	})
}

// authServer answers only requests carrying header: value.
func authServer(t *testing.T, header, value string, status int) *httptest.Server {
	hs := hosts(3)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(header) != value {
			w.WriteHeader(status)
			_, _ = w.Write([]byte(`{"detail": "Invalid token."}`))
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"results": hs})
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestAuth(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(secret, []byte("s3cret\n"), 0o600))
	for _, tc := range []struct {
		name   string
		header string
		value  string
		status int
		auth   httpjson.Auth
		ok     bool
	}{
		{"bearer", "Authorization", "Bearer s3cret", 401, httpjson.Auth{Type: httpjson.Bearer, Token: "s3cret"}, true},
		{"bearer from file", "Authorization", "Bearer s3cret", 401, httpjson.Auth{Type: httpjson.Bearer, TokenFile: secret}, true},
		{"netbox scheme", "Authorization", "Token s3cret", 403, httpjson.Auth{Type: httpjson.Bearer, Scheme: "Token", Token: "s3cret"}, true},
		{"header", "X-API-Key", "s3cret", 403, httpjson.Auth{Type: httpjson.Header, Header: "X-API-Key", Token: "s3cret"}, true},
		{"wrong bearer", "Authorization", "Bearer s3cret", 401, httpjson.Auth{Type: httpjson.Bearer, Token: "nope"}, false},
		{"none", "Authorization", "Bearer s3cret", 401, httpjson.Auth{}, false},
		{"wrong header", "X-API-Key", "s3cret", 403, httpjson.Auth{Type: httpjson.Header, Header: "X-Api-Token", Token: "s3cret"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := authServer(t, tc.header, tc.value, tc.status)
			o := options(srv.URL)
			o.Auth = tc.auth
			src, err := httpjson.New("cmdb", o)
			require.NoError(t, err)
			got, err := src.Fetch(t.Context())
			if tc.ok {
				require.NoError(t, err)
				require.Len(t, got, 3)
				return
			}
			require.ErrorIs(t, err, httpjson.ErrUnauthorized)
			var se *httpjson.StatusError
			require.ErrorAs(t, err, &se)
			require.Equal(t, tc.status, se.StatusCode)
			require.Contains(t, err.Error(), "Invalid token.")
		})
	}
	o := options("http://127.0.0.1:1")
	o.Auth = httpjson.Auth{Type: httpjson.Bearer, TokenFile: filepath.Join(dir, "missing")}
	src, err := httpjson.New("cmdb", o)
	require.NoError(t, err)
	_, err = src.Fetch(t.Context())
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestServerErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/503":
			http.Error(w, "upstream database is down", http.StatusServiceUnavailable)
		case "/malformed":
			_, _ = w.Write([]byte("{\"results\": [\n  {\"name\": \"a\",}\n]}"))
		case "/truncated":
			_, _ = w.Write([]byte(`{"results": [{"name": "a"}`))
		case "/html":
			_, _ = w.Write([]byte("<html>login</html>"))
		case "/trailing":
			_, _ = w.Write([]byte(`{"results": []} {}`))
		case "/not-a-list":
			_, _ = w.Write([]byte(`{"results": {"name": "a"}}`))
		case "/no-ids":
			_, _ = w.Write([]byte(`{"results": [{"hostname": "a"}, {"hostname": "b"}]}`))
		case "/bad-value":
			_, _ = w.Write([]byte(`{"results": [{"name": "a", "traffic": -3}]}`))
		case "/object-value":
			_, _ = w.Write([]byte(`{"results": [{"name": "a", "site": {"metro": {"code": "DEN"}}}]}`))
		case "/huge":
			_, _ = w.Write([]byte(`{"results": [` + fmt.Sprintf("%01000d", 0) + `]}`))
		}
	}))
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		path string
		is   error
		want string
	}{
		{"/503", nil, "page 1: GET " + srv.URL + "/503: 503 Service Unavailable: upstream database is down"},
		{"/malformed", httpjson.ErrBadResponse, "malformed JSON at line 2, column 16: invalid character '}'"},
		{"/truncated", httpjson.ErrBadResponse, "malformed JSON at line 1, column 27: unexpected end of JSON"},
		{"/html", httpjson.ErrBadResponse, "malformed JSON at line 1, column 1: invalid character '<'"},
		{"/trailing", httpjson.ErrBadResponse, "data after the JSON document"},
		{"/not-a-list", httpjson.ErrBadResponse, `items "results": not a list`},
		{"/no-ids", httpjson.ErrBadResponse, `id "name": no item has one`},
		{"/bad-value", httpjson.ErrBadResponse, `item 0: "a": fields.traffic_gbps (traffic): -3 is not a non-negative number of Gbps`},
		{"/object-value", httpjson.ErrBadResponse, `item 0: "a": fields.metro (site.metro): want a value, got an object`},
		{"/huge", httpjson.ErrBadResponse, "body larger than 512 bytes"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			o := options(srv.URL + tc.path)
			o.MaxBodyBytes = 512
			src, err := httpjson.New("cmdb", o)
			require.NoError(t, err)
			_, err = src.Fetch(t.Context())
			require.ErrorContains(t, err, tc.want)
			if tc.is != nil {
				require.ErrorIs(t, err, tc.is)
			}
		})
	}
	var se *httpjson.StatusError
	src, err := httpjson.New("cmdb", options(srv.URL+"/503"))
	require.NoError(t, err)
	_, err = src.Fetch(t.Context())
	require.ErrorAs(t, err, &se)
	require.Equal(t, 503, se.StatusCode)
	require.NotErrorIs(t, err, httpjson.ErrUnauthorized)
}

func TestSlowServerHonoursDeadline(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	src, err := httpjson.New("cmdb", options(srv.URL))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err = src.Fetch(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestDuplicatesAcrossPagesKeepTheLast(t *testing.T) {
	// Offset pagination over a list that changes shifts items: one shows
	// up on two pages.
	hs := hosts(4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		page := r.URL.Query().Get("page")
		items := hs[:3]
		if page == "2" {
			moved := hs[2]
			moved.Site = map[string]string{"slug": "nyc1", "metro": "NYC"}
			items = []host{moved, hs[3]}
		}
		if page == "3" {
			items = nil
		}
		_ = json.NewEncoder(w).Encode(items)
	}))
	t.Cleanup(srv.Close)
	o := options(srv.URL)
	o.Items = ""
	o.Pagination.Type = httpjson.Page
	src, err := httpjson.New("cmdb", o)
	require.NoError(t, err)
	got, err := src.Fetch(t.Context())
	require.NoError(t, err)
	require.Len(t, got, 4)
	require.Equal(t, "NYC", got[2].Values.Metro)
}

func TestItemsWithoutIDAreSkipped(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"results": [{"name": null, "status": "active"}, {"name": "a"}, {"name": 42}]}`))
	}))
	t.Cleanup(srv.Close)
	src, err := httpjson.New("cmdb", options(srv.URL))
	require.NoError(t, err)
	got, err := src.Fetch(t.Context())
	require.NoError(t, err)
	require.Len(t, got, 2)
	require.Equal(t, "42", got[1].ID)
}

func TestNewValidates(t *testing.T) {
	base := func() httpjson.Options { return options("https://cmdb.example/api") }
	for _, tc := range []struct {
		name string
		mod  func(*httpjson.Options)
		want string
	}{
		{"no url", func(o *httpjson.Options) { o.URL = "" }, "url: required"},
		{"bad url", func(o *httpjson.Options) { o.URL = "ftp://x" }, `url: "ftp://x" is not an http(s) URL`},
		{"no fields", func(o *httpjson.Options) { o.Fields = nil }, "fields: at least one"},
		{"unknown field", func(o *httpjson.Options) { o.Fields["colour"] = "c" }, `fields.colour: unknown value "colour" for field`},
		{"id field", func(o *httpjson.Options) { o.Fields["id"] = "c" }, `fields.id: "id" is the node ID`},
		{"empty path", func(o *httpjson.Options) { o.Fields["role"] = "" }, "fields.role: empty path"},
		{"values for unmapped", func(o *httpjson.Options) { o.Values["health"] = map[string]string{"ok": "healthy"} }, "values.health: not a key of fields"},
		{"bad mapped value", func(o *httpjson.Options) { o.Values["state"]["active"] = "serving" }, `values.state.active: unknown value "serving" for lifecycle state`},
		{"pagination type", func(o *httpjson.Options) { o.Pagination.Type = "offset" }, `pagination.type: unknown "offset"`},
		{"cursor path", func(o *httpjson.Options) { o.Pagination.Type = httpjson.Cursor }, "pagination.path: required"},
		{"page size", func(o *httpjson.Options) { o.Pagination = httpjson.Pagination{Type: httpjson.Page, Size: 10} }, "size_param and a positive size"},
		{"auth type", func(o *httpjson.Options) { o.Auth.Type = "basic" }, `auth.type: unknown "basic"`},
		{"auth token", func(o *httpjson.Options) { o.Auth.Type = httpjson.Bearer }, "exactly one of token and token_file"},
		{"token without type", func(o *httpjson.Options) { o.Auth.Token = "x" }, "auth.type: required"},
		{"header name", func(o *httpjson.Options) { o.Auth = httpjson.Auth{Type: httpjson.Header, Token: "x"} }, "auth.header: required"},
		{"max pages", func(o *httpjson.Options) { o.MaxPages = -1 }, "max_pages"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := base()
			tc.mod(&o)
			_, err := httpjson.New("cmdb", o)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// TestThroughAggregator configures the source from YAML, as refd does,
// and fetches it into an index.
func TestThroughAggregator(t *testing.T) {
	hs := hosts(120)
	srv := nextLinkServer(t, hs, 50, true)
	cfg, err := sources.ParseConfig("refd.yaml", []byte(`
sources:
  - name: cmdb
    type: httpjson
    authoritative: true
    timeout: 5s
    options:
      url: `+srv.URL+`/api/hosts/
      items: results
      id: name
      fields:
        metro: site.metro
        state: status
        label.tier: custom_fields.tier
      values:
        state: {active: in-service, "*": ""}
      pagination: {type: next_link, path: next}
`))
	require.NoError(t, err)
	regs, err := sources.Build(cfg, sources.Registry{"httpjson": httpjson.Factory})
	require.NoError(t, err)
	ix := disposition.NewIndex()
	agg, err := sources.NewAggregator(ix, cfg.Aggregator, regs...)
	require.NoError(t, err)
	require.NoError(t, agg.Refresh(t.Context()))
	snap := ix.Snapshot()
	require.Equal(t, len(hs), snap.Len())
	groups, err := snap.Aggregate(disposition.MustParseQuery("metro=DEN"), "state")
	require.NoError(t, err)
	active := 0
	for _, h := range hs {
		if h.Status == "active" {
			active++
		}
	}
	require.Equal(t, []disposition.Group{
		{Key: []string{""}, Count: len(hs) - active},
		{Key: []string{"in-service"}, Count: active},
	}, groups)

	cfg.Sources[0].Options.Content[1].Value = "::bad"
	_, err = sources.Build(cfg, sources.Registry{"httpjson": httpjson.Factory})
	require.ErrorContains(t, err, `refd.yaml:8: sources[0].options: url: "::bad" is not an http(s) URL`)
}
