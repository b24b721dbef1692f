// Package livefile handles a file another process is appending to.
//
// Papyra appends to its stores from other processes, with no lock and no
// notice, while the file backends replace them. Both backends (jsonl and
// the active file of a rotating store) therefore do the same three things
// around a swap, and this package is the one place they are written:
//
//   - before the swap, copy what writers appended since planning, in
//     whole lines, until the file stops growing (CopyTail);
//   - after the swap, keep draining the old inode into the replacement
//     for a grace period, because a writer that opened the old name just
//     before the rename still appends there (Drain);
//   - after the grace period, keep draining until no other process has
//     the old inode open for writing, which a read lease proves
//     (AwaitWriters), at most WritersBound: a writer descheduled between
//     its open and its write for longer than the grace period still gets
//     its record into the store;
//   - at the end of either, wait a little for a last line without a
//     newline: on Linux a reader can see part of a write that crosses a
//     page, and copying half a write would let the next record glue onto
//     it (WaitFragment).
//
// While a swap is in flight a recovery record in the state directory says
// which bytes of the old inode the new file holds, so that the next run
// after a kill finishes the job (Record). Each drained chunk is announced
// in it before the one write that appends it (Progress.Append), and the
// next run looks for an announced chunk before appending it again
// (Progress.Settle): a kill at any moment neither loses nor duplicates a
// drained record.
//
// Every function works on open descriptors, never on names, except
// Record, which names its file in the state directory.
package livefile

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/papyra-compact/papyra-compact/backends/internal/lines"
)

const (
	// MaxTailRounds bounds the copy-the-tail loop before the swap: a
	// writer that never pauses must not keep the run from finishing.
	// Whatever it appends after the last round is picked up by the drain.
	MaxTailRounds = 50
	// DrainTick is how often an old inode is polled during the grace
	// period.
	DrainTick = 20 * time.Millisecond
	// FragmentWait is how long a last line without a newline may stay
	// incomplete before it counts as torn rather than in flight, and
	// FragmentPoll how often it is looked at meanwhile. A write in flight
	// completes within microseconds; a torn line left by a crash never
	// does.
	FragmentWait = 250 * time.Millisecond
	FragmentPoll = 5 * time.Millisecond
)

// Size is f's current size, 0 when it cannot be read: callers use it
// for a bound and their next read reports the error.
func Size(f *os.File) int64 {
	var st unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st) != nil {
		return 0
	}
	return st.Size
}

// CopyTail copies to w the complete lines of f from offset from to its
// current end, round after round until f stops growing (at most
// MaxTailRounds rounds that found something), and returns the offset of
// f that w now holds up to.
//
// A last line without a newline is either a write in flight or a line
// torn by a crash. With carry, one that stays incomplete for FragmentWait
// is copied too, as the torn line it is, and torn is true (the JSON-lines
// treatment: Papyra's reader skips it and so does nobody else). Without
// carry it is left where it is, for the drain after the swap.
func CopyTail(f *os.File, from int64, w io.Writer, carry bool) (end int64, torn bool, err error) {
	end = from
	var fragSince time.Time
	for rounds := 0; rounds < MaxTailRounds; {
		var st unix.Stat_t
		if err := unix.Fstat(int(f.Fd()), &st); err != nil {
			return end, false, fmt.Errorf("stat %s: %w", f.Name(), err)
		}
		last, err := lines.LastLineEnd(f, end, st.Size)
		if err != nil {
			return end, false, fmt.Errorf("read %s: %w", f.Name(), err)
		}
		if last > end {
			n, err := io.Copy(w, io.NewSectionReader(f, end, last-end))
			end += n
			if err != nil {
				return end, false, fmt.Errorf("copy the lines appended to %s: %w", f.Name(), err)
			}
			rounds++
			fragSince = time.Time{}
			continue
		}
		if st.Size == last || !carry {
			return end, false, nil
		}
		if fragSince.IsZero() {
			fragSince = time.Now()
		}
		if time.Since(fragSince) >= FragmentWait {
			n, err := io.Copy(w, io.NewSectionReader(f, end, st.Size-end))
			end += n
			if err != nil {
				return end, false, fmt.Errorf("copy the last line of %s: %w", f.Name(), err)
			}
			return end, true, nil
		}
		time.Sleep(FragmentPoll)
	}
	return end, false, nil
}

// Drain calls once every DrainTick until grace has passed or ctx is done,
// then one last time: once appends to the replacement the complete lines
// writers added to the old inode since the previous call. A cancelled run
// still takes that last look, so that nothing appended before the
// cancellation is left behind on an inode about to lose its last name.
func Drain(ctx context.Context, grace time.Duration, once func() error) error {
	deadline := time.Now().Add(grace)
	for {
		last := ctx.Err() != nil || !time.Now().Before(deadline)
		if err := once(); err != nil {
			return err
		}
		if last {
			return nil
		}
		select {
		case <-ctx.Done():
		case <-time.After(DrainTick):
		}
	}
}

// WaitFragment gives a last line of f without a newline, past offset()
// (the bytes already drained), up to FragmentWait to complete; whenever
// complete lines are there it calls once to drain them. It returns 0 when
// nothing is left past offset(): lines that arrive later are the next
// drain's (a rotating store drains the old inode once more before it
// goes). Otherwise it returns the length of the fragment that stayed,
// which the caller quarantines, because appended to the replacement it
// would poison the next record Papyra writes. A writer that keeps
// appending complete lines cannot hold it for more than four times
// FragmentWait: what is past offset() then is returned, to be
// quarantined, never dropped.
func WaitFragment(f *os.File, offset func() int64, once func() error) (int64, error) {
	for waited := time.Duration(0); ; waited += FragmentPoll {
		size := Size(f)
		end, err := lines.LastLineEnd(f, offset(), size)
		if err != nil {
			return 0, fmt.Errorf("read %s: %w", f.Name(), err)
		}
		switch {
		case end == size && size <= offset():
			return 0, nil
		case waited >= 4*FragmentWait:
			return max(0, size-offset()), nil
		case end > offset():
			if err := once(); err != nil {
				return 0, err
			}
			continue
		case waited >= FragmentWait:
			return max(0, size-offset()), nil
		}
		time.Sleep(FragmentPoll)
	}
}
