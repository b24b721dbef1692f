package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/papyra-compact/papyra-compact/agent"
	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/backends/all"
	"github.com/papyra-compact/papyra-compact/config"
	"github.com/papyra-compact/papyra-compact/internal/bytesize"
)

// statusRow is one target in `status --json`. Unknown values are null,
// never 0, so a script can tell "no run yet" from "removed nothing".
type statusRow struct {
	Target  string `json:"target"`
	Backend string `json:"backend"`
	// Result is the last run's result (success, nothing_to_do, failure,
	// dry_run, skipped_locked); "" when the target never ran.
	Result string `json:"result"`
	// Failing is true when the last real run (not a dry run or a lock
	// skip) failed; it decides the exit status.
	Failing         bool       `json:"failing"`
	LastRun         *time.Time `json:"last_run"`
	DurationSeconds *float64   `json:"duration_seconds"`
	LastSuccess     *time.Time `json:"last_success"`
	LastError       string     `json:"last_error,omitempty"`
	// Removed, ReclaimedBytes, StoreSizeBytes and OldestRecord describe
	// the last successful compaction.
	Removed         *int64     `json:"removed"`
	ReclaimedBytes  *int64     `json:"reclaimed_bytes"`
	StoreSizeBytes  *int64     `json:"store_size_bytes"`
	OldestRecord    *time.Time `json:"oldest_record"`
	OldestRecordAge *float64   `json:"oldest_record_age_seconds"`
	// FutureRecords are the future-dated records the last successful
	// compaction kept (stamped more than max_clock_skew ahead), and
	// NewestFuture the latest of their timestamps (null when none).
	FutureRecords *int64       `json:"future_records"`
	NewestFuture  *agent.Stamp `json:"newest_future"`
	NextRun       *time.Time   `json:"next_run"`
	// MissingSince is when runs started finding the store missing; null
	// while it exists.
	MissingSince *time.Time `json:"missing_since"`
	// LatenessSeconds is how late the daemon started the target last,
	// or how long it has waited for a slot so far; null when no
	// scheduler knows (the systemd timer).
	LatenessSeconds *float64 `json:"schedule_lateness_seconds"`
	// Running is true while some process holds the store's lock;
	// LockHolder then says which, as the holder wrote it.
	Running    bool           `json:"running"`
	LockHolder string         `json:"lock_holder,omitempty"`
	Counters   agent.Counters `json:"counters"`
	// HeldBack is what Redis consumer groups kept that retention would
	// remove, as of the last successful compaction (Redis targets);
	// HeldBackEstimated says it is an estimate ("about" in the table).
	HeldBack          *int64 `json:"redis_held_back_entries,omitempty"`
	HeldBackEstimated bool   `json:"redis_held_back_estimated,omitempty"`
	// Debt is the retention debt the last run that could tell found:
	// empty when the store meets its policy, null when no run measured it.
	Debt []statusDebt `json:"debt"`
	// Emergency is what emergency drops (keep_free) did and the last
	// check of the store's file system; absent for a target never checked.
	Emergency *agent.EmergencyState `json:"emergency,omitempty"`
}

// statusDebt is one part of a target's retention debt.
type statusDebt struct {
	Reason string `json:"reason"`
	Detail string `json:"detail,omitempty"`
	// Records and Bytes are null when unknown.
	Records   *int64 `json:"records"`
	Bytes     *int64 `json:"bytes"`
	Estimated bool   `json:"estimated"`
	// Oldest is the oldest owed record's timestamp, when known.
	Oldest *time.Time `json:"oldest"`
	// Since is the start of the first run, of an unbroken series, that
	// found debt for this reason.
	Since *time.Time `json:"since"`
	// Text says it in plain words.
	Text string `json:"text"`
}

// statusReport is the whole `status --json` document.
type statusReport struct {
	Config   string             `json:"config,omitempty"`
	StateDir string             `json:"state_dir"`
	Failing  bool               `json:"failing"`
	Reload   *agent.ReloadState `json:"config_reload"`
	// Units is the timer's and the daemon's state as systemd reports it;
	// null where systemd is not running.
	Units *unitsView `json:"units"`
	// Problems are what makes the exit status 1 besides failing targets
	// (nothing scheduled, a rejected reload, a restart needed).
	Problems []string    `json:"problems"`
	Targets  []statusRow `json:"targets"`
}

func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("status", stderr)
	cfgPath := fs.String("config", config.DefaultPath, "configuration `FILE`")
	stateDir := fs.String("state-dir", "", "read this state directory (`DIR`) instead of the configuration's")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: status: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: status: unexpected argument %q", errUsage, fs.Arg(0))
	}
	// The configuration names the targets, the state and lock
	// directories. When it cannot be read (it may be readable by root
	// only, or being edited), status still reports every target the
	// state directory knows: it is what one looks at when things are off.
	cfg, err := config.Load(*cfgPath)
	fromConfig := err == nil
	if !fromConfig {
		cfg = config.Default()
		// Its state_dir when that much of it reads, else the default.
		cfg.StateDir = reloadStateDir(*cfgPath)
	}
	if *stateDir != "" {
		cfg.StateDir = *stateDir
	}
	if !fromConfig {
		// Name the directory read: without the configuration it is the
		// default (or --state-dir), which may not be the one meant.
		fmt.Fprintf(stderr, "papyra-compact: status: %s unusable, listing the targets the state directory knows (%s): %s\n",
			*cfgPath, cfg.StateDir, strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	// A state file that cannot be read (corrupt, newer format) is reported
	// and the other targets are still shown; only a state directory that
	// yields nothing at all is fatal, since its targets would wrongly read
	// "never run".
	state, stateErr := agent.ReadState(cfg.StateDir)
	if stateErr != nil {
		if len(state.Targets) == 0 {
			return fmt.Errorf("status: %w", stateErr)
		}
		fmt.Fprintf(stderr, "papyra-compact: status: %v\n", stateErr)
	}
	rep := statusReport{StateDir: cfg.StateDir, Problems: []string{}, Targets: []statusRow{}}
	if fromConfig {
		rep.Config = cfg.File
	}
	units, err := readUnits(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "papyra-compact: status: %v\n", err)
	}
	rep.Units = units
	if p := units.scheduleProblem(); p != "" {
		rep.Problems = append(rep.Problems, p)
	}
	// The daemon's own problems count while it runs (or when systemd
	// cannot be asked); a daemon stopped since leaves stale ones.
	daemonMatters := units == nil || units.Daemon.active()
	if state.Agent.Reload.Known {
		rl := state.Agent.Reload
		rep.Reload = &rl
		if !rl.Successful && daemonMatters {
			rep.Problems = append(rep.Problems, fmt.Sprintf("the last configuration reload (%s) was rejected; the daemon runs the previous configuration: %s",
				rl.At.UTC().Format(time.RFC3339), firstLine(rl.Error)))
		}
		if rl.RestartNeeded != "" && daemonMatters {
			rep.Problems = append(rep.Problems, rl.RestartNeeded)
		}
	}
	targets := cfg.Targets
	if !fromConfig {
		targets = nil
		for _, name := range state.TargetNames() {
			targets = append(targets, config.Target{Name: name, Kind: state.Targets[name].Backend})
		}
	}
	reg := all.Backends()
	for _, t := range targets {
		row := newStatusRow(t, state.Targets[t.Name])
		if fromConfig {
			row.Running, row.LockHolder = lockHolder(cfg, reg, t)
		}
		if units.installed() {
			// The schedule that runs is systemd's to say: the timer's
			// next elapse under the timer, the daemon's own plan (in the
			// state) while it runs, nothing when neither runs.
			switch {
			case units.Daemon.active():
			case units.Timer.active():
				row.NextRun = units.TimerNext
			default:
				row.NextRun = nil
			}
		}
		if e := row.Emergency; e != nil && e.Unmet {
			rep.Problems = append(rep.Problems, fmt.Sprintf("keep_free not met on the file system of target %s (check of %s): %s",
				t.Name, e.LastCheck.UTC().Format(time.RFC3339), e.UnmetReason))
		}
		rep.Failing = rep.Failing || row.Failing
		rep.Targets = append(rep.Targets, row)
	}
	rep.Failing = rep.Failing || len(rep.Problems) > 0
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return fmt.Errorf("status: %w", err)
		}
	} else if err := printStatusTable(stdout, rep); err != nil {
		return fmt.Errorf("status: %w", err)
	}
	if rep.Failing || stateErr != nil {
		return errFailed
	}
	return nil
}

func newStatusRow(t config.Target, st agent.TargetState) statusRow {
	row := statusRow{
		Target:    t.Name,
		Backend:   t.Kind,
		Result:    st.LastResult,
		Failing:   st.Failing(),
		LastError: st.LastError,
		Counters:  st.Counters,
		Emergency: st.Emergency,
	}
	if row.Backend == "" {
		row.Backend = st.Backend
	}
	utc := func(tm time.Time) *time.Time {
		if tm.IsZero() {
			return nil
		}
		u := tm.UTC()
		return &u
	}
	row.LastRun, row.LastSuccess, row.NextRun = utc(st.LastRun), utc(st.LastSuccess), utc(st.NextRun)
	row.MissingSince = utc(st.MissingSince)
	if st.Interval > 0 {
		row.LatenessSeconds = &st.Lateness
	}
	if st.HasRun() {
		row.DurationSeconds = &st.LastDuration
	}
	if !st.DebtAt.IsZero() {
		row.Debt = []statusDebt{}
	}
	for _, d := range st.Debt {
		sd := statusDebt{Reason: d.Reason, Detail: d.Detail, Estimated: d.Estimated, Text: agent.DescribeDebt(d.Debt())}
		if d.Records >= 0 {
			sd.Records = &d.Records
		}
		if d.Bytes >= 0 {
			sd.Bytes = &d.Bytes
		}
		if d.HasOldest {
			sec := int64(d.Oldest)
			sd.Oldest = utc(time.Unix(sec, int64((d.Oldest-float64(sec))*1e9)))
		}
		if since, ok := st.DebtSince[d.Reason]; ok {
			sd.Since = utc(since)
		}
		row.Debt = append(row.Debt, sd)
	}
	if s := st.Store; !s.At.IsZero() {
		row.Removed, row.ReclaimedBytes, row.StoreSizeBytes = &s.Removed, &s.Reclaimed, &s.BytesAfter
		if s.HeldBack > 0 {
			row.HeldBack, row.HeldBackEstimated = &s.HeldBack, s.HeldBackEstimated
		}
		row.FutureRecords, row.NewestFuture = &s.Future, s.NewestFuture
		if s.HasOldest {
			sec := int64(s.OldestKept)
			row.OldestRecord = utc(time.Unix(sec, int64((s.OldestKept-float64(sec))*1e9)))
			row.OldestRecordAge = &s.OldestAge
		}
	}
	return row
}

// lockHolder reports whether a process holds t's store lock now, and who.
// The lock key comes from the configuration alone: no backend is built,
// so no secret (a 0600 password_file) needs to be readable.
func lockHolder(cfg *config.Config, reg *backends.Registry, t config.Target) (bool, string) {
	key, err := reg.LockKey(t)
	if err != nil || key == "" {
		return false, ""
	}
	path := agent.LockPath(cfg.LockDir, key)
	if !agent.Held(path) {
		return false, ""
	}
	return true, strings.TrimPrefix(agent.ReadHolder(path), "held by ")
}

func printStatusTable(w io.Writer, rep statusReport) error {
	for _, p := range rep.Problems {
		fmt.Fprintf(w, "WARNING: %s\n", p)
	}
	if len(rep.Problems) > 0 {
		fmt.Fprintln(w)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET\tBACKEND\tLAST RUN\tRESULT\tDURATION\tREMOVED\tRECLAIMED\tSTORE SIZE\tOLDEST RECORD\tNEXT RUN\tLOCK\tLAST ERROR")
	for _, r := range rep.Targets {
		result := r.Result
		switch {
		case result == "":
			result = "never run"
		case r.Failing && result != "failure":
			result += " (last real run failed)"
		case r.MissingSince != nil:
			result = "store missing since " + r.MissingSince.Format(time.RFC3339)
		}
		lock := "-"
		if r.Running {
			lock = "running: " + r.LockHolder
		}
		lastErr := "-"
		if r.LastError != "" {
			lastErr = strings.ReplaceAll(r.LastError, "\n", " ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			r.Target, dash(r.Backend), timeCell(r.LastRun), result, durationCell(r.DurationSeconds),
			intCell(r.Removed, false), intCell(r.ReclaimedBytes, true), intCell(r.StoreSizeBytes, true),
			timeCell(r.OldestRecord), nextRunCell(r), lock, lastErr)
	}
	debtHeader := false
	for _, r := range rep.Targets {
		for _, d := range r.Debt {
			if !debtHeader {
				fmt.Fprintln(tw, "\nretention debt (what retention says should be gone but is still there):")
				debtHeader = true
			}
			owed := ""
			if d.Since != nil {
				owed = " (owed since the run of " + d.Since.Format(time.RFC3339) + ")"
			}
			fmt.Fprintf(tw, "  %s: %s%s\n", r.Target, d.Text, owed)
		}
	}
	emHeader := false
	for _, r := range rep.Targets {
		e := r.Emergency
		if e == nil || (e.DroppedSegments == 0 && !e.Unmet) {
			continue
		}
		if !emHeader {
			fmt.Fprintln(tw, "\nemergency drops (free space below keep_free):")
			emHeader = true
		}
		line := fmt.Sprintf("  %s: %d segments dropped (%d records, %s)", r.Target, e.DroppedSegments, e.DroppedRecords, bytesize.IEC(int64(e.DroppedBytes)))
		if !e.LastDrop.IsZero() {
			line += ", the last at " + e.LastDrop.UTC().Format(time.RFC3339)
		}
		line += fmt.Sprintf("; last check %s: %s free, keep_free %s", e.LastCheck.UTC().Format(time.RFC3339), bytesize.IEC(e.FreeBytes), bytesize.IEC(e.KeepFreeBytes))
		if e.Unmet {
			line += " (NOT met)"
		}
		fmt.Fprintln(tw, line)
	}
	heldHeader := false
	for _, r := range rep.Targets {
		if r.HeldBack == nil {
			continue
		}
		if !heldHeader {
			fmt.Fprintln(tw, "\nkept for Redis consumer groups (retention would remove them; they still need them):")
			heldHeader = true
		}
		if r.HeldBackEstimated {
			fmt.Fprintf(tw, "  %s: about %d entries (an estimate from the stream's IDs: counting exactly would read every held entry)\n", r.Target, *r.HeldBack)
		} else {
			fmt.Fprintf(tw, "  %s: %d entries\n", r.Target, *r.HeldBack)
		}
	}
	for _, r := range rep.Targets {
		if r.FutureRecords != nil && *r.FutureRecords > 0 {
			newest := "?"
			if r.NewestFuture != nil {
				newest = agent.FormatStamp(float64(*r.NewestFuture))
			}
			fmt.Fprintf(tw, "\n%s: %d future-dated records kept (newest %s; `papyra-compact explain %s` says more)\n", r.Target, *r.FutureRecords, newest, r.Target)
		}
	}
	if rep.Reload != nil {
		ok := "succeeded"
		if !rep.Reload.Successful {
			ok = "FAILED (the previous configuration is in use)"
		}
		fmt.Fprintf(tw, "\nlast configuration reload %s at %s\n", ok, rep.Reload.At.UTC().Format(time.RFC3339))
	}
	if v := rep.Units; v.installed() {
		fmt.Fprintf(tw, "\n%s\n%s\n", v.Timer, v.Daemon)
	}
	return tw.Flush()
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}

// nextRunCell is the next run, and how late the last start was when it
// was late by a second or more.
func nextRunCell(r statusRow) string {
	cell := timeCell(r.NextRun)
	if r.LatenessSeconds != nil && *r.LatenessSeconds >= 1 {
		cell += " (late " + durationCell(r.LatenessSeconds) + ")"
	}
	return cell
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func timeCell(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func durationCell(sec *float64) string {
	if sec == nil {
		return "-"
	}
	d := time.Duration(*sec * float64(time.Second))
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Microsecond).String()
}

func intCell(n *int64, bytes bool) string {
	switch {
	case n == nil:
		return "-"
	case bytes:
		return bytesize.IEC(*n)
	}
	return fmt.Sprint(*n)
}
