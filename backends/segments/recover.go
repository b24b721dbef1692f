package segments

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/backends/internal/livefile"
	"github.com/papyra-compact/papyra-compact/backends/internal/quarantine"
	"github.com/papyra-compact/papyra-compact/internal/fsutil"
)

// Step kinds of a run record.
const (
	stepSwap = "swap" // Side held New, then (after the exchange) Old
	stepDrop = "drop" // Side holds Old once moved out of Name (or New, an empty file, before an exchange with it)
	stepSlot = "slot" // Side held New, an empty file, until it was renamed to Name
)

// step is one change to the store's directory, recorded (and fsynced)
// before it is made. Whether it happened is read from the inodes, never
// assumed: the record only says which inodes are ours to remove.
type step struct {
	Kind    string `json:"kind"`
	Name    string `json:"name"` // the segment name acted on
	Side    string `json:"side"` // our side file's name in the store directory
	Old     fileID `json:"old"`  // the segment's inode
	OldSize int64  `json:"old_size"`
	New     fileID `json:"new"` // the replacement, or the empty file
	// swap: how much of Old the replacement holds, and an append of
	// drained lines in flight (see livefile.Progress).
	livefile.Progress
	Live bool `json:"live"` // swap: Old was the active file: drain it for the grace period
}

// runRecord lives in the state directory while a run changes the store.
type runRecord struct {
	Dir    string  `json:"dir"`
	Base   string  `json:"base"`
	Token  string  `json:"token"`
	Top    string  `json:"top,omitempty"`    // the slot that keeps the writer from rotating
	Anchor *fileID `json:"anchor,omitempty"` // the empty file we put there
	Steps  []*step `json:"steps"`
}

// record is the run record of store st.
func (b *Backend) record(st store) livefile.Record {
	return livefile.RecordFor(b.space, b.env.StateDir, "rotating-run", filepath.Join(st.dir, st.base))
}

func (b *Backend) writeRecord(st store, rec *runRecord) error { return b.record(st).Write(rec) }

// Recover implements backends.Backend: it finishes or undoes what a killed
// run left (side files, an anchor, old inodes still to drain) and reports
// side files no record explains. It runs under the store's lock and is
// idempotent.
func (b *Backend) Recover(ctx context.Context) error {
	// Through the resolved directory, like every other file operation:
	// resolving a step may list and open segments.
	st, err := b.openStore()
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	// Temp files of a record write a kill interrupted: the record itself
	// is whole (written by rename), the temp file is garbage.
	if n, err := b.record(st).Sweep(); err != nil {
		return err
	} else if n > 0 {
		b.log.Info("removed temp files of the run record left by an interrupted run", "count", n)
	}
	rec := &runRecord{}
	found, err := b.record(st).Read(rec)
	if err != nil {
		return err
	}
	if !found {
		rec = nil
	} else if rec.Dir != st.dir || rec.Base != st.base {
		// Keyed on the store's real path, so written for this store; one
		// that says otherwise is not followed elsewhere.
		return fmt.Errorf("%w: run record %s names %s, not the store %s", backends.ErrUnsafe,
			b.record(st).Path(), filepath.Join(rec.Dir, rec.Base), st.path(0))
	}
	var errs []error
	if rec != nil {
		if err := b.resolve(ctx, st, rec, nil, livefile.WritersBound(b.env.GracePeriod), livefile.NewWriterCheck(b.log, b.env.GracePeriod)); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, b.strays(st, rec))
	return errors.Join(errs...)
}

// strays handles side files of this store that the record does not list:
// a replacement of ours that was never recorded (the record names each
// before it is exchanged in) holds only copies and is removed, as is any
// empty one; anything else is left and reported.
func (b *Backend) strays(st store, rec *runRecord) error {
	names, err := st.d.Names()
	if err != nil {
		return err
	}
	listed := map[string]bool{}
	if rec != nil {
		for _, s := range rec.Steps {
			listed[s.Side] = true
		}
	}
	var errs []error
	removed := false
	for _, name := range names {
		token, suffix, ok := fsutil.ParseSideName(st.base, name)
		if !ok || listed[name] || (rec != nil && rec.Anchor != nil && token == rec.Token && (suffix == "anchor" || suffix == "unanchor")) {
			continue
		}
		p := st.side(name)
		sst, err := st.d.Lstat(name)
		if err != nil {
			continue
		}
		if (rec != nil && token == rec.Token && strings.HasPrefix(suffix, stepSwap+".")) || sst.Size == 0 {
			if err := st.d.Remove(name); err == nil {
				removed = true
				b.log.Info("removed a side file left by an interrupted run", "file", p)
			}
			continue
		}
		errs = append(errs, fmt.Errorf("%w: %s is a side file of %s that no run record accounts for; inspect it (it may hold segment data) and move it back or delete it by hand",
			backends.ErrUnsafe, p, st.path(0)))
	}
	if removed {
		errs = append(errs, st.d.Sync())
	}
	return errors.Join(errs...)
}

// resolve settles every step of rec from the inodes it finds, then the
// anchor, and removes the record when nothing is left. It is what Recover
// runs after a kill and what a failed Apply runs at once. q receives torn
// fragments found while draining (nil: a writer of its own). An old inode
// is drained until no writer holds it, for at most bound
// (livefile.AwaitWriters); one still held keeps its step.
func (b *Backend) resolve(ctx context.Context, st store, rec *runRecord, q *quarantine.Writer, bound time.Duration, check *livefile.WriterCheck) error {
	own := q == nil
	if own {
		q = quarantine.NewWriter(b.space, b.env.QuarantineDir, st.base, time.Now())
	}
	var errs []error
	unresolved := false
	for _, s := range rec.Steps {
		if err := b.resolveStep(ctx, st, rec, s, q, bound, check); err != nil {
			errs = append(errs, err)
			unresolved = true
		}
	}
	if err := b.resolveAnchor(st, rec); err != nil {
		errs = append(errs, err)
		unresolved = true
	}
	errs = append(errs, st.d.Sync(), q.Commit())
	if own {
		errs = append(errs, q.Close())
	}
	if !unresolved {
		errs = append(errs, b.record(st).Remove())
	}
	return errors.Join(errs...)
}

// resolveStep makes one step final: a side file that holds a copy or an
// accounted-for inode is removed, an old active inode is drained first,
// and a file we cannot account for is put back or reported.
func (b *Backend) resolveStep(ctx context.Context, st store, rec *runRecord, s *step, q *quarantine.Writer, bound time.Duration, check *livefile.WriterCheck) error {
	side := s.Side // a name in the store's directory
	sst, err := st.d.Lstat(side)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil // never made, or already finished
		}
		return err
	}
	id := idOf(&sst)
	switch {
	case s.Kind == stepSwap && id == s.New, s.Kind == stepSlot && id == s.New && sst.Size == 0:
		// The replacement never entered the store: a copy of lines that are
		// still there.
		return removeFile(st, side)
	case s.Kind == stepSwap && id == s.Old:
		// Only the old active inode is expected to have grown; any inode
		// that did is drained before it goes (several writers on one store,
		// which Papyra does not support, would do that).
		if err := b.drainSide(ctx, st, rec, s, side, q, bound, check); err != nil {
			return err
		}
		return removeFile(st, side)
	case s.Kind == stepDrop && id == s.Old && sst.Size == s.OldSize:
		return removeFile(st, side)
	case s.Kind == stepDrop && id == s.New && sst.Size == 0:
		return removeFile(st, side)
	case s.Kind == stepDrop:
		// A file that is not the one we meant to drop: put it back.
		if err := st.d.RenameNoReplace(side, s.Name); err == nil {
			return nil
		}
	}
	return fmt.Errorf("%w: %s holds a file of %s (inode %d) that the run record of %s does not account for; move it back to a free segment name by hand",
		backends.ErrUnsafe, st.side(side), rec.Base, sst.Ino, b.record(st).Path())
}

// drainSide appends to the replacement what writers appended to the old
// active inode after the swap and the step's offset, exactly once: an
// append a kill interrupted is looked for where it was going before
// anything is appended again (livefile.Progress). The replacement is
// found by inode wherever the writer has rotated it to; if it is gone,
// the lines go to the active file.
func (b *Backend) drainSide(ctx context.Context, st store, rec *runRecord, s *step, side string, q *quarantine.Writer, bound time.Duration, check *livefile.WriterCheck) error {
	old, ost, err := st.openRegular(side, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	defer old.Close()
	save := func() error { return b.writeRecord(st, rec) }
	if s.Pending > 0 {
		l, err := st.list()
		if err != nil {
			return err
		}
		// The file the interrupted append went to, by inode: the
		// replacement, wherever the writer has rotated it, or the active
		// file of an earlier recovery. Gone, it took the bytes with it.
		var dst *os.File
		if i, ok := l.find(fileID{Dev: s.New.Dev, Ino: s.PendingIno}); ok {
			if dst, _, err = st.openRegular(st.name(i), os.O_RDONLY, 0); err != nil {
				return err
			}
			defer dst.Close()
		}
		if err := s.Settle(old, dst, save); err != nil {
			return err
		}
	}
	// The target is opened only when there is something to append to it.
	var dst *os.File
	defer func() {
		if dst != nil {
			_ = dst.Close()
		}
	}()
	var n int64
	drain := func() error {
		if livefile.Size(old) <= s.Offset {
			return nil
		}
		if dst == nil {
			var err error
			if dst, err = b.openDrainTarget(st, s, os.FileMode(ost.Mode&0o777), side); err != nil {
				return err
			}
		}
		k, err := s.Append(old, dst, b.space, save, nil)
		n += k
		if err != nil {
			return fmt.Errorf("drain %s into %s: %w", st.side(side), dst.Name(), err)
		}
		return nil
	}
	// A writer of the killed run's time may still hold the old inode:
	// drain until it has closed it (bounded; otherwise it stays).
	if err := livefile.AwaitWriters(ctx, old, bound, check, drain); err != nil {
		return err
	}
	if n > 0 {
		b.log.Info("recovered records appended during an interrupted swap", "segment", dst.Name(), "bytes", n)
	}
	if rest := livefile.Size(old) - s.Offset; rest > 0 {
		frag := make([]byte, rest)
		if _, err := old.ReadAt(frag, s.Offset); err != nil {
			return fmt.Errorf("read %s: %w", st.side(side), err)
		}
		qe := quarantine.Entry{Source: st.side(s.Name), Offset: s.Offset, Reason: "torn write left on the replaced file"}
		if err := q.Add(qe, frag); err != nil {
			return err
		}
	}
	return q.Commit()
}

// openDrainTarget opens for appending the replacement of step s, found by
// inode wherever the writer has rotated it to, or the active file if it
// is gone.
func (b *Backend) openDrainTarget(st store, s *step, mode os.FileMode, side string) (*os.File, error) {
	targetName := st.name(0)
	if l, err := st.list(); err == nil {
		if i, ok := l.find(s.New); ok {
			targetName = st.name(i)
		}
	}
	dst, _, err := st.openRegular(targetName, os.O_WRONLY|os.O_APPEND|os.O_CREATE, mode)
	if err != nil {
		return nil, fmt.Errorf("%w; %s still holds the records appended during an interrupted swap", err, st.side(side))
	}
	return dst, nil
}

// resolveAnchor removes the empty file a run put at the top slot, if it is
// still there and still empty, so that the writer may rotate again. A file
// found at the side name used to remove it that is not the anchor was
// moved there by a removal a kill interrupted: it goes back.
func (b *Backend) resolveAnchor(st store, rec *runRecord) error {
	if rec.Anchor == nil {
		return nil
	}
	var errs []error
	for _, name := range []string{fsutil.SideName(st.base, rec.Token, "anchor"), fsutil.SideName(st.base, rec.Token, "unanchor")} {
		sst, err := st.d.Lstat(name)
		if err != nil {
			continue
		}
		if idOf(&sst) == *rec.Anchor && sst.Size == 0 {
			errs = append(errs, removeFile(st, name))
			continue
		}
		if err := st.d.RenameNoReplace(name, rec.Top); err != nil {
			errs = append(errs, fmt.Errorf("%w: %s holds a file of %s that is not the run's anchor and %s is taken; move it back to a free segment name by hand: %w",
				backends.ErrUnsafe, st.side(name), st.base, rec.Top, err))
		}
	}
	if sst, err := st.d.Lstat(rec.Top); err == nil && idOf(&sst) == *rec.Anchor && sst.Size == 0 {
		errs = append(errs, removeVerified(st, rec.Top, fsutil.SideName(st.base, rec.Token, "unanchor"), *rec.Anchor, 0))
	}
	return errors.Join(errs...)
}

// removeVerified removes the file at name only if it is the inode id of
// the given size: it first moves whatever name holds to our own side name
// (atomically, never replacing anything), checks that, and unlinks it; a
// file that is not ours is moved back. A plain unlink by name could remove
// a segment the writer has just renamed there.
func removeVerified(st store, name, side string, id fileID, size int64) error {
	if err := st.d.RenameNoReplace(name, side); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("%s: %w (%s vanished before it was removed)", st.path(0), backends.ErrChanged, st.side(name))
		}
		return err
	}
	sst, err := st.d.Lstat(side)
	if err != nil {
		return err
	}
	if idOf(&sst) == id && sst.Size == size {
		return removeFile(st, side)
	}
	if err := st.d.RenameNoReplace(side, name); err != nil {
		return fmt.Errorf("%w: %s held another file than planned and could not be put back: it is at %s: %w", backends.ErrUnsafe, st.side(name), st.side(side), err)
	}
	return fmt.Errorf("%s: %w (%s was replaced by the writer before it was removed)", st.path(0), backends.ErrChanged, st.side(name))
}

// removeFile unlinks name in the store's directory (a missing one is
// fine).
func removeFile(st store, name string) error {
	if err := st.d.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
