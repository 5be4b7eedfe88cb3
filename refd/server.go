package refd

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"
)

// Server is the refd daemon: the REST API over a disposition index, fed
// by an Updater, with its store, auth and metrics. It is an http.Handler,
// so tests and embedders can mount it anywhere; Run serves it on
// Config.Addr.
type Server struct {
	cfg     Config
	log     *slog.Logger
	tokens  []authToken
	routes  []route
	mux     *http.ServeMux
	metrics *metrics
	listing listingCache
	answers respCache
	ready   atomic.Bool // latched on the first successful authoritative fetch
	closing atomic.Bool
	// trialsServed says the Formulas serve the states of the trials in
	// force (syncTrialFormulas); until then formulas routes sync first.
	trialsServed atomic.Bool

	// viewMu serialises the writes of rollout views (see syncView);
	// dirty holds the rollouts the Runner reported changed, and viewWake
	// tells the view writer.
	viewMu   sync.Mutex
	dirtyMu  sync.Mutex
	dirty    map[string]bool
	viewWake chan struct{}

	mu      sync.Mutex
	addr    net.Addr
	cancel  context.CancelFunc
	done    chan struct{}
	started bool
}

// route is one API route: the mux pattern is Method+" "+Path.
type route struct {
	Method string
	Path   string
	// Scope is what the token needs; "" means no authentication.
	Scope Scope
	// Audit records every request in the audit log (writes).
	Audit bool
	h     func(http.ResponseWriter, *http.Request) error
}

// New validates cfg and returns a Server. The error of an invalid field
// is a *ConfigError naming it.
func New(cfg Config) (*Server, error) {
	ownRegistry := cfg.Registry == nil
	cfg, toks, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, tokens: toks, mux: http.NewServeMux(),
		dirty: map[string]bool{}, viewWake: make(chan struct{}, 1)}
	if ownRegistry {
		if err := registerRuntime(cfg.Registry); err != nil {
			return nil, &ConfigError{Field: "Registry", Err: err}
		}
	}
	s.metrics, err = newMetrics(s)
	if err != nil {
		return nil, &ConfigError{Field: "Registry", Err: err}
	}
	s.routes = s.routeTable()
	// Method patterns serve; a mux of bare paths tells 405 from 404.
	paths := http.NewServeMux()
	methods := map[string][]string{}
	for _, rt := range s.routes {
		s.mux.Handle(rt.Method+" "+rt.Path, s.wrap(rt))
		if methods[rt.Path] == nil {
			paths.Handle(rt.Path, http.NotFoundHandler())
		}
		methods[rt.Path] = append(methods[rt.Path], rt.Method)
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := paths.Handler(r); pattern != "" {
			w.Header().Set("Allow", joinComma(methods[pattern]))
			writeAPIError(w, apiErr(http.StatusMethodNotAllowed, CodeMethod, "", "method %s not allowed on %s", r.Method, r.URL.Path))
			return
		}
		writeAPIError(w, apiErr(http.StatusNotFound, CodeNotFound, "", "no route %s", r.URL.Path))
	})
	return s, nil
}

func joinComma(ss []string) string {
	var b bytes.Buffer
	for i, s := range ss {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(s)
	}
	return b.String()
}

func (s *Server) routeTable() []route {
	return []route{
		{Method: "GET", Path: "/healthz", h: s.handleHealthz},
		{Method: "GET", Path: "/readyz", h: s.handleReadyz},
		{Method: "GET", Path: "/metrics", h: s.handleMetrics},
		{Method: "GET", Path: "/v1/openapi.json", h: s.handleOpenAPI},

		{Method: "GET", Path: "/v1/nodes", Scope: ScopeRead, h: s.handleNodes},
		{Method: "GET", Path: "/v1/nodes/{id}", Scope: ScopeRead, h: s.handleNode},
		{Method: "GET", Path: "/v1/aggregate", Scope: ScopeRead, h: s.handleAggregate},
		{Method: "GET", Path: "/v1/sources", Scope: ScopeRead, h: s.handleSources},

		{Method: "GET", Path: "/v1/overrides", Scope: ScopeRead, h: s.handleOverrides},
		{Method: "PUT", Path: "/v1/overrides/{id}", Scope: ScopeWrite, Audit: true, h: s.handleSetOverride},
		{Method: "DELETE", Path: "/v1/overrides/{id}", Scope: ScopeWrite, Audit: true, h: s.handleDeleteOverride},

		{Method: "POST", Path: "/v1/rollouts/plan", Scope: ScopeRead, h: s.handlePlan},
		{Method: "POST", Path: "/v1/rollouts", Scope: ScopeRollout, Audit: true, h: s.handleCreateRollout},
		{Method: "GET", Path: "/v1/rollouts", Scope: ScopeRead, h: s.handleRollouts},
		{Method: "GET", Path: "/v1/rollouts/{id}", Scope: ScopeRead, h: s.handleRollout},
		{Method: "POST", Path: "/v1/rollouts/{id}/pause", Scope: ScopeRollout, Audit: true, h: s.rolloutAction(ActionPause)},
		{Method: "POST", Path: "/v1/rollouts/{id}/resume", Scope: ScopeRollout, Audit: true, h: s.rolloutAction(ActionResume)},
		{Method: "POST", Path: "/v1/rollouts/{id}/abort", Scope: ScopeRollout, Audit: true, h: s.rolloutAction(ActionAbort)},
		{Method: "POST", Path: "/v1/rollouts/{id}/rollback", Scope: ScopeRollout, Audit: true, h: s.rolloutAction(ActionRollback)},
		{Method: "POST", Path: "/v1/rollouts/{id}/promote", Scope: ScopeRollout, Audit: true, h: s.rolloutAction(ActionPromote)},
		{Method: "POST", Path: "/v1/rollouts/{id}/skip", Scope: ScopeRollout, Audit: true, h: s.rolloutAction(ActionSkip)},
		{Method: "POST", Path: "/v1/rollouts/{id}/pin", Scope: ScopeRollout, Audit: true, h: s.rolloutAction(ActionPin)},

		{Method: "GET", Path: "/v1/formulas/resolve", Scope: ScopeRead, h: s.handleFormulasResolve},
		{Method: "POST", Path: "/v1/formulas/diff", Scope: ScopeRead, h: s.handleFormulasDiff},
		{Method: "POST", Path: "/v1/formulas/build", Scope: ScopeRollout, Audit: true, h: s.handleFormulasBuild},

		{Method: "GET", Path: "/v1/trials", Scope: ScopeRead, h: s.handleTrials},
		{Method: "GET", Path: "/v1/trials/{name}", Scope: ScopeRead, h: s.handleTrial},
		{Method: "POST", Path: "/v1/trials/plan", Scope: ScopeRead, h: s.handleTrialPlan},
		{Method: "POST", Path: "/v1/trials", Scope: ScopeRollout, Audit: true, h: s.handleApplyTrial},
		{Method: "POST", Path: "/v1/trials/{name}/end", Scope: ScopeRollout, Audit: true, h: s.handleEndTrial},

		{Method: "GET", Path: "/v1/audit", Scope: ScopeAdmin, h: s.handleAudit},
	}
}

// statusWriter records the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// wrap adds to a route's handler, in order: metrics, authentication and
// scope, the body limit, the audit record and the JSON error body.
func (s *Server) wrap(rt route) http.Handler {
	pattern := rt.Method + " " + rt.Path
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		start := time.Now()
		w := &statusWriter{ResponseWriter: rw}
		defer func() {
			d := time.Since(start)
			s.metrics.observe(pattern, r.Method, w.status, d)
			s.log.LogAttrs(r.Context(), slog.LevelDebug, "request", slog.String("route", pattern),
				slog.String("path", r.URL.Path), slog.Int("status", w.status), slog.Duration("took", d),
				slog.String("who", Principal(r.Context())))
		}()
		if rt.Scope != "" {
			var ok bool
			if r, ok = s.authorize(w, r, rt.Scope); !ok {
				return
			}
		}
		var body []byte
		if r.Body != nil && r.Body != http.NoBody {
			if r.ContentLength > s.cfg.MaxBodyBytes {
				s.writeError(w, r, tooLarge(s.cfg.MaxBodyBytes))
				return
			}
			var err error
			body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
			if err != nil {
				var mbe *http.MaxBytesError
				if errors.As(err, &mbe) {
					s.writeError(w, r, tooLarge(s.cfg.MaxBodyBytes))
				} else {
					s.writeError(w, r, badRequest("", "reading body: %v", err))
				}
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		if err := rt.h(w, r); err != nil {
			s.writeError(w, r, err)
		}
		if w.status == 0 {
			w.status = http.StatusOK
		}
		if rt.Audit {
			s.audit(r, pattern, w.status, body)
		}
	})
}

func tooLarge(limit int64) *APIError {
	return apiErr(http.StatusRequestEntityTooLarge, CodeTooLarge, "", "request body over %d bytes", limit)
}

// audit records a write in the store's audit log and the logs.
func (s *Server) audit(r *http.Request, action string, status int, body []byte) {
	e := AuditEntry{
		At:     s.cfg.Now().UTC(),
		Who:    Principal(r.Context()),
		Action: action,
		Target: r.URL.RequestURI(),
		Status: status,
	}
	if len(body) > maxAuditBody {
		body = body[:maxAuditBody]
	}
	switch {
	case len(body) == 0:
	case json.Valid(body):
		e.Body = json.RawMessage(body)
	case utf8.Valid(body):
		e.Body, _ = json.Marshal(string(body))
	default:
		e.Body, _ = json.Marshal(fmt.Sprintf("(%d bytes, not UTF-8)", len(body)))
	}
	// The request may be cancelled by now; the record must still land.
	if err := s.cfg.Store.AppendAudit(context.WithoutCancel(r.Context()), e); err != nil {
		s.log.Error("audit log write failed", "who", e.Who, "action", action, "target", e.Target, "err", err)
	}
	s.log.Info("write", "who", e.Who, "action", action, "target", e.Target, "status", status)
}

// ServeHTTP serves the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

// Registry returns the registry /metrics serves: Config.Registry, or the
// server's own.
func (s *Server) Registry() *prometheus.Registry { return s.cfg.Registry }

// Ready reports whether the server is ready for traffic: its Updater has
// had a successful fetch from an authoritative source (or there is no
// Updater), and it is not shutting down.
func (s *Server) Ready() bool {
	if s.closing.Load() {
		return false
	}
	if s.ready.Load() {
		return true
	}
	if s.cfg.Updater == nil {
		s.ready.Store(true)
		return true
	}
	// The aggregator records a fetch before it applies it: wait until the
	// index holds what the fetch reported.
	n := s.cfg.Index.Snapshot().Len()
	for _, st := range s.cfg.Updater.Status() {
		if st.Authoritative && !st.LastSuccess.IsZero() && (n > 0 || st.Observations == 0) {
			s.ready.Store(true)
			return true
		}
	}
	return false
}

func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) error {
	s.writeJSON(w, r, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) error {
	if !s.Ready() {
		return apiErr(http.StatusServiceUnavailable, CodeUnavailable, "", "not ready: no successful fetch from an authoritative source yet")
	}
	snap := s.cfg.Index.Snapshot()
	s.writeJSON(w, r, http.StatusOK, map[string]any{"status": "ready", "version": snap.Version(), "nodes": snap.Len()})
	return nil
}

func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) error {
	promhttp.HandlerFor(s.cfg.Registry, promhttp.HandlerOpts{}).ServeHTTP(w, r)
	return nil
}

// handleAudit serves GET /v1/audit?limit=N&before=SEQ, newest first.
func (s *Server) handleAudit(w http.ResponseWriter, r *http.Request) error {
	v := r.URL.Query()
	limit := DefaultAuditLimit
	if raw := v.Get("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > 10_000 {
			return badRequest("limit", "must be an integer from 1 to 10000, got %q", raw)
		}
		limit = n
	}
	var before uint64
	if raw := v.Get("before"); raw != "" {
		n, err := strconv.ParseUint(raw, 10, 64)
		if err != nil {
			return badRequest("before", "must be an audit sequence number, got %q", raw)
		}
		before = n
	}
	entries, err := s.cfg.Store.Audit(r.Context(), limit, before)
	if err != nil {
		return err
	}
	if entries == nil {
		entries = []AuditEntry{}
	}
	s.writeJSON(w, r, http.StatusOK, map[string]any{"entries": entries})
	return nil
}

// waitReady waits until the server is Ready, and reports false if ctx
// ended first. The index changing is the usual sign; a slow tick covers
// an Updater whose first fetch changed nothing.
func (s *Server) waitReady(ctx context.Context) bool {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	changed := s.cfg.Index.Watch(wctx)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for !s.Ready() {
		select {
		case <-changed:
		case <-tick.C:
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// Addr returns the address Run or Serve listens on, or nil before.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Run listens on Config.Addr and serves until ctx ends or Close is
// called; see Serve.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("refd: listen: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves the API on ln (HTTPS when Config has TLS files), runs the
// Updater and, once the server is Ready, the Runner (which resumes every
// unfinished rollout), and keeps the full listing encoded for the newest
// index version, until ctx ends or Close is called. Then it stops
// accepting connections, lets requests in flight finish within
// Config.ShutdownTimeout, stops the Updater and the Runner, waits for the
// rollouts' views to be written and returns nil. It returns an error when
// serving, the Updater or the Runner fails. A Server serves once.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		ln.Close()
		return errors.New("refd: server already started")
	}
	s.started = true
	ctx, cancel := context.WithCancel(ctx)
	s.cancel, s.done, s.addr = cancel, make(chan struct{}), ln.Addr()
	s.mu.Unlock()
	defer close(s.done)
	defer cancel()

	useTLS := s.cfg.TLSCertFile != ""
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	if useTLS {
		hs.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	s.log.Info("listening", "addr", ln.Addr().String(), "tls", useTLS)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		var err error
		if useTLS {
			err = hs.ServeTLS(ln, s.cfg.TLSCertFile, s.cfg.TLSKeyFile)
		} else {
			err = hs.Serve(ln)
		}
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("refd: serve: %w", err)
	})
	g.Go(func() error {
		<-gctx.Done()
		s.closing.Store(true)
		sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
		defer scancel()
		s.log.Info("shutting down")
		if err := hs.Shutdown(sctx); err != nil {
			hs.Close()
			return fmt.Errorf("refd: shutdown: %w", err)
		}
		return nil
	})
	if s.cfg.Updater != nil {
		g.Go(func() error {
			err := s.cfg.Updater.Run(gctx)
			if err != nil && gctx.Err() == nil {
				return fmt.Errorf("refd: updater: %w", err)
			}
			return nil
		})
	}
	if s.cfg.Runner != nil {
		runDone := make(chan struct{})
		g.Go(func() error {
			defer close(runDone)
			// A runner that resumed rollouts over an index not yet
			// loaded would re-plan them over no servers at all.
			if !s.waitReady(gctx) {
				return nil
			}
			err := s.cfg.Runner.Run(gctx, s.rolloutChanged)
			if err != nil && gctx.Err() == nil {
				return fmt.Errorf("refd: rollout runner: %w", err)
			}
			return nil
		})
		g.Go(func() error {
			s.writeViews(gctx, runDone)
			return nil
		})
	}
	g.Go(func() error {
		// Encode the listing of each new version before anyone asks.
		s.listing.get(s.cfg.Index.Snapshot())
		for range s.cfg.Index.Watch(gctx) {
			s.listing.get(s.cfg.Index.Snapshot())
		}
		return nil
	})
	err := g.Wait()
	s.log.Info("stopped", "err", err)
	return err
}

// Close stops a running Serve or Run as its context ending would, and
// waits for it to return.
func (s *Server) Close() error {
	s.mu.Lock()
	cancel, done := s.cancel, s.done
	s.started = true // a Server that never ran cannot run after Close
	s.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	<-done
	return nil
}

// register adds the process and Go collectors to a registry the server
// owns.
func registerRuntime(reg *prometheus.Registry) error {
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return err
	}
	return reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
}

// readBody reads a request body the middleware already bounded.
func readBody(r *http.Request) ([]byte, error) { return io.ReadAll(r.Body) }
