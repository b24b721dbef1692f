package segments

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/backends/internal/lines"
	"github.com/papyra-compact/papyra-compact/backends/internal/livefile"
	"github.com/papyra-compact/papyra-compact/backends/internal/quarantine"
	"github.com/papyra-compact/papyra-compact/backends/internal/scratch"
	"github.com/papyra-compact/papyra-compact/internal/failpoint"
)

// reasonTornRotated is the quarantine reason of a last line without a
// newline in a rotated segment: nothing appends to a rotated segment, so
// it can only be a write cut short.
const reasonTornRotated = "torn line at the end of a rotated segment"

// copySurvivors is the second pass over s's planned lines: guided by the
// scratch entries, it copies the kept ones to w and quarantines the
// corrupt ones, and the torn last line of a rotated segment.
func (r *run) copySurvivors(ctx context.Context, s *seg, w io.Writer) error {
	sr := scratch.NewReader(io.NewSectionReader(r.p.scratch, s.scrOff, s.scrEnd-s.scrOff))
	rd := lines.NewReader(io.NewSectionReader(s.f, 0, s.end), 0, bufSize, maxLine)
	var kept, nextCk int64
	for lineNo := int64(1); lineNo <= s.lines; lineNo++ {
		l, err := rd.Next()
		if err != nil {
			return fmt.Errorf("read %s: %w", s.path, err)
		}
		e, err := sr.Next()
		if err != nil {
			return err
		}
		if l.Off >= nextCk {
			nextCk = l.Off + 8<<20
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("compact %s: %w", r.b.path, err)
			}
			if r.p.policy.Progress != nil {
				r.p.policy.Progress(backends.Step{Phase: "rewrite", Done: l.Off, Total: s.end})
			}
		}
		switch e.Code {
		case scratch.Keep, scratch.Unsure:
			// An Unsure line stays unless it lies before the cut (scratch.EachKept).
			if kept >= s.keepFrom {
				if err := copyLine(w, s, l); err != nil {
					return err
				}
			}
			if e.Code == scratch.Keep {
				kept++
			}
		case scratch.Corrupt:
			qe := quarantine.Entry{Source: s.path, Line: lineNo, Offset: l.Off, Reason: e.Reason.String()}
			if err := r.quarantine(qe, s.f, l.Off, l.Len-int64(l.Term), l.Body(), l.TooLong); err != nil {
				return err
			}
		}
	}
	if kept != s.passed {
		return fmt.Errorf("%s: %w (second pass saw %d records, first %d)", s.path, backends.ErrChanged, kept, s.passed)
	}
	r.stats.Segments.BytesRead += s.end
	if s.index != 0 && s.torn {
		n := s.st.Size - s.end
		qe := quarantine.Entry{Source: s.path, Line: s.lines + 1, Offset: s.end, Reason: reasonTornRotated}
		if err := r.quarantine(qe, s.f, s.end, n, nil, true); err != nil {
			return err
		}
	}
	return nil
}

// copyLine writes line l of s to w: from memory when it is there,
// streamed from the segment otherwise.
func copyLine(w io.Writer, s *seg, l lines.Line) error {
	var err error
	if l.TooLong {
		_, err = io.Copy(w, io.NewSectionReader(s.f, l.Off, l.Len))
	} else {
		_, err = w.Write(l.Raw)
	}
	if err != nil {
		return fmt.Errorf("write replacement of %s: %w", s.path, err)
	}
	return nil
}

// quarantine adds one line: from memory when it is there, streamed from
// f otherwise.
func (r *run) quarantine(qe quarantine.Entry, f *os.File, off, n int64, body []byte, stream bool) error {
	if stream && n <= maxLine {
		body = make([]byte, n)
		if _, err := f.ReadAt(body, off); err != nil {
			return fmt.Errorf("read %s: %w", qe.Source, err)
		}
		stream = false
	}
	if stream {
		return r.q.AddStream(qe, io.NewSectionReader(f, off, n))
	}
	return r.q.Add(qe, body)
}

// writeRotated writes the replacement of a segment that is rotated now:
// its survivors and, when it was the active file at planning time and the
// writer has rotated it since, the lines appended before that rotation
// (nothing appends to it any more: Papyra writes only to the active
// file, opened after its rotation). It returns how many bytes of the
// segment are accounted for.
func (r *run) writeRotated(ctx context.Context, s *seg, f *os.File) (int64, error) {
	w := bufio.NewWriterSize(r.tempWriter(s, f), bufSize)
	if err := r.copySurvivors(ctx, s, w); err != nil {
		return 0, err
	}
	done := s.st.Size
	if s.index == 0 {
		size := livefile.Size(s.f)
		end, err := lines.LastLineEnd(s.f, s.end, size)
		if err != nil {
			return 0, fmt.Errorf("read %s: %w", s.path, err)
		}
		if _, err := io.Copy(w, io.NewSectionReader(s.f, s.end, end-s.end)); err != nil {
			return 0, fmt.Errorf("copy the lines appended to %s: %w", s.path, err)
		}
		r.stats.Appended += max(0, end-s.st.Size)
		if size > end {
			qe := quarantine.Entry{Source: s.path, Offset: end, Reason: reasonTornRotated}
			if err := r.quarantine(qe, s.f, end, size-end, nil, true); err != nil {
				return 0, err
			}
		}
		done = size
	}
	if err := w.Flush(); err != nil {
		return 0, fmt.Errorf("write %s: %w", f.Name(), err)
	}
	return done, nil
}

// writeLive writes the replacement of the active file: survivors, then
// what the writer appended since planning, in whole lines, until the file
// stops growing. With carry, a last line that stays incomplete for
// livefile.FragmentWait is carried over verbatim (the JSON-lines treatment);
// without, it is left to the drain.
func (r *run) writeLive(ctx context.Context, s *seg, f *os.File, carry bool) (int64, error) {
	w := bufio.NewWriterSize(r.tempWriter(s, f), bufSize)
	if err := r.copySurvivors(ctx, s, w); err != nil {
		return 0, err
	}
	copied, torn, err := livefile.CopyTail(s.f, s.end, w, carry)
	if err != nil {
		return 0, fmt.Errorf("copy the tail of %s: %w", s.path, err)
	}
	if err := w.Flush(); err != nil {
		return 0, fmt.Errorf("write %s: %w", f.Name(), err)
	}
	r.stats.Appended += max(0, copied-s.st.Size)
	r.stats.TornTail = torn
	return copied, nil
}

// rotateActive moves the active file to slot 1 and puts an empty file in
// its place, as Papyra's own rotation does, then rewrites it there. A
// write the writer opened before the move lands in the old inode, which
// now sits before the new active file: order is kept, and the drain
// copies it into the replacement where nothing else appends. It needs
// slot 1 free, or holding our anchor, or a segment planned for dropping;
// otherwise it returns false and the caller replaces the active file in
// place.
func (r *run) rotateActive(ctx context.Context, a *seg, deferred []*step) (bool, error) {
	if r.top < 1 {
		return false, nil
	}
	l, err := r.st.list()
	if err != nil {
		return false, err
	}
	one := r.st.name(1)
	id1, has1 := l.ids[1]
	var empty fileID
	switch {
	case !has1:
		side := r.sideName(stepSlot)
		if empty, err = r.createEmpty(side); err != nil {
			return false, err
		}
		r.rec.Steps = append(r.rec.Steps, &step{Kind: stepSlot, Name: r.st.name(1), Side: side, New: empty})
		if err := r.b.writeRecord(r.st, &r.rec); err != nil {
			return false, err
		}
		if err := r.st.d.RenameNoReplace(side, one); err != nil {
			if errors.Is(err, unix.EEXIST) {
				return false, removeFile(r.st, side)
			}
			return false, errors.Join(err, removeFile(r.st, side))
		}
	case r.anchor != nil && id1 == *r.anchor:
		empty = id1
	default:
		st := findDrop(deferred, id1)
		if st == nil || r.dropped[st] {
			return false, nil
		}
		if empty, err = r.createEmpty(st.Side); err != nil {
			return false, err
		}
		st.New = empty
		if err := r.b.writeRecord(r.st, &r.rec); err != nil {
			return false, err
		}
		if err := r.swapVerified(st.Side, one, st.Old, st.OldSize); err != nil {
			return false, err
		}
		r.dropped[st] = true
		if err := removeFile(r.st, st.Side); err != nil {
			return false, err
		}
	}
	if err := r.st.d.Sync(); err != nil {
		return false, err
	}
	if err := failpoint.Inject("rotating-slot"); err != nil {
		return false, err
	}
	if err := r.swapVerified(one, r.st.name(0), a.id, -1); err != nil {
		return false, err
	}
	// The writer must now append to our empty file, not to whatever else
	// slot 1 might have held.
	if got, err := r.st.d.Lstat(r.st.name(0)); err != nil || idOf(&got) != empty {
		if err := r.st.exchange(one, r.st.name(0)); err != nil {
			return false, fmt.Errorf("%w: %s held another file than planned and the exchange could not be undone: %w", backends.ErrUnsafe, r.st.side(one), err)
		}
		return false, fmt.Errorf("%s: %w (%s held another file than planned)", r.st.path(0), backends.ErrChanged, r.st.side(one))
	}
	if r.anchor != nil && *r.anchor == empty {
		r.anchor = nil // it is the active file now
	}
	r.cur[a] = 1
	if err := r.st.d.Sync(); err != nil {
		return false, err
	}
	if err := failpoint.Inject("rotating-self-rotated"); err != nil {
		return false, err
	}
	r.stats.Notes = append(r.stats.Notes, fmt.Sprintf("active file rotated to %s by the compactor, as Papyra would, to rewrite it without racing the writer", r.st.name(1)))
	side := r.sideName(stepSwap)
	f, err := r.newTemp(side, a)
	if err != nil {
		return true, err
	}
	n, err := r.writeLive(ctx, a, f, false)
	if err != nil {
		return true, err
	}
	return true, r.swapLive(a, f, &step{Kind: stepSwap, Name: r.st.name(1), Side: side, Old: a.id, Progress: livefile.Progress{Offset: n}, Live: true})
}

// replaceActive gives the active file the JSON-lines treatment: a
// replacement with the survivors and the tail is exchanged in at the
// active name and the old inode drained into it for the grace period.
// Used when slot 1 holds a segment that stays (or max_files is 1).
func (r *run) replaceActive(ctx context.Context, a *seg) error {
	side := r.sideName(stepSwap)
	f, err := r.newTemp(side, a)
	if err != nil {
		return err
	}
	n, err := r.writeLive(ctx, a, f, true)
	if err != nil {
		return err
	}
	return r.swapLive(a, f, &step{Kind: stepSwap, Name: r.st.name(0), Side: side, Old: a.id, Progress: livefile.Progress{Offset: n}, Live: true})
}

// swapLive makes a prepared replacement of the (old) active file durable,
// records it (with the replacement's inode) and exchanges it in.
func (r *run) swapLive(a *seg, f *os.File, st *step) error {
	if err := syncFile(f); err != nil {
		return err
	}
	if err := r.q.Commit(); err != nil {
		return err
	}
	id, err := fileOf(f)
	if err != nil {
		return err
	}
	st.New = id
	r.rec.Steps = append(r.rec.Steps, st)
	if err := r.b.writeRecord(r.st, &r.rec); err != nil {
		return err
	}
	// What the writer appends from here on lands past st.Offset in the
	// old inode: only the drain carries it over.
	if err := failpoint.Inject("rotating-active-recorded"); err != nil {
		return err
	}
	if err := r.exchange(a, st, f); err != nil {
		return err
	}
	if err := r.st.d.Sync(); err != nil {
		return err
	}
	return failpoint.Inject("rotating-active-swapped")
}

// swapVerified exchanges names x and y (in the store's directory) and
// checks that x now holds the inode want, of size wantSize unless that is
// negative (what y was supposed to hold); otherwise it exchanges back and
// reports the change.
func (r *run) swapVerified(x, y string, want fileID, wantSize int64) error {
	if err := r.st.exchange(x, y); err != nil {
		return err
	}
	got, err := r.st.d.Lstat(x)
	if err != nil {
		return err
	}
	if idOf(&got) == want && (wantSize < 0 || got.Size == wantSize) {
		return nil
	}
	if err := r.st.exchange(x, y); err != nil {
		return fmt.Errorf("%w: %s held another file than planned and the exchange could not be undone: %w", backends.ErrUnsafe, r.st.side(y), err)
	}
	return fmt.Errorf("%s: %w (%s held another file than planned)", r.st.path(0), backends.ErrChanged, r.st.side(y))
}

func findDrop(steps []*step, id fileID) *step {
	for _, st := range steps {
		if st.Old == id {
			return st
		}
	}
	return nil
}

// drain appends to the replacements what writers still append to old
// active inodes, in whole lines, until the grace period ends (or ctx is
// done: then one last look) and no writer holds them any more
// (livefile.AwaitWriters: one still held after the bound, or when ctx is
// done, keeps its side name and step). A last fragment that does not complete
// within livefile.FragmentWait is quarantined: appended, it would glue onto the
// next record.
func (r *run) drain(ctx context.Context) error {
	var live []*swapped
	for _, sw := range r.swaps {
		if sw.step.Live {
			live = append(live, sw)
		}
	}
	if len(live) == 0 {
		return nil
	}
	err := livefile.Drain(ctx, r.b.env.GracePeriod, func() error {
		for _, sw := range live {
			if err := r.drainOnce(sw); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	// A writer that opened the active file before the exchange may still
	// hold the old inode: wait for it to close (bounded), or keep it.
	for _, sw := range live {
		err := livefile.AwaitWriters(ctx, sw.s.f, livefile.WritersBound(r.b.env.GracePeriod), r.writerCheck(), func() error { return r.drainOnce(sw) })
		if err != nil {
			return err
		}
	}
	for _, sw := range live {
		if err := r.drainFragment(sw); err != nil {
			return err
		}
	}
	return nil
}

// drainOnce appends the complete lines past the step's offset, exactly
// once whatever moment a kill comes: the run record announces each chunk
// before the write that appends it (livefile.Progress.Append), and
// Recover looks for an announced chunk before appending it again.
func (r *run) drainOnce(sw *swapped) error {
	n, err := sw.step.Append(sw.s.f, sw.repl, r.b.space, func() error { return r.b.writeRecord(r.st, &r.rec) }, func() error {
		if err := failpoint.Inject("rotating-drain-appended"); err != nil {
			return fmt.Errorf("drain %s: %w", sw.s.path, err)
		}
		return nil
	})
	r.stats.Appended += n
	return err
}

// drainFragment waits for a last line in flight, then quarantines what is
// still incomplete.
func (r *run) drainFragment(sw *swapped) error {
	frag, err := livefile.WaitFragment(sw.s.f, func() int64 { return sw.step.Offset }, func() error { return r.drainOnce(sw) })
	if err != nil || frag == 0 {
		return err
	}
	size := sw.step.Offset + frag
	qe := quarantine.Entry{Source: sw.s.path, Offset: sw.step.Offset, Reason: "torn write left on the replaced active file"}
	if err := r.quarantine(qe, sw.s.f, sw.step.Offset, size-sw.step.Offset, nil, true); err != nil {
		return err
	}
	if err := r.q.Commit(); err != nil {
		return err
	}
	r.stats.Notes = append(r.stats.Notes, fmt.Sprintf("torn last line of the active file (%d bytes) quarantined", size-sw.step.Offset))
	r.stats.BytesAfter -= min(r.stats.BytesAfter, size-sw.step.Offset)
	sw.step.Offset = size
	return r.b.writeRecord(r.st, &r.rec)
}
