package jsonl

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"time"

	"golang.org/x/sys/unix"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/backends/internal/lines"
	"github.com/papyra-compact/papyra-compact/backends/internal/livefile"
	"github.com/papyra-compact/papyra-compact/backends/internal/quarantine"
	"github.com/papyra-compact/papyra-compact/backends/internal/rangecopy"
	"github.com/papyra-compact/papyra-compact/backends/internal/scratch"
	"github.com/papyra-compact/papyra-compact/internal/failpoint"
	"github.com/papyra-compact/papyra-compact/internal/fsutil"
	"github.com/papyra-compact/papyra-compact/internal/safepath"
)

// swap is one Apply in progress.
type swap struct {
	b      *Backend
	p      *plan
	d      *safepath.Dir // the store's directory, resolved once: every name below is in it
	base   string        // the store's name in d
	token  string
	tmp    *os.File
	q      *quarantine.Writer
	copied int64 // bytes of the original accounted for in the new file
	stats  backends.Stats
}

// Apply implements backends.Backend; see the package doc for the sequence
// and what a kill at each step leaves behind.
func (b *Backend) Apply(ctx context.Context, bp backends.Plan) (backends.Stats, error) {
	p, ok := bp.(*plan)
	if !ok || p.b != b || p.f == nil {
		return backends.Stats{}, fmt.Errorf("apply %s: plan is not an open plan of this backend", b.path)
	}
	s := &swap{
		b: b, p: p,
		d:     b.store.Dir,
		base:  b.store.Name,
		token: fsutil.RandomToken(),
		stats: p.stats,
	}
	if st := p.stats; st.Removed() == 0 && st.Quarantined == 0 && st.BlankLines == 0 {
		// Rewriting would produce the same bytes: leave the store, its
		// inode and its mtime alone, so an hourly timer costs one read.
		st.BytesAfter = livefile.Size(p.f)
		st.Notes = append(st.Notes, "nothing to remove, store left as is")
		return st, nil
	}
	s.q = quarantine.NewWriter(b.space, b.env.QuarantineDir, s.base, time.Now())
	if err := s.prepare(ctx); err != nil {
		s.abort()
		return s.stats, err
	}
	if err := s.commit(ctx); err != nil {
		return s.stats, err
	}
	return s.stats, nil
}

// sameFile reports whether name in d currently is the inode in st. A
// symlink put at the name is not followed: it is another file.
func sameFile(d *safepath.Dir, name string, st *unix.Stat_t) (bool, error) {
	cur, err := d.Lstat(name)
	if err != nil {
		return false, err
	}
	return cur.Dev == st.Dev && cur.Ino == st.Ino, nil
}

func (s *swap) tmpName() string { return fsutil.SideName(s.base, s.token, "tmp") }
func (s *swap) oldName() string { return fsutil.SideName(s.base, s.token, "old") }

// prepare writes the new file next to the store: survivors, then the tail.
// Until it returns, the original is untouched.
func (s *swap) prepare(ctx context.Context) error {
	p := s.p
	same, err := sameFile(s.d, s.base, &p.st)
	if err != nil {
		return err
	}
	var cur unix.Stat_t
	if err := unix.Fstat(int(p.f.Fd()), &cur); err != nil {
		return fmt.Errorf("stat %s: %w", p.real, err)
	}
	if !same || cur.Size < p.st.Size {
		return fmt.Errorf("%s: %w (replaced or truncated since planning)", p.real, backends.ErrChanged)
	}
	if err := livefile.CheckStore(p.real, &cur); err != nil {
		return err // linked to another name since planning
	}
	// Claim, before anything is written, the rewrite and (at least) the
	// quarantine file from the run's budget: both may land on the
	// store's file system, and together they must leave the headroom
	// Papyra's appends need. What the tail and the quarantine take
	// beyond that is claimed as it is written.
	claim, err := s.b.space.ClaimAt("the rewrite", s.d.Fd(), s.d.Path(), p.stats.BytesAfter)
	if err != nil {
		return fmt.Errorf("%s: %w", p.real, err)
	}
	defer claim.Release()
	if err := s.q.Reserve(quarantine.Estimate(p.real, p.stats.Quarantined, p.corruptLen)); err != nil {
		return fmt.Errorf("%s: %w", p.real, err)
	}
	if s.tmp, err = s.d.CreateExclusive(s.tmpName(), 0o600); err != nil {
		return fmt.Errorf("create temp file: %w", err)
	}
	claim.Attach(s.tmp)
	if err := fsutil.MatchOwner(s.tmp, &p.st); err != nil {
		return err
	}
	// ACLs and xattrs too (after the chown, which clears some): the
	// Papyra user may write through an ACL entry. Fsynced with the data.
	if err := fsutil.CopyXattrs(s.tmp, p.f); err != nil {
		return err
	}
	if err := failpoint.Inject("temp-created"); err != nil {
		return fmt.Errorf("write %s: %w", s.tmp.Name(), err)
	}
	if err := fsutil.SetAppend(s.tmp, false); err != nil {
		return err
	}
	if err := s.copySurvivors(ctx); err != nil {
		return err
	}
	if err := failpoint.Inject("survivors-written"); err != nil {
		return fmt.Errorf("write %s: %w", s.tmp.Name(), err)
	}
	// From here on every write appends, as Papyra's will once this is the store.
	if err := fsutil.SetAppend(s.tmp, true); err != nil {
		return err
	}
	w := bufio.NewWriterSize(claim.Writer(s.tmp), bufSize)
	s.copied = p.end
	if err := s.copyTails(w); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", s.tmp.Name(), err)
	}
	if err := s.tmp.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", s.tmp.Name(), err)
	}
	if err := failpoint.Inject("temp-synced"); err != nil {
		return fmt.Errorf("fsync %s: %w", s.tmp.Name(), err)
	}
	if err := s.q.Commit(); err != nil {
		return err
	}
	s.stats.QuarantineFile = s.q.Path()
	return failpoint.Inject("quarantine-synced")
}

// copySurvivors is the second pass over [0, end), guided by the scratch
// entries alone: runs of adjacent kept lines are copied inside the kernel
// by a few goroutines at once (rangecopy), and corrupt lines, which are
// rare, are read back to be quarantined.
func (s *swap) copySurvivors(ctx context.Context) error {
	p := s.p
	sr := scratch.NewReader(io.NewSectionReader(p.scratch, 0, math.MaxInt64))
	cp := rangecopy.New(ctx, p.f, s.tmp, runtime.GOMAXPROCS(0))
	var (
		kept     int64 // index among records that passed age retention
		off, dst int64 // where the current line starts in the store, and where the next run goes
		runFrom  int64 // the pending run of kept lines is [runFrom, off)
		nextCk   int64
		err      error
	)
	flush := func() error {
		if n := off - runFrom; n > 0 {
			if err := cp.Copy(runFrom, dst, n); err != nil {
				return err
			}
			dst += n
		}
		return nil
	}
	for lineNo := int64(1); lineNo <= p.lines && err == nil; lineNo++ {
		var e scratch.Entry
		if e, err = sr.Next(); err != nil {
			break
		}
		if off >= nextCk {
			nextCk = off + 64<<20
			if err = s.b.checkCtx(ctx); err != nil {
				break
			}
			if p.policy.Progress != nil {
				p.policy.Progress(backends.Step{Phase: "rewrite", Done: off, Total: p.end})
			}
		}
		// An Unsure line stays unless it lies before the cut (scratch.EachKept).
		keep := (e.Code == scratch.Keep || e.Code == scratch.Unsure) && kept >= p.cut
		if e.Code == scratch.Keep {
			kept++
		}
		if !keep {
			err = flush()
			if err == nil && e.Code == scratch.Corrupt {
				err = s.quarantine(lineNo, off, e)
			}
			runFrom = off + e.Len
		}
		off += e.Len
	}
	if err == nil {
		err = flush()
	}
	if werr := cp.Wait(); err == nil {
		err = werr
	}
	if err != nil {
		return err
	}
	if off != p.end || kept != p.stats.RecordsBefore-p.stats.RemovedAge {
		return fmt.Errorf("%s: scratch file disagrees with the plan (%d bytes, %d records; want %d, %d)",
			p.real, off, kept, p.end, p.stats.RecordsBefore-p.stats.RemovedAge)
	}
	return nil
}

// quarantine reads the corrupt line at off back from the store and adds it
// to the quarantine file.
func (s *swap) quarantine(lineNo, off int64, e scratch.Entry) error {
	p := s.p
	qe := quarantine.Entry{Source: p.real, Line: lineNo, Offset: off, Reason: e.Reason.String()}
	// The line's terminator ("\n", "\r\n" or a lone "\r") stays out.
	var last [2]byte
	k := min(e.Len, 2)
	if _, err := p.f.ReadAt(last[:k], off+e.Len-k); err != nil {
		return fmt.Errorf("read %s at %d: %w", p.real, off, err)
	}
	term := int64(lines.TermLen(last[:k]))
	if term == 0 {
		return fmt.Errorf("%s: %w (line %d no longer ends where planned)", p.real, backends.ErrChanged, lineNo)
	}
	if e.Len > maxLine {
		return s.q.AddStream(qe, io.NewSectionReader(p.f, off, e.Len-term))
	}
	raw := make([]byte, e.Len-term)
	if _, err := p.f.ReadAt(raw, off); err != nil {
		return fmt.Errorf("read %s at %d: %w", p.real, off, err)
	}
	return s.q.Add(qe, raw)
}

// copyTails copies what follows the planned range: records appended since
// planning, in whole lines, until the file stops growing; a last line that
// stays incomplete is carried over verbatim, as the torn tail it is.
func (s *swap) copyTails(w io.Writer) error {
	end, torn, err := livefile.CopyTail(s.p.f, s.copied, w, true)
	s.copied = end
	s.stats.TornTail = torn
	s.stats.Appended = max(0, end-s.p.st.Size)
	return err
}

// abort undoes prepare: the original was never touched.
func (s *swap) abort() {
	if s.tmp != nil {
		_ = s.tmp.Close()
		_ = s.d.Remove(s.tmpName())
	}
	s.q.Discard()
	s.stats.QuarantineFile = ""
}

// commit swaps the new file in and drains the old inode. From the rename
// on, the new file is the store; errors after it are reported but the
// recovery record lets the next run finish the job.
func (s *swap) commit(ctx context.Context) error {
	p := s.p
	if err := s.linkOld(); err != nil {
		s.abort()
		return err
	}
	rec := &recoveryRecord{Store: p.real, Old: s.d.Join(s.oldName()), Progress: livefile.Progress{Offset: s.copied}}
	var tst unix.Stat_t
	if err := unix.Fstat(int(s.tmp.Fd()), &tst); err != nil {
		s.undoLink(rec)
		return fmt.Errorf("stat %s: %w", s.tmp.Name(), err)
	}
	rec.NewDev, rec.NewIno = uint64(tst.Dev), tst.Ino
	if err := s.b.writeRecord(rec); err != nil {
		s.undoLink(rec)
		return err
	}
	if err := failpoint.Inject("before-rename"); err != nil {
		s.undoLink(rec)
		return fmt.Errorf("rename %s: %w", s.tmp.Name(), err)
	}
	// Papyra's own compaction (or an admin) may have replaced the store:
	// renaming over it would destroy a file whose content is not ours.
	if same, err := sameFile(s.d, s.base, &p.st); err != nil || !same {
		s.undoLink(rec)
		if err == nil {
			err = fmt.Errorf("%s: %w (replaced before the swap)", p.real, backends.ErrChanged)
		}
		return err
	}
	if err := s.d.Rename(s.tmpName(), s.base); err != nil {
		s.undoLink(rec)
		return fmt.Errorf("swap %s: %w", p.real, err)
	}
	_ = failpoint.Inject("after-rename")
	errs := []error{s.d.Sync()}
	_ = failpoint.Inject("dir-synced")
	errs = append(errs, s.drain(ctx, rec))
	_ = failpoint.Inject("drained")
	if err := errors.Join(errs...); err != nil {
		// The record and the old name stay: the next Recover finishes.
		_ = s.tmp.Close()
		return err
	}
	var fin unix.Stat_t
	if err := unix.Fstat(int(s.tmp.Fd()), &fin); err == nil {
		s.stats.BytesAfter = fin.Size
	}
	_ = s.tmp.Close()
	if err := s.b.finishRecovery(rec); err != nil {
		return err
	}
	s.stats.QuarantineFile = s.q.Path()
	s.stats.Quarantined = s.q.Count()
	return s.q.Close()
}

// linkOld gives the original inode a second name so that it outlives the
// rename until every byte of it is accounted for.
func (s *swap) linkOld() error {
	old := s.oldName()
	// Link the open descriptor, not the store's name: the name could hold
	// another inode by now.
	if err := s.d.LinkFile(s.p.f, old); err != nil {
		return err
	}
	if same, err := sameFile(s.d, old, &s.p.st); err != nil || !same {
		_ = s.d.Remove(old)
		if err == nil {
			err = fmt.Errorf("%s: %w (replaced before the swap)", s.p.real, backends.ErrChanged)
		}
		return err
	}
	return nil
}

// undoLink reverses linkOld and the recovery record before the rename.
func (s *swap) undoLink(rec *recoveryRecord) {
	_ = s.d.Remove(s.oldName())
	_ = s.b.record(rec.Store).Remove()
	s.abort()
}

// drain appends to the new file what writers still append to the old
// inode, in whole lines, until the grace period ends (or ctx is done: then
// one last look) and no writer holds the old inode any more
// (livefile.AwaitWriters; when one still does after the bound, or ctx is
// done first, the error keeps the old name and the record for the next
// run). A last fragment that does not complete is quarantined.
func (s *swap) drain(ctx context.Context, rec *recoveryRecord) error {
	once := func() error { return s.drainOnce(rec) }
	if err := livefile.Drain(ctx, s.b.env.GracePeriod, once); err != nil {
		return err
	}
	// A writer that opened the store before the rename may still hold the
	// old inode: wait for it to close (bounded), or keep the old name.
	check := livefile.NewWriterCheck(s.b.log, s.b.env.GracePeriod)
	err := livefile.AwaitWriters(ctx, s.p.f, livefile.WritersBound(s.b.env.GracePeriod), check, once)
	s.stats.Notes = append(s.stats.Notes, check.Notes()...)
	if err != nil {
		return err
	}
	frag, err := livefile.WaitFragment(s.p.f, func() int64 { return rec.Offset }, once)
	if err != nil {
		return err
	}
	// Whatever arrived since the last look goes to quarantine too: the old
	// name is removed next, and nothing drains this inode again.
	if frag = max(frag, livefile.Size(s.p.f)-rec.Offset); frag <= 0 {
		return nil
	}
	buf := make([]byte, frag)
	if _, err := s.p.f.ReadAt(buf, rec.Offset); err != nil {
		return fmt.Errorf("read %s: %w", rec.Old, err)
	}
	qe := quarantine.Entry{Source: s.p.real, Offset: rec.Offset, Reason: "torn write left on the replaced file"}
	if err := s.q.Add(qe, buf); err != nil {
		return err
	}
	return s.q.Commit()
}

// drainOnce appends the complete lines past rec.Offset on the old inode.
func (s *swap) drainOnce(rec *recoveryRecord) error {
	n, err := s.b.appendOnce(rec, s.p.f, s.tmp)
	s.stats.Appended += n
	return err
}
