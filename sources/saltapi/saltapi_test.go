package saltapi_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/sources"
	"github.com/fleetkit/fleetkit/sources/saltapi"
	"github.com/fleetkit/fleetkit/testkit/fakes"
	"github.com/fleetkit/fleetkit/testkit/fleet"
)

func genFleet(t testing.TB, size int) *fleet.Fleet {
	t.Helper()
	f, err := fleet.Generate(fleet.Config{Size: size, Seed: 9})
	require.NoError(t, err)
	return f
}

func newSource(t testing.TB, url string, opts saltapi.Options) *saltapi.Source {
	t.Helper()
	opts.URL = url
	if opts.Username == "" {
		opts.Username, opts.Password = fakes.DefaultSaltUser, fakes.DefaultSaltPassword
	}
	s, err := saltapi.New("salt", opts)
	require.NoError(t, err)
	return s
}

func TestFetchMatchesFleet(t *testing.T) {
	f := genFleet(t, 400)
	srv := httptest.NewServer(fakes.NewSalt(f, fakes.SaltOptions{}))
	defer srv.Close()
	for _, mode := range []string{saltapi.ModeLocal, saltapi.ModeCache} {
		t.Run(mode, func(t *testing.T) {
			s := newSource(t, srv.URL, saltapi.Options{Mode: mode, Grains: map[string]string{
				"metro": "fleet:metro", "label.roles": "roles",
			}})
			obs, err := s.Fetch(context.Background())
			require.NoError(t, err)
			got := map[string]sources.Observation{}
			for _, o := range obs {
				got[o.ID] = o
			}
			answering := 0
			for _, n := range f.Nodes {
				o, ok := got[n.ID]
				if mode == saltapi.ModeLocal && n.Health == disposition.HealthDown {
					require.False(t, ok, "down minion %s does not answer", n.ID)
					continue
				}
				answering++
				require.True(t, ok, n.ID)
				want := sources.Observe(n.ID).Role(n.Role).ReleaseState(n.ReleaseState).Platform(n.Platform).
					Kind(n.Kind).Metro(n.Metro).Label("roles", n.Role)
				if diff := cmp.Diff(*want, o); diff != "" {
					t.Fatalf("minion %s (-want +got):\n%s", n.ID, diff)
				}
			}
			require.Len(t, obs, answering)
		})
	}
}

func TestLogsInAgainWhenTokenRefused(t *testing.T) {
	f := genFleet(t, 50)
	fake := fakes.NewSalt(f, fakes.SaltOptions{})
	var logins atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/login" {
			logins.Add(1)
		}
		fake.ServeHTTP(w, r)
	}))
	defer srv.Close()
	s := newSource(t, srv.URL, saltapi.Options{})
	ctx := context.Background()
	_, err := s.Fetch(ctx)
	require.NoError(t, err)
	_, err = s.Fetch(ctx)
	require.NoError(t, err)
	require.Equal(t, int32(1), logins.Load(), "a valid token is reused")

	fake.ExpireTokens()
	obs, err := s.Fetch(ctx)
	require.NoError(t, err)
	require.NotEmpty(t, obs)
	require.Equal(t, int32(2), logins.Load(), "a refused token is replaced")
}

func TestErrors(t *testing.T) {
	f := genFleet(t, 50)
	cases := []struct {
		name     string
		password string
		fault    fakes.Fault
		is       error
		msg      string
	}{
		{name: "bad credentials", password: "nope", is: saltapi.ErrUnauthorized, msg: "saltapi: login: status 401"},
		{name: "login 5xx", fault: fakes.Fault{Path: "/login", Status: 500}, msg: "saltapi: login: status 500"},
		{name: "call 5xx", fault: fakes.Fault{Request: 2, Status: 502}, msg: "saltapi: grains.items: status 502"},
		{name: "malformed grains", fault: fakes.Fault{Request: 2, Malformed: true}, is: saltapi.ErrBadResponse},
		{name: "malformed login", fault: fakes.Fault{Path: "/login", Malformed: true}, is: saltapi.ErrBadResponse, msg: "saltapi: login"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fake := fakes.NewSalt(f, fakes.SaltOptions{})
			if tc.fault != (fakes.Fault{}) {
				fake.Inject(tc.fault)
			}
			srv := httptest.NewServer(fake)
			defer srv.Close()
			opts := saltapi.Options{Username: fakes.DefaultSaltUser, Password: fakes.DefaultSaltPassword}
			if tc.password != "" {
				opts.Password = tc.password
			}
			_, err := newSource(t, srv.URL, opts).Fetch(context.Background())
			require.Error(t, err)
			if tc.is != nil {
				require.ErrorIs(t, err, tc.is)
			}
			require.Contains(t, err.Error(), tc.msg)
		})
	}
	t.Run("still refused after login", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/login" {
				_, _ = io.WriteString(w, `{"return":[{"token":"abc","expire":9999999999.5}]}`)
				return
			}
			http.Error(w, "No permission", http.StatusUnauthorized)
		}))
		defer srv.Close()
		_, err := newSource(t, srv.URL, saltapi.Options{}).Fetch(context.Background())
		require.ErrorIs(t, err, saltapi.ErrUnauthorized)
	})
	t.Run("slow", func(t *testing.T) {
		fake := fakes.NewSalt(f, fakes.SaltOptions{})
		fake.Inject(fakes.Fault{Path: "/login", Latency: time.Hour})
		srv := httptest.NewServer(fake)
		defer srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := newSource(t, srv.URL, saltapi.Options{}).Fetch(ctx)
		require.ErrorIs(t, err, context.DeadlineExceeded)
	})
}

func TestGrainShapes(t *testing.T) {
	body := `{"return": [{
		"m1": {"id": "m1", "os": "Ubuntu", "osrelease": "22.04", "virtual": "VMware", "role": "edge", "num": 3, "flag": true, "nested": {"a": {"b": "deep"}}},
		"m2": false,
		"m3": "Minion did not return. [No response]",
		"m4": {"fqdn": "m4.example", "virtual": "LXC", "release_state": ["canary", "trial"]},
		"m5": {"role": {"not": "text"}}
	}]}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/login" {
			w.Header().Set("X-Auth-Token", "t0k")
			_, _ = io.WriteString(w, `{"return":[{"expire":9999999999}]}`)
			return
		}
		if r.Header.Get("X-Auth-Token") != "t0k" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		_, _ = io.WriteString(w, body)
	}))
	defer srv.Close()
	obs, err := newSource(t, srv.URL, saltapi.Options{Grains: map[string]string{
		"label.num": "num", "label.flag": "flag", "label.deep": "nested:a:b", "label.none": "nested:x",
	}}).Fetch(context.Background())
	require.NoError(t, err)
	require.Len(t, obs, 3, "minions without grains are skipped")
	m1 := obs[0]
	require.Equal(t, "m1", m1.ID)
	require.Equal(t, "ubuntu-22.04", m1.Values.Platform)
	require.Equal(t, disposition.KindVM, m1.Values.Kind)
	require.Equal(t, map[string]string{"num": "3", "flag": "true", "deep": "deep"}, m1.Values.Labels)
	require.Equal(t, disposition.KindContainer, obs[1].Values.Kind)
	require.Equal(t, "canary,trial", obs[1].Values.ReleaseState)
	require.False(t, obs[2].Known.Has(disposition.FieldRole), "a dictionary is not a value")

	obs, err = newSource(t, srv.URL, saltapi.Options{ID: "fqdn"}).Fetch(context.Background())
	require.NoError(t, err)
	require.Len(t, obs, 1, "minions without the ID grain are skipped")
	require.Equal(t, "m4.example", obs[0].ID)
}

func TestNewValidates(t *testing.T) {
	ok := saltapi.Options{URL: "https://salt:8000", Username: "u", Password: "p"}
	cases := []struct {
		field string
		edit  func(*saltapi.Options)
	}{
		{"url", func(o *saltapi.Options) { o.URL = "salt:8000" }},
		{"username", func(o *saltapi.Options) { o.Username = "" }},
		{"mode", func(o *saltapi.Options) { o.Mode = "ssh" }},
		{"target_type", func(o *saltapi.Options) { o.TargetType = "regex" }},
		{"timeout", func(o *saltapi.Options) { o.Timeout = -1 }},
		{"grains", func(o *saltapi.Options) { o.Grains = map[string]string{"colour": "x"} }},
		{"grains", func(o *saltapi.Options) { o.Grains = map[string]string{"role": "@role"} }},
		{"grains", func(o *saltapi.Options) { o.Grains = map[string]string{"role": "a::b"} }},
	}
	for _, tc := range cases {
		o := ok
		tc.edit(&o)
		_, err := saltapi.New("s", o)
		var ce *sources.ConfigError
		require.ErrorAs(t, err, &ce, tc.field)
		require.Equal(t, tc.field, ce.Path, err.Error())
	}
}

func ExampleNew() {
	f, _ := fleet.Generate(fleet.Config{Size: 100, Seed: 1})
	srv := httptest.NewServer(fakes.NewSalt(f, fakes.SaltOptions{}))
	defer srv.Close()

	src, err := saltapi.New("salt", saltapi.Options{
		URL:      srv.URL,
		Username: fakes.DefaultSaltUser,
		Password: fakes.DefaultSaltPassword,
		Mode:     saltapi.ModeCache, // the master's grains cache: every minion
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	obs, err := src.Fetch(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	o := obs[0]
	fmt.Println(len(obs), strings.HasPrefix(o.ID, o.Values.Role+"-"), o.Values.Platform[:7])
	// Output: 100 true debian-
}
