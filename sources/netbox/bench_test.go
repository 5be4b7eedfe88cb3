package netbox_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/fleetkit/fleetkit/sources/netbox"
	"github.com/fleetkit/fleetkit/testkit/fakes"
)

// BenchmarkFetch reads a 20,000-node fleet from the fake. The baseline
// reads the same pages without decoding them: what the fake and HTTP
// cost, so that full/baseline is the adapter's own share.
func BenchmarkFetch(b *testing.B) {
	f := genFleet(b, 20000)
	fake := fakes.NewNetBox(f, fakes.NetBoxOptions{})
	srv := httptest.NewServer(fake)
	defer srv.Close()
	b.Run("baseline/raw-pages", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, path := range []string{"dcim/sites", "dcim/regions", "dcim/devices", "virtualization/virtual-machines"} {
				for off := 0; ; off += fakes.NetBoxMaxPageSize {
					req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/"+path+"/?limit=1000&offset="+strconv.Itoa(off), nil)
					req.Header.Set("Authorization", "Token "+fakes.DefaultToken)
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if bytes.Contains(body, []byte(`"next":null`)) {
						break
					}
				}
			}
		}
	})
	b.Run("full", func(b *testing.B) {
		s := newSource(b, srv.URL, netbox.Options{})
		b.ReportAllocs()
		for b.Loop() {
			obs, err := s.Fetch(context.Background())
			if err != nil || len(obs) != len(f.Nodes) {
				b.Fatal(err, len(obs))
			}
		}
	})
}
