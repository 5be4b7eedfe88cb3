package testkit

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fleetkit/fleetkit/client"
	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/rollout"
	"github.com/fleetkit/fleetkit/testkit/plancheck"
)

// Violation is one broken invariant that a Check function found.
type Violation struct {
	// Rule names the invariant, such as "budget" (a plan), "field" (an
	// index) or "etag" (an API).
	Rule string `json:"rule"`
	// Subject is what breaks it: "wave 3", a node ID, a request.
	Subject string `json:"subject,omitempty"`
	Msg     string `json:"msg"`
}

// String formats the violation as "subject: rule: message".
func (v Violation) String() string {
	if v.Subject == "" {
		return v.Rule + ": " + v.Msg
	}
	return v.Subject + ": " + v.Rule + ": " + v.Msg
}

// report fails t with the violations, at most 20 of them spelt out.
func report(t testing.TB, what string, vs []Violation) {
	t.Helper()
	for i, v := range vs {
		if i == 20 {
			t.Errorf("... and %d more violations", len(vs)-i)
			return
		}
		t.Errorf("%s violates %s", what, v)
	}
}

// CheckPlan checks a rollout plan against the invariants every plan
// promises (package plancheck): every target in exactly one wave or
// skipped with a reason, no failure-domain budget, global cap, exclusion,
// capacity headroom, window or blackout broken, wave sizes following the
// canary and growth policy, waves ordered within the horizon. It
// recomputes everything from spec and snap rather than trusting the
// planner, so users can run it on plans of their own specs and fleets.
func CheckPlan(spec *rollout.Spec, snap *disposition.Snapshot, plan *rollout.Plan) []Violation {
	var out []Violation
	for _, v := range plancheck.Check(spec, snap, plan) {
		subject := ""
		if v.Wave != 0 {
			subject = "wave " + strconv.Itoa(v.Wave)
		}
		out = append(out, Violation{Rule: v.Rule, Subject: subject, Msg: v.Msg})
	}
	return out
}

// VerifyPlan runs CheckPlan and reports every violation as a test error.
func VerifyPlan(t testing.TB, spec *rollout.Spec, snap *disposition.Snapshot, plan *rollout.Plan) {
	t.Helper()
	report(t, "plan", CheckPlan(spec, snap, plan))
}

// SnapshotOf returns a snapshot of an index holding nodes, such as a
// refd's node listing, to plan over or check against.
func SnapshotOf(ctx context.Context, nodes []*disposition.Node) (*disposition.Snapshot, error) {
	ix := disposition.NewIndex()
	if _, err := ix.Apply(ctx, disposition.Batch{Upserts: nodes}); err != nil {
		return nil, err
	}
	return ix.Snapshot(), nil
}

// RefdPlan is a plan made by a refd, with what it was planned over.
type RefdPlan struct {
	Spec *rollout.Spec
	Plan *rollout.Plan
	// Snapshot holds the refd's nodes at the index version planned over.
	Snapshot *disposition.Snapshot
	// IndexVersion is the refd's index version planned over.
	IndexVersion uint64
}

// PlanWithRefd plans spec (YAML or JSON) with the refd behind c (POST
// /v1/rollouts/plan) and fetches the node listing of the same index
// version, so that CheckPlan can check the refd's plan. If the index
// changes in between, it tries again, up to three times.
func PlanWithRefd(ctx context.Context, c *client.Client, spec []byte, start time.Time) (*RefdPlan, error) {
	s, err := rollout.ParseSpec("spec", spec)
	if err != nil {
		return nil, err
	}
	var lastErr error
	for range 3 {
		before, err := c.Nodes(ctx, client.NodesQuery{})
		if err != nil {
			return nil, err
		}
		p, err := c.Plan(ctx, spec, start)
		if err != nil {
			return nil, err
		}
		if p.IndexVersion != before.Version {
			lastErr = fmt.Errorf("index moved from version %d to %d while planning", before.Version, p.IndexVersion)
			continue
		}
		var plan rollout.Plan
		if err := json.Unmarshal(p.Plan, &plan); err != nil {
			return nil, fmt.Errorf("decoding the plan: %w", err)
		}
		snap, err := SnapshotOf(ctx, before.Nodes)
		if err != nil {
			return nil, err
		}
		return &RefdPlan{Spec: s, Plan: &plan, Snapshot: snap, IndexVersion: p.IndexVersion}, nil
	}
	return nil, lastErr
}

// fieldValue formats field f of n for comparison and messages: equal
// values format equally (nil and empty maps too, floats exactly).
func fieldValue(n *disposition.Node, f disposition.Field) string {
	if v, ok := n.Text(f); ok {
		return v
	}
	switch f {
	case disposition.FieldVersions:
		return formatMap(n.Versions)
	case disposition.FieldTraffic:
		return strconv.FormatFloat(n.TrafficGbps, 'g', -1, 64)
	case disposition.FieldCapacity:
		return strconv.FormatFloat(n.CapacityGbps, 'g', -1, 64)
	case disposition.FieldLabels:
		return formatMap(n.Labels)
	}
	return ""
}

func formatMap(m map[string]string) string {
	keys := slices.Sorted(maps.Keys(m))
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Quote(k) + ":" + strconv.Quote(m[k]))
	}
	b.WriteByte('}')
	return b.String()
}
