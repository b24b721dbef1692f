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
	"github.com/papyra-compact/papyra-compact/internal/fsutil"
)

// Outcome is how one target's run ended.
type Outcome int

// Outcomes, in the order they are worst for the exit code.
const (
	OutcomeOK Outcome = iota
	OutcomeNothingToDo
	OutcomeDryRun
	OutcomeLocked
	// OutcomeInterrupted is a run stopped by SIGTERM or SIGINT (or never
	// started because of one): not a failure of the store, so it pages
	// nobody, but counted apart so that a run that never gets to finish
	// shows.
	OutcomeInterrupted
	// OutcomeRefused is a run the safety valve (max_remove_fraction)
	// stopped before it changed anything: it needs a person, so it exits
	// 1 like a failure, but is counted apart.
	OutcomeRefused
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
	case OutcomeInterrupted:
		return "interrupted"
	case OutcomeRefused:
		return "refused"
	default:
		return "failure"
	}
}

// Result is one target's outcome.
type Result struct {
	Target  string
	Kind    string
	Outcome Outcome
	Stats   backends.Stats
	// DebtKnown is true when Stats.Debt is what the run found retention
	// owes (empty: nothing), false when the run stopped before it could
	// tell (a failure before planning, a lock skip): the last known debt
	// then stands.
	DebtKnown bool
	Err       error
	Started   time.Time
	Duration  time.Duration
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
	// StopGrace is how long, once ctx is done (SIGTERM), the compaction
	// in flight may take to finish. It is cancelled before the grace
	// ends, and abandoned (reported interrupted while it still runs, for
	// the process to exit) when the grace is over, whatever it is doing:
	// a kill at any moment is safe (Backend.Apply's contract). Targets
	// not started by then are reported interrupted.
	StopGrace time.Duration
	// OnEmergency, when set, receives the emergency free-space check
	// (keep_free) the pass runs before its targets.
	OnEmergency func(EmergencyReport)
	// Force lets this pass remove more than a target's
	// max_remove_fraction (`run --force`): it confirms once, for the
	// targets of this pass only.
	Force bool
}

// ErrRefused is the error of a run the safety valve refused.
var ErrRefused = errors.New("refused by max_remove_fraction")

// ErrNotStarted is the error of a target a stopping pass did not start.
var ErrNotStarted = errors.New("not started: stopping")

// cancelAllowance is how long before the stop grace ends a compaction in
// flight is cancelled, so that it can still remove what it started
// before it is abandoned.
func cancelAllowance(grace time.Duration) time.Duration { return min(grace/4, time.Second) }

// stopper turns ctx being done into a stop: cancel (the compactions'
// context) once the grace, less the cancel allowance, has passed, and
// the returned channel closed when the whole grace has.
func stopper(ctx context.Context, grace time.Duration, cancel context.CancelFunc) (abandon <-chan struct{}, stop func()) {
	ch := make(chan struct{})
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-done:
			return
		}
		t := time.NewTimer(grace - cancelAllowance(grace))
		defer t.Stop()
		select {
		case <-t.C:
		case <-done:
			return
		}
		cancel()
		t.Reset(cancelAllowance(grace))
		select {
		case <-t.C:
			close(ch)
		case <-done:
		}
	}()
	return ch, func() { close(done) }
}

// Agent runs compactions for one configuration.
type Agent struct {
	cfg *config.Config
	reg *backends.Registry
	log *slog.Logger
	// space is the free-space budget of every run this agent has in
	// flight (the daemon runs several at once): what they write to one
	// file system is summed against its headroom.
	space *fsutil.Space
	// shedCache remembers what emergency checks read of rotated segments
	// that have not changed since (see backends.ShedCache).
	shedCache *backends.ShedCache
}

// New returns an agent.
func New(cfg *config.Config, reg *backends.Registry, log *slog.Logger) *Agent {
	return &Agent{cfg: cfg, reg: reg, log: log, space: fsutil.NewSpace(), shedCache: backends.NewShedCache()}
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
	// Compactions get their own context: ctx being done starts the stop,
	// which gives the one in flight the stop grace.
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	abandon, stop := stopper(ctx, opts.StopGrace, cancel)
	defer stop()
	// Free space first: a pass on a nearly full disk must not start
	// with a compaction that needs room for its copies. Every opted-in
	// store is looked at, whatever the selection: the free space is the
	// file system's. A dry run changes nothing, so it drops nothing.
	if !opts.DryRun && OptedIn(a.cfg) && ctx.Err() == nil {
		rep := a.Emergency(runCtx, EmergencyOptions{Now: opts.Now})
		if opts.OnEmergency != nil {
			opts.OnEmergency(rep)
		}
	}
	results := make([]Result, 0, len(targets))
	for _, t := range targets {
		var r Result
		if ctx.Err() != nil {
			r = Result{Target: t.Name, Kind: t.Kind, Outcome: OutcomeInterrupted, Err: ErrNotStarted, Started: time.Now()}
		} else {
			r = a.runUntil(runCtx, abandon, t, opts)
		}
		if opts.OnResult != nil {
			opts.OnResult(r)
		}
		results = append(results, r)
	}
	return results, nil
}

// runUntil runs t, or gives up on it when abandon is closed: the
// compaction then goes on in its goroutine until the process exits.
func (a *Agent) runUntil(ctx context.Context, abandon <-chan struct{}, t config.Target, opts Options) Result {
	start := time.Now()
	ch := make(chan Result, 1)
	go func() { ch <- a.RunTarget(ctx, t, opts) }()
	select {
	case r := <-ch:
		return r
	case <-abandon:
		return abandoned(t, start, opts.StopGrace)
	}
}

// abandoned is the result of a run given up at the end of the stop grace.
func abandoned(t config.Target, start time.Time, grace time.Duration) Result {
	return Result{Target: t.Name, Kind: t.Kind, Outcome: OutcomeInterrupted, Started: start, Duration: time.Since(start),
		Err: fmt.Errorf("abandoned: still running at the end of the stop grace (%s); the next run finishes or undoes what it started", grace)}
}

// RunTarget compacts one target and classifies the outcome. A run that
// ends with an error after ctx was cancelled was interrupted.
func (a *Agent) RunTarget(ctx context.Context, t config.Target, opts Options) Result {
	start := time.Now()
	res := Result{Target: t.Name, Kind: t.Kind, Started: start}
	log := a.log.With("target", t.Name, "backend", t.Kind)
	res.Stats, res.DebtKnown, res.Err = a.compact(ctx, t, opts, log)
	res.Duration = time.Since(start)
	logFuture(ctx, log, res.Stats, opts.Now, a.cfg.ClockSkew(t))
	switch {
	case res.Err == nil && opts.DryRun:
		res.Outcome = OutcomeDryRun
	case res.Err == nil:
		res.Outcome = OutcomeOK
	case errors.Is(res.Err, backends.ErrNothingToDo):
		res.Outcome, res.Err = OutcomeNothingToDo, nil
	case errors.Is(res.Err, backends.ErrLocked):
		res.Outcome = OutcomeLocked
	case errors.Is(res.Err, ErrRefused):
		res.Outcome = OutcomeRefused
	case ctx.Err() != nil:
		res.Outcome = OutcomeInterrupted
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

// compact runs one target. known reports whether the stats' Debt is
// what retention owes after the run (see Result.DebtKnown).
func (a *Agent) compact(ctx context.Context, t config.Target, opts Options, log *slog.Logger) (st backends.Stats, known bool, err error) {
	key, err := a.reg.LockKey(t)
	if err != nil {
		return backends.Stats{}, false, err
	}
	env := envFor(a.cfg, t, log)
	env.LockKey, env.Space = key, a.space
	b, err := a.reg.New(t, env)
	if err != nil {
		return backends.Stats{}, false, err
	}
	defer b.Close()
	if key != "" {
		lock, err := TryLock(a.cfg.LockDir, key, t.Name)
		if err != nil {
			return backends.Stats{}, false, err
		}
		defer lock.Unlock()
	}
	if !opts.DryRun {
		if err := b.Recover(ctx); err != nil {
			return backends.Stats{}, false, fmt.Errorf("recover from an interrupted run: %w", err)
		}
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	pol := backends.Policy{Retention: a.cfg.Policy(t), Now: now, MaxClockSkew: a.cfg.ClockSkew(t)}
	if opts.Progress != nil {
		pol.Progress = func(s backends.Step) { opts.Progress(t.Name, s) }
	}
	plan, err := b.Plan(ctx, pol)
	if err != nil {
		debt, known := clockDebt(err)
		return backends.Stats{Debt: debt}, known, err
	}
	defer plan.Close()
	if opts.DryRun {
		return Judge(t, plan), true, nil
	}
	planned := plan.Stats()
	rc := decideReclaim(t, plan, planned)
	// A compaction too small to be worth its rewrite changes nothing, so
	// the safety valve has nothing to refuse and nobody is paged.
	if rc.skip {
		log.Info("compaction skipped below min_reclaim", "reclaim_bytes", planned.Reclaimed(), "min_reclaim_bytes", rc.threshold, "records", planned.Removed())
		return skipped(planned, rc.debt), true, nil
	}
	// Rewrites too small to be worth it are skipped; the whole files
	// retention removes are still dropped (an unlink each).
	var owed []backends.Debt
	if rc.skipRewrites {
		log.Info("rewrites skipped below min_reclaim", "rewrite_reclaim_bytes", rc.debt.Bytes,
			"min_reclaim_bytes", rc.threshold, "records", rc.debt.Records, "drop_reclaim_bytes", rc.cheap.Reclaimed())
		plan.(backends.RewriteSkipper).SkipRewrites()
		planned = plan.Stats()
		owed = []backends.Debt{rc.debt}
	}
	valve := checkValve(t, planned)
	if valve != nil {
		if !opts.Force {
			st := planned
			st.Debt = append(append([]backends.Debt{}, refusedDebt(planned)...), owed...)
			return st, true, valve
		}
		log.Warn("safety valve overridden by --force", "err", valve)
	}
	st, err = b.Apply(ctx, plan)
	if err != nil {
		st.Debt = incompleteDebt(planned, st)
	}
	if len(owed) > 0 {
		st.Notes = append(st.Notes, "rewrites skipped below min_reclaim: only whole files retention empties were dropped")
		st.Debt = append(append([]backends.Debt{}, st.Debt...), owed...)
	}
	return st, true, err
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
