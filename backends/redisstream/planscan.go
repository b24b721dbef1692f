package redisstream

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/backends/internal/pyjson"
)

// tally counts the entries one read went through, by kind.
type tally struct {
	entries, corrupt, unsure int64
	// passed are the records age keeps, passedBytes their repr sizes.
	passed, passedBytes int64
}

func (t tally) minus(u tally) tally {
	return tally{
		entries: t.entries - u.entries, corrupt: t.corrupt - u.corrupt, unsure: t.unsure - u.unsure,
		passed: t.passed - u.passed, passedBytes: t.passedBytes - u.passedBytes,
	}
}

// count adds one entry; pass is whether age keeps it (for records).
func (t *tally) count(v verdict, pass bool) {
	t.entries++
	switch {
	case v.corrupt:
		t.corrupt++
	case v.unsure:
		t.unsure++
	case pass:
		t.passed++
		t.passedBytes += v.size
	}
}

// mark is an entry the scan passed, with the tally of those before it.
type mark struct {
	id     streamID
	before tally
	ok     bool
}

// scanCounts are what a scan of the whole stream counted exactly, for
// holdBack (the other plans estimate them).
type scanCounts struct {
	above int64              // entries at or above the boundary
	from  map[streamID]int64 // per group floor: entries at or above it
}

// floorCounter counts, in one pass in ID order, the entries at or above
// each group floor: a few words per group, however long the stream.
type floorCounter struct {
	ids   []streamID // distinct floors, ascending
	below []int64
	next  int
	n     int64
}

func newFloorCounter(groups []groupFloor) *floorCounter {
	c := &floorCounter{}
	for _, g := range groups {
		c.ids = append(c.ids, g.floor)
	}
	slices.SortFunc(c.ids, streamID.compare)
	c.ids = slices.Compact(c.ids)
	c.below = make([]int64, len(c.ids))
	return c
}

func (c *floorCounter) add(id streamID) {
	for c.next < len(c.ids) && !id.less(c.ids[c.next]) {
		c.below[c.next] = c.n
		c.next++
	}
	c.n++
}

func (c *floorCounter) from() map[streamID]int64 {
	m := make(map[streamID]int64, len(c.ids))
	for i, id := range c.ids {
		if i >= c.next {
			c.below[i] = c.n
		}
		m[id] = c.n - c.below[i]
	}
	return m
}

// ageRule is Papyra's age rule as a test on one record: by the JSON
// timestamp (age_by timestamp), or by ID at the boundary the guard
// checks against the timestamps just below it (guard non-nil: the scan
// holds back the entries below the ID boundary until it has).
type ageRule struct {
	none, byTS bool
	cutoff     float64
	guard      *guard
	age        streamID // by ID, once the guard has checked it
}

func newAgeRule(pol backends.Policy, byTS bool) *ageRule {
	r := &ageRule{none: pol.Retention.MaxAgeSeconds == nil, byTS: byTS}
	if r.none {
		return r
	}
	r.cutoff = cutoffOf(pol)
	if !byTS {
		r.guard = &guard{age: cutoffID(pol), cutoff: r.cutoff}
		r.age = r.guard.age
	}
	return r
}

func (r *ageRule) pass(id streamID, v verdict) bool {
	switch {
	case r.none:
		return true
	case r.byTS:
		return v.keptByAge(r.cutoff)
	}
	return !id.less(r.age)
}

// heldEntry is an entry the scan holds back until the guard has checked
// the age boundary.
type heldEntry struct {
	id   streamID
	v    verdict
	size int64
}

// survivorDates are the dates of the records retention keeps.
type survivorDates struct {
	oldest               float64
	future               int64
	newestFuture         float64
	hasOldest, ageFuture bool
}

func (d *survivorDates) add(pol backends.Policy, v verdict) {
	if !v.hasTS {
		return
	}
	if !d.hasOldest || v.ts < d.oldest {
		d.oldest, d.hasOldest = v.ts, true
	}
	// Future-dated survivors; those retention removes are not counted
	// (a consumer group may still hold them back).
	if d.ageFuture && pol.Future(v.ts) {
		d.future++
		d.newestFuture = max(d.newestFuture, v.ts)
	}
}

// planScan reads the whole stream, oldest first, batch by batch up to the
// newest entry at planning time, and plans exactly as Papyra's reader
// would apply retention to it (§4.2): age, then the last max_records,
// then the newest-first run that fits max_total_bytes. It is used for
// age_by timestamp, and for quarantine_corrupt, which must look at every
// entry anyway.
//
// It keeps counts, not entries: its memory does not grow with the
// stream (only with what the run removes one by one, the records age
// drops above the boundary, and the entries to quarantine). When
// max_records or max_total_bytes removes records (known once the scan
// has counted more than they keep), one walk back from the newest entry
// finds which survive (keepNewest); it reads only what is kept.
//
// The survivors' oldest ID becomes the trim boundary; records age drops
// above it (timestamps out of order, or age by timestamp) are deleted
// one by one.
func (b *Backend) planScan(ctx context.Context, sp *streamPlan, pol backends.Policy, prog *progress) error {
	limit, bySize := pol.ByteLimit()
	n, byCount := pol.CountLimit()
	s := &sp.stats
	rule := newAgeRule(pol, b.cfg.ageByTimestamp)
	pass := rule.pass
	var ages *backends.Ages
	if !pol.Now.IsZero() {
		// Every entry is read anyway: dating it costs nothing.
		ages = &backends.Ages{}
		s.Ages = ages
	}
	var (
		k      = newClassifier()
		floors = newFloorCounter(sp.groups)
		cut    cutter
		tot    tally
		// first is the first record age keeps, unsure the first Unsure
		// entry that age keeps or whose timestamp could not be read:
		// the boundary is no higher than either. backlog is the first
		// unreadable entry past quarantineMax: nothing at or above it
		// is trimmed this run (it would go unquarantined).
		first, unsure, backlog mark
		// afterFirst and afterUnsure are the records age drops above
		// first (until count or bytes bind) and above unsure.
		afterFirst  = idList{max: b.cfg.deleteMax}
		afterUnsure = idList{max: b.cfg.deleteMax}
		// binds: max_records or max_total_bytes removes records, and
		// only keepNewest knows where the boundary is.
		binds      bool
		corruptIDs []streamID
		newest     = math.Inf(-1)
		dates      = survivorDates{ageFuture: ages != nil}
	)
	// count takes one entry into the plan, in ID order.
	count := func(id streamID, v verdict, size int64) {
		record := !v.corrupt && !v.unsure
		ok := pass(id, v)
		if ages != nil && record {
			ages.Add(pol, v.ts, v.hasTS, size)
		}
		if record && v.hasTS && v.ts > newest && !math.IsInf(v.ts, 1) {
			newest = v.ts
		}
		if v.corrupt {
			switch {
			case b.cfg.quarantine && len(sp.corrupt) < b.cfg.quarantineMax:
				sp.corrupt = append(sp.corrupt, corruptEntry{id: id, size: size, reason: v.reason})
			case b.cfg.quarantine:
				if !backlog.ok {
					backlog = mark{id: id, before: tot, ok: true}
				}
			default:
				corruptIDs = append(corruptIDs, id)
				if len(sp.unreadableLog) < maxLogged {
					sp.unreadableLog = append(sp.unreadableLog, corruptEntry{id: id, size: size, reason: v.reason})
				}
			}
		}
		if v.unsure && (ok || !v.hasTS) && !unsure.ok {
			unsure = mark{id: id, before: tot, ok: true}
		}
		if record && ok && !first.ok {
			first = mark{id: id, before: tot, ok: true}
		}
		if record && !ok && first.ok && !binds {
			afterFirst.add(id)
		}
		if record && !ok && unsure.ok {
			afterUnsure.add(id)
		}
		if record && ok && !binds {
			dates.add(pol, v)
		}
		tot.count(v, ok)
		floors.add(id)
		cut.add(id, size)
		if !binds && (byCount && tot.passed > n || bySize && tot.passedBytes > limit) {
			// The boundary is the walk's, or unsure's.
			binds = true
			afterFirst = idList{}
		}
	}
	// By ID, the entries below the boundary wait in held (the newest
	// guardMax of them; older ones are below any boundary the guard can
	// set) until the scan passes it: the guard checks them newest first,
	// and they are counted with the boundary it leaves. Reading them
	// again instead would double what the scan reads there, where the old
	// large entries are.
	var held []heldEntry
	checked := rule.guard == nil
	check := func() {
		for i := len(held) - 1; i >= 0; i-- {
			if rule.guard.feed(held[i].id, held[i].v.keptByAge(rule.cutoff)) {
				break
			}
		}
		rule.age, checked = rule.guard.age, true
		rule.guard.note(sp)
		for _, e := range held {
			count(e.id, e.v, e.size)
		}
		held = nil
	}
	rd := b.newReader(sp.key, "-", sp.last.String(), false, b.cfg.batch)
	for {
		msgs, err := rd.next(ctx, 0)
		if err != nil {
			return err
		}
		if len(msgs) == 0 {
			break
		}
		for _, m := range msgs {
			id, err := parseID(m.id)
			if err != nil {
				return b.fail("XRANGE", sp.key, err)
			}
			v := k.entry(m, bySize)
			switch {
			case checked:
				count(id, v, m.size())
			case id.less(rule.guard.age):
				if len(held) == guardMax {
					count(held[0].id, held[0].v, held[0].size)
					held = held[1:]
				}
				held = append(held, heldEntry{id: id, v: v, size: m.size()})
			default:
				check()
				count(id, v, m.size())
			}
		}
		prog.add(int64(len(msgs)))
	}
	if !checked {
		check()
	}

	s.RecordsBefore = tot.entries - tot.corrupt - tot.unsure
	s.Quarantined = int64(len(sp.corrupt))
	if pol.Retention.MaxAgeSeconds != nil && b.cfg.ageByTimestamp {
		if err := pol.CheckClock(sp.key, newest, fixAgeByID); err != nil {
			return err
		}
	}
	survivors := tot.passed
	if byCount && survivors > n {
		survivors = n
	}
	s.RemovedAge = s.RecordsBefore - tot.passed
	s.RemovedCount = tot.passed - survivors

	// The boundary is the oldest survivor; with none, everything planned.
	boundary := sp.last.next()
	var above tally
	fit := survivors
	del := &afterFirst
	if binds {
		w, err := b.keepNewest(ctx, sp, pol, pass, survivors, limit, bySize)
		if err != nil {
			return err
		}
		fit, above, del, dates = w.fit, w.above, &w.del, w.dates
		if fit > 0 {
			boundary = w.boundary
		}
	} else if first.ok {
		boundary, above = first.id, tot.minus(first.before)
	}
	if bySize {
		s.RemovedBytes = survivors - fit
	}
	if dates.hasOldest {
		s.OldestKept, s.HasOldest = dates.oldest, true
	}
	s.Future, s.NewestFuture = dates.future, dates.newestFuture

	// An Unsure entry that age keeps (or whose timestamp could not be
	// read) stays: Papyra may read it. The boundary goes no higher than
	// it; records above it that count or bytes dropped stay too (keeping
	// errs on the safe side), those age drops are deleted.
	if unsure.ok && unsure.id.less(boundary) {
		kept := tot.minus(unsure.before).passed - fit
		d := min(kept, s.RemovedBytes)
		s.RemovedBytes -= d
		s.RemovedCount -= min(kept-d, s.RemovedCount)
		boundary, above, del = unsure.id, tot.minus(unsure.before), &afterUnsure
	}
	// Records to delete one by one past deleteMax stay, with the debt.
	s.RemovedAge -= del.dropped
	owed := del.dropped
	if del.dropped > 0 {
		s.Notes = append(s.Notes, fmt.Sprintf("%d records of %s that age drops above the trim wait for the next run (a run deletes at most %d one by one a stream)",
			del.dropped, sp.key, b.cfg.deleteMax))
	}
	pinned := backlog.ok && backlog.id.less(boundary)
	if pinned {
		// Below it, every record goes (none survives below the
		// boundary): age's first, then the oldest count drops, then
		// bytes'. Records age drops above the old boundary are still
		// deleted; those between stay for the next run.
		below := backlog.before
		gone := below.passed
		before := s.Removed()
		s.RemovedAge = below.entries - below.corrupt - below.unsure - below.passed + int64(len(del.ids))
		s.RemovedCount = min(gone, tot.passed-survivors)
		s.RemovedBytes = gone - s.RemovedCount
		boundary, above = backlog.id, tot.minus(backlog.before)
		owed += before - s.Removed()
		s.Notes = append(s.Notes, backlogNote(sp.key, tot.corrupt-int64(len(sp.corrupt)), b.cfg.quarantineMax, before-s.Removed()))
	}
	if pinned || del.dropped > 0 {
		sp.backlog = backends.Debt{Reason: backends.DebtBacklog, Detail: sp.key, Records: owed, Bytes: -1}
	}
	if sp.first.less(boundary) {
		sp.boundary = boundary
	}
	sp.del = del.ascending()
	sp.keptUnsure = above.unsure
	if sp.keptUnsure > 0 {
		s.Notes = append(s.Notes, fmt.Sprintf("%d entries of %s nested deeper than %d levels left in place and not counted as records: whether Papyra reads them depends on its Python version",
			sp.keptUnsure, sp.key, pyjson.DefaultMaxDepth))
	}
	if !b.cfg.quarantine {
		below := sort.Search(len(corruptIDs), func(i int) bool { return !corruptIDs[i].less(boundary) })
		sp.unreadableIDs = corruptIDs[:below]
		sp.unreadable = int64(below)
		streamStats(s).RemovedCorrupt = sp.unreadable
		sp.keptUnreadable += above.corrupt
		// Log only those retention removes.
		sp.unreadableLog = slices.DeleteFunc(sp.unreadableLog, func(c corruptEntry) bool { return !c.id.less(boundary) })
	}
	sp.scan = &scanCounts{above: above.entries, from: floors.from()}

	sp.scanned(&cut)
	return nil
}

// scanned takes the cuts of a read of the whole stream: only those up to
// the boundary serve, and every entry was read.
func (sp *streamPlan) scanned(cut *cutter) {
	cuts, _ := cut.end()
	for _, c := range cuts {
		if sp.boundary.less(c) {
			break
		}
		sp.cuts = append(sp.cuts, c)
	}
	sp.readBelow = sp.last.next()
}

// backlogNote says what a run leaves for the next because it quarantines
// at most quarantineMax entries a stream.
func backlogNote(key string, left int64, quarantineMax int, records int64) string {
	return fmt.Sprintf("%d unreadable entries of %s wait for the next run (a run quarantines at most %d a stream), and the %d records retention removes at or above the first of them with them",
		left, key, quarantineMax, records)
}

// maxLogged bounds the unreadable entries a run names in its log when it
// removes them without quarantine.
const maxLogged = 100

// keptNewest is what keepNewest found.
type keptNewest struct {
	boundary streamID // the oldest survivor, when fit > 0
	fit      int64    // the survivors
	above    tally    // the entries at or above the boundary
	del      idList   // added newest first
	dates    survivorDates
}

// keepNewest finds the survivors when max_records or max_total_bytes
// removes records: Papyra keeps the newest want records age keeps, as
// many of them, newest first, as fit limit (bySize). It walks back from
// the newest entry the scan read; it reads only what is kept, and with
// max_total_bytes up to the first record that does not fit. del are the
// records age drops above the boundary, oldest first.
func (b *Backend) keepNewest(ctx context.Context, sp *streamPlan, pol backends.Policy, pass func(streamID, verdict) bool, want, limit int64, bySize bool) (keptNewest, error) {
	w := keptNewest{dates: survivorDates{ageFuture: !pol.Now.IsZero()}}
	k := newClassifier()
	rd := b.newReader(sp.key, sp.last.String(), "-", true, b.cfg.batch)
	var (
		seen  tally
		total int64
		// pending are the records age drops below the last survivor
		// found: they are above the boundary once another is found.
		pending = idList{max: b.cfg.deleteMax, keepLast: true}
	)
	w.del = idList{max: b.cfg.deleteMax, keepLast: true}
walk:
	for w.fit < want {
		// Each survivor is an entry: no read needs more than are left.
		msgs, err := rd.next(ctx, want-w.fit)
		if err != nil {
			return w, err
		}
		if len(msgs) == 0 {
			break // removed since the scan read them
		}
		for _, m := range msgs {
			id, err := parseID(m.id)
			if err != nil {
				return w, b.fail("XREVRANGE", sp.key, err)
			}
			v := k.entry(m, bySize)
			ok := pass(id, v)
			record := !v.corrupt && !v.unsure
			if record && ok {
				if bySize && total+v.size > limit {
					break walk
				}
				total += v.size
				w.fit++
				w.boundary = id
				w.dates.add(pol, v)
			}
			seen.count(v, ok)
			if record && !ok {
				pending.add(id)
			}
			if record && ok {
				w.above = seen
				pending.moveTo(&w.del)
				if w.fit == want {
					break walk
				}
			}
		}
	}
	return w, nil
}

// idList holds the IDs of records to delete one by one, at most max (a
// run deletes at most deleteMax a stream: the plan holds each, and the
// rest wait for the next run): the first max added (a read oldest
// first), or with keepLast the last max added (a walk newest first), so
// the oldest either way. dropped counts the others.
type idList struct {
	ids      []streamID
	max      int
	keepLast bool
	next     int // with keepLast, the oldest added, overwritten next
	dropped  int64
}

func (l *idList) add(id streamID) {
	switch {
	case len(l.ids) < l.max:
		l.ids = append(l.ids, id)
	case l.keepLast && l.max > 0:
		l.ids[l.next] = id
		l.next = (l.next + 1) % l.max
		l.dropped++
	default:
		l.dropped++
	}
}

// inOrder is the IDs held, in the order added.
func (l *idList) inOrder() []streamID {
	return append(slices.Clone(l.ids[l.next:]), l.ids[:l.next]...)
}

// moveTo adds l's IDs to dst, in order, as if every one l dropped had
// been added too (with keepLast, dst would have dropped them anyway),
// and empties l.
func (l *idList) moveTo(dst *idList) {
	dst.dropped += l.dropped
	for _, id := range l.inOrder() {
		dst.add(id)
	}
	*l = idList{max: l.max, keepLast: l.keepLast}
}

// ascending is the IDs held, oldest first.
func (l *idList) ascending() []streamID {
	ids := l.inOrder()
	if l.keepLast {
		slices.Reverse(ids)
	}
	return ids
}
