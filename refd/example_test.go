package refd_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/refd"
	"github.com/fleetkit/fleetkit/testkit/fleet"
)

// A refd over an index filled by hand, mounted as an http.Handler. In a
// deployment the index is fed by a sources.Aggregator given as
// Config.Updater, and Run serves it.
func ExampleNew() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "refd-example")
	defer os.RemoveAll(dir)

	f, _ := fleet.Generate(fleet.Config{Size: 200, Seed: 1})
	ix := disposition.NewIndex()
	_, _ = ix.Apply(ctx, disposition.Batch{Upserts: f.Nodes})
	store, err := refd.OpenStore(filepath.Join(dir, "refd.db"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()

	srv, err := refd.New(refd.Config{
		Index: ix,
		Store: store,
		Tokens: []refd.Token{
			{Name: "dashboards", Hash: refd.HashToken("s3cret"), Scopes: []refd.Scope{refd.ScopeRead}},
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()

	req, _ := http.NewRequest("GET", ts.URL+"/v1/aggregate?by=role&state=in-service", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	fmt.Println(res.Status, res.Header.Get("ETag"))
	fmt.Print(string(body[:40]))
	// Output:
	// 200 OK "v1-gqjlsscafccj"
	// {"version":1,"by":["role"],"groups":[{"k
}

// New names the field at fault.
func ExampleNew_invalid() {
	_, err := refd.New(refd.Config{Index: disposition.NewIndex()})
	fmt.Println(err)
	// Output: refd: Config.Store: required
}
