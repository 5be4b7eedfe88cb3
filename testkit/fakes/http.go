package fakes

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeRaw(w, status, b)
}

func writeRaw(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// originalURL returns the URL the client asked for, with scheme and host,
// even when the request went through http.StripPrefix (which rewrites
// r.URL but not r.RequestURI).
func originalURL(r *http.Request) *url.URL {
	u, err := url.ParseRequestURI(r.RequestURI)
	if err != nil || r.RequestURI == "" {
		c := *r.URL
		u = &c
	}
	u.Scheme = "http"
	if r.TLS != nil {
		u.Scheme = "https"
	}
	u.Host = r.Host
	return u
}

// prefix returns the part of the original path before r.URL.Path: the
// mount point of a fake under a mux, or "".
func prefix(r *http.Request) string {
	p := originalURL(r).Path
	if strings.HasSuffix(p, r.URL.Path) {
		return strings.TrimSuffix(p, r.URL.Path)
	}
	return ""
}
