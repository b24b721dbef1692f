package bytesize_test

import (
	"testing"

	"github.com/papyra-compact/papyra-compact/internal/bytesize"
)

func TestFormat(t *testing.T) {
	for _, tt := range []struct {
		name string
		f    func(int64) string
		in   int64
		want string
	}{
		{"IEC", bytesize.IEC, 0, "0 B"},
		{"IEC", bytesize.IEC, 1023, "1023 B"},
		{"IEC", bytesize.IEC, 1024, "1.0 KiB"},
		{"IEC", bytesize.IEC, 3 << 30, "3.0 GiB"},
		{"Count", bytesize.Count, 0, "0"},
		{"Count", bytesize.Count, 999, "999"},
		{"Count", bytesize.Count, 1000, "1,000"},
		{"Count", bytesize.Count, 1204, "1,204"},
		{"Count", bytesize.Count, 1234567, "1,234,567"},
		{"Count", bytesize.Count, -42472, "-42,472"},
		{"Count", bytesize.Count, -100, "-100"},
	} {
		t.Run(tt.name+"/"+tt.want, func(t *testing.T) {
			if got := tt.f(tt.in); got != tt.want {
				t.Errorf("%s(%d): got %q, want %q", tt.name, tt.in, got, tt.want)
			}
		})
	}
}
