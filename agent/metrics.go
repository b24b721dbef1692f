package agent

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/config"
	"github.com/papyra-compact/papyra-compact/internal/failpoint"
	"github.com/papyra-compact/papyra-compact/internal/fsutil"
)

// namespace prefixes every metric papyra-compact exports.
const namespace = "papyra_compact"

// Run results as the runs_total{result} label spells them. A run that
// found nothing to do (the store does not exist yet) is a success: it did
// all there was to do.
const (
	resultSuccess       = "success"
	resultFailure       = "failure"
	resultSkippedLocked = "skipped_locked"
	resultDryRun        = "dry_run"
	resultInterrupted   = "interrupted"
	resultRefused       = "refused"
)

// RecorderOptions configure a Recorder.
type RecorderOptions struct {
	// Version is this build's version, exported in papyra_compact_build_info.
	Version string
	// GoVersion is the Go toolchain in papyra_compact_build_info; empty
	// means runtime.Version(). Tests pin it so that goldens stay stable.
	GoVersion string
	// Registry receives the recorder's collector, so a daemon can serve
	// the same metrics over HTTP. Nil means a new pedantic registry of the
	// recorder's own. Never pass prometheus.DefaultRegisterer's registry:
	// its Go and process collectors describe one short-lived process and
	// would go into the textfile as if they described the service.
	Registry *prometheus.Registry
}

// Recorder persists every run's result in the state directory and
// rewrites the node_exporter textfile from the persisted state.
//
// Counters live in the state files, not in process memory, so that they
// are real counters across timer runs: each `papyra-compact run` is a new
// process, and a counter that started at zero in each one would make
// rate() and increase() meaningless. The textfile is always rendered from
// the state of every configured target, so a run of one target (`run
// --target x`) keeps the others' series.
//
// A Recorder is safe for concurrent use; separate processes are
// serialized by the state directory's lock (see lockState).
type Recorder struct {
	mu   sync.Mutex // serializes writers in this process; the flock does it across processes
	cfg  *config.Config
	reg  *prometheus.Registry
	coll *collector
}

// NewRecorder returns a recorder for cfg's state directory and textfile.
// kinds tells which optional values (segment counts, consumer groups) each
// target's kind reports, so that they are exported before its first run.
func NewRecorder(cfg *config.Config, kinds *backends.Registry, o RecorderOptions) (*Recorder, error) {
	if o.GoVersion == "" {
		o.GoVersion = runtime.Version()
	}
	if o.Version == "" {
		o.Version = "unknown"
	}
	reg := o.Registry
	if reg == nil {
		reg = prometheus.NewPedanticRegistry()
	}
	c := newCollector(o.Version, o.GoVersion, kinds)
	if err := reg.Register(c); err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	if err := reg.Register(newEmergencyCollector(c)); err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	// Create the state directory world-readable before any backend does
	// (they create it 0750 for their own files): `status` must work
	// without root. Best effort: a dry run by a user who cannot create it
	// still runs, and Record reports the problem.
	_ = os.MkdirAll(cfg.StateDir, 0o755)
	return &Recorder{cfg: cfg, reg: reg, coll: c}, nil
}

// Registry returns the registry the recorder's metrics are on.
func (r *Recorder) Registry() *prometheus.Registry { return r.reg }

// SetConfig makes cfg the configuration the next writes use (its state
// directory, textfile and targets). The daemon calls it after a reload.
func (r *Recorder) SetConfig(cfg *config.Config) {
	r.mu.Lock()
	r.cfg = cfg
	r.mu.Unlock()
}

// Record folds one target's result into its persisted state, then
// rewrites the textfile. It fits agent.Options.OnResult (with the error
// logged by the caller). A failure to update the state leaves the previous
// state file intact; a failure to write the textfile comes after the state
// was saved, so nothing is lost and the next write catches up.
func (r *Recorder) Record(res Result) error {
	return r.update(func(cfg *config.Config) error {
		st, _, err := LoadTargetState(cfg.StateDir, res.Target)
		if err != nil {
			return err
		}
		st.Apply(res)
		return SaveTargetState(cfg.StateDir, st)
	})
}

// ConfigReloaded records the outcome of a configuration (re)load at
// time at, for papyra_compact_config_last_reload_successful and its
// success timestamp, then rewrites the textfile.
func (r *Recorder) ConfigReloaded(ok bool, at time.Time) error {
	return r.RecordReload(ReloadStatus{OK: ok, At: at})
}

// RecordReload records the outcome of a configuration (re)load, with why
// it was rejected, then rewrites the textfile. `papyra-compact reload`
// waits for this record.
func (r *Recorder) RecordReload(rs ReloadStatus) error {
	return r.update(func(cfg *config.Config) error {
		st, err := LoadAgentState(cfg.StateDir)
		if err != nil {
			return err
		}
		st.Reload.Known, st.Reload.Successful, st.Reload.At = true, rs.OK, rs.At
		st.Reload.Error = ""
		if rs.OK {
			st.Reload.SuccessAt = rs.At
		} else {
			st.Reload.Error = errString(rs.Err)
		}
		return saveAgentState(cfg.StateDir, st)
	})
}

// RestartNeeded records what the running daemon cannot apply without a
// restart ("" for nothing), for `status`.
func (r *Recorder) RestartNeeded(what string) error {
	return r.update(func(cfg *config.Config) error {
		st, err := LoadAgentState(cfg.StateDir)
		if err != nil {
			return err
		}
		if st.Reload.RestartNeeded == what {
			return nil
		}
		st.Reload.RestartNeeded = what
		return saveAgentState(cfg.StateDir, st)
	})
}

// Scheduled records when a target runs next, how often it runs and how
// late it is, for `status` and papyra_compact_schedule_*, then rewrites
// the textfile. A scheduler that knows them (the daemon) calls it; a zero
// next or interval means unknown.
func (r *Recorder) Scheduled(s Schedule) error {
	return r.update(func(cfg *config.Config) error {
		st, _, err := LoadTargetState(cfg.StateDir, s.Target)
		if err != nil {
			return err
		}
		if st.Since.IsZero() {
			st.Since = time.Now()
		}
		st.NextRun, st.Interval, st.Lateness = s.Next, s.Interval.Seconds(), max(s.Lateness, 0).Seconds()
		return SaveTargetState(cfg.StateDir, st)
	})
}

// WriteTextfile rewrites the textfile from the persisted state without
// recording anything: after a pass, and at start-up so that configured
// targets export zero counters before their first run.
func (r *Recorder) WriteTextfile() error {
	return r.update(func(*config.Config) error { return nil })
}

// update runs change under the state lock, then rewrites the textfile
// under the same lock, so that textfiles land in the order their states
// were written.
func (r *Recorder) update(change func(cfg *config.Config) error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	cfg := r.cfg
	unlock, err := lockState(cfg.StateDir)
	if err != nil {
		return err
	}
	defer unlock()
	// Temp files of a write a kill interrupted: swept by the next holder
	// of the lock they were written under.
	names := make([]string, 0, len(cfg.Targets))
	for _, t := range cfg.Targets {
		names = append(names, t.Name)
	}
	_, sweepErr := sweepTemps(cfg.StateDir, names, cfg.Metrics.Textfile)
	if err := change(cfg); err != nil {
		return errors.Join(err, sweepErr)
	}
	return errors.Join(r.writeTextfileLocked(cfg), sweepErr)
}

// writeTextfileLocked renders and writes the textfile. The caller holds
// the state lock.
func (r *Recorder) writeTextfileLocked(cfg *config.Config) error {
	// A target whose state cannot be read is left out (its series go
	// stale, which alerts on absence can see) and reported, rather than
	// stopping every other target's metrics.
	snap, loadErr := loadSnapshot(cfg)
	r.coll.set(snap)
	if cfg.Metrics.Textfile == "" {
		return loadErr
	}
	var buf bytes.Buffer
	if err := encodeText(&buf, r.reg); err != nil {
		return errors.Join(loadErr, err)
	}
	path := cfg.Metrics.Textfile
	// Debian creates the textfile directory with prometheus-node-exporter;
	// creating it here keeps a first run before that package from failing.
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return errors.Join(loadErr, fmt.Errorf("create textfile directory: %w", err))
	}
	// 0644: node_exporter runs as its own user and must read it.
	// Atomic (temp file in the same directory, fsync, rename, directory
	// fsync): node_exporter never scrapes half a file, and the temp name
	// ("." prefix, ".tmp" suffix) is never read as a *.prom file.
	// The fail point is where a kill leaves the temp file, which the next
	// writer sweeps (sweepTemps).
	return errors.Join(loadErr, fsutil.WriteFileAtomicSynced(path, buf.Bytes(), 0o644, func() error { return failpoint.Inject("textfile-temp-synced") }))
}

// encodeText writes every metric g gathers in the text exposition format
// node_exporter's textfile collector reads.
func encodeText(buf *bytes.Buffer, g prometheus.Gatherer) error {
	mfs, err := g.Gather()
	if err != nil {
		return fmt.Errorf("gather metrics: %w", err)
	}
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(buf, mf); err != nil {
			return fmt.Errorf("encode metric %s: %w", mf.GetName(), err)
		}
	}
	return nil
}

// snapshot is what one textfile is rendered from.
type snapshot struct {
	cfg     *config.Config
	targets []snapshotTarget // in configuration order
	agent   AgentState
}

// snapshotTarget is one configured target and its state.
type snapshotTarget struct {
	cfg   config.Target
	state TargetState
}

// loadSnapshot reads the state of every configured target. Targets that
// have no state yet get a zero one, so their counters are exported as 0
// from the start and the first increment is visible to increase().
// State files of targets no longer configured are ignored, so their
// series go stale instead of being exported forever.
func loadSnapshot(cfg *config.Config) (snapshot, error) {
	snap := snapshot{cfg: cfg}
	var errs []error
	var err error
	if snap.agent, err = LoadAgentState(cfg.StateDir); err != nil {
		errs = append(errs, err)
	}
	for _, t := range cfg.Targets {
		st, _, err := LoadTargetState(cfg.StateDir, t.Name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		snap.targets = append(snap.targets, snapshotTarget{cfg: t, state: st})
	}
	return snap, errors.Join(errs...)
}

// collector exports a snapshot of the persisted state. It is a custom
// collector of constant metrics, as node_exporter's collectors are,
// because every value comes from the state files rather than from
// instrumentation living in this process.
type collector struct {
	version, goVersion string
	kinds              *backends.Registry

	mu   sync.Mutex
	snap snapshot

	runs, scanned, kept, removed, quarantined, reclaimed *prometheus.Desc
	segDropped, segRewritten                             *prometheus.Desc
	success, lastRun, lastSuccess, lastDuration          *prometheus.Desc
	storeSize, storeRecords, before, after               *prometheus.Desc
	oldestTS, oldestAge, heldBack, heldBackBy            *prometheus.Desc
	future                                               *prometheus.Desc
	interval, nextRun, lateness, missingSince            *prometheus.Desc
	maxAge, maxRecords, maxBytes                         *prometheus.Desc
	debtRecords, debtBytes, debtSince                    *prometheus.Desc
	reloadOK, reloadTS, buildInfo                        *prometheus.Desc
}

func newCollector(version, goVersion string, kinds *backends.Registry) *collector {
	tl := []string{"target", "backend"}
	d := func(subsystem, name, help string, extra ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(namespace, subsystem, name), help, append(append([]string{}, tl...), extra...), nil)
	}
	return &collector{
		version: version, goVersion: goVersion, kinds: kinds,
		runs: d("", "runs_total",
			"Runs of the target by result: success (compacted, or the store does not exist yet), failure, skipped_locked (another run held the store's lock), dry_run, interrupted (stopped by SIGTERM or SIGINT, not a failure) or refused (the max_remove_fraction safety valve stopped it; nothing changed). Cumulative across processes: persisted in the state directory.", "result"),
		scanned: d("records", "scanned_total",
			"Valid records read from the store by successful compactions (kept plus removed); corrupt lines are counted in papyra_compact_records_quarantined_total."),
		kept: d("records", "kept_total",
			"Records kept by successful compactions, not counting records appended while they ran."),
		removed: d("records", "removed_total",
			"Records removed by retention, by the limit that removed them: age (max_age_seconds), count (max_records) or bytes (max_total_bytes); for Redis targets also corrupt: entries Papyra cannot read, removed with retention without quarantine (quarantine_corrupt: false), which are not records.", "reason"),
		quarantined: d("records", "quarantined_total",
			"Corrupt lines moved from the store to the quarantine directory instead of being dropped."),
		reclaimed: d("", "reclaimed_bytes_total",
			"Bytes freed in the store by compactions (store size before minus after, never negative)."),
		segDropped: d("segments", "dropped_total",
			"Rotating-store segment files removed whole because retention kept none of their records."),
		segRewritten: d("segments", "rewritten_total",
			"Rotating-store segment files rewritten because retention removed some of their records."),
		success: d("target", "success",
			"Whether the last real run of the target (not a dry run or lock skip) succeeded: 1 if it did, 0 if it failed."),
		lastRun: d("last_run", "timestamp_seconds",
			"Unix time the last run of the target started, whatever its result (dry runs and lock skips included)."),
		lastSuccess: d("last_success", "timestamp_seconds",
			"Unix time the last successful run of the target started."),
		lastDuration: d("last_run", "duration_seconds",
			"How long the last run of the target took, whatever its result."),
		storeSize: d("store", "size_bytes",
			"Size of the store after the last successful compaction."),
		storeRecords: d("store", "records",
			"Records in the store after the last successful compaction, not counting records appended while it ran."),
		before: d("compaction", "before_bytes",
			"Size of the store when the last successful compaction read it."),
		after: d("compaction", "after_bytes",
			"Size of the store the last successful compaction left, not counting bytes appended while it ran."),
		oldestTS: d("oldest_record", "timestamp_seconds",
			"Timestamp of the oldest record kept by the last successful compaction, as Unix seconds; time() minus this is the oldest record's age now."),
		oldestAge: d("oldest_record", "age_seconds",
			"Age of the oldest kept record when the last successful compaction started; above the retention's max_age_seconds means compaction is falling behind."),
		heldBack: d("redis", "held_back_entries",
			"Redis stream entries retention would remove but kept because a consumer group still needs them (pending or not yet delivered), as of the last successful compaction; an estimate from the stream's IDs and XINFO GROUPS where counting exactly would read every held entry (status and the run's summary then say \"about\")."),
		heldBackBy: d("redis", "group_held_back_entries",
			"Redis stream entries retention would remove but kept for one consumer group of one stream, as of the last successful compaction; possibly an estimate, as papyra_compact_redis_held_back_entries.", "stream", "group"),
		future: d("", "future_records",
			"Records kept by the last successful compaction that are stamped more than max_clock_skew after the run's clock (a writer's clock is wrong); Papyra keeps them, so retention does too."),
		missingSince: d("store", "missing_since_timestamp_seconds",
			"Unix time since which every run found the store missing (no such file, no Redis stream), so nothing is compacted; absent while the store exists. A mistyped path shows here."),
		interval: d("schedule", "interval_seconds",
			"How often the scheduler runs the target; absent when unknown, as under the systemd timer, whose unit is the schedule."),
		nextRun: d("schedule", "next_run_timestamp_seconds",
			"Unix time the scheduler will next run the target; absent when unknown."),
		lateness: d("schedule", "lateness_seconds",
			"How late the target's last start was (from when it was due to when it started) or, while it waits for a free slot, how long it has waited so far; absent when the schedule is unknown, as under the systemd timer."),
		maxAge: d("retention", "max_age_seconds",
			"The target's retention max_age_seconds; absent when the target has no age limit."),
		maxRecords: d("retention", "max_records",
			"The target's retention max_records; absent when the target keeps any number of records (unset or 0)."),
		maxBytes: d("retention", "max_total_bytes",
			"The target's retention max_total_bytes (summed record sizes as Papyra counts them); absent when unset."),
		debtRecords: d("retention_debt", "records",
			"Records retention says should be gone but the last run that could tell left in the store, by reason: held_by_group, approximate_trim, run_timeout, backlog (Redis), below_min_reclaim, safety_valve, clock_guard, incomplete. Absent before such a run, and for a reason whose amount is unknown (clock_guard).", "reason"),
		debtBytes: d("retention_debt", "bytes",
			"Bytes of the records counted in papyra_compact_retention_debt_records, by reason; absent where the bytes are unknown (Redis entries, a partial run).", "reason"),
		debtSince: d("retention_debt", "since_timestamp_seconds",
			"Unix time of the first run, in an unbroken series of runs that found retention debt for this reason, that found it: time() minus this is how long the policy has not been met. Absent while there is no debt for the reason.", "reason"),
		reloadOK: prometheus.NewDesc(prometheus.BuildFQName(namespace, "config", "last_reload_successful"),
			"Whether the last configuration reload succeeded: 1 if it did, 0 if it failed and the previous configuration is still in use.", nil, nil),
		reloadTS: prometheus.NewDesc(prometheus.BuildFQName(namespace, "config", "last_reload_success_timestamp_seconds"),
			"Unix time of the last successful configuration reload.", nil, nil),
		buildInfo: prometheus.NewDesc(prometheus.BuildFQName(namespace, "", "build_info"),
			"A metric with a constant value of 1, labeled by the version of papyra-compact and the Go version that built it.", []string{"version", "goversion"}, nil),
	}
}

func (c *collector) set(s snapshot) {
	c.mu.Lock()
	c.snap = s
	c.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.runs, c.scanned, c.kept, c.removed, c.quarantined, c.reclaimed,
		c.segDropped, c.segRewritten,
		c.success, c.lastRun, c.lastSuccess, c.lastDuration,
		c.storeSize, c.storeRecords, c.before, c.after,
		c.oldestTS, c.oldestAge, c.heldBack, c.heldBackBy, c.future,
		c.interval, c.nextRun, c.lateness, c.missingSince,
		c.maxAge, c.maxRecords, c.maxBytes,
		c.debtRecords, c.debtBytes, c.debtSince,
		c.reloadOK, c.reloadTS, c.buildInfo,
	} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	snap := c.snap
	c.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(c.buildInfo, prometheus.GaugeValue, 1, c.version, c.goVersion)
	if rl := snap.agent.Reload; rl.Known {
		ch <- prometheus.MustNewConstMetric(c.reloadOK, prometheus.GaugeValue, boolValue(rl.Successful))
		if !rl.SuccessAt.IsZero() {
			ch <- prometheus.MustNewConstMetric(c.reloadTS, prometheus.GaugeValue, unixSeconds(rl.SuccessAt))
		}
	}
	for _, t := range snap.targets {
		c.collectTarget(ch, snap.cfg, t.cfg, t.state)
	}
}

// collectTarget exports one target. Counters are always exported (0
// before the first run); a gauge is left out while its value is unknown
// rather than exported as 0, which alerts would read as a real value.
func (c *collector) collectTarget(ch chan<- prometheus.Metric, cfg *config.Config, t config.Target, st TargetState) {
	lv := []string{t.Name, t.Kind}
	counter := func(d *prometheus.Desc, v uint64, extra ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), append(lv, extra...)...)
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, lv...)
	}
	n := st.Counters
	reports := c.kinds.Reports(t)
	counter(c.runs, n.RunsSuccess, resultSuccess)
	counter(c.runs, n.RunsFailure, resultFailure)
	counter(c.runs, n.RunsSkippedLocked, resultSkippedLocked)
	counter(c.runs, n.RunsDryRun, resultDryRun)
	counter(c.runs, n.RunsInterrupted, resultInterrupted)
	counter(c.runs, n.RunsRefused, resultRefused)
	counter(c.scanned, n.RecordsScanned)
	counter(c.kept, n.RecordsKept)
	counter(c.removed, n.RemovedAge, "age")
	counter(c.removed, n.RemovedCount, "count")
	counter(c.removed, n.RemovedBytes, "bytes")
	if reports.Has(backends.ReportsStream) {
		counter(c.removed, n.RemovedCorrupt, "corrupt")
	}
	counter(c.quarantined, n.RecordsQuarantined)
	counter(c.reclaimed, n.ReclaimedBytes)
	if reports.Has(backends.ReportsSegments) {
		counter(c.segDropped, n.SegmentsDropped)
		counter(c.segRewritten, n.SegmentsRewritten)
	}

	if st.HasRun() {
		gauge(c.lastRun, unixSeconds(st.LastRun))
		gauge(c.lastDuration, st.LastDuration)
	}
	if !st.LastSuccess.IsZero() || !st.LastFailure.IsZero() {
		gauge(c.success, boolValue(!st.Failing()))
	}
	if !st.LastSuccess.IsZero() {
		gauge(c.lastSuccess, unixSeconds(st.LastSuccess))
	}
	if s := st.Store; !s.At.IsZero() {
		gauge(c.storeSize, float64(s.BytesAfter))
		gauge(c.storeRecords, float64(s.RecordsAfter))
		gauge(c.before, float64(s.BytesBefore))
		gauge(c.after, float64(s.BytesAfter))
		if s.HasOldest {
			gauge(c.oldestTS, s.OldestKept)
			gauge(c.oldestAge, s.OldestAge)
		}
		gauge(c.future, float64(s.Future))
		if reports.Has(backends.ReportsStream) {
			gauge(c.heldBack, float64(s.HeldBack))
			for _, h := range s.HeldBackBy {
				ch <- prometheus.MustNewConstMetric(c.heldBackBy, prometheus.GaugeValue, float64(h.Entries), t.Name, t.Kind, h.Stream, h.Group)
			}
		}
	}
	if !st.MissingSince.IsZero() {
		gauge(c.missingSince, unixSeconds(st.MissingSince))
	}
	if st.Interval > 0 {
		gauge(c.interval, st.Interval)
		gauge(c.lateness, st.Lateness)
	}
	if !st.NextRun.IsZero() {
		gauge(c.nextRun, unixSeconds(st.NextRun))
	}
	c.collectDebt(ch, lv, reports, st)
	pol := cfg.Policy(t)
	if pol.MaxAgeSeconds != nil {
		gauge(c.maxAge, *pol.MaxAgeSeconds)
	}
	if pol.MaxRecords != nil && *pol.MaxRecords > 0 {
		gauge(c.maxRecords, float64(*pol.MaxRecords))
	}
	if pol.MaxTotalBytes != nil {
		gauge(c.maxBytes, float64(*pol.MaxTotalBytes))
	}
}

// debtReasons are the debt reasons every kind can owe, exported at 0 once
// a run measured the debt; streamDebtReasons those of stream stores.
var (
	debtReasons       = []backends.DebtReason{backends.DebtBelowMinReclaim, backends.DebtSafetyValve, backends.DebtClockGuard, backends.DebtIncomplete}
	streamDebtReasons = []backends.DebtReason{backends.DebtHeldByGroup, backends.DebtApproximate, backends.DebtRunTimeout, backends.DebtBacklog}
)

// collectDebt exports a target's retention debt by reason: every reason
// its kind can owe, at 0 where there is none, once a run measured it, so
// that a series does not vanish when its debt is paid. An amount that is
// unknown is left out, never exported as 0.
func (c *collector) collectDebt(ch chan<- prometheus.Metric, lv []string, reports backends.Reports, st TargetState) {
	if st.DebtAt.IsZero() {
		return
	}
	type sum struct {
		records, bytes int64
		unknownRecords bool
		unknownBytes   bool
	}
	sums := map[string]*sum{}
	var order []string
	add := func(r string) *sum {
		if sums[r] == nil {
			sums[r] = &sum{}
			order = append(order, r)
		}
		return sums[r]
	}
	for _, r := range debtReasons {
		add(string(r))
	}
	if reports.Has(backends.ReportsStream) {
		for _, r := range streamDebtReasons {
			add(string(r))
		}
	}
	for _, d := range st.Debt {
		s := add(d.Reason)
		if d.Records < 0 {
			s.unknownRecords = true
		} else {
			s.records += d.Records
		}
		if d.Bytes < 0 {
			s.unknownBytes = true
		} else {
			s.bytes += d.Bytes
		}
	}
	label := func(r string) []string { return append(append([]string{}, lv...), r) }
	for _, r := range order {
		s := sums[r]
		if !s.unknownRecords {
			ch <- prometheus.MustNewConstMetric(c.debtRecords, prometheus.GaugeValue, float64(s.records), label(r)...)
		}
		if !s.unknownBytes {
			ch <- prometheus.MustNewConstMetric(c.debtBytes, prometheus.GaugeValue, float64(s.bytes), label(r)...)
		}
		if since, ok := st.DebtSince[r]; ok {
			ch <- prometheus.MustNewConstMetric(c.debtSince, prometheus.GaugeValue, unixSeconds(since), label(r)...)
		}
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
