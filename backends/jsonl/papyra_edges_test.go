package jsonl_test

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/papyra-compact/papyra-compact/backends/internal/edges"
	"github.com/papyra-compact/papyra-compact/backends/internal/quarantine"
	"github.com/papyra-compact/papyra-compact/config"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// TestBackend_PapyraEdges is the differential test: on each edge store
// Papyra 0.1.1 compacted itself (line endings, depth, special timestamps,
// duplicate keys, UTF-8, BOM, NUL, torn tail), Papyra reads after our
// run exactly what it reads after its own, and what goes to quarantine is
// exactly what it cannot read (see edges.Cases for the two stores Papyra
// fails on, and what the agent does with them).
func TestBackend_PapyraEdges(t *testing.T) {
	dir := testutil.Fixture(t, "edges")
	for _, c := range edges.Cases {
		t.Run(c.Name, func(t *testing.T) {
			edges.PapyraAgrees(t, dir, c)
			input, err := os.ReadFile(filepath.Join(dir, c.Name+".input.jsonl"))
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "store.jsonl")
			write(t, path, string(input), 0o644)
			st, err := compact(t, newBackend(t, path), config.Retention{MaxAgeSeconds: ptr(edges.MaxAgeSeconds)})
			after := []byte(read(t, path))
			if err != nil {
				t.Fatalf("compact: %v", err)
			}
			edges.Verify(t, c, input, [][]byte{after}, quarantined(t, st.QuarantineFile))
			if st.RecordsBefore != c.Counted || st.TornTail != c.Torn {
				t.Errorf("stats: %d records, torn %v; want %d, %v", st.RecordsBefore, st.TornTail, c.Counted, c.Torn)
			}
		})
	}
}

// quarantined returns the raw bytes of every line in a quarantine file.
func quarantined(t *testing.T, path string) [][]byte {
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
