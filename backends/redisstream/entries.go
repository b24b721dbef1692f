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
// costs is what a Papyra XADD may wait behind it. The cost of reading or
// trimming entries grows with their bytes, not their number: 1,000 small
// Papyra records are 0.3 MB, 1,000 entries of 10 MB are 10 GB. Every
// read and every trim is therefore sized by bytes (stepBytes), by the
// time the previous one took (stepTime), and capped by batch_size or
// trim_limit, down to a single entry, whose cost is the floor: no
// command can read or free less than one whole entry.
const (
	stepBytes = 1 << 20
	stepTime  = 5 * time.Millisecond
)

// sizer chooses how many entries the next command of one loop touches.
type sizer struct {
	n, max  int64
	largest *int64 // the largest entry seen in this stream, shared by its loops
}

// newSizer starts every loop at one entry: the entries ahead are
// unknown, and one entry is the only count whose cost is bounded by
// nothing but the entry itself. It grows from there (see done).
func newSizer(max int64, largest *int64) *sizer {
	return &sizer{max: max, largest: largest, n: 1}
}

// byBytes is the count whose bytes, at the largest entry seen, fit
// stepBytes (at least one, at most max).
func (s *sizer) byBytes() int64 {
	if *s.largest <= 0 {
		return s.max
	}
	return min(s.max, max(1, stepBytes / *s.largest))
}

// next is the count for the next command.
func (s *sizer) next() int64 { return s.n }

// seen records an entry's size.
func (s *sizer) seen(size int64) {
	if size > *s.largest {
		*s.largest = size
	}
}

// done adjusts the count after a command that touched n entries in took:
// it shrinks in proportion when the command took longer than stepTime,
// and otherwise grows, at most doubling, to what the bytes allow at the
// largest entry seen in the stream so far.
//
// Not guaranteed: a read of n entries where the stream turns from small
// entries to large ones reads up to n large ones before the sizes are
// known (Redis has no way to ask how large the entries ahead are without
// reading them). The largest entry seen anywhere in the stream (XINFO
// STREAM's first and last entries, every read, every trim's probe)
// bounds n from then on.
func (s *sizer) done(n int64, took time.Duration) {
	next := min(s.byBytes(), 2*max(s.n, n))
	if took > stepTime {
		next = min(next, int64(float64(max(n, 1))*float64(stepTime)/float64(took)))
	}
	s.n = min(s.max, max(1, next))
}
