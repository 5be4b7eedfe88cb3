package httpjson_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/fleetkit/fleetkit/sources/httpjson"
)

// A CMDB that pages its hosts with a next link and wants a token.
func ExampleNew() {
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Token s3cret" {
			http.Error(w, `{"detail": "Authentication credentials were not provided."}`, http.StatusUnauthorized)
			return
		}
		if r.URL.Query().Get("offset") == "" {
			fmt.Fprintf(w, `{"next": "%s/hosts?offset=1", "results": [
				{"name": "edge-den-1", "status": "active", "site": {"metro": "DEN"}, "cf": {"tier": 1}}]}`, srv.URL)
			return
		}
		fmt.Fprint(w, `{"next": null, "results": [
			{"name": "edge-den-2", "status": "offline", "site": {"metro": "DEN"}, "cf": {"tier": null}}]}`)
	}))
	defer srv.Close()

	src, err := httpjson.New("cmdb", httpjson.Options{
		URL:        srv.URL + "/hosts",
		Items:      "results",
		ID:         "name",
		Fields:     map[string]string{"metro": "site.metro", "state": "status", "label.tier": "cf.tier"},
		Values:     map[string]map[string]string{"state": {"active": "in-service", "offline": "maintenance"}},
		Pagination: httpjson.Pagination{Type: httpjson.NextLink, Path: "next"},
		Auth:       httpjson.Auth{Type: httpjson.Bearer, Scheme: "Token", Token: "s3cret"},
	})
	if err != nil {
		log.Fatal(err)
	}
	obs, err := src.Fetch(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	for _, o := range obs {
		fmt.Println(o.ID, o.Values.Metro, o.Values.State, o.Values.Labels)
	}
	// Output:
	// edge-den-1 DEN in-service map[tier:1]
	// edge-den-2 DEN maintenance map[]
}
