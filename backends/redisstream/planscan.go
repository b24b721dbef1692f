package redisstream

import (
	"context"
	"fmt"
	"math"
	"sort"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/backends/internal/pyjson"
)

// scanned is one entry of a stream read whole, kept compact (32 bytes):
// a scan holds one per entry until the plan is made.
type scanned struct {
	id    streamID
	ts    float64
	size  uint32 // repr size, saturated (a Redis value is at most 512 MB)
	flags uint8
}

const (
	flagCorrupt = 1 << iota
	flagTS
	flagUnsure
)

// record reports whether Papyra's reader surely reads the entry: neither
// corrupt nor Unsure (nested too deeply to tell; kept, not counted).
func (e *scanned) record() bool { return e.flags&(flagCorrupt|flagUnsure) == 0 }

func (e *scanned) corrupt() bool { return e.flags&flagCorrupt != 0 }

// index is the position of the first scanned entry at or above id.
func (sp *streamPlan) index(id streamID) int {
	return sort.Search(len(sp.scanned), func(i int) bool { return !sp.scanned[i].id.less(id) })
}

// planScan reads the whole stream, oldest first, batch by batch up to the
// newest entry at planning time, and plans exactly as Papyra's reader
// would apply retention to it: used for age_by timestamp, and for
// quarantine_corrupt, which must look at every entry anyway.
func (b *Backend) planScan(ctx context.Context, sp *streamPlan, pol backends.Policy, prog *progress) error {
	_, wantSize := pol.ByteLimit()
	k := newClassifier()
	// Sized for the whole stream at once (with room for entries added
	// before its last ID was read): growing by doubling would copy it
	// and hold both copies at the end, half as much again.
	sp.scanned = make([]scanned, 0, sp.length+sp.length/64+1024)
	var ages *backends.Ages
	if !pol.Now.IsZero() {
		// Every entry is read anyway: dating it costs nothing.
		ages = &backends.Ages{}
		sp.stats.Ages = ages
	}
	rd := b.newReader(sp.key, "-", sp.last.String(), false, b.cfg.batch)
	var cut cutter
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
			v := k.entry(m, wantSize)
			e := scanned{id: id, ts: v.ts, size: uint32(min(v.size, math.MaxUint32))}
			if v.hasTS {
				e.flags |= flagTS
			}
			if v.unsure {
				e.flags |= flagUnsure
			}
			if ages != nil && !v.corrupt && !v.unsure {
				ages.Add(pol, v.ts, v.hasTS, m.size())
			}
			if v.corrupt {
				e.flags |= flagCorrupt
				if b.cfg.quarantine {
					sp.corrupt = append(sp.corrupt, corruptEntry{id: id, size: m.size(), reason: v.reason})
				} else if len(sp.unreadableLog) < maxLogged {
					sp.unreadableLog = append(sp.unreadableLog, corruptEntry{id: id, size: m.size(), reason: v.reason})
				}
			}
			sp.scanned = append(sp.scanned, e)
			cut.add(id, m.size())
		}
		prog.add(int64(len(msgs)))
	}
	if err := b.retainScanned(sp, pol); err != nil {
		return err
	}
	// Only cuts up to the boundary serve; the whole stream was read.
	cuts, _ := cut.end()
	for _, c := range cuts {
		if sp.boundary.less(c) {
			break
		}
		sp.cuts = append(sp.cuts, c)
	}
	sp.readBelow = sp.last.next()
	return nil
}

// maxLogged bounds the unreadable entries a run names in its log when it
// removes them without quarantine.
const maxLogged = 100

// retainScanned applies Papyra's apply_retention to the scanned records
// (§4.2): age, then the last max_records, then the newest-first run that
// fits max_total_bytes. The survivors' oldest ID becomes the trim
// boundary; records age drops above it (timestamps out of order, or age
// by timestamp) are deleted one by one.
func (b *Backend) retainScanned(sp *streamPlan, pol backends.Policy) error {
	ret := pol.Retention
	s := &sp.stats
	es := sp.scanned
	var records int64
	newest := math.Inf(-1)
	for i := range es {
		if es[i].record() {
			records++
			if es[i].flags&flagTS != 0 && es[i].ts > newest && !math.IsInf(es[i].ts, 1) {
				newest = es[i].ts
			}
		}
	}
	s.RecordsBefore = records
	s.Quarantined = int64(len(sp.corrupt))

	passes := func(*scanned) bool { return true }
	if ret.MaxAgeSeconds != nil {
		cutoff := cutoffOf(pol)
		if b.cfg.ageByTimestamp {
			if err := pol.CheckClock(sp.key, newest, fixAgeByID); err != nil {
				return err
			}
			passes = func(e *scanned) bool { return e.flags&flagTS != 0 && e.ts >= cutoff }
		} else {
			g := &guard{age: cutoffID(pol), cutoff: cutoff}
			for i := sp.index(g.age) - 1; i >= 0; i-- {
				e := &es[i]
				// An Unsure entry is kept like a record, and kept when
				// its timestamp could not be read.
				hasTS := e.flags&flagTS != 0
				if g.feed(e.id, !e.corrupt() && (hasTS && e.ts >= cutoff || e.flags&flagUnsure != 0 && !hasTS)) {
					break
				}
			}
			g.note(sp)
			age := g.age
			passes = func(e *scanned) bool { return !e.id.less(age) }
		}
	}

	var passed int64
	for i := range es {
		if es[i].record() && passes(&es[i]) {
			passed++
		}
	}
	survivors := passed
	if n, ok := pol.CountLimit(); ok && passed > n {
		survivors = n
	}
	s.RemovedAge = records - passed
	s.RemovedCount = passed - survivors
	if limit, ok := pol.ByteLimit(); ok {
		var total, fit int64
		for i := len(es) - 1; i >= 0 && fit < survivors; i-- {
			if e := &es[i]; e.record() && passes(e) {
				if total+int64(e.size) > limit {
					break
				}
				total += int64(e.size)
				fit++
			}
		}
		s.RemovedBytes = survivors - fit
		survivors = fit
	}

	// The boundary is the oldest survivor; with none, everything planned.
	boundary := sp.last.next()
	oldest := math.Inf(1)
	var seen int64
	for i := len(es) - 1; i >= 0 && seen < survivors; i-- {
		if e := &es[i]; e.record() && passes(e) {
			seen++
			boundary = e.id
			if e.flags&flagTS != 0 && e.ts < oldest {
				oldest = e.ts
			}
			// Future-dated survivors; those retention removes are not
			// counted (a consumer group may still hold them back).
			if e.flags&flagTS != 0 && s.Ages != nil && pol.Future(e.ts) {
				s.Future++
				s.NewestFuture = max(s.NewestFuture, e.ts)
			}
		}
	}
	if !math.IsInf(oldest, 1) {
		s.OldestKept, s.HasOldest = oldest, true
	}
	// An Unsure entry that age keeps (or whose timestamp could not be
	// read) stays: Papyra may read it. The boundary goes no higher than
	// the oldest; records above it that count or bytes dropped stay too
	// (keeping errs on the safe side), those age drops are deleted.
	for i := range es {
		e := &es[i]
		if !e.id.less(boundary) {
			break
		}
		if e.flags&flagUnsure == 0 || !passes(e) && e.flags&flagTS != 0 {
			continue
		}
		var kept int64
		for j := i; j < len(es) && es[j].id.less(boundary); j++ {
			if es[j].record() && passes(&es[j]) {
				kept++
			}
		}
		d := min(kept, s.RemovedBytes)
		s.RemovedBytes -= d
		s.RemovedCount -= min(kept-d, s.RemovedCount)
		boundary = e.id
		break
	}
	if sp.first.less(boundary) {
		sp.boundary = boundary
	}
	for i := sp.index(boundary); i < len(es); i++ {
		if e := &es[i]; e.record() && !passes(e) {
			sp.del = append(sp.del, e.id)
		}
		if es[i].flags&flagUnsure != 0 {
			sp.keptUnsure++
		}
	}
	if sp.keptUnsure > 0 {
		s.Notes = append(s.Notes, fmt.Sprintf("%d entries of %s nested deeper than %d levels left in place and not counted as records: whether Papyra reads them depends on its Python version",
			sp.keptUnsure, sp.key, pyjson.DefaultMaxDepth))
	}
	if !b.cfg.quarantine {
		cut := sp.index(boundary)
		for i := range cut {
			if es[i].corrupt() {
				sp.unreadable++
				sp.unreadableIDs = append(sp.unreadableIDs, es[i].id)
			}
		}
		streamStats(s).RemovedCorrupt = sp.unreadable
		for i := cut; i < len(es); i++ {
			if es[i].corrupt() {
				sp.keptUnreadable++
			}
		}
		// Log only those retention removes.
		logged := sp.unreadableLog[:0]
		for _, c := range sp.unreadableLog {
			if c.id.less(boundary) {
				logged = append(logged, c)
			}
		}
		sp.unreadableLog = logged
	}
	return nil
}
