package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/papyra-compact/papyra-compact/agent"
	"github.com/papyra-compact/papyra-compact/backends/all"
	"github.com/papyra-compact/papyra-compact/config"
)

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("run", stderr)
	var targets stringList
	cfgPath := fs.String("config", config.DefaultPath, "configuration `FILE`")
	dryRun := fs.Bool("dry-run", false, "report what would be removed; change nothing")
	nowFlag := fs.String("now", "", "evaluate age retention as of this `UNIX` time (seconds)")
	logLevel := fs.String("log-level", "info", "`LEVEL`: debug, info, warn or error")
	noProgress := fs.Bool("no-progress", false, "never draw a progress bar")
	stopGrace := fs.Duration("stop-grace", 30*time.Second,
		"on SIGTERM or SIGINT, how long the compaction in flight may take to finish before it is abandoned")
	force := fs.Bool("force", false, "confirm a run that removes more than a target's max_remove_fraction (this run's targets only)")
	fs.Var(&targets, "target", "compact only this target `NAME` (repeatable)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: run: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: run: unexpected argument %q (targets are selected with --target NAME)", errUsage, fs.Arg(0))
	}
	log, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	if *stopGrace < 0 {
		return fmt.Errorf("%w: run: --stop-grace must be >= 0", errUsage)
	}
	opts := agent.Options{Targets: targets, DryRun: *dryRun, StopGrace: *stopGrace, Force: *force}
	if *nowFlag != "" {
		if opts.Now, err = parseNow(*nowFlag, time.Now()); err != nil {
			return err
		}
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	for _, w := range cfg.Warnings {
		log.Warn("configuration warning", "err", w, "file", w.File, "line", w.Line, "field", w.Field)
	}
	var bar *progressBar
	if !*noProgress && isTerminal(stderr) {
		bar = newProgressBar(stderr)
		opts.Progress = bar.update
	}
	reg := all.Backends()
	a := agent.New(cfg, reg, log)
	if _, err := a.Select(opts.Targets); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	// Every target's result goes into the state directory (counters that
	// survive this process, `status`) and the textfile as soon as the
	// target is done, so a long pass never hides a finished target.
	// Recording is best effort: a run that cannot write its state (a dry
	// run by an unprivileged user) still compacts and reports.
	rec, err := agent.NewRecorder(cfg, reg, agent.RecorderOptions{Version: version})
	if err != nil {
		return err
	}
	var recErr error
	opts.OnResult = func(r agent.Result) {
		if err := rec.Record(r); err != nil && recErr == nil {
			recErr = err
			log.Error("cannot record the run in the state directory and textfile; status and metrics are stale", "target", r.Target, "err", err)
		}
	}
	var emergency []agent.EmergencyFS
	opts.OnEmergency = func(rep agent.EmergencyReport) {
		emergency = rep.FileSystems
		if err := rec.RecordEmergency(rep); err != nil && recErr == nil {
			recErr = err
			log.Error("cannot record the emergency check in the state directory and textfile; status and metrics are stale", "err", err)
		}
	}
	endNotify := runNotify(ctx, log, a, &opts)
	results, err := a.RunOnce(ctx, opts)
	endNotify(results)
	if bar != nil {
		bar.clear()
	}
	if err != nil {
		return err
	}
	// A final write covers a pass that recorded nothing (no target
	// selected) and a configuration whose targets changed since the last.
	if recErr == nil {
		if err := rec.WriteTextfile(); err != nil {
			log.Error("cannot write the metrics textfile", "path", cfg.Metrics.Textfile, "err", err)
		}
	}
	for _, f := range emergency {
		for _, line := range agent.EmergencySummary(f) {
			fmt.Fprintln(stdout, line)
		}
	}
	for _, r := range results {
		fmt.Fprintln(stdout, agent.Summary(r))
	}
	if len(results) == 0 {
		fmt.Fprintf(stdout, "no targets configured in %s: nothing to do\n", cfg.File)
	}
	return passResult(agent.Worst(results))
}

// Bounds of --now. A "now" far ahead of the clock would age out records
// retention keeps (1e30 removes everything); one before 2001 is no Unix
// time Papyra ever wrote, so likely a typo (milliseconds read as seconds
// go the other way and are caught by the first bound).
var (
	nowEarliest = time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	nowAhead    = 24 * time.Hour
)

// parseNow reads --now: Unix seconds, within a day ahead of clock and not
// before 2001.
func parseNow(s string, clock time.Time) (time.Time, error) {
	sec, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(sec) || math.IsInf(sec, 0) || sec < 0 {
		return time.Time{}, fmt.Errorf("%w: --now %q: want Unix seconds", errUsage, s)
	}
	latest := clock.Add(nowAhead)
	if sec > float64(latest.Unix()) {
		return time.Time{}, fmt.Errorf("%w: --now %s is more than a day ahead of the clock (%s): it would age out records retention keeps",
			errUsage, s, clock.UTC().Format(time.RFC3339))
	}
	whole, frac := math.Modf(sec)
	now := time.Unix(int64(whole), int64(frac*1e9))
	if now.After(latest) {
		return time.Time{}, fmt.Errorf("%w: --now %s is more than a day ahead of the clock (%s): it would age out records retention keeps",
			errUsage, s, clock.UTC().Format(time.RFC3339))
	}
	if now.Before(nowEarliest) {
		return time.Time{}, fmt.Errorf("%w: --now %s is before 2001: not a Unix time in seconds", errUsage, s)
	}
	return now, nil
}

// isTerminal reports whether w is a terminal (not merely a character
// device such as /dev/null).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
