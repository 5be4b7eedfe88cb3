package client

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

	"github.com/fleetkit/fleetkit/disposition"
)

// ErrNotModified is returned when a request carried an ETag
// (IfNoneMatch) and the server's answer has not changed.
var ErrNotModified = errors.New("client: not modified")

// Error is an error answer of the API.
type Error struct {
	// Status is the HTTP status code.
	Status int `json:"-"`
	// Code is the API's stable error code, e.g. "not_found",
	// "invalid_query", "forbidden".
	Code    string `json:"code"`
	Message string `json:"message"`
	// Field names the parameter, body field or query term at fault.
	Field string `json:"field,omitempty"`
}

// Error implements the error interface.
func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("refd: %d %s (%s): %s", e.Status, e.Code, e.Field, e.Message)
	}
	return fmt.Sprintf("refd: %d %s: %s", e.Status, e.Code, e.Message)
}

// Client talks to a refd server. It is safe for concurrent use.
type Client struct {
	base  *url.URL
	token string
	// HTTPClient sends the requests; New sets it to a client with a 60 s
	// timeout. Replace it for TLS settings or a transport of your own.
	HTTPClient *http.Client
}

// New returns a client of the refd at baseURL (e.g.
// "https://refd.example:8443") that authenticates with token.
func New(baseURL, token string) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("client: base URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("client: base URL %q: want http(s)://host[:port]", baseURL)
	}
	return &Client{base: u, token: token, HTTPClient: &http.Client{Timeout: 60 * time.Second}}, nil
}

// do sends a request and decodes a 2xx JSON answer into out (unless nil).
// It returns the response headers.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body []byte, contentType string, hdr http.Header, out any) (http.Header, error) {
	u := *c.base
	u.Path += path
	u.RawQuery = query.Encode()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	res, err := c.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	if res.StatusCode == http.StatusNotModified {
		return res.Header, ErrNotModified
	}
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: reading answer: %w", method, path, err)
	}
	if res.StatusCode >= 300 {
		var eb struct {
			Error *Error `json:"error"`
		}
		if json.Unmarshal(b, &eb) != nil || eb.Error == nil {
			eb.Error = &Error{Code: "http", Message: strings.TrimSpace(string(b))}
		}
		eb.Error.Status = res.StatusCode
		return res.Header, eb.Error
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return res.Header, fmt.Errorf("client: %s %s: decoding answer: %w", method, path, err)
		}
	}
	return res.Header, nil
}

// NodesQuery selects nodes.
type NodesQuery struct {
	// Query is a query in the index's syntax, e.g. "metro=DEN,NYC
	// health!=down"; empty matches every node.
	Query string
	// Fields restricts the fields returned (e.g. "id", "metro",
	// "health", "provenance"); nil means every field but provenance.
	Fields []string
	// Limit is the page size; 0 means every match in one answer.
	Limit int
	// Cursor is NextCursor of the previous page.
	Cursor string
	// IfNoneMatch is the ETag of an earlier answer; the call returns
	// ErrNotModified if it is still current.
	IfNoneMatch string
}

// NodesPage is an answer of Nodes.
type NodesPage struct {
	Version    uint64              `json:"version"`
	Count      int                 `json:"count"`
	Nodes      []*disposition.Node `json:"nodes"`
	NextCursor string              `json:"next_cursor,omitempty"`
	// ETag identifies this answer, for NodesQuery.IfNoneMatch.
	ETag string `json:"-"`
}

func etagHeader(etag string) http.Header {
	if etag == "" {
		return nil
	}
	return http.Header{"If-None-Match": {etag}}
}

// Nodes returns the nodes q selects, in ID order.
func (c *Client) Nodes(ctx context.Context, q NodesQuery) (*NodesPage, error) {
	v := url.Values{}
	if q.Query != "" {
		v.Set("q", q.Query)
	}
	if len(q.Fields) > 0 {
		v.Set("fields", strings.Join(q.Fields, ","))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Cursor != "" {
		v.Set("cursor", q.Cursor)
	}
	var p NodesPage
	h, err := c.do(ctx, "GET", "/v1/nodes", v, nil, "", etagHeader(q.IfNoneMatch), &p)
	if err != nil {
		return nil, err
	}
	p.ETag = h.Get("ETag")
	return &p, nil
}

// Node returns one node with its provenance.
func (c *Client) Node(ctx context.Context, id string) (*disposition.Node, error) {
	var n disposition.Node
	if _, err := c.do(ctx, "GET", "/v1/nodes/"+url.PathEscape(id), nil, nil, "", nil, &n); err != nil {
		return nil, err
	}
	return &n, nil
}

// AggregateResult is an answer of Aggregate.
type AggregateResult struct {
	Version uint64              `json:"version"`
	By      []string            `json:"by"`
	Groups  []disposition.Group `json:"groups"`
}

// Aggregate counts the nodes query selects and sums their traffic and
// capacity, grouped by the given fields.
func (c *Client) Aggregate(ctx context.Context, query string, by ...string) (*AggregateResult, error) {
	v := url.Values{}
	if query != "" {
		v.Set("q", query)
	}
	if len(by) > 0 {
		v.Set("by", strings.Join(by, ","))
	}
	var a AggregateResult
	if _, err := c.do(ctx, "GET", "/v1/aggregate", v, nil, "", nil, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// SourceStatus is one source's status.
type SourceStatus struct {
	Name             string    `json:"name"`
	Authoritative    bool      `json:"authoritative"`
	LastAttempt      time.Time `json:"last_attempt"`
	LastSuccess      time.Time `json:"last_success"`
	LastError        string    `json:"last_error,omitempty"`
	LastErrorAt      time.Time `json:"last_error_at"`
	FetchSeconds     float64   `json:"fetch_seconds"`
	Observations     int       `json:"observations"`
	Orphans          int       `json:"orphans"`
	OrphanSample     []string  `json:"orphan_sample,omitempty"`
	Stale            bool      `json:"stale"`
	StalenessSeconds float64   `json:"staleness_seconds"`
	Expired          bool      `json:"expired"`
	Fetches          uint64    `json:"fetches"`
	Failures         uint64    `json:"failures"`
}

// SourcesResult is an answer of Sources.
type SourcesResult struct {
	Version uint64         `json:"version"`
	Ready   bool           `json:"ready"`
	Sources []SourceStatus `json:"sources"`
}

// Sources returns the status of every source.
func (c *Client) Sources(ctx context.Context) (*SourcesResult, error) {
	var s SourcesResult
	if _, err := c.do(ctx, "GET", "/v1/sources", nil, nil, "", nil, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// Ready returns nil when the server is ready for traffic, and the
// server's answer otherwise.
func (c *Client) Ready(ctx context.Context) error {
	_, err := c.do(ctx, "GET", "/readyz", nil, nil, "", nil, nil)
	return err
}
