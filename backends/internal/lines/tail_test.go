package lines_test

import (
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
