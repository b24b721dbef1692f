// Package scratch encodes the per-line verdicts the file backends write to
// their unlinked scratch file during Plan, and reads them back during the
// cut computation and Apply: one entry per complete line, in file order,
// a few bytes each, so that memory does not grow with the store's size.
package scratch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/papyra-compact/papyra-compact/backends/internal/pyjson"
)

// Entry codes.
const (
	Keep    byte = 0 // a record that passed age retention: length, repr size[, timestamp]
	Aged    byte = 1 // a record removed by age retention: length
	Blank   byte = 2 // a blank line: length
	Corrupt byte = 3 // a corrupt line: its reason, length
	// Unsure is a line Papyra may or may not read (pyjson.Unsure): kept
	// in place unless it lies before the retention cut, never counted by
	// max_records or max_total_bytes: length.
	Unsure byte = 4
	hasTS  byte = 0x10
)

// Entry is one decoded entry.
type Entry struct {
	Code   byte
	Reason pyjson.Reason // Corrupt
	Len    int64         // the line's length, newline included
	Size   int64         // Keep: the record's Python repr size (0 unless asked)
	TS     float64       // Keep with HasTS: the record's timestamp
	HasTS  bool
}

// Append encodes the verdict code on line l, n bytes long with its newline,
// onto e.
func Append(e []byte, code byte, l pyjson.Line, n int64) []byte {
	switch code {
	case Corrupt:
		return binary.AppendUvarint(append(e, Corrupt, byte(l.Reason)), uint64(n))
	case Keep:
		c := Keep
		ts := l.TS == pyjson.TSNumber
		if ts {
			c |= hasTS
		}
		e = append(e, c)
		e = binary.AppendUvarint(e, uint64(n))
		e = binary.AppendUvarint(e, uint64(l.ReprSize))
		if ts {
			e = binary.LittleEndian.AppendUint64(e, math.Float64bits(l.Value))
		}
		return e
	}
	return binary.AppendUvarint(append(e, code), uint64(n))
}

// maxEntry is the longest encoding of an entry.
const maxEntry = 2 + 2*binary.MaxVarintLen64 + 8

// Reader decodes entries. It decodes straight from its buffer: the
// second pass reads one entry per line of the store, millions of them.
type Reader struct {
	r   io.Reader
	buf []byte
	pos int // next byte in buf
	end int // end of the valid bytes in buf
	eof error
}

// NewReader reads entries from r.
func NewReader(r io.Reader) *Reader { return &Reader{r: r, buf: make([]byte, 256<<10)} }

// fill makes sure a whole entry is buffered, unless the input ends first.
func (s *Reader) fill() {
	if s.end-s.pos >= maxEntry || s.eof != nil {
		return
	}
	s.end = copy(s.buf, s.buf[s.pos:s.end])
	s.pos = 0
	for s.end < maxEntry && s.eof == nil {
		n, err := s.r.Read(s.buf[s.end:])
		s.end += n
		if err != nil {
			s.eof = err
		}
	}
}

// uvarint decodes a uvarint at the read position.
func (s *Reader) uvarint() (uint64, error) {
	v, n := binary.Uvarint(s.buf[s.pos:s.end])
	if n <= 0 {
		return 0, s.short()
	}
	s.pos += n
	return v, nil
}

func (s *Reader) short() error {
	if s.eof != nil && !errors.Is(s.eof, io.EOF) {
		return fmt.Errorf("read scratch file: %w", s.eof)
	}
	return fmt.Errorf("read scratch file: %w", io.ErrUnexpectedEOF)
}

// Next returns the next entry.
func (s *Reader) Next() (Entry, error) {
	s.fill()
	if s.pos >= s.end {
		if s.eof != nil && !errors.Is(s.eof, io.EOF) {
			return Entry{}, fmt.Errorf("read scratch file: %w", s.eof)
		}
		return Entry{}, fmt.Errorf("read scratch file: %w", io.EOF)
	}
	c := s.buf[s.pos]
	s.pos++
	e := Entry{Code: c &^ hasTS, HasTS: c&hasTS != 0}
	if e.Code == Corrupt {
		if s.pos >= s.end {
			return e, s.short()
		}
		e.Reason = pyjson.Reason(s.buf[s.pos])
		s.pos++
	}
	n, err := s.uvarint()
	if err != nil {
		return e, err
	}
	e.Len = int64(n)
	if e.Code == Keep {
		size, err := s.uvarint()
		if err != nil {
			return e, err
		}
		e.Size = int64(size)
		if e.HasTS {
			if s.end-s.pos < 8 {
				return e, s.short()
			}
			e.TS = math.Float64frombits(binary.LittleEndian.Uint64(s.buf[s.pos:]))
			s.pos += 8
		}
	}
	return e, nil
}

// EachKept reads the entries of lines lines from r and calls fn with the
// index (among Keep entries) and entry of every record that passed age
// retention, in file order, until fn returns false. It also calls fn with
// every Unsure entry, whose index is that of the next Keep entry (and
// whose Size is 0): an Unsure line goes with the records after it.
func EachKept(r io.Reader, lines int64, fn func(i int64, e Entry) bool) error {
	sr := NewReader(r)
	var i int64
	for n := int64(0); n < lines; n++ {
		e, err := sr.Next()
		if err != nil {
			return err
		}
		if e.Code != Keep && e.Code != Unsure {
			continue
		}
		if !fn(i, e) {
			return nil
		}
		if e.Code == Keep {
			i++
		}
	}
	return nil
}
