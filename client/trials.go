package client

import (
	"context"
	"encoding/json"
	"net/url"
	"time"
)

// Trial is an applied trial as refd keeps it.
type Trial struct {
	Name          string            `json:"name"`
	State         string            `json:"state"` // applying, active, ended, expired
	File          string            `json:"file"`
	Owner         string            `json:"owner"`
	Digest        string            `json:"digest"`
	Source        string            `json:"source"`
	ReleaseState  string            `json:"release_state"`
	Servers       []string          `json:"servers"`
	Previous      map[string]string `json:"previous"`
	RolloutID     string            `json:"rollout_id,omitempty"`
	RollbackOnEnd bool              `json:"rollback_on_end,omitempty"`
	Start         time.Time         `json:"start"`
	Expiry        time.Time         `json:"expiry"`
	AppliedBy     string            `json:"applied_by"`
	AppliedAt     time.Time         `json:"applied_at"`
	EndedBy       string            `json:"ended_by,omitempty"`
	EndedAt       time.Time         `json:"ended_at,omitzero"`
	EndNote       string            `json:"end_note,omitempty"`
}

// TrialConflict is one reason a trial is refused, located in its file.
type TrialConflict struct {
	Kind    string   `json:"kind"` // overlap, frozen, too-large, blackout
	File    string   `json:"file"`
	Line    int      `json:"line,omitempty"`
	Field   string   `json:"field"`
	Message string   `json:"message"`
	Servers []string `json:"servers,omitempty"`
	Count   int      `json:"count,omitempty"`
	Trial   string   `json:"trial,omitempty"`
}

// TrialPlan is what applying a trial would do.
type TrialPlan struct {
	Trial        string            `json:"trial"`
	File         string            `json:"file"`
	Owner        string            `json:"owner"`
	ReleaseState string            `json:"release_state"`
	Servers      []string          `json:"servers"`
	Previous     map[string]string `json:"previous"`
	Start        time.Time         `json:"start"`
	Expiry       time.Time         `json:"expiry"`
	RolloutSpec  string            `json:"rollout_spec,omitempty"`
	// Rollout is the rollout plan as package rollout encodes it.
	Rollout json.RawMessage `json:"rollout,omitempty"`
	// Environments are the formula environments the servers move
	// between, when the server has formulas.
	Environments []TrialEnvironment `json:"environments,omitempty"`
	Conflicts    []TrialConflict    `json:"conflicts,omitempty"`
}

// TrialEnvironment is the move of the servers of one role and previous
// release state from their formula environment to the trial's.
type TrialEnvironment struct {
	Role    string `json:"role"`
	From    string `json:"from"`
	Servers int    `json:"servers"`
	// Before is "" when the servers had no environment.
	Before string `json:"before,omitempty"`
	After  string `json:"after"`
	// Formulas are the formulas whose pin changes.
	Formulas []TrialFormulaChange `json:"formulas,omitempty"`
	// Error says why the trial's environment does not resolve.
	Error string `json:"error,omitempty"`
}

// TrialFormulaChange is one formula's pin before and after, each
// "spec@commit", or "" when the environment lacks the formula.
type TrialFormulaChange struct {
	Formula string `json:"formula"`
	From    string `json:"from,omitempty"`
	To      string `json:"to,omitempty"`
}

// TrialApplied is the answer of ApplyTrial.
type TrialApplied struct {
	Trial *Trial `json:"trial"`
	// Unchanged is true when the same file was already in force.
	Unchanged bool       `json:"unchanged"`
	Plan      *TrialPlan `json:"plan,omitempty"`
}

func fileQuery(file string) url.Values {
	if file == "" {
		return nil
	}
	return url.Values{"file": {file}}
}

// PlanTrial plans a trial file (named file in errors) without applying
// it. Conflicts are in the plan; a bad file is an *Error with Code
// "trial_invalid".
func (c *Client) PlanTrial(ctx context.Context, file string, data []byte) (*TrialPlan, error) {
	var p TrialPlan
	if _, err := c.do(ctx, "POST", "/v1/trials/plan", fileQuery(file), data, "application/yaml", nil, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// ApplyTrial applies a trial file. Conflicts are an *Error with Status
// 409; a bad file an *Error with Code "trial_invalid".
func (c *Client) ApplyTrial(ctx context.Context, file string, data []byte) (*TrialApplied, error) {
	var a TrialApplied
	if _, err := c.do(ctx, "POST", "/v1/trials", fileQuery(file), data, "application/yaml", nil, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// Trials lists every trial, in force or ended.
func (c *Client) Trials(ctx context.Context) ([]*Trial, error) {
	var res struct {
		Trials []*Trial `json:"trials"`
	}
	if _, err := c.do(ctx, "GET", "/v1/trials", nil, nil, "", nil, &res); err != nil {
		return nil, err
	}
	return res.Trials, nil
}

// Trial returns one trial.
func (c *Client) Trial(ctx context.Context, name string) (*Trial, error) {
	var t Trial
	if _, err := c.do(ctx, "GET", "/v1/trials/"+url.PathEscape(name), nil, nil, "", nil, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// EndTrial ends a trial: its servers return to their previous release
// state, and its rollout is rolled back when the trial says so.
func (c *Client) EndTrial(ctx context.Context, name string) (*Trial, error) {
	var t Trial
	if _, err := c.do(ctx, "POST", "/v1/trials/"+url.PathEscape(name)+"/end", nil, nil, "", nil, &t); err != nil {
		return nil, err
	}
	return &t, nil
}
