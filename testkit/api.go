package testkit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// API is a refd REST API for CheckAPI to check.
type API struct {
	// URL is the base URL, such as RefdContainer.URL.
	URL string
	// Token is a bearer token with the read scope (or more).
	Token string
	// ReadToken, if set, is a token with the read scope only, with which
	// CheckAPI also checks that routes needing more answer 403.
	ReadToken string
	// PageSize is the page size of the pagination check; 0 picks one
	// giving about five pages.
	PageSize int
	// HTTPClient sends the requests; nil means one with a 30 s timeout.
	HTTPClient *http.Client
}

// The rules CheckAPI enforces.
const (
	RuleAPIHealth      = "health"       // /healthz and /readyz answer 200
	RuleAPIErrorShape  = "error-shape"  // errors are JSON {"error": {"code", "message", "field"}} with the right code
	RuleAPIAuth        = "auth"         // no or an unknown token: 401 with a Bearer challenge
	RuleAPIScope       = "scope"        // a token without the scope: 403
	RuleAPIMethod      = "method"       // a wrong method: 405 with Allow
	RuleAPIContentType = "content-type" // JSON answers say application/json
	RuleAPIETag        = "etag"         // answers carry an ETag; If-None-Match of it answers 304
	RuleAPIPagination  = "pagination"   // cursor pages cover the listing once, in ID order, and say so
	RuleAPIListing     = "listing"      // the listing, one node and the aggregates agree
)

// ErrAPIMoving is returned by CheckAPI when the index changed under every
// attempt of a check that needs one index version.
var ErrAPIMoving = errors.New("testkit: the index version kept changing during the check")

// apiCheck is one run of CheckAPI.
type apiCheck struct {
	api API
	out []Violation
}

type apiAnswer struct {
	status int
	header http.Header
	body   []byte
}

func (c *apiCheck) bad(rule, subject, format string, args ...any) {
	c.out = append(c.out, Violation{Rule: rule, Subject: subject, Msg: fmt.Sprintf(format, args...)})
}

func (c *apiCheck) do(ctx context.Context, method, path, token string, hdr http.Header) (*apiAnswer, error) {
	var body io.Reader
	if method == http.MethodPost || method == http.MethodPut {
		body = strings.NewReader("{}")
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.api.URL, "/")+path, body)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.api.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 512<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	return &apiAnswer{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// isJSON checks an answer's content type.
func (c *apiCheck) isJSON(subject string, a *apiAnswer) bool {
	mt, _, err := mime.ParseMediaType(a.header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		c.bad(RuleAPIContentType, subject, "Content-Type %q, want application/json", a.header.Get("Content-Type"))
		return false
	}
	return true
}

// expectError checks that a request answers status with the API's error
// body of code, naming field when field is not "".
func (c *apiCheck) expectError(ctx context.Context, rule, method, path, token string, status int, code, field string) (*apiAnswer, error) {
	subject := method + " " + path
	a, err := c.do(ctx, method, path, token, nil)
	if err != nil {
		return nil, err
	}
	if a.status != status {
		c.bad(rule, subject, "status %d, want %d", a.status, status)
		return a, nil
	}
	if !c.isJSON(subject, a) {
		return a, nil
	}
	var eb struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Field   string `json:"field"`
		} `json:"error"`
	}
	switch err := json.Unmarshal(a.body, &eb); {
	case err != nil:
		c.bad(RuleAPIErrorShape, subject, "body is not JSON: %v", err)
	case eb.Error == nil:
		c.bad(RuleAPIErrorShape, subject, `body has no "error" object: %.200s`, a.body)
	case eb.Error.Code != code:
		c.bad(RuleAPIErrorShape, subject, "error code %q, want %q", eb.Error.Code, code)
	case eb.Error.Message == "":
		c.bad(RuleAPIErrorShape, subject, "error has no message")
	case field != "" && eb.Error.Field != field:
		c.bad(RuleAPIErrorShape, subject, "error field %q, want %q", eb.Error.Field, field)
	}
	if a.header.Get("ETag") != "" {
		c.bad(RuleAPIETag, subject, "an error answer carries ETag %s", a.header.Get("ETag"))
	}
	return a, nil
}

// nodesPage is the part of a /v1/nodes answer the checks read.
type nodesPage struct {
	Version    uint64 `json:"version"`
	Count      int    `json:"count"`
	NextCursor string `json:"next_cursor"`
	Nodes      []struct {
		ID         string          `json:"id"`
		Provenance json.RawMessage `json:"provenance"`
	} `json:"nodes"`
}

// getJSON GETs path with the check's token, expects 200 JSON and decodes
// it into out. It reports false (after recording why) when it cannot.
func (c *apiCheck) getJSON(ctx context.Context, rule, path string, out any) (*apiAnswer, bool, error) {
	a, err := c.do(ctx, http.MethodGet, path, c.api.Token, nil)
	if err != nil {
		return nil, false, err
	}
	subject := "GET " + path
	if a.status != http.StatusOK {
		c.bad(rule, subject, "status %d, want 200: %.200s", a.status, a.body)
		return a, false, nil
	}
	if !c.isJSON(subject, a) {
		return a, false, nil
	}
	if err := json.Unmarshal(a.body, out); err != nil {
		c.bad(rule, subject, "decoding the answer: %v", err)
		return a, false, nil
	}
	return a, true, nil
}

// CheckAPI checks that a refd API keeps its contract: health routes;
// errors as JSON {"error": {"code", "message", "field"}} with the
// documented codes for unknown routes and nodes, bad parameters, missing
// and unknown tokens (401 with a Bearer challenge), missing scopes (403,
// with API.ReadToken) and wrong methods (405 with Allow); ETags that a
// conditional request turns into 304; cursor pagination that covers the
// full listing exactly once in ID order; and a listing, a node and the
// aggregates that agree. It reads only, so it can run against any refd,
// including a production one, with a read token.
//
// The error is for a refd that cannot be reached or whose index kept
// changing under the checks that need one version (ErrAPIMoving);
// broken rules are the violations.
func CheckAPI(ctx context.Context, api API) ([]Violation, error) {
	if api.HTTPClient == nil {
		api.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	c := &apiCheck{api: api}
	for _, p := range []string{"/healthz", "/readyz"} {
		a, err := c.do(ctx, http.MethodGet, p, "", nil)
		if err != nil {
			return nil, err
		}
		if a.status != http.StatusOK {
			c.bad(RuleAPIHealth, "GET "+p, "status %d, want 200", a.status)
		}
	}
	steps := []func(context.Context) error{c.checkErrors, c.checkETags, c.checkPagination, c.checkListing}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			return c.out, err
		}
	}
	return c.out, nil
}

// VerifyAPI runs CheckAPI and reports every violation as a test error.
func VerifyAPI(t testing.TB, api API) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	vs, err := CheckAPI(ctx, api)
	if err != nil {
		t.Errorf("testkit: checking the API at %s: %v", api.URL, err)
	}
	report(t, "API", vs)
}

func (c *apiCheck) checkErrors(ctx context.Context) error {
	type errCheck struct {
		rule, method, path, token string
		status                    int
		code, field               string
	}
	tok := c.api.Token
	checks := []errCheck{
		{RuleAPIErrorShape, "GET", "/v1/no-such-route", tok, 404, "not_found", ""},
		{RuleAPIErrorShape, "GET", "/v1/nodes/no-such-node.fleetkit.invalid", tok, 404, "not_found", ""},
		{RuleAPIErrorShape, "GET", "/v1/nodes?limit=0", tok, 400, "bad_request", "limit"},
		{RuleAPIErrorShape, "GET", "/v1/nodes?cursor=not-a-cursor", tok, 400, "bad_request", "cursor"},
		{RuleAPIErrorShape, "GET", "/v1/nodes?no_such_field=1", tok, 400, "invalid_query", "no_such_field"},
		{RuleAPIErrorShape, "GET", "/v1/nodes?fields=no_such_field", tok, 400, "bad_request", "fields"},
		{RuleAPIAuth, "GET", "/v1/nodes?limit=1", "", 401, "unauthorized", ""},
		{RuleAPIAuth, "GET", "/v1/nodes?limit=1", "fleetkit-testkit-not-a-token", 401, "unauthorized", ""},
		{RuleAPIMethod, "DELETE", "/v1/nodes", tok, 405, "method_not_allowed", ""},
	}
	if c.api.ReadToken != "" {
		checks = append(checks,
			errCheck{RuleAPIScope, "POST", "/v1/rollouts", c.api.ReadToken, 403, "forbidden", ""},
			errCheck{RuleAPIScope, "GET", "/v1/audit", c.api.ReadToken, 403, "forbidden", ""},
		)
	}
	for _, ch := range checks {
		a, err := c.expectError(ctx, ch.rule, ch.method, ch.path, ch.token, ch.status, ch.code, ch.field)
		if err != nil {
			return err
		}
		subject := ch.method + " " + ch.path
		switch ch.status {
		case http.StatusUnauthorized:
			if !strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Bearer") {
				c.bad(RuleAPIAuth, subject, "WWW-Authenticate %q, want a Bearer challenge", a.header.Get("WWW-Authenticate"))
			}
		case http.StatusMethodNotAllowed:
			if !strings.Contains(a.header.Get("Allow"), "GET") {
				c.bad(RuleAPIMethod, subject, "Allow %q, want it to list GET", a.header.Get("Allow"))
			}
		}
	}
	return nil
}

// checkETags checks that answers carry an ETag and that If-None-Match of
// it answers 304 without a body, while the index version holds.
func (c *apiCheck) checkETags(ctx context.Context) error {
	for _, path := range []string{"/v1/nodes", "/v1/nodes?limit=3", "/v1/aggregate?by=metro"} {
		ok := false
		for attempt := 0; attempt < 3 && !ok; attempt++ {
			a, err := c.do(ctx, http.MethodGet, path, c.api.Token, nil)
			if err != nil {
				return err
			}
			subject := "GET " + path
			if a.status != http.StatusOK {
				c.bad(RuleAPIETag, subject, "status %d, want 200", a.status)
				break
			}
			etag := a.header.Get("ETag")
			if etag == "" {
				c.bad(RuleAPIETag, subject, "no ETag")
				break
			}
			b, err := c.do(ctx, http.MethodGet, path, c.api.Token, http.Header{"If-None-Match": {etag}})
			if err != nil {
				return err
			}
			if b.status == http.StatusOK && b.header.Get("X-Index-Version") != a.header.Get("X-Index-Version") {
				continue // the index moved: a new ETag is right
			}
			ok = true
			if b.status != http.StatusNotModified {
				c.bad(RuleAPIETag, subject, "If-None-Match: %s answers %d, want 304", etag, b.status)
			} else if len(b.body) != 0 {
				c.bad(RuleAPIETag, subject, "a 304 answer has a body of %d bytes", len(b.body))
			}
			stale, err := c.do(ctx, http.MethodGet, path, c.api.Token, http.Header{"If-None-Match": {`"fleetkit-testkit-stale"`}})
			if err != nil {
				return err
			}
			if stale.status != http.StatusOK {
				c.bad(RuleAPIETag, subject, "an If-None-Match of another ETag answers %d, want 200", stale.status)
			}
		}
		if !ok && !c.failedOn("GET "+path) {
			return fmt.Errorf("%w: ETag of GET %s", ErrAPIMoving, path)
		}
	}
	return nil
}

// failedOn reports whether a violation about subject was recorded.
func (c *apiCheck) failedOn(subject string) bool {
	for _, v := range c.out {
		if v.Subject == subject {
			return true
		}
	}
	return false
}

// checkPagination pages through the listing and compares it with the
// full listing of the same version.
func (c *apiCheck) checkPagination(ctx context.Context) error {
	for range 3 {
		var full nodesPage
		_, ok, err := c.getJSON(ctx, RuleAPIPagination, "/v1/nodes?fields=id", &full)
		if err != nil || !ok {
			return err
		}
		size := c.api.PageSize
		if size <= 0 {
			size = max(1, (len(full.Nodes)+4)/5)
		}
		var ids []string
		cursor, moved := "", false
		for page := 1; ; page++ {
			path := "/v1/nodes?fields=id&limit=" + strconv.Itoa(size)
			if cursor != "" {
				path += "&cursor=" + url.QueryEscape(cursor)
			}
			var p nodesPage
			_, ok, err := c.getJSON(ctx, RuleAPIPagination, path, &p)
			if err != nil || !ok {
				return err
			}
			if p.Version != full.Version {
				moved = true
				break
			}
			subject := fmt.Sprintf("page %d of %d", page, size)
			if p.Count != len(p.Nodes) {
				c.bad(RuleAPIPagination, subject, "count %d, but %d nodes", p.Count, len(p.Nodes))
			}
			if len(p.Nodes) > size {
				c.bad(RuleAPIPagination, subject, "%d nodes, more than the limit", len(p.Nodes))
			}
			if p.NextCursor != "" && len(p.Nodes) < size {
				c.bad(RuleAPIPagination, subject, "a short page (%d nodes) has a next cursor", len(p.Nodes))
			}
			for _, n := range p.Nodes {
				if len(ids) > 0 && n.ID <= ids[len(ids)-1] {
					c.bad(RuleAPIPagination, subject, "node %s comes after %s: pages are not in ID order", n.ID, ids[len(ids)-1])
				}
				ids = append(ids, n.ID)
			}
			if p.NextCursor == "" || page > len(full.Nodes)+1 {
				break
			}
			cursor = p.NextCursor
		}
		if moved {
			continue
		}
		want := make([]string, len(full.Nodes))
		for i, n := range full.Nodes {
			want[i] = n.ID
		}
		if d := diffIDs(want, ids); d != "" {
			c.bad(RuleAPIPagination, "pages", "pages differ from the full listing of version %d: %s", full.Version, d)
		}
		return nil
	}
	return fmt.Errorf("%w: pagination", ErrAPIMoving)
}

// diffIDs describes how got differs from want, or returns "".
func diffIDs(want, got []string) string {
	w := map[string]bool{}
	for _, id := range want {
		w[id] = true
	}
	seen := map[string]bool{}
	var extra, dup []string
	for _, id := range got {
		switch {
		case seen[id]:
			dup = append(dup, id)
		case !w[id]:
			extra = append(extra, id)
		}
		seen[id] = true
	}
	var missing []string
	for _, id := range want {
		if !seen[id] {
			missing = append(missing, id)
		}
	}
	if len(extra)+len(dup)+len(missing) == 0 {
		return ""
	}
	first := func(s []string) []string { return s[:min(len(s), 3)] }
	return fmt.Sprintf("%d missing %v, %d extra %v, %d twice %v",
		len(missing), first(missing), len(extra), first(extra), len(dup), first(dup))
}

// checkListing checks that the listing, one node and the aggregates of
// one version agree.
func (c *apiCheck) checkListing(ctx context.Context) error {
	for range 3 {
		var full struct {
			Version uint64                       `json:"version"`
			Count   int                          `json:"count"`
			Nodes   []map[string]json.RawMessage `json:"nodes"`
		}
		_, ok, err := c.getJSON(ctx, RuleAPIListing, "/v1/nodes", &full)
		if err != nil || !ok {
			return err
		}
		if full.Count != len(full.Nodes) {
			c.bad(RuleAPIListing, "GET /v1/nodes", "count %d, but %d nodes", full.Count, len(full.Nodes))
		}
		for _, n := range full.Nodes {
			if _, ok := n["provenance"]; ok {
				c.bad(RuleAPIListing, "GET /v1/nodes", "node %s has provenance, which the listing leaves out unless asked", n["id"])
				break
			}
		}
		var agg struct {
			Version uint64 `json:"version"`
			Groups  []struct {
				Count int `json:"count"`
			} `json:"groups"`
		}
		if _, ok, err := c.getJSON(ctx, RuleAPIListing, "/v1/aggregate?by=metro", &agg); err != nil || !ok {
			return err
		}
		var one map[string]json.RawMessage
		var path string
		if len(full.Nodes) > 0 {
			listed := full.Nodes[len(full.Nodes)/2]
			var id string
			if err := json.Unmarshal(listed["id"], &id); err != nil {
				c.bad(RuleAPIListing, "GET /v1/nodes", "a node without a string id: %s", listed["id"])
				return nil
			}
			path = "/v1/nodes/" + url.PathEscape(id)
			a, ok, err := c.getJSON(ctx, RuleAPIListing, path, &one)
			if err != nil || !ok {
				return err
			}
			if a.header.Get("X-Index-Version") != strconv.FormatUint(full.Version, 10) {
				continue
			}
			delete(one, "provenance")
			if d := diffJSON(listed, one); d != "" {
				c.bad(RuleAPIListing, "GET "+path, "differs from the listing of the same version: %s", d)
			}
		}
		if agg.Version != full.Version {
			continue
		}
		sum := 0
		for _, g := range agg.Groups {
			sum += g.Count
		}
		if sum != len(full.Nodes) {
			c.bad(RuleAPIListing, "GET /v1/aggregate?by=metro", "groups count %d nodes, the listing of the same version has %d", sum, len(full.Nodes))
		}
		return nil
	}
	return fmt.Errorf("%w: listing and aggregates", ErrAPIMoving)
}

// diffJSON describes how two JSON objects differ by key, or returns "".
func diffJSON(want, got map[string]json.RawMessage) string {
	var diffs []string
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			diffs = append(diffs, k+" missing")
			continue
		}
		var wv, gv any
		if json.Unmarshal(w, &wv) != nil || json.Unmarshal(g, &gv) != nil || !reflect.DeepEqual(wv, gv) {
			diffs = append(diffs, fmt.Sprintf("%s is %s, listed as %s", k, g, w))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, k+" not in the listing")
		}
	}
	slices.Sort(diffs)
	return strings.Join(diffs, "; ")
}
