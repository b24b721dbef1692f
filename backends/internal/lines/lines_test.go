package lines_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/papyra-compact/papyra-compact/backends/internal/lines"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// split reads every line of data and checks the reader's invariants: the
// lines tile the input exactly, only the last may be incomplete, and a
// too-long line carries no bytes.
func split(t *testing.T, data []byte, bufSize, max int) []lines.Line {
	t.Helper()
	r := lines.NewReader(bytes.NewReader(data), 0, bufSize, max)
	var out []lines.Line
	var off int64
	for {
		l, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if l.Off != off || l.Len <= 0 {
			t.Fatalf("line at %d: got off %d len %d", off, l.Off, l.Len)
		}
		seg := data[l.Off : l.Off+l.Len]
		switch {
		case l.TooLong:
			if l.Raw != nil || l.Len <= int64(max) {
				t.Fatalf("too-long line at %d: raw %d bytes, len %d, max %d", off, len(l.Raw), l.Len, max)
			}
		case !bytes.Equal(l.Raw, seg):
			t.Fatalf("line at %d: got %q, want %q", off, l.Raw, seg)
		}
		if want := pyLineLen(data[off:]); l.Len != int64(want) {
			t.Fatalf("line at %d: %d bytes, want %d (universal newlines) in %q", off, l.Len, want, data[off:])
		}
		if term := lines.TermLen(seg); l.Complete != (term > 0) || l.Term != term {
			t.Fatalf("line at %d: Complete %v Term %d for %q", off, l.Complete, l.Term, seg)
		}
		if !l.TooLong && !bytes.Equal(l.Body(), seg[:len(seg)-l.Term]) {
			t.Fatalf("line at %d: Body %q of %q", off, l.Body(), seg)
		}
		if !l.Complete && l.Off+l.Len != int64(len(data)) {
			t.Fatalf("incomplete line at %d is not the last", off)
		}
		off += l.Len
		out = append(out, l)
	}
	if off != int64(len(data)) {
		t.Fatalf("lines cover %d bytes, want %d", off, len(data))
	}
	return out
}

// pyLineLen is the length of the first line of data as Python's
// universal newlines read it, terminator included: the oracle, byte by
// byte.
func pyLineLen(data []byte) int {
	for i, c := range data {
		switch c {
		case '\n':
			return i + 1
		case '\r':
			if i+1 < len(data) && data[i+1] == '\n' {
				return i + 2
			}
			return i + 1
		}
	}
	return len(data)
}

func TestReader(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		max      int
		complete []bool
		tooLong  []bool
	}{
		{"Empty", "", 64, nil, nil},
		{"OneLine", "abc\n", 64, []bool{true}, []bool{false}},
		{"TornTail", "abc\nde", 64, []bool{true, false}, []bool{false, false}},
		{"BlankLines", "\n\n", 64, []bool{true, true}, []bool{false, false}},
		{"LongerThanBuffer", "0123456789abcdefghij0123456789\nx\n", 64, []bool{true, true}, []bool{false, false}},
		{"TooLong", "0123456789abcdefghij0123456789\nx\n", 20, []bool{true, true}, []bool{true, false}},
		{"TooLongTorn", "x\n0123456789abcdefghij0123456789", 20, []bool{true, false}, []bool{false, true}},
		{"LoneCR", "{a}\r{b}\r{c}\n", 64, []bool{true, true, true}, []bool{false, false, false}},
		{"CRCRLF", "{a}\r\r\n{b}\n", 64, []bool{true, true, true}, []bool{false, false, false}},
		{"CRLF", "{a}\r\n{b}\r\n", 64, []bool{true, true}, []bool{false, false}},
		{"CRAtEOF", "{a}\n{b}\r", 64, []bool{true, true}, []bool{false, false}},
		{"CRInTornTail", "{a}\n{b}\r{c", 64, []bool{true, true, false}, []bool{false, false, false}},
		{"CRLFAcrossBuffer", "0123456789abcde\r\nx\r", 64, []bool{true, true}, []bool{false, false}},
		{"CRAcrossBuffer", "0123456789abcde\rx\r\r", 64, []bool{true, true, true}, []bool{false, false, false}},
		{"ManyLoneCRsInLongLine", strings.Repeat("ab\r", 100) + "z\n", 64, repeatBool(true, 101), repeatBool(false, 101)},
		{"TooLongCRLF", "0123456789abcdefghij0123456789\r\nx\r\n", 20, []bool{true, true}, []bool{true, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := split(t, []byte(tt.in), 16, tt.max)
			if len(got) != len(tt.complete) {
				t.Fatalf("lines: got %d, want %d", len(got), len(tt.complete))
			}
			for i, l := range got {
				if l.Complete != tt.complete[i] || l.TooLong != tt.tooLong[i] {
					t.Errorf("line %d: got complete %v tooLong %v, want %v %v", i, l.Complete, l.TooLong, tt.complete[i], tt.tooLong[i])
				}
			}
		})
	}
}

func repeatBool(v bool, n int) []bool {
	b := make([]bool, n)
	for i := range b {
		b[i] = v
	}
	return b
}

// FuzzReader checks the invariants on arbitrary input, buffer sizes and
// limits. Seeds come from the Papyra fixtures.
func FuzzReader(f *testing.F) {
	for _, data := range fixtureSeeds(f) {
		f.Add(data, uint8(16), uint16(300))
	}
	f.Add([]byte("a\r\nb\n\nc"), uint8(1), uint16(1))
	f.Add([]byte("{a}\r{b}\r\r\n\r\r{c}\r"), uint8(0), uint16(2))
	f.Fuzz(func(t *testing.T, data []byte, buf uint8, max uint16) {
		bufSize := 16 + int(buf) // bufio's minimum is 16
		split(t, data, bufSize, bufSize+int(max))
	})
}

// fixtureSeeds returns the first 4 KiB of Papyra's JSON-lines and
// rotating fixture stores and the edge stores of the differential corpus
// (CR, CRLF, CR CR LF endings, a torn tail…), to seed the fuzz targets.
func fixtureSeeds(f *testing.F) [][]byte {
	var seeds [][]byte
	names := []string{"jsonl/store.jsonl", "rotating/store.log"}
	edges, err := filepath.Glob(testutil.Fixture(f, "edges/*.input.jsonl"))
	if err != nil || len(edges) == 0 {
		f.Fatalf("edge stores: %v (%d)", err, len(edges))
	}
	for _, e := range edges {
		names = append(names, "edges/"+filepath.Base(e))
	}
	for _, name := range names {
		data, err := os.ReadFile(testutil.Fixture(f, name))
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, data[:min(len(data), 4096)])
	}
	return seeds
}
