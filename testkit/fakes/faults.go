package fakes

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Fault makes a fake misbehave on some requests, to test how clients cope
// with outages, slowness and garbage.
type Fault struct {
	// Request is which matching request to affect, counting from 1 since
	// the fault was injected; 0 affects every matching request.
	Request int
	// Path selects the requests the fault counts and affects: those whose
	// URL path contains it. Empty selects every request.
	Path string
	// Latency delays the answer, or until the client gives up.
	Latency time.Duration
	// Status, if not zero, answers with this status code and a short
	// plain-text body instead of the real answer.
	Status int
	// Malformed answers 200 with the real body cut in half, so that it is
	// no longer valid JSON.
	Malformed bool
}

type faultState struct {
	Fault
	seen int
}

// Faults holds the faults injected into one fake. Every fake embeds one;
// its methods are safe for concurrent use.
type Faults struct {
	mu       sync.Mutex
	faults   []*faultState
	requests int
}

// Inject adds a fault.
func (fs *Faults) Inject(f Fault) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.faults = append(fs.faults, &faultState{Fault: f})
}

// ClearFaults removes every fault.
func (fs *Faults) ClearFaults() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.faults = nil
}

// Requests returns how many requests the fake has received.
func (fs *Faults) Requests() int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.requests
}

// match counts r against every fault and returns the combined effect.
func (fs *Faults) match(r *http.Request) (latency time.Duration, status int, malformed bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.requests++
	for _, f := range fs.faults {
		if !strings.Contains(r.URL.Path, f.Path) {
			continue
		}
		f.seen++
		if f.Request != 0 && f.Request != f.seen {
			continue
		}
		latency += f.Latency
		if status == 0 && !malformed {
			status, malformed = f.Status, f.Malformed
		}
	}
	return latency, status, malformed
}

// serve runs h under the injected faults.
func (fs *Faults) serve(w http.ResponseWriter, r *http.Request, h http.HandlerFunc) {
	latency, status, malformed := fs.match(r)
	if latency > 0 {
		// net/http notices a client going away only once the request body
		// has been read: read it now, and hand it on.
		body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
		if err != nil {
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		t := time.NewTimer(latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	switch {
	case status != 0:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(strconv.Itoa(status) + " " + http.StatusText(status) + " (injected fault)\n"))
	case malformed:
		rec := httptest.NewRecorder()
		h(rec, r)
		body := rec.Body.Bytes()
		body = body[:len(body)/2]
		if len(bytes.TrimSpace(body)) == 0 {
			body = []byte(`{"truncated": `)
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Del("Content-Length")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	default:
		h(w, r)
	}
}
