package segments

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"strconv"
	"time"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/backends/internal/classify"
	"github.com/papyra-compact/papyra-compact/backends/internal/livefile"
	"github.com/papyra-compact/papyra-compact/backends/internal/pyjson"
	"github.com/papyra-compact/papyra-compact/backends/internal/scratch"
)

// Emergency drops (backends.Shedder): a rotated segment removed whole
// because the file system is running out of space, whatever retention
// says. They reuse the compaction's own machinery rather than a copy of
// it: Shed plans the one segment as a drop and every other segment as
// untouched, and Apply carries that plan out exactly as it carries out a
// retention drop — the writer held still by the anchor, the segment
// found by inode wherever the writer has rotated it, renamed aside with
// RENAME_NOREPLACE, checked to be the planned inode at the planned size,
// only then unlinked, its corrupt lines quarantined first, and a run
// record that Recover resolves after a kill. The active file is never a
// candidate.

var _ backends.Shedder = (*Backend)(nil)

// FixNoKeepFree is the remedy the clock guard offers for emergency drops
// on a store whose timestamps are not Unix time.
const FixNoKeepFree = "leave keep_free out for this target"

// ShedCandidates implements backends.Shedder: every rotated segment,
// oldest position first, each read whole to learn its records' time span.
func (b *Backend) ShedCandidates(ctx context.Context, sp backends.ShedPolicy) ([]backends.ShedSegment, error) {
	p, err := b.shedPlan(ctx)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	out := make([]backends.ShedSegment, 0, len(p.segs))
	newest := math.Inf(-1)
	for _, s := range p.segs {
		if s.index == 0 {
			continue // the active file: never shed
		}
		c, finite, err := shedInfo(ctx, s, sp)
		if err != nil {
			return nil, err
		}
		newest = max(newest, finite)
		out = append(out, c)
	}
	// The clock guard, as for age retention: ages of a store stamped
	// with seconds since boot mean nothing (every record would look
	// decades old).
	if err := sp.CheckClock(b.path, newest, FixNoKeepFree); err != nil {
		return nil, err
	}
	return out, nil
}

// shedHeadroom is how much of the agent's headroom (fsutil.Headroom) an
// emergency drop may write into: its recovery record and an empty
// scratch file take a few hundred bytes, and the drop frees a whole
// segment. It must run when free space is already below the headroom —
// that is when it is needed most. Quarantining a segment's corrupt lines
// may use the rest of it; a segment whose lines need more is not dropped
// (the error says so) until there is room.
const shedHeadroom = 64 << 10

// Shed implements backends.Shedder.
func (b *Backend) Shed(ctx context.Context, sp backends.ShedPolicy, want backends.ShedSegment) (backends.ShedStats, error) {
	b.space.AllowIntoHeadroom(shedHeadroom)
	defer b.space.AllowIntoHeadroom(0)
	p, err := b.shedPlan(ctx)
	if err != nil {
		return backends.ShedStats{}, err
	}
	defer p.Close()
	var g *seg
	for _, s := range p.segs {
		if s.id == (fileID{Dev: want.Dev, Ino: want.Ino}) {
			g = s
		}
	}
	switch {
	case g == nil:
		return backends.ShedStats{}, fmt.Errorf("%s: %w (segment %s is no longer part of the store)", b.path, backends.ErrChanged, want.Name)
	case g.index == 0:
		return backends.ShedStats{}, fmt.Errorf("%w: %s is the active file now: never dropped", backends.ErrUnsafe, g.path)
	case g.st.Size != want.Size:
		return backends.ShedStats{}, fmt.Errorf("%s: %w (segment %s is %d bytes, not %d as listed)", b.path, backends.ErrChanged, g.path, g.st.Size, want.Size)
	}
	// The clock guard judged the whole store in ShedCandidates, under
	// the same lock; this is the same inode at the same size, so the
	// same records.
	c, _, err := shedInfo(ctx, g, sp)
	if err != nil {
		return backends.ShedStats{}, err
	}
	if c.Keep != "" {
		return backends.ShedStats{}, fmt.Errorf("%w: emergency drop of %s: it %s", backends.ErrUnsafe, g.path, c.Keep)
	}
	// Apply quarantines the lines Papyra cannot read from what the scan
	// wrote to the scratch file; a segment with none needs neither the
	// second read nor scratch space on a file system short of it.
	if p.scratch, err = livefile.NewScratch(b.space, b.env.ScratchDir); err != nil {
		return backends.ShedStats{}, err
	}
	if c.Other > 0 {
		sc := &scanner{
			pol:   classify.Policy{MaxLine: maxLine, MaxDepth: pyjson.DefaultMaxDepth},
			w:     bufio.NewWriterSize(p.scratch.Writer(), 256<<10),
			maxTS: math.Inf(-1),
		}
		if err := sc.scan(ctx, p, g); err != nil {
			return backends.ShedStats{}, err
		}
	}
	// Every record of g falls to the cut; every other segment stays as
	// it is (unread, untouched). Apply quarantines g's corrupt lines and
	// removes it by inode.
	g.act, g.keepFrom = actDrop, g.passed
	s := p.segStats()
	s.Dropped, s.Untouched = 1, int64(len(p.segs)-1)
	p.stats.RecordsBefore, p.stats.BytesBefore = g.recs, g.st.Size
	st, err := b.Apply(ctx, p)
	out := backends.ShedStats{
		Records: c.Records, Other: c.Other, Bytes: g.st.Size,
		Quarantined: st.Quarantined, QuarantineFile: st.QuarantineFile,
		Oldest: c.Oldest, Newest: c.Newest, HasTimes: c.HasTimes,
	}
	if err != nil {
		return out, fmt.Errorf("emergency drop of %s: %w", g.path, err)
	}
	return out, nil
}

// shedPlan opens the store's segments in one consistent view, for
// ShedCandidates and Shed. It reads nothing and writes nothing.
func (b *Backend) shedPlan(ctx context.Context) (*plan, error) {
	st, err := b.openStore()
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w", b.path, backends.ErrNothingToDo)
		}
		return nil, err
	}
	p := &plan{b: b, st: st}
	if err := p.snapshot(ctx); err != nil {
		p.Close()
		return nil, err
	}
	if len(p.segs) == 0 {
		p.Close()
		return nil, fmt.Errorf("%s: %w", b.path, backends.ErrNothingToDo)
	}
	return p, nil
}

// shedInfo reads segment g whole and describes it as a candidate, and
// returns its newest finite timestamp (-Inf when none) for the clock
// guard. It writes nothing: no scratch file on a file system short of
// space.
//
// Its Time, which orders drops and is judged against min_keep, is the
// newest record timestamp. When g has lines whose time cannot be read
// (a record with a null, missing, NaN or -Infinity timestamp, or a line
// too deep to judge), the file's modification time is taken instead when
// it is later: such a line may have been written after the newest dated
// record, and the last write to the file was no earlier than it. With no
// dated record at all, the modification time alone decides. Corrupt
// lines carry no time and change nothing (they are quarantined). A
// +Infinity timestamp, or one after now, is a record Papyra keeps
// forever or a writer's clock gone wrong: the segment is never shed.
func shedInfo(ctx context.Context, g *seg, sp backends.ShedPolicy) (backends.ShedSegment, float64, error) {
	key := backends.ShedKey{Dev: g.id.Dev, Ino: g.id.Ino, Size: g.st.Size, MtimeNs: g.st.Mtim.Nano(), CtimeNs: g.st.Ctim.Nano()}
	f, ok := sp.Cache.Get(key)
	if !ok {
		var err error
		if f, err = shedRead(ctx, g); err != nil {
			return backends.ShedSegment{}, f.NewestFinite, err
		}
		sp.Cache.Put(key, f)
	}
	c := backends.ShedSegment{
		Name: g.path, Position: g.index, Dev: g.id.Dev, Ino: g.id.Ino, Size: g.st.Size,
		Records: f.Records, Other: f.Other, Oldest: f.Oldest, Newest: f.Newest, HasTimes: f.HasTimes,
	}
	finite, undated := f.NewestFinite, f.Undated
	if !c.HasTimes {
		c.Oldest, c.Newest = 0, 0
	}
	mtime := float64(time.Unix(g.st.Mtim.Unix()).UnixNano()) / 1e9
	switch {
	case !c.HasTimes:
		c.Time, c.TimeFrom = mtime, backends.NewestFromMtime
	case undated && mtime > c.Newest:
		c.Time, c.TimeFrom = mtime, backends.NewestFromMtime
	default:
		c.Time, c.TimeFrom = c.Newest, backends.NewestFromRecords
	}
	now := float64(sp.Now.UnixNano()) / 1e9
	switch {
	case c.Time > now:
		c.Keep = "holds a record stamped after now (" + fmtTS(c.Time) + "): a writer's clock is wrong or Papyra keeps it forever"
	case c.Time > sp.Cutoff():
		what := "holds a record younger than min_keep (newest " + fmtTS(c.Time) + ")"
		if c.TimeFrom == backends.NewestFromMtime {
			what = "was written to less than min_keep ago (modification time " + fmtTS(c.Time) + ") and holds lines whose time cannot be read"
		}
		c.Keep = what
	}
	return c, finite, nil
}

// shedRead reads segment g whole, writing nothing, and returns what its
// lines say about time.
func shedRead(ctx context.Context, g *seg) (backends.ShedFacts, error) {
	f := backends.ShedFacts{Oldest: math.Inf(1), Newest: math.Inf(-1), NewestFinite: math.Inf(-1)}
	// Every record passes (no age retention): the block's entries carry
	// each record's timestamp.
	pol := classify.Policy{MaxLine: maxLine, MaxDepth: pyjson.DefaultMaxDepth}
	err := classify.File(ctx, g.f, g.st.Size, pol, func(b *classify.Block) error {
		if b.Torn {
			f.Other++ // a torn last line: nothing appends to a rotated segment
		}
		r := scratch.NewReader(bytes.NewReader(b.Entries))
		for range b.Lines {
			e, err := r.Next()
			if err != nil {
				return err
			}
			switch e.Code {
			case scratch.Keep:
				f.Records++
				if !e.HasTS || math.IsNaN(e.TS) || math.IsInf(e.TS, -1) {
					f.Undated = true
					continue
				}
				f.Oldest, f.Newest, f.HasTimes = min(f.Oldest, e.TS), max(f.Newest, e.TS), true
				if !math.IsInf(e.TS, 1) {
					f.NewestFinite = max(f.NewestFinite, e.TS)
				}
			case scratch.Unsure:
				// Papyra may read it as a record; its time is unknown.
				f.Other++
				f.Undated = true
			case scratch.Corrupt:
				f.Other++
			}
		}
		return nil
	})
	if err != nil {
		return f, fmt.Errorf("scan %s: %w", g.path, err)
	}
	return f, nil
}

// fmtTS prints Unix seconds in UTC when they are a plausible time.
func fmtTS(ts float64) string {
	if math.IsInf(ts, 0) || math.IsNaN(ts) || ts < 0 || ts > 1e11 {
		return strconv.FormatFloat(ts, 'g', -1, 64)
	}
	sec, frac := math.Modf(ts)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC().Format(time.RFC3339)
}
