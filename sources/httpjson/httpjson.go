package httpjson

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/sources"
)

// Pagination types.
const (
	None     = "none"      // one request
	NextLink = "next_link" // the response holds the URL of the next page
	Cursor   = "cursor"    // the response holds a cursor to send back as a query parameter
	Page     = "page"      // page numbers in a query parameter, until an empty or short page
)

// Authentication types.
const (
	Bearer = "bearer" // Authorization: <Scheme> <token>
	Header = "header" // <Header>: <token>
)

// Defaults for zero Options values.
const (
	DefaultMaxPages     = 1000
	DefaultMaxBodyBytes = 64 << 20
)

// Errors callers branch on.
var (
	// ErrUnauthorized is matched by a *StatusError for 401 and 403.
	ErrUnauthorized = sources.ErrUnauthorized
	// ErrPageLoop: the server sent a next link or cursor seen before, or
	// the same page twice.
	ErrPageLoop = errors.New("pagination loops")
	// ErrTooManyPages: more pages than Options.MaxPages.
	ErrTooManyPages = errors.New("too many pages")
	// ErrBadResponse: a response is not JSON, too large, or not shaped as
	// the options say.
	ErrBadResponse = sources.ErrBadResponse
)

// StatusError is a response with a status other than 2xx.
type StatusError struct {
	URL        string // redacted of any password
	StatusCode int
	// Body is the start of the response body, for the operator.
	Body string
}

// Error implements the error interface.
func (e *StatusError) Error() string {
	msg := fmt.Sprintf("GET %s: %d %s", e.URL, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// Is makes errors.Is(err, ErrUnauthorized) true for 401 and 403.
func (e *StatusError) Is(target error) bool {
	return target == ErrUnauthorized && (e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden)
}

// Options configure an httpjson source; in YAML, the source's options.
type Options struct {
	// URL is the first page. Required.
	URL string `yaml:"url"`
	// Items is the path of the array of items in each page; empty means
	// the page is the array.
	Items string `yaml:"items"`
	// ID is the path of the node ID (host name) in each item; empty
	// means "id". Items without one are skipped.
	ID string `yaml:"id"`
	// Fields maps what to report to its path in an item. Keys are field
	// names as in the index's JSON (metro, state, traffic_gbps, ...),
	// "label.<key>" and "version.<component>" for one entry, or "labels"
	// and "versions" for an object whose entries are all taken.
	Fields map[string]string `yaml:"fields"`
	// Values maps raw values to disposition values, per key of Fields:
	// e.g. state: {active: in-service, offline: maintenance}. The key "*"
	// maps every other value; mapping to "" makes the field unknown.
	// Values with no mapping are used as they are.
	Values map[string]map[string]string `yaml:"values"`
	// Pagination says how to get the next page.
	Pagination Pagination `yaml:"pagination"`
	// MaxPages bounds the pages of one fetch; zero means DefaultMaxPages.
	MaxPages int `yaml:"max_pages"`
	// MaxBodyBytes bounds one page's body; zero means DefaultMaxBodyBytes.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// Auth says how to authenticate.
	Auth Auth `yaml:"auth"`
	// Headers are sent with every request.
	Headers map[string]string `yaml:"headers"`
	// Client makes the requests; nil means a new http.Client. Timeouts
	// come from the fetch's context.
	Client *http.Client `yaml:"-"`
}

// Pagination configures how pages follow each other.
type Pagination struct {
	// Type is none (or empty), next_link, cursor or page.
	Type string `yaml:"type"`
	// Path is, for next_link, the path of the next page's URL (absolute
	// or relative) in the response, default "next"; for cursor, the path
	// of the next cursor. A missing, null or empty value ends the listing.
	Path string `yaml:"path"`
	// Param is the query parameter carrying the cursor (default
	// "cursor") or the page number (default "page").
	Param string `yaml:"param"`
	// SizeParam and Size, for page, ask for Size items per page; a page
	// with fewer items is the last. Without them, the listing ends at an
	// empty page.
	SizeParam string `yaml:"size_param"`
	Size      int    `yaml:"size"`
	// Start is the first page number; nil means 1.
	Start *int `yaml:"start"`
}

// Auth configures authentication. The token is Token, or the content of
// TokenFile (read at every fetch, so a rotated secret is picked up).
type Auth struct {
	// Type is empty (none), bearer or header.
	Type      string `yaml:"type"`
	Token     string `yaml:"token"`
	TokenFile string `yaml:"token_file"`
	// Header is the header to send the token in, for type header.
	Header string `yaml:"header"`
	// Scheme precedes the token for type bearer; empty means "Bearer".
	// NetBox, for instance, wants "Token".
	Scheme string `yaml:"scheme"`
}

// mapping is one compiled entry of Options.Fields.
type mapping struct {
	name   string
	field  disposition.Field
	key    string // label key or version component
	whole  bool   // "labels" or "versions": an object of entries
	path   []string
	values map[string]string
}

// Source fetches a JSON listing over HTTP. It is safe for concurrent use.
type Source struct {
	name     string
	opts     Options
	base     *url.URL
	items    []string
	id       []string
	maps     []mapping
	maxPages int
	maxBody  int64
	client   *http.Client
}

// New validates opts and returns a source. Errors name the option.
func New(name string, opts Options) (*Source, error) {
	if name == "" {
		return nil, errors.New("httpjson: empty source name")
	}
	if opts.URL == "" {
		return nil, errors.New("url: required")
	}
	base, err := url.Parse(opts.URL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("url: %q is not an http(s) URL", opts.URL)
	}
	s := &Source{name: name, opts: opts, base: base, items: splitPath(opts.Items),
		id: splitPath(cmp.Or(opts.ID, "id")), maxPages: opts.MaxPages, maxBody: opts.MaxBodyBytes, client: opts.Client}
	if s.maxPages == 0 {
		s.maxPages = DefaultMaxPages
	}
	if s.maxPages < 0 {
		return nil, fmt.Errorf("max_pages: %d is negative", s.maxPages)
	}
	if s.maxBody == 0 {
		s.maxBody = DefaultMaxBodyBytes
	}
	if s.maxBody < 0 {
		return nil, fmt.Errorf("max_body_bytes: %d is negative", s.maxBody)
	}
	if s.client == nil {
		s.client = &http.Client{}
	}
	if len(opts.Fields) == 0 {
		return nil, errors.New("fields: at least one field mapping is required")
	}
	for _, name := range slices.Sorted(maps.Keys(opts.Fields)) {
		path := opts.Fields[name]
		m := mapping{name: name, path: splitPath(path)}
		if path == "" {
			return nil, fmt.Errorf("fields.%s: empty path", name)
		}
		switch name {
		case "labels":
			m.field, m.whole = disposition.FieldLabels, true
		case "versions":
			m.field, m.whole = disposition.FieldVersions, true
		default:
			f, key, err := sources.ParseFieldName(name)
			if err != nil {
				return nil, fmt.Errorf("fields.%s: %w", name, err)
			}
			m.field, m.key = f, key
		}
		s.maps = append(s.maps, m)
	}
	for name, vm := range opts.Values {
		i := slices.IndexFunc(s.maps, func(m mapping) bool { return m.name == name })
		if i < 0 {
			return nil, fmt.Errorf("values.%s: not a key of fields", name)
		}
		for raw, v := range vm {
			if v == "" {
				continue
			}
			var probe sources.Observation
			if err := probe.Set(s.maps[i].field, cmp.Or(s.maps[i].key, "k"), v); err != nil {
				return nil, fmt.Errorf("values.%s.%s: %w", name, raw, err)
			}
		}
		s.maps[i].values = vm
	}
	p := &s.opts.Pagination
	switch p.Type {
	case "", None:
		p.Type = None
	case NextLink:
		p.Path = cmp.Or(p.Path, "next")
	case Cursor:
		if p.Path == "" {
			return nil, errors.New("pagination.path: required for cursor pagination (where the next cursor is)")
		}
		p.Param = cmp.Or(p.Param, "cursor")
	case Page:
		p.Param = cmp.Or(p.Param, "page")
		if (p.SizeParam == "") != (p.Size == 0) || p.Size < 0 {
			return nil, errors.New("pagination: size_param and a positive size go together")
		}
	default:
		return nil, fmt.Errorf("pagination.type: unknown %q (valid: none, next_link, cursor, page)", p.Type)
	}
	a := &s.opts.Auth
	switch a.Type {
	case "":
		if a.Token != "" || a.TokenFile != "" {
			return nil, errors.New("auth.type: required with a token (bearer or header)")
		}
	case Bearer, Header:
		if (a.Token == "") == (a.TokenFile == "") {
			return nil, errors.New("auth: exactly one of token and token_file is required")
		}
		if a.Type == Header && a.Header == "" {
			return nil, errors.New("auth.header: required for header authentication")
		}
		a.Scheme = cmp.Or(a.Scheme, "Bearer")
	default:
		return nil, fmt.Errorf("auth.type: unknown %q (valid: bearer, header)", a.Type)
	}
	return s, nil
}

// Factory makes an httpjson source from its YAML options, for a
// sources.Registry.
func Factory(name string, options *yaml.Node) (sources.Source, error) {
	return sources.Decode(name, options, New)
}

// Name returns the source's name.
func (s *Source) Name() string { return s.name }

// Fetch gets every page and returns one observation per item with an ID;
// an ID listed twice (items shifting between pages) keeps its last item.
func (s *Source) Fetch(ctx context.Context) ([]sources.Observation, error) {
	token, err := s.token()
	if err != nil {
		return nil, err
	}
	p := s.opts.Pagination
	var (
		obs      []sources.Observation
		in       = interner{}
		index    = map[string]int{}
		seen     = map[string]bool{}
		prevHash [sha256.Size]byte
		pageNum  = 1
		next     = *s.base
	)
	if p.Start != nil {
		pageNum = *p.Start
	}
	for page := 1; ; page++ {
		if page > s.maxPages {
			return nil, fmt.Errorf("httpjson: %w: more than %d pages", ErrTooManyPages, s.maxPages)
		}
		u := next
		if p.Type == Page {
			q := u.Query()
			q.Set(p.Param, strconv.Itoa(pageNum))
			if p.SizeParam != "" {
				q.Set(p.SizeParam, strconv.Itoa(p.Size))
			}
			u.RawQuery = q.Encode()
		}
		body, err := s.get(ctx, &u, token)
		if err != nil {
			return nil, fmt.Errorf("httpjson: page %d: %w", page, err)
		}
		bad := func(format string, args ...any) error {
			return fmt.Errorf("httpjson: page %d (%s): %w: %s", page, u.Redacted(), ErrBadResponse, fmt.Sprintf(format, args...))
		}
		doc, err := decode(body)
		if err != nil {
			return nil, bad("%v", err)
		}
		raw, ok := lookup(doc, s.items)
		items, isList := raw.([]any)
		if !ok || (!isList && raw != nil) { // null: no items
			return nil, bad("items %q: not a list", s.opts.Items)
		}
		withID := 0
		for i, item := range items {
			o, err := s.observe(item, in)
			if err != nil {
				return nil, bad("item %d: %v", i, err)
			}
			if o.ID == "" {
				continue
			}
			withID++
			if j, dup := index[o.ID]; dup {
				obs[j] = o
				continue
			}
			index[o.ID] = len(obs)
			obs = append(obs, o)
		}
		if len(items) > 0 && withID == 0 {
			return nil, bad("id %q: no item has one", cmp.Or(s.opts.ID, "id"))
		}

		switch p.Type {
		case None:
			return obs, nil
		case NextLink:
			v, _ := lookup(doc, splitPath(p.Path))
			link, ok := v.(string)
			if v != nil && !ok {
				return nil, bad("next link %q: not a string", p.Path)
			}
			if link == "" {
				return obs, nil
			}
			nu, err := u.Parse(link)
			if err != nil {
				return nil, bad("next link %q: %v", link, err)
			}
			if nu.Scheme != "http" && nu.Scheme != "https" {
				return nil, bad("next link %q: not an http(s) URL", link)
			}
			if seen[nu.String()] || nu.String() == s.base.String() {
				return nil, fmt.Errorf("httpjson: page %d: %w: next link %s was already fetched", page, ErrPageLoop, nu.Redacted())
			}
			seen[nu.String()] = true
			next = *nu
		case Cursor:
			v, _ := lookup(doc, splitPath(p.Path))
			cur, err := scalar(v)
			if err != nil {
				return nil, bad("cursor %q: %v", p.Path, err)
			}
			if cur == "" {
				return obs, nil
			}
			if seen[cur] {
				return nil, fmt.Errorf("httpjson: page %d: %w: cursor %q came back", page, ErrPageLoop, cur)
			}
			seen[cur] = true
			next = *s.base
			q := next.Query()
			q.Set(p.Param, cur)
			next.RawQuery = q.Encode()
		case Page:
			if len(items) == 0 || (p.Size > 0 && len(items) < p.Size) {
				return obs, nil
			}
			h := sha256.Sum256(body)
			if page > 1 && h == prevHash {
				return nil, fmt.Errorf("httpjson: page %d: %w: the server sent the same page again (is %q the page parameter?)", page, ErrPageLoop, p.Param)
			}
			prevHash = h
			pageNum++
		}
	}
}

// observe turns one item into an observation; an item without an ID
// gives one with an empty ID.
func (s *Source) observe(item any, in interner) (sources.Observation, error) {
	var o sources.Observation
	v, ok := lookup(item, s.id)
	if !ok || v == nil {
		return o, nil
	}
	id, err := scalar(v)
	if err != nil {
		return o, fmt.Errorf("id: %v", err)
	}
	o.ID = id
	for i := range s.maps {
		m := &s.maps[i]
		v, ok := lookup(item, m.path)
		if !ok || v == nil {
			continue
		}
		fail := func(err error) error {
			return fmt.Errorf("%q: fields.%s (%s): %w", id, m.name, strings.Join(m.path, "."), err)
		}
		if m.whole {
			obj, ok := v.(map[string]any)
			if !ok {
				return o, fail(errors.New("not an object"))
			}
			o.Known = o.Known.With(m.field)
			for _, k := range slices.Sorted(maps.Keys(obj)) {
				sv, err := scalar(obj[k])
				if err != nil {
					return o, fail(fmt.Errorf("entry %q: %v", k, err))
				}
				if err := o.Set(m.field, in.str(k), in.str(sv)); err != nil {
					return o, fail(err)
				}
			}
			continue
		}
		sv, err := scalar(v)
		if err != nil {
			return o, fail(err)
		}
		if m.values != nil {
			if mv, ok := m.values[sv]; ok {
				sv = mv
			} else if def, ok := m.values["*"]; ok {
				sv = def
			}
		}
		if err := o.Set(m.field, m.key, in.str(sv)); err != nil {
			return o, fail(err)
		}
	}
	return o, nil
}

// interner shares the repeated values of one fetch (metros, roles,
// versions), which JSON decoding gives as separate strings.
type interner map[string]string

func (in interner) str(s string) string {
	if c, ok := in[s]; ok {
		return c
	}
	in[s] = s
	return s
}

// token returns the token to send, reading TokenFile if set.
func (s *Source) token() (string, error) {
	a := s.opts.Auth
	if a.TokenFile == "" {
		return a.Token, nil
	}
	b, err := os.ReadFile(a.TokenFile)
	if err != nil {
		return "", fmt.Errorf("httpjson: auth.token_file: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("httpjson: auth.token_file %s is empty", a.TokenFile)
	}
	return t, nil
}

// get fetches one page and returns its body.
func (s *Source) get(ctx context.Context, u *url.URL, token string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	for k, v := range s.opts.Headers {
		req.Header.Set(k, v)
	}
	switch a := s.opts.Auth; a.Type {
	case Bearer:
		req.Header.Set("Authorization", a.Scheme+" "+token)
	case Header:
		req.Header.Set(a.Header, token)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err // *url.Error names the method and URL
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
		return nil, &StatusError{URL: u.Redacted(), StatusCode: resp.StatusCode, Body: printable(snippet)}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, s.maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: reading the body: %w", u.Redacted(), err)
	}
	if int64(len(body)) > s.maxBody {
		return nil, fmt.Errorf("GET %s: %w: body larger than %d bytes", u.Redacted(), ErrBadResponse, s.maxBody)
	}
	return body, nil
}

// decode parses a JSON document, numbers kept as json.Number; errors
// give the line and column.
func decode(body []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	if err == nil {
		if _, extra := dec.Token(); extra != io.EOF {
			err = errors.New("data after the JSON document")
		}
	}
	if err == nil {
		return v, nil
	}
	var se *json.SyntaxError
	off := dec.InputOffset()
	if errors.As(err, &se) {
		off = se.Offset - 1 // Offset counts the offending byte
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		off, err = int64(len(body)), errors.New("unexpected end of JSON")
	}
	off = max(0, min(off, int64(len(body))))
	line := bytes.Count(body[:off], []byte("\n")) + 1
	col := int(off) - bytes.LastIndexByte(body[:off], '\n')
	return nil, fmt.Errorf("malformed JSON at line %d, column %d: %v", line, col, err)
}

// lookup follows a path into a decoded JSON value.
func lookup(v any, path []string) (any, bool) {
	for _, seg := range path {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[seg]; !ok {
				return nil, false
			}
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// scalar returns the text of a JSON scalar; null is "".
func scalar(v any) (string, error) {
	switch x := v.(type) {
	case nil:
		return "", nil
	case string:
		return x, nil
	case json.Number:
		return x.String(), nil
	case bool:
		return strconv.FormatBool(x), nil
	case map[string]any:
		return "", errors.New("want a value, got an object")
	}
	return "", errors.New("want a value, got an array")
}

func splitPath(p string) []string {
	if p == "" {
		return nil
	}
	return strings.Split(p, ".")
}

// printable shortens a body snippet to one line of valid text.
func printable(b []byte) string {
	s := strings.ToValidUTF8(string(b), "?")
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		s += "..."
	}
	return s
}
