package lines

import (
	"bytes"
	"fmt"
	"io"
)

// LastLineEnd returns the offset just past the last '\n' of r in
// [from, size), or from when there is none. It reads backwards, so the
// cost is the length of the last line, not of the range.
func LastLineEnd(r io.ReaderAt, from, size int64) (int64, error) {
	var buf [4096]byte
	for end := size; end > from; {
		start := max(from, end-int64(len(buf)))
		b := buf[:end-start]
		if _, err := r.ReadAt(b, start); err != nil {
			return 0, fmt.Errorf("read at %d: %w", start, err)
		}
		if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
			return start + int64(i) + 1, nil
		}
		end = start
	}
	return from, nil
}

// AppendLines copies the complete lines of src in [off, size) to dst, one
// Write per chunk of whole lines, and returns the bytes copied. A dst
// opened with O_APPEND then never interleaves half a line with another
// process's appends. Bytes after the last '\n' are left for a later call.
func AppendLines(dst io.Writer, src io.ReaderAt, off, size int64) (int64, error) {
	var done int64
	buf := make([]byte, 0, 1<<20)
	for off+done < size {
		n := min(int64(cap(buf)), size-off-done)
		b := buf[:n]
		if _, err := src.ReadAt(b, off+done); err != nil {
			return done, fmt.Errorf("read at %d: %w", off+done, err)
		}
		i := bytes.LastIndexByte(b, '\n')
		if i < 0 {
			if n == int64(cap(buf)) { // a line longer than the buffer
				buf = make([]byte, 0, 2*cap(buf))
				continue
			}
			break
		}
		if _, err := dst.Write(b[:i+1]); err != nil {
			return done, fmt.Errorf("append: %w", err)
		}
		done += int64(i + 1)
	}
	return done, nil
}
