package redisstream

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/papyra-compact/papyra-compact/backends"
)

// exactStep is the most entries one exact (non-approximate) trim may
// remove. Exact steps only finish what whole-node approximate steps left,
// normally less than one node (stream-node-max-entries, 100 by default).
const exactStep = 1000

// Apply implements backends.Backend. For each system it takes the Redis
// lease, then for each stream: quarantines corrupt entries, trims below
// the plan's boundary in bounded steps, deletes the records age left
// above it, and deletes the stream if configured and left empty. A system
// whose lease another agent holds is skipped (the error wraps
// backends.ErrLocked once the others are done). Cancelling ctx stops the
// run between two commands; everything done by then is consistent and
// the next run resumes.
func (b *Backend) Apply(ctx context.Context, bp backends.Plan) (backends.Stats, error) {
	p, ok := bp.(*plan)
	if !ok || p.b != b {
		return backends.Stats{}, errors.New("redisstream: Apply got a plan made by another backend")
	}
	ctx, cancel := context.WithDeadlineCause(ctx, p.deadline, errRunDeadline)
	defer cancel()
	prog := &progress{fn: p.policy.Progress, phase: "trim"}
	for _, sp := range p.streams {
		prog.total += sp.stats.Removed() + sp.stats.Quarantined + sp.unreadable
	}
	var (
		total    = backends.Stats{Stream: &backends.StreamStats{}}
		failures []error
		stopped  bool
	)
	for i := 0; i < len(p.streams); {
		sys := p.streams[i].system
		j := i
		for j < len(p.streams) && p.streams[j].system == sys {
			j++
		}
		streams := p.streams[i:j]
		i = j
		if stopped {
			for _, sp := range streams {
				addStats(&total, b.untouched(ctx, sp, backends.DebtRunTimeout))
			}
			continue
		}
		l, lctx, err := b.acquire(ctx, sys)
		if err != nil {
			if !errors.Is(err, backends.ErrLocked) && !errors.Is(context.Cause(ctx), errRunDeadline) {
				return failed(&total, p.streams[i-len(streams):], err)
			}
			reason := backends.DebtIncomplete
			if errors.Is(err, backends.ErrLocked) {
				failures = append(failures, err)
			} else {
				stopped, reason = true, backends.DebtRunTimeout
			}
			for _, sp := range streams {
				addStats(&total, b.untouched(ctx, sp, reason))
			}
			continue
		}
		for k, sp := range streams {
			if stopped {
				addStats(&total, b.untouched(ctx, sp, backends.DebtRunTimeout))
				continue
			}
			st, err := b.applyStream(lctx, sp, prog)
			if errors.Is(context.Cause(lctx), errRunDeadline) {
				owe(&st, sp, backends.DebtRunTimeout)
				addStats(&total, st)
				stopped = true
				continue
			}
			if err != nil {
				owe(&st, sp, backends.DebtIncomplete)
				addStats(&total, st)
				_ = l.release()
				return failed(&total, p.streams[i-len(streams)+k+1:], errors.Join(append(failures, err)...))
			}
			addStats(&total, st)
		}
		if err := l.release(); err != nil {
			total.Notes = append(total.Notes, err.Error()+" (it expires by itself)")
		}
	}
	if stopped {
		total.Notes = append(total.Notes, fmt.Sprintf("stopped at the run deadline (run_timeout %s) with the work done so far; the next run continues", b.cfg.runTimeout))
	}
	heldBackNotes(&total)
	// What the plan dated, as the file backends report it.
	total.Future, total.NewestFuture, total.Ages = p.stats.Future, p.stats.NewestFuture, p.stats.Ages
	err := errors.Join(append(failures, p.skipped...)...)
	if err != nil {
		accounted(&total)
	}
	return total, err
}

// failed ends a run that failed with err before it got to rest: they
// owe their whole plan (incomplete).
func failed(total *backends.Stats, rest []*streamPlan, err error) (backends.Stats, error) {
	for _, sp := range rest {
		st := backends.Stats{RecordsBefore: sp.stats.RecordsBefore, RecordsAfter: sp.stats.RecordsBefore, BytesBefore: sp.stats.BytesBefore, BytesAfter: sp.stats.BytesBefore}
		owe(&st, sp, backends.DebtIncomplete)
		addStats(total, st)
	}
	heldBackNotes(total)
	accounted(total)
	return *total, err
}

// accounted marks the debt of a failed Apply as this backend's account
// of it: an entry of 0 records when nothing is owed, since the agent
// takes no debt at all to mean that nothing was done.
func accounted(total *backends.Stats) {
	if len(total.Debt) == 0 {
		total.Debt = []backends.Debt{{Reason: backends.DebtIncomplete}}
	}
}

// untouched is the stats of a stream the run did not get to, measured
// now: it owes what the plan removes, for reason.
func (b *Backend) untouched(ctx context.Context, sp *streamPlan, reason backends.DebtReason) backends.Stats {
	st := backends.Stats{RecordsBefore: sp.stats.RecordsBefore, RecordsAfter: sp.stats.RecordsBefore, BytesBefore: sp.stats.BytesBefore, BytesAfter: sp.stats.BytesBefore}
	b.measure(ctx, sp, &st)
	owe(&st, sp, reason)
	return st
}

// applyStream carries out one stream's plan and reports what the server
// actually did.
func (b *Backend) applyStream(ctx context.Context, sp *streamPlan, prog *progress) (backends.Stats, error) {
	planned := sp.stats
	st := backends.Stats{
		RecordsBefore: planned.RecordsBefore,
		BytesBefore:   planned.BytesBefore,
		OldestKept:    planned.OldestKept,
		HasOldest:     planned.HasOldest,
		Notes:         planned.Notes,
	}
	var (
		trimmed, deleted int64
		floorBound       bool
		err              error
	)
	finish := func(err error) (backends.Stats, error) {
		b.leftUnreadable(ctx, sp)
		b.attribute(&st, planned, sp, trimmed, deleted)
		if floorBound || planned.Stream != nil && len(planned.Stream.HeldBack) > 0 {
			if herr := b.liveHeldBack(ctx, sp, &st); herr != nil && err == nil {
				err = herr
			}
		}
		b.measure(ctx, sp, &st)
		if err == nil && !errors.Is(context.Cause(ctx), errRunDeadline) {
			b.streamDebt(ctx, sp, &st)
		}
		return st, err
	}
	if len(sp.corrupt) > 0 {
		if st.Quarantined, err = b.quarantine(ctx, sp, prog); err != nil {
			return finish(err)
		}
	}
	if !sp.boundary.isZero() {
		n, bound, _, err := b.trim(ctx, sp, sp.boundary.String(), 0, prog, &st)
		trimmed, floorBound = trimmed+n, bound
		if err != nil {
			return finish(err)
		}
	}
	if sp.maxlen > 0 && !sp.readBelow.isZero() {
		// The plan read the oldest entries beyond max_records and cut
		// them (countUnreadable): trimming up to the last cut removes
		// exactly those, bounded like any MINID trim. XTRIM MAXLEN would
		// remove unread entries, whose size only a script reading them
		// could bound, at several times their cost when they are large.
		// No step leaves fewer than max_records (others may have removed
		// entries since the plan read them): a step that would is
		// refused, and trimAdded reads again.
		n, bound, _, err := b.trim(ctx, sp, sp.readBelow.String(), sp.maxlen, prog, &st)
		trimmed, floorBound = trimmed+n, floorBound || bound
		if err == nil && !bound {
			// What Papyra added meanwhile pushes more past max_records.
			n, bound, err = b.trimAdded(ctx, sp, prog, &st)
			trimmed, floorBound = trimmed+n, floorBound || bound
		}
		if err != nil {
			return finish(err)
		}
	}
	for _, c := range sp.unreadableLog {
		b.log.Warn("removing an entry Papyra cannot read, without quarantine (quarantine_corrupt: false)", "stream", sp.key, "id", c.id.String(), "reason", c.reason)
	}
	pace := b.pacer(sp.key)
	for start := 0; start < len(sp.del); start += int(b.cfg.batch) {
		if err := pace.wait(ctx); err != nil {
			return finish(err)
		}
		batch := sp.del[start:min(start+int(b.cfg.batch), len(sp.del))]
		ids := make([]any, len(batch))
		for i, id := range batch {
			ids[i] = id.String()
		}
		res, err := delScript.Run(ctx, b.client, []string{sp.key}, ids...).Int64Slice()
		pace.done()
		if err != nil {
			return finish(b.failCtx(ctx, "XDEL", sp.key, err))
		}
		deleted += res[0]
		prog.add(res[0])
		if res[1] > 0 {
			floorBound = true
		}
	}
	if b.cfg.deleteEmpty {
		n, err := deleteEmptyScript.Run(ctx, b.client, []string{sp.key}).Int64()
		if err != nil {
			return finish(b.failCtx(ctx, "DEL empty stream", sp.key, err))
		}
		if n == 1 {
			st.Notes = append(st.Notes, "deleted the empty stream "+sp.key)
		}
	}
	return finish(nil)
}

// measure replaces the figures of st that the server can tell with what
// the master holds now, at the end of the run: the entries left (XLEN),
// the memory (MEMORY USAGE) and the oldest entry kept, which is the
// stream's first, a consumer group's held-back entries included. Counts
// derived from what commands replied can be wrong after a failover (the
// replies came from a master whose writes were lost) or when another
// agent worked meanwhile; these cannot. It runs even when the run was
// stopped or failed, with a context of its own.
func (b *Backend) measure(ctx context.Context, sp *streamPlan, st *backends.Stats) {
	mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.timeout)
	defer cancel()
	st.RecordsAfter = max(0, st.RecordsAfter)
	n, err := b.client.XLen(mctx, sp.key).Result()
	if err != nil {
		st.Notes = append(st.Notes, fmt.Sprintf("%s: could not measure the stream after the run (%v); its figures are the commands' replies", sp.key, err))
		return
	}
	st.RecordsAfter = max(0, n-sp.keptUnreadable-sp.keptUnsure)
	if mem, err := b.client.MemoryUsage(mctx, sp.key).Result(); err == nil {
		st.BytesAfter = mem
	} else if n == 0 {
		st.BytesAfter = 0
	}
	probe := &streamPlan{key: sp.key}
	if err := b.oldestFrom(mctx, probe, minID); err == nil && probe.stats.HasOldest {
		if !st.HasOldest || probe.stats.OldestKept < st.OldestKept {
			st.OldestKept, st.HasOldest = probe.stats.OldestKept, true
		}
	}
	if n == 0 {
		st.OldestKept, st.HasOldest = 0, false
	}
}

// trim runs trimScript (XTRIM MINID, lowered to the consumer-group
// floor) in bounded steps until it removes nothing: whole nodes with
// "~ … LIMIT", then, unless approximate, exact steps for what is left.
// Where the plan read the entries below the threshold, it cut them into
// runs of at most trimBytes (sp.cuts): the trim goes from cut to cut, so
// that no step frees more than trimBytes and one entry, whatever the mix
// of sizes. Past the cuts (only when a group's floor rose during the run
// above what the plan read), each step reads the oldest entry it may
// remove first and frees at most stepBytes' worth of entries that size
// (trimScript). Counts grow with the time the steps take (sizer), and
// trim_limit caps them. bound reports that a consumer group's floor
// stopped the trim short of the threshold.
//
// With keep > 0 (max_records beyond the walk), no step leaves fewer than
// keep entries: each tells the script at most how many entries are below
// its threshold (sp.cutCounts, sp.readCount, or the exact step's read),
// and the script refuses the step when XLEN less that is below keep.
// short reports such a refusal, which ends the trim: others removed
// entries since they were counted, and the caller reads again.
func (b *Backend) trim(ctx context.Context, sp *streamPlan, threshold string, keep int64, prog *progress, st *backends.Stats) (removed int64, bound, short bool, err error) {
	thr, err := parseID(threshold)
	if err != nil {
		return 0, false, false, b.fail("XTRIM", sp.key, err)
	}
	pace := b.pacer(sp.key)
	size := newSizer(b.cfg.trimLimit)
	// below is at most how many entries are below the threshold of the
	// next step (only read with keep > 0).
	var below int64
	step := func(threshold, approx string, limit, budget int64) (int64, int64, bool, error) {
		if err := pace.wait(ctx); err != nil {
			return 0, 0, false, err
		}
		args := []any{"minid", threshold, approx, limit, budget}
		if keep > 0 {
			args = append(args, keep, max(0, below))
		}
		res, err := trimScript.Run(ctx, b.client, []string{sp.key}, args...).Slice()
		took := pace.done()
		if err != nil {
			return 0, 0, false, b.failCtx(ctx, "XTRIM MINID "+threshold, sp.key, err)
		}
		n, _ := res[0].(int64)
		used, _ := res[1].(string)
		flag, _ := res[2].(string)
		first, _ := res[3].(int64)
		size.done(n, 0, took)
		if flag == "missing" {
			st.Notes = append(st.Notes, sp.key+" was deleted during the run")
			return n, first, false, errStop
		}
		if len(res) > 4 && res[4] == int64(1) {
			short = true // refused: the caller reads again
			return 0, 0, false, errStop
		}
		removed += n
		below -= n
		sp.removedSince += n
		prog.add(n)
		return n, first, used != threshold, nil
	}
	// approx trims whole nodes below t until none is left (or the floor
	// stops it).
	approx := func(t string, budget int64) error {
		for {
			limit := size.next()
			n, first, floor, err := step(t, "1", limit, budget)
			bound = bound || floor
			if err != nil {
				return err
			}
			if n > 0 {
				continue
			}
			// Nothing removed: either nothing whole is left below the
			// threshold, or the oldest node holds more entries than the
			// limit (small ones: a node holds at most
			// stream-node-max-bytes besides a single large entry). Grow
			// the limit while the bytes allow it.
			if first == 0 || limit >= b.cfg.trimLimit || budget > 0 && first*2*limit > budget {
				return nil
			}
			// A node of small entries holds up to stream-node-max-entries
			// (100 by default): jump there, then keep growing.
			size.n = min(b.cfg.trimLimit, max(4*limit, 128))
			if budget > 0 {
				size.n = min(size.n, max(1, budget/first))
			}
		}
	}
	stop := func(err error) (int64, bool, bool, error) {
		if errors.Is(err, errStop) {
			return removed, bound, short, nil
		}
		return removed, bound, short, err
	}
	// The plan's cuts below the threshold.
	for len(sp.cuts) > 0 && !thr.less(sp.cuts[0]) {
		c := sp.cuts[0]
		sp.cuts = sp.cuts[1:]
		below = math.MaxInt64 // no count known: a keep check refuses
		if len(sp.cutCounts) > 0 {
			below = sp.cutCounts[0] - sp.removedSince
			sp.cutCounts = sp.cutCounts[1:]
		}
		if err := approx(c.String(), 0); err != nil {
			return stop(err)
		}
		if bound {
			sp.cuts, sp.cutCounts = nil, nil // a group's floor is below the next cuts
		}
	}
	// Entries below readBelow were read by the plan: the cuts bound them.
	budget := int64(stepBytes)
	below = math.MaxInt64
	if !sp.readBelow.less(thr) {
		budget = 0
		if sp.readBelow == thr {
			below = sp.readCount - sp.removedSince
		}
	}
	if err := approx(threshold, budget); err != nil {
		return stop(err)
	}
	if b.cfg.approximate {
		return removed, bound, false, nil
	}
	// Exact steps: read what is left below the threshold (a partial node
	// of small entries, normally: a large entry lives alone in its node
	// and went with the approximate steps), sized like any read, and trim
	// it up to the last entry read.
	rd := b.newReader(sp.key, "-", "("+threshold, false, exactStep)
	rd.pace = pace // one pace for the reads and the steps between them
	for {
		msgs, err := rd.next(ctx, 0)
		if err != nil || len(msgs) == 0 {
			return stop(err)
		}
		last, err := parseID(msgs[len(msgs)-1].id)
		if err != nil {
			return removed, bound, false, b.fail("XRANGE", sp.key, err)
		}
		t := threshold
		if last.next().less(thr) {
			t = last.next().String()
		}
		below = int64(len(msgs)) // every entry below t, just read
		n, _, floor, err := step(t, "0", 0, 0)
		bound = bound || floor
		if err != nil || n == 0 {
			return stop(err)
		}
		// What is left starts at the oldest entry again.
		rd.cursor, rd.ended = "-", false
	}
}

// trimAdded removes, for max_records beyond the walk (sp.maxlen), the
// oldest entries that what Papyra added during the run pushed past
// max_records, as XTRIM MAXLEN would at the end of the run, but read
// first: each round reads the XLEN less max_records oldest entries, in
// reads sized like any other (one entry when large), counts their
// unreadable ones apart as the plan's were, cuts them as the plan does,
// and trims up to the last one read. It never leaves fewer than
// max_records: each round starts at the oldest entry (an approximate
// trim leaves part of a node), so only the entries it read are below
// the cut, and the script refuses a step that others' removals since
// the read (XDEL, Papyra's XTRIM) would make leave fewer; the next round
// reads again. It ends when a round removes nothing and was not refused,
// or a group's floor stops it.
func (b *Backend) trimAdded(ctx context.Context, sp *streamPlan, prog *progress, st *backends.Stats) (removed int64, bound bool, err error) {
	k := newClassifier()
	rd := b.newReader(sp.key, "-", "+", false, b.cfg.batch)
	classified := sp.readBelow // entries below it were classified (by the plan, at first)
	for {
		rd.cursor, rd.ended = "-", false
		if err := rd.pace.wait(ctx); err != nil {
			return removed, bound, err
		}
		l, err := b.client.XLen(ctx, sp.key).Result()
		rd.pace.done()
		if err != nil {
			return removed, bound, b.failCtx(ctx, "XLEN", sp.key, err)
		}
		over := l - sp.maxlen
		if over <= 0 {
			// Nothing is past max_records (others may have removed
			// entries): what is left below the last read owes nothing.
			sp.readBelow = streamID{}
			return removed, bound, nil
		}
		var (
			cut  cutter
			read int64
		)
		for read < over {
			msgs, err := rd.next(ctx, over-read)
			if err != nil {
				return removed, bound, err
			}
			if len(msgs) == 0 {
				break
			}
			for _, m := range msgs {
				id, err := parseID(m.id)
				if err != nil {
					return removed, bound, b.fail("XRANGE", sp.key, err)
				}
				cut.add(id, m.size())
				if id.less(classified) {
					continue // left by an approximate or refused trim, counted already
				}
				classified = id.next()
				if v := k.entry(m, false); v.corrupt {
					sp.addUnreadable(id, m.size(), v.reason) // logged with the plan's (Apply)
				}
			}
			read += int64(len(msgs))
		}
		if read == 0 {
			return removed, bound, nil
		}
		sp.cuts, sp.readBelow = cut.end()
		sp.cutCounts, sp.readCount, sp.removedSince = cut.counts, read, 0
		if err := rd.pace.wait(ctx); err != nil {
			return removed, bound, err
		}
		n, floor, short, err := b.trim(ctx, sp, sp.readBelow.String(), sp.maxlen, prog, st)
		removed, bound = removed+n, bound || floor
		if err != nil || floor || n == 0 && !short {
			return removed, bound, err
		}
	}
}

// leftUnreadable moves to sp.keptUnreadable the unreadable entries
// counted for removal that the trims left in place (an approximate trim
// leaves part of a node; a group's floor or a refused step stops a
// trim), so that they are counted neither as removed nor as records.
// Trims remove the oldest entries, so those left are the ones at or
// after the stream's first entry: one read of one entry tells. Like
// measure, it runs with a context of its own; when the read fails, the
// figures stay as the trims' replies make them.
func (b *Backend) leftUnreadable(ctx context.Context, sp *streamPlan) {
	if len(sp.unreadableIDs) == 0 {
		return
	}
	mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.timeout)
	defer cancel()
	msgs, err := b.xrange(mctx, sp.key, "-", "+", 1, false)
	if err != nil {
		return
	}
	gone := len(sp.unreadableIDs) // all of them when the stream is empty
	if len(msgs) > 0 {
		first, err := parseID(msgs[0].id)
		if err != nil {
			return
		}
		gone, _ = slices.BinarySearchFunc(sp.unreadableIDs, first, streamID.compare)
	}
	left := int64(len(sp.unreadableIDs) - gone)
	sp.unreadable -= left
	sp.keptUnreadable += left
	sp.unreadableIDs = sp.unreadableIDs[:gone]
}

// heldPastMaxlen is what groups hold of the entries left past
// max_records (sp.maxlen; a group created during the run stopped the
// trim at its floor, as the plan had no group): all of them for the
// group of the lowest floor (exact unless an approximate trim may have
// left some below it), at most as many, estimated from the IDs, for the
// others whose floor is below the last cut.
func (b *Backend) heldPastMaxlen(ctx context.Context, sp *streamPlan, groups []groupFloor) ([]backends.HeldBack, error) {
	mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.timeout)
	defer cancel()
	l, err := b.client.XLen(mctx, sp.key).Result()
	if err != nil {
		return nil, b.failCtx(mctx, "XLEN", sp.key, err)
	}
	over := l - sp.maxlen
	if over <= 0 || len(groups) == 0 {
		return nil, nil
	}
	lowest, _ := lowestFloor(groups)
	probe := *sp
	probe.boundary = sp.readBelow
	est, _ := probe.heldBack(groups)
	var out []backends.HeldBack
	for _, g := range groups {
		h := backends.HeldBack{Stream: sp.key, Group: g.name, Entries: over, Estimated: b.cfg.approximate}
		if g.floor != lowest {
			h.Entries, h.Estimated = 0, true
			for _, e := range est {
				if e.Group == g.name {
					h.Entries = min(over, e.Entries)
				}
			}
		}
		if h.Entries > 0 {
			out = append(out, h)
		}
	}
	return out, nil
}

// errStop ends a trim early without failing the run (a note says why).
var errStop = errors.New("stop")

// attribute turns what the server removed into the per-rule counts. The
// trimmed prefix is oldest first: age, then count, then bytes, as planned;
// more than planned (estimates) is counted
// for the rule that trimmed last. Corrupt entries trimmed with the prefix
// are not records.
func (b *Backend) attribute(st *backends.Stats, planned backends.Stats, sp *streamPlan, trimmed, deleted int64) {
	streamStats(st).RemovedCorrupt = min(trimmed, sp.unreadable)
	records := max(0, trimmed-sp.unreadable)
	prefixAge := max(0, planned.RemovedAge-int64(len(sp.del)))
	st.RemovedAge = min(records, prefixAge)
	records -= st.RemovedAge
	st.RemovedCount = min(records, planned.RemovedCount)
	records -= st.RemovedCount
	st.RemovedBytes = min(records, planned.RemovedBytes)
	records -= st.RemovedBytes
	switch {
	case sp.maxlen > 0 || planned.RemovedCount > 0 && planned.RemovedBytes == 0:
		st.RemovedCount += records
	case planned.RemovedBytes > 0:
		st.RemovedBytes += records
	default:
		st.RemovedAge += records
	}
	st.RemovedAge += deleted
	st.RecordsAfter = st.RecordsBefore - st.Removed()
}

// liveHeldBack reports what each group held back, from the groups as
// they are after the run: their floors may have moved since planning.
func (b *Backend) liveHeldBack(ctx context.Context, sp *streamPlan, st *backends.Stats) error {
	groups, err := b.floors(context.WithoutCancel(ctx), sp.key)
	if errors.Is(err, errStreamGone) {
		groups, err = nil, nil // deleted during the run: nothing is held
	}
	if err != nil {
		return err
	}
	live, _ := sp.heldBack(groups)
	if sp.maxlen > 0 {
		// max_records beyond the walk has no boundary: what a group
		// created during the run holds is what is left past max_records.
		if live, err = b.heldPastMaxlen(ctx, sp, groups); err != nil {
			return err
		}
	}
	// A group whose floor has not moved holds what the plan counted (the
	// plan saw the stream whole; the trimmed stream no longer tells).
	planned := map[string]groupFloor{}
	for _, g := range sp.groups {
		planned[g.name] = g
	}
	was := map[string]backends.HeldBack{}
	if sp.stats.Stream != nil {
		for _, h := range sp.stats.Stream.HeldBack {
			was[h.Group] = h
		}
	}
	ss := streamStats(st)
	ss.HeldBack = ss.HeldBack[:0]
	for _, g := range groups {
		if p, ok := planned[g.name]; ok && p.floor == g.floor {
			if h, ok := was[g.name]; ok {
				ss.HeldBack = append(ss.HeldBack, h)
			}
			continue
		}
		for _, h := range live {
			if h.Group == g.name {
				ss.HeldBack = append(ss.HeldBack, h)
			}
		}
	}
	return nil
}
