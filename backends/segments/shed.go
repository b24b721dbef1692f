package segments

import (
	"bufio"
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
	p, sc, err := b.shedPlan(ctx, sp)
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
		if err := sc.scan(ctx, p, s); err != nil {
			return nil, err
		}
		c, finite, err := p.shedInfo(s, sp)
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

// Shed implements backends.Shedder.
func (b *Backend) Shed(ctx context.Context, sp backends.ShedPolicy, want backends.ShedSegment) (backends.ShedStats, error) {
	p, sc, err := b.shedPlan(ctx, sp)
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
	if err := sc.scan(ctx, p, g); err != nil {
		return backends.ShedStats{}, err
	}
	// The clock guard judged the whole store in ShedCandidates, under
	// the same lock; this is the same inode at the same size, so the
	// same records.
	c, _, err := p.shedInfo(g, sp)
	if err != nil {
		return backends.ShedStats{}, err
	}
	if c.Keep != "" {
		return backends.ShedStats{}, fmt.Errorf("%w: emergency drop of %s: it %s", backends.ErrUnsafe, g.path, c.Keep)
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

// shedPlan opens the store's segments in one consistent view, with a
// scratch file and a scanner that reads records without any retention
// (every record passes), for ShedCandidates and Shed.
func (b *Backend) shedPlan(ctx context.Context, sp backends.ShedPolicy) (*plan, *scanner, error) {
	st, err := b.openStore()
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, fmt.Errorf("%s: %w", b.path, backends.ErrNothingToDo)
		}
		return nil, nil, err
	}
	p := &plan{b: b, st: st, policy: backends.Policy{Now: sp.Now}}
	ok := false
	defer func() {
		if !ok {
			p.Close()
		}
	}()
	if err := p.snapshot(ctx); err != nil {
		return nil, nil, err
	}
	if len(p.segs) == 0 {
		return nil, nil, fmt.Errorf("%s: %w", b.path, backends.ErrNothingToDo)
	}
	if p.scratch, err = livefile.NewScratch(b.space, b.env.ScratchDir); err != nil {
		return nil, nil, err
	}
	sc := &scanner{
		pol:   classify.Policy{MaxLine: maxLine, MaxDepth: pyjson.DefaultMaxDepth},
		w:     bufio.NewWriterSize(p.scratch.Writer(), 256<<10),
		maxTS: math.Inf(-1),
	}
	ok = true
	return p, sc, nil
}

// shedInfo describes scanned segment g as a candidate, and returns its
// newest finite timestamp (-Inf when none) for the clock guard.
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
func (p *plan) shedInfo(g *seg, sp backends.ShedPolicy) (backends.ShedSegment, float64, error) {
	c := backends.ShedSegment{
		Name: g.path, Position: g.index, Dev: g.id.Dev, Ino: g.id.Ino, Size: g.st.Size,
		Oldest: math.Inf(1), Newest: math.Inf(-1),
	}
	finite := math.Inf(-1)
	undated := g.unsure > 0
	err := p.eachPassed(g, func(_ int64, e scratch.Entry) bool {
		if e.Code != scratch.Keep {
			return true // an Unsure line: counted below
		}
		c.Records++
		switch {
		case !e.HasTS || math.IsNaN(e.TS) || math.IsInf(e.TS, -1):
			undated = true
		default:
			c.Oldest, c.Newest, c.HasTimes = min(c.Oldest, e.TS), max(c.Newest, e.TS), true
			if !math.IsInf(e.TS, 1) {
				finite = max(finite, e.TS)
			}
		}
		return true
	})
	if err != nil {
		return c, finite, fmt.Errorf("read scratch file: %w", err)
	}
	c.Other = g.unsure + g.corrupt
	if g.torn {
		c.Other++
	}
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

// fmtTS prints Unix seconds in UTC when they are a plausible time.
func fmtTS(ts float64) string {
	if math.IsInf(ts, 0) || math.IsNaN(ts) || ts < 0 || ts > 1e11 {
		return strconv.FormatFloat(ts, 'g', -1, 64)
	}
	sec, frac := math.Modf(ts)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC().Format(time.RFC3339)
}
