// Package plancheck checks rollout plans against the invariants a plan
// promises, recomputing everything from the spec and the snapshot rather
// than trusting the planner: users call it from their own tests.
//
//	plan, err := rollout.NewPlan(ctx, spec, snap, start)
//	require.NoError(t, err)
//	plancheck.Verify(t, spec, snap, plan) // or: vs := plancheck.Check(spec, snap, plan)
//
// It checks that every target is in exactly one wave or skipped (or
// unschedulable) with a reason and that no other server is scheduled;
// that no wave breaks a failure-domain budget, the global cap, an
// exclusion, a metro's capacity headroom, a window or a blackout; that
// wave sizes follow the canary and growth policy; and that waves are
// ordered, non-overlapping and within the horizon.
package plancheck
