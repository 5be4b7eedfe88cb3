package refd

import (
	"context"
	"errors"
	"net/http"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/trials"
)

// Formulas answers the /v1/formulas routes: the seam to package formulas
// (FormulasService adapts a control file and its lock). Results must
// encode as JSON.
type Formulas interface {
	// Resolve returns the environment a role gets in a release state.
	Resolve(ctx context.Context, role, releaseState string) (any, error)
	// Diff compares the served control file with control (the text of
	// another one, named name in errors) and counts the servers of snap
	// each changed environment touches.
	Diff(ctx context.Context, name string, control []byte, snap *disposition.Snapshot) (any, error)
	// Build materialises the environment of a role and release state, or
	// every environment when both are empty.
	Build(ctx context.Context, role, releaseState string) (any, error)
}

// TrialFormulas is implemented by a Formulas that can serve trials'
// release states (FormulasService does). With it, a trial's dry run shows
// the environments its servers move between, a trial whose formula
// overrides do not resolve is refused, and while a trial is in force its
// release state resolves to the trial's formula versions.
type TrialFormulas interface {
	// TrialInput returns the control file the trials are planned against.
	TrialInput() *trials.FormulasInput
	// SetTrials makes the served release states the control file's plus
	// one per trial in ts; on error nothing changes.
	SetTrials(ctx context.Context, ts []*trials.Trial) error
}

// ErrFormulaRequest is wrapped by Formulas errors that are the request's
// fault (unknown role or state, a control file that does not parse); they
// answer 422 with the message, which names the file, line and field.
var ErrFormulaRequest = errors.New("formulas request rejected")

func formulasErr(err error) error {
	if errors.Is(err, ErrFormulaRequest) {
		return apiErr(http.StatusUnprocessableEntity, CodeFormulasFailed, "", "%v", err)
	}
	return err
}

// roleState reads role and release_state, or takes them from node.
func (s *Server) roleState(r *http.Request) (string, string, error) {
	v := r.URL.Query()
	if id := v.Get("node"); id != "" {
		if v.Get("role") != "" || v.Get("release_state") != "" {
			return "", "", badRequest("node", "give node, or role and release_state, not both")
		}
		n, ok := s.cfg.Index.Snapshot().Get(id)
		if !ok {
			return "", "", apiErr(http.StatusNotFound, CodeNotFound, "node", "no node %q", id)
		}
		if n.Role == "" || n.ReleaseState == "" {
			return "", "", apiErr(http.StatusUnprocessableEntity, CodeFormulasFailed, "node", "node %q has no role or release state yet", id)
		}
		return n.Role, n.ReleaseState, nil
	}
	role, state := v.Get("role"), v.Get("release_state")
	switch {
	case role == "":
		return "", "", badRequest("role", "give node, or role and release_state")
	case state == "":
		return "", "", badRequest("release_state", "give node, or role and release_state")
	}
	return role, state, nil
}

func (s *Server) handleFormulasResolve(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.Formulas == nil {
		return notConfigured("formulas")
	}
	role, state, err := s.roleState(r)
	if err != nil {
		return err
	}
	s.trialFormulasServed(r.Context())
	env, err := s.cfg.Formulas.Resolve(r.Context(), role, state)
	if err != nil {
		return formulasErr(err)
	}
	s.writeJSON(w, r, http.StatusOK, env)
	return nil
}

func (s *Server) handleFormulasDiff(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.Formulas == nil {
		return notConfigured("formulas")
	}
	body, err := readAll(r)
	if err != nil {
		return err
	}
	if len(body) == 0 {
		return badRequest("", "empty body: want a formulas control file")
	}
	d, err := s.cfg.Formulas.Diff(r.Context(), "request", body, s.cfg.Index.Snapshot())
	if err != nil {
		return formulasErr(err)
	}
	s.writeJSON(w, r, http.StatusOK, d)
	return nil
}

func (s *Server) handleFormulasBuild(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.Formulas == nil {
		return notConfigured("formulas")
	}
	v := r.URL.Query()
	role, state := v.Get("role"), v.Get("release_state")
	if (role == "") != (state == "") {
		return badRequest("role", "give role and release_state together, or neither to build every environment")
	}
	s.trialFormulasServed(r.Context())
	res, err := s.cfg.Formulas.Build(r.Context(), role, state)
	if err != nil {
		return formulasErr(err)
	}
	s.writeJSON(w, r, http.StatusOK, res)
	return nil
}
