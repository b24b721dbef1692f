package pyjson_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math"
	"runtime"
	"strings"
	"testing"

	"github.com/papyra-compact/papyra-compact/backends/internal/pyjson"
)

// streamLine feeds line to s in pieces of n bytes (n <= 0: whole).
func streamLine(s *pyjson.Stream, line []byte, n int) pyjson.Line {
	s.Reset()
	if n <= 0 {
		n = len(line) + 1
	}
	for len(line) > 0 {
		k := min(n, len(line))
		s.Write(line[:k])
		line = line[k:]
	}
	return s.Line()
}

// sameVerdict compares two verdicts but for the repr size, which a
// Stream does not measure.
func sameVerdict(a, b pyjson.Line) bool {
	return a.Class == b.Class && a.Reason == b.Reason && a.TS == b.TS && sameFloat(a.Value, b.Value)
}

// TestStreamGolden checks the Stream against CPython 3.11 on every golden
// line, whole and cut in pieces of every size up to 9 bytes (pieces cut
// UTF-8 characters, escapes, numbers and literals).
func TestStreamGolden(t *testing.T) {
	s := pyjson.NewStream(pyjson.DefaultMaxDepth)
	for _, gc := range readGolden(t) {
		line, err := base64.StdEncoding.DecodeString(gc.Line)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.IndexByte(line, '\r') >= 0 {
			continue // a line Papyra's reader splits: never a Stream's input
		}
		want := pyjson.NewClassifier(pyjson.DefaultMaxDepth).Classify(line, false)
		if want.Class != classNames[gc.Class] || want.Reason != reasonNames[gc.Reason] {
			t.Fatalf("%s: Classify disagrees with the golden: %+v", gc.Name, want)
		}
		for _, n := range []int{0, 1, 2, 3, 5, 7, 9} {
			if got := streamLine(s, line, n); !sameVerdict(got, want) || got.ReprSize != 0 {
				t.Errorf("%s, pieces of %d: got %+v, want %+v", gc.Name, n, got, want)
			}
		}
	}
}

// TestStreamHugeLines classifies lines past any in-memory limit, fed as a
// reader feeds them, in 1 MiB pieces.
func TestStreamHugeLines(t *testing.T) {
	if testing.Short() {
		t.Log("the 20 MiB lines run without -short")
	}
	size := 20 << 20
	if testing.Short() {
		size = 3 << 20
	}
	big := strings.Repeat("é,\\\"x\\u00e9 ", size/14)
	deep := strings.Repeat(`{"a": [`, size/14)
	tests := []struct {
		name string
		line string
		want pyjson.Line
	}{
		{"Record", `{"kind": "event", "payload": "` + big + `", "timestamp": 1794999900.5}`,
			pyjson.Line{Class: pyjson.Record, TS: pyjson.TSNumber, Value: 1794999900.5}},
		{"LastTimestampWins", `{"timestamp": 1, "payload": "` + big + `", "timestamp": null}`,
			pyjson.Line{Class: pyjson.Record, TS: pyjson.TSNull}},
		{"InvalidAtTheEnd", `{"payload": "` + big + `", "timestamp": 1,}`,
			pyjson.Line{Class: pyjson.Corrupt, Reason: pyjson.ReasonInvalidJSON}},
		{"InvalidUTF8AtTheEnd", `{"payload": "` + big + "\xff\"}",
			pyjson.Line{Class: pyjson.Corrupt, Reason: pyjson.ReasonInvalidUTF8}},
		{"ControlCharacter", `{"payload": "` + big + "\x00\"}",
			pyjson.Line{Class: pyjson.Corrupt, Reason: pyjson.ReasonInvalidJSON}},
		{"NotObject", `["` + big + `"]`,
			pyjson.Line{Class: pyjson.Corrupt, Reason: pyjson.ReasonNotObject}},
		{"Blank", strings.Repeat(" \t\u3000", size/5),
			pyjson.Line{Class: pyjson.Blank}},
		{"DeepValid", `{"timestamp": 7, "x": ` + deep + "1" + strings.Repeat("]}", size/14) + "}",
			pyjson.Line{Class: pyjson.Unsure, TS: pyjson.TSNumber, Value: 7}},
		{"DeepInvalid", `{"x": ` + deep + "1" + strings.Repeat("]}", size/14),
			pyjson.Line{Class: pyjson.Corrupt, Reason: pyjson.ReasonInvalidJSON}},
		{"LongTimestampLiteral", `{"timestamp": 1.` + strings.Repeat("0", 1<<17) + `1}`,
			pyjson.Line{Class: pyjson.Unsure, TS: pyjson.TSUnknown}},
	}
	s := pyjson.NewStream(pyjson.DefaultMaxDepth)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := streamLine(s, []byte(tt.line), 1<<20); !sameVerdict(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestStreamMemoryBounded feeds a 100 MiB line (64 MiB with -short) in
// 1 MiB pieces and checks the Stream allocates next to nothing: its
// memory does not grow with the line.
func TestStreamMemoryBounded(t *testing.T) {
	total := 100 << 20
	if testing.Short() {
		total = 64 << 20
	}
	piece := []byte(strings.Repeat("abcdefgh\\n\u00e9 ", (1<<20)/16))
	s := pyjson.NewStream(pyjson.DefaultMaxDepth)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s.Write([]byte(`{"timestamp": 3, "payload": "`))
	fed := 0
	for fed < total {
		s.Write(piece)
		fed += len(piece)
	}
	s.Write([]byte(`"}`))
	l := s.Line()
	runtime.ReadMemStats(&after)
	if l.Class != pyjson.Record || l.Value != 3 {
		t.Fatalf("got %+v", l)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<10 {
		t.Errorf("a %d MiB line allocated %d bytes; want < 64 KiB", fed>>20, grew)
	}
	t.Logf("%d MiB line: %d bytes allocated", fed>>20, after.TotalAlloc-before.TotalAlloc)
}

// FuzzStream checks the Stream against the in-memory Classifier, at
// Papyra's depth limit and at a tiny one, with the line cut in pieces.
func FuzzStream(f *testing.F) {
	addSeeds(f)
	shallow := 3
	c := pyjson.NewClassifier(pyjson.DefaultMaxDepth)
	c3 := pyjson.NewClassifier(shallow)
	s := pyjson.NewStream(pyjson.DefaultMaxDepth)
	s3 := pyjson.NewStream(shallow)
	f.Fuzz(func(t *testing.T, line []byte) {
		line = bytes.Clone(line)
		for i, b := range line {
			if b == '\n' || b == '\r' {
				line[i] = ' ' // a terminator never reaches a classifier
			}
		}
		n := 1 + len(line)%7
		for _, k := range []struct {
			c *pyjson.Classifier
			s *pyjson.Stream
		}{{c, s}, {c3, s3}} {
			want := k.c.Classify(line, false)
			if got := streamLine(k.s, line, n); !sameVerdict(got, want) {
				t.Fatalf("Stream(%q) in pieces of %d:\n got %+v\nwant %+v", line, n, got, want)
			}
		}
	})
}

func BenchmarkStream(b *testing.B) {
	line := []byte(fmt.Sprintf(`{"kind": "event", "payload": "%s", "timestamp": %v}`, strings.Repeat("x\u00e9\\n", 1<<18), math.Pi))
	s := pyjson.NewStream(pyjson.DefaultMaxDepth)
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		streamLine(s, line, 1<<20)
	}
}
