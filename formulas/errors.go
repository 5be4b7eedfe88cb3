package formulas

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors, wrapped by *Error (and by other errors of this package)
// so that callers can branch on the kind of problem with errors.Is.
var (
	// ErrSyntax: the control or lock file is not well-formed: bad YAML, a
	// wrong type, an unknown key, a bad name or value.
	ErrSyntax = errors.New("syntax error")
	// ErrDuplicateKey: a mapping names the same key twice.
	ErrDuplicateKey = errors.New("duplicate key")
	// ErrUnknownFormula: a release state or role names a formula the control
	// file does not declare.
	ErrUnknownFormula = errors.New("unknown formula")
	// ErrUnknownState: an inherit, a promotion or a lookup names a release
	// state the control file does not declare.
	ErrUnknownState = errors.New("unknown release state")
	// ErrUnknownRole: a role override or a lookup names a role the control
	// file does not declare.
	ErrUnknownRole = errors.New("unknown role")
	// ErrInheritanceCycle: release states inherit from each other in a loop.
	ErrInheritanceCycle = errors.New("inheritance cycle")
	// ErrEnvCollision: two (role, release state) pairs map to one environment
	// name, and so to one directory.
	ErrEnvCollision = errors.New("two environments map to one directory")
	// ErrUnpinned: a branch is used without being marked unpinned.
	ErrUnpinned = errors.New("branch not marked unpinned")
	// ErrNoMatchingTag: a semver constraint matches none of the repository's
	// tags.
	ErrNoMatchingTag = errors.New("constraint matches no tag")
	// ErrTagNotFound: an exact tag is missing from the repository.
	ErrTagNotFound = errors.New("tag not in repository")
	// ErrRefNotFound: a branch or commit is missing from the repository.
	ErrRefNotFound = errors.New("ref not in repository")
	// ErrLockMismatch: the lock does not pin what the control file asks for
	// (frozen or offline resolution cannot proceed).
	ErrLockMismatch = errors.New("lock disagrees with control file")
	// ErrOffline: resolution needs a repository but none is available.
	ErrOffline = errors.New("repository needed but resolving offline")
	// ErrNoEnvironment: a node's role or release state has no environment.
	ErrNoEnvironment = errors.New("no environment")
	// ErrPromotion: a promotion or its rollback cannot be applied.
	ErrPromotion = errors.New("promotion not possible")
)

// Error is one problem found in a control or lock file, located by file,
// line and field. Its message reads "file:line: field: message".
type Error struct {
	File  string // file name as given to the parser
	Line  int    // 1-based line, 0 if unknown
	Field string // dotted path of the field, e.g. "states.trial.nginx"
	Msg   string
	Err   error // the sentinel this error is a case of
}

// Error returns "file:line: field: message".
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
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the sentinel error.
func (e *Error) Unwrap() error { return e.Err }

// ErrorList is several errors found in one pass, in file order. It wraps
// each of them, so errors.Is and errors.As see every one.
type ErrorList []*Error

// Error returns the messages of the list, one a line.
func (l ErrorList) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Unwrap returns the errors of the list.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// err returns l as an error, nil when empty.
func (l ErrorList) err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}
