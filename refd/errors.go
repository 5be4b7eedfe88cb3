package refd

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Error codes of the API's error body. They are stable: clients branch on
// them, not on messages.
const (
	CodeBadRequest     = "bad_request"   // 400: a malformed parameter or body
	CodeInvalidQuery   = "invalid_query" // 400: a bad query term
	CodeUnauthorized   = "unauthorized"  // 401: no token, or an unknown one
	CodeForbidden      = "forbidden"     // 403: the token lacks the scope
	CodeNotFound       = "not_found"     // 404
	CodeMethod         = "method_not_allowed"
	CodeConflict       = "conflict"        // 409: e.g. resuming a rollout that is not paused
	CodeTooLarge       = "too_large"       // 413: request body over the limit
	CodeUnsupported    = "unsupported"     // 415: body media type
	CodeNotConfigured  = "not_configured"  // 501: the feature has no backend in this server
	CodeUnavailable    = "unavailable"     // 503: not ready yet, or shutting down
	CodeInternal       = "internal"        // 500
	CodePlanFailed     = "plan_failed"     // 422: the rollout spec cannot be planned
	CodeFormulasFailed = "formulas_failed" // 422: the formulas backend rejected the request
)

// APIError is the error every /v1 route answers with, encoded as
// {"error": {"code", "message", "field"}}. Field names the query
// parameter, body field or query term at fault, when there is one.
type APIError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// Error implements the error interface.
func (e *APIError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%d %s: %s: %s", e.Status, e.Code, e.Field, e.Message)
	}
	return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message)
}

func apiErr(status int, code, field, format string, args ...any) *APIError {
	return &APIError{Status: status, Code: code, Field: field, Message: fmt.Sprintf(format, args...)}
}

func badRequest(field, format string, args ...any) *APIError {
	return apiErr(http.StatusBadRequest, CodeBadRequest, field, format, args...)
}

// writeError writes err as the API's error body. Errors that are not an
// *APIError are internal: their text is logged, not sent.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *APIError
	if !errors.As(err, &ae) {
		s.log.ErrorContext(r.Context(), "internal error", "method", r.Method, "path", r.URL.Path, "err", err)
		ae = apiErr(http.StatusInternalServerError, CodeInternal, "", "internal error")
	}
	writeAPIError(w, ae)
}

func writeAPIError(w http.ResponseWriter, ae *APIError) {
	body, _ := json.Marshal(struct {
		Error *APIError `json:"error"`
	}{ae})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("ETag")
	h.Del("Content-Encoding")
	w.WriteHeader(ae.Status)
	_, _ = w.Write(append(body, '\n'))
}

// writeJSON writes v as a JSON response with the given status.
func (s *Server) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		s.writeError(w, r, fmt.Errorf("encode response: %w", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
