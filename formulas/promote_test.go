package formulas_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/formulas"
)

func TestPromote(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	ctl := f.control()
	res, err := formulas.ResolveAll(ctx, ctl, formulas.ResolveOptions{Repos: f.repos})
	require.NoError(t, err)
	lock := res.Lock(nil)
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

	promoted, pr, err := formulas.Promote(lock, "trial", "nrt", at, "alice")
	require.NoError(t, err)
	require.NotNil(t, pr)
	require.Equal(t, 1, pr.ID)
	var changes []string
	for _, c := range pr.Changes {
		changes = append(changes, c.Env+"/"+c.Formula+" "+c.New.Ref)
	}
	// dns-nrt has no nginx, so it does not get trial's; its app is the
	// same commit in both states.
	require.Equal(t, []string{"edge-nrt/app main", "edge-nrt/nginx v1.5.0-rc.1"}, changes)
	require.Equal(t, lock, res.Lock(nil), "the input lock is not modified")

	// The promoted lock resolves offline and frozen to trial's commits,
	// because nrt's control file specs did not change.
	got, err := formulas.ResolveAll(ctx, ctl, formulas.ResolveOptions{Lock: promoted, Frozen: true})
	require.NoError(t, err)
	edgeNRT, _ := got.Env("edge-nrt")
	require.Equal(t, []pinned{
		{"nginx", f.c["nginx-1.5.0-rc.1"], "v1.5.0-rc.1", "states.ga.nginx"},
		{"app", f.c["app-main"], "main", "states.nrt.app"},
	}, pinsOf(edgeNRT))
	require.Equal(t, "trial", edgeNRT.Pins[0].PromotedFrom)
	dnsNRT, _ := got.Env("dns-nrt")
	require.Equal(t, f.c["app-3.3.0"], dnsNRT.Pins[0].Commit, "dns-trial's app is nrt's own: nothing to promote")

	// Writing the resolution back as a lock keeps the promotion.
	relock := got.Lock(promoted)
	require.Empty(t, cmp.Diff(promoted, relock))

	// Re-locking keeps the promotion while the control file is unchanged,
	// and drops the promoted pin once nrt asks for something else.
	relocked, _, err := formulas.Relock(ctx, ctl, promoted, formulas.ResolveOptions{Repos: failingRepos{t}})
	require.NoError(t, err)
	require.Empty(t, cmp.Diff(promoted, relocked))
	relocked, _, err = formulas.Relock(ctx, f.control(`app: "~3.3"`, `app: v3.3.0`), promoted, formulas.ResolveOptions{Repos: f.repos})
	require.NoError(t, err)
	require.Equal(t, f.c["app-3.3.0"], relocked.Environments["edge-nrt"].Pins["app"].Commit)
	require.Equal(t, "", relocked.Environments["edge-nrt"].Pins["app"].PromotedFrom)
	require.Equal(t, "trial", relocked.Environments["edge-nrt"].Pins["nginx"].PromotedFrom)
	require.Len(t, relocked.Promotions, 1)

	// Promoting again changes nothing and records nothing.
	again, pr2, err := formulas.Promote(promoted, "trial", "nrt", at, "alice")
	require.NoError(t, err)
	require.Nil(t, pr2)
	require.Len(t, again.Promotions, 1)

	// Roll it back: the lock is the original one plus the history.
	reverted, rv, err := formulas.RevertPromotion(promoted, 1, at.Add(time.Hour), "bob")
	require.NoError(t, err)
	require.Equal(t, 1, rv.RevertOf)
	require.Equal(t, 2, rv.ID)
	require.Equal(t, lock.Environments, reverted.Environments)
	require.Len(t, reverted.Promotions, 2)

	_, _, err = formulas.RevertPromotion(reverted, 1, at, "bob")
	require.ErrorIs(t, err, formulas.ErrPromotion)
	require.ErrorContains(t, err, "already reverted by promotion 2")
	_, _, err = formulas.RevertPromotion(reverted, 2, at, "bob")
	require.ErrorContains(t, err, "it is itself a rollback")
	_, _, err = formulas.RevertPromotion(reverted, 9, at, "bob")
	require.ErrorContains(t, err, "no such promotion")

	// A pin changed after the promotion blocks its rollback.
	edited := promoted.Clone()
	p := edited.Environments["edge-nrt"].Pins["nginx"]
	p.Commit = f.c["nginx-1.4.0"]
	edited.Environments["edge-nrt"].Pins["nginx"] = p
	_, _, err = formulas.RevertPromotion(edited, 1, at, "bob")
	require.ErrorIs(t, err, formulas.ErrPromotion)
	require.ErrorContains(t, err, "edge-nrt formula nginx changed since the promotion")

	// Round trip through the file format keeps the history.
	data, err := promoted.Marshal()
	require.NoError(t, err)
	back, err := formulas.ParseLock("l", data)
	require.NoError(t, err)
	back.File = ""
	require.Empty(t, cmp.Diff(promoted, back))

	_, _, err = formulas.Promote(lock, "trial", "canary", at, "")
	require.ErrorIs(t, err, formulas.ErrUnknownState)
	_, _, err = formulas.Promote(lock, "ga", "ga", at, "")
	require.ErrorIs(t, err, formulas.ErrPromotion)
}
