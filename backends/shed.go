package backends

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"
)

// Shedder is implemented by backends whose store can give up whole old
// parts of itself in an emergency (the target's keep_free: its file
// system is running out of space). The agent finds it with a type
// assertion, never by the target's kind, and calls it under the lock on
// the kind's LockKey, after Recover.
//
// An emergency drop is not retention: it removes records retention would
// keep, to keep the writer from failing on a full disk. So a Shedder
// offers only what can go whole without touching the part the writer
// appends to, and says for each part when its newest record was written,
// which is what the agent orders drops by across stores and what
// ShedPolicy.MinKeep is judged against.
type Shedder interface {
	// ShedCandidates reads the store and lists every part that is not
	// being written to (the active file never is one), oldest position
	// first. It changes nothing. A store whose timestamps are not Unix
	// time (Policy.CheckClock) returns an error wrapping ErrUnsafe: its
	// ages cannot be judged. A missing store returns an error wrapping
	// ErrNothingToDo.
	ShedCandidates(ctx context.Context, p ShedPolicy) ([]ShedSegment, error)
	// Shed removes one candidate whole, by its identity (not its name:
	// the writer may have renamed it since), after checking again that
	// it is the same part at the same size and still older than
	// p.MinKeep. Lines Papyra cannot read are quarantined first; when
	// that fails (a full disk), nothing is removed. Its contract is
	// Backend.Apply's: a kill at any moment leaves a state Recover
	// finishes or undoes, and nothing the writer appends is lost.
	Shed(ctx context.Context, p ShedPolicy, s ShedSegment) (ShedStats, error)
}

// ShedPolicy is what an emergency drop may remove.
type ShedPolicy struct {
	// Now is the time ages are judged at.
	Now time.Time
	// MinKeep: a part whose newest record is younger than this is never
	// a candidate (ShedSegment.Keep says so).
	MinKeep time.Duration
	// Cache, when set, spares reading parts read before that have not
	// changed since.
	Cache *ShedCache
}

// Cutoff is the newest time, in Unix seconds, a part may hold and still
// be shed under p.
func (p ShedPolicy) Cutoff() float64 {
	return float64(p.Now.Add(-p.MinKeep).UnixNano()) / 1e9
}

// CheckClock refuses emergency drops on a store written with Papyra's
// default monotonic clock (see Policy.CheckClock): its timestamps are
// seconds since boot, so no age, min_keep included, can be judged. newest
// is the store's newest finite timestamp, -Inf when it has none (no
// evidence either way: each part is then judged by its modification
// time).
func (p ShedPolicy) CheckClock(store string, newest float64, fix string) error {
	if math.IsInf(newest, 0) || math.IsNaN(newest) || newest >= MinUnixTime {
		return nil
	}
	return fmt.Errorf("%w: emergency drops on %s: the newest timestamp is %s, which is seconds since boot, not Unix time, "+
		"so no record's age (min_keep) can be judged and nothing is dropped. "+
		"Fix: create the ActorSystem with time_fn=time.time, or %s",
		ErrUnsafe, store, strconv.FormatFloat(newest, 'f', -1, 64), fix)
}

// Newest sources: what ShedSegment.Newest was judged from.
const (
	// NewestFromRecords: the newest timestamp among the part's records.
	NewestFromRecords = "records"
	// NewestFromMtime: the part holds no record whose time can be read
	// (every timestamp null, missing or not a number, only corrupt
	// lines, or lines too deep to judge), so its modification time
	// stands in: the last write to it, which is no earlier than the
	// writing of any record it holds.
	NewestFromMtime = "mtime"
)

// ShedSegment is one part of a store an emergency drop could remove.
type ShedSegment struct {
	// Name is the part's path when it was listed (for messages: the
	// writer may rename it).
	Name string
	// Position orders the parts of one store: higher is older (a
	// rotating store's suffix).
	Position int
	// Dev, Ino and Size identify it: Shed removes that inode at that
	// size or nothing.
	Dev, Ino uint64
	Size     int64
	// Records are the records it holds; Other the lines that are not
	// (corrupt, a torn line, lines too deep to judge), which a drop
	// quarantines (corrupt) or removes with it.
	Records int64
	Other   int64
	// Oldest and Newest are the time span of its records (Unix seconds)
	// when HasTimes.
	Oldest, Newest float64
	HasTimes       bool
	// Time is what the part is ordered by and judged against MinKeep:
	// Newest, or the modification time when there is no usable
	// timestamp (TimeFrom says which). Parts with lines whose timestamp
	// cannot be read besides datable records take the later of the two.
	Time     float64
	TimeFrom string
	// Keep is why the part may not be shed now ("" when it may): it
	// holds a record younger than min_keep, or a future-dated one.
	Keep string
}

// ShedStats describe one emergency drop.
type ShedStats struct {
	// Records removed with the part; Other lines removed or quarantined
	// that were not records.
	Records, Other int64
	// Bytes is the part's size.
	Bytes int64
	// Quarantined corrupt lines, and where they went.
	Quarantined    int64
	QuarantineFile string
	// Oldest and Newest are the time span of the removed records when
	// HasTimes.
	Oldest, Newest float64
	HasTimes       bool
}

// ShedCache remembers what a Shedder read of parts that have not changed
// since (same inode, size, modification and change times), so that a
// check repeated every minute while keep_free cannot be met does not read
// every rotated segment again: nothing appends to a rotated segment. It
// is safe for concurrent use; the zero value is not, use NewShedCache.
type ShedCache struct {
	mu sync.Mutex
	m  map[ShedKey]ShedFacts
	// hits counts lookups that found an entry (for tests and figures).
	hits int64
}

// ShedKey identifies one unchanged part.
type ShedKey struct {
	Dev, Ino         uint64
	Size             int64
	MtimeNs, CtimeNs int64
}

// ShedFacts is what reading a part found, before any policy is applied.
type ShedFacts struct {
	Records, Other int64
	Oldest, Newest float64
	HasTimes       bool
	// Undated is true when some line's time could not be read.
	Undated bool
	// NewestFinite is the newest finite timestamp (-Inf when none).
	NewestFinite float64
}

// maxShedCache bounds a ShedCache: when full, it starts over.
const maxShedCache = 1 << 16

// NewShedCache returns an empty cache.
func NewShedCache() *ShedCache { return &ShedCache{m: map[ShedKey]ShedFacts{}} }

// Get returns the facts of k, if known. A nil cache knows nothing.
func (c *ShedCache) Get(k ShedKey) (ShedFacts, bool) {
	if c == nil {
		return ShedFacts{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	f, ok := c.m[k]
	if ok {
		c.hits++
	}
	return f, ok
}

// Put remembers f for k, and forgets parts of the same inode that differ.
func (c *ShedCache) Put(k ShedKey, f ShedFacts) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxShedCache {
		clear(c.m) // parts long gone; bounded memory matters more
	}
	for old := range c.m {
		if old.Dev == k.Dev && old.Ino == k.Ino {
			delete(c.m, old)
		}
	}
	c.m[k] = f
}

// Hits is how many lookups found an entry.
func (c *ShedCache) Hits() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits
}
