package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/fleetkit/fleetkit/client"
	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/testkit/fleet"
	"github.com/fleetkit/fleetkit/trials"
)

// The exit codes of refd trial, for CI.
const (
	exitTrialOK       = 0
	exitTrialError    = 1 // could not talk to refd, or another failure
	exitTrialInvalid  = 2 // a trial file is invalid (or bad usage)
	exitTrialConflict = 3 // a trial conflicts with the fleet or another trial
)

const trialUsage = `usage:
  refd trial plan [-json] [-fleet FILE] [-now RFC3339] FILE...   dry run: servers, release state, rollout plan, conflicts
  refd trial apply [-json] FILE...                               apply trial files to a running refd
  refd trial end [-json] NAME                                    end a trial: servers return to their previous release state
  refd trial list [-json]
exit codes: 0 ok, 1 error, 2 invalid trial file, 3 conflict
`

// trialOutcome is what happened to one trial file.
type trialOutcome struct {
	File      string                 `json:"file"`
	Result    string                 `json:"result"` // planned, applied, unchanged, invalid, conflict, error
	Error     string                 `json:"error,omitempty"`
	Plan      *client.TrialPlan      `json:"plan,omitempty"`
	Trial     *client.Trial          `json:"trial,omitempty"`
	Conflicts []client.TrialConflict `json:"conflicts,omitempty"`
}

func (o *trialOutcome) code() int {
	switch o.Result {
	case "invalid":
		return exitTrialInvalid
	case "conflict":
		return exitTrialConflict
	case "error":
		return exitTrialError
	}
	return exitTrialOK
}

// worst folds exit codes: a failure beats a conflict, which beats an
// invalid file.
func worst(a, b int) int {
	rank := map[int]int{exitTrialOK: 0, exitTrialInvalid: 1, exitTrialConflict: 2, exitTrialError: 3}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

// cmdTrial runs refd trial and returns the exit code.
func cmdTrial(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, trialUsage)
		return exitTrialInvalid
	}
	sub, rest := args[0], args[1:]
	fs := flags("trial " + sub)
	mk := clientFlags(fs, getenv)
	asJSON := fs.Bool("json", false, "print JSON")
	fleetFile, nowFlag := new(string), new(string)
	if sub == "plan" {
		fleetFile = fs.String("fleet", "", "plan offline over this fleet file (CSV or JSON), no server")
		nowFlag = fs.String("now", "", "offline: the planning time (default now)")
	}
	pos, err := interleaved(fs, rest)
	if errors.Is(err, errUsage) {
		fmt.Fprintf(stderr, "refd: %v\n%s", err, trialUsage)
		return exitTrialInvalid
	} else if err != nil {
		return exitTrialOK // -h
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "refd: trial %s: %v\n", sub, err)
		return exitTrialError
	}
	switch sub {
	case "plan", "apply":
		if len(pos) == 0 {
			fmt.Fprintf(stderr, "refd: trial %s: give one or more trial files\n%s", sub, trialUsage)
			return exitTrialInvalid
		}
		var c *client.Client
		var offline *disposition.Snapshot
		now := time.Now()
		if sub == "plan" && *fleetFile != "" {
			if offline, err = loadFleet(ctx, *fleetFile); err != nil {
				return fail(err)
			}
			if *nowFlag != "" {
				if now, err = time.Parse(time.RFC3339, *nowFlag); err != nil {
					fmt.Fprintf(stderr, "refd: trial plan: -now: want RFC 3339, got %q\n", *nowFlag)
					return exitTrialInvalid
				}
			}
		} else if c, err = mk(); err != nil {
			return fail(err)
		}
		code := exitTrialOK
		var outs []*trialOutcome
		for _, file := range pos {
			o := trialFile(ctx, sub, file, c, offline, now)
			outs = append(outs, o)
			code = worst(code, o.code())
			if !*asJSON {
				printOutcome(stdout, o)
			}
		}
		if *asJSON {
			if err := printJSON(stdout, outs); err != nil {
				return fail(err)
			}
		}
		return code
	case "end":
		if len(pos) != 1 {
			fmt.Fprintf(stderr, "refd: trial end: give one trial name\n%s", trialUsage)
			return exitTrialInvalid
		}
		c, err := mk()
		if err != nil {
			return fail(err)
		}
		t, err := c.EndTrial(ctx, pos[0])
		if err != nil {
			var ae *client.Error
			if errors.As(err, &ae) && ae.Status == http.StatusConflict {
				fmt.Fprintf(stderr, "refd: trial end: %s\n", ae.Message)
				return exitTrialConflict
			}
			return fail(err)
		}
		if *asJSON {
			_ = printJSON(stdout, t)
			return exitTrialOK
		}
		fmt.Fprintf(stdout, "trial %s ended: %d servers back to their previous release state\n", t.Name, len(t.Servers))
		if t.EndNote != "" {
			fmt.Fprintf(stdout, "  %s\n", t.EndNote)
		}
		return exitTrialOK
	case "list":
		c, err := mk()
		if err != nil {
			return fail(err)
		}
		ts, err := c.Trials(ctx)
		if err != nil {
			return fail(err)
		}
		if *asJSON {
			_ = printJSON(stdout, ts)
			return exitTrialOK
		}
		fmt.Fprintf(stdout, "%-24s %-8s %-24s %7s %-10s %s\n", "NAME", "STATE", "OWNER", "SERVERS", "ROLLOUT", "EXPIRY")
		for _, t := range ts {
			fmt.Fprintf(stdout, "%-24s %-8s %-24s %7d %-10s %s\n", t.Name, t.State, t.Owner, len(t.Servers), dash(t.RolloutID), t.Expiry.UTC().Format(time.RFC3339))
		}
		return exitTrialOK
	}
	fmt.Fprintf(stderr, "refd: trial: unknown subcommand %q\n%s", sub, trialUsage)
	return exitTrialInvalid
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// trialFile plans or applies one file, online with c or offline over snap.
func trialFile(ctx context.Context, sub, file string, c *client.Client, snap *disposition.Snapshot, now time.Time) *trialOutcome {
	o := &trialOutcome{File: file}
	data, err := os.ReadFile(file)
	if err != nil {
		o.Result, o.Error = "error", err.Error()
		return o
	}
	// Parse here first: a bad file fails the same way with or without a
	// server, and never reaches it.
	t, err := trials.Parse(file, data)
	if err != nil {
		o.Result, o.Error = "invalid", err.Error()
		return o
	}
	if snap != nil {
		p, err := trials.Plan(ctx, t, snap, trials.Options{Now: now})
		var ce *trials.ConflictError
		switch {
		case errors.As(err, &ce):
		case errors.Is(err, trials.ErrInvalid):
			o.Result, o.Error = "invalid", err.Error()
			return o
		case err != nil:
			o.Result, o.Error = "error", err.Error()
			return o
		}
		b, err := json.Marshal(p)
		if err == nil {
			err = json.Unmarshal(b, &o.Plan)
		}
		if err != nil {
			o.Result, o.Error = "error", err.Error()
			return o
		}
		o.setPlanned()
		return o
	}
	if sub == "plan" {
		p, err := c.PlanTrial(ctx, file, data)
		if err != nil {
			o.fromAPI(err)
			return o
		}
		o.Plan = p
		o.setPlanned()
		return o
	}
	a, err := c.ApplyTrial(ctx, file, data)
	if err != nil {
		o.fromAPI(err)
		return o
	}
	o.Trial, o.Plan, o.Result = a.Trial, a.Plan, "applied"
	if a.Unchanged {
		o.Result = "unchanged"
	}
	return o
}

func (o *trialOutcome) setPlanned() {
	o.Result = "planned"
	if len(o.Plan.Conflicts) > 0 {
		o.Result, o.Conflicts = "conflict", o.Plan.Conflicts
	}
}

func (o *trialOutcome) fromAPI(err error) {
	o.Result, o.Error = "error", err.Error()
	var ae *client.Error
	if errors.As(err, &ae) {
		switch {
		case ae.Status == http.StatusConflict:
			o.Result, o.Error = "conflict", ae.Message
		case ae.Code == "trial_invalid":
			o.Result, o.Error = "invalid", ae.Message
		}
	}
}

// printOutcome writes one file's outcome for a CI log.
func printOutcome(w io.Writer, o *trialOutcome) {
	switch o.Result {
	case "invalid":
		fmt.Fprintf(w, "INVALID %s\n", o.Error)
		return
	case "error":
		fmt.Fprintf(w, "ERROR   %s: %s\n", o.File, o.Error)
		return
	case "conflict":
		if o.Plan == nil {
			fmt.Fprintf(w, "CONFLICT %s\n", o.Error)
			return
		}
	}
	p := o.Plan
	if p == nil && o.Trial != nil {
		fmt.Fprintf(w, "%s: trial %s %s (same file already in force): %d servers in release state %s, expiry %s\n",
			o.File, o.Trial.Name, o.Result, len(o.Trial.Servers), o.Trial.ReleaseState, o.Trial.Expiry.UTC().Format(time.RFC3339))
		return
	}
	fmt.Fprintf(w, "%s: trial %s (owner %s) %s\n", o.File, p.Trial, p.Owner, o.Result)
	fmt.Fprintf(w, "  release state  %s\n", p.ReleaseState)
	fmt.Fprintf(w, "  servers        %d: %s\n", len(p.Servers), sample(p.Servers))
	from := map[string]int{}
	for _, s := range p.Previous {
		from[s]++
	}
	var parts []string
	for s, n := range from {
		parts = append(parts, fmt.Sprintf("%s %d", dash(s), n))
	}
	sort.Strings(parts)
	fmt.Fprintf(w, "  from           %s\n", strings.Join(parts, ", "))
	fmt.Fprintf(w, "  window         %s to %s\n", p.Start.UTC().Format(time.RFC3339), p.Expiry.UTC().Format(time.RFC3339))
	for _, e := range p.Environments {
		fmt.Fprintf(w, "  environment    %s -> %s  %d servers\n", dash(e.Before), e.After, e.Servers)
		for _, f := range e.Formulas {
			fmt.Fprintf(w, "    %-14s %s -> %s\n", f.Formula, dash(f.From), dash(f.To))
		}
		if e.Error != "" {
			fmt.Fprintf(w, "    error: %s\n", e.Error)
		}
	}
	if len(p.Rollout) > 0 && string(p.Rollout) != "null" {
		var rp struct {
			Waves []struct {
				Servers []string  `json:"servers"`
				Start   time.Time `json:"start"`
				End     time.Time `json:"end"`
			} `json:"waves"`
			Skipped []struct{} `json:"skipped"`
		}
		if json.Unmarshal(p.Rollout, &rp) == nil {
			fmt.Fprintf(w, "  rollout        %d waves, %d skipped\n", len(rp.Waves), len(rp.Skipped))
			for i, wv := range rp.Waves {
				fmt.Fprintf(w, "    wave %-3d %4d servers  %s to %s\n", i+1, len(wv.Servers), wv.Start.UTC().Format(time.RFC3339), wv.End.UTC().Format(time.RFC3339))
			}
		}
	} else {
		fmt.Fprintf(w, "  rollout        none\n")
	}
	if o.Trial != nil && o.Trial.RolloutID != "" {
		fmt.Fprintf(w, "  rollout id     %s\n", o.Trial.RolloutID)
	}
	for _, c := range p.Conflicts {
		fmt.Fprintf(w, "  CONFLICT %s: %s\n", c.Kind, (&trials.Error{File: c.File, Line: c.Line, Field: c.Field, Err: errors.New(c.Message)}).Error())
	}
}

func sample(ids []string) string {
	if len(ids) > 5 {
		return strings.Join(ids[:5], ", ") + fmt.Sprintf(" and %d more", len(ids)-5)
	}
	return strings.Join(ids, ", ")
}

// loadFleet reads a fleet file (CSV by its extension, else JSON) into an
// index and returns its snapshot.
func loadFleet(ctx context.Context, path string) (*disposition.Snapshot, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	var nodes []*disposition.Node
	if strings.EqualFold(filepath.Ext(path), ".csv") {
		nodes, err = fleet.ReadCSV(fh)
	} else {
		nodes, err = fleet.ReadJSON(fh)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	ix := disposition.NewIndex()
	if _, err := ix.Apply(ctx, disposition.Batch{Upserts: nodes}); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ix.Snapshot(), nil
}
