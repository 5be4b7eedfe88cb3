package client

import (
	"context"
	"encoding/json"
	"net/url"
	"time"
)

// Plan is a planned rollout.
type Plan struct {
	Waves        int             `json:"waves"`
	Targets      int             `json:"targets"`
	Skipped      int             `json:"skipped"`
	IndexVersion uint64          `json:"index_version"`
	Plan         json.RawMessage `json:"plan"`
}

// Rollout is a created rollout.
type Rollout struct {
	ID           string          `json:"id"`
	State        string          `json:"state"`
	ResumeTo     string          `json:"resume_to,omitempty"`
	CreatedBy    string          `json:"created_by"`
	CreatedAt    time.Time       `json:"created_at"`
	UpdatedAt    time.Time       `json:"updated_at"`
	Spec         string          `json:"spec"`
	Waves        int             `json:"waves"`
	Targets      int             `json:"targets"`
	Skipped      int             `json:"skipped"`
	WavesDone    int             `json:"waves_done"`
	IndexVersion uint64          `json:"index_version"`
	Plan         json.RawMessage `json:"plan,omitempty"`
	// Reason, PauseCause, the server counts and RunnerSeq are set by a
	// server with a rollout runner: why the rollout is paused, aborted or
	// rolled back; what paused it (operator, budget, deploy, plan); the
	// servers deployed, failed (against the budgets), planned and rolled
	// back; and the last runner event in Events.
	Reason     string         `json:"reason,omitempty"`
	PauseCause string         `json:"pause_cause,omitempty"`
	Deployed   int            `json:"deployed"`
	Failed     int            `json:"failed"`
	Planned    int            `json:"planned"`
	RolledBack int            `json:"rolled_back"`
	RunnerSeq  uint64         `json:"runner_seq,omitempty"`
	Events     []RolloutEvent `json:"events"`
}

// RolloutEvent is one step of a rollout's history: an operator's request,
// or (Who "refd-runner", with Seq) an event of the runner's log.
type RolloutEvent struct {
	At      time.Time `json:"at"`
	Who     string    `json:"who"`
	Action  string    `json:"action"`
	From    string    `json:"from,omitempty"`
	To      string    `json:"to"`
	Seq     uint64    `json:"seq,omitempty"`
	Wave    int       `json:"wave,omitempty"`
	Batch   int       `json:"batch,omitempty"`
	Server  string    `json:"server,omitempty"`
	Servers int       `json:"servers,omitempty"`
	Failed  int       `json:"failed,omitempty"`
	Reason  string    `json:"reason,omitempty"`
	Cause   string    `json:"cause,omitempty"`
	Error   string    `json:"error,omitempty"`
}

// The actions of RolloutAction. Skip and Pin take a server
// (RolloutCommand) and need a server with a rollout runner.
const (
	Pause    = "pause"
	Resume   = "resume"
	Abort    = "abort"
	Rollback = "rollback"
	Promote  = "promote"
	Skip     = "skip"
	Pin      = "pin"
)

// RolloutCommand is the body of a rollout action: the operator's reason,
// recorded in the runner's log, and the server of Skip and Pin.
type RolloutCommand struct {
	Server string `json:"server,omitempty"`
	Reason string `json:"reason,omitempty"`
}

func startQuery(start time.Time) url.Values {
	if start.IsZero() {
		return nil
	}
	return url.Values{"start": {start.UTC().Format(time.RFC3339)}}
}

// Plan plans a rollout spec (YAML or JSON) without creating it. A zero
// start means now.
func (c *Client) Plan(ctx context.Context, spec []byte, start time.Time) (*Plan, error) {
	var p Plan
	if _, err := c.do(ctx, "POST", "/v1/rollouts/plan", startQuery(start), spec, "application/yaml", nil, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// CreateRollout plans a rollout spec and creates the rollout.
func (c *Client) CreateRollout(ctx context.Context, spec []byte, start time.Time) (*Rollout, error) {
	var r Rollout
	if _, err := c.do(ctx, "POST", "/v1/rollouts", startQuery(start), spec, "application/yaml", nil, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Rollout returns one rollout with its plan and events.
func (c *Client) Rollout(ctx context.Context, id string) (*Rollout, error) {
	var r Rollout
	if _, err := c.do(ctx, "GET", "/v1/rollouts/"+url.PathEscape(id), nil, nil, "", nil, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Rollouts returns every rollout, without plans.
func (c *Client) Rollouts(ctx context.Context) ([]*Rollout, error) {
	var res struct {
		Rollouts []*Rollout `json:"rollouts"`
	}
	if _, err := c.do(ctx, "GET", "/v1/rollouts", nil, nil, "", nil, &res); err != nil {
		return nil, err
	}
	return res.Rollouts, nil
}

// RolloutAction applies an action (Pause, Resume, Abort, Rollback,
// Promote) to a rollout and returns it as it is after.
func (c *Client) RolloutAction(ctx context.Context, id, action string) (*Rollout, error) {
	var r Rollout
	if _, err := c.do(ctx, "POST", "/v1/rollouts/"+url.PathEscape(id)+"/"+url.PathEscape(action), nil, nil, "", nil, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// RolloutCommand applies an action with a reason, or Skip or Pin of
// cmd.Server, to a rollout and returns it as it is after.
func (c *Client) RolloutCommand(ctx context.Context, id, action string, cmd RolloutCommand) (*Rollout, error) {
	body, err := json.Marshal(cmd)
	if err != nil {
		return nil, err
	}
	var r Rollout
	if _, err := c.do(ctx, "POST", "/v1/rollouts/"+url.PathEscape(id)+"/"+url.PathEscape(action), nil, body, "application/json", nil, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// SkipServer leaves a server out of the rest of a rollout.
func (c *Client) SkipServer(ctx context.Context, id, server, reason string) (*Rollout, error) {
	return c.RolloutCommand(ctx, id, Skip, RolloutCommand{Server: server, Reason: reason})
}

// PinServer leaves a server out of the rest of a rollout and out of any
// rollback: it keeps the version it has.
func (c *Client) PinServer(ctx context.Context, id, server, reason string) (*Rollout, error) {
	return c.RolloutCommand(ctx, id, Pin, RolloutCommand{Server: server, Reason: reason})
}

// FormulaTarget names what to resolve formulas for: a node, or a role and
// release state.
type FormulaTarget struct {
	Node         string
	Role         string
	ReleaseState string
}

func (t FormulaTarget) values() url.Values {
	v := url.Values{}
	if t.Node != "" {
		v.Set("node", t.Node)
	}
	if t.Role != "" {
		v.Set("role", t.Role)
	}
	if t.ReleaseState != "" {
		v.Set("release_state", t.ReleaseState)
	}
	return v
}

// ResolveFormulas returns the formulas environment of a target, as the
// server encodes it.
func (c *Client) ResolveFormulas(ctx context.Context, t FormulaTarget) (json.RawMessage, error) {
	var out json.RawMessage
	if _, err := c.do(ctx, "GET", "/v1/formulas/resolve", t.values(), nil, "", nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// DiffFormulas compares the server's control file with control and
// returns the changed environments, as the server encodes them.
func (c *Client) DiffFormulas(ctx context.Context, control []byte) (json.RawMessage, error) {
	var out json.RawMessage
	if _, err := c.do(ctx, "POST", "/v1/formulas/diff", nil, control, "application/yaml", nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// BuildFormulas builds the environment of a role and release state, or
// every environment when both are empty.
func (c *Client) BuildFormulas(ctx context.Context, role, releaseState string) (json.RawMessage, error) {
	var out json.RawMessage
	t := FormulaTarget{Role: role, ReleaseState: releaseState}
	if _, err := c.do(ctx, "POST", "/v1/formulas/build", t.values(), nil, "", nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// Override is a manual override of a server's lifecycle or release state.
type Override struct {
	ID           string    `json:"id"`
	State        string    `json:"state,omitempty"`
	ReleaseState string    `json:"release_state,omitempty"`
	Owner        string    `json:"owner"`
	Reason       string    `json:"reason"`
	Expires      time.Time `json:"expires"`
	SetBy        string    `json:"set_by,omitempty"`
	SetAt        time.Time `json:"set_at"`
}

// OverrideRequest sets an override: State and/or ReleaseState, Owner,
// Reason, and Expires or TTL.
type OverrideRequest struct {
	State        string    `json:"state,omitempty"`
	ReleaseState string    `json:"release_state,omitempty"`
	Owner        string    `json:"owner"`
	Reason       string    `json:"reason"`
	Expires      time.Time `json:"expires,omitzero"`
	TTL          string    `json:"ttl,omitempty"`
}

// SetOverride sets the override of a server.
func (c *Client) SetOverride(ctx context.Context, id string, req OverrideRequest) (*Override, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	var o Override
	if _, err := c.do(ctx, "PUT", "/v1/overrides/"+url.PathEscape(id), nil, body, "application/json", nil, &o); err != nil {
		return nil, err
	}
	return &o, nil
}

// DeleteOverride removes the override of a server.
func (c *Client) DeleteOverride(ctx context.Context, id string) error {
	_, err := c.do(ctx, "DELETE", "/v1/overrides/"+url.PathEscape(id), nil, nil, "", nil, nil)
	return err
}

// Overrides returns the unexpired overrides.
func (c *Client) Overrides(ctx context.Context) ([]Override, error) {
	var res struct {
		Overrides []Override `json:"overrides"`
	}
	if _, err := c.do(ctx, "GET", "/v1/overrides", nil, nil, "", nil, &res); err != nil {
		return nil, err
	}
	return res.Overrides, nil
}
