package segments

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/papyra-compact/papyra-compact/backends/internal/pyjson"
)

// Scratch entry codes, one entry per complete line of a scanned segment.
// Each segment's entries form one contiguous region of the scratch file.
const (
	entryKeep    = 0 // a record that passed age retention: len, size[, ts]
	entryAged    = 1 // a record removed by age retention
	entryBlank   = 2 // a blank line
	entryCorrupt = 3 // a corrupt line: reason byte follows
	entryHasTS   = 0x10
)

// entry is one decoded scratch entry.
type entry struct {
	code   byte
	reason pyjson.Reason
	len    int64
	size   int64
	ts     float64
	hasTS  bool
}

// appendEntry encodes the verdict on one line into e (which must be empty).
func appendEntry(e []byte, code byte, l pyjson.Line, n int64) []byte {
	switch code {
	case entryCorrupt:
		return append(e, entryCorrupt, byte(l.Reason))
	case entryKeep:
		c := byte(entryKeep)
		hasTS := l.TS == pyjson.TSNumber
		if hasTS {
			c |= entryHasTS
		}
		e = append(e, c)
		e = binary.AppendUvarint(e, uint64(n))
		e = binary.AppendUvarint(e, uint64(l.ReprSize))
		if hasTS {
			e = binary.LittleEndian.AppendUint64(e, math.Float64bits(l.Value))
		}
		return e
	}
	return append(e, code)
}

// scratchReader iterates over one region of the scratch file.
type scratchReader struct{ r *bufio.Reader }

func newScratchReader(f *os.File, off, end int64) *scratchReader {
	return &scratchReader{r: bufio.NewReaderSize(io.NewSectionReader(f, off, end-off), 64<<10)}
}

func (s *scratchReader) next() (entry, error) {
	c, err := s.r.ReadByte()
	if err != nil {
		return entry{}, fmt.Errorf("read scratch file: %w", err)
	}
	e := entry{code: c &^ entryHasTS, hasTS: c&entryHasTS != 0}
	switch e.code {
	case entryCorrupt:
		r, err := s.r.ReadByte()
		if err != nil {
			return e, fmt.Errorf("read scratch file: %w", err)
		}
		e.reason = pyjson.Reason(r)
	case entryKeep:
		n, err := binary.ReadUvarint(s.r)
		if err != nil {
			return e, fmt.Errorf("read scratch file: %w", err)
		}
		size, err := binary.ReadUvarint(s.r)
		if err != nil {
			return e, fmt.Errorf("read scratch file: %w", err)
		}
		e.len, e.size = int64(n), int64(size)
		if e.hasTS {
			var b [8]byte
			if _, err := io.ReadFull(s.r, b[:]); err != nil {
				return e, fmt.Errorf("read scratch file: %w", err)
			}
			e.ts = math.Float64frombits(binary.LittleEndian.Uint64(b[:]))
		}
	}
	return e, nil
}
