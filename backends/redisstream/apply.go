package redisstream

import (
	"context"
	"errors"
	"fmt"
	"strconv"

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
	prog := &progress{fn: p.policy.Progress, phase: "trim"}
	for _, sp := range p.streams {
		prog.total += sp.stats.Removed() + sp.stats.Quarantined
	}
	var (
		total  = backends.Stats{Stream: &backends.StreamStats{}}
		locked []error
	)
	for i := 0; i < len(p.streams); {
		sys := p.streams[i].system
		j := i
		for j < len(p.streams) && p.streams[j].system == sys {
			j++
		}
		streams := p.streams[i:j]
		i = j
		l, lctx, err := b.acquire(ctx, sys)
		if errors.Is(err, backends.ErrLocked) {
			locked = append(locked, err)
			for _, sp := range streams {
				total.RecordsBefore += sp.stats.RecordsBefore
				total.RecordsAfter += sp.stats.RecordsBefore
			}
			continue
		}
		if err != nil {
			return total, err
		}
		for _, sp := range streams {
			st, err := b.applyStream(lctx, sp, prog)
			addStats(&total, st)
			if err != nil {
				_ = l.release()
				return total, err
			}
		}
		if err := l.release(); err != nil {
			total.Notes = append(total.Notes, err.Error()+" (it expires by itself)")
		}
	}
	heldBackNotes(&total)
	return total, errors.Join(locked...)
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
		b.attribute(&st, planned, sp, trimmed, deleted)
		if floorBound || planned.Stream != nil && len(planned.Stream.HeldBack) > 0 {
			if herr := b.liveHeldBack(ctx, sp, &st); herr != nil && err == nil {
				err = herr
			}
		}
		return st, err
	}
	if len(sp.corrupt) > 0 {
		if st.Quarantined, err = b.quarantine(ctx, sp, prog); err != nil {
			return finish(err)
		}
	}
	if !sp.boundary.isZero() {
		n, bound, err := b.trim(ctx, sp, "minid", sp.boundary.String(), prog, &st)
		trimmed, floorBound = trimmed+n, bound
		if err != nil {
			return finish(err)
		}
	}
	if sp.maxlen > 0 {
		n, _, err := b.trim(ctx, sp, "maxlen", strconv.FormatInt(sp.maxlen, 10), prog, &st)
		trimmed += n
		if err != nil {
			return finish(err)
		}
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
	if mem, err := b.client.MemoryUsage(ctx, sp.key).Result(); err == nil {
		st.BytesAfter = mem
	}
	return finish(nil)
}

// trim runs trimScript in bounded steps until it removes nothing: whole
// nodes with "~ … LIMIT trim_limit", then, unless approximate, exact
// steps of at most exactStep entries for what is left. bound reports that
// a consumer group's floor stopped the trim short of the threshold.
func (b *Backend) trim(ctx context.Context, sp *streamPlan, mode, threshold string, prog *progress, st *backends.Stats) (removed int64, bound bool, err error) {
	pace := b.pacer(sp.key)
	step := func(threshold, approx string) (int64, bool, error) {
		if err := pace.wait(ctx); err != nil {
			return 0, false, err
		}
		res, err := trimScript.Run(ctx, b.client, []string{sp.key}, mode, threshold, approx, b.cfg.trimLimit).Slice()
		pace.done()
		if err != nil {
			return 0, false, b.failCtx(ctx, fmt.Sprintf("XTRIM %s %s", mode, threshold), sp.key, err)
		}
		n, _ := res[0].(int64)
		used, _ := res[1].(string)
		flag, _ := res[2].(string)
		switch flag {
		case "missing":
			st.Notes = append(st.Notes, sp.key+" was deleted during the run")
			return n, false, errStop
		case "groups":
			st.Notes = append(st.Notes, fmt.Sprintf("max_records not applied to %s: consumer groups appeared after planning; the next run applies it", sp.key))
			return n, false, errStop
		}
		removed += n
		prog.add(n)
		return n, mode == "minid" && used != threshold, nil
	}
	for {
		n, floor, err := step(threshold, "1")
		bound = bound || floor
		if errors.Is(err, errStop) {
			return removed, bound, nil
		}
		if err != nil || n == 0 && b.cfg.approximate {
			return removed, bound, err
		}
		if n == 0 {
			break
		}
	}
	// Exact steps: read what is left below the threshold, at most
	// exactStep+1 entries, and trim at most exactStep of them at a time.
	for {
		var t string
		if mode == "minid" {
			msgs, err := b.client.XRangeN(ctx, sp.key, "-", "("+threshold, exactStep+1).Result()
			if err != nil {
				return removed, bound, b.failCtx(ctx, "XRANGE", sp.key, err)
			}
			if len(msgs) == 0 {
				return removed, bound, nil
			}
			t = threshold
			if len(msgs) > exactStep {
				last, err := parseID(msgs[exactStep-1].ID)
				if err != nil {
					return removed, bound, b.failCtx(ctx, "XRANGE", sp.key, err)
				}
				t = last.next().String()
			}
		} else {
			n, err := b.client.XLen(ctx, sp.key).Result()
			if err != nil {
				return removed, bound, b.failCtx(ctx, "XLEN", sp.key, err)
			}
			if n <= sp.maxlen {
				return removed, bound, nil
			}
			t = strconv.FormatInt(max(sp.maxlen, n-exactStep), 10)
		}
		n, floor, err := step(t, "0")
		bound = bound || floor
		if errors.Is(err, errStop) {
			return removed, bound, nil
		}
		if err != nil || n == 0 {
			return removed, bound, err
		}
	}
}

// errStop ends a trim early without failing the run (a note says why).
var errStop = errors.New("stop")

// attribute turns what the server removed into the per-rule counts. The
// trimmed prefix is oldest first: age, then count, then bytes, as planned;
// more than planned (estimates, or MAXLEN meeting new entries) is counted
// for the rule that trimmed last. Corrupt entries trimmed with the prefix
// are not records.
func (b *Backend) attribute(st *backends.Stats, planned backends.Stats, sp *streamPlan, trimmed, deleted int64) {
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
	groups, err := b.floors(ctx, sp.key)
	if err != nil {
		return err
	}
	held, _, exact, err := b.heldBack(ctx, sp, groups)
	if err != nil {
		return err
	}
	ss := streamStats(st)
	ss.HeldBack, ss.Estimated = held, ss.Estimated || !exact
	return nil
}
