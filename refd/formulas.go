package refd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/formulas"
	"github.com/fleetkit/fleetkit/formulas/gitrepo"
	"github.com/fleetkit/fleetkit/trials"
)

// FormulasConfig configures a FormulasService (the formulas section of
// refd.yaml).
type FormulasConfig struct {
	// Control is the control file. Required.
	Control string `yaml:"control"`
	// Lock is the lock file; when set and present, resolution reuses its
	// pins (offline and reproducible).
	Lock string `yaml:"lock"`
	// Frozen resolves only from Lock and fails where the control file
	// disagrees with it.
	Frozen bool `yaml:"frozen"`
	// MirrorDir holds git mirrors of repositories given by URL; "" means
	// repositories must be local paths or locked.
	MirrorDir string `yaml:"mirror_dir"`
	// Root is where Build materialises environments; "" disables Build.
	Root string `yaml:"root"`
}

// FormulasService answers the /v1/formulas routes from a control file and
// its lock with package formulas. It serves the release state of every
// trial in force beside the control file's own (SetTrials).
type FormulasService struct {
	file    string // the control file's path, for errors and relative repos
	source  []byte // its text
	opts    formulas.ResolveOptions
	builder *formulas.Builder

	mu  sync.RWMutex
	ctl *formulas.Control // source plus the trials' states
}

var (
	_ Formulas      = (*FormulasService)(nil)
	_ TrialFormulas = (*FormulasService)(nil)
)

// NewFormulasService reads the control file and lock of cfg.
func NewFormulasService(ctx context.Context, cfg FormulasConfig) (*FormulasService, error) {
	if cfg.Control == "" {
		return nil, errors.New("control: required")
	}
	source, err := os.ReadFile(cfg.Control)
	if err != nil {
		return nil, fmt.Errorf("formulas: %w", err)
	}
	ctl, err := formulas.Parse(cfg.Control, source)
	if err != nil {
		return nil, err
	}
	s := &FormulasService{file: cfg.Control, source: source, ctl: ctl, opts: formulas.ResolveOptions{Frozen: cfg.Frozen}}
	if cfg.Lock != "" {
		l, err := formulas.ReadLock(cfg.Lock)
		switch {
		case err == nil:
			s.opts.Lock = l
		case errors.Is(err, os.ErrNotExist) && !cfg.Frozen:
		default:
			return nil, err
		}
	}
	if !cfg.Frozen {
		repos, err := gitrepo.New(gitrepo.Config{MirrorDir: cfg.MirrorDir})
		if err != nil {
			return nil, err
		}
		s.opts.Repos = repos
		if cfg.Root != "" {
			s.builder, err = formulas.NewBuilder(formulas.BuilderConfig{Root: cfg.Root, Repos: repos})
			if err != nil {
				return nil, err
			}
		}
	}
	return s, nil
}

// control returns the control file in force, trials' states included.
func (s *FormulasService) control() *formulas.Control {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.ctl
}

// TrialInput returns the control file as trials.Plan reads it.
func (s *FormulasService) TrialInput() *trials.FormulasInput {
	return &trials.FormulasInput{File: s.file, Control: s.source, Resolve: s.opts}
}

// SetTrials makes the release states served those of the control file
// plus one per trial in ts. On error nothing changes.
func (s *FormulasService) SetTrials(ctx context.Context, ts []*trials.Trial) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ctl, err := trials.WithTrialStates(s.file, s.source, ts...)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.ctl = ctl
	s.mu.Unlock()
	return nil
}

// requestErr marks errors about the control file, the lock or the
// request as the request's fault.
func requestErr(err error) error {
	var list formulas.ErrorList
	var fe *formulas.Error
	if errors.As(err, &list) || errors.As(err, &fe) || errors.Is(err, formulas.ErrNoEnvironment) ||
		errors.Is(err, formulas.ErrUnknownRole) || errors.Is(err, formulas.ErrUnknownState) ||
		errors.Is(err, formulas.ErrLockMismatch) || errors.Is(err, formulas.ErrOffline) {
		return fmt.Errorf("%w: %w", ErrFormulaRequest, err)
	}
	return err
}

// Resolve returns the environment of role in a release state.
func (s *FormulasService) Resolve(ctx context.Context, role, releaseState string) (any, error) {
	env, err := formulas.Resolve(ctx, s.control(), role, releaseState, s.opts)
	if err != nil {
		return nil, requestErr(err)
	}
	return env, nil
}

// Diff compares the served control file with another and counts the
// servers each changed environment touches.
func (s *FormulasService) Diff(ctx context.Context, name string, control []byte, snap *disposition.Snapshot) (any, error) {
	other, err := formulas.Parse(name, control)
	if err != nil {
		return nil, requestErr(err)
	}
	d, err := formulas.DiffControls(ctx, s.control(), other, s.opts)
	if err != nil {
		return nil, requestErr(err)
	}
	if err := d.CountServers(snap); err != nil {
		return nil, err
	}
	return d, nil
}

// Build materialises one environment, or all of them when role and
// releaseState are empty.
func (s *FormulasService) Build(ctx context.Context, role, releaseState string) (any, error) {
	if s.builder == nil {
		return nil, fmt.Errorf("%w: building needs formulas.root set and frozen off", ErrFormulaRequest)
	}
	if role == "" {
		res, err := formulas.ResolveAll(ctx, s.control(), s.opts)
		if err != nil {
			return nil, requestErr(err)
		}
		built, err := s.builder.BuildAll(ctx, res)
		if err != nil {
			return nil, requestErr(err)
		}
		return built, nil
	}
	env, err := formulas.Resolve(ctx, s.control(), role, releaseState, s.opts)
	if err != nil {
		return nil, requestErr(err)
	}
	built, err := s.builder.Build(ctx, env)
	if err != nil {
		return nil, requestErr(err)
	}
	return []formulas.BuildResult{built}, nil
}
