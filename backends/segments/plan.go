package segments

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/backends/internal/classify"
	"github.com/papyra-compact/papyra-compact/backends/internal/livefile"
	"github.com/papyra-compact/papyra-compact/backends/internal/pyjson"
	"github.com/papyra-compact/papyra-compact/backends/internal/scratch"
)

// action is what a run does to one segment.
type action uint8

const (
	actUntouched action = iota // left exactly as it is
	actDrop                    // every line goes: unlinked whole
	actRewrite                 // survivors copied into a replacement
)

// seg is one segment as planned. Apply addresses it by inode, never by
// the name it had at planning time: the writer may have rotated it since.
type seg struct {
	index int    // suffix at planning time (0: the active file)
	path  string // path at planning time, for messages and quarantine
	f     *os.File
	st    unix.Stat_t // at planning time; st.Size is the planned size
	id    fileID

	read   bool  // scanned (false: beyond the retention cut, dropped unread)
	end    int64 // end of the last complete line scanned
	lines  int64 // complete lines in [0, end)
	torn   bool  // [end, size) is a last line without '\n'
	scrOff int64 // this segment's region of the scratch file
	scrEnd int64

	recs, aged, passed int64 // records, removed by age, passed age
	corrupt, blank     int64
	corruptLen         int64   // the corrupt lines' total length
	unsure             int64   // pyjson.Unsure lines past age retention
	passedSize         int64   // summed repr sizes of passed records
	minPassedTS        float64 // smallest timestamp among passed records
	keepFrom           int64   // index among passed records of the first kept
	removedCount       int64   // removed by max_records
	removedBytes       int64   // removed by max_total_bytes

	act       action
	keptBytes int64
	oldest    float64
	// Of the kept records (of the passed ones until decided): how many
	// are future-dated (Policy.Future) and the newest of them.
	future       int64
	newestFuture float64
	// Of all the passed records, as scanned: what the segment keeps
	// when its rewrite is skipped (plan.SkipRewrites).
	scanFuture       int64
	scanNewestFuture float64
}

func (s *seg) kept() int64 { return s.passed - s.keepFrom }

// plan is the rotating implementation of backends.Plan.
type plan struct {
	b       *Backend
	st      store
	segs    []*seg // oldest first; the active file (if any) last
	listed  listing
	scratch *livefile.Scratch
	policy  backends.Policy
	stats   backends.Stats
	// cheap is what the plan does without its rewrites (WithoutRewrites),
	// nil when it rewrites nothing.
	cheap *backends.Stats
}

func (p *plan) Stats() backends.Stats {
	s := p.stats
	s.Notes = append([]string(nil), p.stats.Notes...)
	if s.Segments != nil { // Apply adds to its copy
		seg := *s.Segments
		s.Segments = &seg
	}
	return s
}

func (p *plan) Close() error {
	var errs []error
	for _, s := range p.segs {
		if s.f != nil {
			errs = append(errs, s.f.Close())
			s.f = nil
		}
	}
	if p.scratch != nil {
		errs = append(errs, p.scratch.Close())
		p.scratch = nil
	}
	return errors.Join(errs...)
}

// Plan implements backends.Backend. It opens every segment in one
// consistent view, reads them newest first until the retention cut is
// known, and decides per segment; see the package doc. It changes nothing.
func (b *Backend) Plan(ctx context.Context, pol backends.Policy) (backends.Plan, error) {
	st, err := b.openStore()
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w", b.path, backends.ErrNothingToDo)
		}
		return nil, err
	}
	p := &plan{b: b, st: st, policy: pol}
	ok := false
	defer func() {
		if !ok {
			p.Close()
		}
	}()
	if err := p.snapshot(ctx); err != nil {
		return nil, err
	}
	if len(p.segs) == 0 {
		return nil, fmt.Errorf("%s: %w", b.path, backends.ErrNothingToDo)
	}
	if p.scratch, err = livefile.NewScratch(b.space, b.env.ScratchDir); err != nil {
		return nil, err
	}
	if err := p.retention(ctx); err != nil {
		return nil, err
	}
	if err := p.decide(); err != nil {
		return nil, err
	}
	ok = true
	return p, nil
}

// snapshot opens every segment such that the set of names and inodes was
// the same before and after all the opens: a rotation in between would
// otherwise make one inode appear twice or not at all.
func (p *plan) snapshot(ctx context.Context) error {
	for try := 0; try < snapshotTries; try++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("compact %s: %w", p.b.path, err)
		}
		l, err := p.st.list()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("%s: %w", p.b.path, backends.ErrNothingToDo)
			}
			return err
		}
		segs, consistent, err := p.openAll(l)
		if err == nil && consistent {
			var l2 listing
			if l2, err = p.st.list(); err == nil && l2.same(l) {
				p.segs, p.listed = segs, l
				return nil
			}
		}
		for _, s := range segs {
			s.f.Close()
		}
		if err != nil {
			return err
		}
		time.Sleep(time.Duration(try) * 50 * time.Microsecond)
	}
	return fmt.Errorf("%s: %w (the writer kept rotating while the segments were opened)", p.b.path, backends.ErrChanged)
}

// openAll opens the segments of l, oldest first. consistent is false when
// a name no longer holds the inode l saw.
func (p *plan) openAll(l listing) (segs []*seg, consistent bool, err error) {
	for _, i := range l.indexes() {
		path := p.st.path(i)
		// Relative to the resolved directory, never following a link, and
		// never blocking on a FIFO put at the name since the listing (the
		// inode check below refuses it).
		f, err := p.st.d.Open(p.st.name(i), os.O_RDONLY|unix.O_NONBLOCK, 0)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ELOOP) {
				return segs, false, nil
			}
			return segs, false, fmt.Errorf("open segment: %w", err)
		}
		s := &seg{index: i, path: path, f: f, minPassedTS: math.Inf(1), oldest: math.Inf(1), newestFuture: math.Inf(-1)}
		segs = append(segs, s)
		if err := unix.Fstat(int(f.Fd()), &s.st); err != nil {
			return segs, false, fmt.Errorf("stat %s: %w", path, err)
		}
		s.id = idOf(&s.st)
		if s.id != l.ids[i] {
			return segs, false, nil
		}
		if err := checkSegment(path, i, &s.st); err != nil {
			return segs, false, err
		}
		if err := p.st.d.CheckFile(p.st.name(i), &s.st); err != nil {
			return segs, false, fmt.Errorf("%w: %w", backends.ErrUnsafe, err)
		}
	}
	return segs, true, nil
}

// retention reads the segments newest first. Papyra keeps, among the
// records that pass age retention, the newest N (max_records) and then
// the newest run whose repr sizes fit max_total_bytes; so once a segment
// holds the oldest kept record, every older segment is removed whole
// whatever it holds: any line there, even a corrupt one were it repaired,
// would fall to the same cut. Those segments are still read while that
// costs at most unreadBudget bytes, so that small stores get exact counts
// and every corrupt line quarantined; past the budget they are dropped
// unread. With max_age alone there is no cut and every segment is read.
func (p *plan) retention(ctx context.Context) error {
	remN, remB := int64(-1), int64(-1) // -1: no limit
	if n, ok := p.policy.CountLimit(); ok {
		remN = n
	}
	if n, ok := p.policy.ByteLimit(); ok {
		remB = n
	}
	sc := &scanner{
		pol:   classify.Policy{WantSize: remB >= 0, MaxLine: maxLine, MaxDepth: pyjson.DefaultMaxDepth},
		w:     bufio.NewWriterSize(p.scratch.Writer(), 256<<10),
		maxTS: math.Inf(-1),
	}
	sc.pol.Cutoff, sc.pol.HasAge = p.policy.AgeCutoff()
	if !p.policy.Now.IsZero() {
		sc.pol.Dates = &p.policy
		p.stats.Ages = &backends.Ages{}
	}
	for _, s := range p.segs {
		sc.total += s.st.Size
	}
	var (
		closed bool  // the oldest kept record has been found
		beyond int64 // bytes read past the cut
	)
	for i := len(p.segs) - 1; i >= 0; i-- {
		s := p.segs[i]
		if closed {
			// explain reads every segment, to date every record.
			if beyond+s.st.Size > unreadBudget && !p.policy.Explain {
				break // this and every older segment: dropped unread
			}
			beyond += s.st.Size
			if err := sc.scan(ctx, p, s); err != nil {
				return err
			}
			// All removed: by max_total_bytes while max_records would
			// still have kept them, by max_records after that.
			byBytes := s.passed
			if remN >= 0 {
				byBytes = min(byBytes, remN)
				remN -= byBytes
			}
			if remB < 0 {
				byBytes = 0
			}
			s.keepFrom, s.removedBytes, s.removedCount = s.passed, byBytes, s.passed-byBytes
			continue
		}
		if err := sc.scan(ctx, p, s); err != nil {
			return err
		}
		jc := s.passed
		if remN >= 0 && jc >= remN {
			jc, closed = remN, true
		}
		j := jc
		if remB >= 0 {
			var size int64
			var err error
			if j, size, err = p.suffixFit(s, jc, remB); err != nil {
				return err
			}
			closed = closed || j < jc
			remB -= size
		}
		if remN >= 0 {
			remN -= jc
		}
		s.keepFrom = s.passed - j
		s.removedCount = s.passed - jc
		s.removedBytes = jc - j
	}
	if err := p.policy.CheckClock(p.b.path, sc.maxTS, backends.FixDropAge); err != nil {
		return err
	}
	p.segStats().BytesRead = sc.done
	return nil
}

// segStats returns the plan's segment counts, adding them when missing.
func (p *plan) segStats() *backends.SegmentStats {
	if p.stats.Segments == nil {
		p.stats.Segments = &backends.SegmentStats{}
	}
	return p.stats.Segments
}

// suffixFit returns how many of the newest jc passed records of s fit in
// budget as Papyra's max_total_bytes walk takes them (newest first,
// stopping at the first that does not fit), and their summed size.
func (p *plan) suffixFit(s *seg, jc, budget int64) (int64, int64, error) {
	if jc == 0 {
		return 0, 0, nil
	}
	start := s.passed - jc
	total := s.passedSize
	if start > 0 {
		total = 0
		if err := p.eachPassed(s, func(i int64, e scratch.Entry) bool {
			if i >= start {
				total += e.Size
			}
			return true
		}); err != nil {
			return 0, 0, err
		}
	}
	if total <= budget {
		return jc, total, nil
	}
	j, run := int64(0), total
	err := p.eachPassed(s, func(i int64, e scratch.Entry) bool {
		if i < start {
			return true
		}
		if run <= budget {
			j = s.passed - i
			return false
		}
		run -= e.Size
		return true
	})
	if j == 0 {
		run = 0
	}
	return j, run, err
}

// eachPassed calls fn with the index and entry of every record of s that
// passed age retention, in file order, until fn returns false.
func (p *plan) eachPassed(s *seg, fn func(i int64, e scratch.Entry) bool) error {
	return scratch.EachKept(io.NewSectionReader(p.scratch, s.scrOff, s.scrEnd-s.scrOff), s.lines, fn)
}

// scanner is the state of the first pass, shared by all segments.
type scanner struct {
	pol     classify.Policy
	w       *bufio.Writer
	pos     int64 // scratch bytes written
	maxTS   float64
	records int64
	done    int64 // bytes read
	total   int64
}

// scan classifies every complete line of s, on every core, and writes its
// entries.
func (sc *scanner) scan(ctx context.Context, p *plan, s *seg) error {
	s.read = true
	s.scrOff = sc.pos
	size := s.st.Size
	err := classify.File(ctx, s.f, size, sc.pol, func(b *classify.Block) error {
		if _, err := sc.w.Write(b.Entries); err != nil {
			return fmt.Errorf("write scratch file: %w", err)
		}
		sc.pos += int64(len(b.Entries))
		s.lines += b.Lines
		if b.End > 0 {
			s.end = b.End
		}
		// The active file: a write in flight or a torn tail, carried
		// over. A rotated segment: a torn line, quarantined.
		s.torn = s.torn || b.Torn
		s.blank += b.Blank
		s.corrupt += b.Corrupt
		s.corruptLen += b.CorruptLen
		s.recs += b.Records
		sc.records += b.Records
		s.aged += b.Aged
		s.unsure += b.Unsure
		s.passed += b.Records - b.Aged
		s.passedSize += b.KeptSize
		s.minPassedTS = min(s.minPassedTS, b.Oldest)
		sc.maxTS = max(sc.maxTS, b.MaxTS)
		if a := p.stats.Ages; a != nil {
			a.Merge(b.Ages)
			s.future += b.Future
			s.newestFuture = max(s.newestFuture, b.NewestFuture)
		}
		if p.policy.Progress != nil {
			p.policy.Progress(backends.Step{Phase: "scan", Done: sc.done + min(b.Start+classify.BlockSize, size), Total: sc.total})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("scan %s: %w", s.path, err)
	}
	if err := sc.w.Flush(); err != nil {
		return fmt.Errorf("write scratch file: %w", err)
	}
	s.scrEnd = sc.pos
	sc.done += size
	return nil
}

// decide picks each segment's action and fills the planned stats, and
// those of the plan without its rewrites.
func (p *plan) decide() error {
	var unread, unreadBytes int64
	for _, g := range p.segs {
		rotated := g.index != 0
		g.scanFuture, g.scanNewestFuture = g.future, g.newestFuture
		switch {
		case !g.read:
			g.act = actDrop
			unread++
			unreadBytes += g.st.Size
		case rotated && g.kept() == 0 && !p.keepsUnsure(g):
			g.act = actDrop
		case g.aged == 0 && g.keepFrom == 0 && g.corrupt == 0 && g.blank == 0 && !(rotated && g.torn):
			g.act = actUntouched
			g.keptBytes, g.oldest = g.st.Size, g.minPassedTS
		default:
			g.act = actRewrite
			if err := p.measure(g); err != nil {
				return err
			}
		}
	}
	if unread > 0 {
		p.stats.Ages = nil // records were left unread: their ages are unknown
	}
	base := p.stats
	base.Segments = p.segStats()
	if a := p.active(); a != nil {
		base.Segments.Active, base.Segments.ActiveBytes = true, a.st.Size
	}
	p.stats = p.tally(base, false)
	p.notes(unread, unreadBytes)
	if _, rewritten, _ := p.counts(); rewritten > 0 {
		cheap := p.tally(base, true)
		cheap.Notes = append([]string(nil), p.stats.Notes...)
		p.cheap = &cheap
	}
	return nil
}

// tally sums the planned stats of every segment onto base. With
// skipRewrites, every segment planned for a rewrite counts as left as it
// is: all its records and bytes stay, and its oldest record, which is
// not known (planning dates only the records that pass age retention),
// makes the store's unknown rather than reported too young.
func (p *plan) tally(base backends.Stats, skipRewrites bool) backends.Stats {
	s := base
	seg := *base.Segments
	s.Segments = &seg
	oldestUnknown := false
	for _, g := range p.segs {
		s.BytesBefore += g.st.Size
		rotated := g.index != 0
		act := g.act
		if skipRewrites && act == actRewrite {
			act = actUntouched
		}
		switch act {
		case actDrop:
			seg.Dropped++
		case actRewrite:
			seg.Rewritten++
		default:
			seg.Untouched++
		}
		if !g.read {
			continue
		}
		if !rotated {
			s.TornTail = g.torn
		}
		s.RecordsBefore += g.recs
		if act != g.act { // a skipped rewrite: the segment stays whole
			s.RecordsAfter += g.recs
			s.BytesAfter += g.st.Size
			oldestUnknown = true
			if g.scanFuture > 0 {
				s.NewestFuture = max(s.NewestFuture, g.scanNewestFuture)
				s.Future += g.scanFuture
			}
			continue
		}
		s.RecordsAfter += g.kept()
		s.RemovedAge += g.aged
		s.RemovedCount += g.removedCount
		s.RemovedBytes += g.removedBytes
		s.Quarantined += g.corrupt
		if rotated && g.torn {
			s.Quarantined++
		}
		s.BlankLines += g.blank
		s.BytesAfter += g.keptBytes
		if g.act != actDrop && g.oldest < math.Inf(1) && (!s.HasOldest || g.oldest < s.OldestKept) {
			s.OldestKept, s.HasOldest = g.oldest, true
		}
		if g.act != actDrop && g.future > 0 {
			s.NewestFuture = max(s.NewestFuture, g.newestFuture)
			s.Future += g.future
		}
	}
	if oldestUnknown {
		s.OldestKept, s.HasOldest = 0, false
	}
	if s.Future == 0 {
		s.NewestFuture = 0
	}
	return s
}

// WithoutRewrites implements backends.RewriteSkipper: the plan's drops of
// whole segments, which cost an unlink each, without the rewrites.
func (p *plan) WithoutRewrites() (backends.Stats, bool) {
	if p.cheap == nil {
		return backends.Stats{}, false
	}
	s := *p.cheap
	s.Notes = append([]string(nil), p.cheap.Notes...)
	seg := *s.Segments
	s.Segments = &seg
	return s, true
}

// SkipRewrites implements backends.RewriteSkipper: every segment planned
// for a rewrite is left untouched by Apply.
func (p *plan) SkipRewrites() {
	if p.cheap == nil {
		return
	}
	for _, g := range p.segs {
		if g.act == actRewrite {
			g.act = actUntouched
		}
	}
	p.stats, p.cheap = *p.cheap, nil
}

// keepsUnsure reports whether g holds an Unsure line past its cut, which
// its rewrite keeps.
func (p *plan) keepsUnsure(g *seg) bool {
	found := false
	if g.unsure > 0 {
		err := p.eachPassed(g, func(i int64, e scratch.Entry) bool {
			found = e.Code == scratch.Unsure && i >= g.keepFrom
			return !found
		})
		found = found || err != nil // the rewrite then reports the error
	}
	return found
}

// measure computes what a rewritten segment keeps.
func (p *plan) measure(g *seg) error {
	if g.index == 0 {
		g.keptBytes = g.st.Size - g.end // a torn tail stays
	}
	// Future-dated records count only when retention keeps them:
	// max_records and max_total_bytes may remove them.
	dated := g.keepFrom > 0 && p.stats.Ages != nil
	if dated {
		g.future, g.newestFuture = 0, math.Inf(-1)
	}
	return p.eachPassed(g, func(i int64, e scratch.Entry) bool {
		if i >= g.keepFrom {
			g.keptBytes += e.Len
			if e.HasTS && e.TS < g.oldest {
				g.oldest = e.TS
			}
			if dated && e.HasTS && p.policy.Future(e.TS) {
				g.future++
				g.newestFuture = max(g.newestFuture, e.TS)
			}
		}
		return true
	})
}

// counts returns the planned numbers of dropped, rewritten and untouched
// segments.
func (p *plan) counts() (dropped, rewritten, untouched int64) {
	for _, g := range p.segs {
		switch g.act {
		case actDrop:
			dropped++
		case actRewrite:
			rewritten++
		default:
			untouched++
		}
	}
	return dropped, rewritten, untouched
}

// notes adds the human remarks of the plan.
func (p *plan) notes(unread, unreadBytes int64) {
	// The segment counts are Stats.Segments, which the summary prints.
	s := &p.stats
	var unsure int64
	for _, g := range p.segs {
		unsure += g.unsure
	}
	if unsure > 0 {
		s.Notes = append(s.Notes, classify.UnsureNote(unsure))
	}
	if unread > 0 {
		s.Notes = append(s.Notes, fmt.Sprintf("%d segments (%d bytes) lie wholly beyond the retention cut and are dropped without being read; their records are not counted above", unread, unreadBytes))
	}
	if a := p.active(); a != nil && a.st.Size > p.b.maxBytes {
		s.Notes = append(s.Notes, fmt.Sprintf("active file oversized: %d bytes > max_bytes %d (Papyra stops rotating while %s exists)",
			a.st.Size, p.b.maxBytes, p.st.name(int(p.b.maxFiles-1))))
	}
	var beyond []string
	for _, g := range p.segs {
		if int64(g.index) >= p.b.maxFiles {
			beyond = append(beyond, filepath.Base(g.path))
		}
	}
	if len(beyond) > 0 {
		s.Notes = append(s.Notes, fmt.Sprintf("segments beyond max_files-1, which Papyra does not read, included oldest first: %s", strings.Join(beyond, ", ")))
	}
	for _, n := range p.listed.papyraTmp {
		s.Notes = append(s.Notes, fmt.Sprintf("Papyra's own leftover %s from an interrupted compaction or recovery: reported, not deleted", filepath.Join(p.st.dir, n)))
	}
	if len(p.listed.orphans) > 0 {
		s.Notes = append(s.Notes, fmt.Sprintf("files Papyra's scan reports as orphans: %s", strings.Join(p.listed.orphans, ", ")))
	}
}

// active returns the planned active segment, nil when there was none.
func (p *plan) active() *seg {
	if n := len(p.segs); n > 0 && p.segs[n-1].index == 0 {
		return p.segs[n-1]
	}
	return nil
}

// now is the policy clock, or the wall clock.
func (p *plan) now() time.Time {
	if p.policy.Now.IsZero() {
		return time.Now()
	}
	return p.policy.Now
}
