package saltdeploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// maxError caps the error text kept for one server.
const maxError = 400

// outcome reads one minion's return of state.apply: OK when every state
// succeeded, else the reason.
func outcome(raw json.RawMessage) (ok bool, reason string) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return false, "unreadable return: " + err.Error()
	}
	switch v := v.(type) {
	case map[string]any:
		return states(v, raw)
	case []any:
		parts := make([]string, 0, len(v))
		for _, e := range v {
			parts = append(parts, text(e))
		}
		return false, clip(strings.Join(parts, "; "))
	case string:
		return false, clip(v)
	}
	return false, "unexpected return: " + clip(string(raw))
}

// states reads a return of state results, keyed
// "<module>_|-<id>_|-<name>_|-<function>".
func states(v map[string]any, raw json.RawMessage) (bool, string) {
	if len(v) == 0 {
		return false, "no states were applied"
	}
	type failure struct {
		run     float64
		key     string
		comment string
	}
	var fails []failure
	for key, sv := range v {
		st, ok := sv.(map[string]any)
		if !ok {
			return false, "unexpected return: " + clip(string(raw))
		}
		switch res := st["result"].(type) {
		case bool:
			if !res {
				n, _ := st["__run_num__"].(json.Number)
				run, _ := n.Float64()
				fails = append(fails, failure{run: run, key: key, comment: text(st["comment"])})
			}
		case nil:
			// test=True: the state would change; nothing failed.
			if _, has := st["result"]; !has {
				return false, "unexpected return: " + clip(string(raw))
			}
		default:
			return false, "unexpected return: " + clip(string(raw))
		}
	}
	if len(fails) == 0 {
		return true, ""
	}
	slices.SortFunc(fails, func(a, b failure) int {
		if a.run != b.run {
			if a.run < b.run {
				return -1
			}
			return 1
		}
		return strings.Compare(a.key, b.key)
	})
	f := fails[0]
	reason := stateName(f.key) + ": " + f.comment
	if len(fails) > 1 {
		reason += fmt.Sprintf(" (and %d more failed states)", len(fails)-1)
	}
	return false, clip(reason)
}

// stateName turns a state key into "pkg.installed app".
func stateName(key string) string {
	p := strings.Split(key, "_|-")
	if len(p) != 4 {
		return key
	}
	return p[0] + "." + p[3] + " " + p[1]
}

// text renders a comment: a string, or a list of them.
func text(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case []any:
		parts := make([]string, 0, len(v))
		for _, e := range v {
			parts = append(parts, text(e))
		}
		return strings.Join(parts, " ")
	case nil:
		return ""
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func clip(s string) string {
	s = strings.TrimSpace(s)
	if len(s) <= maxError {
		return s
	}
	return strings.ToValidUTF8(s[:maxError], "") + "..."
}
