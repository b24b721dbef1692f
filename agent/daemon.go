package agent

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/config"
)

// DaemonOptions configure RunDaemon.
type DaemonOptions struct {
	// ConfigPath is the configuration file, reloaded on SIGHUP and when
	// it changes.
	ConfigPath string
	// Registry builds the backends.
	Registry *backends.Registry
	// Logger receives everything the daemon logs.
	Logger *slog.Logger
	// Notifier talks to systemd; nil tells nobody.
	Notifier *Notifier
	// Concurrency and StopGrace are the scheduler's (SchedulerOptions).
	Concurrency int
	StopGrace   time.Duration
	// Version is exported in papyra_compact_build_info.
	Version string
	// CheckConfig, when set, is called with every configuration put in
	// use; a non-empty result ("restart needed: …") is a standing note,
	// shown in STATUS=, logged, and recorded in the state for `status`,
	// until a configuration checks clean.
	CheckConfig func(*config.Config) string
	// EmergencyEvery is how often free space is checked against the
	// targets' keep_free; zero means DefaultEmergencyEvery.
	EmergencyEvery time.Duration
}

// ConfigLoadError is RunDaemon's error when the configuration cannot be
// loaded at start: there is no last good one to keep, so the daemon does
// not start.
type ConfigLoadError struct{ Err error }

func (e *ConfigLoadError) Error() string { return e.Err.Error() }
func (e *ConfigLoadError) Unwrap() error { return e.Err }

// RunDaemon is the daemon: it loads the configuration, compacts every
// target on its interval until ctx is done, and reloads the configuration
// on SIGHUP and when the file changes. It owns the order things are built
// in (the configuration, then the recorder, then the scheduler, and only
// then the reload triggers and READY=1), so no callback ever sees a part
// that does not exist yet.
func RunDaemon(ctx context.Context, o DaemonOptions) error {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &daemonHooks{log: log, check: o.CheckConfig, unmet: &UnmetLog{}}
	reloader, err := NewReloader(ReloaderOptions{
		Path:     o.ConfigPath,
		Registry: o.Registry,
		Logger:   log,
		Notifier: o.Notifier,
		OnReload: d.reloaded,
		OnSwap:   d.swapped,
	})
	if err != nil {
		return &ConfigLoadError{Err: err}
	}
	snap := reloader.Current()
	rec, err := NewRecorder(snap.Config, o.Registry, RecorderOptions{Version: o.Version})
	if err != nil {
		return err
	}
	if err := rec.RecordReload(reloader.Status()); err != nil {
		log.Error("cannot record the configuration load in the state directory; metrics are stale", "err", err)
	}
	d.src = &notedSource{Reloader: reloader}
	d.checkConfig(rec, snap.Config)
	sched := NewScheduler(SchedulerOptions{
		Source:      d.src,
		Notifier:    o.Notifier,
		Logger:      log,
		Concurrency: o.Concurrency,
		StopGrace:   o.StopGrace,
		OnResult: func(r Result) {
			if err := rec.Record(r); err != nil {
				log.Error("cannot record the run in the state directory and textfile; status and metrics are stale",
					"target", r.Target, "err", err)
			}
		},
		LastStart: func(target string) (time.Time, bool) {
			return lastStart(reloader.Current().Config.StateDir, target)
		},
		Emergency: func(ctx context.Context) {
			snap := reloader.Current()
			if !OptedIn(snap.Config) {
				d.unmet.forget(nil)
				return
			}
			// The daemon's memory of what it logged, not the agent's: a
			// reload builds a new agent, and must not repeat the error.
			if err := rec.RecordEmergency(snap.Agent.Emergency(ctx, EmergencyOptions{Unmet: d.unmet})); err != nil {
				log.Error("cannot record the emergency check in the state directory and textfile; status and metrics are stale", "err", err)
			}
		},
		EmergencyEvery: o.EmergencyEvery,
		OnSchedule: func(s Schedule) {
			if err := rec.Scheduled(s); err != nil {
				log.Debug("cannot record the schedule in the state directory", "target", s.Target, "err", err)
			}
		},
	})
	d.attach(rec, sched)

	// The SIGHUP handler must be in place before READY=1, since systemd
	// may send a reload right after, and stay until the scheduler has
	// stopped: SIGHUP's default action kills, and a `systemctl reload`
	// during the stop grace must not cut a compaction short.
	reloadCtx, stopReloads := context.WithCancel(context.WithoutCancel(ctx))
	defer stopReloads()
	if err := reloader.Start(reloadCtx); err != nil {
		return err
	}
	o.Notifier.Ready()
	log.Info("daemon started", "config", snap.Config.File, "targets", len(snap.Config.Targets),
		"watchdog", o.Notifier.WatchdogInterval(), "sd_notify", o.Notifier.Enabled())
	err = sched.Run(ctx)
	stopReloads()
	reloader.Wait()
	log.Info("daemon stopped")
	return err
}

// daemonHooks routes the reloader's callbacks. The first load calls them
// before the recorder and scheduler exist; they then do nothing, and the
// daemon records that load itself once the recorder is built.
type daemonHooks struct {
	log   *slog.Logger
	rec   *Recorder
	sched *Scheduler
	check func(*config.Config) string
	src   *notedSource
	// unmet is what the emergency checks logged of keep_free not met;
	// only the emergency ticker's goroutine uses it.
	unmet *UnmetLog
}

// notedSource is the reloader as the scheduler's source, with a standing
// note for its status line (see DaemonOptions.CheckConfig).
type notedSource struct {
	*Reloader
	note atomic.Pointer[string]
}

// StatusNote is appended to STATUS= (see loop.report).
func (s *notedSource) StatusNote() string {
	if p := s.note.Load(); p != nil {
		return *p
	}
	return ""
}

// checkConfig runs the CheckConfig hook on cfg and reports a change of
// its verdict: in the log, the state and STATUS=.
func (d *daemonHooks) checkConfig(rec *Recorder, cfg *config.Config) {
	if d.check == nil {
		return
	}
	note := d.check(cfg)
	if prev := d.src.StatusNote(); note != prev {
		d.src.note.Store(&note)
		if note != "" {
			d.log.Warn(note)
		} else {
			d.log.Info("the configuration in use needs no restart any more")
		}
	}
	// Always recorded (a no-op when the state already says so): a new
	// process must clear what the one before it recorded.
	if err := rec.RestartNeeded(note); err != nil {
		d.log.Error("cannot record the configuration check in the state directory", "err", err)
	}
}

// attach is called before the reloader's goroutine starts, which alone
// calls the callbacks afterwards: no lock is needed.
func (d *daemonHooks) attach(rec *Recorder, sched *Scheduler) { d.rec, d.sched = rec, sched }

func (d *daemonHooks) reloaded(st ReloadStatus) {
	if d.sched == nil {
		return
	}
	// A rejected file changes nothing to schedule, but the status line
	// must say so now, not at the next wake-up.
	d.sched.Wake()
	if err := d.rec.RecordReload(st); err != nil {
		d.log.Error("cannot record the reload in the state directory; metrics are stale", "err", err)
	}
}

func (d *daemonHooks) swapped(s *Snapshot) {
	if d.sched == nil {
		return
	}
	d.rec.SetConfig(s.Config)
	d.checkConfig(d.rec, s.Config)
	d.sched.Wake()
}

// lastStart is the scheduling policy for a target the daemon has not run
// yet: when its last real run started (this daemon before a restart, or
// a manual `run`), so that it is due one interval after that. A target
// that never ran, whose last run failed, or whose state cannot be read is
// due now.
func lastStart(stateDir, target string) (time.Time, bool) {
	st, found, err := LoadTargetState(stateDir, target)
	if err != nil || !found || st.Failed {
		return time.Time{}, false
	}
	last := st.LastSuccess
	if st.LastFailure.After(last) {
		last = st.LastFailure
	}
	return last, !last.IsZero()
}

// envFor is what a backend for target t of cfg is given: the one place
// a backends.Env is built.
func envFor(cfg *config.Config, t config.Target, log *slog.Logger) backends.Env {
	return backends.Env{
		Logger:        log,
		QuarantineDir: filepath.Join(cfg.QuarantineDir, t.Name),
		StateDir:      cfg.StateDir,
		ScratchDir:    filepath.Join(cfg.StateDir, "scratch"),
		GracePeriod:   cfg.Grace(t),
	}
}
