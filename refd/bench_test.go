package refd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/testkit/fleet"
)

// benchServer serves a 20K fleet with Server.Serve on loopback, and the
// encoding/json baseline on a second server; it returns both base URLs.
func benchServer(b *testing.B) (string, string, *disposition.Index, *http.Client) {
	b.Helper()
	f, err := fleet.Generate(fleet.Config{Size: 20_000, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	ix := disposition.NewIndex()
	if _, err := ix.Apply(context.Background(), disposition.Batch{Upserts: f.Nodes}); err != nil {
		b.Fatal(err)
	}
	store, err := OpenStore(filepath.Join(b.TempDir(), "refd.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	srv, err := New(Config{Index: ix, Store: store, Tokens: testTokens()})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	b.Cleanup(func() {
		cancel()
		<-done
	})
	mux := http.NewServeMux()
	// The baseline: encoding/json of the page, per request.
	mux.HandleFunc("GET /baseline/nodes", func(w http.ResponseWriter, r *http.Request) {
		snap := ix.Snapshot()
		nodes, _ := snap.Query(disposition.Query{})
		body, err := json.Marshal(NodesPage{Version: snap.Version(), Count: len(nodes), Nodes: nodes})
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
	base := httptest.NewServer(mux)
	b.Cleanup(base.Close)
	// No transparent decompression: a gzip answer is read as sent.
	// Large read buffers: the client's 4 KB default costs more syscalls
	// than the server spends answering.
	c := &http.Client{Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 4, ReadBufferSize: 1 << 20}}
	return "http://" + ln.Addr().String(), base.URL, ix, c
}

// fetchEach runs b.N sequential GETs, each of a URL no earlier request
// asked for, so that no answer comes from the per-version cache.
func fetchEach(b *testing.B, c *http.Client, url string) {
	b.Helper()
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		i++
		req, err := http.NewRequest("GET", fmt.Sprintf("%s&id!=x%d", url, i), nil)
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+testSecrets[ScopeRead])
		res, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			b.Fatalf("status %d", res.StatusCode)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// fetch runs b.N sequential GETs of path and reports requests per second
// and bytes per answer.
func fetch(b *testing.B, c *http.Client, url string, hdr ...string) {
	b.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testSecrets[ScopeRead])
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	var n int64
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		res, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		m, _ := io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			b.Fatalf("status %d", res.StatusCode)
		}
		n = m
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	b.ReportMetric(float64(n), "bytes/answer")
}

// BenchmarkListing measures GET /v1/nodes of 20K nodes over loopback:
// the per-version cached encoding (plain and gzip) against encoding per
// request with refd's encoder (a query matching every node, which
// bypasses the cache) and with encoding/json (the baseline).
func BenchmarkListing(b *testing.B) {
	url, baseline, _, c := benchServer(b)
	b.Run("cached", func(b *testing.B) { fetch(b, c, url+"/v1/nodes") })
	b.Run("cached-gzip", func(b *testing.B) { fetch(b, c, url+"/v1/nodes", "Accept-Encoding", "gzip") })
	// A term every node matches takes the query path: scan and encode.
	b.Run("uncached", func(b *testing.B) { fetch(b, c, url+"/v1/nodes?id!=none") })
	b.Run("encoding-json", func(b *testing.B) { fetch(b, c, baseline+"/baseline/nodes") })
}

// BenchmarkQuery measures a filtered query and aggregates over 20K nodes
// through net/http: computed for every request (a term that changes each
// time defeats the answer cache), and repeated (answered from the cache
// of the index version).
func BenchmarkQuery(b *testing.B) {
	url, _, ix, c := benchServer(b)
	nodes, _ := ix.Snapshot().Query(disposition.MustParseQuery("role=edge"))
	metro := nodes[len(nodes)/2].Metro
	filtered := url + "/v1/nodes?metro=" + metro + "&role=edge&health!=down"
	agg := url + "/v1/aggregate?by=metro,health&state=in-service"
	aggMetro := url + "/v1/aggregate?by=cluster,health&metro=" + metro
	b.Run("filtered", func(b *testing.B) { fetchEach(b, c, filtered) })
	b.Run("filtered-repeated", func(b *testing.B) { fetch(b, c, filtered) })
	b.Run("aggregate", func(b *testing.B) { fetchEach(b, c, agg) })
	b.Run("aggregate-repeated", func(b *testing.B) { fetch(b, c, agg) })
	b.Run("aggregate-metro", func(b *testing.B) { fetchEach(b, c, aggMetro) })
}
