package lines_test

import (
	"bytes"
	"os"
	"testing"

	"github.com/papyra-compact/papyra-compact/backends/internal/lines"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// BenchmarkBlockScanner splits 64 MiB of Papyra-written lines in 1 MiB
// blocks, as the first pass does.
func BenchmarkBlockScanner(b *testing.B) {
	one, err := os.ReadFile(testutil.Fixture(b, "jsonl/store.jsonl"))
	if err != nil {
		b.Fatal(err)
	}
	data := bytes.Repeat(one, (64<<20)/len(one)+1)
	r := bytes.NewReader(data)
	size := int64(len(data))
	s := lines.NewBlockScanner(16 << 20)
	b.SetBytes(size)
	for b.Loop() {
		var n int64
		for start := int64(0); start < size; start += 1 << 20 {
			if err := s.Scan(r, start, start+1<<20, size, func(l lines.Line) error { n += l.Len; return nil }); err != nil {
				b.Fatal(err)
			}
		}
		if n != size {
			b.Fatalf("lines cover %d bytes of %d", n, size)
		}
	}
}
