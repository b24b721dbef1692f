// Package lines splits a store into lines the way papyra-compact's passes
// need them: zero-copy for ordinary lines, bounded memory for huge ones,
// and exact byte offsets so that a second pass over the same bytes sees
// exactly the same lines as the first.
package lines

import (
	"bufio"
	"errors"
	"io"
)

// Line is one line of a store.
type Line struct {
	// Raw is the line's bytes including its '\n' when Complete. It is nil
	// when TooLong, and valid only until the next call to Next.
	Raw []byte
	// Off is the line's byte offset in the store; Len its length including
	// the '\n'.
	Off, Len int64
	// Complete is false for a last line with no '\n' (a torn or in-flight
	// write).
	Complete bool
	// TooLong is true when the line exceeds the reader's maximum; its
	// bytes were skipped and must be re-read from the store by offset.
	TooLong bool
}

// Body returns Raw without the trailing newline.
func (l Line) Body() []byte {
	if l.Complete && len(l.Raw) > 0 {
		return l.Raw[:len(l.Raw)-1]
	}
	return l.Raw
}

// Reader reads lines from an io.Reader positioned at offset off.
type Reader struct {
	br  *bufio.Reader
	max int
	acc []byte
	off int64
}

// NewReader returns a reader with a buffer of bufSize bytes that holds
// lines of up to max bytes in memory.
func NewReader(r io.Reader, off int64, bufSize, max int) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, bufSize), max: max, off: off}
}

// Offset is the offset of the next line.
func (r *Reader) Offset() int64 { return r.off }

// Next returns the next line, or io.EOF when there is none.
func (r *Reader) Next() (Line, error) {
	l := Line{Off: r.off}
	r.acc = r.acc[:0]
	for {
		frag, err := r.br.ReadSlice('\n')
		l.Len += int64(len(frag))
		if !l.TooLong {
			switch {
			case len(r.acc)+len(frag) > r.max:
				l.TooLong, l.Raw, r.acc = true, nil, r.acc[:0]
			case err == nil && len(r.acc) == 0:
				l.Raw = frag // the common case: no copy
			default:
				r.acc = append(r.acc, frag...)
				l.Raw = r.acc
			}
		}
		switch {
		case err == nil:
			l.Complete = true
			r.off += l.Len
			return l, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			r.off += l.Len
			if l.Len == 0 {
				return Line{}, io.EOF
			}
			return l, nil
		default:
			return Line{}, err
		}
	}
}
