package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/internal/failpoint"
	"github.com/papyra-compact/papyra-compact/internal/fsutil"
)

// The state directory layout, under config.StateDir:
//
//	targets/<target>.json   one TargetState per target
//	agent.json              AgentState (config reloads)
//	state.lock              flock(2) serializing writers of the two above
//
// Target names are restricted by config validation to letters, digits,
// "_", "." and "-" (never starting with "."), so a name is a safe file name.
const (
	stateTargetsDir = "targets"
	stateAgentFile  = "agent.json"
	stateLockFile   = "state.lock"

	// stateVersion is written into every state file. A file with a newer
	// version is refused rather than rewritten: an older agent would drop
	// the fields it does not know and corrupt the newer one's counters.
	stateVersion = 1
)

// ErrStateVersion means a state file was written by a newer papyra-compact.
var ErrStateVersion = errors.New("state file written by a newer papyra-compact")

// TargetState is what papyra-compact remembers about one target between
// runs: the last run, the store as the last successful compaction left it,
// and counters that only ever grow. It is the source of both the textfile
// metrics and `papyra-compact status`, so that a process that ran only
// one target still exports every target's counters.
type TargetState struct {
	Version int    `json:"version"`
	Target  string `json:"target"`
	Backend string `json:"backend"`
	// Since is when this file was created: the counters count from then.
	// Deleting the file is the one way to reset them.
	Since time.Time `json:"since"`

	// LastRun is when the last run of any kind (dry runs and lock skips
	// included) started; LastResult is its Outcome.String().
	LastRun      time.Time `json:"last_run,omitzero"`
	LastResult   string    `json:"last_result,omitempty"`
	LastDuration float64   `json:"last_duration_seconds"`
	// LastSuccess and LastFailure are the starts of the last real run that
	// succeeded (or found nothing to do) and of the last one that failed.
	LastSuccess time.Time `json:"last_success,omitzero"`
	LastFailure time.Time `json:"last_failure,omitzero"`
	// LastError is the error of the last failed run; it is cleared by the
	// next success.
	LastError string `json:"last_error,omitempty"`
	// Failed is true when the last real run failed. It is kept apart from
	// the timestamps so that a wall clock stepped backwards cannot make a
	// newer failure look older than the last success.
	Failed bool `json:"failed"`

	// NextRun and Interval are filled by a scheduler that knows them (the
	// daemon); zero means unknown, as under the systemd timer, where the
	// timer unit is the schedule.
	NextRun  time.Time `json:"next_run,omitzero"`
	Interval float64   `json:"interval_seconds,omitempty"`
	// Lateness is how late the last start was, or how long the target
	// has waited for a slot so far (seconds; see Schedule.Lateness).
	Lateness float64 `json:"schedule_lateness_seconds,omitempty"`

	// MissingSince is the start of the first run, in an unbroken series,
	// that found the store missing (a file that does not exist, a Redis
	// system with no stream); zero while the store exists. A mistyped path
	// is "nothing to do" forever: this makes it visible (status, the
	// store_missing_since metric and its alert).
	MissingSince time.Time `json:"missing_since,omitzero"`

	// Debt is the retention debt the last run that could tell found: what
	// retention says should be gone but is still in the store, by reason.
	// Runs that stop before they can tell (a failure before planning, a
	// lock skip, a dry run) leave it as it was.
	Debt []DebtState `json:"debt,omitempty"`
	// DebtAt is the start of the run that measured Debt; zero when no run
	// has yet.
	DebtAt time.Time `json:"debt_at,omitzero"`
	// DebtSince holds, per reason with debt, the start of the first run
	// of an unbroken series that found debt for that reason: how long the
	// policy has not been met (the retention_debt_since metric and its
	// alert).
	DebtSince map[string]time.Time `json:"debt_since,omitempty"`

	// Store is the store as the last successful compaction left it.
	Store StoreState `json:"store"`
	// Counters are cumulative over every run since Since.
	Counters Counters `json:"counters"`
	// Emergency is what emergency drops (keep_free) did; nil for a
	// target that was never checked.
	Emergency *EmergencyState `json:"emergency,omitempty"`
}

// StoreState describes a store after the last successful compaction.
type StoreState struct {
	// At is when that compaction started; zero when there was none yet.
	At time.Time `json:"at,omitzero"`
	// Exists is false when the store did not exist (nothing to do).
	Exists        bool  `json:"exists"`
	RecordsBefore int64 `json:"records_before"`
	RecordsAfter  int64 `json:"records_after"`
	Removed       int64 `json:"removed"`
	Quarantined   int64 `json:"quarantined"`
	BytesBefore   int64 `json:"bytes_before"`
	BytesAfter    int64 `json:"bytes_after"`
	Reclaimed     int64 `json:"reclaimed_bytes"`
	// OldestKept is the oldest kept record's timestamp (Unix seconds, as
	// Papyra wrote it) when HasOldest; OldestAge is its age when the
	// compaction started.
	OldestKept float64 `json:"oldest_kept,omitempty"`
	HasOldest  bool    `json:"has_oldest"`
	OldestAge  float64 `json:"oldest_age_seconds,omitempty"`
	// HeldBack is the number of Redis stream entries retention would
	// remove but kept because a consumer group still needs them (Redis
	// targets only); HeldBackBy splits it by stream and group.
	HeldBack   int64           `json:"redis_held_back_entries,omitempty"`
	HeldBackBy []HeldBackState `json:"redis_held_back,omitempty"`
	// HeldBackEstimated is true when HeldBack is an estimate (some group's
	// count is: counting it exactly would read every held entry).
	HeldBackEstimated bool `json:"redis_held_back_estimated,omitempty"`
	// Future counts the future-dated records kept (stamped more than
	// max_clock_skew after the run's start); NewestFuture is the latest
	// of them.
	Future       int64  `json:"future_records,omitempty"`
	NewestFuture *Stamp `json:"newest_future,omitempty"`
	// Ages splits the records the run read by age, when the backend
	// dated them (`explain` shows them when it cannot read the store).
	Ages []AgeRow `json:"ages,omitempty"`
}

// DebtState is one part of the retention debt (backends.Debt).
type DebtState struct {
	Reason string `json:"reason"`
	Detail string `json:"detail,omitempty"`
	// Records and Bytes are -1 when unknown.
	Records   int64   `json:"records"`
	Bytes     int64   `json:"bytes"`
	Oldest    float64 `json:"oldest,omitempty"`
	HasOldest bool    `json:"has_oldest,omitempty"`
	Estimated bool    `json:"estimated,omitempty"`
}

// Debt converts d back to the contract's type.
func (d DebtState) Debt() backends.Debt {
	return backends.Debt{Reason: backends.DebtReason(d.Reason), Detail: d.Detail, Records: d.Records, Bytes: d.Bytes,
		Oldest: d.Oldest, HasOldest: d.HasOldest, Estimated: d.Estimated}
}

// Owes reports whether d is debt: records left, or an unknown amount.
func (d DebtState) Owes() bool { return d.Records != 0 || d.Bytes > 0 }

// setDebt records the debt a run that started at started measured.
func (s *TargetState) setDebt(debt []backends.Debt, started time.Time) {
	s.Debt = nil
	owed := map[string]bool{}
	for _, d := range debt {
		ds := DebtState{Reason: string(d.Reason), Detail: d.Detail, Records: d.Records, Bytes: d.Bytes,
			Oldest: d.Oldest, HasOldest: d.HasOldest, Estimated: d.Estimated}
		if !ds.Owes() {
			continue
		}
		s.Debt = append(s.Debt, ds)
		owed[ds.Reason] = true
	}
	since := map[string]time.Time{}
	for r := range owed {
		if t, ok := s.DebtSince[r]; ok {
			since[r] = t
		} else {
			since[r] = started
		}
	}
	s.DebtSince = nil
	if len(since) > 0 {
		s.DebtSince = since
	}
	s.DebtAt = started
}

// HeldBackState is what one consumer group kept in one stream.
type HeldBackState struct {
	Stream  string `json:"stream"`
	Group   string `json:"group"`
	Entries int64  `json:"entries"`
	// Estimated is true when Entries is an estimate.
	Estimated bool `json:"estimated,omitempty"`
}

// Counters only ever grow, except when the state file is deleted.
type Counters struct {
	RunsSuccess       uint64 `json:"runs_success"`
	RunsFailure       uint64 `json:"runs_failure"`
	RunsSkippedLocked uint64 `json:"runs_skipped_locked"`
	RunsDryRun        uint64 `json:"runs_dry_run"`
	RunsInterrupted   uint64 `json:"runs_interrupted"`
	RunsRefused       uint64 `json:"runs_refused"`

	RecordsScanned uint64 `json:"records_scanned"`
	RecordsKept    uint64 `json:"records_kept"`
	RemovedAge     uint64 `json:"removed_age"`
	RemovedCount   uint64 `json:"removed_count"`
	RemovedBytes   uint64 `json:"removed_bytes"`
	// RemovedCorrupt counts Redis stream entries Papyra cannot read that
	// retention removed without quarantine (quarantine_corrupt: false):
	// not records, so not in the counts above.
	RemovedCorrupt     uint64 `json:"removed_corrupt,omitempty"`
	RecordsQuarantined uint64 `json:"records_quarantined"`
	ReclaimedBytes     uint64 `json:"reclaimed_bytes"`
	SegmentsDropped    uint64 `json:"segments_dropped"`
	SegmentsRewritten  uint64 `json:"segments_rewritten"`
}

// Failing reports whether the most recent real run of the target failed.
// Dry runs and lock skips in between neither hide nor clear a failure.
func (s *TargetState) Failing() bool { return s.Failed }

// HasRun reports whether any run of the target was recorded.
func (s *TargetState) HasRun() bool { return !s.LastRun.IsZero() }

// Apply folds one run's result into the state. It is pure: the same state
// and result always give the same new state.
func (s *TargetState) Apply(r Result) {
	if s.Since.IsZero() {
		s.Since = r.Started
	}
	s.Version = stateVersion
	s.Target = r.Target
	if r.Kind != "" {
		s.Backend = r.Kind
	}
	s.LastRun = r.Started
	s.LastResult = r.Outcome.String()
	s.LastDuration = r.Duration.Seconds()
	c := &s.Counters
	switch {
	case r.Outcome == OutcomeNothingToDo:
		// No store, no debt.
		s.setDebt(nil, r.Started)
	case r.Outcome == OutcomeDryRun || r.Outcome == OutcomeLocked:
		// A dry run did not run; a skipped one did not look.
	case r.DebtKnown || r.Outcome == OutcomeOK:
		// A compaction that succeeded always knows what it left.
		s.setDebt(r.Stats.Debt, r.Started)
	}
	switch r.Outcome {
	case OutcomeDryRun:
		// A dry run describes what a run would do; counting its records
		// as removed would make increase() report deletions that never
		// happened.
		c.RunsDryRun++
	case OutcomeLocked:
		c.RunsSkippedLocked++
	case OutcomeInterrupted:
		// Neither a success nor a failure of the store: the last real
		// run's verdict stands, and nobody is paged for a stop.
		c.RunsInterrupted++
	case OutcomeRefused:
		// The safety valve stopped the run and nothing changed; the
		// store is not being compacted until someone confirms with
		// --force or fixes the config, so it counts as failing (pages).
		c.RunsRefused++
		s.LastFailure = r.Started
		s.LastError = errString(r.Err)
		s.Failed = true
	case OutcomeFailed:
		c.RunsFailure++
		s.LastFailure = r.Started
		s.LastError = errString(r.Err)
		s.Failed = true
	case OutcomeNothingToDo:
		c.RunsSuccess++
		s.LastSuccess = r.Started
		s.LastError, s.Failed = "", false
		s.Store = StoreState{At: r.Started}
		if s.MissingSince.IsZero() {
			s.MissingSince = r.Started
		}
	default:
		c.RunsSuccess++
		s.LastSuccess = r.Started
		s.LastError, s.Failed = "", false
		s.MissingSince = time.Time{}
		st := r.Stats
		c.RecordsScanned += nonNeg(st.RecordsBefore)
		c.RecordsKept += nonNeg(st.RecordsAfter)
		c.RemovedAge += nonNeg(st.RemovedAge)
		c.RemovedCount += nonNeg(st.RemovedCount)
		c.RemovedBytes += nonNeg(st.RemovedBytes)
		if st.Stream != nil {
			c.RemovedCorrupt += nonNeg(st.Stream.RemovedCorrupt)
		}
		c.RecordsQuarantined += nonNeg(st.Quarantined)
		c.ReclaimedBytes += nonNeg(st.Reclaimed())
		if seg := st.Segments; seg != nil {
			c.SegmentsDropped += nonNeg(seg.Dropped)
			c.SegmentsRewritten += nonNeg(seg.Rewritten)
		}
		s.Store = StoreState{
			At:            r.Started,
			Exists:        true,
			RecordsBefore: st.RecordsBefore,
			RecordsAfter:  st.RecordsAfter,
			Removed:       st.Removed(),
			Quarantined:   st.Quarantined,
			BytesBefore:   st.BytesBefore,
			BytesAfter:    st.BytesAfter,
			Reclaimed:     st.Reclaimed(),
			HasOldest:     st.HasOldest,
			Future:        st.Future,
			Ages:          AgeRows(st.Ages),
		}
		if st.Future > 0 {
			nf := Stamp(st.NewestFuture)
			s.Store.NewestFuture = &nf
		}
		for _, h := range heldBack(st.Stream) {
			s.Store.HeldBack += h.Entries
			s.Store.HeldBackBy = append(s.Store.HeldBackBy, HeldBackState{Stream: h.Stream, Group: h.Group, Entries: h.Entries, Estimated: h.Estimated})
			s.Store.HeldBackEstimated = s.Store.HeldBackEstimated || h.Estimated
		}
		if st.HasOldest {
			s.Store.OldestKept = st.OldestKept
			s.Store.OldestAge = unixSeconds(r.Started) - st.OldestKept
		}
	}
}

func heldBack(s *backends.StreamStats) []backends.HeldBack {
	if s == nil {
		return nil
	}
	return s.HeldBack
}

func errString(err error) string {
	if err == nil {
		return "unknown error"
	}
	return err.Error()
}

func nonNeg(n int64) uint64 {
	if n < 0 {
		return 0
	}
	return uint64(n)
}

// unixSeconds is t as float Unix seconds, the unit of every Prometheus
// timestamp metric and of Papyra's record timestamps.
func unixSeconds(t time.Time) float64 {
	return float64(t.UnixNano()) / 1e9
}

// ReloadState is the outcome of the daemon's configuration reloads.
type ReloadState struct {
	// Known is false until a reload (or the daemon's first load) was
	// recorded; the metrics are then left out rather than reported as a
	// failure.
	Known      bool      `json:"known"`
	Successful bool      `json:"successful"`
	At         time.Time `json:"at,omitzero"`
	// SuccessAt is when the configuration was last loaded successfully.
	SuccessAt time.Time `json:"success_at,omitzero"`
	// Error is why the last reload was rejected ("" after a success), for
	// `papyra-compact reload` (ExecReload=) and `status`.
	Error string `json:"error,omitempty"`
	// RestartNeeded names what the daemon cannot apply without a restart
	// (paths its sandbox keeps read-only); "" when nothing.
	RestartNeeded string `json:"restart_needed,omitempty"`
}

// AgentState is what papyra-compact remembers that belongs to no target.
type AgentState struct {
	Version int         `json:"version"`
	Reload  ReloadState `json:"config_reload"`
}

// State is everything in a state directory.
type State struct {
	Agent   AgentState
	Targets map[string]TargetState
}

// TargetStatePath returns the file holding target's state.
func TargetStatePath(stateDir, target string) string {
	return filepath.Join(stateDir, stateTargetsDir, target+".json")
}

// LoadTargetState reads one target's state. A missing file is not an
// error: it gives a zero state (found false), whose counters start at 0.
func LoadTargetState(stateDir, target string) (st TargetState, found bool, err error) {
	found, err = readJSON(TargetStatePath(stateDir, target), &st)
	if err != nil || !found {
		return TargetState{Target: target}, false, err
	}
	if st.Target == "" {
		st.Target = target
	}
	return st, true, nil
}

// LoadAgentState reads the state that belongs to no target.
func LoadAgentState(stateDir string) (AgentState, error) {
	var st AgentState
	_, err := readJSON(filepath.Join(stateDir, stateAgentFile), &st)
	return st, err
}

// ReadState reads every target's state in stateDir, without locking: each
// file is replaced atomically, so a reader sees a whole old or a whole new
// one. It needs only read access, so `status` works without root.
func ReadState(stateDir string) (State, error) {
	out := State{Targets: map[string]TargetState{}}
	var err error
	if out.Agent, err = LoadAgentState(stateDir); err != nil {
		return out, err
	}
	ents, err := os.ReadDir(filepath.Join(stateDir, stateTargetsDir))
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return out, fmt.Errorf("read state directory: %w", err)
	}
	var errs []error
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || strings.HasPrefix(name, ".") || e.IsDir() {
			continue // temp files of an atomic write in progress
		}
		st, found, err := LoadTargetState(stateDir, name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if found {
			out.Targets[name] = st
		}
	}
	return out, errors.Join(errs...)
}

// TargetNames returns the names in s.Targets, sorted.
func (s State) TargetNames() []string {
	names := make([]string, 0, len(s.Targets))
	for n := range s.Targets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func readJSON(path string, v interface{ checkVersion() error }) (bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read state %s: %w", path, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("parse state %s: %w (move it away to reset this target's counters)", path, err)
	}
	if err := v.checkVersion(); err != nil {
		return false, fmt.Errorf("state %s: %w", path, err)
	}
	return true, nil
}

func (s *TargetState) checkVersion() error { return checkVersion(s.Version) }
func (s *AgentState) checkVersion() error  { return checkVersion(s.Version) }

func checkVersion(v int) error {
	if v > stateVersion {
		return fmt.Errorf("%w (version %d, this one reads up to %d)", ErrStateVersion, v, stateVersion)
	}
	return nil
}

// writeJSON replaces path atomically and durably (temp file, fsync,
// rename, directory fsync): a crash leaves the old state or the new one,
// never a torn file that would reset the counters. Mode 0644 lets
// `status` read it without root.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode state %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create state directory: %w", err)
	}
	// The fail point is where a kill leaves the temp file, which the next
	// writer sweeps (sweepTemps).
	return fsutil.WriteFileAtomicSynced(path, append(b, '\n'), 0o644, func() error { return failpoint.Inject("state-temp-synced") })
}

// sweepTemps removes what a killed atomic write of a state file or of the
// textfile left: temp files with the exact prefix of WriteFileAtomic
// (fsutil.SweepTemps) for the exact names this agent writes — agent.json,
// the state file of every configured target and of every target that has
// one, and the textfile — never anything else. The caller holds the state
// lock, under which every one of these files is written, so no temp file
// it removes belongs to a live writer.
func sweepTemps(stateDir string, targets []string, textfile string) (int, error) {
	paths := []string{filepath.Join(stateDir, stateAgentFile)}
	seen := map[string]bool{}
	for _, t := range targets {
		seen[t] = true
		paths = append(paths, TargetStatePath(stateDir, t))
	}
	ents, err := os.ReadDir(filepath.Join(stateDir, stateTargetsDir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("sweep state directory: %w", err)
	}
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if ok && !strings.HasPrefix(name, ".") && !seen[name] && e.Type().IsRegular() {
			seen[name] = true
			paths = append(paths, TargetStatePath(stateDir, name))
		}
	}
	if textfile != "" {
		paths = append(paths, textfile)
	}
	n := 0
	var errs []error
	for _, p := range paths {
		k, err := fsutil.SweepTemps(p)
		n += k
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return n, errors.Join(errs...)
}

// SaveTargetState writes one target's state atomically.
func SaveTargetState(stateDir string, st TargetState) error {
	st.Version = stateVersion
	return writeJSON(TargetStatePath(stateDir, st.Target), st)
}

// saveAgentState writes the agent-wide state atomically.
func saveAgentState(stateDir string, st AgentState) error {
	st.Version = stateVersion
	return writeJSON(filepath.Join(stateDir, stateAgentFile), st)
}

// lockState takes the state directory's writer lock, waiting for it.
//
// Every read-modify-write of a state file, and the textfile rendered from
// them, happens under this lock, so that two processes (the timer's run
// and an admin's `run --target x`, or a skipped run while another works)
// never lose each other's increments, and never write an older textfile
// over a newer one, which would make counters go backwards for a scrape.
// The lock is held for milliseconds, so waiting is simpler and safer than
// retrying. Readers (`status`) do not take it: files are replaced by
// rename. A lock file per target was rejected because the textfile spans
// every target.
func lockState(stateDir string) (unlock func(), err error) {
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		return nil, fmt.Errorf("create state directory %s: %w", stateDir, err)
	}
	path := filepath.Join(stateDir, stateLockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open state lock: %w", err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { _ = f.Close() }, nil
}
