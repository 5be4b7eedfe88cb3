package netbox

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

func TestCustomFieldRendering(t *testing.T) {
	cases := []struct {
		raw  string
		want string
		ok   bool
	}{
		{`"ga"`, "ga", true},
		{`40`, "40", true},
		{`40.5`, "40.5", true},
		{`true`, "true", true},
		{`null`, "", false},
		{``, "", false},
		{`{"id": 3, "name": "Trial", "slug": "trial"}`, "trial", true},
		{`{"id": 3, "display": "Only display"}`, "Only display", true},
		{`{"id": 3}`, "", false},
		{`["a", 2, null, {"name": "n"}]`, "a,2,n", true},
		{`[]`, "", false},
		{`{"broken": `, "", false},
		{`"unterminated`, "", false},
		{`nul`, "", false},
	}
	for _, tc := range cases {
		got, ok := customField(json.RawMessage(tc.raw))
		if got != tc.want || ok != tc.ok {
			t.Errorf("customField(%s) = %q, %v; want %q, %v", tc.raw, got, ok, tc.want, tc.ok)
		}
	}
}

func FuzzCustomField(f *testing.F) {
	for _, s := range []string{`"x"`, `1e3`, `{"slug":"s"}`, `[1,[2,[3]]]`, `null`, `{`, `"\u00e9"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		v, ok := customField(raw)
		if !ok && v != "" {
			t.Fatalf("absent field with value %q", v)
		}
		if ok && json.Valid(raw) && !utf8.ValidString(v) && utf8.Valid(raw) {
			t.Fatalf("invalid UTF-8 from valid input: %q", v)
		}
	})
}

func FuzzDecodePage(f *testing.F) {
	f.Add([]byte(`{"count":1,"next":null,"results":[{"id":1,"name":"a","status":{"value":"active"},"site":{"id":1,"name":"S","slug":"s"},"custom_fields":{"capacity_gbps":"x"},"tags":[{"name":"k:v"}]}]}`))
	f.Add([]byte(`{"count":0,"results":[]}`))
	src, err := New("nb", Options{URL: "http://nb", Token: "t", Fields: map[string]string{"label.x": "cf.x", "version.v": "tag.t"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var p page[object]
		if json.Unmarshal(body, &p) != nil {
			return
		}
		for i := range p.Results {
			o := &p.Results[i]
			if o.Name == nil || *o.Name == "" {
				continue
			}
			obs, err := src.observe(o, 1, &tree{})
			if err == nil && obs.ID == "" {
				t.Fatal("observation without ID")
			}
		}
	})
}
