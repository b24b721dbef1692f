package quarantine_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/papyra-compact/papyra-compact/backends/internal/quarantine"
)

// TestWriter_UnnamedUntilCommit: entries added but not committed (a run
// killed before its swap) leave no file in the quarantine directory; the
// first Commit names the file; Discard before it leaves nothing either.
func TestWriter_UnnamedUntilCommit(t *testing.T) {
	dir := t.TempDir()
	w := quarantine.NewWriter(nil, dir, "s.jsonl", time.Unix(1795000000, 0))
	if err := w.Add(quarantine.Entry{Source: "/s.jsonl", Line: 1, Reason: "not valid JSON"}, []byte("not json")); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("quarantine directory holds %d files before the commit, want 0", len(ents))
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(w.Path())
	if err != nil || len(b) == 0 {
		t.Fatalf("after the commit: %q, %v", b, err)
	}
	if err := w.Add(quarantine.Entry{Source: "/s.jsonl", Line: 2, Reason: "not valid JSON"}, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatalf("second commit: %v", err)
	}
	w.Close()

	d := quarantine.NewWriter(nil, dir, "t.jsonl", time.Unix(1795000000, 0))
	if err := d.Add(quarantine.Entry{Source: "/t.jsonl", Line: 1}, []byte("y")); err != nil {
		t.Fatal(err)
	}
	d.Discard()
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("quarantine directory holds %d files, want 1 (the committed one)", len(ents))
	}
}

// TestEstimate_IsALowerBound: whatever a line holds (plain text, bytes
// JSON escapes, invalid UTF-8, nothing) and however it ends, its entry
// is at least Estimate long, so a run refused on the estimate would have
// been refused on the real size too.
func TestEstimate_IsALowerBound(t *testing.T) {
	const source = "/var/lib/papyra/orders.jsonl"
	for _, tt := range []struct {
		name string
		raw  string
		term int
	}{
		{"Empty", "", 1},
		{"Plain", "not json at all", 1},
		{"CRLF", "not json", 2},
		{"Escaped", "<>&\"\\\x01\u2028", 1},
		{"InvalidUTF8", "\xff\xfe\xfd", 1},
		{"Long", strings.Repeat("x", 100_000), 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			w := quarantine.NewWriter(nil, dir, "orders.jsonl", time.Unix(1795000000, 0))
			if err := w.Add(quarantine.Entry{Source: source, Line: 1, Offset: 0, Reason: "x"}, []byte(tt.raw)); err != nil {
				t.Fatal(err)
			}
			must(t, w.Commit())
			b, err := os.ReadFile(w.Path())
			must(t, err)
			w.Close()
			if est := quarantine.Estimate(source, 1, int64(len(tt.raw)+tt.term)); est > int64(len(b)) {
				t.Errorf("estimate %d > the entry's %d bytes: %s", est, len(b), b)
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
