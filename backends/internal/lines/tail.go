package lines

import (
	"bytes"
	"fmt"
	"io"
)

// LastLineEnd returns the offset just past the last line terminator
// ('\n' or '\r', as universal newlines end lines) of r in [from, size),
// or from when there is none. It reads backwards, so the cost is the
// length of the last line, not of the range. A '\r' that is the last byte
// counts as an end: should a '\n' follow later, copying the bytes on
// either side of it separately still yields the same lines.
func LastLineEnd(r io.ReaderAt, from, size int64) (int64, error) {
	var buf [4096]byte
	for end := size; end > from; {
		start := max(from, end-int64(len(buf)))
		b := buf[:end-start]
		if _, err := r.ReadAt(b, start); err != nil {
			return 0, fmt.Errorf("read at %d: %w", start, err)
		}
		if i := lastTerm(b); i >= 0 {
			return start + int64(i) + 1, nil
		}
		end = start
	}
	return from, nil
}

// lastTerm is the index of the last '\n' or '\r' of b, or -1.
func lastTerm(b []byte) int {
	return max(bytes.LastIndexByte(b, '\n'), bytes.LastIndexByte(b, '\r'))
}
