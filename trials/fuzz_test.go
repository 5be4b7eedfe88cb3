package trials

import (
	"errors"
	"os"
	"testing"

	"github.com/fleetkit/fleetkit/rollout"
)

func FuzzParse(f *testing.F) {
	if b, err := os.ReadFile("testdata/nginx-rc.yaml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("name: x\nowner: me\ntargets: {servers: [a], max: 1}\nexpiry: 2030-01-01\nrollout: {deploy: 5m}\n"))
	f.Add([]byte("{name: x, owner: me, targets: {query: role=edge, max: 2}, expiry: 2030-01-01, rollout: {growth: {steps: [1]}}}"))
	f.Add([]byte("name: x\nrollout: &r\n  deploy: 5m\nstart: *r\n"))
	f.Add([]byte("rollout:\n  é: 1\nname: y\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, err := Parse("f.yaml", data)
		if err != nil {
			var te *Error
			if !errors.As(err, &te) || !errors.Is(err, ErrInvalid) || te.File != "f.yaml" {
				t.Fatalf("error %v (%T) is not an *Error of f.yaml", err, err)
			}
			return
		}
		if !nameRE.MatchString(tr.Name) || tr.Owner == "" || tr.Targets.Max < 1 || tr.Expiry.IsZero() {
			t.Fatalf("accepted an incomplete trial: %+v", tr)
		}
		if tr.Rollout != nil {
			spec, err := tr.RolloutSpec([]string{"a", "b"})
			if err != nil {
				t.Fatalf("RolloutSpec: %v", err)
			}
			if _, err := rollout.ParseSpec("spec", spec); err != nil {
				t.Fatalf("the rollout spec of an accepted trial does not parse: %v\n%s", err, spec)
			}
		}
	})
}
