package livefile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/papyra-compact/papyra-compact/backends/internal/lines"
	"github.com/papyra-compact/papyra-compact/internal/fsutil"
)

// MaxAppend bounds one append of drained lines: one write(2), so that the
// lines land contiguously between Papyra's own appends.
const MaxAppend = 4 << 20

// Progress is how far the drain of an old inode into its replacement has
// got. It lives inside the caller's recovery record (embedded, so its
// fields are the record's own), which the save function passed to Append
// and Settle writes durably.
type Progress struct {
	// Offset is how many bytes of the old inode the replacement holds.
	Offset int64 `json:"offset"`
	// Pending bytes of the old inode, from Offset, are being appended to
	// the file with inode PendingIno, which was PendingAt bytes long just
	// before: after a kill, Settle looks for them there before they are
	// appended again.
	Pending    int64  `json:"pending,omitempty"`
	PendingAt  int64  `json:"pending_at,omitempty"`
	PendingIno uint64 `json:"pending_ino,omitempty"`
}

// Append appends the complete lines of old past p.Offset to dst (opened
// O_APPEND) so that a kill at any moment neither loses nor repeats them:
// save first records which bytes are about to go and how long dst was,
// then one write appends them and an fsync makes them durable, then
// appended runs (a fail point: the moment a kill used to duplicate), then
// save records that the offset moved past them. Settle resolves a kill in
// between. It returns the bytes appended.
//
// Each chunk is claimed from space (the run's budget) before it is
// announced: a chunk that would eat into the headroom Papyra's appends
// need is not appended, and the error (wrapping ENOSPC) leaves it on the
// old inode for the next run, which the caller keeps with its record.
func (p *Progress) Append(old, dst *os.File, space *fsutil.Space, save, appended func() error) (int64, error) {
	var total int64
	for {
		size := Size(old)
		end, err := lines.LastLineEnd(old, p.Offset, min(size, p.Offset+MaxAppend))
		if err != nil {
			return total, fmt.Errorf("read %s: %w", old.Name(), err)
		}
		if end == p.Offset { // no newline within MaxAppend: a huge line
			if end, err = lines.LastLineEnd(old, p.Offset, size); err != nil {
				return total, fmt.Errorf("read %s: %w", old.Name(), err)
			}
		}
		if end == p.Offset {
			return total, nil
		}
		chunk := make([]byte, end-p.Offset)
		if _, err := old.ReadAt(chunk, p.Offset); err != nil {
			return total, fmt.Errorf("read %s: %w", old.Name(), err)
		}
		var dst0 unix.Stat_t
		if err := unix.Fstat(int(dst.Fd()), &dst0); err != nil {
			return total, fmt.Errorf("stat %s: %w", dst.Name(), err)
		}
		claim, err := space.ClaimAt("draining the replaced file", int(dst.Fd()), dst.Name(), int64(len(chunk)))
		if err != nil {
			return total, err
		}
		p.Pending, p.PendingAt, p.PendingIno = int64(len(chunk)), dst0.Size, dst0.Ino
		if err := save(); err != nil {
			claim.Release()
			return total, err
		}
		_, err = dst.Write(chunk)
		claim.Release()
		if err != nil {
			return total, fmt.Errorf("append to %s: %w", dst.Name(), err)
		}
		if err := dst.Sync(); err != nil {
			return total, fmt.Errorf("fsync %s: %w", dst.Name(), err)
		}
		if appended != nil {
			if err := appended(); err != nil {
				return total, err
			}
		}
		p.Offset += p.Pending
		total += p.Pending
		p.Pending, p.PendingAt, p.PendingIno = 0, 0, 0
		if err := save(); err != nil {
			return total, err
		}
	}
}

// settleWindow bounds how far past PendingAt Settle looks for the pending
// bytes: Papyra may have appended before them, between the record update
// and the write.
const settleWindow = 1 << 20

// Settle finishes an append a kill interrupted. dst is the file the
// pending bytes were being appended to (inode PendingIno; nil when it is
// gone). If they are in it, at or after the length it had before the
// append, they went in and the offset moves past them; otherwise they did
// not, and the next Append appends them. Either way the record is saved
// with nothing pending.
func (p *Progress) Settle(old, dst *os.File, save func() error) error {
	if p.Pending == 0 {
		return nil
	}
	chunk := make([]byte, p.Pending)
	if _, err := old.ReadAt(chunk, p.Offset); err != nil {
		return fmt.Errorf("read %s: %w", old.Name(), err)
	}
	if dst != nil {
		size := Size(dst)
		region := make([]byte, max(0, min(size, p.PendingAt+p.Pending+settleWindow)-p.PendingAt))
		if _, err := dst.ReadAt(region, p.PendingAt); err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read %s: %w", dst.Name(), err)
		}
		if bytes.Contains(region, chunk) {
			p.Offset += p.Pending
		}
	}
	p.Pending, p.PendingAt, p.PendingIno = 0, 0, 0
	return save()
}
