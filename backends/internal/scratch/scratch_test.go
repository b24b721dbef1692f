package scratch_test

import (
	"bytes"
	"math"
	"testing"

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
