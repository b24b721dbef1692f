package jsonl_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/papyra-compact/papyra-compact/config"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// TestBackend_Interop compacts the store Papyra 0.1.1 wrote with each
// policy Papyra's own compaction was run with, and compares the result
// byte for byte with the file Papyra left behind.
func TestBackend_Interop(t *testing.T) {
	tests := []struct {
		name     string
		expected string
		ret      config.Retention
		kept     int64
	}{
		{"MaxAge86400", "expected.max_age_seconds-86400.jsonl", config.Retention{MaxAgeSeconds: ptr(86400.0)}, 980},
		{"MaxRecords500", "expected.max_records-500.jsonl", config.Retention{MaxRecords: ptr[int64](500)}, 500},
		{"MaxTotalBytes65536", "expected.max_total_bytes-65536.jsonl", config.Retention{MaxTotalBytes: ptr[int64](65536)}, 315},
		{"Combined", "expected.combined.jsonl", config.Retention{MaxAgeSeconds: ptr(86400.0), MaxRecords: ptr[int64](300), MaxTotalBytes: ptr[int64](40000)}, 193},
		{"MaxRecords0", "expected.max_records-0.jsonl", config.Retention{MaxRecords: ptr[int64](0)}, 2000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			store := filepath.Join(dir, "store.jsonl")
			testutil.CopyFile(t, testutil.Fixture(t, "jsonl/store.jsonl"), store)
			b := newBackend(t, store)
			st, err := compact(t, b, tt.ret)
			if err != nil {
				t.Fatalf("compact: %v", err)
			}
			got, err := os.ReadFile(store)
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(testutil.Fixture(t, "jsonl/"+tt.expected))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("compacted store differs from Papyra's %s (got %d bytes, want %d)", tt.expected, len(got), len(want))
			}
			if st.RecordsBefore != 2000 || st.RecordsAfter != tt.kept {
				t.Errorf("records: got %d -> %d, want 2000 -> %d", st.RecordsBefore, st.RecordsAfter, tt.kept)
			}
			if got := testutil.ReadLines(t, st.QuarantineFile); len(got) != 20 {
				t.Errorf("quarantined lines: got %d, want 20", len(got))
			}
			if st.Quarantined != 20 {
				t.Errorf("Stats.Quarantined: got %d, want 20", st.Quarantined)
			}
			if st.BytesAfter != int64(len(want)) {
				t.Errorf("Stats.BytesAfter: got %d, want %d", st.BytesAfter, len(want))
			}
		})
	}
}
