package fakes

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/testkit/fleet"
)

// Default salt-api credentials of the fake, and the ones Mux uses.
const (
	DefaultSaltUser     = "fleetkit"
	DefaultSaltPassword = "fleetkit"
	DefaultSaltEAuth    = "pam"
)

// SaltOptions configure the salt-api fake.
type SaltOptions struct {
	// User, Password and EAuth are the accepted credentials; defaults
	// DefaultSaltUser, DefaultSaltPassword and DefaultSaltEAuth.
	User, Password, EAuth string
	// TokenTTL is how long a token lives; default 12 hours, as salt's
	// token_expire.
	TokenTTL time.Duration
}

// Salt is an http.Handler that speaks salt-api's rest_cherrypy interface
// over a fleet: every node is a minion whose ID is the node ID.
//
//	POST /login   {username, password, eauth} (JSON or form) -> {"return": [{"token", "expire", ...}]}
//	POST /        lowstate with X-Auth-Token -> {"return": [...]}, one result per chunk
//
// Chunks may use client "local" with fun grains.items, grains.item (arg:
// grain names) or test.ping, targeting with tgt and tgt_type glob (shell
// patterns) or list; minions of down nodes do not answer, as if they timed
// out. Client "runner" with fun cache.grains returns the master's cached
// grains of every targeted minion, down or not. A missing, wrong or
// expired token is answered 401. Client "local_async" starts jobs that
// GET /jobs/<jid> and the jobs runner report on, and tgt_type compound
// takes L@ lists and globs joined by "or" (see SetStateRun and Jobs).
//
// Each minion's grains: id, fqdn, host, domain, nodename, os "Debian",
// os_family, osrelease, osmajorrelease, oscodename, kernel, cpuarch,
// virtual ("physical", "kvm" or "container" by the node's kind),
// saltversion, ipv4, and the custom grains role, release_state, roles
// ([role]) and fleet {metro, site, cluster, region, rack}.
type Salt struct {
	Faults
	opts   SaltOptions
	ids    []string
	grains []map[string]any
	down   []bool

	mu     sync.Mutex
	tokens map[string]time.Time

	jobs saltJobs // local_async jobs: salt_state.go
}

// NewSalt returns a salt-api fake serving f.
func NewSalt(f *fleet.Fleet, opts SaltOptions) *Salt {
	if opts.User == "" {
		opts.User = DefaultSaltUser
	}
	if opts.Password == "" {
		opts.Password = DefaultSaltPassword
	}
	if opts.EAuth == "" {
		opts.EAuth = DefaultSaltEAuth
	}
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = 12 * time.Hour
	}
	s := &Salt{opts: opts, tokens: map[string]time.Time{}}
	for i, n := range f.Nodes {
		host, domain, _ := strings.Cut(n.ID, ".")
		major, release, codename := "12", "12.8", "bookworm"
		if n.Platform == "debian-11" {
			major, release, codename = "11", "11.11", "bullseye"
		}
		virtual := "physical"
		switch n.Kind {
		case disposition.KindVM:
			virtual = "kvm"
		case disposition.KindContainer:
			virtual = "container"
		}
		g := map[string]any{
			"id": n.ID, "fqdn": n.ID, "host": host, "domain": domain, "nodename": host,
			"os": "Debian", "os_family": "Debian", "osfullname": "Debian", "osrelease": release,
			"osmajorrelease": json.Number(major), "oscodename": codename, "kernel": "Linux",
			"cpuarch": "x86_64", "num_cpus": json.Number("64"), "virtual": virtual, "saltversion": "3006.9",
			"ipv4": []string{"127.0.0.1", fmt.Sprintf("10.%d.%d.%d", (i>>16)&0xff, (i>>8)&0xff, i&0xff)},
			"role": n.Role, "roles": []string{n.Role},
			"fleet": map[string]any{"metro": n.Metro, "site": n.Site, "cluster": n.Cluster, "region": n.Region, "rack": n.Rack},
		}
		if n.ReleaseState != "" {
			g["release_state"] = n.ReleaseState
		}
		s.ids = append(s.ids, n.ID)
		s.grains = append(s.grains, g)
		s.down = append(s.down, n.Health == disposition.HealthDown)
	}
	return s
}

// ExpireTokens invalidates every token handed out, as a salt-master
// restart or token expiry does, so that clients must log in again.
func (s *Salt) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
}

// ServeHTTP implements http.Handler.
func (s *Salt) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.serve(w, r, s.handle)
}

// saltError answers like CherryPy's HTTPError, with an HTML page.
func saltError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/html;charset=utf-8")
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, "<!DOCTYPE html><html><head><title>%d %s</title></head><body><h2>%d %s</h2><p>%s</p></body></html>",
		status, http.StatusText(status), status, http.StatusText(status), msg)
}

// readLowstate reads a JSON body (an object or a list of objects) or a
// form body into chunks.
func readLowstate(r *http.Request) ([]map[string]any, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		var list []map[string]any
		if err := json.Unmarshal(body, &list); err == nil {
			return list, nil
		}
		var one map[string]any
		if err := json.Unmarshal(body, &one); err != nil {
			return nil, err
		}
		return []map[string]any{one}, nil
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, err
	}
	chunk := map[string]any{}
	for k, vs := range form {
		if k == "arg" {
			chunk[k] = vs
		} else {
			chunk[k] = vs[0]
		}
	}
	return []map[string]any{chunk}, nil
}

func (s *Salt) handle(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && (r.URL.Path == "/jobs" || strings.HasPrefix(r.URL.Path, "/jobs/")) {
		s.serveJobs(w, r)
		return
	}
	if r.Method != http.MethodPost {
		if r.URL.Path == "/" && r.Method == http.MethodGet {
			writeJSON(w, http.StatusOK, map[string]any{"return": "Welcome", "clients": []string{"local", "local_async", "runner", "runner_async", "wheel"}})
			return
		}
		saltError(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	chunks, err := readLowstate(r)
	if err != nil {
		saltError(w, http.StatusBadRequest, "Could not parse request body")
		return
	}
	switch r.URL.Path {
	case "/login":
		s.login(w, chunks)
	case "/":
		s.run(w, r, chunks)
	default:
		saltError(w, http.StatusNotFound, "The path '"+r.URL.Path+"' was not found.")
	}
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func (s *Salt) login(w http.ResponseWriter, chunks []map[string]any) {
	if len(chunks) != 1 || str(chunks[0]["username"]) != s.opts.User ||
		str(chunks[0]["password"]) != s.opts.Password || str(chunks[0]["eauth"]) != s.opts.EAuth {
		saltError(w, http.StatusUnauthorized, "Could not authenticate using provided credentials")
		return
	}
	var b [20]byte
	_, _ = rand.Read(b[:])
	tok := hex.EncodeToString(b[:])
	now := time.Now()
	exp := now.Add(s.opts.TokenTTL)
	s.mu.Lock()
	s.tokens[tok] = exp
	s.mu.Unlock()
	w.Header().Set("X-Auth-Token", tok)
	writeJSON(w, http.StatusOK, map[string]any{"return": []any{map[string]any{
		"token": tok, "start": float64(now.UnixMicro()) / 1e6, "expire": float64(exp.UnixMicro()) / 1e6,
		"user": s.opts.User, "eauth": s.opts.EAuth, "perms": []any{".*", "@runner", "@wheel"},
	}}})
}

func (s *Salt) run(w http.ResponseWriter, r *http.Request, chunks []map[string]any) {
	tok := r.Header.Get("X-Auth-Token")
	s.mu.Lock()
	exp, ok := s.tokens[tok]
	s.mu.Unlock()
	if !ok || time.Now().After(exp) {
		saltError(w, http.StatusUnauthorized, "No permission -- see authorization schemes")
		return
	}
	results := make([]any, 0, len(chunks))
	for _, c := range chunks {
		res, status, msg := s.call(c)
		if status != 0 {
			saltError(w, status, msg)
			return
		}
		results = append(results, res)
	}
	writeJSON(w, http.StatusOK, map[string]any{"return": results})
}

// targets returns the indexes of the minions a chunk targets.
func (s *Salt) targets(c map[string]any) ([]int, error) {
	tgt := str(c["tgt"])
	if tgt == "" {
		return nil, fmt.Errorf("missing tgt")
	}
	var out []int
	switch typ := str(c["tgt_type"]); typ {
	case "", "glob":
		if _, err := path.Match(tgt, ""); err != nil {
			return nil, err
		}
		for i, id := range s.ids {
			if ok, _ := path.Match(tgt, id); ok {
				out = append(out, i)
			}
		}
	case "compound":
		return s.compound(tgt)
	case "list":
		names := strings.Split(tgt, ",")
		for i, id := range s.ids {
			if slices.Contains(names, id) {
				out = append(out, i)
			}
		}
	default:
		return nil, fmt.Errorf("target type %q is not supported by the fake", typ)
	}
	return out, nil
}

func (s *Salt) call(c map[string]any) (any, int, string) {
	client, fun := str(c["client"]), str(c["fun"])
	idx, err := s.targets(c)
	if err != nil && !(client == "runner" && c["tgt"] == nil) {
		return nil, http.StatusBadRequest, err.Error()
	}
	res := map[string]any{}
	switch {
	case client == "runner" && fun == "cache.grains":
		if c["tgt"] == nil {
			idx = make([]int, len(s.ids))
			for i := range idx {
				idx[i] = i
			}
		}
		for _, i := range idx {
			res[s.ids[i]] = s.grains[i]
		}
	case client == "local_async":
		return s.localAsync(c, idx), 0, ""
	case client == "runner" && strings.HasPrefix(fun, "jobs."):
		return s.jobsRunner(c)
	case client == "local":
		for _, i := range idx {
			if s.down[i] {
				continue
			}
			switch fun {
			case "grains.items":
				res[s.ids[i]] = s.grains[i]
			case "grains.item":
				sel := map[string]any{}
				var args []string
				switch a := c["arg"].(type) {
				case []string:
					args = a
				case []any:
					for _, v := range a {
						args = append(args, str(v))
					}
				}
				for _, k := range args {
					if k != "" {
						if v, ok := s.grains[i][k]; ok {
							sel[k] = v
						}
					}
				}
				res[s.ids[i]] = sel
			case "test.ping":
				res[s.ids[i]] = true
			default:
				res[s.ids[i]] = fmt.Sprintf("'%s' is not available.", fun)
			}
		}
	default:
		return nil, http.StatusBadRequest, fmt.Sprintf("client %q with fun %q is not supported by the fake", client, fun)
	}
	return res, 0, ""
}
