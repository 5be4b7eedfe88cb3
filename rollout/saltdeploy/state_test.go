package saltdeploy

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestOutcome(t *testing.T) {
	long := strings.Repeat("x", 1000)
	for _, tc := range []struct {
		name   string
		ret    string
		ok     bool
		reason string
	}{
		{"all true", `{"pkg_|-a_|-a_|-installed": {"result": true, "__run_num__": 0}}`, true, ""},
		{"test mode", `{"pkg_|-a_|-a_|-installed": {"result": null, "comment": "would install"}}`, true, ""},
		{"first failure by run order", `{
			"service_|-a_|-a_|-running": {"result": false, "comment": "requisite failed", "__run_num__": 3},
			"cmd_|-migrate_|-./migrate_|-run": {"result": false, "comment": ["exit 1", "see log"], "__run_num__": 1},
			"pkg_|-a_|-a_|-installed": {"result": true, "__run_num__": 0}}`,
			false, "cmd.run migrate: exit 1 see log (and 1 more failed states)"},
		{"render errors", `["Rendering SLS 'base:a' failed", "second"]`, false, "Rendering SLS 'base:a' failed; second"},
		{"a string", `"'state.apply' is not available."`, false, "'state.apply' is not available."},
		{"nothing applied", `{}`, false, "no states were applied"},
		{"not states", `{"a": 1}`, false, `unexpected return: {"a": 1}`},
		{"no result", `{"k": {"comment": "?"}}`, false, `unexpected return: {"k": {"comment": "?"}}`},
		{"odd result", `{"k": {"result": "yes"}}`, false, `unexpected return: {"k": {"result": "yes"}}`},
		{"a bool", `true`, false, "unexpected return: true"},
		{"odd key", `{"weird": {"result": false, "comment": "c"}}`, false, "weird: c"},
		{"long", `"` + long + `"`, false, long[:maxError] + "..."},
	} {
		ok, reason := outcome(json.RawMessage(tc.ret))
		require.Equal(t, tc.ok, ok, tc.name)
		require.Equal(t, tc.reason, reason, tc.name)
	}
}
