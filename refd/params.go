package refd

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/fleetkit/fleetkit/disposition"
)

// reserved are the query parameters that are not query terms.
var reserved = map[string]bool{"q": true, "fields": true, "limit": true, "cursor": true, "by": true}

// MaxLimit is the largest page a nodes request may ask for; no limit at
// all means every match.
const MaxLimit = 100_000

// parseQuery builds the disposition query of a request from its q
// parameter and its field parameters: metro=DEN,NYC&health!=down arrives
// as {"metro": ["DEN,NYC"], "health!": ["down"]}. Repeated parameters
// are one set (metro=DEN&metro=NYC is metro=DEN,NYC). Terms come in a
// canonical order, so equal requests give equal queries.
func parseQuery(v url.Values) (disposition.Query, *APIError) {
	var q disposition.Query
	if text := v.Get("q"); text != "" {
		parsed, err := disposition.ParseQuery(text)
		if err != nil {
			return q, queryError("q", err)
		}
		q = parsed
	}
	keys := make([]string, 0, len(v))
	for k := range v {
		if !reserved[k] {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		vals := v[k]
		if k == "" {
			if strings.Join(vals, "") == "" {
				continue // a stray "&=" in the URL
			}
			return q, apiErr(http.StatusBadRequest, CodeInvalidQuery, "", "a query parameter has a value but no name: %q", strings.Join(vals, ","))
		}
		if strings.ContainsFunc(k, unicode.IsSpace) {
			return q, apiErr(http.StatusBadRequest, CodeInvalidQuery, termField(k), "query parameter %q: a field name has no spaces", k)
		}
		var text string
		switch {
		case strings.HasSuffix(k, "!") || strings.HasSuffix(k, "<") || strings.HasSuffix(k, ">"):
			// health!=down, version.x<=1 and version.x>=1 split at their "=".
			text = k + "=" + strings.Join(vals, ",")
		case strings.ContainsAny(k, "<>"):
			// version.x<1.2 has no "=": the whole term is the key.
			if len(vals) != 1 || vals[0] != "" {
				return q, apiErr(http.StatusBadRequest, CodeInvalidQuery, termField(k), "query term %q: a < or > term takes no \"=\"", k)
			}
			text = k
		default:
			text = k + "=" + strings.Join(vals, ",")
		}
		t, err := disposition.ParseTerm(text)
		if err != nil {
			return q, apiErr(http.StatusBadRequest, CodeInvalidQuery, termField(k), "query term %q: %v", text, err)
		}
		q.Terms = append(q.Terms, t)
	}
	return q, nil
}

// termField is the field name of a term parameter key, for the error body.
func termField(k string) string {
	if i := strings.IndexAny(k, "!<>"); i > 0 {
		return k[:i]
	}
	return k
}

func queryError(param string, err error) *APIError {
	var qe *disposition.QueryError
	if errors.As(err, &qe) {
		return apiErr(http.StatusBadRequest, CodeInvalidQuery, param, "query term %d %q: %v", qe.Index, qe.Term, qe.Err)
	}
	return apiErr(http.StatusBadRequest, CodeInvalidQuery, param, "%v", err)
}

// parseFields parses fields=id,metro,health; "provenance" is accepted
// too. Empty means the listing default: every field but provenance.
func parseFields(v url.Values) (fieldSet, string, *APIError) {
	raw := v.Get("fields")
	if raw == "" {
		return allFields, "", nil
	}
	var fs fieldSet
	for name := range strings.SplitSeq(raw, ",") {
		name = strings.TrimSpace(name)
		if name == "provenance" {
			fs |= 1 << provBit
			continue
		}
		f, err := disposition.ParseField(name)
		if err != nil {
			return 0, "", badRequest("fields", "%v (or provenance)", err)
		}
		fs |= 1 << f
	}
	return fs, strconv.FormatUint(uint64(fs), 16), nil
}

// parseLimit parses limit; 0 means no limit.
func parseLimit(v url.Values) (int, *APIError) {
	raw := v.Get("limit")
	if raw == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 || n > MaxLimit {
		return 0, badRequest("limit", "must be an integer from 1 to %d, got %q", MaxLimit, raw)
	}
	return n, nil
}

// A cursor is the ID of the last node of the previous page, opaque to
// clients. Pages are in ID order and the next page starts after that ID,
// so a node added or removed elsewhere never shifts another page.
func encodeCursor(lastID string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("n:" + lastID))
}

func decodeCursor(v url.Values) (string, *APIError) {
	raw := v.Get("cursor")
	if raw == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(raw)
	id, ok := strings.CutPrefix(string(b), "n:")
	if err != nil || !ok || id == "" || !utf8.ValidString(id) {
		return "", badRequest("cursor", "not a cursor this server issued")
	}
	return id, nil
}
