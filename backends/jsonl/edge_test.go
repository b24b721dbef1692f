package jsonl_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/papyra-compact/papyra-compact/backends/internal/pyjson"
	"github.com/papyra-compact/papyra-compact/config"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// deep is a record whose "x" is nested depth levels deep (the record
// itself is one level).
func deep(i, depth int, ts float64) string {
	return fmt.Sprintf(`{"kind": "event", "payload": {"i": %d}, "x": %s%s, "timestamp": %s}`,
		i, strings.Repeat("[", depth-1), strings.Repeat("]", depth-1), pyTS(ts))
}

// huge is a record of more than n bytes on one line.
func huge(i, n int, ts float64) string {
	return fmt.Sprintf(`{"kind": "event", "payload": {"i": %d, "blob": "%s"}, "timestamp": %s}`, i, strings.Repeat("é\\n", n/4+1), pyTS(ts))
}

func pyTS(ts float64) string { return fmt.Sprintf("%.1f", ts) }

// TestBackend_DeepAndHugeLines: a line Papyra can read is never
// quarantined for its depth or length. Up to pyjson.DefaultMaxDepth a
// record is a record; deeper, whether Papyra reads it depends on its
// Python, so the line stays in place (unless it lies before the retention
// cut or its timestamp ages it out) and is not counted by max_records: it
// can never make the run remove a record Papyra reads. Lines over the
// 16 MiB in-memory limit are classified by streaming them.
func TestBackend_DeepAndHugeLines(t *testing.T) {
	maxDepth := pyjson.DefaultMaxDepth
	big := 17 << 20 // past the 16 MiB in-memory limit
	tests := []struct {
		name        string
		in          []string
		ret         config.Retention
		want        []string
		before      int64 // records counted
		quarantined int64
	}{
		{
			name:   "Depth600IsARecord",
			in:     []string{deep(1, 600, fresh), deep(2, 600, old), rec(3, fresh)},
			ret:    config.Retention{MaxAgeSeconds: ptr(60.0)},
			want:   []string{deep(1, 600, fresh), rec(3, fresh)},
			before: 3,
		},
		{
			name:   "DepthAtTheLimitCounted",
			in:     []string{deep(1, maxDepth, fresh), rec(2, fresh), rec(3, fresh)},
			ret:    config.Retention{MaxRecords: ptr[int64](2)},
			want:   []string{rec(2, fresh), rec(3, fresh)},
			before: 3,
		},
		{
			name:   "DeeperNotCounted",
			in:     []string{deep(1, maxDepth+1, fresh), rec(2, fresh), rec(3, fresh)},
			ret:    config.Retention{MaxRecords: ptr[int64](2)},
			want:   []string{deep(1, maxDepth+1, fresh), rec(2, fresh), rec(3, fresh)},
			before: 2,
		},
		{
			name:   "Depth2000KeptAfterTheCut",
			in:     []string{rec(1, fresh), deep(2, 2000, fresh), rec(3, fresh)},
			ret:    config.Retention{MaxRecords: ptr[int64](1)},
			want:   []string{deep(2, 2000, fresh), rec(3, fresh)},
			before: 2,
		},
		{
			name:   "Depth2000BeforeTheCutRemoved",
			in:     []string{deep(1, 2000, fresh), rec(2, fresh), rec(3, fresh)},
			ret:    config.Retention{MaxRecords: ptr[int64](1)},
			want:   []string{rec(3, fresh)},
			before: 2,
		},
		{
			name:   "Depth2000NotCountedByMaxTotalBytes",
			in:     []string{rec(1, fresh), deep(2, 2000, fresh), rec(3, fresh)},
			ret:    config.Retention{MaxTotalBytes: ptr[int64](500)},
			want:   []string{rec(1, fresh), deep(2, 2000, fresh), rec(3, fresh)},
			before: 2,
		},
		{
			name:   "Depth2000AgedOut",
			in:     []string{deep(1, 2000, old), deep(2, 2000, fresh), rec(3, fresh)},
			ret:    config.Retention{MaxAgeSeconds: ptr(60.0)},
			want:   []string{deep(2, 2000, fresh), rec(3, fresh)},
			before: 2, // the aged one is counted as removed by age
		},
		{
			// Without age retention a string timestamp is never compared: a
			// record to Papyra, if it reads the line at all.
			name:   "Depth2000StringTimestampUncountedWithoutAge",
			in:     []string{strings.Replace(deep(1, 2000, fresh), pyTS(fresh), `"now"`, 1), rec(2, fresh), rec(3, fresh)},
			ret:    config.Retention{MaxRecords: ptr[int64](2)},
			want:   []string{strings.Replace(deep(1, 2000, fresh), pyTS(fresh), `"now"`, 1), rec(2, fresh), rec(3, fresh)},
			before: 2,
		},
		{
			name:        "Depth2000InvalidQuarantined",
			in:          []string{deep(1, 2000, fresh) + "}", rec(2, fresh)},
			want:        []string{rec(2, fresh)},
			before:      1,
			quarantined: 1,
		},
		{
			name:   "HugeRecordKeptAndCounted",
			in:     []string{huge(1, big, fresh), huge(2, big, old), rec(3, fresh), rec(4, fresh)},
			ret:    config.Retention{MaxAgeSeconds: ptr(60.0), MaxRecords: ptr[int64](2)},
			want:   []string{rec(3, fresh), rec(4, fresh)},
			before: 4,
		},
		{
			name:   "HugeRecordAlwaysFitsMaxTotalBytes",
			in:     []string{rec(1, fresh), huge(2, big, fresh), rec(3, fresh)},
			ret:    config.Retention{MaxTotalBytes: ptr[int64](1000)},
			want:   []string{rec(1, fresh), huge(2, big, fresh), rec(3, fresh)},
			before: 3,
		},
		{
			name:        "HugeInvalidQuarantined",
			in:          []string{huge(1, big, fresh) + ",", rec(2, fresh)},
			want:        []string{rec(2, fresh)},
			before:      1,
			quarantined: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "s.jsonl")
			write(t, path, lines(tt.in...), 0o644)
			st, err := compact(t, newBackend(t, path), tt.ret)
			if err != nil {
				t.Fatalf("compact: %v", err)
			}
			want := ""
			if len(tt.want) > 0 {
				want = lines(tt.want...)
			}
			if got := read(t, path); got != want {
				t.Errorf("store after compaction: got %d bytes %.300q…, want %d bytes %.300q…", len(got), got, len(want), want)
			}
			if st.RecordsBefore != tt.before || st.Quarantined != tt.quarantined {
				t.Errorf("stats: %d records, %d quarantined; want %d, %d", st.RecordsBefore, st.Quarantined, tt.before, tt.quarantined)
			}
			if tt.quarantined > 0 {
				q := testutil.ReadLines(t, st.QuarantineFile)
				if int64(len(q)) != tt.quarantined {
					t.Errorf("quarantine holds %d lines, want %d", len(q), tt.quarantined)
				}
			}
			if fi, err := os.Stat(path); err == nil && st.BytesAfter != fi.Size() {
				t.Errorf("Stats.BytesAfter %d, store %d bytes", st.BytesAfter, fi.Size())
			}
		})
	}
}
