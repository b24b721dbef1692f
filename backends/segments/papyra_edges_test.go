package segments_test

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/papyra-compact/papyra-compact/backends/internal/edges"
	"github.com/papyra-compact/papyra-compact/backends/internal/quarantine"
	"github.com/papyra-compact/papyra-compact/config"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// TestBackend_PapyraEdges runs the differential corpus (edges.Cases) with
// each edge store as the active file of a rotating store: the rotating
// backend splits and keeps lines exactly as the jsonl backend, and Papyra
// then reads, across the segments oldest first, what its own compaction
// keeps. (On deep-2000 Papyra's rotating reader itself fails, before and
// after: it lets CPython's RecursionError through; the line stays, as
// another Python may read it.)
func TestBackend_PapyraEdges(t *testing.T) {
	dir := testutil.Fixture(t, "edges")
	const maxFiles = 5
	for _, c := range edges.Cases {
		t.Run(c.Name, func(t *testing.T) {
			input, err := os.ReadFile(filepath.Join(dir, c.Name+".input.jsonl"))
			if err != nil {
				t.Fatal(err)
			}
			active := lay(t, layout{0: string(input)})
			st, err := compact(t, newBackend(t, active, 1<<20, maxFiles), config.Retention{MaxAgeSeconds: ptr(edges.MaxAgeSeconds)})
			if err != nil {
				t.Fatalf("compact: %v", err)
			}
			// Papyra reads store.log.{max_files-1} … store.log.1, store.log.
			var out [][]byte
			for i := maxFiles - 1; i >= 0; i-- {
				p := active
				if i > 0 {
					p += "." + strconv.Itoa(i)
				}
				if b, err := os.ReadFile(p); err == nil {
					out = append(out, b)
				}
			}
			edges.Verify(t, c, input, out, quarantinedRaw(t, st.QuarantineFile))
			if c.RotatingPapyraFails {
				t.Log("Papyra's rotating reader fails on this store before and after the run alike")
			}
			if st.RecordsBefore != c.Counted || st.TornTail != c.Torn {
				t.Errorf("stats: %d records, torn %v; want %d, %v", st.RecordsBefore, st.TornTail, c.Counted, c.Torn)
			}
		})
	}
}

// quarantinedRaw returns the raw bytes of every line in a quarantine file.
func quarantinedRaw(t *testing.T, path string) [][]byte {
	t.Helper()
	if path == "" {
		return nil
	}
	var out [][]byte
	for _, l := range testutil.ReadLines(t, path) {
		var e quarantine.Entry
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("quarantine entry %q: %v", l, err)
		}
		raw := []byte(e.Raw)
		if e.RawBase64 != "" {
			var err error
			if raw, err = base64.StdEncoding.DecodeString(e.RawBase64); err != nil {
				t.Fatal(err)
			}
		}
		out = append(out, raw)
	}
	return out
}
