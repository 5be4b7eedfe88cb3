package netbox

import (
	"context"
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

// Defaults for Options fields left zero.
const (
	// DefaultPageSize is NetBox's default MAX_PAGE_SIZE: a larger limit is
	// capped by the server anyway.
	DefaultPageSize = 1000
	// DefaultMaxPages bounds the pages read from one endpoint per fetch.
	DefaultMaxPages = 10000
	// DefaultTimeout bounds one request of the default HTTP client.
	DefaultTimeout = 30 * time.Second
	// DefaultAuthScheme prefixes the token in the Authorization header.
	DefaultAuthScheme = "Token"
)

// maxBody caps one response body; a page of 1,000 devices is a few MB.
const maxBody = 256 << 20

var (
	// ErrUnauthorized is wrapped by errors for responses 401 and 403:
	// the token is missing, wrong, expired or lacks permission.
	ErrUnauthorized = sources.ErrUnauthorized
	// ErrBadResponse is wrapped by errors for responses that are not the
	// JSON NetBox documents (malformed, truncated, wrong shape).
	ErrBadResponse = sources.ErrBadResponse
	// ErrPagination is wrapped when paging does not end: a next link seen
	// before, or more than Options.MaxPages pages.
	ErrPagination = errors.New("pagination does not end")
)

// StatusError is a response with a status other than the API's success.
// It wraps ErrUnauthorized for 401 and 403.
type StatusError = sources.StatusError

// Options configure a NetBox source. The zero value of every field but URL
// and Token has a documented default.
type Options struct {
	// URL is NetBox's base URL, such as https://netbox.example.com; the
	// API is under URL/api/.
	URL string `yaml:"url"`
	// Token is the API token.
	Token string `yaml:"token"`
	// AuthScheme is the word before the token in the Authorization
	// header: "Token" (default) for NetBox's classic tokens, "Bearer" for
	// v2 tokens.
	AuthScheme string `yaml:"auth_scheme"`
	// PageSize is the limit asked for per page, 1 to 100000; default
	// DefaultPageSize. The server may return fewer (its MAX_PAGE_SIZE).
	PageSize int `yaml:"page_size"`
	// MaxPages bounds the pages read per endpoint and fetch; default
	// DefaultMaxPages.
	MaxPages int `yaml:"max_pages"`
	// Timeout bounds each request when the source makes its own HTTP
	// client; default DefaultTimeout.
	Timeout time.Duration `yaml:"timeout"`
	// SkipDevices leaves out dcim/devices.
	SkipDevices bool `yaml:"skip_devices"`
	// SkipVirtualMachines leaves out virtualization/virtual-machines.
	SkipVirtualMachines bool `yaml:"skip_virtual_machines"`
	// Filters are NetBox filter parameters added to the device and VM
	// queries, such as {tenant: [cdn], status: [active, staged]} or
	// {exclude: [config_context]} to spare NetBox rendering config
	// contexts.
	Filters map[string][]string `yaml:"filters"`
	// Fields maps targets to NetBox attributes, over DefaultFields: a
	// target is a disposition field name ("metro"), "label.<key>" or
	// "version.<component>" (see sources.ParseFieldName); an attribute is one of Attributes, or
	// "cf.<name>" for a custom field, or "tag.<slug>" ("true" when the
	// object has the tag). An empty attribute removes a default. A field
	// whose attribute is empty or null on an object is unknown.
	Fields map[string]string `yaml:"fields"`
	// StatusMap maps NetBox status values to lifecycle states, over
	// DefaultStatusMap; a status mapped to "" leaves the state unknown.
	StatusMap map[string]string `yaml:"status_map"`
	// TagLabelSeparator splits tags named "<key><sep><value>" into the
	// label key=value; default ":" (tag "tier:1" is label tier=1). Tags
	// without it are not labels. "-" is not allowed: slugs use it.
	TagLabelSeparator string `yaml:"tag_label_separator"`
	// NameSuffix is appended to object names that do not already end in
	// it, to turn short hostnames into node IDs, such as ".example.net".
	NameSuffix string `yaml:"name_suffix"`
}

// DefaultFields is the mapping used for targets Options.Fields leaves
// out. It assumes fleetkit's NetBox conventions: a region per metro (named
// by the metro code) under a region per fleet region, sites named by
// site code and carrying their IANA time zone, a cluster per server
// cluster, and custom fields release_state and capacity_gbps.
//
// The lifecycle state comes from the NetBox status through the status
// map; the kind is baremetal for devices and vm for virtual machines
// unless "kind" is mapped and present.
func DefaultFields() map[string]string {
	return map[string]string{
		"region":        "region.parent.slug",
		"metro":         "region.name",
		"site":          "site.name",
		"cluster":       "cluster.name",
		"rack":          "rack.name",
		"timezone":      "site.time_zone",
		"role":          "role.slug",
		"platform":      "platform.slug",
		"state":         "status",
		"release_state": "cf.release_state",
		"capacity_gbps": "cf.capacity_gbps",
	}
}

// DefaultStatusMap maps NetBox's device and virtual machine status values
// to lifecycle states:
//
//	active          in-service
//	planned         provisioning
//	staged          provisioning
//	failed          repair
//	offline         maintenance
//	inventory       drained
//	decommissioning decommissioned
//	paused          drained       (virtual machines, which have no inventory)
//
// Other values leave the state unknown.
func DefaultStatusMap() map[string]string {
	return map[string]string{
		"active":          "in-service",
		"planned":         "provisioning",
		"staged":          "provisioning",
		"failed":          "repair",
		"offline":         "maintenance",
		"inventory":       "drained",
		"decommissioning": "decommissioned",
		"paused":          "drained",
	}
}

// Attributes lists the attribute names Options.Fields may use besides
// "cf.<name>" and "tag.<slug>". The site, region and site group come from
// the object's site: "site.time_zone", "site.facility", "region.*" and
// "site_group.*" cost one extra listing of dcim/sites per fetch, and
// "region.parent.*" one of dcim/regions, because NetBox nests only the
// site's id, name and slug in a device.
func Attributes() []string {
	return slices.Clone(attributeNames)
}

var attributeNames = []string{
	"name", "id", "serial", "asset_tag", "status", "status.label", "primary_ip4",
	"site.name", "site.slug", "site.time_zone", "site.facility",
	"region.name", "region.slug", "region.parent.name", "region.parent.slug",
	"site_group.name", "site_group.slug",
	"tenant.name", "tenant.slug", "role.name", "role.slug",
	"platform.name", "platform.slug", "device_type.model", "device_type.slug",
	"rack.name", "location.name", "location.slug", "cluster.name",
}

// Source reads devices and virtual machines from NetBox. It is safe for
// concurrent use.
type Source struct {
	name      string
	base      *url.URL
	opts      Options
	client    *http.Client
	fields    []mapping
	states    map[string]disposition.State
	needSites bool
	needTree  bool
}

type mapping struct {
	target string
	field  disposition.Field
	key    string // label key or version component
	attr   string
}

// Option changes how New builds a Source.
type Option func(*Source)

// WithHTTPClient makes the source use c instead of a client of its own.
func WithHTTPClient(c *http.Client) Option { return func(s *Source) { s.client = c } }

// New returns a NetBox source named name. It checks opts; an error is a
// *sources.ConfigError whose Path names the first bad option.
func New(name string, opts Options, options ...Option) (*Source, error) {
	if name == "" {
		return nil, &sources.ConfigError{Path: "name", Err: errors.New("empty")}
	}
	bad := func(field, format string, args ...any) error {
		return &sources.ConfigError{Path: field, Err: fmt.Errorf(format, args...)}
	}
	u, err := url.Parse(opts.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, bad("url", "want an http(s) URL, got %q", opts.URL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawQuery, u.Fragment = "", ""
	if opts.Token == "" {
		return nil, bad("token", "empty")
	}
	if opts.AuthScheme == "" {
		opts.AuthScheme = DefaultAuthScheme
	}
	if strings.ContainsAny(opts.AuthScheme, " \t\r\n") {
		return nil, bad("auth_scheme", "must be one word, got %q", opts.AuthScheme)
	}
	switch {
	case opts.PageSize == 0:
		opts.PageSize = DefaultPageSize
	case opts.PageSize < 0 || opts.PageSize > 100000:
		return nil, bad("page_size", "must be between 1 and 100000, got %d", opts.PageSize)
	}
	switch {
	case opts.MaxPages == 0:
		opts.MaxPages = DefaultMaxPages
	case opts.MaxPages < 0:
		return nil, bad("max_pages", "must be positive, got %d", opts.MaxPages)
	}
	switch {
	case opts.Timeout == 0:
		opts.Timeout = DefaultTimeout
	case opts.Timeout < 0:
		return nil, bad("timeout", "must be positive, got %s", opts.Timeout)
	}
	if opts.SkipDevices && opts.SkipVirtualMachines {
		return nil, bad("skip_devices", "and skip_virtual_machines leave nothing to read")
	}
	for k := range opts.Filters {
		switch k {
		case "", "limit", "offset", "brief":
			return nil, bad("filters", "parameter %q is not a filter", k)
		}
	}
	if opts.TagLabelSeparator == "" {
		opts.TagLabelSeparator = ":"
	}
	if opts.TagLabelSeparator == "-" {
		return nil, bad("tag_label_separator", `"-" would split every slug`)
	}
	s := &Source{name: name, base: u, opts: opts}

	if s.states, err = sources.ParseStateMap(DefaultStatusMap(), opts.StatusMap); err != nil {
		return nil, bad("status_map", "%v", err)
	}
	fms, err := sources.MergeFieldMap(DefaultFields(), opts.Fields)
	if err != nil {
		return nil, bad("fields", "%v", err)
	}
	for _, fm := range fms {
		target, attr := fm.Target, fm.Attr
		if !knownAttr(attr) {
			return nil, bad("fields", "%s: unknown attribute %q (want one of %s, cf.<name> or tag.<slug>)",
				target, attr, strings.Join(attributeNames, ", "))
		}
		s.fields = append(s.fields, mapping{target: target, field: fm.Field, key: fm.Key, attr: attr})
		switch {
		case strings.HasPrefix(attr, "region.parent."):
			s.needSites, s.needTree = true, true
		case strings.HasPrefix(attr, "region."), strings.HasPrefix(attr, "site_group."),
			attr == "site.time_zone", attr == "site.facility":
			s.needSites = true
		}
	}
	for _, o := range options {
		o(s)
	}
	if s.client == nil {
		s.client = &http.Client{Timeout: opts.Timeout}
	}
	return s, nil
}

func knownAttr(a string) bool {
	if rest, ok := strings.CutPrefix(a, "cf."); ok {
		return rest != ""
	}
	if rest, ok := strings.CutPrefix(a, "tag."); ok {
		return rest != ""
	}
	return slices.Contains(attributeNames, a)
}

// Factory makes a NetBox source from its YAML options, for a
// sources.Registry. Errors are *sources.ConfigError values naming the
// option and its line.
func Factory(name string, options *yaml.Node) (sources.Source, error) {
	return sources.Decode(name, options, func(n string, o Options) (*Source, error) { return New(n, o) })
}

// Name returns the source's name.
func (s *Source) Name() string { return s.name }

// Fetch lists the devices and virtual machines (and the sites and regions
// when the field mapping needs them) and returns one Observation per
// object with a name. A name seen twice (a device and a VM) keeps its
// first object, the device.
func (s *Source) Fetch(ctx context.Context) ([]sources.Observation, error) {
	var t tree
	if s.needSites {
		sites, err := list[site](ctx, s, "/api/dcim/sites/", "sites", nil)
		if err != nil {
			return nil, err
		}
		t.sites = make(map[int]*site, len(sites))
		for i := range sites {
			t.sites[sites[i].ID] = &sites[i]
		}
	}
	if s.needTree {
		regions, err := list[region](ctx, s, "/api/dcim/regions/", "regions", nil)
		if err != nil {
			return nil, err
		}
		t.regions = make(map[int]*region, len(regions))
		for i := range regions {
			t.regions[regions[i].ID] = &regions[i]
		}
	}
	var out []sources.Observation
	seen := map[string]bool{}
	add := func(objs []object, kind disposition.Kind, what string) error {
		for i := range objs {
			o := &objs[i]
			if o.Name == nil || *o.Name == "" {
				continue
			}
			obs, err := s.observe(o, kind, &t)
			if err != nil {
				return fmt.Errorf("netbox: %s id %d (%s): %w", what, o.ID, *o.Name, err)
			}
			if seen[obs.ID] {
				continue
			}
			seen[obs.ID] = true
			out = append(out, *obs)
		}
		return nil
	}
	if !s.opts.SkipDevices {
		devs, err := list[object](ctx, s, "/api/dcim/devices/", "devices", s.opts.Filters)
		if err != nil {
			return nil, err
		}
		if err := add(devs, disposition.KindBaremetal, "device"); err != nil {
			return nil, err
		}
	}
	if !s.opts.SkipVirtualMachines {
		vms, err := list[object](ctx, s, "/api/virtualization/virtual-machines/", "virtual-machines", s.opts.Filters)
		if err != nil {
			return nil, err
		}
		if err := add(vms, disposition.KindVM, "virtual machine"); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (s *Source) observe(o *object, kind disposition.Kind, t *tree) (*sources.Observation, error) {
	id := *o.Name
	if s.opts.NameSuffix != "" && !strings.HasSuffix(id, s.opts.NameSuffix) {
		id += s.opts.NameSuffix
	}
	obs := sources.Observe(id).Kind(kind)
	for _, m := range s.fields {
		v, ok := o.attr(m.attr, t)
		if !ok || v == "" {
			continue
		}
		if m.field == disposition.FieldState && m.attr == "status" {
			if st, ok := s.states[v]; ok && st != disposition.StateUnknown {
				obs.State(st)
			}
			continue
		}
		if err := obs.Set(m.field, m.key, v); err != nil {
			return nil, fmt.Errorf("%s from %s: %w", m.target, m.attr, err)
		}
	}
	for _, tg := range o.Tags {
		if k, v, ok := strings.Cut(tg.Name, s.opts.TagLabelSeparator); ok && k != "" {
			obs.Label(k, v)
		}
	}
	return obs, nil
}

// page is one page of a NetBox list response.
type page[T any] struct {
	Count   *int    `json:"count"`
	Next    *string `json:"next"`
	Results []T     `json:"results"`
}

// list reads every page of a NetBox list endpoint. Only the path and
// query of a next link are followed, resolved against Options.URL: NetBox
// behind a TLS-terminating proxy often links to http:// URLs, and the
// token must not leave for another host.
func list[T any](ctx context.Context, s *Source, path, what string, filters map[string][]string) ([]T, error) {
	q := url.Values{}
	for k, vs := range filters {
		q[k] = slices.Clone(vs)
	}
	q.Set("limit", strconv.Itoa(s.opts.PageSize))
	q.Set("offset", "0")
	u := *s.base
	u.Path += path
	u.RawQuery = q.Encode()
	next := u.String()

	var out []T
	seen := map[string]bool{}
	for n := 1; next != ""; n++ {
		if n > s.opts.MaxPages {
			return nil, fmt.Errorf("netbox: %s: %w: more than %d pages", what, ErrPagination, s.opts.MaxPages)
		}
		if seen[next] {
			return nil, fmt.Errorf("netbox: %s page %d: %w: next link %s seen before", what, n, ErrPagination, next)
		}
		seen[next] = true
		var p page[T]
		if err := s.get(ctx, next, &p); err != nil {
			return nil, fmt.Errorf("netbox: %s page %d: %w", what, n, err)
		}
		if p.Count == nil || p.Results == nil {
			return nil, fmt.Errorf("netbox: %s page %d: %w: not a NetBox list (no count or results)", what, n, ErrBadResponse)
		}
		out = append(out, p.Results...)
		next = ""
		if p.Next != nil && *p.Next != "" {
			nu, err := url.Parse(*p.Next)
			if err != nil {
				return nil, fmt.Errorf("netbox: %s page %d: %w: next link: %v", what, n, ErrBadResponse, err)
			}
			if len(p.Results) == 0 {
				return nil, fmt.Errorf("netbox: %s page %d: %w: empty page links to another", what, n, ErrPagination)
			}
			r := *s.base
			r.Path, r.RawPath, r.RawQuery = nu.Path, nu.RawPath, nu.RawQuery
			next = r.String()
		}
	}
	return out, nil
}

func (s *Source) get(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", s.opts.AuthScheme+" "+s.opts.Token)
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
		return decodeError(err)
	}
	return nil
}

// decodeError marks JSON errors as ErrBadResponse and passes transport
// errors (timeouts, cancellation) through.
func decodeError(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	if errors.As(err, &se) || errors.As(err, &te) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: %v", ErrBadResponse, err)
	}
	return err
}
