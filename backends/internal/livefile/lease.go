package livefile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// ErrWritersRemain means that when its bound ran out another process still
// had a replaced file open for writing: a record it writes later lands on
// that inode, so the inode keeps its second name and its recovery record,
// and the next run drains it again.
var ErrWritersRemain = errors.New("still open for writing by another process")

// WritersBound is how long, after the grace period, a run waits for the
// last writer of a replaced file to close it: ten grace periods, and never
// less than 30 s.
func WritersBound(grace time.Duration) time.Duration { return max(10*grace, 30*time.Second) }

// AwaitWriters makes sure that no writer still holds the replaced inode f
// before its caller gives up its last name, and drains it a last time.
//
// A Papyra writer opens the store, writes one record and closes it. One
// that opened the old inode just before the swap and was descheduled for
// longer than the grace period would write to an inode nobody reads any
// more. The kernel knows whether anyone has an inode open for writing: a
// read lease (fcntl F_SETLEASE F_RDLCK) is granted only when no open file
// description has it open for writing (fs/locks.c check_conflicting_open),
// so f must be open read-only. (A write lease would also be refused for
// every reader, a `tail -f` or this process's own descriptors.) Granted,
// every write made through a closed descriptor is visible: once drains it
// under the lease, and if a writer opened the inode meanwhile (the lease
// is being broken) the wait goes on. Refused with EAGAIN, once drains
// every DrainTick and the lease is asked again, until bound has passed
// (ErrWritersRemain) or ctx is done (its error): either way the caller
// keeps the old inode's second name and record.
//
// Where leases are not available (EACCES without CAP_LEASE on another
// user's file, EINVAL on a file system without them or with
// fs.leases-enable=0) it returns after one more drain: the grace period
// alone covered the writers. That is not silent: check records it (a
// warning once per run, a note per file for the run's Stats.Notes),
// since a writer descheduled past the grace period then loses its
// record.
func AwaitWriters(ctx context.Context, f *os.File, bound time.Duration, check *WriterCheck, once func() error) error {
	log := check.log
	deadline := time.Now().Add(bound)
	waiting := false
	for {
		err := setLease(f, unix.F_RDLCK)
		switch {
		case err == nil:
			derr := once()
			broken := leaseBroken(f)
			uerr := setLease(f, unix.F_UNLCK)
			if derr != nil {
				return derr
			}
			if uerr != nil {
				return fmt.Errorf("release the lease on %s: %w", f.Name(), uerr)
			}
			if !broken {
				return nil
			}
			// A writer opened the inode while we drained: wait for it.
		case errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EBUSY):
			// Open for writing elsewhere.
		default:
			check.unchecked(f, err)
			return once()
		}
		if !waiting {
			waiting = true
			log.Debug("the replaced file is still open for writing; draining it until the writer closes it",
				"file", f.Name(), "bound", bound)
		}
		if err := once(); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%s is %w: kept for the next run: %w", f.Name(), ErrWritersRemain, err)
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("%s is %w %s after the grace period: kept for the next run", f.Name(), ErrWritersRemain, bound)
		}
		select {
		case <-ctx.Done():
		case <-time.After(DrainTick):
		}
	}
}

// WriterCheck is one run's account of the replaced files it could not
// check for late writers (leases unavailable): the first one is logged as
// a warning with the remedy, each one gives a note for the run's
// Stats.Notes: one per inode, however many names it was checked under
// (the active file, then its side name). Not safe for concurrent use.
type WriterCheck struct {
	log   *slog.Logger
	grace time.Duration
	notes []string
	seen  map[[2]uint64]bool // dev, ino
}

// NewWriterCheck starts the account of one run whose writers had grace
// (the store's grace_period) to finish.
func NewWriterCheck(log *slog.Logger, grace time.Duration) *WriterCheck {
	return &WriterCheck{log: log, grace: grace}
}

// Notes says, one note per file, which replaced files were let go
// without proof that no writer still held them.
func (c *WriterCheck) Notes() []string { return append([]string(nil), c.notes...) }

func (c *WriterCheck) unchecked(f *os.File, err error) {
	var st unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st) == nil {
		id := [2]uint64{st.Dev, st.Ino}
		if c.seen[id] {
			return
		}
		if c.seen == nil {
			c.seen = map[[2]uint64]bool{}
		}
		c.seen[id] = true
	}
	name := f.Name()
	reason := err.Error()
	switch {
	case errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM):
		reason = "no lease on another user's file without CAP_LEASE (" + reason + ")"
	case errors.Is(err, unix.EINVAL):
		reason = "the file system has no leases, or fs.leases-enable is 0 (" + reason + ")"
	}
	note := fmt.Sprintf("could not check for late writers of %s: %s; relied on grace_period %s", name, reason, c.grace)
	if len(c.notes) == 0 {
		c.log.Warn(note+": a writer paused longer than that loses its record",
			"file", name, "remedy", "grant the process CAP_LEASE, as the shipped units do")
	}
	c.notes = append(c.notes, note)
}

func setLease(f *os.File, typ int) error {
	for {
		_, err := unix.FcntlInt(f.Fd(), unix.F_SETLEASE, typ)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// leaseBroken reports whether someone opened f for writing since the
// lease was granted: F_GETLEASE then reports the type the lease is being
// broken to.
func leaseBroken(f *os.File) bool {
	typ, err := unix.FcntlInt(f.Fd(), unix.F_GETLEASE, 0)
	return err != nil || typ != unix.F_RDLCK
}
