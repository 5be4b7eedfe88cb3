package saltapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/sources"
)

// Defaults for Options fields left zero.
const (
	DefaultEAuth   = "pam"
	DefaultTarget  = "*"
	DefaultTimeout = 2 * time.Minute
)

// Modes of reading grains.
const (
	// ModeLocal asks the minions (client local, grains.items): current,
	// but only minions that answer in time are seen.
	ModeLocal = "local"
	// ModeCache reads the master's grains cache (runner cache.grains):
	// cheap on large fleets and includes minions that are down, but only
	// as fresh as the cache.
	ModeCache = "cache"
)

// Computed attributes Options.Grains may map from besides grain paths.
const (
	// AttrPlatform is the lower-case os grain and osmajorrelease (or
	// osrelease) joined by "-": "debian-12".
	AttrPlatform = "@platform"
	// AttrKind is the kind from the virtual grain: "physical" is
	// baremetal, container runtimes (container, docker, lxc, podman,
	// systemd-nspawn, openvzve) are container, any other value is vm.
	AttrKind = "@kind"
)

// maxBody caps one response; grains.items of a large fleet is big.
const maxBody = 2 << 30

var (
	// ErrUnauthorized is wrapped by errors for a login salt-api refuses
	// (401) and for calls refused even after logging in again.
	ErrUnauthorized = sources.ErrUnauthorized
	// ErrBadResponse is wrapped by errors for responses that are not the
	// JSON salt-api documents.
	ErrBadResponse = sources.ErrBadResponse
)

// StatusError is a response with a status other than the API's success.
// It wraps ErrUnauthorized for 401 and 403.
type StatusError = sources.StatusError

// Options configure a salt-api source.
type Options struct {
	// URL is salt-api's (rest_cherrypy) base URL, such as
	// https://salt.example.com:8000.
	URL string `yaml:"url"`
	// Username, Password and EAuth are the external-auth credentials
	// for /login; EAuth defaults to DefaultEAuth. The user needs
	// grains.items (ModeLocal) or @runner cache.grains (ModeCache).
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	EAuth    string `yaml:"eauth"`
	// Mode is ModeLocal (default) or ModeCache.
	Mode string `yaml:"mode"`
	// Target and TargetType select the minions; defaults "*" and "glob".
	Target     string `yaml:"target"`
	TargetType string `yaml:"target_type"`
	// ID is the grain path whose value is the node ID; default: the
	// minion ID.
	ID string `yaml:"id"`
	// Grains maps targets (a disposition field name, "label.<key>" or
	// "version.<component>") to grain paths, nested keys separated by
	// ":" as in grains.get ("fleet:metro"), or to AttrPlatform and
	// AttrKind; over DefaultGrains. An empty path removes a default.
	// Lists are joined with ","; dictionaries are not values.
	Grains map[string]string `yaml:"grains"`
	// Timeout bounds each request when the source makes its own HTTP
	// client; default DefaultTimeout.
	Timeout time.Duration `yaml:"timeout"`
}

// DefaultGrains is the mapping used for targets Options.Grains leaves out:
// the custom grains role and release_state, the platform from os and
// osmajorrelease, and the kind from virtual.
func DefaultGrains() map[string]string {
	return map[string]string{
		"role":          "role",
		"release_state": "release_state",
		"platform":      AttrPlatform,
		"kind":          AttrKind,
	}
}

// Source reads minions' grains through salt-api. It is safe for
// concurrent use.
type Source struct {
	name   string
	base   string
	opts   Options
	client *http.Client
	fields []mapping

	mu      sync.Mutex
	token   string
	expires time.Time
}

type mapping struct {
	field disposition.Field
	key   string
	path  string
}

// Option changes how New builds a Source.
type Option func(*Source)

// WithHTTPClient makes the source use c instead of a client of its own.
func WithHTTPClient(c *http.Client) Option { return func(s *Source) { s.client = c } }

// New returns a salt-api source named name. It checks opts; an error is a
// *sources.ConfigError whose Path names the first bad option.
func New(name string, opts Options, options ...Option) (*Source, error) {
	bad := func(field, format string, args ...any) error {
		return &sources.ConfigError{Path: field, Err: fmt.Errorf(format, args...)}
	}
	if name == "" {
		return nil, bad("name", "empty")
	}
	u, err := url.Parse(opts.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, bad("url", "want an http(s) URL, got %q", opts.URL)
	}
	if opts.Username == "" {
		return nil, bad("username", "empty")
	}
	if opts.EAuth == "" {
		opts.EAuth = DefaultEAuth
	}
	switch opts.Mode {
	case "":
		opts.Mode = ModeLocal
	case ModeLocal, ModeCache:
	default:
		return nil, bad("mode", "want %q or %q, got %q", ModeLocal, ModeCache, opts.Mode)
	}
	if opts.Target == "" {
		opts.Target = DefaultTarget
	}
	switch opts.TargetType {
	case "":
		opts.TargetType = "glob"
	case "glob", "pcre", "list", "grain", "grain_pcre", "pillar", "pillar_pcre", "nodegroup", "range", "compound", "ipcidr":
	default:
		return nil, bad("target_type", "unknown target type %q", opts.TargetType)
	}
	switch {
	case opts.Timeout == 0:
		opts.Timeout = DefaultTimeout
	case opts.Timeout < 0:
		return nil, bad("timeout", "must be positive, got %s", opts.Timeout)
	}
	s := &Source{name: name, base: strings.TrimSuffix(u.String(), "/"), opts: opts}
	fms, err := sources.MergeFieldMap(DefaultGrains(), opts.Grains)
	if err != nil {
		return nil, bad("grains", "%v", err)
	}
	for _, fm := range fms {
		target, path := fm.Target, fm.Attr
		if strings.HasPrefix(path, "@") && path != AttrPlatform && path != AttrKind {
			return nil, bad("grains", "%s: unknown computed attribute %q (want %s or %s)", target, path, AttrPlatform, AttrKind)
		}
		if strings.HasPrefix(path, ":") || strings.HasSuffix(path, ":") || strings.Contains(path, "::") {
			return nil, bad("grains", "%s: bad grain path %q", target, path)
		}
		s.fields = append(s.fields, mapping{field: fm.Field, key: fm.Key, path: path})
	}
	for _, o := range options {
		o(s)
	}
	if s.client == nil {
		s.client = &http.Client{Timeout: opts.Timeout}
	}
	return s, nil
}

// Factory makes a salt-api source from its YAML options, for a
// sources.Registry.
func Factory(name string, options *yaml.Node) (sources.Source, error) {
	return sources.Decode(name, options, func(n string, o Options) (*Source, error) { return New(n, o) })
}

// Name returns the source's name.
func (s *Source) Name() string { return s.name }

// post sends v as JSON and decodes the answer into out.
func (s *Source) post(ctx context.Context, path, token string, v, out any) (http.Header, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, &StatusError{StatusCode: resp.StatusCode, Body: strings.TrimSpace(string(b))}
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(out); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadResponse, err)
	}
	return resp.Header, nil
}

// login gets a token, reusing the current one until a minute before it
// expires unless force.
func (s *Source) login(ctx context.Context, force bool) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !force && s.token != "" && time.Now().Before(s.expires) {
		return s.token, nil
	}
	var r struct {
		Return []struct {
			Token  string      `json:"token"`
			Expire json.Number `json:"expire"`
		} `json:"return"`
	}
	creds := map[string]string{"username": s.opts.Username, "password": s.opts.Password, "eauth": s.opts.EAuth}
	h, err := s.post(ctx, "/login", "", creds, &r)
	if err != nil {
		return "", fmt.Errorf("saltapi: login: %w", err)
	}
	tok := h.Get("X-Auth-Token")
	exp := time.Now().Add(time.Hour)
	if len(r.Return) > 0 {
		if r.Return[0].Token != "" {
			tok = r.Return[0].Token
		}
		if f, err := r.Return[0].Expire.Float64(); err == nil && f > 0 {
			exp = time.Unix(0, int64(f*1e9))
		}
	}
	if tok == "" {
		return "", fmt.Errorf("saltapi: login: %w: no token", ErrBadResponse)
	}
	s.token, s.expires = tok, exp.Add(-time.Minute)
	return tok, nil
}

// Grains returns each targeted minion's grains, by minion ID, logging in
// as needed and once more if salt-api refuses the token (401). Minions
// that did not answer with grains are left out.
func (s *Source) Grains(ctx context.Context) (map[string]map[string]any, error) {
	chunk := map[string]any{"tgt": s.opts.Target, "tgt_type": s.opts.TargetType}
	if s.opts.Mode == ModeCache {
		chunk["client"], chunk["fun"] = "runner", "cache.grains"
	} else {
		chunk["client"], chunk["fun"] = "local", "grains.items"
	}
	var r struct {
		Return []map[string]json.RawMessage `json:"return"`
	}
	for attempt := 0; ; attempt++ {
		tok, err := s.login(ctx, attempt > 0)
		if err != nil {
			return nil, err
		}
		_, err = s.post(ctx, "/", tok, []any{chunk}, &r)
		var se *StatusError
		if attempt == 0 && errors.As(err, &se) && se.StatusCode == http.StatusUnauthorized {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("saltapi: %s: %w", chunk["fun"], err)
		}
		break
	}
	if len(r.Return) != 1 {
		return nil, fmt.Errorf("saltapi: %s: %w: %d results for one call", chunk["fun"], ErrBadResponse, len(r.Return))
	}
	out := make(map[string]map[string]any, len(r.Return[0]))
	for minion, raw := range r.Return[0] {
		if len(raw) == 0 || raw[0] != '{' {
			continue // false, a string error, or null: no grains
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var g map[string]any
		if err := dec.Decode(&g); err != nil {
			return nil, fmt.Errorf("saltapi: minion %s: %w: %v", minion, ErrBadResponse, err)
		}
		out[minion] = g
	}
	return out, nil
}

// Fetch reads the grains of the targeted minions and returns one
// Observation per minion, sorted by ID.
func (s *Source) Fetch(ctx context.Context) ([]sources.Observation, error) {
	grains, err := s.Grains(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]sources.Observation, 0, len(grains))
	for _, minion := range slices.Sorted(maps.Keys(grains)) {
		g := grains[minion]
		id := minion
		if s.opts.ID != "" {
			if id = grainText(lookup(g, s.opts.ID)); id == "" {
				continue
			}
		}
		o := sources.Observe(id)
		for _, m := range s.fields {
			var v string
			switch m.path {
			case AttrPlatform:
				v = platform(g)
			case AttrKind:
				v = kind(g)
			default:
				v = grainText(lookup(g, m.path))
			}
			if v == "" {
				continue
			}
			if err := o.Set(m.field, m.key, v); err != nil {
				return nil, fmt.Errorf("saltapi: minion %s: %s from grain %s: %w", minion, m.field, m.path, err)
			}
		}
		out = append(out, *o)
	}
	slices.SortFunc(out, func(a, b sources.Observation) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// lookup follows a ":"-separated path through nested grain dictionaries.
func lookup(g map[string]any, path string) any {
	var cur any = g
	for _, k := range strings.Split(path, ":") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[k]
	}
	return cur
}

// grainText renders a grain value as text; "" for none.
func grainText(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	case bool:
		if v {
			return "true"
		}
		return "false"
	case []any:
		parts := make([]string, 0, len(v))
		for _, e := range v {
			if t := grainText(e); t != "" {
				parts = append(parts, t)
			}
		}
		return strings.Join(parts, ",")
	}
	return ""
}

func platform(g map[string]any) string {
	os := strings.ToLower(grainText(g["os"]))
	rel := grainText(g["osmajorrelease"])
	if rel == "" {
		rel = grainText(g["osrelease"])
	}
	if os == "" || rel == "" {
		return ""
	}
	return strings.ReplaceAll(os, " ", "-") + "-" + rel
}

func kind(g map[string]any) string {
	v := strings.ToLower(grainText(g["virtual"]))
	switch v {
	case "":
		return ""
	case "physical":
		return disposition.KindBaremetal.String()
	case "container", "docker", "lxc", "podman", "systemd-nspawn", "openvzve", "kubernetes":
		return disposition.KindContainer.String()
	}
	return disposition.KindVM.String()
}
