package formulas_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/fleetkit/fleetkit/formulas"
)

var sentinels = []error{
	formulas.ErrSyntax, formulas.ErrDuplicateKey, formulas.ErrUnknownFormula, formulas.ErrUnknownState,
	formulas.ErrUnknownRole, formulas.ErrInheritanceCycle, formulas.ErrEnvCollision, formulas.ErrUnpinned,
}

func FuzzParse(f *testing.F) {
	example, err := os.ReadFile("testdata/control.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(example))
	f.Add(validBase)
	f.Add(strings.Replace(validBase, "inherit: ga", "inherit: trial", 1))
	f.Add("formulas: {a: /r}\nroles: [x]\nstates: {s: &a {a: v1.0.0}, t: *a}\n")
	f.Add("formulas: {a: /r}\nroles: [x]\nstates: {s: {a: {branch: main, unpinned: yes}}}\n")
	f.Add("formulas: {a: /r}\nroles: [x, x-y]\nstates: {y-z: {}, z: {}}\n")
	f.Add("a: &a [*a]\n")
	f.Add("formulas: !!binary aGVsbG8=\n")
	f.Fuzz(func(t *testing.T, src string) {
		ctl, err := formulas.Parse("fuzz.yaml", []byte(src))
		if err != nil {
			var list formulas.ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error is not a non-empty ErrorList: %v", err)
			}
			for _, e := range list {
				if e.File != "fuzz.yaml" || e.Msg == "" || e.Err == nil {
					t.Fatalf("incomplete error %#v", e)
				}
				known := false
				for _, s := range sentinels {
					known = known || errors.Is(e, s)
				}
				if !known {
					t.Fatalf("error %q wraps no sentinel", e)
				}
			}
			return
		}
		// A parsed control file is consistent.
		for _, s := range ctl.States {
			if s.Inherit != "" {
				if _, ok := ctl.State(s.Inherit); !ok {
					t.Fatalf("state %s inherits unknown %s", s.Name, s.Inherit)
				}
			}
			steps := 0
			for cur := s; cur.Inherit != ""; cur, _ = ctl.State(cur.Inherit) {
				if steps++; steps > len(ctl.States) {
					t.Fatalf("inheritance cycle through %s survived parsing", s.Name)
				}
			}
			entries := s.Versions
			for r, es := range s.Roles {
				if !ctl.HasRole(r) {
					t.Fatalf("unknown role %s survived parsing", r)
				}
				entries = append(entries, es...)
			}
			for _, e := range entries {
				if _, ok := ctl.Formula(e.Formula); !ok {
					t.Fatalf("unknown formula %s survived parsing", e.Formula)
				}
				if e.Spec.Kind == formulas.SpecBranch && !e.Spec.Unpinned {
					t.Fatalf("pinned branch survived parsing")
				}
			}
		}
		envs := ctl.Environments()
		seen := map[string]bool{}
		for _, e := range envs {
			if seen[e.Name] {
				t.Fatalf("two environments named %s", e.Name)
			}
			seen[e.Name] = true
		}
		if len(envs) != len(ctl.Roles)*len(ctl.States) {
			t.Fatalf("%d environments for %d roles x %d states", len(envs), len(ctl.Roles), len(ctl.States))
		}
		// Offline resolution fails cleanly, naming lines.
		_, err = formulas.ResolveAll(context.Background(), ctl, formulas.ResolveOptions{})
		if err != nil {
			var list formulas.ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("offline resolution error is not an ErrorList: %v", err)
			}
			for _, e := range list {
				if !errors.Is(e, formulas.ErrOffline) || e.Line == 0 {
					t.Fatalf("unexpected offline error %v", e)
				}
			}
		}
	})
}
