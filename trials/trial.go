package trials

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/fleetkit/fleetkit/rollout"
)

// ReleaseStatePrefix starts the release state of every trial: a trial
// named nginx-rc puts its servers in release state "trial-nginx-rc".
const ReleaseStatePrefix = "trial-"

// FrozenState is the release state of servers no trial may take.
const FrozenState = "frozen"

// DefaultInherit is the release state a trial's formula versions start
// from when the trial file does not say.
const DefaultInherit = "ga"

// ErrInvalid is wrapped by every *Error: the trial file is malformed or
// does not fit the fleet.
var ErrInvalid = errors.New("invalid trial")

// Error reports a bad trial file, naming the file, line and field.
type Error struct {
	File  string
	Line  int
	Field string // dotted path, e.g. "targets.max" or "rollout.budgets.metro"
	Err   error
}

// Error formats the error as file:line: field: message.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns ErrInvalid and the cause.
func (e *Error) Unwrap() []error { return []error{ErrInvalid, e.Err} }

// Trial is a parsed trial file.
type Trial struct {
	// File is the file name given to Parse; errors and conflicts name it.
	File string `json:"file"`
	// Name identifies the trial; its release state is ReleaseState().
	Name string `json:"name"`
	// Owner is the person or team answerable for the trial.
	Owner string `json:"owner"`
	// Versions are candidate component versions (component -> version).
	// With exactly one and a rollout spec that names no component, the
	// rollout rolls out that component and version.
	Versions map[string]string `json:"versions,omitempty"`
	// Formulas are the trial's formula versions (formula -> version, as a
	// control file writes them), layered over the release state Inherit
	// to make the trial's own release state.
	Formulas map[string]string `json:"formulas,omitempty"`
	// Inherit is the release state the trial's formula versions start
	// from; Parse sets DefaultInherit when the file does not say.
	Inherit string `json:"inherit"`
	// Targets select the servers.
	Targets Targets `json:"targets"`
	// Rollout is the rollout spec, nil when the file has none: then the
	// trial only moves its servers to its release state.
	Rollout *rollout.Spec `json:"rollout,omitempty"`
	// Start is when the trial may start; zero means when applied.
	Start time.Time `json:"start,omitzero"`
	// Expiry is when the trial ends by itself. Required.
	Expiry time.Time `json:"expiry"`
	// RollbackOnEnd rolls the rollout back when the trial ends.
	RollbackOnEnd bool `json:"rollback_on_end,omitempty"`

	source  []byte
	lines   map[string]int // field path -> line
	rollout *yaml.Node     // the rollout mapping, self-contained
}

// Targets select a trial's servers: those in one of Clusters, those named
// in Servers and those matching Query, together at most Max.
type Targets struct {
	Clusters []string `json:"clusters,omitempty"`
	Servers  []string `json:"servers,omitempty"`
	// Query is a disposition query ("metro=DEN role=edge").
	Query string `json:"query,omitempty"`
	// Max is the most servers the trial may take. Required.
	Max int `json:"max"`
}

// ReleaseState returns the release state of the trial's servers,
// ReleaseStatePrefix and the trial's name.
func (t *Trial) ReleaseState() string { return ReleaseStatePrefix + t.Name }

// Source returns the trial file as given to Parse.
func (t *Trial) Source() []byte { return t.source }

// Line returns the line of a field of the trial file ("targets.max",
// "rollout.blackouts[1]"), or 0 when the file does not have it.
func (t *Trial) Line(field string) int { return t.lines[field] }

func (t *Trial) errorf(field, format string, args ...any) *Error {
	return &Error{File: t.File, Line: t.lineOrParent(field), Field: field, Err: fmt.Errorf(format, args...)}
}

// lineOrParent returns the line of field or of its nearest parent.
func (t *Trial) lineOrParent(field string) int {
	for f := field; f != ""; {
		if l := t.lines[f]; l > 0 {
			return l
		}
		i := strings.LastIndexAny(f, ".[")
		if i < 0 {
			break
		}
		f = f[:i]
	}
	return 0
}

// nameRE is what a trial may be called: its release state must be a
// formulas release state name, at most 63 characters.
var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,56}$`)

func fmtTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }
