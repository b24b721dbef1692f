package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/papyra-compact/papyra-compact/agent"
	"github.com/papyra-compact/papyra-compact/backends/all"
	"github.com/papyra-compact/papyra-compact/config"
)

// cmdDaemon compacts every target on its interval until SIGTERM or
// SIGINT, reloading the configuration on SIGHUP and when the file changes.
// It is papyra-compact-daemon.service's ExecStart (Type=notify).
func cmdDaemon(ctx context.Context, args []string, _, stderr io.Writer) error {
	flags := flag.NewFlagSet("daemon", flag.ContinueOnError)
	flags.SetOutput(stderr)
	cfgPath := flags.String("config", config.DefaultPath, "configuration file")
	logLevel := flags.String("log-level", "info", "debug, info, warn or error")
	stopGrace := flags.Duration("stop-grace", 30*time.Second,
		"on SIGTERM, how long compactions in flight may take to finish before they are abandoned")
	concurrency := flags.Int("concurrency", 1, "how many targets may compact at once")
	if err := flags.Parse(args); err != nil {
		return fmt.Errorf("%w: daemon: %v", errUsage, err)
	}
	if flags.NArg() > 0 {
		return fmt.Errorf("%w: daemon: unexpected argument %q", errUsage, flags.Arg(0))
	}
	if *stopGrace < 0 || *concurrency < 1 {
		return fmt.Errorf("%w: daemon: --stop-grace must be >= 0 and --concurrency >= 1", errUsage)
	}
	log, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	notifier := agent.NewNotifier(log, agent.NotifierOptions{})
	defer notifier.Close()

	// rec and sched are set once the first load succeeded; the callbacks
	// run synchronously during that load (when they are still nil) and
	// later only from the reloader's goroutine, started after both are set.
	var (
		rec   *agent.Recorder
		sched *agent.Scheduler
	)
	reg := all.Backends()
	reloader, err := agent.NewReloader(agent.ReloaderOptions{
		Path:     *cfgPath,
		Registry: reg,
		Logger:   log,
		Notifier: notifier,
		OnReload: func(st agent.ReloadStatus) {
			if sched != nil {
				// A rejected file changes nothing to schedule, but the
				// status line must say so now, not at the next wake-up.
				sched.Wake()
			}
			if rec == nil {
				return
			}
			if err := rec.ConfigReloaded(st.OK, st.At); err != nil {
				log.Error("cannot record the reload in the state directory; metrics are stale", "err", err)
			}
		},
		OnSwap: func(s *agent.Snapshot) {
			if rec != nil {
				rec.SetConfig(s.Config)
			}
			if sched != nil {
				sched.Wake()
			}
		},
	})
	if err != nil {
		return configError(*cfgPath, err)
	}
	snap := reloader.Current()
	rec, err = agent.NewRecorder(snap.Config, reg, agent.RecorderOptions{Version: version})
	if err != nil {
		return err
	}
	if err := rec.ConfigReloaded(true, reloader.Status().At); err != nil {
		log.Error("cannot record the configuration load in the state directory; metrics are stale", "err", err)
	}
	sched = agent.NewScheduler(agent.SchedulerOptions{
		Source:      reloader,
		Notifier:    notifier,
		Logger:      log,
		Concurrency: *concurrency,
		StopGrace:   *stopGrace,
		OnResult: func(r agent.Result) {
			if err := rec.Record(r); err != nil {
				log.Error("cannot record the run in the state directory and textfile; status and metrics are stale",
					"target", r.Target, "err", err)
			}
		},
		LastStart: func(target string) (time.Time, bool) {
			st, found, err := agent.LoadTargetState(snap.Config.StateDir, target)
			if err != nil || !found || st.Failed {
				return time.Time{}, false // unknown or failed: due now
			}
			last := st.LastSuccess
			if st.LastFailure.After(last) {
				last = st.LastFailure
			}
			return last, !last.IsZero()
		},
		OnSchedule: func(target string, next time.Time, interval time.Duration) {
			if err := rec.Scheduled(target, next, interval); err != nil {
				log.Debug("cannot record the schedule in the state directory", "target", target, "err", err)
			}
		},
	})

	// The SIGHUP handler must be in place before READY=1, since systemd
	// may send a reload right after, and stay until the scheduler has
	// stopped: SIGHUP's default action kills, and a `systemctl reload`
	// during the stop grace must not cut a compaction short.
	reloadCtx, stopReloads := context.WithCancel(context.WithoutCancel(ctx))
	defer stopReloads()
	if err := reloader.Start(reloadCtx); err != nil {
		return err
	}
	notifier.Ready()
	log.Info("daemon started", "config", snap.Config.File, "targets", len(snap.Config.Targets),
		"watchdog", notifier.WatchdogInterval(), "sd_notify", notifier.Enabled())
	err = sched.Run(ctx)
	stopReloads()
	reloader.Wait()
	log.Info("daemon stopped")
	return err
}
