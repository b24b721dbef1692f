package jsonl_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/backends/backendtest"
	"github.com/papyra-compact/papyra-compact/config"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

func rec(i int, ts float64) string {
	return backendtest.Record{Kind: "event", I: i, Timestamp: ts}.JSON()
}

var (
	fresh = float64(backendtest.Now.Unix()) - 10
	old   = float64(backendtest.Now.Unix()) - 3600
)

func write(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestBackend_Lines(t *testing.T) {
	tests := []struct {
		name        string
		in          string
		ret         config.Retention
		want        string
		quarantined int64
		blank       int64
		torn        bool
	}{
		{
			name: "TornTailCarriedOver",
			in:   lines(rec(1, fresh), rec(2, fresh)) + `{"kind": "event", "times`,
			ret:  config.Retention{MaxRecords: ptr[int64](1)},
			want: lines(rec(2, fresh)) + `{"kind": "event", "times`,
			torn: true,
		},
		{
			name:  "BlankLinesRemovedAndCounted",
			in:    lines(rec(1, fresh), "", "   \t", rec(2, fresh)),
			want:  lines(rec(1, fresh), rec(2, fresh)),
			blank: 2,
		},
		{
			name: "CorruptLinesQuarantined",
			in:   lines(rec(1, fresh), "not json", "[1, 2]", `{"timestamp": "yesterday"}`, `{"a": 1,`+"\r"+` "b": 2}`, "\xff\xfe", rec(2, fresh)),
			ret:  config.Retention{MaxAgeSeconds: ptr(60.0)}, // the string timestamp makes it raise
			want: lines(rec(1, fresh), rec(2, fresh)),
			// The raw CR splits `{"a": 1, "b": 2}` in two lines (universal
			// newlines), each of them corrupt.
			quarantined: 6,
		},
		{
			// Only age retention compares the timestamp: without it, Papyra
			// reads these records and counts them.
			name: "StringTimestampIsARecordWithoutAgeRetention",
			in:   lines(rec(1, fresh), `{"kind": "event", "timestamp": "yesterday"}`, `{"kind": "event", "timestamp": [1]}`, rec(2, fresh)),
			ret:  config.Retention{MaxRecords: ptr[int64](2)},
			want: lines(`{"kind": "event", "timestamp": [1]}`, rec(2, fresh)),
		},
		{
			name: "LoneCRSeparatesRecords",
			in:   rec(1, fresh) + "\r" + rec(2, old) + "\r" + rec(3, fresh) + "\n" + rec(4, fresh) + "\n",
			ret:  config.Retention{MaxAgeSeconds: ptr(60.0)},
			want: rec(1, fresh) + "\r" + rec(3, fresh) + "\n" + rec(4, fresh) + "\n",
		},
		{
			name: "LoneCRRecordsCountedByMaxRecords",
			in:   rec(1, fresh) + "\r" + rec(2, fresh) + "\r" + rec(3, fresh) + "\n",
			ret:  config.Retention{MaxRecords: ptr[int64](2)},
			want: rec(2, fresh) + "\r" + rec(3, fresh) + "\n",
		},
		{
			name:  "CRCRLFIsARecordAndABlankLine",
			in:    rec(1, fresh) + "\r\r\n" + rec(2, fresh) + "\n",
			want:  rec(1, fresh) + "\r" + rec(2, fresh) + "\n",
			blank: 1,
		},
		{
			name: "CRInTornTail",
			in:   lines(rec(1, old)) + rec(2, fresh) + "\r" + rec(3, old) + "\r" + `{"kind": "ev`,
			ret:  config.Retention{MaxAgeSeconds: ptr(60.0)},
			want: rec(2, fresh) + "\r" + `{"kind": "ev`,
			torn: true,
		},
		{
			name:        "CorruptLoneCRLineQuarantinedWithoutItsCR",
			in:          rec(1, fresh) + "\r" + "not json" + "\r" + rec(2, fresh) + "\r",
			want:        rec(1, fresh) + "\r" + rec(2, fresh) + "\r",
			quarantined: 1,
		},
		{
			name: "CRLFKeptByteForByte",
			in:   rec(1, fresh) + "\r\n" + rec(2, fresh) + "\r\n",
			want: rec(1, fresh) + "\r\n" + rec(2, fresh) + "\r\n",
		},
		{
			name: "NullAndMissingTimestampDroppedByAge",
			in:   lines(`{"kind": "event", "timestamp": null}`, `{"kind": "event"}`, rec(3, fresh)),
			ret:  config.Retention{MaxAgeSeconds: ptr(60.0)},
			want: lines(rec(3, fresh)),
		},
		{
			name: "AllRemovedLeavesEmptyFile",
			in:   lines(rec(1, fresh), rec(2, fresh)),
			ret:  config.Retention{MaxTotalBytes: ptr[int64](0)},
			want: "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "s.jsonl")
			write(t, path, tt.in, 0o644)
			st, err := compact(t, newBackend(t, path), tt.ret)
			if err != nil {
				t.Fatalf("compact: %v", err)
			}
			if got := read(t, path); got != tt.want {
				t.Errorf("store after compaction:\ngot  %q\nwant %q", got, tt.want)
			}
			if st.Quarantined != tt.quarantined || st.BlankLines != tt.blank || st.TornTail != tt.torn {
				t.Errorf("stats: got quarantined %d, blank %d, torn %v; want %d, %d, %v",
					st.Quarantined, st.BlankLines, st.TornTail, tt.quarantined, tt.blank, tt.torn)
			}
		})
	}
}

func TestBackend_QuarantineEntry(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.jsonl")
	first := rec(1, fresh) + "\n"
	write(t, path, first+"not json\n\xff\n", 0o644)
	st, err := compact(t, newBackend(t, path), config.Retention{})
	if err != nil {
		t.Fatal(err)
	}
	got := testutil.ReadLines(t, st.QuarantineFile)
	if len(got) != 2 {
		t.Fatalf("quarantine lines: got %d, want 2", len(got))
	}
	var e struct {
		Source    string
		Line      int64
		Offset    int64
		Reason    string
		Raw       string
		RawBase64 string `json:"raw_base64"`
	}
	if err := json.Unmarshal([]byte(got[0]), &e); err != nil {
		t.Fatal(err)
	}
	real, _ := filepath.EvalSymlinks(path)
	if e.Source != real || e.Line != 2 || e.Offset != int64(len(first)) || e.Raw != "not json" || e.Reason == "" {
		t.Errorf("entry: got %+v, want source %s, line 2, offset %d, raw %q and a reason", e, real, len(first), "not json")
	}
	if err := json.Unmarshal([]byte(got[1]), &e); err != nil {
		t.Fatal(err)
	}
	if e.RawBase64 != "/w==" {
		t.Errorf("invalid UTF-8 entry: got raw_base64 %q, want %q", e.RawBase64, "/w==")
	}
	if dir := filepath.Dir(st.QuarantineFile); dir == filepath.Dir(path) {
		t.Errorf("quarantine file %s is in the store's directory", st.QuarantineFile)
	}
}

func TestBackend_KeepsFileIdentity(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "data", "s.jsonl")
	if err := os.MkdirAll(filepath.Dir(real), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, real, lines(rec(1, fresh), rec(2, fresh)), 0o600)
	if os.Geteuid() == 0 {
		if err := os.Chown(real, 4321, 4322); err != nil {
			t.Fatal(err)
		}
	}
	link := filepath.Join(dir, "link.jsonl")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	var before unix.Stat_t
	if err := unix.Stat(real, &before); err != nil {
		t.Fatal(err)
	}
	if _, err := compact(t, newBackend(t, link), config.Retention{MaxRecords: ptr[int64](1)}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(link)
	if err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("store path is no longer a symlink: %v, %v", fi.Mode(), err)
	}
	var after unix.Stat_t
	if err := unix.Stat(real, &after); err != nil {
		t.Fatal(err)
	}
	if after.Mode != before.Mode || after.Uid != before.Uid || after.Gid != before.Gid {
		t.Errorf("mode/owner: got %o %d:%d, want %o %d:%d", after.Mode, after.Uid, after.Gid, before.Mode, before.Uid, before.Gid)
	}
	if after.Ino == before.Ino {
		t.Errorf("inode unchanged: the store was not swapped")
	}
	if got := read(t, real); got != lines(rec(2, fresh)) {
		t.Errorf("content: got %q", got)
	}
	testutil.AssertNoSideFiles(t, filepath.Dir(real))
}

func TestBackend_Errors(t *testing.T) {
	dir := t.TempDir()
	notDir := filepath.Join(dir, "file")
	write(t, notDir, "x", 0o644)
	monotonic := filepath.Join(dir, "monotonic.jsonl")
	write(t, monotonic, lines(rec(1, 9253.27), rec(2, 9254.5)), 0o644)
	tests := []struct {
		name    string
		path    string
		ret     config.Retention
		wantIs  error
		wantSub string
	}{
		{"Missing", filepath.Join(dir, "nope.jsonl"), config.Retention{}, backends.ErrNothingToDo, ""},
		{"Directory", dir, config.Retention{}, nil, dir},
		{"ParentIsAFile", filepath.Join(notDir, "s.jsonl"), config.Retention{}, syscall.ENOTDIR, notDir},
		{"MonotonicClock", monotonic, config.Retention{MaxAgeSeconds: ptr(3600.0)}, backends.ErrUnsafe, "time_fn=time.time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := compact(t, newBackend(t, tt.path), tt.ret)
			if err == nil {
				t.Fatal("compact: got nil error")
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error: got %v, want one wrapping %v", err, tt.wantIs)
			}
			if !strings.Contains(err.Error(), tt.wantSub) {
				t.Errorf("error %q does not mention %q", err, tt.wantSub)
			}
		})
	}
	if got := read(t, monotonic); got != lines(rec(1, 9253.27), rec(2, 9254.5)) {
		t.Errorf("monotonic store changed: %q", got)
	}
}

// TestBackend_FullDisk runs out of space on a small tmpfs, once seen
// before anything is written (the rewrite would not fit) and once in the
// middle of the copy (another writer filled the disk): either way the run
// fails with ENOSPC and a clear message, the original stays intact and no
// temp file remains.
func TestBackend_FullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		testutil.SkipOrFail(t, "mounting a tmpfs needs root; the crash harness covers ENOSPC by injection")
	}
	tests := []struct {
		name   string
		size   int    // of the store
		fill   bool   // fill the disk once the copy has started
		reason string // in the error
	}{
		{"RefusedUpFront", 60 << 10, false, "the rewrite needs"},
		{"FilledDuringCopy", 40 << 10, true, "no space left on device"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=96k"); err != nil {
				testutil.SkipOrFail(t, "mount tmpfs: %v", err)
			}
			t.Cleanup(func() { _ = unix.Unmount(dir, 0) })
			path := filepath.Join(dir, "s.jsonl")
			var b strings.Builder
			for i := 0; b.Len() < tt.size; i++ {
				b.WriteString(rec(i, fresh) + "\n")
			}
			write(t, path, b.String(), 0o644)
			be := newBackend(t, path)
			ctx := context.Background()
			// Removing one record forces a rewrite of about the store's size.
			pol := backends.Policy{Retention: config.Retention{MaxRecords: ptr[int64](int64(strings.Count(b.String(), "\n") - 1))}, Now: backendtest.Now}
			pol.Progress = func(s backends.Step) {
				if s.Phase == "rewrite" && tt.fill {
					tt.fill = false
					// What is left, less a page, goes to another file.
					var st unix.Statfs_t
					if err := unix.Statfs(dir, &st); err != nil {
						t.Error(err)
					}
					_ = os.WriteFile(filepath.Join(dir, "filler"), make([]byte, int64(st.Bfree)*st.Bsize-4096), 0o600)
				}
			}
			p, err := be.Plan(ctx, pol)
			if err != nil {
				t.Fatal(err)
			}
			_, err = be.Apply(ctx, p)
			p.Close()
			t.Log(err)
			if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), tt.reason) || !strings.Contains(err.Error(), dir) {
				t.Fatalf("compact on a full disk: got %v, want ENOSPC, %q and the path", err, tt.reason)
			}
			if got := read(t, path); got != b.String() {
				t.Errorf("original changed after a failed run")
			}
			_ = os.Remove(filepath.Join(dir, "filler"))
			testutil.AssertNoSideFiles(t, dir)
		})
	}
}

// TestBackend_NothingToRemove: a store retention keeps whole is not
// rewritten (same inode, same mtime).
func TestBackend_NothingToRemove(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.jsonl")
	write(t, path, lines(rec(1, fresh), rec(2, fresh)), 0o644)
	var before, after unix.Stat_t
	if err := unix.Stat(path, &before); err != nil {
		t.Fatal(err)
	}
	st, err := compact(t, newBackend(t, path), config.Retention{MaxRecords: ptr[int64](10)})
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(path, &after); err != nil {
		t.Fatal(err)
	}
	if after.Ino != before.Ino || after.Mtim != before.Mtim {
		t.Errorf("store rewritten although nothing was removed")
	}
	if st.RecordsAfter != 2 || st.BytesAfter != st.BytesBefore || len(st.Notes) == 0 {
		t.Errorf("stats: got %+v", st)
	}
}
