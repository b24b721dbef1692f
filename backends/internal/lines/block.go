package lines

import (
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
// past the block's end. Lines end as in Reader (universal newlines). It is
// not safe for concurrent use; give each goroutine its own.
type BlockScanner struct {
	max   int
	buf   []byte // the block, and the byte before it
	acc   []byte // a spilling line, when it is not too long
	chunk []byte // reads past the block's end
	ends  ends
}

// NewBlockScanner returns a scanner that holds lines of up to max bytes
// (terminator included) in memory; longer lines are yielded as TooLong.
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
	atEOF := end == size
	s.ends.reset(buf)
	i := 0
	if start > 0 {
		// A line starts at start iff the byte before ends a line: a '\n',
		// or a '\r' not followed by '\n'. Otherwise the first line of the
		// block starts after the first terminator.
		switch {
		case buf[0] == '\n', buf[0] == '\r' && buf[1] != '\n':
			i = 1
		default:
			j, _ := s.ends.next(1, atEOF)
			if j < 0 {
				return nil // inside one long line that started earlier
			}
			i = j
		}
	}
	for i < n {
		j, term := s.ends.next(i, atEOF)
		if j < 0 {
			return s.spill(r, buf[i:], lo+int64(i), end, size, fn)
		}
		l := Line{Raw: buf[i:j], Off: lo + int64(i), Len: int64(j - i), Term: term, Complete: true}
		if l.Len > int64(s.max) {
			l.Raw, l.TooLong = nil, true
		}
		if err := fn(l); err != nil {
			return err
		}
		i = j
	}
	return nil
}

// spill finishes the block's last line, head being its part inside the
// block (with no terminator, or a '\r' as its last byte), by reading on
// from end until its terminator or size. It finds the line's end first
// and only then reads the line whole into memory, when it is not too
// long: one allocation of the right size, and none for a huge line.
func (s *BlockScanner) spill(r io.ReaderAt, head []byte, off, end, size int64, fn func(Line) error) error {
	l := Line{Off: off, Len: int64(len(head))}
	if s.chunk == nil {
		s.chunk = make([]byte, spillStep)
	}
	pendingCR := head[len(head)-1] == '\r'
	for pos := end; pos < size && !l.Complete; {
		c := s.chunk[:min(int64(len(s.chunk)), size-pos)]
		if err := readAt(r, c, pos); err != nil {
			return err
		}
		switch {
		case pendingCR:
			l.Complete, l.Term = true, 1
			if c[0] == '\n' {
				c, l.Term = c[:1], 2
			} else {
				c = c[:0]
			}
		default:
			s.ends.reset(c)
			if j, term := s.ends.next(0, pos+int64(len(c)) == size); j >= 0 {
				c, l.Complete, l.Term = c[:j], true, term
			} else {
				pendingCR = c[len(c)-1] == '\r'
			}
		}
		l.Len += int64(len(c))
		pos += int64(len(c))
	}
	if !l.Complete && pendingCR {
		l.Complete, l.Term = true, 1 // a '\r' at the end of the data
	}
	if l.Len > int64(s.max) {
		l.TooLong = true
		return fn(l)
	}
	if int64(cap(s.acc)) < l.Len {
		s.acc = make([]byte, l.Len)
	}
	s.acc = s.acc[:l.Len]
	n := copy(s.acc, head)
	if err := readAt(r, s.acc[n:], end); err != nil {
		return err
	}
	l.Raw = s.acc
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
