package file_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/sources"
	"github.com/fleetkit/fleetkit/sources/file"
	"github.com/fleetkit/fleetkit/testkit/fleet"
)

// scalarFields are the fields with one value, in column order.
var scalarFields = []disposition.Field{
	disposition.FieldKind, disposition.FieldRegion, disposition.FieldMetro, disposition.FieldSite,
	disposition.FieldCluster, disposition.FieldRack, disposition.FieldTimezone, disposition.FieldRole,
	disposition.FieldPlatform, disposition.FieldState, disposition.FieldReleaseState,
	disposition.FieldHealth, disposition.FieldTraffic, disposition.FieldCapacity,
}

func text(n *disposition.Node, f disposition.Field) string {
	switch f {
	case disposition.FieldKind:
		return n.Kind.String()
	case disposition.FieldState:
		return n.State.String()
	case disposition.FieldHealth:
		return n.Health.String()
	case disposition.FieldTraffic:
		return strconv.FormatFloat(n.TrafficGbps, 'g', -1, 64)
	case disposition.FieldCapacity:
		return strconv.FormatFloat(n.CapacityGbps, 'g', -1, 64)
	}
	return map[disposition.Field]string{
		disposition.FieldRegion: n.Region, disposition.FieldMetro: n.Metro, disposition.FieldSite: n.Site,
		disposition.FieldCluster: n.Cluster, disposition.FieldRack: n.Rack, disposition.FieldTimezone: n.Timezone,
		disposition.FieldRole: n.Role, disposition.FieldPlatform: n.Platform, disposition.FieldReleaseState: n.ReleaseState,
	}[f]
}

// encodeJSON writes observations back as a JSON inventory, known fields
// only.
func encodeJSON(t *testing.T, obs []sources.Observation) []byte {
	out := make([]map[string]any, len(obs))
	for i, o := range obs {
		m := map[string]any{"id": o.ID}
		for _, f := range scalarFields {
			if !o.Known.Has(f) {
				continue
			}
			if f == disposition.FieldTraffic {
				m[f.String()] = o.Values.TrafficGbps
			} else if f == disposition.FieldCapacity {
				m[f.String()] = o.Values.CapacityGbps
			} else {
				m[f.String()] = text(&o.Values, f)
			}
		}
		if o.Known.Has(disposition.FieldLabels) {
			m["labels"] = orEmpty(o.Values.Labels)
		}
		if o.Known.Has(disposition.FieldVersions) {
			m["versions"] = orEmpty(o.Values.Versions)
		}
		out[i] = m
	}
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatalf("encoding: %v", err)
	}
	return b
}

// encodeCSV writes observations back as a CSV inventory.
func encodeCSV(t *testing.T, obs []sources.Observation) []byte {
	labels, versions := map[string]bool{}, map[string]bool{}
	for _, o := range obs {
		for k := range o.Values.Labels {
			labels[k] = true
		}
		for k := range o.Values.Versions {
			versions[k] = true
		}
	}
	lk, vk := slices.Sorted(maps.Keys(labels)), slices.Sorted(maps.Keys(versions))
	header := []string{"id"}
	for _, f := range scalarFields {
		header = append(header, f.String())
	}
	for _, k := range vk {
		header = append(header, "version."+k)
	}
	for _, k := range lk {
		header = append(header, "label."+k)
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write(header)
	for _, o := range obs {
		rec := []string{o.ID}
		for _, f := range scalarFields {
			v := ""
			if o.Known.Has(f) {
				v = text(&o.Values, f)
			}
			rec = append(rec, v)
		}
		for _, k := range vk {
			rec = append(rec, o.Values.Versions[k])
		}
		for _, k := range lk {
			rec = append(rec, o.Values.Labels[k])
		}
		_ = w.Write(rec)
	}
	w.Flush()
	if err := w.Error(); err != nil {
		t.Fatalf("encoding: %v", err)
	}
	return buf.Bytes()
}

// checkParsed checks what every successful parse must hold: unique,
// non-empty IDs and values the index accepts.
func checkParsed(t *testing.T, obs []sources.Observation) {
	seen := map[string]bool{}
	for _, o := range obs {
		if o.ID == "" || seen[o.ID] {
			t.Fatalf("empty or duplicate ID %q", o.ID)
		}
		seen[o.ID] = true
		v := o.Values
		v.ID = o.ID
		if err := v.Validate(); err != nil {
			t.Fatalf("parsed an invalid node: %v", err)
		}
	}
}

func seedFleet(f *testing.F) (csvData, jsonData []byte) {
	fl, err := fleet.Generate(fleet.Config{Size: 12, Seed: 5})
	if err != nil {
		f.Fatal(err)
	}
	var c, j bytes.Buffer
	if err := fl.WriteCSV(&c); err != nil {
		f.Fatal(err)
	}
	if err := fl.WriteJSON(&j); err != nil {
		f.Fatal(err)
	}
	return c.Bytes(), j.Bytes()
}

func FuzzParseCSV(f *testing.F) {
	c, _ := seedFleet(f)
	f.Add(c)
	f.Add([]byte("id,metro,label.tier,version.app,traffic_gbps\na,DEN,1,,2.5\nb,,,3,\n"))
	f.Add([]byte("\ufeffid,health\n\"a,b\",down\n"))
	f.Add([]byte("id\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		obs, err := file.ParseCSV("f.csv", data)
		if err != nil {
			return
		}
		checkParsed(t, obs)
		again, err := file.ParseCSV("f.csv", encodeCSV(t, obs))
		if err != nil {
			t.Fatalf("re-encoded CSV does not parse: %v", err)
		}
		if diff := cmp.Diff(obs, again, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("CSV round trip changed the observations:\n%s", diff)
		}
	})
}

func FuzzParseJSON(f *testing.F) {
	_, j := seedFleet(f)
	f.Add(j)
	f.Add([]byte(`[{"id":"a","labels":{},"health":null,"traffic_gbps":1e2,"provenance":{}}]`))
	f.Add([]byte(`[{"id":"a","versions":{"x":""}},{"id":"b","kind":"vm"}]`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		obs, err := file.ParseJSON("f.json", data)
		if err != nil {
			return
		}
		checkParsed(t, obs)
		again, err := file.ParseJSON("f.json", encodeJSON(t, obs))
		if err != nil {
			t.Fatalf("re-encoded JSON does not parse: %v", err)
		}
		if diff := cmp.Diff(obs, again, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("JSON round trip changed the observations:\n%s", diff)
		}
	})
}

func FuzzParseYAML(f *testing.F) {
	f.Add([]byte("- id: a\n  metro: DEN\n  labels: {x: \"1\"}\n- id: b\n  traffic_gbps: 2\n"))
	f.Add([]byte("- &n {id: a}\n- *n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		obs, err := file.ParseYAML("f.yaml", data)
		if err != nil {
			return
		}
		checkParsed(t, obs)
		// YAML is a superset of JSON: the JSON encoding must parse the same.
		again, err := file.ParseYAML("f.yaml", encodeJSON(t, obs))
		if err != nil {
			t.Fatalf("re-encoded YAML does not parse: %v", err)
		}
		if diff := cmp.Diff(obs, again, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("YAML round trip changed the observations:\n%s", diff)
		}
	})
}

func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
