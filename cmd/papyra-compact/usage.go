package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

const usageShort = `usage: papyra-compact COMMAND [OPTIONS]
commands: run, daemon, check, status, explain, reload, version, help (see papyra-compact --help)
`

// manual is the --help text; the packaged man page papyra-compact(1) is
// generated from it.
const manual = `NAME
    papyra-compact - apply retention physically to Papyra persistence stores

SYNOPSIS
    papyra-compact run [--config FILE] [--target NAME]... [--dry-run] [--now UNIX]
                       [--log-level LEVEL] [--no-progress] [--stop-grace DURATION]
                       [--force]
    papyra-compact daemon [--config FILE] [--log-level LEVEL] [--stop-grace DURATION]
                          [--concurrency N]
    papyra-compact check [--config FILE] [--units] [--write-dropin]
    papyra-compact status [--config FILE] [--state-dir DIR] [--json]
    papyra-compact explain TARGET [--config FILE] [--json] [--now UNIX]
    papyra-compact reload [--config FILE] [--state-dir DIR] [--pid PID]
                          [--timeout DURATION]
    papyra-compact version
    papyra-compact help

DESCRIPTION
    Papyra's persistence stores grow forever unless something removes what
    their retention policy no longer keeps. papyra-compact does that, for
    every target listed in its YAML configuration, while Papyra processes
    keep writing:

    jsonl     a JsonFilePersistence file. Records are kept exactly as
              Papyra's apply_retention keeps them (age, then count, then
              Python repr size), copied byte for byte into a new file that
              atomically replaces the old one. Records appended during the
              run are carried over. Lines Papyra cannot read are moved to
              the quarantine directory, never dropped.
    rotating  a RotatingFilePersistence store (the active file and its
              numbered segments). Segments retention keeps none of are
              removed whole; only the boundary segment is rewritten, in
              step with Papyra's rename-based rotation.
    redis     RedisStreamsPersistence: Papyra's streams trimmed with
              XTRIM MINID/MAXLEN in bounded, paced steps, never past an
              entry a consumer group still needs; a Redis lease lets
              several hosts share one Redis. Single node, Sentinel and
              Cluster.
    memory    InMemoryPersistence; nothing to do.

    Runs on one store are serialized with a lock file in the lock
    directory; a target whose store is locked by another run is skipped.

COMMANDS
    run       Compact every target once (or only those named with
              --target), then print one summary line per target.
    daemon    Compact every target on its own interval (interval: in the
              configuration, default defaults.interval, 1h) until SIGTERM
              or SIGINT; see DAEMON. For continuous compaction, such as
              Redis-heavy systems; otherwise the timer runs "run" hourly.
    check     Validate the configuration and list the targets. Every
              problem is reported, each with file, line and field,
              including two targets on one store, a generated file on or
              beside a store, and (run with privileges) a configuration
              or password_file someone other than root can change. For
              the file the systemd units read (or any, with --units),
              also warns about paths the units may not write (see
              SYSTEMD) and prints the complete drop-in that allows them,
              about stores that do not exist, and about a metrics
              directory the service user cannot write. With
              --write-dropin it writes that drop-in for both service
              units and runs systemctl daemon-reload.
    status    Show every target's last run from the state directory (see
              STATUS). Exits 1 when a target's last run failed, when
              neither the timer nor the daemon is enabled and active, or
              when the daemon rejected its last reload.
    explain   Say, for one target's store, what it holds by age, what
              retention would remove now and why the rest stays (see
              EXPLAIN). Read-only; works without root.
    reload    Make the running daemon reload its configuration and wait
              for the outcome: exits 0 when the new one is in use, 1
              (with every problem) when it was rejected. It is
              papyra-compact-daemon.service's ExecReload=, so systemctl
              reload fails for a bad file.
    version   Print the version.
    help      Print this text.

OPTIONS
    --config FILE     Configuration file (default /etc/papyra/compact.yaml).
    --target NAME     Only this target; repeat for several.
    --dry-run         Print, per target, what would go: records and bytes
                      before and after, quarantined lines, the oldest kept
                      timestamp, and whether a run would be skipped below
                      the target's min_reclaim. Changes nothing on disk.
    --now UNIX        Evaluate age retention as of this Unix time instead
                      of the clock (what-if runs, tests). Refused (exit 2)
                      when more than a day ahead of the clock, which would
                      age out records retention keeps, or before 2001.
    --log-level LVL   debug, info (default), warn or error.
    --force           run: confirm a run that would remove more than a
                      target's max_remove_fraction of its records (the
                      safety valve), for the targets of this run only.
                      Without it such a run changes nothing, is recorded
                      as "refused" and exits 1, saying how much it would
                      have removed. A dry run says when a run would be.
    --units           check: compare the file's paths with the units'
                      sandbox even though they do not read this file.
    --write-dropin    check: write the drop-in every path outside the
                      units' sandbox needs, /etc/systemd/system/UNIT.d/
                      papyra-paths.conf, for both service units (complete:
                      it replaces the file), then systemctl daemon-reload.
    --pid PID         reload: the daemon's PID (default $MAINPID).
    --timeout D       reload: how long to wait for the outcome (50s).
    --no-progress     Never draw the progress bar. It is drawn only on a
                      terminal, and only for work that lasts over a second.
    --stop-grace D    run, daemon: on SIGTERM or SIGINT, how long
                      compactions in flight may take to finish (default
                      30s). They are cancelled shortly before it ends, and
                      the process exits when it ends, whatever they are
                      doing; each store is left as it was, or for the next
                      run to finish. Such runs are "interrupted".
    --concurrency N   daemon: how many targets may compact at once
                      (default 1, so compaction stays in the background).

DAEMON
    The daemon starts each target's compaction one interval after the
    previous start. At start-up it reads that start from the state
    directory, so a restart does not compact every store at once; a target
    with no recorded run, or whose last run failed, runs right away. A
    target skipped for a held lock is retried within a minute. It reloads the
    configuration on SIGHUP (systemctl reload) and when the file changes
    (it watches the directory, so an editor's or dpkg's rename counts). A
    new configuration is parsed, validated and built completely before it
    replaces the old one; an invalid one is rejected, logged with file,
    line and field, shown in systemctl status and in the
    papyra_compact_config_last_reload_successful metric, and the last good
    one stays in use; systemctl reload (papyra-compact reload) then exits
    non-zero. A target added by a reload whose directory the service's
    sandbox keeps read-only cannot be compacted until the unit allows it
    and the daemon restarts: STATUS=, the journal and status say "restart
    needed". lock_dir and state_dir take effect only on restart.
    Added targets are scheduled at once and removed ones are no longer
    started; a compaction in flight finishes under the configuration it
    started with. On SIGTERM it stops starting compactions, waits
    --stop-grace for those in flight, then exits 0.

CONFIGURATION
    /etc/papyra/compact.yaml as installed is the annotated reference: it
    documents every option, with a commented example target of each kind
    (config/testdata/example.yaml in the source). Top level: state_dir,
    lock_dir, quarantine_dir, metrics.textfile, defaults (retention,
    grace_period, interval), targets. Each target has name, kind, the
    store's settings (path; max_bytes and max_files for rotating; url or
    addrs, master_name, password_file, tls, prefix, system_id and more
    for redis), and may override retention (max_age or max_age_seconds,
    max_records, max_total_bytes: Papyra's RetentionPolicy), grace_period
    and interval. Every error names file, line and field.

    Emergency free space (rotating targets, off unless set): keep_free
    (bytes, or a percentage of the file system) and min_keep (a duration,
    required with it). When the space an unprivileged writer can use on
    the store's file system (statfs f_bavail) falls below keep_free, the
    oldest whole rotated segments of the stores that set it on that file
    system are dropped, ordered by their newest record, until it is met;
    several stores on one file system share the largest keep_free. Never
    the active file, never a store that did not set it, never a segment
    with a record younger than min_keep (a segment with no datable
    record is judged by its modification time), never a store whose
    timestamps are not Unix time, never a store another run has locked.
    Corrupt lines of a dropped segment are quarantined first. Every run
    checks before its targets, the daemon every minute; a dry run drops
    nothing. Each drop is logged (MESSAGE_ID
    7caa53ed338848108dfab2c38a7e9ff1) with its records' time span and
    counted (papyra_compact_emergency_*); when keep_free cannot be met,
    "keep_free not met" (MESSAGE_ID 75fc40c7ca4548eb881eb4d5e1646960)
    says what is left, papyra_compact_emergency_keep_free_unmet is 1, and
    status warns and exits 1. Every run logs it; the daemon logs it when
    a file system becomes unmet or the cause changes, then hourly as a
    reminder, and "keep_free met again" (MESSAGE_ID
    f288c0ede6204136b4e5dd7d4d4b3177) when it recovers.

    A jsonl or rotating target is refused (exit 1, nothing touched) when
    someone other than its owner could have aimed the agent at it: a
    symlink on the store's path whose owner does not own what it points
    to (root's links excepted), a store not owned by its directory's
    owner (unless root owns the directory), or a store directory that
    group or others may write without the sticky bit. In a shared
    directory, name the store's user with owner: <user> on the target
    (as logrotate's su): the store, its directory and every symlink must
    then belong to that user or to root.

SYSTEMD
    papyra-compact.timer starts papyra-compact.service ("run") hourly,
    with a randomized, per-host fixed delay. papyra-compact-daemon.service
    runs "daemon" instead; the two conflict, enable one (systemctl
    enable --now; status warns when neither is enabled and active).
    papyra-compact.service is Type=oneshot: systemctl start returns when
    the pass is over and fails when it failed. The daemon is Type=notify:
    READY=1 once the configuration is loaded. Both send STATUS= with
    progress ("orders: rewrite 41% of 2.0 GiB, 3 of 5 targets") or the
    next target due, EXTEND_TIMEOUT_USEC= while a compaction makes
    progress (so only a stuck one hits the unit's timeouts), WATCHDOG=1
    from the daemon's work loop (WatchdogSec=), RELOADING=1 ... READY=1
    around a reload, and STOPPING=1. Outside systemd none of it is sent.

    They run as the papyra-compact user, sandboxed: the file system is
    read-only except /var/lib/papyra, /var/lib/prometheus/node-exporter,
    /var/lib/papyra-compact and /run/papyra-compact. Stores elsewhere need
    a ReadWritePaths= drop-in; papyra-compact check prints it, and check
    --write-dropin writes it.

    Under systemd the log goes to the journal with fields: PAPYRA_TARGET,
    PAPYRA_BACKEND, PAPYRA_OUTCOME, PAPYRA_RECORDS_REMOVED,
    PAPYRA_BYTES_RECLAIMED, PAPYRA_DURATION_MS, PAPYRA_ERR, and
    MESSAGE_ID 5fdeba466a02400189832fd0d9994704 for "run finished",
    cf95ca8c09c74af6b5039537d4823052 for "run failed". Timer passes log
    under papyra-compact.service, the daemon's runs under
    papyra-compact-daemon.service: journalctl -u papyra-compact -u
    papyra-compact-daemon PAPYRA_TARGET=orders finds both. Elsewhere it
    is text on standard error.

STATUS
    papyra-compact status prints one line per configured target: when it
    last ran, the result, how long it took, what the last successful
    compaction removed and reclaimed, the store's size and oldest record
    after it, the next scheduled run (the timer's next elapse, read from
    systemd, under the timer; the daemon's plan under the daemon; "-"
    when neither runs), whether a run holds the store's
    lock now and who, and the last error. --json prints the same as JSON,
    with null for what is unknown and the cumulative counters.

    Below the table it lists each target's retention debt: what
    retention says should be gone but the last run that could tell left
    in the store, with its reason in plain words ("policy cannot be met:
    group billing of papyra:local:events holds 1,204 entries since
    2026-11-30T08:00:00Z"; records skipped below min_reclaim, refused by
    the safety valve or the clock guard, left by an approximate trim,
    at run_timeout or by a run that failed after planning) and since
    which run it has been owed.

    A target whose store does not exist shows "store missing since" the
    first run that found it so. Under systemd it also reads, over D-Bus,
    whether papyra-compact.timer and papyra-compact-daemon.service are
    enabled and active, and warns (WARNING: lines, "problems" in --json)
    when neither is, when the running daemon rejected its last reload,
    and when it needs a restart.

    It only reads the state directory, the lock files and systemd's unit
    state, so it works without root (the state directory is 0755 and its
    files 0644; the quarantine stays private). When the configuration
    cannot be read, it lists the targets the state directory knows. It
    exits 1 when the last real run of any target failed (dry runs and
    lock skips neither hide nor clear a failure) or on any WARNING, so
    monitoring scripts can call it.

    --state-dir DIR   Read this state directory instead of the
                      configuration's state_dir.
    --json            Print JSON instead of a table.

EXPLAIN
    papyra-compact explain TARGET reads the target's store as a run would
    plan it, and changes nothing. It prints the records and bytes by age
    (under 1h, 1h to 1d, 1d to 7d, 7d to 30d, 30d to 90d, older,
    future-dated, undated), what retention would remove now (by age,
    count and size) and the bytes that frees, and why each part of the
    rest stays: inside the policy; held by a consumer group (with how
    many entries, and since when when known); left by an approximate
    trim or below min_reclaim; refused by the clock guard (age retention
    on a store stamped with Papyra's monotonic clock: the ages are still
    shown) or by the safety valve (max_remove_fraction). It names the
    future-dated records (stamped more than max_clock_skew, default 5m,
    ahead: kept, as Papyra keeps them), the corrupt lines a run would
    quarantine, a rotating store's active segment, and directories of
    the store the units' sandbox does not let the service write.

    It works as any user: it never recovers an interrupted run, takes
    the store's lock only when it can (a run that starts meanwhile is
    skipped as locked), and plans in the temporary
    directory when the state directory is not writable. When this user
    cannot read the store (a 0600 file, a Redis password_file only the
    service reads) or the configuration, it says so and shows the last
    run's figures from the state directory, marked "as of the last run
    at T". Exits 0 (2 for an unknown target).

    --json            Print JSON for scripts. Stable fields: target,
                      backend, store, now, source ("store", "last_run" or
                      "none"), as_of, unreadable, missing, policy, records,
                      bytes, ages [{age, records, bytes}] (age "1h", "1d",
                      "7d", "30d", "90d", "older", "future", "undated"),
                      would_remove {records, age, count, bytes,
                      freed_bytes, estimated}, would_keep {records, bytes,
                      oldest}, held [{reason, detail, records, bytes,
                      oldest, estimated}], future {records, newest, ahead},
                      corrupt, blank_lines, active_segment {path, bytes},
                      sandbox_missing, lock, notes. Timestamps are Unix
                      seconds; a non-finite one is the string "Infinity",
                      "-Infinity" or "NaN".

METRICS
    After every target, run writes the state directory and rewrites the
    metrics.textfile (default /var/lib/prometheus/node-exporter/
    papyra_compact.prom) for node_exporter's textfile collector, atomically
    (temp file in the same directory, fsync, rename, directory fsync).
    Counters are kept in the state directory, so they grow across runs and
    restarts; deleting a target's state file resets them. Metrics are named
    papyra_compact_*, labeled by target and backend. Prometheus alert
    rules and a Grafana dashboard are installed under
    /usr/share/papyra-compact/.

EXIT STATUS
    0    every target succeeded or had nothing to do
    1    at least one target failed, or was refused by its
         max_remove_fraction (the others still ran)
    2    usage error or invalid configuration
    75   no target failed, but at least one was skipped because another
         run held its lock (EX_TEMPFAIL; the unit treats it as success)
    143  run: no target failed, but SIGTERM or SIGINT interrupted the pass
         (128+SIGTERM); interrupted runs are recorded as "interrupted",
         not as failures

FILES
    /etc/papyra/compact.yaml            configuration
    /var/lib/papyra-compact/            state directory
    /var/lib/papyra-compact/targets/    last run and counters, one file per target
    /var/lib/prometheus/node-exporter/papyra_compact.prom
                                        metrics for node_exporter
    /var/lib/papyra-compact/quarantine/ corrupt lines, one folder per target
    /run/papyra-compact/                lock files
    /usr/lib/systemd/system/papyra-compact.{service,timer}
    /usr/lib/systemd/system/papyra-compact-daemon.service

EXAMPLES
    papyra-compact check
    papyra-compact run --dry-run --target orders
    papyra-compact run
    papyra-compact status --json
    papyra-compact explain orders
    papyra-compact check --write-dropin
    systemctl enable --now papyra-compact.timer
    systemctl disable --now papyra-compact.timer
    systemctl enable --now papyra-compact-daemon
    systemctl reload papyra-compact-daemon
    journalctl -u papyra-compact -u papyra-compact-daemon PAPYRA_TARGET=orders

SEE ALSO
    systemctl(1), journalctl(1), systemd.exec(5), sd_notify(3), flock(2)
`

// newFlagSet returns a flag set for command whose usage message (printed
// on a bad flag) spells the options as this manual does, "--config FILE",
// not Go's "-config string".
func newFlagSet(command string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(command, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: papyra-compact %s [OPTIONS]\n", command)
		fs.VisitAll(func(f *flag.Flag) {
			name, usage := flag.UnquoteUsage(f)
			arg := ""
			if name != "" {
				arg = " " + strings.ToUpper(name)
			}
			def := ""
			if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "[]" {
				def = " (default " + f.DefValue + ")"
			}
			fmt.Fprintf(stderr, "  --%s%s\n        %s%s\n", f.Name, arg, usage, def)
		})
		fmt.Fprintln(stderr, "see papyra-compact --help")
	}
	return fs
}
