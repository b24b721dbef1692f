package redisstream

import (
	"context"
	"fmt"
	"time"
)

// entry is one stream entry exactly as the server holds it: its ID and
// its field/value pairs in their order, duplicates included (XADD allows
// a field twice; a map would lose one).
type entry struct {
	id     string
	fields []string // name, value, name, value, …
}

// size is what reading the entry costs: its ID and every name and value.
func (e entry) size() int64 {
	n := int64(len(e.id))
	for _, f := range e.fields {
		n += int64(len(f))
	}
	return n
}

// get returns the value of field name as redis-py's dict of the entry
// holds it (Papyra's reader): the last pair of that name wins.
func (e entry) get(name string) (string, bool) {
	for i := len(e.fields) - 2; i >= 0; i -= 2 {
		if e.fields[i] == name {
			return e.fields[i+1], true
		}
	}
	return "", false
}

// xrange reads at most count entries of key between start and end, with
// XRANGE, or XREVRANGE (start is then the high end) when rev. It keeps
// every field in order, which go-redis's XMessage (a map) does not.
func (b *Backend) xrange(ctx context.Context, key, start, end string, count int64, rev bool) ([]entry, error) {
	cmd := "XRANGE"
	if rev {
		cmd = "XREVRANGE"
	}
	res, err := b.client.Do(ctx, cmd, key, start, end, "COUNT", count).Slice()
	if err != nil {
		return nil, b.failCtx(ctx, cmd, key, err)
	}
	out := make([]entry, 0, len(res))
	for _, r := range res {
		e, err := parseEntry(r)
		if err != nil {
			return nil, b.fail(cmd, key, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// parseEntry turns one element of an XRANGE reply into an entry.
func parseEntry(r any) (entry, error) {
	pair, ok := r.([]any)
	if !ok || len(pair) != 2 {
		return entry{}, fmt.Errorf("unexpected entry %v", r)
	}
	id, ok := pair[0].(string)
	if !ok {
		return entry{}, fmt.Errorf("unexpected entry ID %v", pair[0])
	}
	raw, _ := pair[1].([]any) // nil for an entry deleted under a PEL (XCLAIM); not in XRANGE
	e := entry{id: id, fields: make([]string, 0, len(raw))}
	for _, f := range raw {
		s, ok := f.(string)
		if !ok {
			return entry{}, fmt.Errorf("entry %s: unexpected field %v", id, f)
		}
		e.fields = append(e.fields, s)
	}
	return e, nil
}

// Step sizing. Redis runs one command at a time, so what one command
// costs is what a Papyra XADD may wait behind it. The cost of reading
// entries grows with their bytes, not their number: 1,000 small Papyra
// records are 0.3 MB, 1,000 entries of 10 MB are 10 GB. Every read is
// therefore sized by bytes (stepBytes, at the size of the largest entry
// the last steps read), by the time the previous one took (stepTime),
// and capped by batch_size, down to a single entry, whose cost is the
// floor: no command can read less than one whole entry.
//
// Not guaranteed: Redis cannot tell how large the entries ahead are
// without reading them (reading entry by entry in a script costs several
// times the entry for a large one, and ten times the time for small
// ones), so a step sized on small entries that meets a run of large ones
// reads up to its count of them. The count grows at most twofold per
// step, and falls to what the bytes allow as soon as a step has read a
// large entry.
const (
	stepBytes = 1 << 20
	stepTime  = 5 * time.Millisecond
)

// reader reads a range of one stream in paced steps, oldest first (or
// newest first when rev), each sized by sizer.
type reader struct {
	b           *Backend
	key         string
	cursor, end string
	rev         bool
	pace        *pacer
	size        sizer
	ended       bool
}

// newReader reads key from start to end (inclusive; "(" makes either
// exclusive), at most max entries per step.
func (b *Backend) newReader(key, start, end string, rev bool, max int64) *reader {
	return &reader{b: b, key: key, cursor: start, end: end, rev: rev, pace: b.pacer(key), size: newSizer(max)}
}

// next reads the next step, of at most limit entries (limit <= 0: no
// limit but the sizer's); an empty result is the end of the range.
func (r *reader) next(ctx context.Context, limit int64) ([]entry, error) {
	if r.ended {
		return nil, nil
	}
	if err := r.pace.wait(ctx); err != nil {
		return nil, err
	}
	count := r.size.next()
	if limit > 0 {
		count = min(count, limit)
	}
	msgs, err := r.b.xrange(ctx, r.key, r.cursor, r.end, count, r.rev)
	took := r.pace.done()
	if err != nil {
		return nil, err
	}
	var largest int64
	for _, m := range msgs {
		largest = max(largest, m.size())
	}
	r.size.done(int64(len(msgs)), largest, took)
	if int64(len(msgs)) < count {
		r.ended = true
	} else {
		r.cursor = "(" + msgs[len(msgs)-1].id
	}
	return msgs, nil
}

// sizer chooses how many entries the next command of one loop touches.
type sizer struct {
	n, max int64
	// recent is the size of the largest entry read lately: the largest
	// of the last step, or half the previous figure, whichever is more.
	recent int64
}

// newSizer starts every loop at one entry: the entries ahead are
// unknown, and one entry is the only count whose cost is bounded by
// nothing but the entry itself. It grows from there (see done).
func newSizer(max int64) sizer {
	return sizer{max: max, n: 1}
}

// next is the count for the next command.
func (s *sizer) next() int64 { return s.n }

// done adjusts the count after a command that touched n entries, the
// largest of largest bytes (0: unknown), in took. The count grows, at
// most doubling, to what the time taken predicts fits stepTime, and to
// what stepBytes allows at the recent entry size: a large entry brings
// it down to one at once, and as the entries after it turn out small,
// the figure halves at every step, so that the loop is back at full
// size within some twenty steps instead of reading one entry at a time
// to the end.
func (s *sizer) done(n, largest int64, took time.Duration) {
	s.recent = max(largest, s.recent/2)
	next := 2 * max(s.n, n)
	if took > 0 {
		next = min(next, int64(float64(max(n, 1))*float64(stepTime)/float64(took)))
	}
	if s.recent > 0 {
		next = min(next, stepBytes/s.recent)
	}
	s.n = min(s.max, max(1, next))
}

// trimBytes bounds the bytes one trim step frees where the plan read the
// entries: freeing a node costs Redis far less than reading it (about
// 0.1 ms per MB against several ms per MB here), so a trim step may free
// more than a read step reads.
const trimBytes = 16 << 20

// cutter records, while the plan reads entries oldest first, the IDs at
// which the bytes read since the previous cut reach trimBytes. Apply trims
// up to each cut in turn (trim), so that a step frees at most trimBytes
// plus one entry whatever the mix of sizes, and needs to read nothing to
// know it. A cut is the ID right after the entry that completed a run:
// MINID removes the entries below it.
type cutter struct {
	bytes int64
	cuts  []streamID
	// counts[i] is how many entries were read below cuts[i]; n in all.
	counts []int64
	n      int64
	last   streamID
	open   bool
}

// add counts one entry read, in order.
func (c *cutter) add(id streamID, size int64) {
	c.bytes += size
	c.n++
	c.last, c.open = id, true
	if c.bytes >= trimBytes {
		c.cuts = append(c.cuts, id.next())
		c.counts = append(c.counts, c.n)
		c.bytes, c.open = 0, false
	}
}

// end closes the last run and returns the cuts, and the ID below which
// every entry was read (zero when none was).
func (c *cutter) end() (cuts []streamID, readBelow streamID) {
	if c.open {
		c.cuts = append(c.cuts, c.last.next())
		c.counts = append(c.counts, c.n)
		c.open = false
	}
	if len(c.cuts) > 0 {
		readBelow = c.cuts[len(c.cuts)-1]
	}
	return c.cuts, readBelow
}
