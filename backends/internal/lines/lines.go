// Package lines splits a store into lines the way papyra-compact's passes
// need them: zero-copy for ordinary lines, bounded memory for huge ones,
// and exact byte offsets so that a second pass over the same bytes sees
// exactly the same lines as the first.
//
// Lines end where Papyra's reader ends them: Python's text mode with
// universal newlines ends a line at "\n", at "\r\n" and at a "\r" not
// followed by "\n" (papyra-formats.md §1.5), so "{…}\r{…}\n" is two
// records to Papyra and two lines here. A "\r" that is the last byte of
// the data ends a line too: Python reads it so at the end of the file.
package lines

import (
	"bytes"
	"errors"
	"io"
)

// Line is one line of a store.
type Line struct {
	// Raw is the line's bytes including its terminator when Complete. It
	// is nil when TooLong, and valid only until the next call to Next.
	Raw []byte
	// Off is the line's byte offset in the store; Len its length including
	// the terminator.
	Off, Len int64
	// Term is the terminator's length: 1 for "\n" or a lone "\r", 2 for
	// "\r\n", 0 when the line is not Complete.
	Term int
	// Complete is false for a last line with no terminator (a torn or
	// in-flight write).
	Complete bool
	// TooLong is true when the line exceeds the reader's maximum; its
	// bytes were skipped and must be re-read from the store by offset.
	TooLong bool
}

// Body returns Raw without its terminator.
func (l Line) Body() []byte {
	if l.Complete && len(l.Raw) >= l.Term {
		return l.Raw[:len(l.Raw)-l.Term]
	}
	return l.Raw
}

// TermLen returns the length of the terminator that ends raw, a complete
// line: 2 for "\r\n", 1 for "\n" or "\r", 0 when raw does not end in one.
func TermLen(raw []byte) int {
	n := len(raw)
	switch {
	case n >= 2 && raw[n-2] == '\r' && raw[n-1] == '\n':
		return 2
	case n >= 1 && (raw[n-1] == '\n' || raw[n-1] == '\r'):
		return 1
	}
	return 0
}

// ends finds where lines end in a buffer. It caches the positions of the
// next '\r' and '\n' so that finding every line end of a buffer costs one
// pass over it, however the terminators mix.
type ends struct {
	b      []byte
	cr, lf int // the next '\r' / '\n' at or after the last search; len(b) when none
}

func (e *ends) reset(b []byte) { e.b, e.cr, e.lf = b, -1, -1 }

// next returns the end of the line that starts at i (the index just past
// its terminator) and the terminator's length, or -1 when b holds no
// terminator from i on that can be decided: none at all, or a '\r' that is
// b's last byte, whose meaning depends on the next byte — unless atEOF,
// when there is no next byte and the '\r' ends the line.
func (e *ends) next(i int, atEOF bool) (end, term int) {
	if e.lf < i {
		e.lf = len(e.b)
		if j := bytes.IndexByte(e.b[i:], '\n'); j >= 0 {
			e.lf = i + j
		}
	}
	if e.cr < i {
		e.cr = len(e.b)
		if j := bytes.IndexByte(e.b[i:], '\r'); j >= 0 {
			e.cr = i + j
		}
	}
	if e.cr < e.lf {
		k := e.cr
		switch {
		case k+1 < len(e.b):
			if e.b[k+1] == '\n' {
				return k + 2, 2
			}
			return k + 1, 1
		case atEOF:
			return k + 1, 1
		}
		return -1, 0
	}
	if e.lf < len(e.b) {
		return e.lf + 1, 1
	}
	return -1, 0
}

// Reader reads lines from an io.Reader positioned at offset off.
type Reader struct {
	r        io.Reader
	buf      []byte
	pos, end int   // unread bytes are buf[pos:end]
	err      error // what ended the input, once met
	max      int
	acc      []byte
	off      int64 // offset of buf[pos]
	ends     ends  // over buf[:end]
}

// NewReader returns a reader with a buffer of bufSize bytes that holds
// lines of up to maxLen bytes in memory.
func NewReader(r io.Reader, off int64, bufSize, maxLen int) *Reader {
	return &Reader{r: r, buf: make([]byte, max(bufSize, 16)), max: maxLen, off: off}
}

// Offset is the offset of the next line.
func (r *Reader) Offset() int64 { return r.off }

// fill moves the unread bytes to the front of the buffer and reads more.
func (r *Reader) fill() {
	if r.pos > 0 {
		r.end = copy(r.buf, r.buf[r.pos:r.end])
		r.pos = 0
	}
	n, err := r.r.Read(r.buf[r.end:])
	r.end += n
	if err != nil {
		r.err = err
	}
	r.ends.reset(r.buf[:r.end])
}

// take adds the next n unread bytes to l; last says they end it, so that a
// line read in one piece is returned without a copy.
func (r *Reader) take(l *Line, n int, last, first bool) {
	p := r.buf[r.pos : r.pos+n]
	r.pos += n
	r.off += int64(n)
	l.Len += int64(n)
	switch {
	case l.TooLong:
	case l.Len > int64(r.max):
		l.TooLong, l.Raw, r.acc = true, nil, r.acc[:0]
	case last && first:
		l.Raw = p // the common case: no copy
	default:
		r.acc = append(r.acc, p...)
		l.Raw = r.acc
	}
}

// Next returns the next line, or io.EOF when there is none.
func (r *Reader) Next() (Line, error) {
	l := Line{Off: r.off}
	r.acc = r.acc[:0]
	pendingCR := false // the line so far ends in a '\r' that ends it unless a '\n' follows
	first := true
	for {
		if r.pos == r.end {
			if r.err != nil {
				if !errors.Is(r.err, io.EOF) {
					return Line{}, r.err
				}
				if l.Len == 0 {
					return Line{}, io.EOF
				}
				if pendingCR {
					l.Complete, l.Term = true, 1
				}
				return l, nil
			}
			r.fill()
			continue
		}
		if pendingCR {
			if r.buf[r.pos] == '\n' {
				r.take(&l, 1, true, false)
				l.Term = 2
			} else {
				l.Term = 1
			}
			l.Complete = true
			return l, nil
		}
		j, term := r.ends.next(r.pos, r.err != nil)
		if j >= 0 {
			r.take(&l, j-r.pos, true, first)
			l.Complete, l.Term = true, term
			return l, nil
		}
		pendingCR = r.buf[r.end-1] == '\r'
		r.take(&l, r.end-r.pos, false, false)
		first = false
	}
}
