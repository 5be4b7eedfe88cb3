package refd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/sources/overrides"
)

// OverrideRequest is the body of PUT /v1/overrides/{id}. Give Expires or
// TTL.
type OverrideRequest struct {
	State        string    `json:"state,omitempty"`
	ReleaseState string    `json:"release_state,omitempty"`
	Owner        string    `json:"owner"`
	Reason       string    `json:"reason"`
	Expires      time.Time `json:"expires,omitzero"`
	// TTL is a Go duration ("24h") from now; an alternative to Expires.
	TTL string `json:"ttl,omitempty"`
}

// OverridesResult is the body of GET /v1/overrides.
type OverridesResult struct {
	Overrides []overrides.Override `json:"overrides"`
}

func notConfigured(what string) *APIError {
	return apiErr(http.StatusNotImplemented, CodeNotConfigured, "", "%s is not configured on this server", what)
}

// decodeJSON decodes a JSON request body strictly into v: unknown fields,
// wrong types and trailing data are 400s naming the field.
func decodeJSON(r *http.Request, v any) error {
	// Any declared type but multipart is read as JSON: curl -d declares a
	// form type for what is JSON.
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || strings.HasPrefix(mt, "multipart/") {
			return apiErr(http.StatusUnsupportedMediaType, CodeUnsupported, "", "content type %q: want application/json", ct)
		}
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return badRequest("", "reading body: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &te):
			return badRequest(te.Field, "wrong type: got JSON %s, want %s", te.Value, te.Type)
		case errors.As(err, &se):
			return badRequest("", "invalid JSON at byte %d: %v", se.Offset, err)
		case errors.Is(err, io.EOF):
			return badRequest("", "empty body: want a JSON object")
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return badRequest(name, "unknown field %q", name)
		}
		return badRequest("", "invalid JSON: %v", err)
	}
	if dec.More() {
		return badRequest("", "trailing data after the JSON object")
	}
	return nil
}

func (s *Server) handleOverrides(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.Overrides == nil {
		return notConfigured("overrides")
	}
	s.writeJSON(w, r, http.StatusOK, OverridesResult{Overrides: s.cfg.Overrides.List()})
	return nil
}

func (s *Server) handleSetOverride(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.Overrides == nil {
		return notConfigured("overrides")
	}
	var req OverrideRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	o := overrides.Override{
		ID:           r.PathValue("id"),
		ReleaseState: req.ReleaseState,
		Owner:        req.Owner,
		Reason:       req.Reason,
		Expires:      req.Expires,
		SetBy:        Principal(r.Context()),
	}
	if req.State != "" {
		st, err := disposition.ParseState(req.State)
		if err != nil || st == disposition.StateUnknown {
			return badRequest("state", "%v", fmt.Errorf("unknown lifecycle state %q", req.State))
		}
		o.State = st
	}
	switch {
	case req.TTL != "" && !req.Expires.IsZero():
		return badRequest("ttl", "give expires or ttl, not both")
	case req.TTL != "":
		d, err := time.ParseDuration(req.TTL)
		if err != nil || d <= 0 {
			return badRequest("ttl", "want a positive duration such as 24h, got %q", req.TTL)
		}
		o.Expires = s.cfg.Now().Add(d)
	}
	if _, known := s.cfg.Index.Snapshot().Get(o.ID); !known {
		return apiErr(http.StatusNotFound, CodeNotFound, "id", "no node %q", o.ID)
	}
	set, err := s.cfg.Overrides.Set(r.Context(), o)
	if err != nil {
		var ve *overrides.ValidationError
		if errors.As(err, &ve) {
			return badRequest(ve.Field, "%v", ve.Err)
		}
		return err
	}
	s.refresh(r)
	s.writeJSON(w, r, http.StatusOK, set)
	return nil
}

func (s *Server) handleDeleteOverride(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.Overrides == nil {
		return notConfigured("overrides")
	}
	id := r.PathValue("id")
	if err := s.cfg.Overrides.Delete(r.Context(), id); err != nil {
		if errors.Is(err, overrides.ErrNotFound) {
			return apiErr(http.StatusNotFound, CodeNotFound, "id", "no override for %q", id)
		}
		return err
	}
	s.refresh(r)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// refresh makes an override change visible in the index before the write
// returns, so that a read after it sees it.
func (s *Server) refresh(r *http.Request) {
	if s.cfg.Updater == nil {
		return
	}
	var err error
	if one, ok := s.cfg.Updater.(SourceRefresher); ok {
		err = one.RefreshSource(r.Context(), s.cfg.Overrides.Name())
	} else {
		err = s.cfg.Updater.Refresh(r.Context())
	}
	if err != nil {
		s.log.WarnContext(r.Context(), "refresh after override failed; the next scheduled fetch will apply it", "err", err)
	}
}

// SourceRefresher is an Updater that can fetch one source alone. After an
// override changes, refd refreshes only the overrides source when the
// Updater is one, and every source otherwise.
type SourceRefresher interface {
	RefreshSource(ctx context.Context, name string) error
}
