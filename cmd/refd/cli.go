package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fleetkit/fleetkit/client"
	"github.com/fleetkit/fleetkit/refd"
	"github.com/fleetkit/fleetkit/rollout"
)

const usage = `refd: the fleetkit reference daemon and its CLI.

Serve:
  refd serve --demo [-data DIR] [-listen ADDR]   a generated 20K-server fleet, no config needed
  refd serve -config refd.yaml                   sources, tokens, TLS, store, formulas from a file

Query a running refd (flags -url and -token, or REFD_URL and REFD_TOKEN):
  refd nodes [-fields F,..] [-limit N] [-json] [TERM ...]   e.g. refd nodes metro=DEN health!=down
  refd aggregate [-by F,..] [-json] [TERM ...]              e.g. refd aggregate -by metro,health role=edge
  refd sources [-json]
  refd plan -spec FILE [-start RFC3339]                      plan a rollout spec (dry run)
  refd plan -fleet FILE -spec FILE [-start RFC3339]          plan offline over a fleet file, no server
  refd rollout create -spec FILE | list | get ID | pause ID | resume ID | abort ID | rollback ID | promote ID   [-reason R] [-json]
  refd rollout skip ID SERVER | pin ID SERVER [-reason R]   leave a server out of a rollout (pin: and of its rollback)
  refd formulas resolve (-node ID | -role R -release-state S) | diff FILE | build [-role R -release-state S]
  refd override set ID -owner O -reason R -ttl 24h [-state S] [-release-state S] | delete ID | list
  refd trial plan [-fleet FILE] FILE... | apply FILE... | end NAME | list    GitOps trials (exit 2 invalid, 3 conflict)

Tokens:
  refd token new [-name NAME] [-scopes read,write,rollout,admin]   a new secret and its config entry
`

// run is the whole CLI; it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		err = cmdServe(ctx, rest, stderr)
	case "nodes":
		err = cmdNodes(ctx, rest, stdout, getenv)
	case "aggregate":
		err = cmdAggregate(ctx, rest, stdout, getenv)
	case "sources":
		err = cmdSources(ctx, rest, stdout, getenv)
	case "plan":
		err = cmdPlan(ctx, rest, stdout, getenv)
	case "rollout":
		err = cmdRollout(ctx, rest, stdout, getenv)
	case "formulas":
		err = cmdFormulas(ctx, rest, stdout, getenv)
	case "override":
		err = cmdOverride(ctx, rest, stdout, getenv)
	case "trial":
		return cmdTrial(ctx, rest, stdout, stderr, getenv)
	case "token":
		err = cmdToken(rest, stdout)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "refd: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintln(stderr, prefixed(err))
		return 2
	}
	fmt.Fprintln(stderr, prefixed(err))
	return 1
}

// prefixed is err's message after "refd: ", once: the client's errors
// already start with it.
func prefixed(err error) string {
	msg := err.Error()
	if strings.HasPrefix(msg, "refd: ") {
		return msg
	}
	return "refd: " + msg
}

var errUsage = errors.New("usage")

func usageErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errUsage}, args...)...)
}

// flags returns a flag set that reports errors instead of exiting.
func flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("refd "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(os.Stdout)
			fs.PrintDefaults()
			return err
		}
		return usageErr("%s: %v", fs.Name(), err)
	}
	return nil
}

// interleaved parses flags that may come after positional arguments
// (refd nodes metro=DEN -limit 5).
func interleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parse(fs, args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// clientFlags adds -url and -token to fs and returns the client maker.
func clientFlags(fs *flag.FlagSet, getenv func(string) string) func() (*client.Client, error) {
	def := getenv("REFD_URL")
	if def == "" {
		def = "http://" + refd.DefaultAddr
	}
	u := fs.String("url", def, "refd base URL (env REFD_URL)")
	tok := fs.String("token", "", "bearer token (default env REFD_TOKEN)")
	return func() (*client.Client, error) {
		t := *tok
		if t == "" {
			t = getenv("REFD_TOKEN")
		}
		return client.New(*u, t)
	}
}

func cmdServe(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flags("serve")
	demo := fs.Bool("demo", false, "run on the embedded default: a generated 20K-server fleet")
	config := fs.String("config", "", "configuration file (refd.yaml)")
	data := fs.String("data", refd.DefaultDemoDataDir, "demo data directory")
	listen := fs.String("listen", "", "listen address (default "+refd.DefaultAddr+"; overrides the config file)")
	size := fs.Int("size", refd.DefaultDemoSize, "demo fleet size")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErr("serve: unexpected argument %q", fs.Arg(0))
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		return usageErr("serve: -log-level: %v", err)
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: lv}))
	switch {
	case *demo && *config != "":
		return usageErr("serve: give -config or --demo, not both")
	case *demo:
		start := time.Now()
		d, err := refd.NewDemo(ctx, refd.DemoConfig{DataDir: *data, Addr: *listen, Size: *size, Logger: log})
		if err != nil {
			return err
		}
		defer d.Close()
		if d.AdminToken != "" {
			fmt.Fprintf(stderr, "admin token: %s\n", d.AdminToken)
			fmt.Fprintf(stderr, "  (printed once; only its hash is kept in %s)\n", d.DataDir)
			addr := *listen
			if addr == "" {
				addr = refd.DefaultAddr
			}
			fmt.Fprintf(stderr, "  try: export REFD_URL=http://%s REFD_TOKEN=%s; refd nodes metro=DEN health!=down\n", addr, d.AdminToken)
		} else {
			fmt.Fprintf(stderr, "admin token: unchanged (its hash is in %s/%s; delete that file for a new one)\n", d.DataDir, refd.DemoTokenFile)
		}
		log.Info("demo ready to serve", "data", d.DataDir, "size", *size, "setup", time.Since(start).String())
		return d.Server.Run(ctx)
	case *config != "":
		return serveConfig(ctx, *config, *listen, log)
	}
	return usageErr("serve: give -config FILE or --demo")
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func cmdNodes(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	fs := flags("nodes")
	mk := clientFlags(fs, getenv)
	fields := fs.String("fields", "", "fields to return, comma-separated (default all)")
	limit := fs.Int("limit", 0, "at most this many nodes (default all)")
	asJSON := fs.Bool("json", false, "print the API's JSON")
	terms, err := interleaved(fs, args)
	if err != nil {
		return err
	}
	c, err := mk()
	if err != nil {
		return err
	}
	q := client.NodesQuery{Query: strings.Join(terms, " "), Limit: *limit}
	if *fields != "" {
		q.Fields = strings.Split(*fields, ",")
	}
	p, err := c.Nodes(ctx, q)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, p)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tMETRO\tCLUSTER\tROLE\tSTATE\tRELEASE\tHEALTH\tTRAFFIC_GBPS")
	for _, n := range p.Nodes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.2f\n", n.ID, n.Metro, n.Cluster, n.Role, n.State, n.ReleaseState, n.Health, n.TrafficGbps)
	}
	fmt.Fprintf(tw, "(%d nodes, index version %d)\n", p.Count, p.Version)
	return tw.Flush()
}

func cmdAggregate(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	fs := flags("aggregate")
	mk := clientFlags(fs, getenv)
	by := fs.String("by", "metro", "fields to group by, comma-separated")
	asJSON := fs.Bool("json", false, "print the API's JSON")
	terms, err := interleaved(fs, args)
	if err != nil {
		return err
	}
	c, err := mk()
	if err != nil {
		return err
	}
	var fields []string
	if *by != "" {
		fields = strings.Split(*by, ",")
	}
	a, err := c.Aggregate(ctx, strings.Join(terms, " "), fields...)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, a)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "%s\tCOUNT\tTRAFFIC_GBPS\tCAPACITY_GBPS\n", strings.ToUpper(strings.Join(a.By, "\t")))
	for _, g := range a.Groups {
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.1f\n", strings.Join(g.Key, "\t"), g.Count, g.TrafficGbps, g.CapacityGbps)
	}
	return tw.Flush()
}

func cmdSources(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	fs := flags("sources")
	mk := clientFlags(fs, getenv)
	asJSON := fs.Bool("json", false, "print the API's JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	c, err := mk()
	if err != nil {
		return err
	}
	s, err := c.Sources(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, s)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tAUTH\tOBSERVATIONS\tORPHANS\tSTALE\tAGE_S\tFETCHES\tFAILURES\tLAST_ERROR")
	for _, st := range s.Sources {
		fmt.Fprintf(tw, "%s\t%v\t%d\t%d\t%v\t%.0f\t%d\t%d\t%s\n", st.Name, st.Authoritative, st.Observations, st.Orphans,
			st.Stale, st.StalenessSeconds, st.Fetches, st.Failures, st.LastError)
	}
	return tw.Flush()
}

func parseStart(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, usageErr("-start: want an RFC 3339 time, got %q", s)
	}
	return t, nil
}

func cmdPlan(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	fs := flags("plan")
	mk := clientFlags(fs, getenv)
	specFile := fs.String("spec", "", "rollout spec file (YAML or JSON)")
	fleetFile := fs.String("fleet", "", "plan offline over this fleet file (JSON or CSV), without a server")
	startS := fs.String("start", "", "start time, RFC 3339 (default now)")
	asJSON := fs.Bool("json", false, "print the plan as JSON instead of a table per wave")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *specFile == "" {
		return usageErr("plan: -spec FILE is required")
	}
	print := func(res any, plan json.RawMessage) error {
		if *asJSON {
			return printJSON(stdout, res)
		}
		var p rollout.Plan
		if err := json.Unmarshal(plan, &p); err != nil {
			return fmt.Errorf("plan: decoding the plan: %w", err)
		}
		return p.WriteText(stdout)
	}
	spec, err := os.ReadFile(*specFile)
	if err != nil {
		return err
	}
	start, err := parseStart(*startS)
	if err != nil {
		return err
	}
	if *fleetFile != "" {
		res, err := planOffline(ctx, *specFile, spec, *fleetFile, start)
		if err != nil {
			return err
		}
		return print(res, res.Plan)
	}
	c, err := mk()
	if err != nil {
		return err
	}
	p, err := c.Plan(ctx, spec, start)
	if err != nil {
		return err
	}
	return print(p, p.Plan)
}

func cmdRollout(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		return usageErr("rollout: want create, list, get, pause, resume, abort, rollback, promote, skip or pin")
	}
	sub := args[0]
	fs := flags("rollout " + sub)
	mk := clientFlags(fs, getenv)
	specFile := fs.String("spec", "", "rollout spec file (create)")
	startS := fs.String("start", "", "start time, RFC 3339 (create; default now)")
	reason := fs.String("reason", "", "the reason, recorded in the rollout's log (actions)")
	asJSON := fs.Bool("json", false, "print the whole rollout record, plan included, as JSON")
	pos, err := interleaved(fs, args[1:])
	if err != nil {
		return err
	}
	c, err := mk()
	if err != nil {
		return err
	}
	switch sub {
	case "create":
		if *specFile == "" {
			return usageErr("rollout create: -spec FILE is required")
		}
		spec, err := os.ReadFile(*specFile)
		if err != nil {
			return err
		}
		start, err := parseStart(*startS)
		if err != nil {
			return err
		}
		r, err := c.CreateRollout(ctx, spec, start)
		if err != nil {
			return err
		}
		return printRollout(stdout, r, *asJSON)
	case "list":
		rs, err := c.Rollouts(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTATE\tWAVES\tDONE\tTARGETS\tCREATED_BY\tCREATED_AT")
		for _, r := range rs {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%s\n", r.ID, r.State, r.Waves, r.WavesDone, r.Targets, r.CreatedBy, r.CreatedAt.Format(time.RFC3339))
		}
		return tw.Flush()
	case "get", client.Pause, client.Resume, client.Abort, client.Rollback, client.Promote:
		if len(pos) != 1 {
			return usageErr("rollout %s: want one rollout ID", sub)
		}
		var r *client.Rollout
		switch {
		case sub == "get":
			r, err = c.Rollout(ctx, pos[0])
		case *reason != "":
			r, err = c.RolloutCommand(ctx, pos[0], sub, client.RolloutCommand{Reason: *reason})
		default:
			r, err = c.RolloutAction(ctx, pos[0], sub)
		}
		if err != nil {
			return err
		}
		return printRollout(stdout, r, *asJSON)
	case client.Skip, client.Pin:
		if len(pos) != 2 {
			return usageErr("rollout %s: want a rollout ID and a server", sub)
		}
		r, err := c.RolloutCommand(ctx, pos[0], sub, client.RolloutCommand{Server: pos[1], Reason: *reason})
		if err != nil {
			return err
		}
		return printRollout(stdout, r, *asJSON)
	}
	return usageErr("rollout: unknown subcommand %q", sub)
}

// printRollout prints a rollout as JSON, or as a summary with its last
// events: the plan of a fleet-wide rollout runs to many thousand lines.
func printRollout(w io.Writer, r *client.Rollout, asJSON bool) error {
	if asJSON {
		return printJSON(w, r)
	}
	state := r.State
	if r.PauseCause != "" {
		state += " (" + r.PauseCause + ")"
	}
	fmt.Fprintf(w, "rollout %s  %s\n", r.ID, state)
	if r.Reason != "" {
		fmt.Fprintf(w, "  reason      %s\n", r.Reason)
	}
	fmt.Fprintf(w, "  waves       %d of %d done\n", r.WavesDone, r.Waves)
	fmt.Fprintf(w, "  servers     %d targets, %d skipped by the plan; %d deployed, %d failed, %d rolled back\n",
		r.Targets, r.Skipped, r.Deployed, r.Failed, r.RolledBack)
	fmt.Fprintf(w, "  created     %s by %s\n", r.CreatedAt.UTC().Format(time.RFC3339), r.CreatedBy)
	events := r.Events
	if len(events) > 10 {
		fmt.Fprintf(w, "  events      last 10 of %d (-json for all)\n", len(events))
		events = events[len(events)-10:]
	} else {
		fmt.Fprintf(w, "  events\n")
	}
	for _, e := range events {
		line := fmt.Sprintf("    %s  %-16s %s", e.At.UTC().Format(time.RFC3339), e.Action, e.Who)
		if e.Wave > 0 {
			line += fmt.Sprintf("  wave %d", e.Wave)
		}
		if e.Servers > 0 {
			line += fmt.Sprintf("  %d servers", e.Servers)
		}
		if e.Failed > 0 {
			line += fmt.Sprintf("  %d failed", e.Failed)
		}
		if e.Server != "" {
			line += "  " + e.Server
		}
		for _, x := range []string{e.Reason, e.Error} {
			if x != "" {
				line += "  (" + x + ")"
			}
		}
		fmt.Fprintln(w, line)
	}
	return nil
}

func cmdFormulas(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		return usageErr("formulas: want resolve, diff or build")
	}
	sub := args[0]
	fs := flags("formulas " + sub)
	mk := clientFlags(fs, getenv)
	node := fs.String("node", "", "node ID (resolve)")
	role := fs.String("role", "", "role")
	state := fs.String("release-state", "", "release state")
	pos, err := interleaved(fs, args[1:])
	if err != nil {
		return err
	}
	c, err := mk()
	if err != nil {
		return err
	}
	var out json.RawMessage
	switch sub {
	case "resolve":
		out, err = c.ResolveFormulas(ctx, client.FormulaTarget{Node: *node, Role: *role, ReleaseState: *state})
	case "diff":
		if len(pos) != 1 {
			return usageErr("formulas diff: want one control file")
		}
		b, rerr := os.ReadFile(pos[0])
		if rerr != nil {
			return rerr
		}
		out, err = c.DiffFormulas(ctx, b)
	case "build":
		out, err = c.BuildFormulas(ctx, *role, *state)
	default:
		return usageErr("formulas: unknown subcommand %q", sub)
	}
	if err != nil {
		return err
	}
	return printJSON(stdout, out)
}

func cmdOverride(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		return usageErr("override: want set, delete or list")
	}
	sub := args[0]
	fs := flags("override " + sub)
	mk := clientFlags(fs, getenv)
	var req client.OverrideRequest
	fs.StringVar(&req.State, "state", "", "lifecycle state")
	fs.StringVar(&req.ReleaseState, "release-state", "", "release state")
	fs.StringVar(&req.Owner, "owner", "", "owner")
	fs.StringVar(&req.Reason, "reason", "", "reason")
	fs.StringVar(&req.TTL, "ttl", "", "time to live, e.g. 24h")
	pos, err := interleaved(fs, args[1:])
	if err != nil {
		return err
	}
	c, err := mk()
	if err != nil {
		return err
	}
	switch sub {
	case "list":
		os, err := c.Overrides(ctx)
		if err != nil {
			return err
		}
		return printJSON(stdout, os)
	case "set", "delete":
		if len(pos) != 1 {
			return usageErr("override %s: want one node ID", sub)
		}
		if sub == "delete" {
			return c.DeleteOverride(ctx, pos[0])
		}
		o, err := c.SetOverride(ctx, pos[0], req)
		if err != nil {
			return err
		}
		return printJSON(stdout, o)
	}
	return usageErr("override: unknown subcommand %q", sub)
}

func cmdToken(args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "new" {
		return usageErr("token: want new")
	}
	fs := flags("token new")
	name := fs.String("name", "operator", "token name (who, in the audit log)")
	scopes := fs.String("scopes", "read", "scopes, comma-separated: read, write, rollout, admin")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	var list []string
	for s := range strings.SplitSeq(*scopes, ",") {
		if _, err := refd.ParseScope(strings.TrimSpace(s)); err != nil {
			return usageErr("token new: -scopes: %v", err)
		}
		list = append(list, strings.TrimSpace(s))
	}
	secret, err := refd.NewTokenSecret()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "secret: %s\n\n# refd.yaml\ntokens:\n  - name: %s\n    hash: %s\n    scopes: [%s]\n",
		secret, *name, refd.HashToken(secret), strings.Join(list, ", "))
	return nil
}
