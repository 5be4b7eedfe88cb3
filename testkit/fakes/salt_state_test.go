package fakes_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/testkit/fakes"
)

func TestSaltAsyncStateJobs(t *testing.T) {
	f := genFleet(t, 30)
	fake := fakes.NewSalt(f, fakes.SaltOptions{})
	srv := httptest.NewServer(fake)
	defer srv.Close()

	var up []string
	for _, n := range f.Nodes {
		if n.Health != disposition.HealthDown && len(up) < 4 {
			up = append(up, n.ID)
		}
	}
	require.Len(t, up, 4)
	down := up[3]
	fake.SetStateRun(down, fakes.StateRun{NoReturn: true})

	login := func() string {
		resp, err := http.Post(srv.URL+"/login", "application/json", bytes.NewReader([]byte(`{"username":"fleetkit","password":"fleetkit","eauth":"pam"}`)))
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		return resp.Header.Get("X-Auth-Token")
	}
	tok := login()
	call := func(method, path string, body any) (int, map[string]json.RawMessage) {
		var rd io.Reader
		if body != nil {
			b, err := json.Marshal(body)
			require.NoError(t, err)
			rd = bytes.NewReader(b)
		}
		req, err := http.NewRequest(method, srv.URL+path, rd)
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Auth-Token", tok)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var out map[string]json.RawMessage
		if resp.StatusCode == http.StatusOK {
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
		}
		return resp.StatusCode, out
	}
	ret := func(raw json.RawMessage, v any) {
		var list []json.RawMessage
		require.NoError(t, json.Unmarshal(raw, &list))
		require.Len(t, list, 1)
		require.NoError(t, json.Unmarshal(list[0], v))
	}

	fake.SetStateRun(up[1], fakes.StateRun{Fail: "E: Unable to locate package app"})
	fake.SetReturnAfter(2)
	code, out := call(http.MethodPost, "/", []map[string]any{{
		"client": "local_async", "fun": "state.apply", "tgt": "L@" + up[0] + "," + up[1] + "," + down + " or " + up[2],
		"tgt_type": "compound", "kwarg": map[string]any{"mods": "app", "pillar": map[string]any{"v": "1.1"}},
		"metadata": map[string]any{"key": "k1"},
	}})
	require.Equal(t, http.StatusOK, code)
	var pub struct {
		JID     string   `json:"jid"`
		Minions []string `json:"minions"`
	}
	ret(out["return"], &pub)
	require.Len(t, pub.JID, 20)
	require.ElementsMatch(t, []string{up[0], up[1], up[2], down}, pub.Minions)

	jobs := fake.Jobs()
	require.Len(t, jobs, 1)
	require.Equal(t, "state.apply", jobs[0].Function)
	require.Equal(t, map[string]any{"key": "k1"}, jobs[0].Metadata)

	// The first look finds no returns, the second finds all but the down
	// minion's.
	type state struct {
		Result  bool   `json:"result"`
		Comment string `json:"comment"`
		RunNum  int    `json:"__run_num__"`
	}
	var returns map[string]map[string]state
	code, out = call(http.MethodGet, "/jobs/"+pub.JID, nil)
	require.Equal(t, http.StatusOK, code)
	ret(out["return"], &returns)
	require.Empty(t, returns)
	code, out = call(http.MethodGet, "/jobs/"+pub.JID, nil)
	require.Equal(t, http.StatusOK, code)
	ret(out["return"], &returns)
	require.Len(t, returns, 3)
	require.NotContains(t, returns, down)
	for _, st := range returns[up[0]] {
		require.True(t, st.Result)
	}
	failed := returns[up[1]]["pkg_|-app_|-app_|-installed"]
	require.False(t, failed.Result)
	require.Equal(t, "E: Unable to locate package app", failed.Comment)
	var info struct {
		Minions []string                  `json:"Minions"`
		Result  map[string]map[string]any `json:"Result"`
	}
	ret(out["info"], &info)
	require.ElementsMatch(t, pub.Minions, info.Minions)
	require.EqualValues(t, 2, info.Result[up[1]]["retcode"])

	// The job cache search finds the job by its metadata.
	code, out = call(http.MethodPost, "/", []map[string]any{{"client": "runner", "fun": "jobs.list_jobs", "search_metadata": map[string]any{"key": "k1"}, "search_function": "state.*"}})
	require.Equal(t, http.StatusOK, code)
	var found map[string]map[string]any
	ret(out["return"], &found)
	require.Contains(t, found, pub.JID)
	code, out = call(http.MethodPost, "/", []map[string]any{{"client": "runner", "fun": "jobs.list_jobs", "search_metadata": map[string]any{"key": "k2"}}})
	require.Equal(t, http.StatusOK, code)
	found = nil
	ret(out["return"], &found)
	require.Empty(t, found)

	var lookup map[string]any
	code, out = call(http.MethodPost, "/", []map[string]any{{"client": "runner", "fun": "jobs.lookup_jid", "jid": pub.JID, "missing": true}})
	require.Equal(t, http.StatusOK, code)
	ret(out["return"], &lookup)
	require.Equal(t, "Minion did not return", lookup[down])

	// No minion matched: no job, an empty return.
	code, out = call(http.MethodPost, "/", []map[string]any{{"client": "local_async", "fun": "state.apply", "tgt": "L@nobody", "tgt_type": "compound"}})
	require.Equal(t, http.StatusOK, code)
	var empty map[string]any
	ret(out["return"], &empty)
	require.Empty(t, empty)
	require.Len(t, fake.Jobs(), 1)

	code, _ = call(http.MethodPost, "/", []map[string]any{{"client": "local_async", "fun": "state.apply", "tgt": "L@a and G@os:Debian", "tgt_type": "compound"}})
	require.Equal(t, http.StatusBadRequest, code)

	fake.ExpireTokens()
	code, _ = call(http.MethodGet, "/jobs/"+pub.JID, nil)
	require.Equal(t, http.StatusUnauthorized, code)
}
