package lines_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/papyra-compact/papyra-compact/backends/internal/lines"
)

func TestLastLineEnd(t *testing.T) {
	long := strings.Repeat("x", 10000)
	tests := []struct {
		name string
		data string
		from int64
		want int64
	}{
		{"Empty", "", 0, 0},
		{"NoNewline", "abc", 0, 0},
		{"EndsInNewline", "a\nb\n", 0, 4},
		{"Fragment", "a\nb\nfrag", 0, 4},
		{"NewlineBeforeFrom", "a\nbcd", 3, 3},
		{"LongLastLine", "a\n" + long, 0, 2},
		{"LongLineEndsInNewline", long + "\n" + long, 0, 10001},
		{"LoneCR", "a\nb\rfrag", 0, 4},
		{"CRLF", "a\r\nfrag", 0, 3},
		{"CRAtEnd", "a\nb\r", 0, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := strings.NewReader(tt.data)
			got, err := lines.LastLineEnd(r, tt.from, int64(len(tt.data)))
			if err != nil || got != tt.want {
				t.Errorf("got %d, %v; want %d", got, err, tt.want)
			}
		})
	}
}

func TestAppendLines(t *testing.T) {
	long := strings.Repeat("y", 3<<20)
	tests := []struct {
		name string
		data string
		off  int64
		want string
	}{
		{"WholeLinesOnly", "a\nb\nfrag", 0, "a\nb\n"},
		{"FromOffset", "a\nb\nc\n", 2, "b\nc\n"},
		{"NothingComplete", "frag", 0, ""},
		{"LineLongerThanBuffer", long + "\nz", 0, long + "\n"},
		{"LoneCR", "a\rb\r\nc\rfrag", 0, "a\rb\r\nc\r"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var dst bytes.Buffer
			n, err := lines.AppendLines(&dst, strings.NewReader(tt.data), tt.off, int64(len(tt.data)))
			if err != nil || dst.String() != tt.want || n != int64(len(tt.want)) {
				t.Errorf("got %d bytes (%d copied), %v; want %d", dst.Len(), n, err, len(tt.want))
			}
		})
	}
}
