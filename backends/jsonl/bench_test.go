package jsonl_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/backends/backendtest"
	"github.com/papyra-compact/papyra-compact/config"
)

// BenchmarkCompact measures Plan+Apply on a 64 MB Papyra-format store,
// half of it expired. bench/jsonl.sh measures the whole binary against cp.
func BenchmarkCompact(b *testing.B) {
	dir := b.TempDir()
	orig := filepath.Join(dir, "orig.jsonl")
	f, err := os.Create(orig)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	var size int64
	for i := 0; size < 64<<20; i++ {
		ts := float64(backendtest.Now.Unix()) - 60
		if i%2 == 0 {
			ts -= 10 * 86400
		}
		n, _ := fmt.Fprintf(w, `{"kind": "event", "system_id": "local", "actor_address": {"system": "local", "actor_id": %d}, "event_type": "ActorStarted", "payload": {"reason": null, "i": %d, "note": "é"}, "timestamp": %.6f}`+"\n", i%997, i, ts)
		size += int64(n)
	}
	w.Flush()
	f.Close()
	data, _ := os.ReadFile(orig)
	store := filepath.Join(dir, "store.jsonl")
	for _, tc := range []struct {
		name string
		ret  config.Retention
	}{
		{"MaxAge", config.Retention{MaxAgeSeconds: ptr(86400.0)}},
		{"MaxTotalBytes", config.Retention{MaxTotalBytes: ptr[int64](16 << 20)}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			be := newBackendIn(b, store, env(dir))
			b.SetBytes(size)
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				if err := os.WriteFile(store, data, 0o644); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				p, err := be.Plan(context.Background(), backends.Policy{Retention: tc.ret, Now: backendtest.Now})
				if err != nil {
					b.Fatal(err)
				}
				st, err := be.Apply(context.Background(), p)
				if err != nil {
					b.Fatal(err)
				}
				p.Close()
				// A compaction that removed nothing timed nothing.
				fi, err := os.Stat(store)
				if err != nil {
					b.Fatal(err)
				}
				if st.Removed() == 0 || fi.Size() >= size {
					b.Fatalf("the compaction did not do the work it times: removed %d records, store %d bytes (was %d)", st.Removed(), fi.Size(), size)
				}
			}
		})
	}
}
