package fakes

import (
	"fmt"
	"maps"
	"net/http"
	"path"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"
)

// This file gives the salt-api fake asynchronous jobs, as a deployer
// uses them:
//
//	POST /  {"client": "local_async", "fun": "state.apply", "tgt": "L@a,b", "tgt_type": "compound",
//	         "kwarg": {...}, "metadata": {...}}     -> {"return": [{"jid", "minions"}]}
//	GET  /jobs/<jid>                                -> {"info": [{..., "Minions", "Result"}], "return": [{minion: ret}]}
//	GET  /jobs                                      -> {"return": [{jid: {...}}]}
//	POST /  {"client": "runner", "fun": "jobs.list_jobs", "search_metadata": {...}, "search_function": "..."}
//	POST /  {"client": "runner", "fun": "jobs.lookup_jid" or "jobs.list_job", "jid": "..."}
//
// state.apply, state.sls and state.highstate return three states per
// minion (a package, its config file and its service) in salt's shape,
// unless SetStateRun says otherwise; test.ping returns true. A local_async
// call that targets no minion returns {} and starts no job, as salt does.

// StateRun is how a minion of the salt-api fake answers a state run
// (state.apply, state.sls or state.highstate started with local_async).
// The zero value succeeds.
type StateRun struct {
	// Fail, if not empty, makes the minion's package state fail with
	// this comment, and the service state that requires it fail too.
	Fail string
	// Errors, if not empty, is the minion's return instead of state
	// results, as salt returns SLS render and compile errors.
	Errors []string
	// NoReturn makes the minion never return, like a hung minion.
	// Minions of down nodes never return either.
	NoReturn bool
}

// SaltJob is a job the salt-api fake started (client local_async).
type SaltJob struct {
	JID        string
	Function   string
	Target     string
	TargetType string
	// Minions are the minions the job targeted, in fleet order.
	Minions  []string
	Arg      []any
	Kwarg    map[string]any
	Metadata map[string]any
	User     string
	Start    time.Time
}

// saltJobs is the fake's job cache.
type saltJobs struct {
	mu          sync.Mutex
	seq         int
	jobs        []*saltJob
	runs        map[string]StateRun
	returnAfter int
}

type saltJob struct {
	SaltJob
	returns  map[string]any
	retcodes map[string]int
	looks    int
}

// SetStateRun sets how minion answers the state runs started from now
// on.
func (s *Salt) SetStateRun(minion string, r StateRun) {
	s.jobs.mu.Lock()
	defer s.jobs.mu.Unlock()
	if s.jobs.runs == nil {
		s.jobs.runs = map[string]StateRun{}
	}
	s.jobs.runs[minion] = r
}

// SetReturnAfter makes minions return only once a job has been looked
// up n times (GET /jobs/<jid>, runner jobs.lookup_jid or jobs.list_job),
// so that clients must poll; 0 or 1 means at the first look.
func (s *Salt) SetReturnAfter(n int) {
	s.jobs.mu.Lock()
	defer s.jobs.mu.Unlock()
	s.jobs.returnAfter = n
}

// Jobs returns the jobs started so far, oldest first.
func (s *Salt) Jobs() []SaltJob {
	s.jobs.mu.Lock()
	defer s.jobs.mu.Unlock()
	out := make([]SaltJob, len(s.jobs.jobs))
	for i, j := range s.jobs.jobs {
		out[i] = j.SaltJob
	}
	return out
}

// compound matches a compound target made of list terms (L@a,b) and
// globs joined by "or", the subset of salt's compound matcher a list of
// minions needs.
func (s *Salt) compound(tgt string) ([]int, error) {
	want := make([]bool, len(s.ids))
	expectTerm := true
	for _, tok := range strings.Fields(tgt) {
		if !expectTerm {
			if tok != "or" {
				return nil, fmt.Errorf("compound operator %q is not supported by the fake (only \"or\")", tok)
			}
			expectTerm = true
			continue
		}
		expectTerm = false
		switch {
		case strings.HasPrefix(tok, "L@"):
			names := strings.Split(tok[2:], ",")
			for i, id := range s.ids {
				if slices.Contains(names, id) {
					want[i] = true
				}
			}
		case len(tok) > 1 && tok[1] == '@', tok == "and", tok == "not", tok == "or":
			return nil, fmt.Errorf("compound term %q is not supported by the fake", tok)
		default:
			if _, err := path.Match(tok, ""); err != nil {
				return nil, err
			}
			for i, id := range s.ids {
				if ok, _ := path.Match(tok, id); ok {
					want[i] = true
				}
			}
		}
	}
	if expectTerm {
		return nil, fmt.Errorf("bad compound target %q", tgt)
	}
	var out []int
	for i, ok := range want {
		if ok {
			out = append(out, i)
		}
	}
	return out, nil
}

// localAsync starts a job on the minions idx and returns its pub data.
func (s *Salt) localAsync(c map[string]any, idx []int) any {
	if len(idx) == 0 {
		return map[string]any{}
	}
	kwarg, _ := c["kwarg"].(map[string]any)
	metadata, _ := c["metadata"].(map[string]any)
	var arg []any
	switch a := c["arg"].(type) {
	case []any:
		arg = a
	case []string:
		for _, v := range a {
			arg = append(arg, v)
		}
	case string:
		arg = []any{a}
	}
	fun := str(c["fun"])

	s.jobs.mu.Lock()
	defer s.jobs.mu.Unlock()
	s.jobs.seq++
	now := time.Now()
	j := &saltJob{
		SaltJob: SaltJob{
			JID:      fmt.Sprintf("%s%06d", now.Format("20060102150405"), s.jobs.seq%1000000),
			Function: fun, Target: str(c["tgt"]), TargetType: str(c["tgt_type"]),
			Arg: arg, Kwarg: kwarg, Metadata: metadata, User: s.opts.User, Start: now,
		},
		returns:  map[string]any{},
		retcodes: map[string]int{},
	}
	if j.TargetType == "" {
		j.TargetType = "glob"
	}
	for _, i := range idx {
		id := s.ids[i]
		j.Minions = append(j.Minions, id)
		run := s.jobs.runs[id]
		if s.down[i] || run.NoReturn {
			continue
		}
		switch fun {
		case "state.apply", "state.sls", "state.highstate":
			j.returns[id], j.retcodes[id] = stateReturn(sls(kwarg, arg), run)
		case "test.ping":
			j.returns[id] = true
		default:
			j.returns[id], j.retcodes[id] = fmt.Sprintf("'%s' is not available.", fun), 254
		}
	}
	s.jobs.jobs = append(s.jobs.jobs, j)
	return map[string]any{"jid": j.JID, "minions": j.Minions}
}

// sls names the SLS a state run applies, for __sls__.
func sls(kwarg map[string]any, arg []any) string {
	if m := str(kwarg["mods"]); m != "" {
		return strings.Split(m, ",")[0]
	}
	if len(arg) > 0 {
		if m := str(arg[0]); m != "" && !strings.Contains(m, "=") {
			return strings.Split(m, ",")[0]
		}
	}
	return "app"
}

// stateReturn builds a minion's state run return and retcode.
func stateReturn(sls string, r StateRun) (any, int) {
	if len(r.Errors) > 0 {
		return slices.Clone(r.Errors), 1
	}
	type state struct {
		fun, id, name string // fun is module.function
		ok            bool
		comment       string
		changes       map[string]any
	}
	states := []state{
		{"pkg.installed", "app", "app", true, "The following packages were installed/updated: app",
			map[string]any{"app": map[string]any{"old": "1.0", "new": "1.1"}}},
		{"file.managed", "app-config", "/etc/app/app.conf", true, "File /etc/app/app.conf updated",
			map[string]any{"diff": "--- \n+++ \n"}},
		{"service.running", "app", "app", true, "Service app has been restarted", map[string]any{"app": true}},
	}
	retcode := 0
	if r.Fail != "" {
		states[0].ok, states[0].comment, states[0].changes = false, r.Fail, map[string]any{}
		states[2].ok, states[2].comment, states[2].changes = false, "One or more requisite failed: "+sls+".app", map[string]any{}
		retcode = 2
	}
	out := map[string]any{}
	for n, st := range states {
		mod, fn, _ := strings.Cut(st.fun, ".")
		out[mod+"_|-"+st.id+"_|-"+st.name+"_|-"+fn] = map[string]any{
			"__id__": st.id, "__run_num__": n, "__sls__": sls, "name": st.name, "result": st.ok,
			"comment": st.comment, "changes": st.changes, "duration": 12.5, "start_time": "12:00:00.000000",
		}
	}
	return out, retcode
}

// look counts a look at j and returns the minions' returns so far. The
// caller holds s.jobs.mu.
func (s *Salt) look(j *saltJob) map[string]any {
	j.looks++
	if j.looks < max(s.jobs.returnAfter, 1) {
		return map[string]any{}
	}
	return maps.Clone(j.returns)
}

func (s *Salt) job(jid string) *saltJob {
	for _, j := range s.jobs.jobs {
		if j.JID == jid {
			return j
		}
	}
	return nil
}

// arguments is a job's Arguments as salt's job cache shows them: the
// positional arguments, then the keyword ones marked __kwarg__.
func (j *saltJob) arguments() []any {
	args := slices.Clone(j.Arg)
	if args == nil {
		args = []any{}
	}
	if len(j.Kwarg) > 0 {
		kw := maps.Clone(j.Kwarg)
		kw["__kwarg__"] = true
		args = append(args, kw)
	}
	return args
}

// summary is the job as jobs.list_jobs shows it.
func (j *saltJob) summary() map[string]any {
	m := map[string]any{
		"Function": j.Function, "Arguments": j.arguments(), "Target": j.Target, "Target-type": j.TargetType,
		"User": j.User, "StartTime": j.Start.Format("2006, Jan 02 15:04:05.000000"),
	}
	if j.Metadata != nil {
		m["Metadata"] = j.Metadata
	}
	return m
}

// listJob is jobs.list_job of jid, and the returns it holds. The caller
// holds s.jobs.mu.
func (s *Salt) listJob(jid string) (info map[string]any, returns map[string]any) {
	j := s.job(jid)
	if j == nil {
		return map[string]any{
			"jid": jid, "Function": "unknown-function", "Arguments": []any{}, "Target": "unknown-target",
			"Target-type": []any{}, "User": "root", "StartTime": "", "Result": map[string]any{},
		}, map[string]any{}
	}
	returns = s.look(j)
	result := map[string]any{}
	for id, ret := range returns {
		result[id] = map[string]any{"return": ret, "retcode": j.retcodes[id], "success": j.retcodes[id] == 0}
	}
	info = j.summary()
	info["jid"], info["Minions"], info["Result"] = jid, j.Minions, result
	return info, returns
}

// listJobs is jobs.list_jobs with its search filters. The caller holds
// s.jobs.mu.
func (s *Salt) listJobs(c map[string]any) map[string]any {
	match := func(pattern any, v string) bool {
		switch p := pattern.(type) {
		case string:
			ok, _ := path.Match(p, v)
			return ok
		case []any:
			for _, e := range p {
				if ok, _ := path.Match(str(e), v); ok {
					return true
				}
			}
		}
		return false
	}
	out := map[string]any{}
	for _, j := range s.jobs.jobs {
		if sm, ok := c["search_metadata"]; ok && sm != nil {
			// As salt: a job matches if any one key has the same value.
			m, _ := sm.(map[string]any)
			hit := false
			for k, v := range m {
				if got, ok := j.Metadata[k]; ok && reflect.DeepEqual(got, v) {
					hit = true
				}
			}
			if !hit {
				continue
			}
		}
		if f, ok := c["search_function"]; ok && f != nil && !match(f, j.Function) {
			continue
		}
		if tg, ok := c["search_target"]; ok && tg != nil && !match(tg, j.Target) {
			continue
		}
		out[j.JID] = j.summary()
	}
	return out
}

// jobsRunner answers the jobs runner functions.
func (s *Salt) jobsRunner(c map[string]any) (any, int, string) {
	s.jobs.mu.Lock()
	defer s.jobs.mu.Unlock()
	switch fun := str(c["fun"]); fun {
	case "jobs.list_jobs":
		return s.listJobs(c), 0, ""
	case "jobs.list_job", "jobs.lookup_jid":
		jid := str(c["jid"])
		if jid == "" {
			return nil, http.StatusBadRequest, fun + " needs a jid"
		}
		info, returns := s.listJob(jid)
		if fun == "jobs.list_job" {
			return info, 0, ""
		}
		if missing, _ := c["missing"].(bool); missing {
			if j := s.job(jid); j != nil {
				for _, id := range j.Minions {
					if _, ok := returns[id]; !ok {
						returns[id] = "Minion did not return"
					}
				}
			}
		}
		return returns, 0, ""
	default:
		return nil, http.StatusBadRequest, fmt.Sprintf("runner %q is not supported by the fake", fun)
	}
}

// serveJobs answers GET /jobs and GET /jobs/<jid> as rest_cherrypy does.
func (s *Salt) serveJobs(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	exp, ok := s.tokens[r.Header.Get("X-Auth-Token")]
	s.mu.Unlock()
	if !ok || time.Now().After(exp) {
		saltError(w, http.StatusUnauthorized, "No permission -- see authorization schemes")
		return
	}
	jid := strings.Trim(strings.TrimPrefix(r.URL.Path, "/jobs"), "/")
	s.jobs.mu.Lock()
	defer s.jobs.mu.Unlock()
	if jid == "" {
		writeJSON(w, http.StatusOK, map[string]any{"return": []any{s.listJobs(map[string]any{})}})
		return
	}
	info, returns := s.listJob(jid)
	writeJSON(w, http.StatusOK, map[string]any{"info": []any{info}, "return": []any{returns}})
}
