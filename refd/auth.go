package refd

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Scope is a permission a token grants.
type Scope string

// The scopes. ScopeAdmin grants every scope; ScopeWrite and ScopeRollout
// each also grant ScopeRead.
const (
	ScopeRead    Scope = "read"    // query nodes, aggregates, sources, rollouts, formulas
	ScopeWrite   Scope = "write"   // set and delete overrides
	ScopeRollout Scope = "rollout" // plan, create and drive rollouts; build formulas
	ScopeAdmin   Scope = "admin"   // everything, and the audit log
)

// ParseScope parses a scope name.
func ParseScope(s string) (Scope, error) {
	switch Scope(s) {
	case ScopeRead, ScopeWrite, ScopeRollout, ScopeAdmin:
		return Scope(s), nil
	}
	return "", fmt.Errorf("unknown scope %q (valid: read, write, rollout, admin)", s)
}

// grants reports whether a token holding have may use a route needing want.
func grants(have []Scope, want Scope) bool {
	for _, h := range have {
		if h == want || h == ScopeAdmin || want == ScopeRead && (h == ScopeWrite || h == ScopeRollout) {
			return true
		}
	}
	return false
}

// Token is an API bearer token as the server knows it: a name for the
// audit log, the SHA-256 of the secret and its scopes. The secret itself
// is never stored.
type Token struct {
	// Name identifies the token's holder in the audit log and logs.
	Name string `json:"name" yaml:"name"`
	// Hash is "sha256:" followed by the hex SHA-256 of the secret, as
	// HashToken returns it.
	Hash string `json:"hash" yaml:"hash"`
	// Scopes are what the token may do; at least one.
	Scopes []Scope `json:"scopes" yaml:"scopes"`
}

const hashPrefix = "sha256:"

// HashToken returns the form of a secret that Token.Hash holds.
func HashToken(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hashPrefix + hex.EncodeToString(sum[:])
}

// NewTokenSecret returns a new random bearer token secret (32 random
// bytes, URL-safe base64, prefixed "refd_").
func NewTokenSecret() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("refd: token secret: %w", err)
	}
	return "refd_" + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// parseHash decodes a Token.Hash.
func parseHash(h string) ([sha256.Size]byte, error) {
	var out [sha256.Size]byte
	hexed, ok := strings.CutPrefix(h, hashPrefix)
	if !ok {
		return out, errors.New(`must start with "sha256:"`)
	}
	b, err := hex.DecodeString(hexed)
	if err != nil || len(b) != sha256.Size {
		return out, errors.New("must be sha256: and 64 hex digits")
	}
	copy(out[:], b)
	return out, nil
}

// authToken is a validated Token.
type authToken struct {
	name   string
	hash   [sha256.Size]byte
	scopes []Scope
}

// authenticate returns the token whose hash matches secret, comparing
// against every token in constant time so that timing says nothing about
// which, if any, matched.
func authenticate(tokens []authToken, secret string) *authToken {
	sum := sha256.Sum256([]byte(secret))
	var found *authToken
	for i := range tokens {
		if subtle.ConstantTimeCompare(sum[:], tokens[i].hash[:]) == 1 {
			found = &tokens[i]
		}
	}
	return found
}

type principalKey struct{}

// Principal returns the name of the token that authenticated the request
// in ctx, or "" for unauthenticated routes.
func Principal(ctx context.Context) string {
	p, _ := ctx.Value(principalKey{}).(string)
	return p
}

// bearer extracts the token of an "Authorization: Bearer <token>" header.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// authorize checks the request's token against the route's scope. It
// answers 401 (with a WWW-Authenticate challenge) when the token is
// missing or unknown, 403 when it lacks the scope.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, want Scope) (*http.Request, bool) {
	secret, ok := bearer(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="refd"`)
		writeAPIError(w, apiErr(http.StatusUnauthorized, CodeUnauthorized, "", "missing bearer token"))
		return r, false
	}
	t := authenticate(s.tokens, secret)
	if t == nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="refd", error="invalid_token"`)
		writeAPIError(w, apiErr(http.StatusUnauthorized, CodeUnauthorized, "", "invalid bearer token"))
		return r, false
	}
	if !grants(t.scopes, want) {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="refd", error="insufficient_scope", scope="%s"`, want))
		writeAPIError(w, apiErr(http.StatusForbidden, CodeForbidden, "", "token %q lacks scope %q", t.name, want))
		return r, false
	}
	return r.WithContext(context.WithValue(r.Context(), principalKey{}, t.name)), true
}
