package refd

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestOpenAPIMatchesRoutes checks that every route the server serves is
// in the OpenAPI document, with its security, and that the document has
// no operation the server does not serve.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	e := newTestEnv(t, 10)
	r := e.do("GET", "/v1/openapi.json", "", "")
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, OpenAPI(), r.body)

	var doc struct {
		OpenAPI string `json:"openapi"`
		Paths   map[string]map[string]struct {
			Security  *[]map[string][]string `json:"security"`
			Responses map[string]any         `json:"responses"`
		} `json:"paths"`
		Components struct {
			Schemas map[string]any `json:"schemas"`
		} `json:"components"`
	}
	require.NoError(t, json.Unmarshal(r.body, &doc))
	require.True(t, strings.HasPrefix(doc.OpenAPI, "3."))

	served := map[string]route{}
	for _, rt := range e.srv.routes {
		served[strings.ToLower(rt.Method)+" "+rt.Path] = rt
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			key := method + " " + path
			documented[key] = true
			rt, ok := served[key]
			require.True(t, ok, "the document has %s, which the server does not serve", key)
			require.NotEmpty(t, op.Responses, key)
			public := op.Security != nil && len(*op.Security) == 0
			require.Equal(t, rt.Scope == "", public, "%s: public in the document iff the route needs no token", key)
		}
	}
	for key := range served {
		require.True(t, documented[key], "the server serves %s, which the document lacks", key)
	}

	// Every $ref resolves.
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if k == "$ref" {
					ref := x.(string)
					parts := strings.Split(strings.TrimPrefix(ref, "#/"), "/")
					var cur any
					require.NoError(t, json.Unmarshal(r.body, &cur))
					for _, p := range parts {
						m, ok := cur.(map[string]any)
						require.True(t, ok, "dangling $ref %s", ref)
						cur, ok = m[p]
						require.True(t, ok, "dangling $ref %s", ref)
					}
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	var all any
	require.NoError(t, json.Unmarshal(r.body, &all))
	walk(all)
	require.True(t, slices.ContainsFunc([]string{"Error", "Node", "NodesPage"}, func(s string) bool { return doc.Components.Schemas[s] != nil }))
}
