package segments_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/backends/backendtest"
	"github.com/papyra-compact/papyra-compact/config"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

var (
	fresh = float64(backendtest.Now.Unix()) - 10
	old   = float64(backendtest.Now.Unix()) - 10*86400
	age   = config.Retention{MaxAgeSeconds: ptr(86400.0)}
)

// rec is one rotating-format line (with its newline) whose payload is
// {"i": i}.
func rec(i int, ts float64) string { return rotLine(`{"i": `+strconv.Itoa(i)+`}`, ts) }

// cr replaces line's newline with a lone CR, which ends a line for
// Papyra's universal-newline reader as well.
func cr(line string) string { return strings.TrimSuffix(line, "\n") + "\r" }

// deepRec is a rotating-format record with a "payload" nested depth
// levels deep.
func deepRec(i, depth int, ts float64) string {
	return rotLine(`{"i": `+strconv.Itoa(i)+`, "x": `+strings.Repeat("[", depth-2)+strings.Repeat("]", depth-2)+`}`, ts)
}

// hugeRec is a rotating-format record of more than n bytes.
func hugeRec(i, n int, ts float64) string {
	return rotLine(`{"i": `+strconv.Itoa(i)+`, "blob": "`+strings.Repeat(`\u00e9`, n/6+1)+`"}`, ts)
}

// layout is a store's content by segment index (0: the active file).
type layout map[int]string

const frag = `{"system_id": "local", "actor_address": {"sys`

// lay writes l as store.log, store.log.1, … in a fresh directory and
// returns the active file's path.
func lay(t *testing.T, l layout) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	active := filepath.Join(dir, "store.log")
	for i, content := range l {
		p := active
		if i > 0 {
			p += "." + strconv.Itoa(i)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return active
}

// contents reads the store back as a layout.
func contents(t *testing.T, active string) layout {
	t.Helper()
	segs, _ := segmentFiles(t, active)
	l := layout{}
	for _, s := range segs {
		i := 0
		if s != filepath.Base(active) {
			i, _ = strconv.Atoi(strings.TrimPrefix(s, filepath.Base(active)+"."))
		}
		b, err := os.ReadFile(filepath.Join(filepath.Dir(active), s))
		if err != nil {
			t.Fatal(err)
		}
		l[i] = string(b)
	}
	return l
}

func TestBackend_Layouts(t *testing.T) {
	tests := []struct {
		name        string
		maxFiles    int64
		in          layout
		ret         config.Retention
		want        layout
		quarantined int64
		blank       int64
		torn        bool
		segs        [3]int64 // dropped, rewritten, untouched
	}{
		{
			name:        "CorruptLinesInRotatedSegmentQuarantined",
			maxFiles:    5,
			in:          layout{2: rec(1, old) + "not json\n" + rec(2, fresh), 1: rec(3, fresh), 0: rec(4, fresh)},
			ret:         age,
			want:        layout{2: rec(2, fresh), 1: rec(3, fresh), 0: rec(4, fresh)},
			quarantined: 1,
			segs:        [3]int64{0, 1, 2},
		},
		{
			name:        "TornLineInRotatedSegmentIsCorrupt",
			maxFiles:    5,
			in:          layout{1: rec(1, fresh) + frag, 0: rec(2, fresh)},
			want:        layout{1: rec(1, fresh), 0: rec(2, fresh)},
			quarantined: 1,
			segs:        [3]int64{0, 1, 1},
		},
		{
			name:     "TornTailOfUntouchedActiveStays",
			maxFiles: 5,
			in:       layout{1: rec(1, old), 0: rec(2, fresh) + frag},
			ret:      age,
			want:     layout{0: rec(2, fresh) + frag},
			torn:     true,
			segs:     [3]int64{1, 0, 1},
		},
		{
			name:     "ActiveReplacedInPlaceCarriesTornTail",
			maxFiles: 5,
			in:       layout{1: rec(1, fresh), 0: rec(2, old) + rec(3, fresh) + frag},
			ret:      age,
			want:     layout{1: rec(1, fresh), 0: rec(3, fresh) + frag},
			torn:     true,
			segs:     [3]int64{0, 1, 1},
		},
		{
			name:     "ActiveRotatedIntoFreeSlot",
			maxFiles: 5,
			in:       layout{2: rec(1, old), 0: rec(2, old) + rec(3, fresh) + rec(4, fresh)},
			ret:      age,
			want:     layout{1: rec(3, fresh) + rec(4, fresh), 0: ""},
			segs:     [3]int64{1, 1, 0},
		},
		{
			name:     "ActiveRotatedIntoDroppedSlot",
			maxFiles: 5,
			in:       layout{1: rec(1, old), 0: rec(2, old) + rec(3, fresh)},
			ret:      age,
			want:     layout{1: rec(3, fresh), 0: ""},
			segs:     [3]int64{1, 1, 0},
		},
		{
			name:     "ActiveRotatedIntoTopSlotAnchor",
			maxFiles: 2,
			in:       layout{0: rec(1, old) + rec(2, fresh)},
			ret:      age,
			want:     layout{1: rec(2, fresh), 0: ""},
			segs:     [3]int64{0, 1, 0},
		},
		{
			name:        "ActiveRotatedTornTailQuarantined",
			maxFiles:    5,
			in:          layout{0: rec(1, old) + rec(2, fresh) + frag},
			ret:         age,
			want:        layout{1: rec(2, fresh), 0: ""},
			quarantined: 1,
			segs:        [3]int64{0, 1, 0},
		},
		{
			name:     "EverythingExpiredLeavesAnEmptyActiveFile",
			maxFiles: 5,
			in:       layout{3: rec(1, old), 2: rec(2, old), 1: rec(3, old), 0: rec(4, old)},
			ret:      age,
			want:     layout{0: ""},
			segs:     [3]int64{3, 1, 0},
		},
		{
			name:     "BlankLinesRemoved",
			maxFiles: 5,
			in:       layout{1: rec(1, fresh) + "\n   \n" + rec(2, fresh), 0: rec(3, fresh)},
			want:     layout{1: rec(1, fresh) + rec(2, fresh), 0: rec(3, fresh)},
			blank:    2,
			segs:     [3]int64{0, 1, 1},
		},
		{
			name:     "GapsKeptAndReadInOrder",
			maxFiles: 8,
			in:       layout{7: rec(1, fresh), 4: rec(2, old) + rec(3, fresh), 0: rec(4, fresh)},
			ret:      age,
			want:     layout{7: rec(1, fresh), 4: rec(3, fresh), 0: rec(4, fresh)},
			segs:     [3]int64{0, 1, 2},
		},
		{
			name:     "SegmentsBeyondMaxFilesIncluded",
			maxFiles: 3,
			in:       layout{4: rec(1, old), 2: rec(2, fresh), 1: rec(3, fresh), 0: rec(4, fresh)},
			ret:      age,
			want:     layout{2: rec(2, fresh), 1: rec(3, fresh), 0: rec(4, fresh)},
			segs:     [3]int64{1, 0, 3},
		},
		{
			name:     "MaxFilesOneReplacesInPlace",
			maxFiles: 1,
			in:       layout{0: rec(1, old) + rec(2, fresh)},
			ret:      age,
			want:     layout{0: rec(2, fresh)},
			segs:     [3]int64{0, 1, 0},
		},
		{
			name:     "NoActiveFile",
			maxFiles: 5,
			in:       layout{2: rec(1, old), 1: rec(2, old) + rec(3, fresh)},
			ret:      age,
			want:     layout{1: rec(3, fresh)},
			segs:     [3]int64{1, 1, 0},
		},
		{
			name:        "CountCutDropsOlderSegments",
			maxFiles:    5,
			in:          layout{3: rec(1, fresh) + "garbage\n", 2: rec(2, fresh) + rec(3, fresh), 1: rec(4, fresh), 0: rec(5, fresh)},
			ret:         config.Retention{MaxRecords: ptr[int64](3)},
			want:        layout{2: rec(3, fresh), 1: rec(4, fresh), 0: rec(5, fresh)},
			quarantined: 1,
			segs:        [3]int64{1, 1, 2},
		},
		{
			// Universal newlines: a lone CR ends a record, in a rotated
			// segment, in the active file and inside its torn tail.
			name:        "LoneCRSeparatesRecords",
			maxFiles:    5,
			in:          layout{1: cr(rec(1, old)) + cr(rec(2, fresh)) + "not json\r" + rec(3, fresh), 0: cr(rec(4, old)) + cr(rec(5, fresh)) + `{"i": 6, "ti`},
			ret:         age,
			want:        layout{1: cr(rec(2, fresh)) + rec(3, fresh), 0: cr(rec(5, fresh)) + `{"i": 6, "ti`},
			quarantined: 1,
			torn:        true,
			segs:        [3]int64{0, 2, 0},
		},
		{
			name:     "LoneCRRecordsCountedByMaxRecords",
			maxFiles: 5,
			in:       layout{1: cr(rec(1, fresh)) + cr(rec(2, fresh)), 0: cr(rec(3, fresh)) + "\r\n" + rec(4, fresh)},
			ret:      config.Retention{MaxRecords: ptr[int64](2)},
			want:     layout{1: cr(rec(3, fresh)) + rec(4, fresh), 0: ""},
			blank:    1,
			segs:     [3]int64{1, 1, 0},
		},
		{
			// A record over the 16 MiB in-memory limit is classified and
			// copied by streaming it.
			name:     "HugeRecordKeptInRewrittenSegment",
			maxFiles: 5,
			in:       layout{1: rec(1, old) + hugeRec(2, 17<<20, fresh) + rec(3, fresh), 0: rec(4, fresh)},
			ret:      age,
			want:     layout{1: hugeRec(2, 17<<20, fresh) + rec(3, fresh), 0: rec(4, fresh)},
			segs:     [3]int64{0, 1, 1},
		},
		{
			// Papyra may or may not read a line nested deeper than
			// pyjson.DefaultMaxDepth: it is kept, so its segment is
			// rewritten rather than dropped although no record stays.
			name:     "DeepLineKeepsItsSegment",
			maxFiles: 5,
			in:       layout{2: rec(1, old), 1: rec(2, old) + deepRec(3, 2000, fresh), 0: rec(4, fresh)},
			ret:      age,
			want:     layout{1: deepRec(3, 2000, fresh), 0: rec(4, fresh)},
			segs:     [3]int64{1, 1, 1},
		},
		{
			name:     "DeepLineBeforeTheCutDropped",
			maxFiles: 5,
			in:       layout{2: deepRec(1, 2000, fresh) + rec(5, fresh), 1: rec(2, fresh), 0: rec(3, fresh)},
			ret:      config.Retention{MaxRecords: ptr[int64](1)},
			want:     layout{0: rec(3, fresh)},
			segs:     [3]int64{2, 0, 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			active := lay(t, tt.in)
			st, err := compact(t, newBackend(t, active, 1<<20, tt.maxFiles), tt.ret)
			if err != nil {
				t.Fatalf("compact: %v", err)
			}
			got := contents(t, active)
			for i := range max(len(got), len(tt.want)) + 8 {
				g, gok := got[i]
				w, wok := tt.want[i]
				if g != w || gok != wok {
					t.Errorf("segment %d: got %q (present %v), want %q (present %v)", i, g, gok, w, wok)
				}
			}
			if st.Quarantined != tt.quarantined || st.BlankLines != tt.blank || st.TornTail != tt.torn {
				t.Errorf("stats: got quarantined %d, blank %d, torn %v; want %d, %d, %v", st.Quarantined, st.BlankLines, st.TornTail, tt.quarantined, tt.blank, tt.torn)
			}
			if got := [3]int64{st.Segments.Dropped, st.Segments.Rewritten, st.Segments.Untouched}; got != tt.segs {
				t.Errorf("segments dropped, rewritten, untouched: got %v, want %v", got, tt.segs)
			}
			if tt.quarantined > 0 {
				if n := len(testutil.ReadLines(t, st.QuarantineFile)); int64(n) != tt.quarantined {
					t.Errorf("quarantine file holds %d lines, want %d", n, tt.quarantined)
				}
			}
			testutil.AssertNoSideFiles(t, filepath.Dir(active))
		})
	}
}

// TestBackend_Notes checks what the summary says about files Papyra left
// and about a store whose writer has stopped rotating.
func TestBackend_Notes(t *testing.T) {
	tests := []struct {
		name     string
		maxBytes int64
		in       layout
		extra    []string
		want     []string
	}{
		{"PapyraLeftoversReportedNotDeleted", 1 << 20, layout{1: rec(1, old), 0: rec(2, fresh)},
			[]string{"store.log.compact.tmp", "store.log.2.recovered.tmp"},
			[]string{"leftover " + "%d/store.log.compact.tmp", "leftover %d/store.log.2.recovered.tmp"}},
		{"OrphansReported", 1 << 20, layout{1: rec(1, old), 0: rec(2, fresh)},
			[]string{"store.log.bak", "store.log.07"}, []string{"orphans: store.log.07, store.log.bak"}},
		{"ActiveOversized", 300, layout{2: rec(1, old), 1: rec(2, fresh), 0: rec(3, fresh) + rec(4, fresh) + rec(5, fresh)},
			nil, []string{"active file oversized: ", "max_bytes 300", "store.log.2 exists"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			active := lay(t, tt.in)
			dir := filepath.Dir(active)
			for _, x := range tt.extra {
				if err := os.WriteFile(filepath.Join(dir, x), []byte("x\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			st, err := compact(t, newBackend(t, active, tt.maxBytes, 3), age)
			if err != nil {
				t.Fatalf("compact: %v", err)
			}
			notes := strings.Join(st.Notes, "; ")
			for _, w := range tt.want {
				w = strings.ReplaceAll(w, "%d", dir)
				if !strings.Contains(notes, w) {
					t.Errorf("notes %q do not mention %q", notes, w)
				}
			}
			for _, x := range tt.extra {
				if _, err := os.Stat(filepath.Join(dir, x)); err != nil {
					t.Errorf("%s: %v, want it left alone", x, err)
				}
			}
		})
	}
}

// TestBackend_OversizedActiveRotatesAgain: all slots full and the active
// file past max_bytes (Papyra has stopped rotating); once the expired top
// segment is gone, Papyra's next write rotates again and the store stays
// readable with Papyra's names.
func TestBackend_OversizedActiveRotatesAgain(t *testing.T) {
	active := lay(t, layout{2: rec(1, old) + rec(2, old), 1: rec(3, fresh), 0: rec(4, fresh) + rec(5, fresh) + rec(6, fresh)})
	w := papyraWriter{path: active, maxBytes: 400, maxFiles: 3}
	if err := w.append(rec(7, fresh)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(active + ".1"); err != nil || len(contents(t, active)[0]) != 4*len(rec(4, fresh)) {
		t.Fatalf("precondition: the writer should not rotate while store.log.2 exists")
	}
	st, err := compact(t, newBackend(t, active, w.maxBytes, w.maxFiles), age)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(st.Notes, ";"), "active file oversized") {
		t.Errorf("notes %q do not say the active file is oversized", st.Notes)
	}
	if err := w.append(rec(8, fresh)); err != nil {
		t.Fatal(err)
	}
	want := layout{2: rec(3, fresh), 1: rec(4, fresh) + rec(5, fresh) + rec(6, fresh) + rec(7, fresh), 0: rec(8, fresh)}
	got := contents(t, active)
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("after the next write:\ngot  %v\nwant %v", got, want)
	}
	assertPapyraNaming(t, active, 3)
}

// TestBackend_WriterRotatedSincePlanning rotates the store between Plan
// and Apply: Apply finds every planned segment by inode under its new
// name, and the record the writer appended survives.
func TestBackend_WriterRotatedSincePlanning(t *testing.T) {
	active := lay(t, layout{2: rec(1, old), 1: rec(2, old) + rec(3, fresh), 0: rec(4, old) + rec(5, fresh)})
	w := papyraWriter{path: active, maxBytes: int64(len(rec(4, old)) * 2), maxFiles: 5}
	b := newBackend(t, active, w.maxBytes, w.maxFiles)
	p, err := b.Plan(t.Context(), backends.Policy{Retention: age, Now: backendtest.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := w.append(rec(6, fresh)); err != nil { // rotates: 2→3, 1→2, active→1
		t.Fatal(err)
	}
	if _, err := os.Stat(active + ".3"); err != nil {
		t.Fatalf("precondition: the writer did not rotate: %v", err)
	}
	if _, err := b.Apply(t.Context(), p); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	want := layout{2: rec(3, fresh), 1: rec(5, fresh), 0: rec(6, fresh)}
	if got := contents(t, active); len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("store:\ngot  %v\nwant %v", got, want)
	}
}

// TestBackend_QuarantineEntry checks what a quarantined line records: the
// segment it came from, its line number and offset, why, and its bytes;
// the file lives outside the store's directory.
func TestBackend_QuarantineEntry(t *testing.T) {
	first := rec(1, fresh)
	active := lay(t, layout{1: first + "not json\n" + frag, 0: rec(2, fresh)})
	st, err := compact(t, newBackend(t, active, 1<<20, 5), config.Retention{})
	if err != nil {
		t.Fatal(err)
	}
	got := testutil.ReadLines(t, st.QuarantineFile)
	if len(got) != 2 {
		t.Fatalf("quarantine lines: got %d, want 2", len(got))
	}
	type entry struct {
		Source string
		Line   int64
		Offset int64
		Reason string
		Raw    string
	}
	want := []entry{
		{active + ".1", 2, int64(len(first)), "invalid JSON", "not json"},
		{active + ".1", 3, int64(len(first)) + 9, "torn line at the end of a rotated segment", frag},
	}
	for i, l := range got {
		var e entry
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatal(err)
		}
		if e != want[i] {
			t.Errorf("entry %d: got %+v, want %+v", i+1, e, want[i])
		}
	}
	if filepath.Dir(st.QuarantineFile) == filepath.Dir(active) {
		t.Errorf("quarantine file %s is in the store's directory", st.QuarantineFile)
	}
}
