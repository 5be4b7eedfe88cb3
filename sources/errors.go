package sources

import (
	"errors"
	"fmt"
	"net/http"
)

// Errors callers branch on.
var (
	// ErrRemovalGuard is matched (errors.Is) by every *GuardError.
	ErrRemovalGuard = errors.New("removal guard")
	// ErrDuplicateObservation: one fetch reported the same node twice;
	// the fetch is rejected.
	ErrDuplicateObservation = errors.New("node observed twice in one fetch")
	// ErrFetchInProgress: a source's earlier Fetch, abandoned at its
	// timeout, has not returned yet, so the source is not asked again.
	ErrFetchInProgress = errors.New("an earlier fetch has not returned yet")
	// ErrSourcePanic: a source's Fetch panicked; the panic is recovered
	// and counts as a failed fetch.
	ErrSourcePanic = errors.New("source panicked")
	// ErrUnknownSource: a name does not match any registered source.
	ErrUnknownSource = errors.New("unknown source")
	// ErrRunning: Run was called while it is already running.
	ErrRunning = errors.New("aggregator already running")
)

// SourceError is a failed fetch of one source: an error from the source
// itself, a timeout, a rejected result (duplicate nodes, the removal
// guard). The source's previous observations stay in use, marked stale.
type SourceError struct {
	Source string
	Err    error
}

// Error implements the error interface.
func (e *SourceError) Error() string { return fmt.Sprintf("sources: %s: %v", e.Source, e.Err) }

// Unwrap returns the underlying error, for errors.Is and errors.As.
func (e *SourceError) Unwrap() error { return e.Err }

// GuardError is the removal guard rejecting an authoritative fetch that
// would remove more than AggregatorConfig.RemovalGuard of the fleet. The
// fetch is not applied: the source keeps its previous observations,
// marked stale, until it returns an acceptable result or an operator
// calls Aggregator.AllowRemovals.
type GuardError struct {
	// Source is the authoritative source whose fetch was rejected.
	Source string
	// Removing is how many nodes the fetch would have removed.
	Removing int
	// Total is the number of nodes in the fleet.
	Total int
	// Limit is the most removals one fetch may cause.
	Limit int
}

// Error implements the error interface.
func (e *GuardError) Error() string {
	return fmt.Sprintf("removal guard: the fetch would remove %d of %d nodes, more than the limit of %d; it was not applied (AllowRemovals accepts it)",
		e.Removing, e.Total, e.Limit)
}

// Is makes errors.Is(err, ErrRemovalGuard) true.
func (e *GuardError) Is(target error) bool { return target == ErrRemovalGuard }

// ErrUnauthorized is wrapped by the errors of every HTTP adapter for a
// 401 or 403 response: the credentials are wrong, revoked or lack
// permission. Each adapter re-exports it under its own name.
var ErrUnauthorized = errors.New("unauthorized")

// ErrBadResponse is wrapped by the errors of every HTTP adapter for a
// response that is not the JSON its API documents (malformed, too large
// or the wrong shape).
var ErrBadResponse = errors.New("bad response")

// StatusError is an HTTP response with a status the adapter did not
// expect. It wraps ErrUnauthorized for 401 and 403.
type StatusError struct {
	StatusCode int
	// Body is the start of the response body, for the operator.
	Body string
}

// Error implements the error interface.
func (e *StatusError) Error() string {
	if e.Body == "" {
		return fmt.Sprintf("status %d", e.StatusCode)
	}
	return fmt.Sprintf("status %d: %s", e.StatusCode, e.Body)
}

// Unwrap returns ErrUnauthorized for 401 and 403, nil otherwise.
func (e *StatusError) Unwrap() error {
	if e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden {
		return ErrUnauthorized
	}
	return nil
}
