package refd

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/formulas"
	"github.com/fleetkit/fleetkit/formulas/gitrepo"
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
// its lock with package formulas.
type FormulasService struct {
	ctl     *formulas.Control
	opts    formulas.ResolveOptions
	builder *formulas.Builder
}

var _ Formulas = (*FormulasService)(nil)

// NewFormulasService reads the control file and lock of cfg.
func NewFormulasService(ctx context.Context, cfg FormulasConfig) (*FormulasService, error) {
	if cfg.Control == "" {
		return nil, errors.New("control: required")
	}
	ctl, err := formulas.ParseFile(cfg.Control)
	if err != nil {
		return nil, err
	}
	s := &FormulasService{ctl: ctl, opts: formulas.ResolveOptions{Frozen: cfg.Frozen}}
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
	env, err := formulas.Resolve(ctx, s.ctl, role, releaseState, s.opts)
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
	d, err := formulas.DiffControls(ctx, s.ctl, other, s.opts)
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
		res, err := formulas.ResolveAll(ctx, s.ctl, s.opts)
		if err != nil {
			return nil, requestErr(err)
		}
		built, err := s.builder.BuildAll(ctx, res)
		if err != nil {
			return nil, requestErr(err)
		}
		return built, nil
	}
	env, err := formulas.Resolve(ctx, s.ctl, role, releaseState, s.opts)
	if err != nil {
		return nil, requestErr(err)
	}
	built, err := s.builder.Build(ctx, env)
	if err != nil {
		return nil, requestErr(err)
	}
	return []formulas.BuildResult{built}, nil
}
