package pyjson_test

import (
	"testing"

	"github.com/papyra-compact/papyra-compact/backends/internal/pyjson"
)

// BenchmarkClassify runs over the lines of the fixture stores that Papyra
// wrote (raw UTF-8 JSON backend lines and \u-escaped rotating lines).
func BenchmarkClassify(b *testing.B) {
	for _, store := range []struct {
		name  string
		files []string
	}{
		{"jsonl", []string{"jsonl/store.jsonl"}},
		{"rotating", []string{"rotating/store.log", "rotating/store.log.1", "rotating/store.log.2"}},
	} {
		lines := readFixtureLines(b, store.files...)
		var n int64
		for _, l := range lines {
			n += int64(len(l)) + 1
		}
		for _, mode := range []struct {
			name string
			size bool
		}{{"nosize", false}, {"size", true}} {
			b.Run(store.name+"/"+mode.name, func(b *testing.B) {
				c := pyjson.NewClassifier(pyjson.DefaultMaxDepth)
				b.SetBytes(n)
				b.ReportAllocs()
				for b.Loop() {
					for _, l := range lines {
						c.Classify(l, mode.size)
					}
				}
			})
		}
	}
}
