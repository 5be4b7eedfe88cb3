package overrides

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/sources"
)

// DefaultName is the source name of a Source whose Config.Name is empty.
const DefaultName = "overrides"

// ErrNotFound is returned by Delete for a server without an override.
var ErrNotFound = errors.New("overrides: no override for that server")

// ErrInvalid is wrapped by every *ValidationError.
var ErrInvalid = errors.New("invalid override")

// ValidationError reports a bad field of an Override.
type ValidationError struct {
	Field string // JSON name of the field: id, state, release_state, owner, reason, expires
	Err   error
}

// Error implements the error interface.
func (e *ValidationError) Error() string {
	return fmt.Sprintf("overrides: %s: %v", e.Field, e.Err)
}

// Unwrap returns ErrInvalid and the cause.
func (e *ValidationError) Unwrap() []error { return []error{ErrInvalid, e.Err} }

// Override pins a server's lifecycle state, release state or both until it
// expires.
type Override struct {
	// ID is the server (disposition node ID) the override applies to.
	ID string `json:"id"`
	// State, unless StateUnknown, overrides the lifecycle state.
	State disposition.State `json:"state,omitempty"`
	// ReleaseState, unless empty, overrides the release state.
	ReleaseState string `json:"release_state,omitempty"`
	// Owner is the person or team answerable for the override.
	Owner string `json:"owner"`
	// Reason says why, e.g. a ticket.
	Reason string `json:"reason"`
	// Expires is when the override vanishes; it must be in the future
	// when set.
	Expires time.Time `json:"expires"`
	// SetBy is who made the change (an API token name); Set records it
	// as given.
	SetBy string `json:"set_by,omitempty"`
	// SetAt is when the override was set; Set fills it in.
	SetAt time.Time `json:"set_at"`
}

// Store persists overrides across restarts. Implementations must be safe
// for concurrent use.
type Store interface {
	// LoadOverrides returns every stored override, expired ones included.
	LoadOverrides(ctx context.Context) ([]Override, error)
	// PutOverride stores o, replacing any override of the same ID.
	PutOverride(ctx context.Context, o Override) error
	// DeleteOverride removes the override of a server; an absent one is
	// not an error.
	DeleteOverride(ctx context.Context, id string) error
}

// Config configures a Source.
type Config struct {
	// Name is the source name in provenance and precedence; "" means
	// DefaultName.
	Name string
	// Store persists the overrides; nil keeps them in memory only.
	Store Store
	// MaxTTL caps how far in the future Expires may be; 0 means no cap.
	MaxTTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Source holds the current overrides and serves them as observations. It
// is safe for concurrent use.
type Source struct {
	cfg Config
	mu  sync.Mutex
	m   map[string]Override
}

var _ sources.Source = (*Source)(nil)

// New returns a Source holding the overrides cfg.Store has.
func New(ctx context.Context, cfg Config) (*Source, error) {
	if cfg.Name == "" {
		cfg.Name = DefaultName
	}
	if cfg.MaxTTL < 0 {
		return nil, fmt.Errorf("overrides: Config.MaxTTL must not be negative, got %v", cfg.MaxTTL)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Source{cfg: cfg, m: map[string]Override{}}
	if cfg.Store != nil {
		all, err := cfg.Store.LoadOverrides(ctx)
		if err != nil {
			return nil, fmt.Errorf("overrides: load: %w", err)
		}
		for _, o := range all {
			s.m[o.ID] = o
		}
	}
	return s, nil
}

// Name returns the source name.
func (s *Source) Name() string { return s.cfg.Name }

// Fetch returns one observation per unexpired override, carrying only the
// fields it overrides. It never fails; the error is for the interface.
func (s *Source) Fetch(ctx context.Context) ([]sources.Observation, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	live := s.List()
	out := make([]sources.Observation, 0, len(live))
	for _, o := range live {
		ob := sources.Observe(o.ID)
		if o.State != disposition.StateUnknown {
			ob.State(o.State)
		}
		if o.ReleaseState != "" {
			ob.ReleaseState(o.ReleaseState)
		}
		ob.Note = fmt.Sprintf("owner=%s reason=%q expires=%s", o.Owner, o.Reason, o.Expires.UTC().Format(time.RFC3339))
		out = append(out, *ob)
	}
	return out, nil
}

// List returns the unexpired overrides, ordered by ID.
func (s *Source) List() []Override {
	now := s.cfg.Now()
	s.mu.Lock()
	out := make([]Override, 0, len(s.m))
	for _, o := range s.m {
		if o.Expires.After(now) {
			out = append(out, o)
		}
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b Override) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Get returns the unexpired override of a server.
func (s *Source) Get(id string) (Override, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.m[id]
	if !ok || !o.Expires.After(s.cfg.Now()) {
		return Override{}, false
	}
	return o, true
}

// Validate checks o as Set would at time now. The error is a
// *ValidationError naming the field.
func (s *Source) Validate(o Override, now time.Time) error {
	bad := func(field, format string, args ...any) error {
		return &ValidationError{Field: field, Err: fmt.Errorf(format, args...)}
	}
	switch {
	case strings.TrimSpace(o.ID) == "":
		return bad("id", "required")
	case o.State > disposition.StateDecommissioned:
		return bad("state", "invalid value %d", o.State)
	case o.State == disposition.StateUnknown && o.ReleaseState == "":
		return bad("state", "set state, release_state or both")
	case strings.ContainsAny(o.ReleaseState, " \t\n,=!<>"):
		return bad("release_state", "%q contains a space, comma or operator character", o.ReleaseState)
	case strings.TrimSpace(o.Owner) == "":
		return bad("owner", "required")
	case strings.TrimSpace(o.Reason) == "":
		return bad("reason", "required")
	case o.Expires.IsZero():
		return bad("expires", "required")
	case !o.Expires.After(now):
		return bad("expires", "%s is not in the future", o.Expires.UTC().Format(time.RFC3339))
	case s.cfg.MaxTTL > 0 && o.Expires.Sub(now) > s.cfg.MaxTTL:
		return bad("expires", "more than %v ahead", s.cfg.MaxTTL)
	}
	return nil
}

// Set validates o, stamps SetAt, stores it (replacing the server's
// previous override) and returns it. Expired overrides are purged from
// the store on the way.
func (s *Source) Set(ctx context.Context, o Override) (Override, error) {
	now := s.cfg.Now()
	if err := s.Validate(o, now); err != nil {
		return Override{}, err
	}
	o.SetAt = now
	o.Expires = o.Expires.UTC()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg.Store != nil {
		if err := s.cfg.Store.PutOverride(ctx, o); err != nil {
			return Override{}, fmt.Errorf("overrides: store %q: %w", o.ID, err)
		}
	}
	s.m[o.ID] = o
	s.purgeLocked(ctx, now)
	return o, nil
}

// Delete removes the override of a server. It returns ErrNotFound when the
// server has no unexpired override.
func (s *Source) Delete(ctx context.Context, id string) error {
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.m[id]
	if !ok || !o.Expires.After(now) {
		return ErrNotFound
	}
	if s.cfg.Store != nil {
		if err := s.cfg.Store.DeleteOverride(ctx, id); err != nil {
			return fmt.Errorf("overrides: delete %q: %w", id, err)
		}
	}
	delete(s.m, id)
	s.purgeLocked(ctx, now)
	return nil
}

// purgeLocked drops expired overrides; a store error leaves them for the
// next write, as they are invisible anyway.
func (s *Source) purgeLocked(ctx context.Context, now time.Time) {
	for id, o := range s.m {
		if o.Expires.After(now) {
			continue
		}
		if s.cfg.Store != nil && s.cfg.Store.DeleteOverride(ctx, id) != nil {
			continue
		}
		delete(s.m, id)
	}
}
