package refd

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/fleetkit/fleetkit/sources/overrides"
	"github.com/fleetkit/fleetkit/trials"
)

// CodeTrialInvalid is the error code of a trial file that does not parse
// or does not fit the fleet (422); its message names the file, line and
// field.
const CodeTrialInvalid = "trial_invalid"

// TrialsResult is the body of GET /v1/trials.
type TrialsResult struct {
	Trials []*TrialRecord `json:"trials"`
}

// TrialApplyResult is the body of POST /v1/trials.
type TrialApplyResult struct {
	Trial *TrialRecord `json:"trial"`
	// Unchanged is true when the same file was already in force: nothing
	// was done.
	Unchanged bool `json:"unchanged"`
	// Plan is what applying did; nil when Unchanged.
	Plan *trials.TrialPlan `json:"plan,omitempty"`
}

// trialExpiryPrincipal is who ends an expired trial.
const trialExpiryPrincipal = "refd-trial-expiry"

func trialReason(name string) string { return "trial " + name }

// parseTrial reads the trial file of a request; ?file= names it in errors.
func parseTrial(r *http.Request) (*trials.Trial, error) {
	body, err := readAll(r)
	if err != nil {
		return nil, err
	}
	if len(body) == 0 {
		return nil, badRequest("", "empty body: want a trial file (YAML)")
	}
	file := r.URL.Query().Get("file")
	if file == "" {
		file = "trial.yaml"
	}
	t, err := trials.Parse(file, body)
	if err != nil {
		return nil, trialErr(err)
	}
	return t, nil
}

// trialErr maps trials errors to API errors.
func trialErr(err error) error {
	var te *trials.Error
	var ce *trials.ConflictError
	switch {
	case errors.As(err, &te):
		return apiErr(http.StatusUnprocessableEntity, CodeTrialInvalid, te.Field, "%v", err)
	case errors.As(err, &ce):
		field := ""
		if len(ce.Conflicts) > 0 {
			field = ce.Conflicts[0].Field
		}
		return apiErr(http.StatusConflict, CodeConflict, field, "%v", err)
	}
	return err
}

// planTrial plans t over the current index against the trials in force.
func (s *Server) planTrial(ctx context.Context, t *trials.Trial) (*trials.TrialPlan, error) {
	all, err := s.cfg.Store.Trials(ctx)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	var active []trials.Active
	for _, rec := range all {
		if rec.inForce(now) {
			active = append(active, trials.Active{Name: rec.Name, Servers: rec.Servers})
		}
	}
	opts := trials.Options{Active: active, Now: now}
	if tf, ok := s.cfg.Formulas.(TrialFormulas); ok {
		opts.Formulas = tf.TrialInput()
	}
	return trials.Plan(ctx, t, s.cfg.Index.Snapshot(), opts)
}

// syncTrialFormulas makes the Formulas serve the release state of every
// trial in force (a no-op when they cannot serve trials). A trial that no
// longer fits the control file (a formula it pins was removed since, say)
// is left out, with its error in dropped, keyed by trial name; err is
// about the store or the stored trials.
func (s *Server) syncTrialFormulas(ctx context.Context) (dropped map[string]error, err error) {
	tf, ok := s.cfg.Formulas.(TrialFormulas)
	if !ok {
		return nil, nil
	}
	all, err := s.cfg.Store.Trials(ctx)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	var ts []*trials.Trial
	for _, rec := range all {
		if !rec.inForce(now) {
			continue
		}
		t, err := trials.Parse(rec.File, []byte(rec.Source))
		if err != nil {
			return nil, fmt.Errorf("trial %s as stored: %w", rec.Name, err)
		}
		ts = append(ts, t)
	}
	if err := tf.SetTrials(ctx, ts); err == nil {
		s.trialsServed.Store(true)
		return nil, nil
	}
	// Serve the trials that fit; SetTrials changes nothing when it fails.
	dropped = map[string]error{}
	var kept []*trials.Trial
	for _, t := range ts {
		if err := tf.SetTrials(ctx, append(slices.Clone(kept), t)); err != nil {
			dropped[t.Name] = err
			continue
		}
		kept = append(kept, t)
	}
	if len(kept) == 0 {
		if err := tf.SetTrials(ctx, nil); err != nil {
			return dropped, err
		}
	}
	s.trialsServed.Store(true)
	return dropped, nil
}

// logTrialFormulas syncs the trials' formula states and logs what failed.
func (s *Server) logTrialFormulas(ctx context.Context) {
	dropped, err := s.syncTrialFormulas(ctx)
	for name, derr := range dropped {
		s.log.ErrorContext(ctx, "the formulas of a trial in force cannot be served", "trial", name, "err", derr)
	}
	if err != nil {
		s.log.ErrorContext(ctx, "serving the formulas of the trials in force", "err", err)
	}
}

// trialFormulasServed syncs the trials' formula states once, before the
// first formulas request of a server started over trials in force; the
// formulas of every other server do not wait on a trial that fails.
func (s *Server) trialFormulasServed(ctx context.Context) {
	if !s.trialsServed.Load() {
		s.logTrialFormulas(ctx)
	}
}

func (s *Server) handleTrialPlan(w http.ResponseWriter, r *http.Request) error {
	if err := s.expireTrials(r); err != nil {
		return err
	}
	t, err := parseTrial(r)
	if err != nil {
		return err
	}
	p, err := s.planTrial(r.Context(), t)
	var ce *trials.ConflictError
	if err != nil && !errors.As(err, &ce) {
		return trialErr(err)
	}
	// A dry run shows the conflicts in the plan rather than failing.
	s.writeJSON(w, r, http.StatusOK, p)
	return nil
}

func (s *Server) handleTrials(w http.ResponseWriter, r *http.Request) error {
	if err := s.expireTrials(r); err != nil {
		return err
	}
	all, err := s.cfg.Store.Trials(r.Context())
	if err != nil {
		return err
	}
	if all == nil {
		all = []*TrialRecord{}
	}
	s.writeJSON(w, r, http.StatusOK, TrialsResult{Trials: all})
	return nil
}

func (s *Server) handleTrial(w http.ResponseWriter, r *http.Request) error {
	if err := s.expireTrials(r); err != nil {
		return err
	}
	name := r.PathValue("name")
	rec, err := s.cfg.Store.Trial(r.Context(), name)
	if errors.Is(err, ErrNotFound) {
		return apiErr(http.StatusNotFound, CodeNotFound, "name", "no trial %q", name)
	}
	if err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusOK, rec)
	return nil
}

func (s *Server) handleApplyTrial(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.Overrides == nil {
		return notConfigured("overrides (trials set release states through them)")
	}
	if err := s.expireTrials(r); err != nil {
		return err
	}
	t, err := parseTrial(r)
	if err != nil {
		return err
	}
	if t.Rollout != nil && s.cfg.Planner == nil {
		return notConfigured("rollout planning (the trial has a rollout)")
	}
	ctx := r.Context()
	p, err := s.planTrial(ctx, t)
	if err != nil {
		return trialErr(err)
	}
	sum := sha256.Sum256(t.Source())
	now := s.cfg.Now().UTC()
	who := Principal(ctx)
	rec := &TrialRecord{
		Name: t.Name, State: TrialApplying, File: t.File, Owner: t.Owner,
		Digest: hex.EncodeToString(sum[:]), Source: string(t.Source()),
		ReleaseState: p.ReleaseState, Servers: p.Servers, Previous: p.Previous,
		RollbackOnEnd: t.RollbackOnEnd, Start: p.Start, Expiry: p.Expiry,
		AppliedBy: who, AppliedAt: now,
	}
	same, err := s.cfg.Store.ReserveTrial(ctx, rec, now)
	var taken *errTrialTaken
	switch {
	case errors.As(err, &taken):
		return apiErr(http.StatusConflict, CodeConflict, "name", "%s: %s", t.File, taken.msg)
	case err != nil:
		return err
	case same != nil:
		s.writeJSON(w, r, http.StatusOK, TrialApplyResult{Trial: same, Unchanged: true})
		return nil
	}
	// The trial's formula state is served before its servers move to it.
	dropped, err := s.syncTrialFormulas(ctx)
	for name, derr := range dropped {
		if name != t.Name {
			s.log.ErrorContext(ctx, "the formulas of a trial in force cannot be served", "trial", name, "err", derr)
		}
	}
	if err == nil {
		err = dropped[t.Name]
	}
	if err != nil {
		s.undoTrial(r, rec)
		return trialErr(err)
	}
	if err := s.setTrialOverrides(ctx, t, rec, who); err != nil {
		s.undoTrial(r, rec)
		return err
	}
	s.refresh(r)
	if p.RolloutSpec != "" {
		var ro Rollout
		q := url.Values{"start": {p.Start.Format(time.RFC3339)}}
		if err := s.subRequest(ctx, r, "POST", "/v1/rollouts", q, nil, []byte(p.RolloutSpec), s.handleCreateRollout, &ro); err != nil {
			s.undoTrial(r, rec)
			return err
		}
		rec.RolloutID = ro.ID
	}
	rec.State = TrialActive
	if err := s.cfg.Store.PutTrial(ctx, rec); err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/trials/"+rec.Name)
	s.writeJSON(w, r, http.StatusCreated, TrialApplyResult{Trial: rec, Plan: p})
	return nil
}

// setTrialOverrides puts each server of the trial in its release state
// through the overrides source, keeping any lifecycle state override the
// server had, and records the overrides it replaces.
func (s *Server) setTrialOverrides(ctx context.Context, t *trials.Trial, rec *TrialRecord, who string) error {
	for _, id := range rec.Servers {
		o := overrides.Override{
			ID: id, ReleaseState: rec.ReleaseState, Owner: t.Owner, Reason: trialReason(t.Name),
			Expires: t.Expiry, SetBy: who,
		}
		if prev, ok := s.cfg.Overrides.Get(id); ok {
			rec.Replaced = append(rec.Replaced, prev)
			o.State = prev.State
		}
		if _, err := s.cfg.Overrides.Set(ctx, o); err != nil {
			var ve *overrides.ValidationError
			if errors.As(err, &ve) {
				field := ve.Field
				if field == "expires" {
					field = "expiry"
				}
				return apiErr(http.StatusUnprocessableEntity, CodeTrialInvalid, field, "%s: server %s: %v", t.File, id, ve.Err)
			}
			return err
		}
	}
	return nil
}

// clearTrialOverrides removes the trial's overrides and restores the
// unexpired ones it replaced.
func (s *Server) clearTrialOverrides(ctx context.Context, rec *TrialRecord) error {
	for _, id := range rec.Servers {
		o, ok := s.cfg.Overrides.Get(id)
		if !ok || o.ReleaseState != rec.ReleaseState || o.Reason != trialReason(rec.Name) {
			continue // expired, or replaced by someone since
		}
		if err := s.cfg.Overrides.Delete(ctx, id); err != nil && !errors.Is(err, overrides.ErrNotFound) {
			return err
		}
	}
	now := s.cfg.Now()
	for _, o := range rec.Replaced {
		if !o.Expires.After(now) {
			continue
		}
		if cur, ok := s.cfg.Overrides.Get(o.ID); ok && cur.Reason != trialReason(rec.Name) {
			continue
		}
		if _, err := s.cfg.Overrides.Set(ctx, o); err != nil {
			return fmt.Errorf("restore override of %s: %w", o.ID, err)
		}
	}
	return nil
}

// undoTrial takes back a trial whose apply failed half way.
func (s *Server) undoTrial(r *http.Request, rec *TrialRecord) {
	ctx := context.WithoutCancel(r.Context())
	if err := s.clearTrialOverrides(ctx, rec); err != nil {
		s.log.ErrorContext(ctx, "undo trial overrides", "trial", rec.Name, "err", err)
	}
	s.refresh(r)
	if err := s.cfg.Store.DeleteTrial(ctx, rec.Name); err != nil {
		s.log.ErrorContext(ctx, "undo trial record", "trial", rec.Name, "err", err)
	}
	s.logTrialFormulas(ctx)
}

func (s *Server) handleEndTrial(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.Overrides == nil {
		return notConfigured("overrides (trials set release states through them)")
	}
	if err := s.expireTrials(r); err != nil {
		return err
	}
	name := r.PathValue("name")
	rec, err := s.cfg.Store.Trial(r.Context(), name)
	if errors.Is(err, ErrNotFound) {
		return apiErr(http.StatusNotFound, CodeNotFound, "name", "no trial %q", name)
	}
	if err != nil {
		return err
	}
	if rec.State != TrialActive {
		return apiErr(http.StatusConflict, CodeConflict, "name", "trial %s is %s", name, rec.State)
	}
	if err := s.endTrial(r, rec, TrialEnded, Principal(r.Context())); err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusOK, rec)
	return nil
}

// endTrial returns the trial's servers to their previous release state,
// rolls its rollout back when the trial says so, and records the end.
func (s *Server) endTrial(r *http.Request, rec *TrialRecord, state TrialState, who string) error {
	ctx := context.WithoutCancel(r.Context())
	if err := s.clearTrialOverrides(ctx, rec); err != nil {
		return err
	}
	s.refresh(r)
	if rec.RollbackOnEnd && rec.RolloutID != "" {
		rctx := context.WithValue(ctx, principalKey{}, who)
		var ro Rollout
		sub := func(w http.ResponseWriter, req *http.Request) error {
			req.SetPathValue("id", rec.RolloutID)
			return s.rolloutAction(ActionRollback)(w, req)
		}
		if err := s.subRequest(rctx, r, "POST", "/v1/rollouts/"+rec.RolloutID+"/rollback", nil, nil, nil, sub, &ro); err != nil {
			rec.EndNote = fmt.Sprintf("rollback of rollout %s refused: %v", rec.RolloutID, err)
		} else {
			rec.EndNote = fmt.Sprintf("rollout %s %s", rec.RolloutID, ro.State)
		}
	}
	rec.State, rec.EndedBy, rec.EndedAt = state, who, s.cfg.Now().UTC()
	if err := s.cfg.Store.PutTrial(ctx, rec); err != nil {
		return err
	}
	// The servers have left the trial's state: stop serving it.
	s.logTrialFormulas(ctx)
	return nil
}

// expireTrials ends the trials whose expiry has passed. Their overrides
// expired by themselves at the same instant, so servers already left the
// trial; this rolls back and records the end, on the next request that
// looks at trials.
func (s *Server) expireTrials(r *http.Request) error {
	all, err := s.cfg.Store.Trials(r.Context())
	if err != nil {
		return err
	}
	now := s.cfg.Now()
	for _, rec := range all {
		if rec.State != TrialActive || rec.Expiry.After(now) {
			continue
		}
		if s.cfg.Overrides == nil {
			continue
		}
		if err := s.endTrial(r, rec, TrialExpired, trialExpiryPrincipal); err != nil {
			return err
		}
		e := AuditEntry{At: now.UTC(), Who: trialExpiryPrincipal, Action: "trial expired", Target: "/v1/trials/" + rec.Name, Status: http.StatusOK}
		if err := s.cfg.Store.AppendAudit(context.WithoutCancel(r.Context()), e); err != nil {
			s.log.Error("audit log write failed", "action", e.Action, "target", e.Target, "err", err)
		}
	}
	return nil
}

// subRequest calls a route handler in-process with the caller's identity,
// so that a trial creates and rolls back rollouts through the very code
// the rollout routes run, and decodes its answer into out.
func (s *Server) subRequest(ctx context.Context, r *http.Request, method, path string, q url.Values, hdr http.Header, body []byte, h func(http.ResponseWriter, *http.Request) error, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.URL.RawQuery = q.Encode()
	req.Header = http.Header{"Content-Type": {"application/yaml"}}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.RemoteAddr = r.RemoteAddr
	cw := &captureWriter{header: http.Header{}}
	if err := h(cw, req); err != nil {
		return err
	}
	if cw.status >= 300 {
		var eb struct {
			Error *APIError `json:"error"`
		}
		if json.Unmarshal(cw.body.Bytes(), &eb) == nil && eb.Error != nil {
			eb.Error.Status = cw.status
			return eb.Error
		}
		return fmt.Errorf("%s %s: status %d", method, path, cw.status)
	}
	return json.Unmarshal(cw.body.Bytes(), out)
}

// captureWriter is the ResponseWriter of a subRequest.
type captureWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *captureWriter) Header() http.Header { return w.header }

func (w *captureWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *captureWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(b)
}
