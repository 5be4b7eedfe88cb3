package formulas

import (
	"fmt"
	"time"
)

// Promote copies the locked commits of release state from to release state
// to, role by role, without resolving anything again: each environment of
// to takes, for every formula it has, the commit the same role has in from.
// Formulas only one side has are left alone, because the control file, not
// a promotion, decides which formulas an environment gets. The target pins
// keep their spec, so they stay valid against the control file until it
// changes what to asks for.
//
// It returns the promoted lock (l is not modified) with the promotion
// appended to its history, and the promotion. A promotion that changes
// nothing is not recorded and returns a nil *Promotion.
func Promote(l *Lock, from, to string, at time.Time, by string) (*Lock, *Promotion, error) {
	if from == to {
		return nil, nil, fmt.Errorf("formulas: promote %s -> %s: %w: same release state", from, to, ErrPromotion)
	}
	var haveFrom, haveTo bool
	for _, e := range l.Environments {
		haveFrom = haveFrom || e.State == from
		haveTo = haveTo || e.State == to
	}
	if !haveFrom || !haveTo {
		missing := from
		if haveFrom {
			missing = to
		}
		return nil, nil, fmt.Errorf("formulas: promote %s -> %s: %w: no environment of release state %q in the lock", from, to, ErrUnknownState, missing)
	}
	out := l.Clone()
	pr := Promotion{ID: nextPromotionID(l), From: from, To: to, At: at.UTC(), By: by}
	for _, name := range sortedKeys(out.Environments) {
		dst := out.Environments[name]
		if dst.State != to {
			continue
		}
		src := out.Environments[EnvName(dst.Role, from)]
		if src == nil {
			continue
		}
		for _, f := range sortedKeys(dst.Pins) {
			old := dst.Pins[f]
			sp, ok := src.Pins[f]
			if !ok || (sp.Commit == old.Commit && sp.Repo == old.Repo && sp.Subdir == old.Subdir) {
				continue
			}
			np := old
			np.Repo, np.Subdir, np.Commit, np.Ref, np.PromotedFrom = sp.Repo, sp.Subdir, sp.Commit, sp.Ref, from
			dst.Pins[f] = np
			pr.Changes = append(pr.Changes, PromotionChange{Env: name, Formula: f, Old: old, New: np})
		}
	}
	if len(pr.Changes) == 0 {
		return out, nil, nil
	}
	out.Promotions = append(out.Promotions, pr)
	return out, &pr, nil
}

// RevertPromotion rolls back the promotion with the given id: every pin it
// changed goes back to what it was before. Pins changed since (by a lock
// refresh or a later promotion) make it fail with ErrPromotion rather than
// overwrite newer decisions. The rollback is recorded as a promotion of its
// own with RevertOf set.
func RevertPromotion(l *Lock, id int, at time.Time, by string) (*Lock, *Promotion, error) {
	var orig *Promotion
	for i := range l.Promotions {
		p := &l.Promotions[i]
		if p.RevertOf == id {
			return nil, nil, fmt.Errorf("formulas: revert promotion %d: %w: already reverted by promotion %d", id, ErrPromotion, p.ID)
		}
		if p.ID == id {
			orig = p
		}
	}
	if orig == nil {
		return nil, nil, fmt.Errorf("formulas: revert promotion %d: %w: no such promotion", id, ErrPromotion)
	}
	if orig.RevertOf != 0 {
		return nil, nil, fmt.Errorf("formulas: revert promotion %d: %w: it is itself a rollback", id, ErrPromotion)
	}
	out := l.Clone()
	pr := Promotion{ID: nextPromotionID(l), From: orig.From, To: orig.To, At: at.UTC(), By: by, RevertOf: id}
	for _, c := range orig.Changes {
		e := out.Environments[c.Env]
		var cur LockPin
		var ok bool
		if e != nil {
			cur, ok = e.Pins[c.Formula]
		}
		if !ok || cur != c.New {
			return nil, nil, fmt.Errorf("formulas: revert promotion %d: %w: %s formula %s changed since the promotion", id, ErrPromotion, c.Env, c.Formula)
		}
		e.Pins[c.Formula] = c.Old
		pr.Changes = append(pr.Changes, PromotionChange{Env: c.Env, Formula: c.Formula, Old: c.New, New: c.Old})
	}
	out.Promotions = append(out.Promotions, pr)
	return out, &pr, nil
}

func nextPromotionID(l *Lock) int {
	if n := len(l.Promotions); n > 0 {
		return l.Promotions[n-1].ID + 1
	}
	return 1
}
