// Package scratch encodes the per-line verdicts the file backends write to
// their unlinked scratch file during Plan, and reads them back during the
// cut computation and Apply: one entry per complete line, in file order,
// a few bytes each, so that memory does not grow with the store's size.
package scratch

import (
	"bufio"
	"encoding/binary"
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
	hasTS   byte = 0x10
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

// Reader decodes entries.
type Reader struct{ r *bufio.Reader }

// NewReader reads entries from r.
func NewReader(r io.Reader) *Reader { return &Reader{r: bufio.NewReaderSize(r, 256<<10)} }

// Next returns the next entry.
func (s *Reader) Next() (Entry, error) {
	c, err := s.r.ReadByte()
	if err != nil {
		return Entry{}, fmt.Errorf("read scratch file: %w", err)
	}
	e := Entry{Code: c &^ hasTS, HasTS: c&hasTS != 0}
	if e.Code == Corrupt {
		r, err := s.r.ReadByte()
		if err != nil {
			return e, fmt.Errorf("read scratch file: %w", err)
		}
		e.Reason = pyjson.Reason(r)
	}
	n, err := binary.ReadUvarint(s.r)
	if err != nil {
		return e, fmt.Errorf("read scratch file: %w", err)
	}
	e.Len = int64(n)
	if e.Code == Keep {
		size, err := binary.ReadUvarint(s.r)
		if err != nil {
			return e, fmt.Errorf("read scratch file: %w", err)
		}
		e.Size = int64(size)
		if e.HasTS {
			var b [8]byte
			if _, err := io.ReadFull(s.r, b[:]); err != nil {
				return e, fmt.Errorf("read scratch file: %w", err)
			}
			e.TS = math.Float64frombits(binary.LittleEndian.Uint64(b[:]))
		}
	}
	return e, nil
}
