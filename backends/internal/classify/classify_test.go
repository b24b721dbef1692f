package classify_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/papyra-compact/papyra-compact/backends/internal/classify"
	"github.com/papyra-compact/papyra-compact/backends/internal/lines"
	"github.com/papyra-compact/papyra-compact/backends/internal/pyjson"
	"github.com/papyra-compact/papyra-compact/backends/internal/scratch"
)

// store builds a few MiB of lines of every kind, so that lines cross
// block boundaries: records fresh and old, corrupt, blank, one line longer
// than a block, and optionally a torn tail.
func store(torn bool) []byte {
	rng := rand.New(rand.NewPCG(5, 6))
	var b bytes.Buffer
	for i := 0; b.Len() < 3*classify.BlockSize+12345; i++ {
		ts := 1795000000.0 - float64(rng.IntN(200000))
		switch {
		case i == 700:
			fmt.Fprintf(&b, `{"kind": "event", "payload": "%s", "timestamp": %f}`+"\n", strings.Repeat("x", classify.BlockSize+100), ts)
		case i%97 == 0:
			b.WriteString("{\"kind\": \"event\", \"torn\n")
		case i%89 == 0:
			b.WriteString("\n")
		case i%211 == 0: // deeper than DefaultMaxDepth: Unsure, aged when old
			fmt.Fprintf(&b, `{"kind": "event", "x": %s1%s, "timestamp": %f}`+"\n", strings.Repeat("[", 1000), strings.Repeat("]", 1000), ts)
		case i%223 == 0: // deep and invalid: corrupt
			fmt.Fprintf(&b, `{"kind": "event", "x": %s1%s, "timestamp": %f}`+"\n", strings.Repeat("[", 1000), strings.Repeat("]", 999), ts)
		case i%79 == 0: // universal newlines: a lone CR and a CRLF end records too
			fmt.Fprintf(&b, `{"kind": "event", "i": %d, "timestamp": %f}`+"\r"+`{"kind": "audit", "timestamp": %f}`+"\r\n", i, ts, ts)
		case i%101 == 0: // a string timestamp: a record unless age retention compares it
			fmt.Fprintf(&b, `{"kind": "event", "i": %d, "timestamp": "%f"}`+"\n", i, ts)
		case i%83 == 0:
			fmt.Fprintf(&b, `{"kind": "audit", "timestamp": null, "i": %d}`+"\n", i)
		default:
			fmt.Fprintf(&b, `{"kind": "event", "system_id": "local", "i": %d, "note": "é", "timestamp": %f}`+"\n", i, ts)
		}
	}
	if torn {
		b.WriteString(`{"kind": "event", "half`)
	}
	return b.Bytes()
}

// reference classifies data sequentially, the obvious way.
func reference(t *testing.T, data []byte, pol classify.Policy) (entries []byte, sum classify.Block) {
	t.Helper()
	cls := pyjson.NewClassifier(pol.MaxDepth)
	r := lines.NewReader(bytes.NewReader(data), 0, 64<<10, pol.MaxLine)
	sum.MaxTS, sum.Oldest = math.Inf(-1), math.Inf(1)
	for {
		l, err := r.Next()
		if errors.Is(err, io.EOF) {
			return entries, sum
		}
		if err != nil {
			t.Fatal(err)
		}
		if !l.Complete {
			sum.Torn = true
			return entries, sum
		}
		sum.Lines++
		sum.End = l.Off + l.Len
		var line pyjson.Line
		if l.TooLong {
			s := pyjson.NewStream(pol.MaxDepth)
			s.Write(data[l.Off : l.Off+l.Len-int64(l.Term)])
			line = s.Line()
		} else {
			line = cls.Classify(l.Body(), pol.WantSize)
		}
		if line.Reason == pyjson.ReasonBadTimestamp && !pol.HasAge {
			// Only age retention compares the timestamp.
			line.Class, line.Reason, line.TS = pyjson.Record, pyjson.ReasonNone, pyjson.TSMissing
			if line.Deep {
				line.Class = pyjson.Unsure
			}
		}
		code := scratch.Keep
		switch line.Class {
		case pyjson.Unsure:
			code = scratch.Unsure
			if pol.HasAge && line.TS != pyjson.TSUnknown && !(line.TS == pyjson.TSNumber && line.Value >= pol.Cutoff) {
				sum.Records++
				sum.Aged++
				code = scratch.Aged
			} else {
				sum.Unsure++
				sum.KeptLen += l.Len
			}
		case pyjson.Blank:
			sum.Blank++
			code = scratch.Blank
		case pyjson.Corrupt:
			sum.Corrupt++
			code = scratch.Corrupt
		default:
			sum.Records++
			hasTS := line.TS == pyjson.TSNumber
			if hasTS {
				sum.MaxTS = max(sum.MaxTS, line.Value)
			}
			if pol.HasAge && !(hasTS && line.Value >= pol.Cutoff) {
				sum.Aged++
				code = scratch.Aged
			} else {
				sum.KeptLen += l.Len
				sum.KeptSize += line.ReprSize
				if hasTS {
					sum.Oldest = min(sum.Oldest, line.Value)
				}
			}
		}
		entries = scratch.Append(entries, code, line, l.Len)
	}
}

func TestFile(t *testing.T) {
	tests := []struct {
		name string
		torn bool
		pol  classify.Policy
	}{
		{"AgeAndSize", false, classify.Policy{WantSize: true, HasAge: true, Cutoff: 1795000000 - 100000}},
		{"NoRetention", false, classify.Policy{}},
		{"TornTailTooLongLine", true, classify.Policy{HasAge: true, Cutoff: 1795000000 - 50000, MaxLine: 64 << 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.pol.MaxLine == 0 {
				tt.pol.MaxLine = 16 << 20
			}
			data := store(tt.torn)
			wantEntries, want := reference(t, data, tt.pol)
			var got classify.Block
			got.MaxTS, got.Oldest = math.Inf(-1), math.Inf(1)
			var entries []byte
			next := int64(0)
			err := classify.File(context.Background(), bytes.NewReader(data), int64(len(data)), tt.pol, func(b *classify.Block) error {
				if b.Start != next {
					t.Fatalf("block at %d, want %d: out of order", b.Start, next)
				}
				next += classify.BlockSize
				entries = append(entries, b.Entries...)
				got.Lines += b.Lines
				if b.End > 0 {
					got.End = b.End
				}
				got.Torn = got.Torn || b.Torn
				got.Blank += b.Blank
				got.Corrupt += b.Corrupt
				got.Records += b.Records
				got.Aged += b.Aged
				got.Unsure += b.Unsure
				got.KeptLen += b.KeptLen
				got.KeptSize += b.KeptSize
				got.Oldest = min(got.Oldest, b.Oldest)
				got.MaxTS = max(got.MaxTS, b.MaxTS)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(entries, wantEntries) {
				t.Errorf("scratch entries differ from the sequential reference")
			}
			got.Entries, want.Entries = nil, nil
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v,\nwant %+v", got, want)
			}
			if want.Corrupt == 0 || want.Blank == 0 || want.Unsure == 0 || (tt.pol.HasAge && want.Aged == 0) {
				t.Errorf("the store misses a kind of line: %+v", want)
			}
		})
	}
}

func TestFileStops(t *testing.T) {
	data := store(false)
	pol := classify.Policy{MaxLine: 16 << 20}
	stop := errors.New("stop")
	calls := 0
	err := classify.File(context.Background(), bytes.NewReader(data), int64(len(data)), pol, func(*classify.Block) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("callback error: got %v after %d calls, want it after 1", err, calls)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = classify.File(ctx, bytes.NewReader(data), int64(len(data)), pol, func(*classify.Block) error { return nil })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: got %v, want context.Canceled", err)
	}

	// The planned size is past the data's end: the file shrank.
	err = classify.File(context.Background(), bytes.NewReader(data), int64(len(data))+classify.BlockSize, pol, func(*classify.Block) error { return nil })
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("shrunk file: got %v, want io.ErrUnexpectedEOF", err)
	}
}

// TestFileHugeLineMemory classifies a store holding one record of 100 MiB
// (24 MiB with -short) with the backends' 16 MiB in-memory limit: the
// line is streamed, so what the pass allocates does not grow with it.
func TestFileHugeLineMemory(t *testing.T) {
	size := 100 << 20
	if testing.Short() {
		size = 24 << 20
	}
	path := filepath.Join(t.TempDir(), "store.jsonl")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fmt.Fprintf(f, `{"kind": "event", "timestamp": 1794999000.0}`+"\n"+`{"kind": "event", "payload": "`)
	chunk := []byte(strings.Repeat(`abc\"é\u00e9`, (1<<20)/12))
	for n := 0; n < size; n += len(chunk) {
		if _, err := f.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	fmt.Fprintf(f, `", "timestamp": 1794999999.5}`+"\r"+`{"kind": "audit", "timestamp": 1794999001.0}`+"\n")
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	pol := classify.Policy{WantSize: true, HasAge: true, Cutoff: 1794999000, MaxLine: 16 << 20}
	var got classify.Block
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	err = classify.File(context.Background(), f, fi.Size(), pol, func(b *classify.Block) error {
		got.Lines += b.Lines
		got.Records += b.Records
		got.Corrupt += b.Corrupt
		got.MaxTS = max(got.MaxTS, b.MaxTS)
		return nil
	})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if got.Lines != 3 || got.Records != 3 || got.Corrupt != 0 || got.MaxTS != 1794999999.5 {
		t.Errorf("got %+v, want 3 records, the newest at 1794999999.5", got)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("a %d MiB line: %d MiB allocated", size>>20, alloc>>20)
	if alloc > 32<<20 {
		t.Errorf("classifying a %d MiB line allocated %d MiB; want < 32 MiB whatever its length", size>>20, alloc>>20)
	}
}
