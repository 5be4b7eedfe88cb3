package prometheus

import (
	"math"
	"net/http"
	"testing"
)

func FuzzParseResponse(f *testing.F) {
	for _, s := range []string{
		`{"status":"success","data":{"resultType":"vector","result":[{"metric":{"instance":"a:9100"},"value":[1.5,"3"]}]}}`,
		`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"NaN"]}]}}`,
		`{"status":"error","errorType":"bad_data","error":"x"}`,
		`{"status":"success","data":{"resultType":"scalar","result":[1,"2"]}}`,
		`{"status":"success","data":{"resultType":"vector","result":[{"value":[]}]}}`,
		`[]`, `null`, ``,
	} {
		f.Add(http.StatusOK, []byte(s))
	}
	f.Add(http.StatusBadRequest, []byte(`{"status":"error","errorType":"bad_data","error":"parse error"}`))
	f.Fuzz(func(t *testing.T, code int, body []byte) {
		samples, err := parseResponse(code, body)
		if err != nil {
			if samples != nil {
				t.Fatalf("samples and an error")
			}
			return
		}
		if code != http.StatusOK {
			t.Fatalf("status %d accepted", code)
		}
		for _, s := range samples {
			_ = math.IsNaN(s.Value)
		}
	})
}

func TestParseResponseValues(t *testing.T) {
	samples, err := parseResponse(http.StatusOK, []byte(`{"status":"success","data":{"resultType":"vector","result":[
		{"metric":{"i":"a"},"value":[1,"+Inf"]},{"metric":{"i":"b"},"value":[1,"-1.5e3"]}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(samples) != 2 || !math.IsInf(samples[0].Value, 1) || samples[1].Value != -1500 {
		t.Fatalf("got %+v", samples)
	}
}
