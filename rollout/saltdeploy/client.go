package saltdeploy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/fleetkit/fleetkit/sources"
)

// maxBody caps a response; jobs.list_jobs on a busy master is large.
const maxBody = 1 << 30

// The errors of salt-api's answers are package sources' (as its saltapi
// adapter's are), so one errors.Is test covers reading and deploying.
var (
	// ErrUnauthorized is wrapped by the errors of a login salt-api
	// refuses, and of calls it refuses even after logging in again.
	ErrUnauthorized = sources.ErrUnauthorized
	// ErrBadResponse is wrapped by the errors of answers that are not
	// the JSON salt-api documents.
	ErrBadResponse = sources.ErrBadResponse
)

// StatusError is an answer with a status other than 2xx. It wraps
// ErrUnauthorized for 401 and 403.
type StatusError = sources.StatusError

// send makes one request with body as JSON (if not nil) and decodes the
// answer into out.
func (d *Deployer) send(ctx context.Context, method, path, token string, body, out any) (http.Header, error) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, d.base+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, &StatusError{StatusCode: resp.StatusCode, Body: strings.ToValidUTF8(strings.TrimSpace(string(b)), "?")}
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadResponse, err)
	}
	return resp.Header, nil
}

// login returns a token: the current one unless it is stale (the one a
// call was just refused with), else a new one from POST /login.
func (d *Deployer) login(ctx context.Context, stale string) (string, error) {
	d.authMu.Lock()
	defer d.authMu.Unlock()
	if d.token != "" && d.token != stale {
		return d.token, nil
	}
	var r struct {
		Return []struct {
			Token string `json:"token"`
		} `json:"return"`
	}
	creds := map[string]string{"username": d.cfg.Username, "password": d.cfg.Password, "eauth": d.cfg.EAuth}
	h, err := d.send(ctx, http.MethodPost, "/login", "", creds, &r)
	if err != nil {
		return "", fmt.Errorf("login: %w", err)
	}
	tok := h.Get("X-Auth-Token")
	if len(r.Return) > 0 && r.Return[0].Token != "" {
		tok = r.Return[0].Token
	}
	if tok == "" {
		return "", fmt.Errorf("login: %w: no token", ErrBadResponse)
	}
	d.token = tok
	return tok, nil
}

// call makes an authenticated request, logging in again once if
// salt-api refuses the token.
func (d *Deployer) call(ctx context.Context, method, path string, body, out any) error {
	tok, err := d.login(ctx, "")
	if err != nil {
		return err
	}
	_, err = d.send(ctx, method, path, tok, body, out)
	var se *StatusError
	if errors.As(err, &se) && se.StatusCode == http.StatusUnauthorized {
		if tok, err = d.login(ctx, tok); err != nil {
			return err
		}
		_, err = d.send(ctx, method, path, tok, body, out)
	}
	return err
}

// lowstate runs one lowstate chunk with POST / and decodes its one
// result into out.
func (d *Deployer) lowstate(ctx context.Context, chunk map[string]any, out any) error {
	var r struct {
		Return []json.RawMessage `json:"return"`
	}
	if err := d.call(ctx, http.MethodPost, "/", []any{chunk}, &r); err != nil {
		return err
	}
	if len(r.Return) != 1 {
		return fmt.Errorf("%w: %d results for one call", ErrBadResponse, len(r.Return))
	}
	if err := json.Unmarshal(r.Return[0], out); err != nil {
		return fmt.Errorf("%w: %v", ErrBadResponse, err)
	}
	return nil
}
