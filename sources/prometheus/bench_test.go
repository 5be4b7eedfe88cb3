package prometheus_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/fleetkit/fleetkit/sources/prometheus"
	"github.com/fleetkit/fleetkit/testkit/fakes"
)

// BenchmarkFetch runs the three queries over a 20,000-node fleet. The
// baseline runs the same queries without decoding the answers.
func BenchmarkFetch(b *testing.B) {
	f := genFleet(b, 20000)
	srv := httptest.NewServer(fakes.NewPrometheus(f))
	defer srv.Close()
	queries := []string{trafficQuery, capacityQuery, upQuery}
	b.Run("baseline/raw-queries", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, q := range queries {
				resp, err := http.Get(srv.URL + "/api/v1/query?" + url.Values{"query": {q}}.Encode())
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
	})
	b.Run("full", func(b *testing.B) {
		s := newSource(b, prometheus.Options{URL: srv.URL, Traffic: trafficQuery, TrafficScale: 1e-9,
			Capacity: capacityQuery, CapacityScale: 1e-9, Up: upQuery})
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Fetch(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
	})
}
