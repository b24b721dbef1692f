package redisstream

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/papyra-compact/papyra-compact/backends"
)

// plan is the redisstream implementation of backends.Plan: one decision
// per stream. It holds no server-side resources.
type plan struct {
	b       *Backend
	policy  backends.Policy
	streams []*streamPlan
	stats   backends.Stats
	// skipped are keys of the wrong type, reported by Apply.
	skipped []error
	// deadline ends the run (run_timeout from the start of Plan).
	deadline time.Time
}

func (p *plan) Stats() backends.Stats { return p.stats }
func (p *plan) Close() error          { return nil }

// groupFloor is the lowest ID one consumer group still needs, with what
// XINFO GROUPS knows about it.
type groupFloor struct {
	name  string
	floor streamID
	// pending is the size of its PEL; lag the entries after its
	// last-delivered-id (-1 when Redis cannot tell, or before 7.0).
	pending, lag int64
}

// corruptEntry is an entry Papyra cannot read, to be quarantined. Only
// its ID is kept: Apply reads it again when it moves it, so that a plan
// never holds entries' contents (they may be megabytes each).
type corruptEntry struct {
	id     streamID
	size   int64
	reason string
}

// streamPlan is what retention decided for one stream.
type streamPlan struct {
	system, key string
	length      int64 // XLEN when planned
	first, last streamID
	groups      []groupFloor
	// cuts bound the bytes of each trim step (cutter); every entry below
	// readBelow was read by the plan.
	cuts      []streamID
	readBelow streamID
	// For max_records beyond the walk (maxlen), cutCounts[i] is how many
	// entries the read that made the cuts found below cuts[i], readCount
	// how many below readBelow, and removedSince how many the run's trims
	// removed since that read. Every removal takes a prefix of the
	// stream, and no entry can be added below a cut, so the entries
	// below a cut number at most its count less removedSince: what the
	// trim script checks against XLEN so as never to leave fewer than
	// max_records, whatever others removed meanwhile.
	cutCounts               []int64
	readCount, removedSince int64

	// boundary: entries below it go (XTRIM MINID); zero when none do.
	boundary streamID
	// maxlen > 0 trims the oldest entries until that many are left,
	// instead of a boundary found by walking.
	maxlen int64
	// del are records to delete one by one (age_by timestamp), corrupt
	// are entries to quarantine; both below the group floor.
	del     []streamID
	corrupt []corruptEntry
	// heldDel are records age drops that a group still needs: reported,
	// never deleted.
	heldDel []streamID
	// unreadable counts corrupt entries below the boundary that are
	// trimmed with it (not quarantined): they are not records.
	unreadable int64
	// unreadableIDs are their IDs, oldest first: Apply counts those a
	// trim left in place (leftUnreadable).
	unreadableIDs []streamID
	// keptUnreadable counts unreadable entries the run leaves in place
	// (above the boundary without quarantine, or held by a group).
	keptUnreadable int64
	// keptUnsure counts entries nested too deeply to tell whether Papyra
	// reads them, left in place (a scan found them above the boundary).
	keptUnsure int64
	// unreadableLog names the first maxLogged of them, for the log.
	unreadableLog []corruptEntry
	// backlog is what retention removes that the run leaves because it
	// quarantines at most quarantineMax entries (Reason empty: none).
	backlog backends.Debt

	// walked is the number of entries a walk found at or above the
	// boundary; -1 when no walk reached it.
	walked int64

	// scan holds what a read of the whole stream counted, for exact
	// held-back figures; nil otherwise.
	scan *scanCounts

	stats backends.Stats
}

// floor is the lowest group floor; ok is false when there are no groups.
func (sp *streamPlan) floor() (f streamID, ok bool) { return lowestFloor(sp.groups) }

// lowestFloor is the lowest floor of groups; ok is false when there are
// none.
func lowestFloor(groups []groupFloor) (f streamID, ok bool) {
	for i, g := range groups {
		if i == 0 || g.floor.less(f) {
			f = g.floor
		}
	}
	return f, len(groups) > 0
}

// Plan implements backends.Backend: it reads, and writes nothing. A key
// that is not a stream is skipped and reported (Apply fails the run with
// it once the other streams are done), so that one stray key does not
// stop the compaction of every healthy system.
func (b *Backend) Plan(ctx context.Context, pol backends.Policy) (backends.Plan, error) {
	deadline := time.Now().Add(b.cfg.runTimeout)
	ctx, cancel := context.WithDeadlineCause(ctx, deadline, errRunDeadline)
	defer cancel()
	if err := b.ping(ctx); err != nil {
		return nil, err
	}
	systems, err := b.systems(ctx)
	if err != nil {
		return nil, err
	}
	p := &plan{b: b, policy: pol, deadline: deadline}
	prog := &progress{fn: pol.Progress, phase: "scan"}
	for _, sys := range systems {
		for _, kind := range kinds {
			sp, err := b.planStream(ctx, sys, b.streamKey(sys, kind), pol, prog)
			var wt *wrongTypeError
			if errors.As(err, &wt) {
				p.skipped = append(p.skipped, err)
				p.stats.Notes = append(p.stats.Notes, "skipped "+wt.key+": "+wt.reason())
				continue
			}
			if err != nil {
				return nil, err
			}
			if sp != nil {
				p.streams = append(p.streams, sp)
			}
		}
	}
	if len(p.streams) == 0 {
		if len(p.skipped) > 0 {
			return nil, errors.Join(p.skipped...)
		}
		return nil, fmt.Errorf("redis %s: no stream %s: %w", b.endpoint, b.streamKey(b.cfg.systemID, "{events,audits,dead_letters}"), backends.ErrNothingToDo)
	}
	p.stats.Stream = &backends.StreamStats{}
	if err := b.checkPermissions(ctx, p); err != nil {
		return nil, err
	}
	for _, sp := range p.streams {
		addStats(&p.stats, sp.stats)
	}
	addDates(&p.stats, p.streams)
	heldBackNotes(&p.stats)
	return p, nil
}

// wrongTypeError is a Papyra stream key that holds something else.
type wrongTypeError struct {
	endpoint, key, typ string
}

func (e *wrongTypeError) reason() string {
	return fmt.Sprintf("the key holds a %s, not a stream; check prefix and system_id", e.typ)
}

func (e *wrongTypeError) Error() string {
	return fmt.Sprintf("redis %s: check %s: %s", e.endpoint, e.key, e.reason())
}

// heldBackNotes says in the summary what consumer groups kept, and
// whether the figure is an estimate.
func heldBackNotes(s *backends.Stats) {
	if s.Stream == nil {
		return
	}
	if n := s.Stream.RemovedCorrupt; n > 0 {
		s.Notes = append(s.Notes, fmt.Sprintf("%d unreadable entries removed without quarantine (quarantine_corrupt: false; the log names them)", n))
	}
	for _, h := range s.Stream.HeldBack {
		about := ""
		if h.Estimated {
			about = "about "
		}
		s.Notes = append(s.Notes, fmt.Sprintf("%s%d entries of %s kept for consumer group %s", about, h.Entries, h.Stream, h.Group))
	}
	for _, h := range s.Stream.HeldBack {
		if h.Estimated {
			s.Notes = append(s.Notes, "held-back counts marked \"about\" are estimates from the stream's IDs and XINFO GROUPS (counting them exactly would read every held entry)")
			break
		}
	}
}

// systems lists the system IDs to compact: the configured one, or with
// "*" every system that has a Papyra stream under the prefix, found with
// SCAN … TYPE stream on every master (KEYS would block the server).
func (b *Backend) systems(ctx context.Context) ([]string, error) {
	if b.cfg.systemID != allSystems {
		return []string{b.cfg.systemID}, nil
	}
	var (
		mu    sync.Mutex
		found = map[string]bool{}
	)
	match := globEscape(b.cfg.prefix) + ":*"
	scan := func(ctx context.Context, c redis.Cmdable) error {
		var cursor uint64
		for {
			keys, next, err := c.ScanType(ctx, cursor, match, b.cfg.batch, "stream").Result()
			if err != nil {
				return b.fail("SCAN MATCH", match, err)
			}
			mu.Lock()
			for _, k := range keys {
				if sys, ok := b.systemOf(k); ok {
					found[sys] = true
				}
			}
			mu.Unlock()
			if cursor = next; cursor == 0 {
				return nil
			}
		}
	}
	var err error
	if cc, ok := b.client.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error { return scan(ctx, m) })
	} else {
		err = scan(ctx, b.client)
	}
	if err != nil {
		return nil, err
	}
	return slices.Sorted(func(yield func(string) bool) {
		for s := range found {
			if !yield(s) {
				return
			}
		}
	}), nil
}

// systemOf returns the system of a Papyra stream key, {prefix}:{system}:{kind}.
// Quarantine streams end in "_events" and so on, not ":events".
func (b *Backend) systemOf(key string) (string, bool) {
	rest, ok := strings.CutPrefix(key, b.cfg.prefix+":")
	if !ok {
		return "", false
	}
	for _, kind := range kinds {
		if sys, ok := strings.CutSuffix(rest, ":"+kind); ok && sys != "" {
			return sys, true
		}
	}
	return "", false
}

// globEscape quotes the characters SCAN MATCH treats as a pattern.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// planStream plans one stream; nil when it does not exist.
func (b *Backend) planStream(ctx context.Context, sys, key string, pol backends.Policy, prog *progress) (*streamPlan, error) {
	typ, err := b.client.Type(ctx, key).Result()
	if err != nil {
		return nil, b.failCtx(ctx, "TYPE", key, err)
	}
	switch typ {
	case "none":
		return nil, nil
	case "stream":
	default:
		return nil, &wrongTypeError{endpoint: b.endpoint, key: key, typ: typ}
	}
	sp, err := b.ends(ctx, sys, key)
	if err != nil {
		return nil, err
	}
	if sp.groups, err = b.floors(ctx, key); err != nil {
		if errors.Is(err, errStreamGone) {
			return nil, nil // deleted since TYPE (by Papyra or by hand): nothing to do
		}
		return nil, err
	}
	sp.stats.RecordsBefore = sp.length
	// MEMORY USAGE samples a few nodes: an estimate, and optional (some
	// managed services disable the command).
	if mem, err := b.client.MemoryUsage(ctx, key).Result(); err == nil {
		sp.stats.BytesBefore = mem
	}
	prog.total += sp.length
	if sp.length > 0 {
		// explain reads every entry too, to date every record.
		scan := b.cfg.quarantine || b.cfg.ageByTimestamp || pol.Explain
		if scan {
			err = b.planScan(ctx, sp, pol, prog)
		} else {
			err = b.planByID(ctx, sp, pol)
		}
		if err != nil {
			return nil, err
		}
		if err := b.holdBack(ctx, sp); err != nil {
			return nil, err
		}
		if !scan {
			if err := b.countUnreadable(ctx, sp); err != nil {
				return nil, err
			}
		}
	}
	s := &sp.stats
	s.RecordsAfter = max(0, s.RecordsBefore-s.Removed())
	if sp.length > 0 {
		kept := max(0, sp.length-s.Removed()-int64(len(sp.corrupt))-sp.unreadable)
		s.BytesAfter = int64(float64(s.BytesBefore) * float64(kept) / float64(sp.length))
	}
	sp.scan = nil // only needed for the counts above
	if s.Stream != nil {
		s.Debt = b.heldDebt(ctx, key, s.Stream.HeldBack, sp.groups)
	}
	if sp.backlog.Reason != "" {
		s.Debt = append(s.Debt, sp.backlog)
	}
	return sp, nil
}

// ends reads the stream's length and its first and last IDs, each with a
// command of its own: XINFO STREAM would return the first and last
// entries whole in one command, two entries' cost, where one is the floor
// (two large entries of 8 MB took twice what reading one takes). The
// reads are paced like every other read. Entries added between the
// commands are after last and left to the next run; the length is an
// estimate used for figures, not for what is removed.
func (b *Backend) ends(ctx context.Context, sys, key string) (*streamPlan, error) {
	pace := b.pacer(key)
	if err := pace.wait(ctx); err != nil {
		return nil, err
	}
	n, err := b.client.XLen(ctx, key).Result()
	pace.done()
	if err != nil {
		return nil, b.failCtx(ctx, "XLEN", key, err)
	}
	sp := &streamPlan{system: sys, key: key, length: n, walked: -1}
	if n == 0 {
		return sp, nil
	}
	for _, end := range []struct {
		id   *streamID
		rev  bool
		name string
	}{{&sp.last, true, "XREVRANGE"}, {&sp.first, false, "XRANGE"}} {
		if err := pace.wait(ctx); err != nil {
			return nil, err
		}
		start, stop := "-", "+"
		if end.rev {
			start, stop = "+", "-"
		}
		msgs, err := b.xrange(ctx, key, start, stop, 1, end.rev)
		pace.done()
		if err != nil {
			return nil, err
		}
		if len(msgs) == 0 {
			// Trimmed to nothing since XLEN (by Papyra or by hand).
			sp.length = 0
			return sp, nil
		}
		if *end.id, err = parseID(msgs[0].id); err != nil {
			return nil, b.fail(end.name, key, err)
		}
	}
	if sp.last.less(sp.first) {
		// Trimmed between the two reads: nothing of the last read is left.
		sp.length = 0
		sp.first, sp.last = streamID{}, streamID{}
	}
	return sp, nil
}

// errStreamGone is a stream deleted since it was found: no group needs
// anything of it.
var errStreamGone = errors.New("stream deleted during the run")

// floors reads every consumer group's floor: the lower of its oldest
// pending ID and the ID right after its last-delivered-id. The oldest
// pending ID comes from the extended XPENDING with COUNT 1, which reads
// one PEL entry; the summary form walks every consumer, and a group may
// have hundreds of thousands. So the cost is one command per group,
// whatever the number of consumers or pending entries.
func (b *Backend) floors(ctx context.Context, key string) ([]groupFloor, error) {
	groups, err := b.client.XInfoGroups(ctx, key).Result()
	if err != nil && strings.Contains(err.Error(), "no such key") {
		return nil, fmt.Errorf("%w: %w", errStreamGone, b.failCtx(ctx, "XINFO GROUPS", key, err))
	}
	if err != nil {
		return nil, b.failCtx(ctx, "XINFO GROUPS", key, err)
	}
	out := make([]groupFloor, 0, len(groups))
	for _, g := range groups {
		last, err := parseID(g.LastDeliveredID)
		if err != nil {
			return nil, b.fail("XINFO GROUPS", key, err)
		}
		f := last.next()
		if g.Pending > 0 {
			pe, err := b.client.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: key, Group: g.Name, Start: "-", End: "+", Count: 1}).Result()
			if err != nil && strings.HasPrefix(err.Error(), "NOGROUP") {
				continue // destroyed since XINFO GROUPS: it needs nothing
			}
			if err != nil {
				return nil, b.failCtx(ctx, "XPENDING", key+" "+g.Name+" - + 1", err)
			}
			if len(pe) == 1 {
				lower, err := parseID(pe[0].ID)
				if err != nil {
					return nil, b.fail("XPENDING", key+" "+g.Name, err)
				}
				f = minIDOf(f, lower)
			}
		}
		out = append(out, groupFloor{name: g.Name, floor: f, pending: g.Pending, lag: g.Lag})
	}
	return out, nil
}

// holdBack applies the consumer-group floor to a planned stream: it keeps
// deletions and quarantine moves below the floor, counts per group the
// entries retention would remove that the group still needs, and takes
// them out of the planned removals. Apply enforces the floor again, live
// and atomically (trimScript, delScript); this is the report.
func (b *Backend) holdBack(ctx context.Context, sp *streamPlan) error {
	f, ok := sp.floor()
	if !ok {
		return nil
	}
	s := &sp.stats
	below := sp.del[:0:0]
	for _, id := range sp.del {
		if id.less(f) {
			below = append(below, id)
		} else {
			sp.heldDel = append(sp.heldDel, id)
		}
	}
	sp.del = below
	s.RemovedAge -= int64(len(sp.heldDel))
	var corrupt []corruptEntry
	for _, c := range sp.corrupt {
		if c.id.less(f) {
			corrupt = append(corrupt, c)
		}
	}
	if n := len(sp.corrupt) - len(corrupt); n > 0 {
		s.Quarantined -= int64(n)
		s.Notes = append(s.Notes, fmt.Sprintf("%d unreadable entries of %s left in place: a consumer group still needs them", n, sp.key))
		sp.keptUnreadable += int64(n)
	}
	sp.corrupt = corrupt

	held, prefix := sp.heldBack(sp.groups)
	streamStats(s).HeldBack = held
	// The held-back part of the prefix is its newest: take it from the
	// rule that removes the newest first.
	for _, r := range []*int64{&s.RemovedBytes, &s.RemovedCount, &s.RemovedAge} {
		d := min(prefix, *r)
		*r -= d
		prefix -= d
	}
	// The oldest entry kept is the oldest a group holds back, if that
	// is older than retention's oldest survivor.
	if !sp.boundary.isZero() && f.less(sp.boundary) {
		if err := b.oldestFrom(ctx, sp, f); err != nil {
			return err
		}
	}
	return nil
}

// heldBack counts, per group, the entries retention removes that the
// group still needs: those of the trimmed prefix at or above its floor,
// and the records to delete at or above it. prefix is the count for the
// lowest floor, the part of the prefix no group lets go.
//
// It reads nothing: its cost is bounded by the number of groups. Counts
// are exact when the stream was read whole, or when the group has
// nothing pending and XINFO GROUPS knows its lag (the entries after its
// last-delivered-id); otherwise they are estimated from the IDs and
// marked Estimated.
func (sp *streamPlan) heldBack(groups []groupFloor) (held []backends.HeldBack, prefix int64) {
	lowest, _ := lowestFloor(groups)
	keptAbove, keptExact := sp.keptAbove()
	for _, g := range groups {
		var n int64
		exact := true
		if !sp.boundary.isZero() && g.floor.less(sp.boundary) {
			var from int64 // entries at or above the floor
			switch {
			case sp.scan != nil:
				from = sp.scan.from[g.floor]
			case g.pending == 0 && g.lag >= 0 && keptExact:
				from = g.lag
			default:
				from, exact = sp.length-sp.estimateBelow(g.floor), false
			}
			exact = exact && keptExact
			n = max(0, from-keptAbove)
			if g.floor == lowest {
				prefix = n
			}
		}
		for _, ids := range [][]streamID{sp.del, sp.heldDel} {
			for _, id := range ids {
				if !id.less(g.floor) {
					n++
				}
			}
		}
		if n > 0 {
			held = append(held, backends.HeldBack{Stream: sp.key, Group: g.name, Entries: n, Estimated: !exact})
		}
	}
	return held, prefix
}

// keptAbove is the number of entries at or above the boundary, and
// whether it is exact (counted by a scan or a walk, not estimated).
func (sp *streamPlan) keptAbove() (int64, bool) {
	if sp.scan != nil {
		return sp.scan.above, true
	}
	if sp.walked >= 0 {
		return sp.walked, true
	}
	exact := !sp.first.less(sp.boundary) || sp.last.less(sp.boundary) // estimateBelow is exact at both ends
	return sp.length - sp.estimateBelow(sp.boundary), exact
}

// estimateBelow estimates how many entries have an ID below id by
// interpolating over the stream's ID times, since Redis cannot count a
// range without reading it. It is exact at both ends.
func (sp *streamPlan) estimateBelow(id streamID) int64 {
	switch {
	case !sp.first.less(id):
		return 0
	case sp.last.less(id):
		return sp.length
	}
	span := float64(sp.last.ms-sp.first.ms) + 1
	n := int64(math.Round(float64(id.ms-sp.first.ms) / span * float64(sp.length)))
	return min(max(n, 1), sp.length-1)
}

// addStats adds a stream's stats to the total.
func addStats(t *backends.Stats, s backends.Stats) {
	t.RecordsBefore += s.RecordsBefore
	t.RecordsAfter += s.RecordsAfter
	t.RemovedAge += s.RemovedAge
	t.RemovedCount += s.RemovedCount
	t.RemovedBytes += s.RemovedBytes
	t.Quarantined += s.Quarantined
	t.BytesBefore += s.BytesBefore
	t.BytesAfter += s.BytesAfter
	if s.HasOldest && (!t.HasOldest || s.OldestKept < t.OldestKept) {
		t.OldestKept, t.HasOldest = s.OldestKept, true
	}
	t.Notes = append(t.Notes, s.Notes...)
	t.Debt = append(t.Debt, s.Debt...)
	if s.Stream != nil {
		ts := streamStats(t)
		ts.HeldBack = append(ts.HeldBack, s.Stream.HeldBack...)
		ts.Estimated = ts.Estimated || s.Stream.Estimated
		ts.RemovedCorrupt += s.Stream.RemovedCorrupt
	}
}

// streamStats returns s's stream group, adding it when s has none yet.
func streamStats(s *backends.Stats) *backends.StreamStats {
	if s.Stream == nil {
		s.Stream = &backends.StreamStats{}
	}
	return s.Stream
}

// progress reports entries done out of entries to do.
type progress struct {
	fn          backends.Progress
	phase       string
	done, total int64
}

func (p *progress) add(n int64) {
	if n == 0 {
		return
	}
	p.done += n
	if p.fn != nil {
		p.fn(backends.Step{Phase: p.phase, Unit: backends.Entries, Done: p.done, Total: p.total})
	}
}

// fixAgeByID is the remedy the clock guard offers besides time_fn: the
// stream IDs carry the server's time.
const fixAgeByID = "use age_by: id (the stream IDs carry the server's time)"

// addDates sums the streams' ages and future-dated records into t. t has
// ages only when every stream was read whole (planScan).
func addDates(t *backends.Stats, streams []*streamPlan) {
	t.Ages = &backends.Ages{}
	for _, sp := range streams {
		s := sp.stats
		if s.Future > 0 {
			t.Future += s.Future
			t.NewestFuture = max(t.NewestFuture, s.NewestFuture)
		}
		if s.Ages == nil && sp.length > 0 {
			t.Ages = nil
		}
		if s.Ages != nil && t.Ages != nil {
			t.Ages.Merge(*s.Ages)
		}
	}
}
