// Package backends defines the one contract every Papyra store implements
// for papyra-compact, and the registry that maps a target's `kind:` to the
// code that compacts it.
//
// A compaction is split in two so that dry runs and real runs share every
// line of retention logic: Plan reads the store and decides, Apply carries
// the decision out. The stores themselves live in subpackages (jsonl,
// memory, …); backends/all lists them.
package backends

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"time"

	"github.com/papyra-compact/papyra-compact/config"
	"github.com/papyra-compact/papyra-compact/internal/fsutil"
)

// Sentinel errors shared by every backend. Callers test them with errors.Is.
var (
	// ErrNothingToDo means the store does not exist (yet): not a failure.
	ErrNothingToDo = errors.New("nothing to do")
	// ErrLocked means another run holds the store's lock.
	ErrLocked = errors.New("locked by another run")
	// ErrUnsafe means the backend refused to act because acting could lose
	// or misjudge records (for example age retention on a store whose
	// timestamps are not Unix time). Nothing was changed.
	ErrUnsafe = errors.New("refused: unsafe to compact")
	// ErrChanged means the store was replaced by someone else while the run
	// worked on it; nothing was changed and the next run retries.
	ErrChanged = errors.New("store changed during compaction")
)

// Policy is what one compaction must achieve.
type Policy struct {
	// Retention is Papyra's retention, applied exactly as Papyra applies it.
	Retention config.Retention
	// Now is "now" for age retention (Papyra uses time.time()).
	Now time.Time
	// Progress, when set, is told how far the work is. It is called from
	// the compacting goroutine and must return quickly.
	Progress Progress
	// MaxClockSkew is how far after Now a record may be stamped before it
	// is future-dated (Stats.Future): kept, as Papyra keeps it, but
	// counted, because a writer's clock is wrong.
	MaxClockSkew time.Duration
	// Explain asks Plan for Stats.Ages, even where that costs reading
	// parts of the store a compaction would not read (`explain`).
	Explain bool
}

// Future reports whether a record stamped ts (Unix seconds) is
// future-dated under p: more than MaxClockSkew after Now. +Infinity is
// (Papyra keeps it forever); NaN is not.
func (p Policy) Future(ts float64) bool {
	return ts > float64(p.Now.Add(p.MaxClockSkew).UnixNano())/1e9
}

// MinUnixTime is the smallest newest-timestamp that can be Unix time
// (2001-09-09T01:46:40Z). Papyra's ActorSystem stamps records with
// anyio.current_time() unless given time_fn=time.time: seconds since boot
// (papyra-formats §0.2). A store whose newest finite timestamp is below
// this was written with that clock.
const MinUnixTime = 1e9

// AgeCutoff is Papyra's age boundary, now - max_age_seconds in Unix
// seconds: a record is kept iff its timestamp >= cutoff (missing, null,
// NaN and -Infinity never are; Infinity always is). ok is false when the
// policy has no age retention.
func (p Policy) AgeCutoff() (cutoff float64, ok bool) {
	if p.Retention.MaxAgeSeconds == nil {
		return 0, false
	}
	return float64(p.Now.UnixNano())/1e9 - *p.Retention.MaxAgeSeconds, true
}

// AgeCutoffTime is AgeCutoff as a time, computed in integer nanoseconds
// (a float of Unix seconds has only about 0.2 µs of precision today).
func (p Policy) AgeCutoffTime() (time.Time, bool) {
	if p.Retention.MaxAgeSeconds == nil {
		return time.Time{}, false
	}
	return p.Now.Add(-time.Duration(*p.Retention.MaxAgeSeconds * 1e9)), true
}

// CountLimit is max_records: Papyra keeps the last n records that passed
// age retention. ok is false when there is no count limit, which includes
// max_records 0: Papyra takes result[-0:], the whole list, so 0 keeps
// everything.
func (p Policy) CountLimit() (n int64, ok bool) {
	if m := p.Retention.MaxRecords; m != nil && *m > 0 {
		return *m, true
	}
	return 0, false
}

// ByteLimit is max_total_bytes: Papyra keeps the newest run of records
// whose Python repr sizes add up to at most n (0 keeps nothing). ok is
// false when there is no size limit.
func (p Policy) ByteLimit() (n int64, ok bool) {
	if m := p.Retention.MaxTotalBytes; m != nil {
		return max(*m, 0), true
	}
	return 0, false
}

// FixDropAge is the remedy CheckClock offers for a store whose
// timestamps are stamped by Papyra alone.
const FixDropAge = "drop max_age/max_age_seconds for this target"

// CheckClock refuses age retention on a store written with Papyra's
// default monotonic clock, where it would delete every record. newest is
// the store's newest finite timestamp, or -Inf when it has none: a store
// whose timestamps are all null, NaN or ±Infinity carries no evidence of
// the clock, and Papyra's own rule decides each record (Infinity stays,
// the others go). store names it in the error; fix is the second remedy
// the error offers, besides time_fn=time.time.
func (p Policy) CheckClock(store string, newest float64, fix string) error {
	if p.Retention.MaxAgeSeconds == nil || math.IsInf(newest, 0) || math.IsNaN(newest) || newest >= MinUnixTime {
		return nil
	}
	return &ClockError{err: fmt.Errorf("%w: age retention on %s: the newest timestamp is %s, which is seconds since boot, not Unix time. "+
		"Papyra's ActorSystem defaults to anyio.current_time() (a monotonic clock); with it, max_age would delete every record. "+
		"Fix: create the ActorSystem with time_fn=time.time, or %s",
		ErrUnsafe, store, strconv.FormatFloat(newest, 'f', -1, 64), fix)}
}

// ClockError is CheckClock's refusal. It wraps ErrUnsafe; the agent
// tells it apart (errors.As) to report the retention it leaves undone as
// debt with reason DebtClockGuard.
type ClockError struct{ err error }

func (e *ClockError) Error() string { return e.err.Error() }
func (e *ClockError) Unwrap() error { return e.err }

// Unit is what a progress Step counts.
type Unit int

// Units of progress.
const (
	// Bytes of a file store (the default).
	Bytes Unit = iota
	// Entries of a stream store.
	Entries
)

// Step is how far one phase ("scan", "rewrite", "trim", …) of a
// compaction is: Done out of Total, counted in Unit. Total may grow
// while a live writer appends.
type Step struct {
	Phase       string
	Unit        Unit
	Done, Total int64
}

// Progress receives the steps of a compaction.
type Progress func(Step)

// Plan is a decision about one store, made by Backend.Plan. It may hold
// open resources (a descriptor on the store, a scratch file) and must be
// closed, whether or not it was applied.
type Plan interface {
	// Stats is what applying the plan would do, as of planning time.
	Stats() Stats
	// Close releases the plan's resources. It is idempotent.
	Close() error
}

// RewriteSkipper is implemented by plans part of whose work is cheap
// (whole files unlinked: a rotating store's wholly expired segments) and
// part rewrites (files copied without what retention removes). A target's
// min_reclaim judges the rewrites alone: when they would free less, the
// agent keeps the cheap work and skips the rewrites, rather than skipping
// both. A plan whose only work is a rewrite (one JSON-lines file) does not
// implement it, and min_reclaim skips the whole plan or none of it.
type RewriteSkipper interface {
	// WithoutRewrites is what the plan would do if it rewrote nothing:
	// every file it would rewrite left as it is. ok is false when the
	// plan rewrites nothing (there is nothing to skip).
	WithoutRewrites() (s Stats, ok bool)
	// SkipRewrites makes the plan do only that: afterwards its Stats
	// and Apply are those of WithoutRewrites.
	SkipRewrites()
}

// Backend compacts one store. Implementations are not safe for concurrent
// use; the agent runs one compaction per backend at a time and serializes
// processes with a lock on the kind's LockKey.
type Backend interface {
	// Plan reads the store and decides what retention removes. It changes
	// nothing on disk. A missing store returns an error wrapping
	// ErrNothingToDo. Killing the process during Plan leaves nothing behind.
	Plan(ctx context.Context, p Policy) (Plan, error)
	// Apply carries out a plan made by the same backend. Either the store
	// ends up compacted and every record appended meanwhile is kept, or the
	// original stays intact; a kill at any moment leaves a state that the
	// next Apply (after Recover) finishes or undoes. Apply must run under
	// the lock on the kind's LockKey.
	Apply(ctx context.Context, plan Plan) (Stats, error)
	// Recover finishes or undoes what a killed run left behind (temp files,
	// half-done swaps). It runs under the lock before every Plan and is
	// idempotent.
	Recover(ctx context.Context) error
	// Close releases the backend's resources.
	Close() error
}

// Stats describe one compaction, planned or done. Counts are records
// (lines of a file store, entries of a stream). The fields every store
// has come first; what only some stores have is in optional groups, set
// (non-nil) exactly by the backends that report them, so the agent
// exports what a backend reported rather than guessing from its kind.
type Stats struct {
	RecordsBefore int64 // valid records in the store before
	RecordsAfter  int64 // records kept (not counting Appended)
	RemovedAge    int64 // removed by max_age_seconds
	RemovedCount  int64 // removed by max_records
	RemovedBytes  int64 // removed by max_total_bytes
	Quarantined   int64 // corrupt lines moved to quarantine
	BlankLines    int64 // blank lines removed
	Appended      int64 // bytes appended by live writers during the run, carried over
	BytesBefore   int64 // store size before
	BytesAfter    int64 // store size after (planned: before minus what goes)

	// OldestKept is the smallest timestamp among kept records (Unix
	// seconds as Papyra wrote it); HasOldest tells whether there is one.
	OldestKept float64
	HasOldest  bool
	// TornTail is true when the store ended in a line without a newline,
	// carried over verbatim.
	TornTail bool
	// QuarantineFile is where quarantined lines went ("" when none).
	QuarantineFile string
	// Notes are human remarks for the summary ("store unchanged", …).
	Notes []string

	// Future counts the kept records stamped more than
	// Policy.MaxClockSkew after Policy.Now (Policy.Future);
	// NewestFuture is the latest such timestamp when Future > 0.
	Future       int64
	NewestFuture float64
	// Ages splits the store's records before the run by age. Set by
	// backends that can tell (always when Policy.Explain asked for it
	// and the backend reads timestamps).
	Ages *Ages
	// Debt lists what retention says should be gone but the run leaves
	// in the store, by reason. Empty when the store meets its policy.
	Debt []Debt

	// Segments is set by backends whose store is a family of segment
	// files (Papyra's rotating store).
	Segments *SegmentStats
	// Stream is set by backends whose store is a set of streams with
	// consumer groups (Redis).
	Stream *StreamStats
}

// SegmentStats count the segment files of a rotating store by what the
// run did to them.
type SegmentStats struct {
	Dropped   int64 // removed whole: retention kept none of their records
	Rewritten int64 // rewritten: retention removed some of their records
	Untouched int64 // left as they were
	// BytesRead is how many bytes of the store the run read (planning
	// and copying): segments wholly beyond the retention cut are dropped
	// without being read.
	BytesRead int64
	// Active is true when the store has an active file (the one Papyra
	// appends to, never dropped); ActiveBytes is its size when planned.
	Active      bool
	ActiveBytes int64
}

// StreamStats describe what a stream store's consumer groups kept.
type StreamStats struct {
	// HeldBack lists, per consumer group of a stream, the entries
	// retention would have removed but the group still needs (pending
	// or not yet delivered), so they were kept.
	HeldBack []HeldBack
	// Estimated is true when the removal counts are estimates: a planned
	// trim by entry ID that was not counted entry by entry (Apply
	// reports what the server actually removed).
	Estimated bool
	// RemovedCorrupt counts stream entries Papyra cannot read that
	// retention removed without quarantining them (quarantine_corrupt:
	// false). They are not records, so not part of Removed().
	RemovedCorrupt int64
}

// HeldBack is what one consumer group kept in one stream.
type HeldBack struct {
	Stream  string // the stream key
	Group   string // the consumer group
	Entries int64  // entries kept for it that retention would remove
	// Estimated is true when Entries is an estimate: counting exactly
	// would read every entry the group holds.
	Estimated bool
}

// DebtReason says why records retention would remove are still in the
// store. It is the `reason` label of the retention debt metrics: keep the
// set small and stable.
type DebtReason string

// Debt reasons.
const (
	// DebtHeldByGroup: a consumer group has not acknowledged (or not yet
	// read) them (Redis).
	DebtHeldByGroup DebtReason = "held_by_group"
	// DebtApproximate: an approximate trim (XTRIM ~) removes whole stream
	// nodes only and left the rest of one (Redis).
	DebtApproximate DebtReason = "approximate_trim"
	// DebtBelowMinReclaim: the run skipped a compaction that would have
	// freed less than the target's min_reclaim.
	DebtBelowMinReclaim DebtReason = "below_min_reclaim"
	// DebtSafetyValve: the safety valve (max_remove_fraction) refused
	// the run.
	DebtSafetyValve DebtReason = "safety_valve"
	// DebtClockGuard: age retention was refused because the store's
	// timestamps are not Unix time (Policy.CheckClock).
	DebtClockGuard DebtReason = "clock_guard"
	// DebtRunTimeout: the run stopped at its deadline (run_timeout)
	// before it was done; the next run continues.
	DebtRunTimeout DebtReason = "run_timeout"
	// DebtIncomplete: the run failed or was interrupted after planning;
	// what it planned to remove is still there.
	DebtIncomplete DebtReason = "incomplete"
	// DebtBacklog: a stream held more unreadable entries to quarantine,
	// or records to delete one by one, than one run handles; what
	// retention removes that waits with them is left for the next run
	// (Redis).
	DebtBacklog DebtReason = "backlog"
)

// Debt is one part of what retention says should be gone but is not.
type Debt struct {
	Reason DebtReason
	// Detail names who or what holds it, in plain words ("group billing
	// of papyra:local:events"); "" when the reason says it all.
	Detail string
	// Records and Bytes are how much is left; either is -1 when unknown
	// (a clock guard refusal stops the run before anything is counted):
	// unknown is never reported as 0, which would read as "no debt".
	Records int64
	Bytes   int64
	// Oldest is the oldest such record's timestamp (Unix seconds) when
	// HasOldest: how long the debt has been owed.
	Oldest    float64
	HasOldest bool
	// Estimated is true when Records (or Bytes) is an estimate.
	Estimated bool
}

// DebtTotal sums s.Debt's known records and known bytes.
func (s Stats) DebtTotal() (records, bytes int64) {
	for _, d := range s.Debt {
		records += max(d.Records, 0)
		bytes += max(d.Bytes, 0)
	}
	return records, bytes
}

// AgeBounds are the upper ends of the age buckets of Ages, youngest
// first; the last bucket has no upper end.
var AgeBounds = [...]time.Duration{time.Hour, 24 * time.Hour, 7 * 24 * time.Hour, 30 * 24 * time.Hour, 90 * 24 * time.Hour}

// AgeCount is a number of records and their bytes (as stored).
type AgeCount struct {
	Records int64
	Bytes   int64
}

// Ages splits a store's records by age at Policy.Now.
type Ages struct {
	// Buckets[i] holds records younger than AgeBounds[i] (and not
	// younger than AgeBounds[i-1]); the last, len(AgeBounds), the older.
	Buckets [len(AgeBounds) + 1]AgeCount
	// Future holds records stamped more than Policy.MaxClockSkew after
	// now (+Infinity included); Undated those without a usable timestamp
	// (missing, null, NaN, -Infinity), which age retention removes.
	Future  AgeCount
	Undated AgeCount
}

// Add counts one record stamped ts (ok false: no usable timestamp) of
// size bytes under p.
func (a *Ages) Add(p Policy, ts float64, ok bool, bytes int64) {
	var c *AgeCount
	switch {
	case !ok || math.IsNaN(ts) || math.IsInf(ts, -1):
		c = &a.Undated
	case p.Future(ts):
		c = &a.Future
	default:
		// In float seconds: a finite timestamp far in the past (-1e300)
		// would overflow a Duration.
		age := float64(p.Now.UnixNano())/1e9 - ts
		i := 0
		for i < len(AgeBounds) && age >= AgeBounds[i].Seconds() {
			i++
		}
		c = &a.Buckets[i]
	}
	c.Records++
	c.Bytes += bytes
}

// Merge adds b's counts to a's.
func (a *Ages) Merge(b Ages) {
	for i := range a.Buckets {
		a.Buckets[i].add(b.Buckets[i])
	}
	a.Future.add(b.Future)
	a.Undated.add(b.Undated)
}

func (c *AgeCount) add(d AgeCount) {
	c.Records += d.Records
	c.Bytes += d.Bytes
}

// Total is every record a counts, and their bytes.
func (a *Ages) Total() AgeCount {
	t := a.Future
	t.add(a.Undated)
	for _, b := range a.Buckets {
		t.add(b)
	}
	return t
}

// HeldBackTotal is the number of entries consumer groups kept, 0 when s
// is nil.
func (s *StreamStats) HeldBackTotal() int64 {
	if s == nil {
		return 0
	}
	var n int64
	for _, h := range s.HeldBack {
		n += h.Entries
	}
	return n
}

// Removed is the total number of records retention removes.
func (s Stats) Removed() int64 { return s.RemovedAge + s.RemovedCount + s.RemovedBytes }

// Reclaimed is the number of bytes freed (never negative).
func (s Stats) Reclaimed() int64 {
	if s.BytesAfter >= s.BytesBefore {
		return 0
	}
	return s.BytesBefore - s.BytesAfter
}

// Env is what the agent gives every factory besides the target's own
// configuration.
type Env struct {
	// Logger is already scoped with the target and backend names. Backends
	// return errors rather than logging them; the logger is for debug
	// detail only.
	Logger *slog.Logger
	// QuarantineDir is this target's own quarantine directory.
	QuarantineDir string
	// StateDir is the agent's state directory, shared by all targets;
	// backends key their files in it by store, not by target name.
	StateDir string
	// ScratchDir holds short-lived scratch files (unlinked on creation).
	ScratchDir string
	// GracePeriod is how long to keep draining a replaced file.
	GracePeriod time.Duration
	// LockKey is the key (the kind's LockKey) the run holds the lock on,
	// "" when unknown. A file backend resolves its store again when it
	// starts and refuses (ErrChanged) a store that resolves elsewhere by
	// then, so that the lock, the recovery records and the files it
	// changes always name one store.
	LockKey string
	// Space is the free-space budget the backend claims every file it
	// writes from (see fsutil.Space): the agent shares one among the runs
	// it has in flight at once, so that runs writing to one file system
	// together leave the headroom Papyra's appends need. Nil: the
	// backend's own.
	Space *fsutil.Space
}

// Factory builds a backend for one target.
type Factory func(t config.Target, env Env) (Backend, error)

// Kind is what the registry knows about one kind of store, before and
// without building a backend: what `status` and the metrics need must
// not require the store's secrets or a connection.
type Kind struct {
	// New builds a backend for a target of this kind.
	New Factory
	// LockKey names a target's store independently of the target's
	// name, from its configuration alone: two targets for one store
	// return the same key (for files, the resolved real path). It may
	// read the filesystem but changes nothing and reads no secret. Runs
	// of a store are serialized with a flock(2) on its key; nil means
	// the kind needs no lock (nothing persisted).
	LockKey func(t config.Target) (string, error)
	// Reports lists the optional Stats groups this kind's backends fill,
	// so that their counters are exported (at zero) before the first run.
	Reports Reports
}

// Reports is a set of optional Stats groups.
type Reports uint8

// The optional Stats groups.
const (
	ReportsSegments Reports = 1 << iota // Stats.Segments
	ReportsStream                       // Stats.Stream
)

// Has reports whether r includes all of g.
func (r Reports) Has(g Reports) bool { return r&g == g }
