package lines

import (
	"bytes"
	"fmt"
	"io"
)

// spillStep is how much more a BlockScanner reads at a time for a line
// that runs past the end of its block.
const spillStep = 1 << 20

// BlockScanner yields the lines that start inside one block of a store,
// so that several goroutines can split and classify one store at once,
// each reading its own blocks straight from the file. The blocks [0, B),
// [B, 2B), … of a store yield every line exactly once, in order: a line
// belongs to the block it starts in, and a block's last line is read on
// past the block's end. It is not safe for concurrent use; give each
// goroutine its own.
type BlockScanner struct {
	max   int
	buf   []byte // the block, and the byte before it
	acc   []byte // a spilling line, when it is not too long
	chunk []byte // reads past the block's end
}

// NewBlockScanner returns a scanner that holds lines of up to max bytes
// (newline included) in memory; longer lines are yielded as TooLong.
func NewBlockScanner(max int) *BlockScanner { return &BlockScanner{max: max} }

// Scan calls fn, in order, for each line of the first size bytes of r that
// starts in [start, end). Line.Raw is valid only during the call. Only the
// line ending at size can be incomplete. fn's error stops the scan and is
// returned.
func (s *BlockScanner) Scan(r io.ReaderAt, start, end, size int64, fn func(Line) error) error {
	end = min(end, size)
	if start >= end {
		return nil
	}
	lo := max(start-1, 0) // the byte before the block tells whether a line starts at start
	n := int(end - lo)
	if cap(s.buf) < n {
		s.buf = make([]byte, n)
	}
	buf := s.buf[:n]
	if err := readAt(r, buf, lo); err != nil {
		return err
	}
	i := 0
	if start > 0 {
		// A line starts after every newline at [start-1, end-1).
		j := bytes.IndexByte(buf[:n-1], '\n')
		if j < 0 {
			return nil // inside one long line that started earlier
		}
		i = j + 1
	}
	for i < n {
		j := bytes.IndexByte(buf[i:], '\n')
		if j < 0 {
			return s.spill(r, buf[i:], lo+int64(i), end, size, fn)
		}
		l := Line{Raw: buf[i : i+j+1], Off: lo + int64(i), Len: int64(j + 1), Complete: true}
		if l.Len > int64(s.max) {
			l.Raw, l.TooLong = nil, true
		}
		if err := fn(l); err != nil {
			return err
		}
		i += j + 1
	}
	return nil
}

// spill finishes the block's last line, head being its part inside the
// block, by reading on from end until its newline or size.
func (s *BlockScanner) spill(r io.ReaderAt, head []byte, off, end, size int64, fn func(Line) error) error {
	l := Line{Off: off, Len: int64(len(head))}
	s.acc = append(s.acc[:0], head...)
	l.TooLong = l.Len > int64(s.max)
	if s.chunk == nil {
		s.chunk = make([]byte, spillStep)
	}
	for pos := end; pos < size && !l.Complete; {
		c := s.chunk[:min(int64(len(s.chunk)), size-pos)]
		if err := readAt(r, c, pos); err != nil {
			return err
		}
		if j := bytes.IndexByte(c, '\n'); j >= 0 {
			c, l.Complete = c[:j+1], true
		}
		l.Len += int64(len(c))
		pos += int64(len(c))
		if !l.TooLong {
			if l.Len > int64(s.max) {
				l.TooLong, s.acc = true, s.acc[:0]
			} else {
				s.acc = append(s.acc, c...)
			}
		}
	}
	if !l.TooLong {
		l.Raw = s.acc
	}
	return fn(l)
}

func readAt(r io.ReaderAt, b []byte, off int64) error {
	k, err := r.ReadAt(b, off)
	if k == len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF // the store shrank under us
	}
	return fmt.Errorf("read at %d: %w", off+int64(k), err)
}
