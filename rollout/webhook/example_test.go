package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/fleetkit/fleetkit/rollout"
	"github.com/fleetkit/fleetkit/rollout/webhook"
)

func ExampleNew() {
	key := []byte("shared secret")

	// The receiving end: check the signature, deploy, answer per server.
	// A real receiver also remembers Idempotency-Key and answers a
	// repeated key with the first call's results.
	receiver := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := webhook.Verify(key, r.Header, body, time.Now(), 5*time.Minute); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var req rollout.DeployRequest
		if err := json.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Printf("deploy %s %s to %v (key %s)\n", req.Component, req.Version, req.Servers, r.Header.Get(webhook.HeaderIdempotencyKey))
		var results []map[string]any
		for _, s := range req.Servers {
			if s == "edge-2" {
				results = append(results, map[string]any{"server": s, "ok": false, "error": "disk full"})
				continue
			}
			results = append(results, map[string]any{"server": s, "ok": true})
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"results": results})
	})
	srv := httptest.NewServer(receiver)
	defer srv.Close()

	d, err := webhook.New(webhook.Config{URL: srv.URL + "/deploy", Secret: key})
	if err != nil {
		panic(err)
	}
	res, err := d.Deploy(context.Background(), rollout.DeployRequest{
		Rollout: "app-1.1", Wave: 1, Attempt: 1, IdempotencyKey: "app-1.1/wave/1/1",
		Component: "app", Version: "1.1", Servers: []string{"edge-1", "edge-2"},
	})
	if err != nil {
		panic(err)
	}
	for _, r := range res {
		if r.OK {
			fmt.Println(r.Server, "deployed")
		} else {
			fmt.Println(r.Server, "failed:", r.Error)
		}
	}
	// Output:
	// deploy app 1.1 to [edge-1 edge-2] (key app-1.1/wave/1/1)
	// edge-1 deployed
	// edge-2 failed: disk full
}
