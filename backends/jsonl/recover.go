package jsonl

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/backends/internal/livefile"
	"github.com/papyra-compact/papyra-compact/backends/internal/quarantine"
	"github.com/papyra-compact/papyra-compact/internal/failpoint"
	"github.com/papyra-compact/papyra-compact/internal/fsutil"
	"github.com/papyra-compact/papyra-compact/internal/safepath"
)

// recoveryRecord says, while a swap is in flight, which bytes of the old
// inode the new file already holds.
type recoveryRecord struct {
	Store string `json:"store"` // the store's real path
	Old   string `json:"old"`   // the old inode's second name
	// How much of the old inode the new file holds, and an append of
	// drained lines in flight (see livefile.Progress).
	livefile.Progress
	NewDev uint64 `json:"new_dev"`
	NewIno uint64 `json:"new_ino"`
}

// record is the recovery record of the store whose real path is real.
func (b *Backend) record(real string) livefile.Record {
	return livefile.RecordFor(b.space, b.env.StateDir, "jsonl-swap", real)
}

func (b *Backend) writeRecord(rec *recoveryRecord) error { return b.record(rec.Store).Write(rec) }

// finishRecovery removes the old inode's second name, then the record.
// The order matters: a record without its old name is harmless, an old
// name without its record is data Recover must not delete blindly.
func (b *Backend) finishRecovery(rec *recoveryRecord) error {
	old, err := b.oldName(rec)
	if err != nil {
		return err
	}
	if err := b.store.Dir.Remove(old); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := b.store.Dir.Sync(); err != nil {
		return err
	}
	return b.record(rec.Store).Remove()
}

// oldName is the name, in the store's resolved directory, of the old
// inode a record names. A record is keyed on the store's real path and
// written by this backend, so the old name is always in that directory;
// one that is not is refused rather than followed elsewhere.
func (b *Backend) oldName(rec *recoveryRecord) (string, error) {
	d := b.store.Dir
	if rec.Store != b.store.Path || filepath.Dir(rec.Old) != d.Path() {
		return "", fmt.Errorf("%w: recovery record %s names %s and %s, not files of the store %s",
			backends.ErrUnsafe, b.record(b.store.Path).Path(), rec.Store, rec.Old, b.store.Path)
	}
	return filepath.Base(rec.Old), nil
}

// openAt opens name in the store's directory without following a link or
// blocking, and refuses what is not a regular file the owner rule allows.
func (b *Backend) openAt(name string, flag int, perm os.FileMode) (*os.File, error) {
	d := b.store.Dir
	f, err := d.Open(name, flag|unix.O_NONBLOCK, perm)
	if err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, fmt.Errorf("stat %s: %w", f.Name(), err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		f.Close()
		return nil, fmt.Errorf("%w: %s is %w", backends.ErrUnsafe, f.Name(), safepath.ErrNotRegular)
	}
	if err := d.CheckFile(name, &st); err != nil {
		f.Close()
		return nil, refusal(err)
	}
	return f, nil
}

// Recover implements backends.Backend: it finishes a swap a killed run
// left half done and deletes stale temp files. It must run under the
// store's lock, which is what makes every side file it finds stale.
func (b *Backend) Recover(ctx context.Context) error {
	st, err := b.resolve()
	if errors.Is(err, fs.ErrNotExist) {
		return nil // no directory, so nothing left behind in it
	}
	if err != nil {
		return err
	}
	real, d, base := st.Path, st.Dir, st.Name
	// Temp files of a record write a kill interrupted: the record itself
	// is whole (written by rename), the temp file is garbage.
	if n, err := b.record(real).Sweep(); err != nil {
		return err
	} else if n > 0 {
		b.log.Info("removed temp files of the recovery record left by an interrupted run", "count", n)
	}
	var accounted string
	var rec recoveryRecord
	if found, err := b.record(real).Read(&rec); err != nil {
		return err
	} else if found {
		if err := b.recoverSwap(ctx, &rec); err != nil {
			return err
		}
		accounted = filepath.Base(rec.Old)
	}
	names, err := d.Names()
	if err != nil {
		return err
	}
	var errs []error
	removed := false
	for _, name := range names {
		_, suffix, ok := fsutil.ParseSideName(base, name)
		if !ok || name == accounted {
			continue
		}
		p := d.Join(name)
		switch suffix {
		case "tmp":
			// A temp file of a run that never renamed it: its content is a
			// copy of records that are still in the store.
			if err := d.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("remove stale temp file: %w", err))
			}
			removed = true
			b.log.Info("removed a temp file left by an interrupted run", "file", p)
		case "old":
			// No record names it, so the rename never happened: it must be
			// a second name of the store itself. Anything else is data we
			// cannot account for and is left alone.
			if st, err := d.Lstat(base); err == nil {
				if same, _ := sameFile(d, name, &st); same {
					if err := d.Remove(name); err == nil {
						removed = true
					}
					continue
				}
			}
			errs = append(errs, fmt.Errorf("%w: %s holds an earlier version of %s that no recovery record accounts for; inspect it and append any missing lines by hand, then delete it", backends.ErrUnsafe, p, real))
		}
	}
	if removed {
		errs = append(errs, d.Sync())
	}
	return errors.Join(errs...)
}

// recoverSwap finishes a swap from its record.
func (b *Backend) recoverSwap(ctx context.Context, rec *recoveryRecord) error {
	oldName, err := b.oldName(rec)
	if err != nil {
		return err
	}
	old, err := b.openAt(oldName, os.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		// The drain had finished; only the record was left.
		return b.finishRecovery(rec)
	}
	if err != nil {
		return err
	}
	defer old.Close()
	var ost unix.Stat_t
	if err := unix.Fstat(int(old.Fd()), &ost); err != nil {
		return fmt.Errorf("stat %s: %w", rec.Old, err)
	}
	if same, err := sameFile(b.store.Dir, b.store.Name, &ost); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	} else if same {
		// Killed before the rename: the store is still the old inode.
		return b.finishRecovery(rec)
	}
	// The rename happened: append what the new file does not hold yet.
	// Relative to the resolved directory, never through a link put at the
	// store's name, never blocking on a FIFO put there.
	dst, err := b.openAt(b.store.Name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, os.FileMode(ost.Mode&0o777))
	if err != nil {
		return fmt.Errorf("%w; %s still holds the records appended during an interrupted swap", err, rec.Old)
	}
	defer dst.Close()
	if err := b.settlePending(rec, old); err != nil {
		return err
	}
	// A writer of the killed run's time may still hold the old inode:
	// drain until it has closed it (bounded; otherwise it stays).
	var n int64
	err = livefile.AwaitWriters(ctx, old, livefile.WritersBound(b.env.GracePeriod), livefile.NewWriterCheck(b.log, b.env.GracePeriod), func() error {
		k, err := b.appendOnce(rec, old, dst)
		n += k
		return err
	})
	if err != nil {
		return err
	}
	if size := livefile.Size(old); size > rec.Offset {
		frag := make([]byte, size-rec.Offset)
		if _, err := old.ReadAt(frag, rec.Offset); err != nil {
			return fmt.Errorf("read %s: %w", rec.Old, err)
		}
		q := quarantine.NewWriter(b.space, b.env.QuarantineDir, filepath.Base(rec.Store), time.Now())
		qe := quarantine.Entry{Source: rec.Store, Offset: rec.Offset, Reason: "torn write left on the replaced file"}
		if err := q.Add(qe, frag); err != nil {
			return err
		}
		if err := q.Commit(); err != nil {
			return err
		}
		_ = q.Close()
	}
	if n > 0 {
		b.log.Info("recovered records appended during an interrupted swap", "store", rec.Store, "bytes", n)
	}
	return b.finishRecovery(rec)
}

// appendOnce appends the complete lines of old past rec.Offset to dst
// (opened O_APPEND), exactly once whatever moment a kill comes
// (livefile.Progress.Append). It returns the bytes appended.
func (b *Backend) appendOnce(rec *recoveryRecord, old, dst *os.File) (int64, error) {
	return rec.Append(old, dst, b.space, func() error { return b.writeRecord(rec) }, func() error {
		if err := failpoint.Inject("drain-appended"); err != nil {
			return fmt.Errorf("append to %s: %w", dst.Name(), err)
		}
		return nil
	})
}

// settlePending finishes an append a kill interrupted: if the pending
// bytes are in the store after the length it had before the append, they
// went in; otherwise they are appended again by appendOnce.
func (b *Backend) settlePending(rec *recoveryRecord, old *os.File) error {
	if rec.Pending == 0 {
		return nil
	}
	store, err := b.openAt(b.store.Name, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	defer store.Close()
	return rec.Settle(old, store, func() error { return b.writeRecord(rec) })
}
