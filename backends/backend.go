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
	"log/slog"
	"strings"
	"time"

	"github.com/papyra-compact/papyra-compact/config"
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
}

// Progress receives the bytes done out of the bytes to do in one phase
// ("scan", "rewrite", …). Total may grow while a live writer appends. In
// a phase whose name ends in " entries" (stream backends: "trim
// entries") done and total count entries instead; see CountsEntries.
type Progress func(phase string, done, total int64)

// CountsEntries reports whether progress in phase counts entries rather
// than bytes.
func CountsEntries(phase string) bool { return strings.HasSuffix(phase, " entries") }

// Properties describe what a backend needs and guarantees, so the agent
// never has to switch on concrete types.
type Properties struct {
	// NeedsFileLock is true when runs must be serialized with a flock(2)
	// on LockKey.
	NeedsFileLock bool
	// AtomicSwap is true when the store is replaced in one rename(2): a
	// reader sees either the old or the new content, never a mix.
	AtomicSwap bool
}

// Plan is a decision about one store, made by Backend.Plan. It may hold
// open resources (a descriptor on the store, a scratch file) and must be
// closed, whether or not it was applied.
type Plan interface {
	// Stats is what applying the plan would do, as of planning time.
	Stats() Stats
	// Close releases the plan's resources. It is idempotent.
	Close() error
}

// Backend compacts one store. Implementations are not safe for concurrent
// use; the agent runs one compaction per backend at a time and serializes
// processes with a lock on LockKey.
type Backend interface {
	// Properties are fixed for the life of the backend.
	Properties() Properties
	// LockKey names the store independently of the target's name: two
	// targets for one store return the same key (for files, the resolved
	// real path). It may touch the filesystem but changes nothing.
	LockKey() (string, error)
	// Plan reads the store and decides what retention removes. It changes
	// nothing on disk. A missing store returns an error wrapping
	// ErrNothingToDo. Killing the process during Plan leaves nothing behind.
	Plan(ctx context.Context, p Policy) (Plan, error)
	// Apply carries out a plan made by the same backend. Either the store
	// ends up compacted and every record appended meanwhile is kept, or the
	// original stays intact; a kill at any moment leaves a state that the
	// next Apply (after Recover) finishes or undoes. Apply must run under
	// the lock on LockKey.
	Apply(ctx context.Context, plan Plan) (Stats, error)
	// Recover finishes or undoes what a killed run left behind (temp files,
	// half-done swaps). It runs under the lock before every Plan and is
	// idempotent.
	Recover(ctx context.Context) error
	// Close releases the backend's resources.
	Close() error
}

// Stats describe one compaction, planned or done. Counts are records
// (lines of a file store, entries of a stream).
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

	// Segment counts of a rotating store (zero for single-file stores):
	// segments removed whole, rewritten, and left as they were.
	SegmentsDropped   int64
	SegmentsRewritten int64
	SegmentsUntouched int64
	// BytesRead is how many bytes of the store the run read (planning
	// and copying); a rotating store drops whole segments beyond the
	// retention cut without reading them.
	BytesRead int64

	// HeldBack lists, per consumer group of a stream store, the entries
	// retention would have removed but the group still needs (pending or
	// not yet delivered), so they were kept.
	HeldBack []HeldBack
	// Estimated is true when the removal counts are estimates: a planned
	// stream trim by entry ID that was not counted entry by entry (Apply
	// reports what the server actually removed).
	Estimated bool
}

// HeldBack is what one consumer group kept in one stream.
type HeldBack struct {
	Stream  string // the stream key
	Group   string // the consumer group
	Entries int64  // entries kept for it that retention would remove
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
}

// Factory builds a backend for one target.
type Factory func(t config.Target, env Env) (Backend, error)
