package segments_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/backends/backendtest"
	"github.com/papyra-compact/papyra-compact/backends/segments"
	"github.com/papyra-compact/papyra-compact/config"
)

// BenchmarkShedCandidates measures listing a store's emergency-drop
// candidates, which reads every rotated segment whole: 8 segments of
// 4 MiB of Papyra records (b.SetBytes: MB/s of store read).
func BenchmarkShedCandidates(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	active := filepath.Join(dir, "store.log")
	var seg strings.Builder
	ts := float64(backendtest.Now.Unix()) - 10*86400
	for n := 0; seg.Len() < 4<<20; n++ {
		seg.WriteString(rec(n, ts+float64(n)/1000))
	}
	var total int64
	for i := 0; i <= 8; i++ {
		p := active
		if i > 0 {
			p += "." + strconv.Itoa(i)
			total += int64(seg.Len())
		}
		if err := os.WriteFile(p, []byte(seg.String()), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	maxBytes, maxFiles := int64(4<<20), int64(10)
	be, err := segments.New(config.Target{Name: "t", Kind: config.KindRotating, Path: active, MaxBytes: &maxBytes, MaxFiles: &maxFiles}, env(b.TempDir()))
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	sh := be.(backends.Shedder)
	pol := backends.ShedPolicy{Now: backendtest.Now, MinKeep: 24 * time.Hour}
	b.SetBytes(total)
	b.ResetTimer()
	for range b.N {
		cs, err := sh.ShedCandidates(context.Background(), pol)
		if err != nil || len(cs) != 8 {
			b.Fatalf("%d candidates, %v", len(cs), err)
		}
	}
}
