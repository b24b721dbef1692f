package segments

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/backends/internal/livefile"
	"github.com/papyra-compact/papyra-compact/backends/internal/quarantine"
	"github.com/papyra-compact/papyra-compact/internal/failpoint"
	"github.com/papyra-compact/papyra-compact/internal/fsutil"
)

// run is one Apply in progress.
type run struct {
	b      *Backend
	p      *plan
	st     store
	rec    runRecord
	q      *quarantine.Writer
	stats  backends.Stats
	top    int     // the slot whose existence stops Papyra rotating; 0: none (max_files 1)
	anchor *fileID // our empty file at the top slot while it is there
	seq    int     // side file counter

	cur     map[*seg]int           // where each planned segment is now
	temps   map[*seg]*os.File      // replacements not yet exchanged in
	claims  map[*seg]*fsutil.Claim // space claimed for each replacement
	swaps   []*swapped             // replacements in place
	dropped map[*step]bool         // drops done
	changed bool                   // the store's directory may have changed
	check   *livefile.WriterCheck  // the old inodes let go unchecked for late writers
}

// swapped is a segment whose replacement is in place; its old inode stays
// at a side name until it is drained and removed.
type swapped struct {
	s    *seg
	step *step
	repl *os.File // the replacement, open O_APPEND
}

// Apply implements backends.Backend; see the package doc for the sequence
// and what a kill at each step leaves.
func (b *Backend) Apply(ctx context.Context, bp backends.Plan) (backends.Stats, error) {
	p, ok := bp.(*plan)
	if !ok || p.b != b || p.scratch == nil {
		return backends.Stats{}, fmt.Errorf("apply %s: plan is not an open plan of this backend", b.path)
	}
	r := &run{
		b: b, p: p, st: p.st,
		stats:   p.Stats(),
		top:     int(b.maxFiles - 1),
		cur:     map[*seg]int{},
		temps:   map[*seg]*os.File{},
		claims:  map[*seg]*fsutil.Claim{},
		dropped: map[*step]bool{},
	}
	r.rec = runRecord{Dir: r.st.dir, Base: r.st.base, Token: fsutil.RandomToken()}
	if r.top > 0 {
		r.rec.Top = r.st.name(r.top)
	}
	r.q = quarantine.NewWriter(b.space, b.env.QuarantineDir, r.st.base, p.now())
	if d, rw, _ := p.counts(); d == 0 && rw == 0 {
		r.stats.Notes = append(r.stats.Notes, "store unchanged")
		return r.stats, nil
	}
	if err := ctx.Err(); err != nil {
		return r.stats, fmt.Errorf("compact %s: %w", b.path, err)
	}
	err := r.execute(ctx)
	if err != nil {
		err = errors.Join(err, r.fail(ctx))
		return r.stats, err
	}
	return r.stats, nil
}

// execute runs the steps in order. Until commit starts, nothing in the
// store's directory has changed except the anchor.
func (r *run) execute(ctx context.Context) error {
	if err := r.b.writeRecord(r.st, &r.rec); err != nil {
		return err
	}
	if err := r.freeze(ctx); err != nil {
		return err
	}
	if err := r.locate(); err != nil {
		return err
	}
	if err := r.prepare(ctx); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("compact %s: %w", r.b.path, err)
	}
	r.changed = true
	return r.commit(ctx)
}

// sideName returns a fresh side file name of this run.
func (r *run) sideName(kind string) string {
	r.seq++
	return fsutil.SideName(r.st.base, r.rec.Token, kind+"."+strconv.Itoa(r.seq))
}

// freeze makes sure the top slot exists, so that the writer does not
// rotate while the run renames things (Papyra rotates only when
// path.{max_files-1} is absent), then waits until a rotation that started
// before is over.
func (r *run) freeze(ctx context.Context) error {
	if r.top > 0 {
		l, err := r.st.list()
		if err != nil {
			return err
		}
		if _, ok := l.ids[r.top]; !ok {
			if err := r.placeAnchor(); err != nil {
				return err
			}
		}
	}
	if err := failpoint.Inject("rotating-anchored"); err != nil {
		return err
	}
	l, err := r.st.settle(ctx, r.b.env.GracePeriod)
	if err != nil {
		return err
	}
	if r.anchor != nil && l.ids[r.top] != *r.anchor {
		// A rotation that had passed its check before the anchor existed
		// renamed a segment over it: that segment holds the writer now.
		r.anchor = nil
	}
	for _, s := range r.p.segs {
		i, ok := l.find(s.id)
		if !ok {
			return fmt.Errorf("%s: %w (segment %s was removed by someone else since planning)", r.st.path(0), backends.ErrChanged, s.path)
		}
		r.cur[s] = i
	}
	return nil
}

// placeAnchor puts an empty file at the top slot. It is created under a
// side name and recorded first, then renamed without replacing: if the
// writer rotated into the slot meanwhile, the slot is taken and the anchor
// is not needed.
func (r *run) placeAnchor() error {
	side := fsutil.SideName(r.st.base, r.rec.Token, "anchor")
	id, err := r.createEmpty(side)
	if err != nil {
		return err
	}
	r.rec.Anchor = &id
	if err := r.b.writeRecord(r.st, &r.rec); err != nil {
		return err
	}
	err = r.st.d.RenameNoReplace(side, r.st.name(r.top))
	switch {
	case errors.Is(err, unix.EEXIST):
		return removeFile(r.st, side)
	case err != nil:
		return err
	}
	r.anchor = &id
	return r.st.d.Sync()
}

// createEmpty creates an empty file named name in the store's directory
// with the active file's mode and owner (it may become the active file)
// and returns its inode.
func (r *run) createEmpty(name string) (fileID, error) {
	path := r.st.side(name)
	f, err := r.st.d.CreateExclusive(name, 0o600)
	if err != nil {
		return fileID{}, fmt.Errorf("create %s: %w", path, err)
	}
	defer f.Close()
	if err := fsutil.MatchOwner(f, r.model()); err != nil {
		return fileID{}, err
	}
	if err := fsutil.CopyXattrs(f, r.p.segs[len(r.p.segs)-1].f); err != nil {
		return fileID{}, err
	}
	if err := f.Sync(); err != nil {
		return fileID{}, fmt.Errorf("fsync %s: %w", path, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return fileID{}, fmt.Errorf("stat %s: %w", path, err)
	}
	return idOf(&st), nil
}

// model is the stat whose mode and owner new files take: the active
// file's, else the newest segment's.
func (r *run) model() *unix.Stat_t {
	return &r.p.segs[len(r.p.segs)-1].st
}

// locate checks that no planned segment shrank (Papyra's max_files=1
// truncation, or someone else's compaction) or, when planned for dropping,
// grew.
func (r *run) locate() error {
	for _, s := range r.p.segs {
		var cur unix.Stat_t
		if err := unix.Fstat(int(s.f.Fd()), &cur); err != nil {
			return fmt.Errorf("stat %s: %w", s.path, err)
		}
		if cur.Size < s.st.Size || (s.act == actDrop && cur.Size != s.st.Size) {
			return fmt.Errorf("%s: %w (segment %s changed size since planning)", r.st.path(0), backends.ErrChanged, s.path)
		}
	}
	return nil
}

// reserve claims from the run's budget, before anything is written, the
// space of every replacement (its planned survivors) and at least that of
// the quarantine file: they may share the store's file system, and
// together they must leave the headroom Papyra's appends need. What a
// replacement's tail or the quarantine take beyond that is claimed as it
// is written.
func (r *run) reserve() error {
	var q int64
	for _, s := range r.p.segs {
		if s.act == actRewrite {
			c, err := r.b.space.ClaimAt("the rewrite of "+s.path, r.st.d.Fd(), r.st.dir, s.keptBytes)
			if err != nil {
				return fmt.Errorf("%s: %w", r.st.path(0), err)
			}
			r.claims[s] = c
		}
		if s.act == actRewrite || s.act == actDrop && s.read {
			q += quarantine.Estimate(s.path, s.corrupt, s.corruptLen)
		}
	}
	if err := r.q.Reserve(q); err != nil {
		return fmt.Errorf("%s: %w", r.st.path(0), err)
	}
	return nil
}

// releaseClaims gives back what the replacements' claims still hold.
func (r *run) releaseClaims() {
	for s, c := range r.claims {
		c.Release()
		delete(r.claims, s)
	}
}

// tempWriter is where the replacement f of s is written: growing the
// claim of s before every write that would take f past it.
func (r *run) tempWriter(s *seg, f *os.File) io.Writer {
	return r.claims[s].Writer(f)
}

// prepare writes every replacement of a rotated segment and quarantines
// the corrupt lines of every segment that is rewritten or dropped, then
// records the steps. The active file is prepared later, in commit.
func (r *run) prepare(ctx context.Context) error {
	if err := r.reserve(); err != nil {
		return err
	}
	for _, s := range r.p.segs {
		switch {
		case s.act == actRewrite && r.cur[s] != 0:
			side := r.sideName(stepSwap)
			f, err := r.newTemp(side, s)
			if err != nil {
				return err
			}
			n, err := r.writeRotated(ctx, s, f)
			if err != nil {
				return err
			}
			if err := syncFile(f); err != nil {
				return err
			}
			id, err := fileOf(f)
			if err != nil {
				return err
			}
			r.rec.Steps = append(r.rec.Steps, &step{Kind: stepSwap, Name: r.st.name(r.cur[s]), Side: side, Old: s.id, New: id, Progress: livefile.Progress{Offset: n}})
		case s.act == actDrop && s.read && (s.corrupt > 0 || s.torn):
			if err := r.copySurvivors(ctx, s, discard{}); err != nil {
				return err
			}
		}
	}
	for _, s := range r.p.segs {
		if s.act == actDrop {
			r.rec.Steps = append(r.rec.Steps, &step{Kind: stepDrop, Name: r.st.name(r.cur[s]), Side: r.sideName(stepDrop), Old: s.id, OldSize: s.st.Size})
		}
	}
	if err := failpoint.Inject("rotating-temps-written"); err != nil {
		return err
	}
	if err := r.q.Commit(); err != nil {
		return err
	}
	if err := r.b.writeRecord(r.st, &r.rec); err != nil {
		return err
	}
	return failpoint.Inject("rotating-prepared")
}

// newTemp creates a replacement for s under a side name, with s's mode
// and owner.
func (r *run) newTemp(side string, s *seg) (*os.File, error) {
	if r.claims[s] == nil {
		c, err := r.b.space.ClaimAt("the rewrite of "+s.path, r.st.d.Fd(), r.st.dir, s.keptBytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", r.st.path(0), err)
		}
		r.claims[s] = c
	}
	f, err := r.st.d.CreateExclusive(side, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create temp file: %w", err)
	}
	r.temps[s] = f
	r.claims[s].Attach(f)
	if err := fsutil.MatchOwner(f, &s.st); err != nil {
		return nil, err
	}
	// ACLs and xattrs too, after the chown; fsynced with the data before
	// the exchange.
	if err := fsutil.CopyXattrs(f, s.f); err != nil {
		return nil, err
	}
	return f, nil
}

// commit changes the store: replacements of rotated segments in, dropped
// segments out, then the active file (rotated by us or replaced in
// place) and the drain of its old inode, then the deferred drops and the
// anchor, which let the writer rotate again; then every side file goes.
func (r *run) commit(ctx context.Context) error {
	for _, st := range r.rec.Steps {
		if st.Kind != stepSwap {
			continue
		}
		s := r.segOf(st.Old)
		if err := r.exchange(s, st, r.temps[s]); err != nil {
			return err
		}
	}
	if err := r.st.d.Sync(); err != nil {
		return err
	}
	if err := failpoint.Inject("rotating-swapped"); err != nil {
		return err
	}
	a := r.p.active()
	rotateInto := a != nil && a.act == actRewrite && r.cur[a] == 0 && r.top > 0
	var deferred []*step
	for _, st := range r.rec.Steps {
		if st.Kind != stepDrop {
			continue
		}
		i := r.cur[r.segOf(st.Old)]
		// The top slot holds the writer still; slot 1 may be wanted for
		// the active file. Both go last.
		if (i == r.top && r.anchor == nil) || (i == 1 && rotateInto) {
			deferred = append(deferred, st)
			continue
		}
		if err := r.drop(st); err != nil {
			return err
		}
	}
	if err := r.st.d.Sync(); err != nil {
		return err
	}
	if err := failpoint.Inject("rotating-dropped"); err != nil {
		return err
	}
	if a != nil && a.act == actRewrite && r.cur[a] == 0 {
		rotated, err := r.rotateActive(ctx, a, deferred)
		if err != nil {
			return err
		}
		if !rotated {
			if err := r.replaceActive(ctx, a); err != nil {
				return err
			}
		}
	}
	// The writer is still held: the drain needs no names, and an empty
	// replacement can still be removed safely.
	if err := r.drain(ctx); err != nil {
		return err
	}
	if err := failpoint.Inject("rotating-drained"); err != nil {
		return err
	}
	if err := r.dropEmptyRotated(); err != nil {
		return err
	}
	// What is left of the deferred drops, the top slot last.
	for _, want := range []bool{false, true} {
		for _, st := range deferred {
			if (r.cur[r.segOf(st.Old)] == r.top) == want && !r.dropped[st] {
				if err := r.drop(st); err != nil {
					return err
				}
			}
		}
	}
	if err := r.unfreeze(); err != nil {
		return err
	}
	if err := failpoint.Inject("rotating-unfrozen"); err != nil {
		return err
	}
	return r.finish(ctx)
}

// dropEmptyRotated removes the replacement of an active file the run
// rotated to slot 1 when nothing of it was kept and nothing arrived late:
// an empty segment is no use to Papyra. It is recorded and removed like
// any drop.
func (r *run) dropEmptyRotated() error {
	for _, sw := range r.swaps {
		if !sw.step.Live || sw.step.Name != r.st.name(1) || livefile.Size(sw.repl) != 0 {
			continue
		}
		id, err := fileOf(sw.repl)
		if err != nil {
			return err
		}
		st := &step{Kind: stepDrop, Name: sw.step.Name, Side: r.sideName(stepDrop), Old: id}
		r.rec.Steps = append(r.rec.Steps, st)
		if err := r.b.writeRecord(r.st, &r.rec); err != nil {
			return err
		}
		return r.drop(st)
	}
	return nil
}

// segOf returns the planned segment with inode id.
func (r *run) segOf(id fileID) *seg {
	for _, s := range r.p.segs {
		if s.id == id {
			return s
		}
	}
	return nil
}

// exchange swaps the replacement f in for segment s (at the name st
// records) with RENAME_EXCHANGE, then checks that the name held s: if the
// writer had moved another segment there, the exchange is undone. No
// inode loses its last name at any point.
func (r *run) exchange(s *seg, st *step, f *os.File) error {
	side, name := st.Side, st.Name
	// From here on the side name may hold someone else's file: fail must
	// not remove it by name.
	delete(r.temps, s)
	if err := r.st.exchange(side, name); err != nil {
		r.temps[s] = f
		return err
	}
	got, err := r.st.d.Lstat(side)
	if err != nil {
		return err
	}
	if idOf(&got) != s.id {
		if err := r.st.exchange(side, name); err != nil {
			return fmt.Errorf("%w: %s held another segment than planned and the exchange could not be undone: %w", backends.ErrUnsafe, r.st.side(name), err)
		}
		r.temps[s] = f
		return fmt.Errorf("%s: %w (%s held another segment than planned)", r.st.path(0), backends.ErrChanged, r.st.side(name))
	}
	r.swaps = append(r.swaps, &swapped{s: s, step: st, repl: f})
	return nil
}

// drop removes a segment whose every line is accounted for.
func (r *run) drop(st *step) error {
	if err := removeVerified(r.st, st.Name, st.Side, st.Old, st.OldSize); err != nil {
		return err
	}
	r.dropped[st] = true
	return nil
}

// unfreeze removes the anchor, so that the writer may rotate again.
func (r *run) unfreeze() error {
	if r.anchor == nil {
		return nil
	}
	err := removeVerified(r.st, r.rec.Top, fsutil.SideName(r.st.base, r.rec.Token, "unanchor"), *r.anchor, 0)
	if err != nil {
		return err
	}
	r.anchor = nil
	return r.st.d.Sync()
}

// finish removes the old inodes' side names and the record, and fills in
// the final stats.
func (r *run) finish(ctx context.Context) error {
	r.releaseClaims()
	errs := []error{r.b.resolve(ctx, r.st, &r.rec, r.q, livefile.WritersBound(r.b.env.GracePeriod), r.writerCheck())}
	r.stats.Notes = append(r.stats.Notes, r.writerCheck().Notes()...)
	for _, sw := range r.swaps {
		errs = append(errs, sw.repl.Close())
	}
	r.swaps = nil
	r.stats.QuarantineFile = r.q.Path()
	r.stats.Quarantined = r.q.Count()
	errs = append(errs, r.q.Close())
	return errors.Join(errs...)
}

// fail cleans up after an error: before the store changed, the
// replacements and the quarantine file go; after, the record is resolved
// as Recover would (nothing is removed that is not accounted for), except
// that an old inode a writer still holds is not waited for: it keeps its
// side name and the record, for the next run.
func (r *run) fail(ctx context.Context) error {
	r.releaseClaims()
	for s, f := range r.temps {
		// Never exchanged in: a copy under our own side name.
		_ = f.Close()
		_ = r.st.d.Remove(filepath.Base(f.Name()))
		delete(r.temps, s)
	}
	for _, sw := range r.swaps {
		_ = sw.repl.Close()
	}
	if !r.changed {
		r.q.Discard()
		r.stats.QuarantineFile = ""
	} else {
		_ = r.q.Close()
	}
	return r.b.resolve(ctx, r.st, &r.rec, nil, 0, r.writerCheck())
}

// writerCheck is the run's account of the old inodes it could not check
// for late writers: one warning per run, one note per inode.
func (r *run) writerCheck() *livefile.WriterCheck {
	if r.check == nil {
		r.check = livefile.NewWriterCheck(r.b.log, r.b.env.GracePeriod)
	}
	return r.check
}

func fileOf(f *os.File) (fileID, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return fileID{}, fmt.Errorf("stat %s: %w", f.Name(), err)
	}
	return idOf(&st), nil
}

func syncFile(f *os.File) error {
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", f.Name(), err)
	}
	return nil
}

// discard is io.Discard without its ReadFrom shortcut.
type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
