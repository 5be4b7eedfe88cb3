package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/fleetkit/fleetkit/rollout"
)

// Defaults for Config fields left zero.
const (
	DefaultAttempts   = 3
	DefaultBackoff    = time.Second
	DefaultMaxBackoff = 30 * time.Second
	DefaultTimeout    = 30 * time.Second
)

// maxBody caps a response body; a result is well under 100 bytes a
// server.
const maxBody = 32 << 20

// NoResult is the error of a requested server the response did not
// report on.
const NoResult = "no result from webhook"

var (
	// ErrRejected is wrapped by the error of a 4xx answer other than
	// 429: the receiver refused the request, and retrying it as it is
	// will not help.
	ErrRejected = errors.New("webhook: request rejected")
	// ErrBadResponse is wrapped by the error of a 2xx answer whose body
	// is not the documented JSON.
	ErrBadResponse = errors.New("webhook: bad response")
)

// StatusError is an answer with a status other than 2xx. For 4xx other
// than 429 it wraps ErrRejected.
type StatusError struct {
	Code int
	// Body is the start of the response body, for the operator.
	Body string
}

// Error implements the error interface.
func (e *StatusError) Error() string {
	if e.Body == "" {
		return fmt.Sprintf("status %d", e.Code)
	}
	return fmt.Sprintf("status %d: %s", e.Code, e.Body)
}

// Unwrap returns ErrRejected for a 4xx other than 429, nil otherwise.
func (e *StatusError) Unwrap() error {
	if e.Code >= 400 && e.Code < 500 && e.Code != http.StatusTooManyRequests {
		return ErrRejected
	}
	return nil
}

// Config configures a webhook Deployer.
type Config struct {
	// URL is the http or https endpoint to POST to. Required.
	URL string
	// Secret is the HMAC-SHA256 key requests are signed with. Required
	// unless Insecure.
	Secret []byte
	// Insecure allows an empty Secret: requests then carry no
	// signature, only the timestamp.
	Insecure bool
	// Header holds extra request headers, such as Authorization. It may
	// not set Content-Type, Idempotency-Key or the X-Fleetkit headers.
	Header map[string]string
	// HTTPClient sends the requests; nil means a client of its own that
	// does not follow redirects (a redirected POST would lose its body).
	HTTPClient *http.Client
	// Attempts is how many times a request is tried in all; default
	// DefaultAttempts, 1 for no retries.
	Attempts int
	// Backoff is the wait before the first retry, doubling for each
	// next one up to MaxBackoff; defaults DefaultBackoff and
	// DefaultMaxBackoff.
	Backoff    time.Duration
	MaxBackoff time.Duration
	// Timeout bounds each attempt, until the response is read; default
	// DefaultTimeout.
	Timeout time.Duration
	// Clock times the waits between attempts and the signature's
	// timestamp; nil means rollout.SystemClock. Tests pass a
	// rollout.FakeClock so that nothing really sleeps.
	Clock rollout.Clock
}

// Deployer deploys by calling a webhook. It is safe for concurrent use.
type Deployer struct {
	cfg    Config
	name   string // the URL without query or credentials, for errors
	client *http.Client
	clock  rollout.Clock
}

var _ rollout.Deployer = (*Deployer)(nil)

// reserved are the headers Deploy sets itself.
var reserved = []string{"Content-Type", HeaderIdempotencyKey, HeaderTimestamp, HeaderSignature}

// New checks cfg and returns a Deployer. An error names the first bad
// field.
func New(cfg Config) (*Deployer, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("webhook: Config.URL: want an http or https URL, got %q", cfg.URL)
	}
	if len(cfg.Secret) == 0 && !cfg.Insecure {
		return nil, errors.New("webhook: Config.Secret: empty (set Insecure to send unsigned requests)")
	}
	for k := range cfg.Header {
		for _, r := range reserved {
			if strings.EqualFold(k, r) {
				return nil, fmt.Errorf("webhook: Config.Header: %s is set by the Deployer", r)
			}
		}
		if k == "" {
			return nil, errors.New("webhook: Config.Header: empty header name")
		}
	}
	for _, f := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{{"Backoff", &cfg.Backoff, DefaultBackoff}, {"MaxBackoff", &cfg.MaxBackoff, DefaultMaxBackoff}, {"Timeout", &cfg.Timeout, DefaultTimeout}} {
		switch {
		case *f.v < 0:
			return nil, fmt.Errorf("webhook: Config.%s must not be negative, got %s", f.name, *f.v)
		case *f.v == 0:
			*f.v = f.def
		}
	}
	if cfg.Backoff > cfg.MaxBackoff {
		return nil, fmt.Errorf("webhook: Config.Backoff %s must not be longer than Config.MaxBackoff %s", cfg.Backoff, cfg.MaxBackoff)
	}
	switch {
	case cfg.Attempts < 0:
		return nil, fmt.Errorf("webhook: Config.Attempts must not be negative, got %d", cfg.Attempts)
	case cfg.Attempts == 0:
		cfg.Attempts = DefaultAttempts
	}
	d := &Deployer{cfg: cfg, name: u.Scheme + "://" + u.Host + u.Path, client: cfg.HTTPClient, clock: cfg.Clock}
	if d.client == nil {
		d.client = &http.Client{
			Timeout:       cfg.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if d.clock == nil {
		d.clock = rollout.SystemClock{}
	}
	return d, nil
}

// result is one entry of the response.
type result struct {
	Server string `json:"server"`
	OK     bool   `json:"ok"`
	Error  string `json:"error,omitempty"`
}

// Deploy POSTs req to the webhook, retrying as the package doc says, and
// returns one result per requested server, in request order. Errors
// name the URL and the attempt.
func (d *Deployer) Deploy(ctx context.Context, req rollout.DeployRequest) ([]rollout.ServerResult, error) {
	if req.IdempotencyKey == "" {
		return nil, fmt.Errorf("webhook %s: request has no idempotency key", d.name)
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("webhook %s: %w", d.name, err)
	}
	wait := d.cfg.Backoff
	for n := 1; ; n++ {
		got, retryAfter, retry, err := d.attempt(ctx, req.IdempotencyKey, body)
		if err == nil {
			return results(req.Servers, got), nil
		}
		err = fmt.Errorf("webhook %s: attempt %d of %d: %w", d.name, n, d.cfg.Attempts, err)
		if !retry || n >= d.cfg.Attempts {
			return nil, err
		}
		delay := wait
		if retryAfter > 0 {
			if retryAfter > d.cfg.MaxBackoff {
				return nil, fmt.Errorf("%w (Retry-After %s is longer than MaxBackoff %s)", err, retryAfter, d.cfg.MaxBackoff)
			}
			delay = retryAfter
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("webhook %s: stopped before attempt %d: %w (after %w)", d.name, n+1, ctx.Err(), err)
		case <-d.clock.After(delay):
		}
		wait = min(wait*2, d.cfg.MaxBackoff)
	}
}

// attempt sends one request. retry says whether another attempt may
// succeed; retryAfter is the wait the receiver asked for, if any.
func (d *Deployer) attempt(ctx context.Context, key string, body []byte) (got []result, retryAfter time.Duration, retry bool, err error) {
	actx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	hr, err := http.NewRequestWithContext(actx, http.MethodPost, d.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return nil, 0, false, err
	}
	hr.Header.Set("Accept", "application/json")
	for k, v := range d.cfg.Header {
		hr.Header.Set(k, v)
	}
	now := d.clock.Now()
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set(HeaderIdempotencyKey, key)
	hr.Header.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	if len(d.cfg.Secret) > 0 {
		hr.Header.Set(HeaderSignature, Sign(d.cfg.Secret, now.Unix(), body))
	}
	resp, err := d.client.Do(hr)
	if err != nil {
		return nil, 0, ctx.Err() == nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		se := &StatusError{Code: resp.StatusCode, Body: strings.ToValidUTF8(strings.TrimSpace(string(b)), "?")}
		retry := se.Code >= 500 || se.Code == http.StatusTooManyRequests
		return nil, parseRetryAfter(resp.Header.Get("Retry-After"), now), retry, se
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, 0, ctx.Err() == nil, fmt.Errorf("reading the response: %w", err)
	}
	if len(raw) > maxBody {
		return nil, 0, false, fmt.Errorf("%w: body larger than %d bytes", ErrBadResponse, maxBody)
	}
	var r struct {
		Results *[]result `json:"results"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, 0, false, fmt.Errorf("%w: %v", ErrBadResponse, err)
	}
	if r.Results == nil {
		return nil, 0, false, fmt.Errorf("%w: no \"results\" list", ErrBadResponse)
	}
	for i, x := range *r.Results {
		if x.Server == "" {
			return nil, 0, false, fmt.Errorf("%w: results[%d] has no server", ErrBadResponse, i)
		}
	}
	return *r.Results, 0, false, nil
}

// parseRetryAfter reads a Retry-After value: seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		return max(time.Duration(s)*time.Second, 0)
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}

// results returns one result per requested server, in request order.
func results(servers []string, got []result) []rollout.ServerResult {
	by := make(map[string]rollout.ServerResult, len(got))
	for _, g := range got {
		if prev, seen := by[g.Server]; seen && !prev.OK {
			continue // a failure stands
		}
		by[g.Server] = rollout.ServerResult{Server: g.Server, OK: g.OK, Error: g.Error}
	}
	out := make([]rollout.ServerResult, len(servers))
	for i, s := range servers {
		r, ok := by[s]
		switch {
		case !ok:
			r = rollout.ServerResult{Server: s, Error: NoResult}
		case r.OK:
			r.Error = ""
		case r.Error == "":
			r.Error = "failed (the webhook gave no error)"
		}
		out[i] = r
	}
	return out
}
