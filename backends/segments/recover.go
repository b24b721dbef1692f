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
	"github.com/papyra-compact/papyra-compact/backends/internal/lines"
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
	New     fileID `json:"new"`    // the replacement, or the empty file
	Offset  int64  `json:"offset"` // swap: bytes of Old the replacement holds
	Live    bool   `json:"live"`   // swap: Old was the active file: drain it for the grace period
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
	return livefile.RecordFor(b.env.StateDir, "rotating-run", filepath.Join(st.dir, st.base))
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
	rec := &runRecord{}
	found, err := b.record(st).Read(rec)
	if err != nil {
		return err
	}
	if !found {
		rec = nil
	}
	var errs []error
	if rec != nil {
		if err := b.resolve(st, rec, nil); err != nil {
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
	ents, err := os.ReadDir(st.dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("list %s: %w", st.dir, err)
	}
	listed := map[string]bool{}
	if rec != nil {
		for _, s := range rec.Steps {
			listed[s.Side] = true
		}
	}
	var errs []error
	removed := false
	for _, e := range ents {
		token, suffix, ok := fsutil.ParseSideName(st.base, e.Name())
		if !ok || listed[e.Name()] || (rec != nil && rec.Anchor != nil && token == rec.Token && (suffix == "anchor" || suffix == "unanchor")) {
			continue
		}
		p := st.side(e.Name())
		var sst unix.Stat_t
		if err := unix.Lstat(p, &sst); err != nil {
			continue
		}
		if (rec != nil && token == rec.Token && strings.HasPrefix(suffix, stepSwap+".")) || sst.Size == 0 {
			if err := os.Remove(p); err == nil {
				removed = true
				b.log.Info("removed a side file left by an interrupted run", "file", p)
			}
			continue
		}
		errs = append(errs, fmt.Errorf("%w: %s is a side file of %s that no run record accounts for; inspect it (it may hold segment data) and move it back or delete it by hand",
			backends.ErrUnsafe, p, st.path(0)))
	}
	if removed {
		errs = append(errs, fsutil.SyncDir(st.dir))
	}
	return errors.Join(errs...)
}

// resolve settles every step of rec from the inodes it finds, then the
// anchor, and removes the record when nothing is left. It is what Recover
// runs after a kill and what a failed Apply runs at once. q receives torn
// fragments found while draining (nil: a writer of its own).
func (b *Backend) resolve(st store, rec *runRecord, q *quarantine.Writer) error {
	own := q == nil
	if own {
		q = quarantine.NewWriter(b.env.QuarantineDir, st.base, time.Now())
	}
	var errs []error
	unresolved := false
	for _, s := range rec.Steps {
		if err := b.resolveStep(st, rec, s, q); err != nil {
			errs = append(errs, err)
			unresolved = true
		}
	}
	if err := b.resolveAnchor(st, rec); err != nil {
		errs = append(errs, err)
		unresolved = true
	}
	errs = append(errs, fsutil.SyncDir(st.dir), q.Commit())
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
func (b *Backend) resolveStep(st store, rec *runRecord, s *step, q *quarantine.Writer) error {
	side := st.side(s.Side)
	var sst unix.Stat_t
	if err := unix.Lstat(side, &sst); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil // never made, or already finished
		}
		return fmt.Errorf("stat %s: %w", side, err)
	}
	id := idOf(&sst)
	switch {
	case s.Kind == stepSwap && id == s.New, s.Kind == stepSlot && id == s.New && sst.Size == 0:
		// The replacement never entered the store: a copy of lines that are
		// still there.
		return removeFile(side)
	case s.Kind == stepSwap && id == s.Old:
		// Only the old active inode is expected to have grown; any inode
		// that did is drained before it goes (several writers on one store,
		// which Papyra does not support, would do that).
		if err := b.drainSide(st, s, side, q); err != nil {
			return err
		}
		return removeFile(side)
	case s.Kind == stepDrop && id == s.Old && sst.Size == s.OldSize:
		return removeFile(side)
	case s.Kind == stepDrop && id == s.New && sst.Size == 0:
		return removeFile(side)
	case s.Kind == stepDrop:
		// A file that is not the one we meant to drop: put it back.
		if err := fsutil.RenameNoReplace(side, st.side(s.Name)); err == nil {
			return nil
		}
	}
	return fmt.Errorf("%w: %s holds a file of %s (inode %d) that the run record of %s does not account for; move it back to a free segment name by hand",
		backends.ErrUnsafe, side, rec.Base, sst.Ino, b.record(st).Path())
}

// drainSide appends to the replacement what writers appended to the old
// active inode after the swap and the record's offset (lines appended
// between the last drained write and its record update come twice:
// duplicated, never lost). The replacement is found by inode wherever the
// writer has rotated it to; if it is gone, the lines go to the active file.
func (b *Backend) drainSide(st store, s *step, side string, q *quarantine.Writer) error {
	old, err := os.Open(side)
	if err != nil {
		return fmt.Errorf("open %s: %w", side, err)
	}
	defer old.Close()
	var ost unix.Stat_t
	if err := unix.Fstat(int(old.Fd()), &ost); err != nil {
		return fmt.Errorf("stat %s: %w", side, err)
	}
	if ost.Size <= s.Offset {
		return nil
	}
	target := st.path(0)
	if l, err := st.list(); err == nil {
		if i, ok := l.find(s.New); ok {
			target = st.path(i)
		}
	}
	dst, err := os.OpenFile(target, os.O_WRONLY|os.O_APPEND|os.O_CREATE|unix.O_NONBLOCK|unix.O_NOFOLLOW|unix.O_CLOEXEC, os.FileMode(ost.Mode&0o777))
	if err != nil {
		return fmt.Errorf("open %s: %w", target, err)
	}
	defer dst.Close()
	n, err := lines.AppendLines(dst, old, s.Offset, ost.Size)
	if err != nil {
		return fmt.Errorf("drain %s into %s: %w", side, target, err)
	}
	if err := dst.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", target, err)
	}
	if n > 0 {
		b.log.Info("recovered records appended during an interrupted swap", "segment", target, "bytes", n)
	}
	if rest := ost.Size - s.Offset - n; rest > 0 {
		frag := make([]byte, rest)
		if _, err := old.ReadAt(frag, s.Offset+n); err != nil {
			return fmt.Errorf("read %s: %w", side, err)
		}
		qe := quarantine.Entry{Source: st.side(s.Name), Offset: s.Offset + n, Reason: "torn write left on the replaced file"}
		if err := q.Add(qe, frag); err != nil {
			return err
		}
	}
	return q.Commit()
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
		p := st.side(name)
		var sst unix.Stat_t
		if unix.Lstat(p, &sst) != nil {
			continue
		}
		if idOf(&sst) == *rec.Anchor && sst.Size == 0 {
			errs = append(errs, removeFile(p))
			continue
		}
		if err := fsutil.RenameNoReplace(p, st.side(rec.Top)); err != nil {
			errs = append(errs, fmt.Errorf("%w: %s holds a file of %s that is not the run's anchor and %s is taken; move it back to a free segment name by hand: %w",
				backends.ErrUnsafe, p, st.base, rec.Top, err))
		}
	}
	var sst unix.Stat_t
	if unix.Lstat(st.side(rec.Top), &sst) == nil && idOf(&sst) == *rec.Anchor && sst.Size == 0 {
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
	from, to := st.side(name), st.side(side)
	if err := fsutil.RenameNoReplace(from, to); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("%s: %w (%s vanished before it was removed)", st.path(0), backends.ErrChanged, from)
		}
		return err
	}
	var sst unix.Stat_t
	if err := unix.Lstat(to, &sst); err != nil {
		return fmt.Errorf("stat %s: %w", to, err)
	}
	if idOf(&sst) == id && sst.Size == size {
		return removeFile(to)
	}
	if err := fsutil.RenameNoReplace(to, from); err != nil {
		return fmt.Errorf("%w: %s held another file than planned and could not be put back: it is at %s: %w", backends.ErrUnsafe, from, to, err)
	}
	return fmt.Errorf("%s: %w (%s was replaced by the writer before it was removed)", st.path(0), backends.ErrChanged, from)
}

func removeFile(p string) error {
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", p, err)
	}
	return nil
}
