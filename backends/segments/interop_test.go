package segments_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/papyra-compact/papyra-compact/config"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// fixtureSegments are the files RotatingFilePersistence(max_bytes=40000,
// max_files=8) left in testdata/fixtures/rotating, oldest first.
var fixtureSegments = []string{"store.log.7", "store.log.6", "store.log.5", "store.log.4", "store.log.3", "store.log.2", "store.log.1", "store.log"}

// layFixture copies the Papyra-written store into a fresh directory and
// returns the active file's path.
func layFixture(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, s := range fixtureSegments {
		testutil.CopyFile(t, testutil.Fixture(t, "rotating/"+s), filepath.Join(dir, s))
	}
	return filepath.Join(dir, "store.log")
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// TestBackend_Interop compacts the store Papyra 0.1.1 wrote and compares
// the surviving lines, read in Papyra's order across all segments, byte
// for byte with the expected survivors; it also checks which segments
// were dropped, rewritten and left untouched (same inode, same bytes).
func TestBackend_Interop(t *testing.T) {
	tests := []struct {
		name      string
		expected  string
		ret       config.Retention
		kept      int64
		dropped   []string
		rewritten string
	}{
		{"MaxAge604800", "expected.max_age_seconds-604800.jsonl", config.Retention{MaxAgeSeconds: ptr(604800.0)}, 750,
			[]string{"store.log.7", "store.log.6", "store.log.5"}, "store.log.4"},
		{"MaxRecords700", "expected.max_records-700.jsonl", config.Retention{MaxRecords: ptr[int64](700)}, 700,
			[]string{"store.log.7", "store.log.6", "store.log.5", "store.log.4"}, "store.log.3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			active := layFixture(t)
			dir := filepath.Dir(active)
			before := map[string]uint64{}
			for _, s := range fixtureSegments {
				before[s] = inode(t, filepath.Join(dir, s))
			}
			st, err := compact(t, newBackend(t, active, 40000, 8), tt.ret)
			if err != nil {
				t.Fatalf("compact: %v", err)
			}
			want, err := os.ReadFile(testutil.Fixture(t, "rotating/"+tt.expected))
			if err != nil {
				t.Fatal(err)
			}
			if got := readStoreBytes(t, active); !bytes.Equal(got, want) {
				t.Errorf("surviving lines differ from %s (got %d bytes, want %d)", tt.expected, len(got), len(want))
			}
			if st.RecordsBefore != 1500 || st.RecordsAfter != tt.kept {
				t.Errorf("records: got %d -> %d, want 1500 -> %d", st.RecordsBefore, st.RecordsAfter, tt.kept)
			}
			if st.Segments.Dropped != int64(len(tt.dropped)) || st.Segments.Rewritten != 1 || st.Segments.Untouched != int64(8-1-len(tt.dropped)) {
				t.Errorf("segments: got %d dropped, %d rewritten, %d untouched; want %d, 1, %d",
					st.Segments.Dropped, st.Segments.Rewritten, st.Segments.Untouched, len(tt.dropped), 8-1-len(tt.dropped))
			}
			if st.BytesAfter != int64(len(want)) || st.Reclaimed() != st.BytesBefore-int64(len(want)) {
				t.Errorf("bytes: got %d -> %d (reclaimed %d), want -> %d", st.BytesBefore, st.BytesAfter, st.Reclaimed(), len(want))
			}
			gone := map[string]bool{}
			for _, s := range tt.dropped {
				gone[s] = true
				if _, err := os.Lstat(filepath.Join(dir, s)); !os.IsNotExist(err) {
					t.Errorf("%s: got %v, want it dropped", s, err)
				}
			}
			for _, s := range fixtureSegments {
				if gone[s] {
					continue
				}
				changed := inode(t, filepath.Join(dir, s)) != before[s]
				if s == tt.rewritten && !changed {
					t.Errorf("%s: the boundary segment was not rewritten", s)
				}
				if s != tt.rewritten {
					if changed {
						t.Errorf("%s: rewritten, want it untouched", s)
					}
					got, _ := os.ReadFile(filepath.Join(dir, s))
					orig, _ := os.ReadFile(testutil.Fixture(t, "rotating/"+s))
					if !bytes.Equal(got, orig) {
						t.Errorf("%s: content changed, want it untouched", s)
					}
				}
			}
			if st.Quarantined != 0 || st.QuarantineFile != "" {
				t.Errorf("quarantine: got %d lines in %q, want none", st.Quarantined, st.QuarantineFile)
			}
			assertPapyraNaming(t, active, 8)
		})
	}
}
