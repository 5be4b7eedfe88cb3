package refd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/fleetkit/fleetkit/rollout"
	"github.com/fleetkit/fleetkit/rollout/saltdeploy"
	"github.com/fleetkit/fleetkit/rollout/webhook"
	"github.com/fleetkit/fleetkit/sources"
)

// LogDeployer returns a rollout.Deployer that deploys nothing: it logs
// each request and reports every server deployed. It is refd.yaml's
// default deployer (type log), for trying rollouts out and for fleets
// whose deploys something else carries out; log nil discards the lines.
func LogDeployer(log *slog.Logger) rollout.Deployer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return logDeployer{log: log}
}

type logDeployer struct{ log *slog.Logger }

func (d logDeployer) Deploy(ctx context.Context, req rollout.DeployRequest) ([]rollout.ServerResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d.log.LogAttrs(ctx, slog.LevelInfo, "deploy (log deployer: nothing is deployed)",
		slog.String("rollout", req.Rollout), slog.Int("wave", req.Wave), slog.Int("batch", req.Batch),
		slog.String("key", req.IdempotencyKey), slog.String("component", req.Component),
		slog.String("version", req.Version), slog.Bool("rollback", req.Rollback), slog.Int("servers", len(req.Servers)))
	res := make([]rollout.ServerResult, len(req.Servers))
	for i, s := range req.Servers {
		res[i] = rollout.ServerResult{Server: s, OK: true}
	}
	return res, nil
}

// DeployerTypes are the deployer types of refd.yaml's rollout.deployer:
//
//	deployer: {type: log}              # logs each deploy, deploys nothing (the default)
//	deployer:                          # POSTs each deploy, signed (package rollout/webhook)
//	  type: webhook
//	  url: https://deploy.example.com/fleetkit
//	  secret_file: /etc/refd/webhook.secret   # or secret_env: NAME; or insecure: true
//	  header: {X-Team: edge}                  # plain headers
//	  header_env: {Authorization: DEPLOY_AUTH} # headers whose values are in the environment
//	  attempts: 3
//	  backoff: 1s
//	  max_backoff: 1m
//	  timeout: 30s
//	deployer:                          # state.apply through salt-api (package rollout/saltdeploy)
//	  type: salt-api
//	  url: https://salt.example.com:8000
//	  username: refd
//	  password_file: /etc/refd/salt.password  # or password_env: NAME
//	  eauth: pam
//	  state: cdn-app                          # the SLS; empty applies the highstate
//	  saltenv: base
//	  pillar: {channel: stable}
//	  queue: true
//	  batch_size: 200
//	  poll_interval: 5s
//	  job_timeout: 30m
//	  timeout: 30s
//	  no_recovery: false
//
// Secrets are read from a file (trailing white space trimmed) or an
// environment variable, never written in refd.yaml, and never logged.
var DeployerTypes = []string{"log", "webhook", "salt-api"}

// webhookFile is rollout.deployer with type webhook.
type webhookFile struct {
	Type       string            `yaml:"type"`
	URL        string            `yaml:"url"`
	SecretFile string            `yaml:"secret_file"`
	SecretEnv  string            `yaml:"secret_env"`
	Insecure   bool              `yaml:"insecure"`
	Header     map[string]string `yaml:"header"`
	HeaderEnv  map[string]string `yaml:"header_env"`
	Attempts   int               `yaml:"attempts"`
	Backoff    time.Duration     `yaml:"backoff"`
	MaxBackoff time.Duration     `yaml:"max_backoff"`
	Timeout    time.Duration     `yaml:"timeout"`
}

// saltFile is rollout.deployer with type salt-api.
type saltFile struct {
	Type         string         `yaml:"type"`
	URL          string         `yaml:"url"`
	Username     string         `yaml:"username"`
	PasswordFile string         `yaml:"password_file"`
	PasswordEnv  string         `yaml:"password_env"`
	EAuth        string         `yaml:"eauth"`
	State        string         `yaml:"state"`
	Saltenv      string         `yaml:"saltenv"`
	Pillar       map[string]any `yaml:"pillar"`
	Queue        bool           `yaml:"queue"`
	BatchSize    int            `yaml:"batch_size"`
	PollInterval time.Duration  `yaml:"poll_interval"`
	JobTimeout   time.Duration  `yaml:"job_timeout"`
	Timeout      time.Duration  `yaml:"timeout"`
	NoRecovery   bool           `yaml:"no_recovery"`
}

// newDeployer makes the deployer of refd.yaml's rollout.deployer mapping
// n (absent: type log); line is its line, for errors about it as a whole.
func newDeployer(file string, n *yaml.Node, line int, log *slog.Logger) (rollout.Deployer, string, error) {
	cerr := func(line int, path string, err error) error {
		return &sources.ConfigError{File: file, Line: line, Path: path, Err: err}
	}
	// Errors of the mapping's own decoding name their line and the key
	// below rollout.deployer.
	decode := func(v any) error {
		err := sources.DecodeOptions(n, v)
		var ce *sources.ConfigError
		if errors.As(err, &ce) {
			path := "rollout.deployer"
			if ce.Path != "" {
				path += "." + ce.Path
			}
			return cerr(ce.Line, path, ce.Err)
		}
		return err
	}
	if n.Kind == 0 || n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return LogDeployer(log), "log", nil
	}
	if n.Kind != yaml.MappingNode {
		return nil, "", cerr(n.Line, "rollout.deployer", errors.New("want a mapping with a type"))
	}
	typ := "log"
	if t := valueOf(n, "type"); t != nil {
		typ, line = t.Value, t.Line
	}
	switch typ {
	case "log":
		var c struct {
			Type string `yaml:"type"`
		}
		if err := decode(&c); err != nil {
			return nil, "", err
		}
		return LogDeployer(log), typ, nil
	case "webhook":
		var c webhookFile
		if err := decode(&c); err != nil {
			return nil, "", err
		}
		at := keyLine(n, line)
		cfg := webhook.Config{URL: c.URL, Insecure: c.Insecure, Attempts: c.Attempts, Backoff: c.Backoff, MaxBackoff: c.MaxBackoff, Timeout: c.Timeout}
		secret, err := readSecret(c.SecretFile, c.SecretEnv, "secret", !c.Insecure)
		if err != nil {
			return nil, "", cerr(at("secret_file", "secret_env"), "rollout.deployer.secret", err)
		}
		cfg.Secret = []byte(secret)
		if len(c.Header)+len(c.HeaderEnv) > 0 {
			cfg.Header = make(map[string]string, len(c.Header)+len(c.HeaderEnv))
		}
		for k, v := range c.Header {
			cfg.Header[k] = v
		}
		for k, env := range c.HeaderEnv {
			if _, dup := c.Header[k]; dup {
				return nil, "", cerr(at("header_env"), "rollout.deployer.header_env."+k, errors.New("also in header"))
			}
			v, err := readSecret("", env, "header_env."+k, true)
			if err != nil {
				return nil, "", cerr(at("header_env"), "rollout.deployer.header_env."+k, err)
			}
			cfg.Header[k] = v
		}
		d, err := webhook.New(cfg)
		if err != nil {
			return nil, "", cerr(line, "rollout.deployer", err)
		}
		return d, typ, nil
	case "salt-api":
		var c saltFile
		if err := decode(&c); err != nil {
			return nil, "", err
		}
		at := keyLine(n, line)
		password, err := readSecret(c.PasswordFile, c.PasswordEnv, "password", false)
		if err != nil {
			return nil, "", cerr(at("password_file", "password_env"), "rollout.deployer.password", err)
		}
		d, err := saltdeploy.New(saltdeploy.Config{
			URL: c.URL, Username: c.Username, Password: password, EAuth: c.EAuth, Timeout: c.Timeout,
			State: c.State, Saltenv: c.Saltenv, Pillar: c.Pillar, Queue: c.Queue, BatchSize: c.BatchSize,
			PollInterval: c.PollInterval, JobTimeout: c.JobTimeout, NoRecovery: c.NoRecovery,
		})
		if err != nil {
			return nil, "", cerr(line, "rollout.deployer", err)
		}
		return d, typ, nil
	}
	return nil, "", cerr(line, "rollout.deployer.type", fmt.Errorf("unknown deployer type %q (valid: %s)", typ, strings.Join(DeployerTypes, ", ")))
}

// keyLine returns a function giving the line of the first of keys that
// mapping n has, or def.
func keyLine(n *yaml.Node, def int) func(keys ...string) int {
	return func(keys ...string) int {
		for _, k := range keys {
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == k {
					return n.Content[i].Line
				}
			}
		}
		return def
	}
}

// readSecret reads a secret from a file (trailing white space trimmed) or
// an environment variable; at most one may be given, and one must be when
// required. Errors never hold the secret.
func readSecret(file, env, what string, required bool) (string, error) {
	switch {
	case file != "" && env != "":
		return "", fmt.Errorf("give %s_file or %s_env, not both", what, what)
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", err
		}
		v := strings.TrimRight(string(b), " \t\r\n")
		if v == "" {
			return "", fmt.Errorf("%s: the file is empty", file)
		}
		return v, nil
	case env != "":
		v, ok := os.LookupEnv(env)
		if !ok || v == "" {
			return "", fmt.Errorf("environment variable %s is not set", env)
		}
		return v, nil
	case required:
		return "", fmt.Errorf("required: %s_file or %s_env", what, what)
	}
	return "", nil
}
