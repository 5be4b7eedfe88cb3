package maas

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/sources"
)

// DefaultTimeout bounds one request of the default HTTP client. MaaS
// answers the whole machine list at once, which takes a while on large
// regions.
const DefaultTimeout = 2 * time.Minute

// maxBody caps the response: MaaS renders a few KB per machine.
const maxBody = 1 << 30

var (
	// ErrUnauthorized is wrapped by errors for responses 401 and 403: the
	// API key is wrong, revoked or lacks permission.
	ErrUnauthorized = sources.ErrUnauthorized
	// ErrBadResponse is wrapped by errors for responses that are not the
	// JSON MaaS documents.
	ErrBadResponse = sources.ErrBadResponse
)

// StatusError is a response with a status other than the API's success.
// It wraps ErrUnauthorized for 401 and 403.
type StatusError = sources.StatusError

// Options configure a MaaS source.
type Options struct {
	// URL is the MaaS URL, such as http://maas.example.com:5240/MAAS; the
	// API is under URL/api/2.0/.
	URL string `yaml:"url"`
	// APIKey is a MaaS API key, "<consumer key>:<token key>:<token
	// secret>", as `maas apikey` prints it. Requests are signed with
	// OAuth 1.0 PLAINTEXT, as MaaS clients do.
	APIKey string `yaml:"api_key"`
	// Timeout bounds each request when the source makes its own HTTP
	// client; default DefaultTimeout.
	Timeout time.Duration `yaml:"timeout"`
	// Filters are parameters of the machines listing, such as
	// {zone: [den1], pool: [edge]} or {tags: [cdn]}.
	Filters map[string][]string `yaml:"filters"`
	// ID says which machine attribute is the node ID: "fqdn" (default)
	// or "hostname".
	ID string `yaml:"id"`
	// Fields maps targets (a disposition field name, "label.<key>" or
	// "version.<component>") to machine attributes, over DefaultFields.
	// Attributes are those Attributes lists and "tag.<name>" ("true"
	// when the machine has the tag). An empty attribute removes a
	// default.
	Fields map[string]string `yaml:"fields"`
	// StatusMap maps MaaS status names to lifecycle states, over
	// DefaultStatusMap; a status mapped to "" leaves the state unknown.
	StatusMap map[string]string `yaml:"status_map"`
}

// DefaultFields is the mapping used for targets Options.Fields leaves
// out: the zone and the resource pool as labels maas_zone and maas_pool.
// The lifecycle state always comes from status_name through the status
// map, and the health is down for a Deployed machine whose power is off
// (MaaS says nothing about the health of others).
func DefaultFields() map[string]string {
	return map[string]string{
		"label.maas_zone": "zone",
		"label.maas_pool": "pool",
	}
}

// DefaultStatusMap maps the status names of MaaS machines to lifecycle
// states:
//
//	New, Commissioning, Testing, Ready, Allocated, Reserved, Deploying    provisioning
//	Deployed                                                             in-service
//	Rescue mode, Entering rescue mode, Exiting rescue mode               maintenance
//	Releasing, Disk erasing                                              drained
//	Broken, Missing, Failed commissioning, Failed testing,
//	Failed deployment, Releasing failed, Failed disk erasing,
//	Failed to enter rescue mode, Failed to exit rescue mode              repair
//	Retired                                                              decommissioned
//
// Other names leave the state unknown.
func DefaultStatusMap() map[string]string {
	m := map[string]string{
		"Deployed": "in-service",
		"Retired":  "decommissioned",
	}
	for _, s := range []string{"New", "Commissioning", "Testing", "Ready", "Allocated", "Reserved", "Deploying"} {
		m[s] = "provisioning"
	}
	for _, s := range []string{"Rescue mode", "Entering rescue mode", "Exiting rescue mode"} {
		m[s] = "maintenance"
	}
	for _, s := range []string{"Releasing", "Disk erasing"} {
		m[s] = "drained"
	}
	for _, s := range []string{"Broken", "Missing", "Failed commissioning", "Failed testing", "Failed deployment",
		"Releasing failed", "Failed disk erasing", "Failed to enter rescue mode", "Failed to exit rescue mode"} {
		m[s] = "repair"
	}
	return m
}

// Attributes lists the machine attributes Options.Fields may use besides
// "tag.<name>". "platform" is osystem and distro_series joined by "-"
// ("ubuntu-jammy", "custom-debian-12").
func Attributes() []string { return slices.Clone(attributeNames) }

var attributeNames = []string{
	"hostname", "fqdn", "system_id", "domain", "zone", "pool", "status_name",
	"power_state", "osystem", "distro_series", "platform", "architecture", "owner",
}

// Source reads machines from Canonical MaaS. It is safe for concurrent
// use.
type Source struct {
	name     string
	machines string // URL of the machines listing, with filters
	opts     Options
	consumer string
	token    string
	secret   string
	client   *http.Client
	fields   []mapping
	states   map[string]disposition.State
}

type mapping struct {
	field disposition.Field
	key   string
	attr  string
}

// Option changes how New builds a Source.
type Option func(*Source)

// WithHTTPClient makes the source use c instead of a client of its own.
func WithHTTPClient(c *http.Client) Option { return func(s *Source) { s.client = c } }

// New returns a MaaS source named name. It checks opts; an error is a
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
	parts := strings.Split(opts.APIKey, ":")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return nil, bad("api_key", "want <consumer key>:<token key>:<token secret>")
	}
	switch {
	case opts.Timeout == 0:
		opts.Timeout = DefaultTimeout
	case opts.Timeout < 0:
		return nil, bad("timeout", "must be positive, got %s", opts.Timeout)
	}
	switch opts.ID {
	case "":
		opts.ID = "fqdn"
	case "fqdn", "hostname":
	default:
		return nil, bad("id", `want "fqdn" or "hostname", got %q`, opts.ID)
	}
	for k := range opts.Filters {
		if k == "" || k == "op" {
			return nil, bad("filters", "parameter %q is not a filter", k)
		}
	}
	q := url.Values{}
	for k, vs := range opts.Filters {
		q[k] = slices.Clone(vs)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/api/2.0/machines/"
	u.RawQuery, u.Fragment = q.Encode(), ""

	s := &Source{
		name: name, machines: u.String(), opts: opts,
		consumer: parts[0], token: parts[1], secret: parts[2],
	}
	if s.states, err = sources.ParseStateMap(DefaultStatusMap(), opts.StatusMap); err != nil {
		return nil, bad("status_map", "%v", err)
	}
	fms, err := sources.MergeFieldMap(DefaultFields(), opts.Fields)
	if err != nil {
		return nil, bad("fields", "%v", err)
	}
	for _, fm := range fms {
		if t, ok := strings.CutPrefix(fm.Attr, "tag."); !(ok && t != "") && !slices.Contains(attributeNames, fm.Attr) {
			return nil, bad("fields", "%s: unknown attribute %q (want one of %s or tag.<name>)",
				fm.Target, fm.Attr, strings.Join(attributeNames, ", "))
		}
		s.fields = append(s.fields, mapping{field: fm.Field, key: fm.Key, attr: fm.Attr})
	}
	for _, o := range options {
		o(s)
	}
	if s.client == nil {
		s.client = &http.Client{Timeout: opts.Timeout}
	}
	return s, nil
}

// Factory makes a MaaS source from its YAML options, for a
// sources.Registry.
func Factory(name string, options *yaml.Node) (sources.Source, error) {
	return sources.Decode(name, options, func(n string, o Options) (*Source, error) { return New(n, o) })
}

// Name returns the source's name.
func (s *Source) Name() string { return s.name }

// named is how MaaS nests a zone, pool or domain in a machine.
type named struct {
	Name string `json:"name"`
}

// machine is the part of a MaaS machine the source reads.
type machine struct {
	SystemID     string   `json:"system_id"`
	Hostname     string   `json:"hostname"`
	FQDN         string   `json:"fqdn"`
	Domain       *named   `json:"domain"`
	Zone         *named   `json:"zone"`
	Pool         *named   `json:"pool"`
	StatusName   string   `json:"status_name"`
	PowerState   string   `json:"power_state"`
	OSystem      string   `json:"osystem"`
	DistroSeries string   `json:"distro_series"`
	Architecture string   `json:"architecture"`
	Owner        *string  `json:"owner"`
	TagNames     []string `json:"tag_names"`
}

func (m *machine) attr(name string) string {
	switch name {
	case "hostname":
		return m.Hostname
	case "fqdn":
		return m.FQDN
	case "system_id":
		return m.SystemID
	case "domain":
		if m.Domain != nil {
			return m.Domain.Name
		}
	case "zone":
		if m.Zone != nil {
			return m.Zone.Name
		}
	case "pool":
		if m.Pool != nil {
			return m.Pool.Name
		}
	case "status_name":
		return m.StatusName
	case "power_state":
		return m.PowerState
	case "osystem":
		return m.OSystem
	case "distro_series":
		return m.DistroSeries
	case "platform":
		if m.OSystem != "" && m.DistroSeries != "" {
			return m.OSystem + "-" + m.DistroSeries
		}
	case "architecture":
		return m.Architecture
	case "owner":
		if m.Owner != nil {
			return *m.Owner
		}
	default:
		if t, ok := strings.CutPrefix(name, "tag."); ok && slices.Contains(m.TagNames, t) {
			return "true"
		}
	}
	return ""
}

// Fetch reads every machine (MaaS 2.0 lists them in one response) and
// returns one Observation per machine with an ID.
func (s *Source) Fetch(ctx context.Context) ([]sources.Observation, error) {
	var ms []machine
	if err := s.get(ctx, s.machines, &ms); err != nil {
		return nil, fmt.Errorf("maas: machines: %w", err)
	}
	out := make([]sources.Observation, 0, len(ms))
	for i := range ms {
		m := &ms[i]
		id := m.FQDN
		if s.opts.ID == "hostname" {
			id = m.Hostname
		}
		if id == "" {
			continue
		}
		obs, err := s.observe(id, m)
		if err != nil {
			return nil, fmt.Errorf("maas: machine %s (%s): %w", m.SystemID, id, err)
		}
		out = append(out, *obs)
	}
	return out, nil
}

func (s *Source) observe(id string, m *machine) (*sources.Observation, error) {
	obs := sources.Observe(id)
	if st, ok := s.states[m.StatusName]; ok && st != disposition.StateUnknown {
		obs.State(st)
	}
	if m.StatusName == "Deployed" && m.PowerState == "off" {
		obs.Health(disposition.HealthDown)
	}
	for _, f := range s.fields {
		v := m.attr(f.attr)
		if v == "" {
			continue
		}
		if err := obs.Set(f.field, f.key, v); err != nil {
			return nil, fmt.Errorf("%s from %s: %w", f.field, f.attr, err)
		}
	}
	return obs, nil
}

// Authorization returns the OAuth 1.0 PLAINTEXT Authorization header
// value MaaS expects for an API key's parts, with the given nonce and
// timestamp. The signature is the consumer secret (empty for MaaS) and
// the token secret joined by "&", percent-encoded as RFC 5849 says.
func Authorization(consumerKey, tokenKey, tokenSecret, nonce string, timestamp time.Time) string {
	sig := "&" + oauthEscape(tokenSecret)
	return fmt.Sprintf(`OAuth oauth_version="1.0", oauth_signature_method="PLAINTEXT", `+
		`oauth_consumer_key="%s", oauth_token="%s", oauth_signature="%s", oauth_nonce="%s", oauth_timestamp="%s"`,
		oauthEscape(consumerKey), oauthEscape(tokenKey), oauthEscape(sig), oauthEscape(nonce),
		strconv.FormatInt(timestamp.Unix(), 10))
}

// oauthEscape percent-encodes all but RFC 3986's unreserved characters.
func oauthEscape(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

func (s *Source) get(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	var nonce [16]byte
	_, _ = rand.Read(nonce[:]) // crypto/rand.Read never fails
	req.Header.Set("Authorization", Authorization(s.consumer, s.token, s.secret, hex.EncodeToString(nonce[:]), time.Now()))
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return &StatusError{StatusCode: resp.StatusCode, Body: strings.TrimSpace(string(b))}
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxBody)).Decode(v); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		if errors.As(err, &se) || errors.As(err, &te) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: %v", ErrBadResponse, err)
		}
		return err
	}
	return nil
}
