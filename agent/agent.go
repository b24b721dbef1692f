// Package agent runs compactions: it builds a backend per configured
// target, serializes runs per store with a file lock, and turns each
// target's outcome into a result the command line, the journal and the
// metrics report. Packages below agent return errors; agent decides what
// each one means (ErrNothingToDo is fine, ErrLocked is a skip, anything
// else is a failed target) and never stops the other targets because one
// failed.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"syscall"
	"time"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/config"
)

// Outcome is how one target's run ended.
type Outcome int

// Outcomes, in the order they are worst for the exit code.
const (
	OutcomeOK Outcome = iota
	OutcomeNothingToDo
	OutcomeDryRun
	OutcomeLocked
	OutcomeFailed
)

func (o Outcome) String() string {
	switch o {
	case OutcomeOK:
		return "success"
	case OutcomeNothingToDo:
		return "nothing_to_do"
	case OutcomeDryRun:
		return "dry_run"
	case OutcomeLocked:
		return "skipped_locked"
	default:
		return "failure"
	}
}

// Result is one target's outcome.
type Result struct {
	Target   string
	Kind     string
	Outcome  Outcome
	Stats    backends.Stats
	Err      error
	Started  time.Time
	Duration time.Duration
}

// Options select what one pass does.
type Options struct {
	// Targets limits the pass to these names; empty means all.
	Targets []string
	// DryRun plans and reports without changing anything.
	DryRun bool
	// Now pins "now" for age retention; zero means the wall clock.
	Now time.Time
	// Progress, when set, receives per-target progress.
	Progress func(target string, s backends.Step)
	// OnResult, when set, is called after each target with its result
	// (metrics, state, the journal), before the next target starts.
	OnResult func(Result)
}

// Agent runs compactions for one configuration.
type Agent struct {
	cfg *config.Config
	reg *backends.Registry
	log *slog.Logger
}

// New returns an agent.
func New(cfg *config.Config, reg *backends.Registry, log *slog.Logger) *Agent {
	return &Agent{cfg: cfg, reg: reg, log: log}
}

// ErrUnknownTarget is returned when Options.Targets names a target the
// configuration does not have.
var ErrUnknownTarget = errors.New("unknown target")

// Select returns the configured targets named in names (all when empty),
// in configuration order.
func (a *Agent) Select(names []string) ([]config.Target, error) {
	if len(names) == 0 {
		return a.cfg.Targets, nil
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var out []config.Target
	for _, t := range a.cfg.Targets {
		if want[t.Name] {
			out = append(out, t)
			delete(want, t.Name)
		}
	}
	for n := range want {
		return nil, fmt.Errorf("%w %q (see `papyra-compact check` for the configured ones)", ErrUnknownTarget, n)
	}
	return out, nil
}

// RunOnce runs one pass over the selected targets, one after the other,
// and returns a result per target. The error is only for a bad selection.
func (a *Agent) RunOnce(ctx context.Context, opts Options) ([]Result, error) {
	targets, err := a.Select(opts.Targets)
	if err != nil {
		return nil, err
	}
	results := make([]Result, 0, len(targets))
	for _, t := range targets {
		if ctx.Err() != nil {
			results = append(results, Result{Target: t.Name, Kind: t.Kind, Outcome: OutcomeFailed, Err: ctx.Err(), Started: time.Now()})
			continue
		}
		r := a.RunTarget(ctx, t, opts)
		if opts.OnResult != nil {
			opts.OnResult(r)
		}
		results = append(results, r)
	}
	return results, nil
}

// RunTarget compacts one target and classifies the outcome.
func (a *Agent) RunTarget(ctx context.Context, t config.Target, opts Options) Result {
	start := time.Now()
	res := Result{Target: t.Name, Kind: t.Kind, Started: start}
	log := a.log.With("target", t.Name, "backend", t.Kind)
	res.Stats, res.Err = a.compact(ctx, t, opts, log)
	res.Duration = time.Since(start)
	switch {
	case res.Err == nil && opts.DryRun:
		res.Outcome = OutcomeDryRun
	case res.Err == nil:
		res.Outcome = OutcomeOK
	case errors.Is(res.Err, backends.ErrNothingToDo):
		res.Outcome, res.Err = OutcomeNothingToDo, nil
	case errors.Is(res.Err, backends.ErrLocked):
		res.Outcome = OutcomeLocked
	default:
		res.Outcome = OutcomeFailed
		if errors.Is(res.Err, syscall.EROFS) {
			// Under systemd the usual cause is the unit's sandbox
			// (ProtectSystem=strict): say what fixes it.
			res.Err = fmt.Errorf("%w (under systemd: the unit's sandbox does not let it write there; "+
				"`papyra-compact check --write-dropin` adds the path to both units, then restart the daemon or start the next pass)", res.Err)
		}
	}
	return res
}

func (a *Agent) compact(ctx context.Context, t config.Target, opts Options, log *slog.Logger) (backends.Stats, error) {
	b, err := a.reg.New(t, envFor(a.cfg, t, log))
	if err != nil {
		return backends.Stats{}, err
	}
	defer b.Close()
	key, err := a.reg.LockKey(t)
	if err != nil {
		return backends.Stats{}, err
	}
	if key != "" {
		lock, err := TryLock(a.cfg.LockDir, key, t.Name)
		if err != nil {
			return backends.Stats{}, err
		}
		defer lock.Unlock()
	}
	if !opts.DryRun {
		if err := b.Recover(ctx); err != nil {
			return backends.Stats{}, fmt.Errorf("recover from an interrupted run: %w", err)
		}
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	pol := backends.Policy{Retention: a.cfg.Policy(t), Now: now}
	if opts.Progress != nil {
		pol.Progress = func(s backends.Step) { opts.Progress(t.Name, s) }
	}
	plan, err := b.Plan(ctx, pol)
	if err != nil {
		return backends.Stats{}, err
	}
	defer plan.Close()
	if opts.DryRun {
		return plan.Stats(), nil
	}
	return b.Apply(ctx, plan)
}

// Worst folds a pass's results into its outcome: the worst of them, in
// the order the Outcome constants are listed (OutcomeOK for none). The
// command line's main alone turns it into an exit status.
func Worst(results []Result) Outcome {
	worst := OutcomeOK
	for _, r := range results {
		worst = max(worst, r.Outcome)
	}
	return worst
}
