package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestServesFakesAndExporter(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	listening := make(chan string, 1)
	done := make(chan error, 1)
	var logs bytes.Buffer
	go func() {
		done <- run(ctx, []string{"-size", "40", "-seed", "3", "-start", "2026-03-01T08:00:00Z", "-listen", "127.0.0.1:0"}, &logs, listening)
	}()
	var addr string
	select {
	case addr = <-listening:
	case err := <-done:
		t.Fatalf("exited: %v\n%s", err, logs.String())
	case <-time.After(30 * time.Second):
		t.Fatal("not listening")
	}
	get := func(path string, header ...string) (int, string) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
		require.NoError(t, err)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	code, body := get("/healthz")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "ok\n", body)
	code, body = get("/metrics")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "fleetkit_fake_node_up{")
	code, body = get("/netbox/api/dcim/devices/?limit=1", "Authorization", "Token 0123456789abcdef0123456789abcdef01234567")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `"count":`)
	code, _ = get("/netbox/api/dcim/devices/")
	require.Equal(t, http.StatusForbidden, code)

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("did not stop")
	}
	require.Contains(t, logs.String(), `"start":"2026-03-01T08:00:00Z"`)
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-size", "0"},
		{"-start", "yesterday"},
		{"extra"},
		{"-listen", "256.0.0.1:x"},
		{"-no-such-flag"},
	} {
		var out bytes.Buffer
		err := run(context.Background(), args, &out, nil)
		require.Error(t, err, strings.Join(args, " "))
	}
}
