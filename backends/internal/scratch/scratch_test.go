package scratch_test

import (
	"bytes"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"testing"
	"testing/iotest"

	"github.com/papyra-compact/papyra-compact/backends/internal/pyjson"
	"github.com/papyra-compact/papyra-compact/backends/internal/scratch"
)

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		code byte
		line pyjson.Line
		n    int64
		want scratch.Entry
	}{
		{"KeepWithTimestamp", scratch.Keep, pyjson.Line{TS: pyjson.TSNumber, Value: 1795000000.25, ReprSize: 321}, 400,
			scratch.Entry{Code: scratch.Keep, Len: 400, Size: 321, TS: 1795000000.25, HasTS: true}},
		{"KeepNoTimestamp", scratch.Keep, pyjson.Line{TS: pyjson.TSNull}, 1 << 40, scratch.Entry{Code: scratch.Keep, Len: 1 << 40}},
		{"KeepInfinity", scratch.Keep, pyjson.Line{TS: pyjson.TSNumber, Value: math.Inf(1)}, 3,
			scratch.Entry{Code: scratch.Keep, Len: 3, TS: math.Inf(1), HasTS: true}},
		{"Aged", scratch.Aged, pyjson.Line{}, 9, scratch.Entry{Code: scratch.Aged, Len: 9}},
		{"Blank", scratch.Blank, pyjson.Line{}, 1, scratch.Entry{Code: scratch.Blank, Len: 1}},
		{"Corrupt", scratch.Corrupt, pyjson.Line{Reason: pyjson.ReasonNotObject}, 7, scratch.Entry{Code: scratch.Corrupt, Reason: pyjson.ReasonNotObject, Len: 7}},
	}
	var buf []byte
	for _, tt := range tests {
		buf = scratch.Append(buf, tt.code, tt.line, tt.n)
	}
	r := scratch.NewReader(bytes.NewReader(buf))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := r.Next()
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	if _, err := r.Next(); err == nil {
		t.Errorf("Next after the last entry: got nil error, want EOF")
	}
}

// TestManyEntries decodes more entries than the reader buffers at once,
// from a source that returns a few bytes per read, and a truncated copy.
func TestManyEntries(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var buf []byte
	var want []scratch.Entry
	for range 100000 {
		n := 1 + rng.Int64N(1<<20)
		switch code := byte(rng.IntN(4)); code {
		case scratch.Keep:
			l := pyjson.Line{ReprSize: rng.Int64N(1 << 30)}
			e := scratch.Entry{Code: code, Len: n, Size: l.ReprSize}
			if rng.IntN(2) == 0 {
				l.TS, l.Value = pyjson.TSNumber, rng.Float64()*2e9
				e.HasTS, e.TS = true, l.Value
			}
			buf = scratch.Append(buf, code, l, n)
			want = append(want, e)
		case scratch.Corrupt:
			buf = scratch.Append(buf, code, pyjson.Line{Reason: pyjson.ReasonInvalidJSON}, n)
			want = append(want, scratch.Entry{Code: code, Reason: pyjson.ReasonInvalidJSON, Len: n})
		default:
			buf = scratch.Append(buf, code, pyjson.Line{}, n)
			want = append(want, scratch.Entry{Code: code, Len: n})
		}
	}
	r := scratch.NewReader(iotest.HalfReader(bytes.NewReader(buf)))
	for i, w := range want {
		got, err := r.Next()
		if err != nil || got != w {
			t.Fatalf("entry %d: got %+v, %v; want %+v", i, got, err, w)
		}
	}
	if _, err := r.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("after the last entry: got %v, want io.EOF", err)
	}
	r = scratch.NewReader(bytes.NewReader(buf[:len(buf)-1]))
	var err error
	for range want {
		if _, err = r.Next(); err != nil {
			break
		}
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated: got %v, want io.ErrUnexpectedEOF", err)
	}
}
