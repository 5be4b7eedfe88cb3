package refd

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"hash/fnv"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/fleetkit/fleetkit/disposition"
)

// NodesPage is the body of GET /v1/nodes.
type NodesPage struct {
	// Version is the index version the page was read from.
	Version uint64 `json:"version"`
	// Count is the number of nodes in this page.
	Count int                 `json:"count"`
	Nodes []*disposition.Node `json:"nodes"`
	// NextCursor, when set, fetches the next page.
	NextCursor string `json:"next_cursor,omitempty"`
}

// listing is the full-fleet listing of one index version, encoded once.
type listing struct {
	version uint64
	etag    string
	body    []byte
	gzOnce  sync.Once
	gz      []byte
}

func (l *listing) gzipped() []byte {
	l.gzOnce.Do(func() { l.gz = gzipBytes(l.body) })
	return l.gz
}

// listingCache holds the listing of the newest version served; the first
// request after a version change builds it, concurrent ones wait for it.
type listingCache struct {
	mu  sync.Mutex
	cur atomic.Pointer[listing]
}

func (c *listingCache) get(snap *disposition.Snapshot) *listing {
	v := snap.Version()
	if l := c.cur.Load(); l != nil && l.version == v {
		return l
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if l := c.cur.Load(); l != nil && l.version == v {
		return l
	}
	l := &listing{version: v, etag: `"v` + strconv.FormatUint(v, 10) + `"`}
	l.body = encodePage(nil, snap, allNodes(snap), allFields, "")
	if cur := c.cur.Load(); cur == nil || cur.version < v {
		c.cur.Store(l)
	}
	return l
}

// respCache keeps encoded answers of the newest index version, keyed by
// their canonical parameters, so that dashboards polling the same
// queries and aggregates cost one computation per version. It is bounded
// in bytes and emptied when the version changes.
type respCache struct {
	mu      sync.Mutex
	version uint64
	m       map[string][]byte
	bytes   int
}

const (
	respCacheBytes    = 32 << 20 // all answers kept
	respCacheMaxEntry = 4 << 20  // larger answers are not kept
)

func (c *respCache) get(version uint64, key string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.version != version {
		return nil, false
	}
	b, ok := c.m[key]
	return b, ok
}

func (c *respCache) put(version uint64, key string, body []byte) {
	if len(body) > respCacheMaxEntry {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case version < c.version:
		return
	case version > c.version || c.m == nil || c.bytes+len(body) > respCacheBytes:
		c.version, c.m, c.bytes = version, map[string][]byte{}, 0
	}
	c.m[key] = body
	c.bytes += len(body)
}

func allNodes(snap *disposition.Snapshot) []*disposition.Node {
	nodes := make([]*disposition.Node, 0, snap.Len())
	_ = snap.Scan(disposition.Query{}, func(n *disposition.Node) bool { // the empty query is valid
		nodes = append(nodes, n)
		return true
	})
	return nodes
}

// encodePage appends the NodesPage JSON of nodes to b.
func encodePage(b []byte, snap *disposition.Snapshot, nodes []*disposition.Node, fields fieldSet, next string) []byte {
	if b == nil {
		b = make([]byte, 0, 64+len(nodes)*400)
	}
	b = append(b, `{"version":`...)
	b = strconv.AppendUint(b, snap.Version(), 10)
	b = append(b, `,"count":`...)
	b = strconv.AppendInt(b, int64(len(nodes)), 10)
	b = append(b, `,"nodes":[`...)
	enc := nodeEncoder{fields: fields}
	for i, n := range nodes {
		if i > 0 {
			b = append(b, ',')
		}
		b = enc.appendNode(b, n)
	}
	b = append(b, ']')
	if next != "" {
		b = append(b, `,"next_cursor":`...)
		b = appendString(b, next)
	}
	return append(b, '}', '\n')
}

func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed) // the level is valid
	_, _ = zw.Write(b)
	_ = zw.Close()
	return buf.Bytes()
}

// acceptsGzip reports whether the request's Accept-Encoding allows gzip.
func acceptsGzip(r *http.Request) bool {
	for part := range strings.SplitSeq(r.Header.Get("Accept-Encoding"), ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(name), "gzip") {
			return !strings.Contains(strings.ReplaceAll(params, " ", ""), "q=0") ||
				strings.Contains(params, "q=0.")
		}
	}
	return false
}

// etagMatch reports whether If-None-Match names etag (or is "*").
func etagMatch(r *http.Request, etag string) bool {
	inm := r.Header.Get("If-None-Match")
	if inm == "" {
		return false
	}
	for part := range strings.SplitSeq(inm, ",") {
		part = strings.TrimPrefix(strings.TrimSpace(part), "W/")
		if part == etag || part == "*" {
			return true
		}
	}
	return false
}

// etagFor is the ETag of a response derived from the index version and the
// request's canonical parameters.
func etagFor(version uint64, key string) string {
	h := fnv.New64a()
	h.Write([]byte(key))
	return `"v` + strconv.FormatUint(version, 10) + "-" + strconv.FormatUint(h.Sum64(), 36) + `"`
}

// writeBody writes a JSON body with its ETag, gzip-compressed when the
// client asks and the body is worth it, or 304 when the client has it.
func writeBody(w http.ResponseWriter, r *http.Request, etag string, version uint64, body []byte, gz func() []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("ETag", etag)
	h.Set("Vary", "Accept-Encoding")
	h.Set("X-Index-Version", strconv.FormatUint(version, 10))
	h.Set("Cache-Control", "no-cache")
	if etagMatch(r, etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if acceptsGzip(r) && len(body) > 1024 {
		if gz == nil {
			gz = func() []byte { return gzipBytes(body) }
		}
		body = gz()
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// handleNodes serves GET /v1/nodes.
func (s *Server) handleNodes(w http.ResponseWriter, r *http.Request) error {
	v := r.URL.Query()
	q, aerr := parseQuery(v)
	if aerr != nil {
		return aerr
	}
	fields, fieldsKey, aerr := parseFields(v)
	if aerr != nil {
		return aerr
	}
	limit, aerr := parseLimit(v)
	if aerr != nil {
		return aerr
	}
	after, aerr := decodeCursor(v)
	if aerr != nil {
		return aerr
	}
	snap := s.cfg.Index.Snapshot()

	if len(q.Terms) == 0 && fields == allFields && limit == 0 && after == "" {
		// The full listing: served from the encoding of this version.
		if etagMatch(r, `"v`+strconv.FormatUint(snap.Version(), 10)+`"`) {
			writeBody(w, r, `"v`+strconv.FormatUint(snap.Version(), 10)+`"`, snap.Version(), nil, nil)
			return nil
		}
		l := s.listing.get(snap)
		writeBody(w, r, l.etag, l.version, l.body, l.gzipped)
		return nil
	}

	key := strings.Join([]string{"nodes", q.String(), fieldsKey, strconv.Itoa(limit), after}, "\x00")
	etag := etagFor(snap.Version(), key)
	if etagMatch(r, etag) {
		writeBody(w, r, etag, snap.Version(), nil, nil)
		return nil
	}
	if body, ok := s.answers.get(snap.Version(), key); ok {
		writeBody(w, r, etag, snap.Version(), body, nil)
		return nil
	}
	var nodes []*disposition.Node
	var next string
	err := snap.Scan(q, func(n *disposition.Node) bool {
		if after != "" && n.ID <= after {
			return true
		}
		if limit > 0 && len(nodes) == limit {
			next = encodeCursor(nodes[len(nodes)-1].ID)
			return false
		}
		nodes = append(nodes, n)
		return true
	})
	if err != nil {
		return queryError("q", err)
	}
	body := encodePage(nil, snap, nodes, fields, next)
	s.answers.put(snap.Version(), key, body)
	writeBody(w, r, etag, snap.Version(), body, nil)
	return nil
}

// handleNode serves GET /v1/nodes/{id}: one node with its provenance.
func (s *Server) handleNode(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	fields, fieldsKey, aerr := parseFields(r.URL.Query())
	if aerr != nil {
		return aerr
	}
	if r.URL.Query().Get("fields") == "" {
		fields |= 1 << provBit
	}
	snap := s.cfg.Index.Snapshot()
	n, ok := snap.Get(id)
	if !ok {
		return apiErr(http.StatusNotFound, CodeNotFound, "id", "no node %q", id)
	}
	etag := etagFor(snap.Version(), "node\x00"+id+"\x00"+fieldsKey)
	enc := nodeEncoder{fields: fields}
	body := append(enc.appendNode(nil, n), '\n')
	writeBody(w, r, etag, snap.Version(), body, nil)
	return nil
}

// AggregateResult is the body of GET /v1/aggregate.
type AggregateResult struct {
	Version uint64              `json:"version"`
	By      []string            `json:"by"`
	Groups  []disposition.Group `json:"groups"`
}

// handleAggregate serves GET /v1/aggregate?by=metro,health&<query>.
func (s *Server) handleAggregate(w http.ResponseWriter, r *http.Request) error {
	v := r.URL.Query()
	q, aerr := parseQuery(v)
	if aerr != nil {
		return aerr
	}
	by := []string{}
	if raw := v.Get("by"); raw != "" {
		for f := range strings.SplitSeq(raw, ",") {
			by = append(by, strings.TrimSpace(f))
		}
	}
	snap := s.cfg.Index.Snapshot()
	key := strings.Join([]string{"aggregate", q.String(), strings.Join(by, ",")}, "\x00")
	etag := etagFor(snap.Version(), key)
	if etagMatch(r, etag) {
		writeBody(w, r, etag, snap.Version(), nil, nil)
		return nil
	}
	if body, ok := s.answers.get(snap.Version(), key); ok {
		writeBody(w, r, etag, snap.Version(), body, nil)
		return nil
	}
	groups, err := snap.Aggregate(q, by...)
	if err != nil {
		var qe *disposition.QueryError
		if errors.As(err, &qe) {
			return queryError("q", err)
		}
		return apiErr(http.StatusBadRequest, CodeInvalidQuery, "by", "%v", err)
	}
	body, err := json.Marshal(AggregateResult{Version: snap.Version(), By: by, Groups: groups})
	if err != nil {
		return err
	}
	body = append(body, '\n')
	s.answers.put(snap.Version(), key, body)
	writeBody(w, r, etag, snap.Version(), body, nil)
	return nil
}
