package segments_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/papyra-compact/papyra-compact/config"
)

// TestBackend_ConcurrentWriters runs compactions back to back while a
// separate process writes 100,000 numbered records (10,000 with -short)
// exactly as Papyra's rotating writer does, with a max_bytes so small
// that it rotates every dozen records. Record n is stamped base+n and
// each compaction's clock puts the age cut `window` records behind the
// newest record it can see, so every run drops whole segments, rewrites
// a boundary and often the active file, while the writer rotates.
//
// Afterwards: the writer never failed (a rotation that found a file gone
// would have cost it a record); the store holds exactly the records
// inside the last retention window, each once, in order across and within
// segments; every record written is either there or was counted as
// removed by age by exactly one compaction; and the directory holds only
// Papyra-named segments.
func TestBackend_ConcurrentWriters(t *testing.T) {
	const (
		maxBytes, maxFiles = 2048, 6
		window             = 25
		maxAge             = 1000.0
		base               = 1_700_000_000
	)
	records := 100_000
	if testing.Short() {
		records = 10_000
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "data", "store.log")
	e := env(filepath.Join(dir, "agent"))
	e.GracePeriod = 20 * time.Millisecond
	b := newBackendIn(t, path, maxBytes, maxFiles, e)
	pol := config.Retention{MaxAgeSeconds: ptr(maxAge)}

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	spec := writerSpec{Path: path, MaxBytes: maxBytes, MaxFiles: maxFiles, N: records, Pause: 100 * time.Microsecond, TSBase: base}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), "PAPYRA_TEST_ROTATING_WRITER="+spec.String())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	// Papyra's scan reports any other <store>* file (§8.5): watch the
	// directory for one while the runs go on.
	stop := make(chan struct{})
	watched := make(chan []string, 1)
	go func() { watched <- watchNames(filepath.Dir(path), filepath.Base(path), maxFiles, stop) }()

	ctx := context.Background()
	var (
		removed, compactions, dropped, rewritten, untouched, selfRotated int64
		last                                                             = -1
		writerErr                                                        error
	)
	at := func(newest int) time.Time { return time.Unix(int64(base+newest-window)+int64(maxAge), 0) }
	for running := true; running; {
		select {
		case writerErr = <-done:
			running = false
			continue
		default:
		}
		if n, ok := lastRecord(path); ok {
			last = n
		}
		if last < 0 {
			time.Sleep(time.Millisecond)
			continue
		}
		st, err := compactAt(ctx, b, pol, at(last))
		if err != nil {
			_ = cmd.Process.Kill()
			t.Fatalf("compaction %d: %v", compactions+1, err)
		}
		compactions++
		removed += st.RemovedAge
		dropped += st.Segments.Dropped
		rewritten += st.Segments.Rewritten
		untouched += st.Segments.Untouched
		for _, n := range st.Notes {
			if strings.HasPrefix(n, "active file rotated") {
				selfRotated++
			}
		}
	}
	if writerErr != nil {
		t.Fatalf("writer: %v\n%s", writerErr, stderr.String())
	}
	st, err := compactAt(ctx, b, pol, at(records-1))
	if err != nil {
		t.Fatalf("final compaction: %v", err)
	}
	removed += st.RemovedAge
	close(stop)
	if bad := <-watched; len(bad) > 0 {
		t.Errorf("files Papyra's scan would report appeared during the runs: %v", bad)
	}

	got := storeNumbers(t, path)
	first := records - 1 - window
	if len(got) != window+1 || got[0] != first {
		t.Errorf("store holds %d records starting at %v, want the %d records %d…%d", len(got), head(got), window+1, first, records-1)
	}
	for i := 1; i < len(got); i++ {
		if got[i] != got[i-1]+1 {
			t.Errorf("records out of order, missing or duplicated around position %d: %v", i, got[max(0, i-3):min(len(got), i+3)])
			break
		}
	}
	if removed+int64(len(got)) != int64(records) {
		t.Errorf("conservation: %d removed by age + %d present = %d, want the %d written (a record lost or duplicated)", removed, len(got), removed+int64(len(got)), records)
	}
	assertPapyraNaming(t, path, maxFiles)
	if q, _ := filepath.Glob(filepath.Join(e.QuarantineDir, "*")); len(q) != 0 {
		t.Errorf("quarantine files: %v, want none", q)
	}
	t.Logf("%d compactions while the writer wrote %d records: segments %d dropped, %d rewritten, %d untouched; active file rotated by the compactor %d times",
		compactions, records, dropped, rewritten, untouched, selfRotated)
	if compactions < 10 {
		t.Errorf("only %d compactions ran while the writer wrote: the test did not exercise the race", compactions)
	}
}

// lastRecord returns the number of the last complete record in the
// active file, if there is one.
func lastRecord(path string) (int, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 {
		return 0, false
	}
	off := max(0, fi.Size()-4096)
	buf := make([]byte, fi.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil && err != io.EOF {
		return 0, false
	}
	s := string(buf)
	end := strings.LastIndexByte(s, '\n')
	if end < 0 {
		return 0, false
	}
	start := strings.LastIndexByte(s[:end], '\n') + 1
	var r struct{ Payload struct{ N *int } }
	if json.Unmarshal([]byte(s[start:end]), &r) != nil || r.Payload.N == nil {
		return 0, false
	}
	return *r.Payload.N, true
}

// storeNumbers returns the "n" of every line of the store in Papyra's
// read order; a line without one fails the test.
func storeNumbers(t *testing.T, path string) []int {
	t.Helper()
	var out []int
	for _, l := range readStore(t, path) {
		var r struct{ Payload struct{ N *int } }
		if err := json.Unmarshal([]byte(l), &r); err != nil || r.Payload.N == nil {
			t.Fatalf("unexpected line in the store: %q (%v)", l, err)
		}
		out = append(out, *r.Payload.N)
	}
	return out
}

func head(s []int) string {
	if len(s) > 5 {
		return fmt.Sprint(s[:5], "…")
	}
	return fmt.Sprint(s)
}

// watchNames lists dir until stop is closed and returns every name that
// starts with base but is not a segment name Papyra reads.
func watchNames(dir, base string, maxFiles int, stop <-chan struct{}) []string {
	seen := map[string]bool{}
	for {
		select {
		case <-stop:
			var out []string
			for n := range seen {
				out = append(out, n)
			}
			return out
		default:
		}
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			n := e.Name()
			rest, ok := strings.CutPrefix(n, base)
			if !ok || rest == "" {
				continue
			}
			i, err := strconv.Atoi(strings.TrimPrefix(rest, "."))
			if rest[0] != '.' || err != nil || i < 1 || i >= maxFiles || rest[1] == '0' {
				seen[n] = true
			}
		}
		time.Sleep(500 * time.Microsecond)
	}
}
