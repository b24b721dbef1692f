package redisstream

import (
	"context"
	"fmt"
	"math"

	"github.com/papyra-compact/papyra-compact/backends"
)

const (
	// walkCap is the largest max_records for which Plan finds the count
	// boundary by reading the newest entries (when nothing else needs the
	// walk); above it, and only without consumer groups, Plan reads the
	// oldest entries beyond max_records instead (countUnreadable) and
	// Apply trims up to the last one read.
	walkCap = 100_000
	// guardBatch, guardWindow and guardMax shape the age-boundary check:
	// entries just below the ID boundary are read at most guardBatch at a time,
	// and the check ends after guardWindow entries in a row that Papyra
	// would drop, or after guardMax entries in all.
	guardBatch  = 100
	guardWindow = 100
	guardMax    = 10_000
)

// cutoffOf is Papyra's age cutoff, now - max_age_seconds, in Unix seconds.
func cutoffOf(pol backends.Policy) float64 {
	c, _ := pol.AgeCutoff()
	return c
}

// cutoffID is the age boundary by ID: the first ID of the millisecond of
// now - max_age_seconds, computed in integer nanoseconds (a float of Unix
// seconds has only about 0.2 µs of precision today).
func cutoffID(pol backends.Policy) streamID {
	t, _ := pol.AgeCutoffTime()
	return idAt(t)
}

// planByID plans a stream without reading it whole: age is the ID time
// (a MINID boundary, checked by guard), count and bytes walk back from the
// newest entry as far as they need, or count removes the oldest entries
// beyond max_records (sp.maxlen, read by countUnreadable).
func (b *Backend) planByID(ctx context.Context, sp *streamPlan, pol backends.Policy) error {
	ret := pol.Retention
	s := &sp.stats
	var age streamID
	if ret.MaxAgeSeconds != nil {
		g := &guard{age: cutoffID(pol), cutoff: cutoffOf(pol)}
		if err := b.runGuard(ctx, sp, g); err != nil {
			return err
		}
		age = g.age
		g.note(sp)
		if !sp.first.less(age) {
			age = minID // nothing below it
		}
	}
	n, _ := pol.CountLimit()
	_, groups := sp.floor()
	walk := ret.MaxTotalBytes != nil || n > 0 && (n <= walkCap || groups)

	estAge := sp.estimateBelow(age)
	streamStats(s).Estimated = estAge > 0 && estAge < sp.length
	if !walk {
		sp.boundary = age
		s.RemovedAge = estAge
		if n > 0 && sp.length-estAge > n {
			sp.maxlen = n
			s.RemovedCount = sp.length - estAge - n
		}
		return b.oldestFrom(ctx, sp, age)
	}

	w, err := b.walk(ctx, sp, age, n, ret.MaxTotalBytes)
	if err != nil {
		return err
	}
	removed := sp.length - w.kept
	sp.boundary = w.boundary
	if w.stop != stopEnd {
		sp.walked = w.kept
	}
	switch w.stop {
	case stopEnd:
		// Everything fits and nothing is below the age boundary.
	case stopAge:
		s.RemovedAge, streamStats(s).Estimated = removed, false
	default:
		s.RemovedAge = min(estAge, removed)
		rest := removed - s.RemovedAge
		if n > 0 {
			s.RemovedCount = min(rest, max(0, sp.length-s.RemovedAge-n))
		}
		s.RemovedBytes = rest - s.RemovedCount
	}
	s.OldestKept, s.HasOldest = w.oldest, w.hasOldest
	return nil
}

// countUnreadable reads the entries retention removes (below the
// boundary and the groups' floor, and with maxlen the oldest beyond
// it), in sized steps, to
// tell the unreadable ones apart: without quarantine they are removed
// too, but counted as such (Stats.Stream.RemovedCorrupt) and named in the log,
// not counted as records. It reads only what the run removes.
func (b *Backend) countUnreadable(ctx context.Context, sp *streamPlan) error {
	s := &sp.stats
	todo := s.Removed()
	if sp.boundary.isZero() && sp.maxlen == 0 || sp.maxlen > 0 && todo <= 0 {
		return nil
	}
	end := "+"
	var bound streamID
	if !sp.boundary.isZero() && sp.maxlen == 0 {
		bound = sp.boundary
		if f, ok := sp.floor(); ok && f.less(bound) {
			bound = f
		}
		end = "(" + bound.String()
		// Every entry below the boundary, not the estimate of how many
		// there are: the cuts must cover all that the trim removes, or
		// Apply's steps past them would have to read the oldest entry
		// inside a script (several times its cost when it is large).
		todo = math.MaxInt64
	}
	k := newClassifier()
	rd := b.newReader(sp.key, "-", end, false, b.cfg.batch)
	var (
		read, belowAge int64
		cut            cutter
		exhausted      bool
	)
	// With max_records and an age boundary, age may remove more than
	// the estimate said (and than max_records does): after the oldest
	// todo entries, the read goes on to the boundary, for the same reason.
	toAge := sp.maxlen > 0 && !sp.boundary.isZero()
	for read < todo || toAge {
		if read >= todo {
			toAge = false
			if !cut.last.less(sp.boundary) {
				break // read past it already
			}
			bound, todo = sp.boundary, math.MaxInt64
			rd.end, rd.ended = "("+bound.String(), false
		}
		msgs, err := rd.next(ctx, todo-read)
		if err != nil {
			return err
		}
		if len(msgs) == 0 {
			exhausted = true
			break
		}
		for _, m := range msgs {
			id, err := parseID(m.id)
			if err != nil {
				return b.fail("XRANGE", sp.key, err)
			}
			cut.add(id, m.size())
			if id.less(sp.boundary) {
				belowAge++
			}
			if v := k.entry(m, false); v.corrupt {
				sp.addUnreadable(id, m.size(), v.reason)
			}
		}
		read += int64(len(msgs))
	}
	sp.cuts, sp.readBelow = cut.end()
	sp.cutCounts, sp.readCount = cut.counts, read
	if exhausted && sp.readBelow.less(bound) {
		sp.readBelow = bound // every entry below it was read
	}
	switch {
	case sp.maxlen > 0 && !sp.boundary.isZero() && !sp.readBelow.less(sp.boundary):
		// Every entry below the age boundary was read: what each rule
		// removes is known, not estimated from the IDs.
		s.RemovedAge = belowAge
		s.RemovedCount = max(0, sp.length-belowAge-sp.maxlen)
		streamStats(s).Estimated = false
	case sp.maxlen == 0 && exhausted && bound == sp.boundary && s.RemovedCount == 0 && s.RemovedBytes == 0:
		// Age alone, and every entry below its boundary read (no group's
		// floor below it): the count is exact.
		s.RemovedAge = read
		streamStats(s).Estimated = false
	}
	// They are not records: take them from the rules, oldest first.
	streamStats(s).RemovedCorrupt = sp.unreadable
	s.RecordsBefore -= sp.unreadable
	left := sp.unreadable
	for _, r := range []*int64{&s.RemovedAge, &s.RemovedCount, &s.RemovedBytes} {
		d := min(left, *r)
		*r -= d
		left -= d
	}
	return nil
}

// addUnreadable counts an entry Papyra cannot read that the run removes
// without quarantine, and names it in the log (the first maxLogged).
func (sp *streamPlan) addUnreadable(id streamID, size int64, reason string) {
	sp.unreadable++
	sp.unreadableIDs = append(sp.unreadableIDs, id)
	if len(sp.unreadableLog) < maxLogged {
		sp.unreadableLog = append(sp.unreadableLog, corruptEntry{id: id, size: size, reason: reason})
	}
}

// Why a walk stopped.
const (
	stopEnd   = iota // reached the oldest entry: everything is kept
	stopAge          // reached the age boundary
	stopCount        // kept max_records entries
	stopBytes        // the next record did not fit max_total_bytes
)

type walkResult struct {
	kept      int64    // entries at or above the boundary
	boundary  streamID // zero for stopEnd
	stop      int
	oldest    float64 // smallest timestamp among the kept records
	hasOldest bool
}

// walk reads the stream newest first, in steps sized by sizer, from the
// newest entry at planning time (entries added since are never counted),
// until the age boundary, the n-th entry, or the first record that does
// not fit budget (Papyra's newest-first run of repr sizes, §4.2).
func (b *Backend) walk(ctx context.Context, sp *streamPlan, age streamID, n int64, budget *int64) (walkResult, error) {
	var (
		w        walkResult
		k        = newClassifier()
		total    int64
		lastKept streamID
		end      = "-"
	)
	// The walk never reads an entry it does not need: none below the age
	// boundary (the range ends there), and with max_records no more than
	// the one past the n-th. Each read it spares could be a large entry
	// met by a step sized on small ones.
	if !age.isZero() {
		end = age.String()
	}
	rd := b.newReader(sp.key, sp.last.String(), end, true, b.cfg.batch)
	for {
		var limit int64
		if n > 0 {
			limit = n - w.kept + 1
		}
		msgs, err := rd.next(ctx, limit)
		if err != nil {
			return w, err
		}
		if len(msgs) == 0 {
			if !age.isZero() && sp.first.less(age) {
				w.stop, w.boundary = stopAge, age
			}
			return w, nil // stopEnd, or every entry at or above age read
		}
		for _, m := range msgs {
			id, err := parseID(m.id)
			if err != nil {
				return w, b.fail("XREVRANGE", sp.key, err)
			}
			if !age.isZero() && id.less(age) {
				w.stop, w.boundary = stopAge, age
				return w, nil
			}
			if n > 0 && w.kept == n {
				w.stop, w.boundary = stopCount, lastKept
				return w, nil
			}
			v := k.entry(m, budget != nil)
			// Unreadable and Unsure entries are not records: they never
			// use up max_total_bytes (as in the file backends).
			if budget != nil && !v.corrupt && !v.unsure {
				if total+v.size > *budget {
					w.stop, w.boundary = stopBytes, lastKept
					if w.kept == 0 {
						w.boundary = sp.last.next()
					}
					return w, nil
				}
				total += v.size
			}
			if v.hasTS && !v.corrupt && !v.unsure && (!w.hasOldest || v.ts < w.oldest) {
				w.oldest, w.hasOldest = v.ts, true
			}
			w.kept++
			lastKept = id
		}
	}
}

// oldestScan bounds how many entries oldestFrom reads past unreadable
// ones before it gives up.
const oldestScan = 10

// oldestFrom lowers the oldest kept timestamp to that of the first record
// at or after id, reading one entry at a time (by position: Papyra's
// timestamps are not sorted, but the first kept entry is the oldest in
// all but the rarest cases).
func (b *Backend) oldestFrom(ctx context.Context, sp *streamPlan, id streamID) error {
	start := "-"
	if !id.isZero() {
		start = id.String()
	}
	k := newClassifier()
	for range oldestScan {
		msgs, err := b.xrange(ctx, sp.key, start, "+", 1, false)
		if err != nil || len(msgs) == 0 {
			return err
		}
		if v := k.entry(msgs[0], false); v.hasTS && !v.corrupt {
			if !sp.stats.HasOldest || v.ts < sp.stats.OldestKept {
				sp.stats.OldestKept, sp.stats.HasOldest = v.ts, true
			}
			return nil
		}
		start = "(" + msgs[0].id
	}
	return nil
}

// guard checks the age boundary against the records' own timestamps. The
// boundary is an ID time, the Redis server's clock at XADD; Papyra's
// reader compares the JSON timestamp, taken on Papyra's host just before
// the write. Normally the ID time is the later one, so every entry below
// the boundary is one Papyra's reader drops too. If Papyra's clock runs
// ahead of the server's, entries just below the boundary can carry a
// timestamp Papyra would keep: the guard reads back from the boundary and
// lowers it below every such entry, until guardWindow entries in a row
// are ones Papyra drops.
type guard struct {
	age       streamID
	cutoff    float64
	seen      int
	sinceMove int
	moved     int64
	gaveUp    bool
}

// feed takes the next entry below the boundary, newest first, and
// whether Papyra's reader would keep it by age; it reports whether the
// check is done.
func (g *guard) feed(id streamID, kept bool) bool {
	g.seen++
	g.sinceMove++
	if kept {
		g.age, g.sinceMove = id, 0
		g.moved++
	}
	if g.sinceMove >= guardWindow {
		return true
	}
	if g.seen >= guardMax {
		g.gaveUp = true
		return true
	}
	return false
}

// note reports in sp's stats what the guard did.
func (g *guard) note(sp *streamPlan) {
	if g.moved > 0 {
		sp.stats.Notes = append(sp.stats.Notes, fmt.Sprintf("age boundary of %s lowered below %d entries whose JSON timestamp is newer than their ID (clock skew between Papyra's host and Redis?)", sp.key, g.moved))
	}
	if g.gaveUp {
		sp.stats.Notes = append(sp.stats.Notes, fmt.Sprintf("age boundary of %s: still finding newer timestamps %d entries below the ID boundary; stopped looking", sp.key, guardMax))
	}
}

// runGuard feeds the guard from Redis.
func (b *Backend) runGuard(ctx context.Context, sp *streamPlan, g *guard) error {
	if !sp.first.less(g.age) {
		return nil
	}
	k := newClassifier()
	rd := b.newReader(sp.key, "("+g.age.String(), "-", true, guardBatch)
	for {
		// No more than the check can still use: what completes the
		// window, within guardMax.
		msgs, err := rd.next(ctx, int64(min(guardWindow-g.sinceMove, guardMax-g.seen)))
		if err != nil || len(msgs) == 0 {
			return err
		}
		for _, m := range msgs {
			id, err := parseID(m.id)
			if err != nil {
				return b.fail("XREVRANGE", sp.key, err)
			}
			if g.feed(id, k.entry(m, false).keptByAge(g.cutoff)) {
				return nil
			}
		}
	}
}
