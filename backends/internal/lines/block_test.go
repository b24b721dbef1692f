package lines_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/papyra-compact/papyra-compact/backends/internal/lines"
)

// blockSplit scans data block by block and returns every line, Raw copied.
func blockSplit(t *testing.T, data []byte, block int64, max int) []lines.Line {
	t.Helper()
	s := lines.NewBlockScanner(max)
	var out []lines.Line
	size := int64(len(data))
	for start := int64(0); start < size; start += block {
		err := s.Scan(bytes.NewReader(data), start, start+block, size, func(l lines.Line) error {
			if l.Off < start || l.Off >= start+block {
				t.Fatalf("block [%d,%d) yielded a line at %d", start, start+block, l.Off)
			}
			l.Raw = bytes.Clone(l.Raw)
			out = append(out, l)
			return nil
		})
		if err != nil {
			t.Fatalf("Scan [%d,%d): %v", start, start+block, err)
		}
	}
	return out
}

// readerSplit is the reference: the sequential Reader's lines, Raw copied.
func readerSplit(t *testing.T, data []byte, max int) []lines.Line {
	t.Helper()
	split(t, data, 16, max) // the Reader's own invariants
	r := lines.NewReader(bytes.NewReader(data), 0, 16, max)
	var out []lines.Line
	for {
		l, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		l.Raw = bytes.Clone(l.Raw)
		out = append(out, l)
	}
}

// sameLines compares two splits line by line.
func sameLines(t *testing.T, got, want []lines.Line) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d lines, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Off != w.Off || g.Len != w.Len || g.Complete != w.Complete || g.TooLong != w.TooLong || !bytes.Equal(g.Raw, w.Raw) {
			t.Fatalf("line %d: got %+v, want %+v", i, g, w)
		}
	}
}

func TestBlockScanner(t *testing.T) {
	tests := []struct {
		name string
		in   string
		max  int
	}{
		{"Empty", "", 64},
		{"OneLine", "abc\n", 64},
		{"TornTail", "abc\nde", 64},
		{"BlankLines", "\n\n\n", 64},
		{"NewlineAtBlockEdges", "a\nb\nc\nd\n", 64},
		{"LongLineAcrossBlocks", "0123456789abcdefghij0123456789\nx\n", 64},
		{"TooLong", "0123456789abcdefghij0123456789\nx\n", 20},
		{"TooLongTorn", "x\n0123456789abcdefghij0123456789", 20},
		{"OnlyTorn", "no newline at all", 64},
		{"LoneCR", "{a}\r{b}\r{c}\n{d}\n", 64},
		{"CRCRLF", "{a}\r\r\n{b}\n", 64},
		{"CRLF", "{a}\r\n{b}\r\n", 64},
		{"CRAtEOF", "{a}\n{b}\r", 64},
		{"OnlyCRs", "\r\r\r", 64},
		{"CRInTornTail", "{a}\n{b}\r{c", 64},
		{"LongLineEndsInCRLF", "0123456789abcdefghij0123456789\r\nx\r", 64},
		{"TooLongLoneCR", "0123456789abcdefghij0123456789\rx\r\n", 20},
		{"TooLongCRAtEOF", "x\r0123456789abcdefghij0123456789\r", 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := readerSplit(t, []byte(tt.in), tt.max)
			for block := int64(1); block <= int64(len(tt.in))+1; block++ {
				sameLines(t, blockSplit(t, []byte(tt.in), block, tt.max), want)
			}
		})
	}
}

func TestBlockScannerStopsOnError(t *testing.T) {
	stop := errors.New("stop")
	calls := 0
	err := lines.NewBlockScanner(64).Scan(bytes.NewReader([]byte("a\nb\nc\n")), 0, 6, 6, func(lines.Line) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("got %v after %d calls, want the callback's error after 1", err, calls)
	}
}

func TestBlockScannerShrunkFile(t *testing.T) {
	// The planned size is past the file's end: the store was truncated.
	err := lines.NewBlockScanner(64).Scan(bytes.NewReader([]byte("a\nb")), 0, 8, 8, func(lines.Line) error { return nil })
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("got %v, want io.ErrUnexpectedEOF", err)
	}
}

// FuzzBlockScanner checks that any block size yields exactly the
// sequential Reader's lines. Seeds come from the Papyra fixtures.
func FuzzBlockScanner(f *testing.F) {
	for _, data := range fixtureSeeds(f) {
		f.Add(data, uint16(300), uint16(300))
	}
	f.Add([]byte("a\r\nb\n\nc"), uint16(1), uint16(1))
	f.Add([]byte("{a}\r{b}\r\r\n\r\r{c}\r"), uint16(2), uint16(3))
	f.Fuzz(func(t *testing.T, data []byte, block, max uint16) {
		sameLines(t, blockSplit(t, data, 1+int64(block), 16+int(max)), readerSplit(t, data, 16+int(max)))
	})
}
