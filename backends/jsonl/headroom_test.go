package jsonl_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/backends/backendtest"
	"github.com/papyra-compact/papyra-compact/backends/internal/quarantine"
	"github.com/papyra-compact/papyra-compact/config"
	"github.com/papyra-compact/papyra-compact/internal/fsutil"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// headroomOf is the free space a run must leave on dir's file system.
func headroomOf(t *testing.T, dir string) int64 {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return min(int64(st.Blocks)*st.Bsize/100, fsutil.Headroom)
}

// papyraWatch is Papyra appending to a store while a run works, with the
// free space of the store's file system sampled meanwhile. Its appends
// add up to at most budget bytes, less than the headroom: a run that
// leaves the headroom free never makes one of them fail.
type papyraWatch struct {
	path    string
	budget  int64
	stop    chan struct{}
	wg      sync.WaitGroup
	written atomic.Int64
	lines   []string
	err     error
	minFree atomic.Int64
	// The lowest free space of another directory's file system (other).
	other     string
	minOther  atomic.Int64
	freeOther int64 // before the run
}

// watchPapyra starts Papyra appending to store, and samples the free
// space of store's file system and of other's (or its nearest existing
// ancestor's).
func watchPapyra(t *testing.T, store string, budget int64, other string) *papyraWatch {
	t.Helper()
	for {
		if _, err := os.Stat(other); err == nil {
			break
		}
		other = filepath.Dir(other)
	}
	w := &papyraWatch{path: store, budget: budget, stop: make(chan struct{}), other: other, freeOther: testutil.FreeBytes(t, other)}
	w.minFree.Store(1 << 62)
	w.minOther.Store(1 << 62)
	dir := filepath.Dir(store)
	w.wg.Add(2)
	go func() { // Papyra: open O_APPEND, one write, close
		defer w.wg.Done()
		for k := 0; ; k++ {
			select {
			case <-w.stop:
				return
			default:
			}
			line := fmt.Sprintf(`{"kind": "event", "system_id": "local", "event_type": "ActorStarted", "payload": {"w": 0, "n": %d}, "timestamp": %d}`+"\n", k, backendtest.Now.Unix())
			if w.written.Load()+int64(len(line)) > w.budget {
				return
			}
			if err := testutil.AppendPapyra(w.path, []byte(line)); err != nil {
				w.err = fmt.Errorf("Papyra's append %d: %w", k, err)
				return
			}
			w.written.Add(int64(len(line)))
			w.lines = append(w.lines, strings.TrimSuffix(line, "\n"))
			time.Sleep(200 * time.Microsecond)
		}
	}()
	go func() { // the lowest free space the run left
		defer w.wg.Done()
		var st unix.Statfs_t
		for {
			select {
			case <-w.stop:
				return
			default:
			}
			if unix.Statfs(dir, &st) == nil {
				if f := int64(st.Bavail) * st.Bsize; f < w.minFree.Load() {
					w.minFree.Store(f)
				}
			}
			if unix.Statfs(w.other, &st) == nil {
				if f := int64(st.Bavail) * st.Bsize; f < w.minOther.Load() {
					w.minOther.Store(f)
				}
			}
		}
	}()
	return w
}

// end stops the writer and checks that none of its appends failed and
// that the free space never went below the headroom by more than what
// the writer itself took.
func (w *papyraWatch) end(t *testing.T, headroom int64) {
	t.Helper()
	close(w.stop)
	w.wg.Wait()
	if w.err != nil {
		t.Errorf("a Papyra append failed during the run: %v", w.err)
	}
	// Block rounding of the writer's and the run's last writes: a page.
	if low := w.minFree.Load(); low < headroom-w.written.Load()-8192 {
		t.Errorf("free space went down to %d bytes during the run; the headroom is %d and Papyra wrote %d", low, headroom, w.written.Load())
	}
}

// corruptLine is invalid line i, n bytes long with its newline, made of
// fill (a character JSON may have to escape).
func corruptLine(i, n int, fill string) string {
	head := fmt.Sprintf("not json %07d ", i)
	return head + strings.Repeat(fill, max(0, n-len(head)-1)) + "\n"
}

// TestBackend_Headroom: everything a run writes is claimed against the
// headroom of the file system it lands on, summed with the run's other
// files there. A store full of unreadable lines on a small file system
// (the quarantine on the same file system, or on another small one),
// lines whose quarantine entries grow past any estimate, a rewrite and a
// quarantine that fit alone but not together, a scratch or state
// directory without room: the run fails with ENOSPC naming the directory
// and what did not fit, Papyra's appends never fail meanwhile, the free
// space never goes below the headroom, every unreadable line is still in
// the store exactly once, and no quarantine or side file remains. When
// everything fits, every unreadable line is in quarantine exactly once and
// no longer in the store.
func TestBackend_Headroom(t *testing.T) {
	// -short scales every file system and store down by k: the same
	// cases, in a quarter of the time (the race detector slows the scan).
	k := 1
	if testing.Short() {
		k = 4
	}
	kib := func(n int) string { return strconv.Itoa(n/k) + "k" }
	// scratch "" is state/scratch.
	type layout struct{ store, quarantine, state, scratch string }
	tests := []struct {
		name    string
		fs      func(t *testing.T) layout
		valid   int    // bytes of valid records, one of which retention removes
		corrupt int    // bytes of unreadable lines
		lineLen int    // of an unreadable line
		fill    string // what an unreadable line is made of
		fail    bool
		upFront bool                  // fails before it writes anything where it fails
		where   func(l layout) string // the directory the error names
		what    string                // the words the error uses
	}{
		{
			name: "QuarantineOnTheStoresFileSystem",
			fs: func(t *testing.T) layout {
				d := testutil.Tmpfs(t, kib(20<<10))
				return layout{d, filepath.Join(d, "quarantine"), t.TempDir(), ""}
			},
			corrupt: (11 << 20) / k, lineLen: 100, fill: "x", fail: true, upFront: true,
			where: func(l layout) string { return l.quarantine }, what: "the quarantine file needs",
		},
		{
			name: "QuarantineOnAnotherSmallFileSystem",
			fs: func(t *testing.T) layout {
				return layout{t.TempDir(), testutil.Tmpfs(t, kib(4<<10)), t.TempDir(), ""}
			},
			corrupt: (3 << 20) / k, lineLen: 300, fill: "y", fail: true, upFront: true,
			where: func(l layout) string { return l.quarantine }, what: "the quarantine file needs",
		},
		{
			name: "EntriesGrowPastTheEstimate", // "<" is escaped as \u003c: six bytes each
			fs: func(t *testing.T) layout {
				d := testutil.Tmpfs(t, kib(20<<10))
				return layout{d, filepath.Join(d, "quarantine"), t.TempDir(), ""}
			},
			corrupt: (3 << 20) / k, lineLen: 1000, fill: "<", fail: true,
			where: func(l layout) string { return l.quarantine }, what: "the quarantine file needs",
		},
		{
			name: "InvalidUTF8GrowsPastTheEstimate", // quarantined base64-encoded: 4/3 of its bytes
			fs: func(t *testing.T) layout {
				d := testutil.Tmpfs(t, kib(20<<10))
				return layout{d, filepath.Join(d, "quarantine"), t.TempDir(), ""}
			},
			corrupt: (8800 << 10) / k, lineLen: 1000, fill: "\xff", fail: true,
			where: func(l layout) string { return l.quarantine }, what: "the quarantine file needs",
		},
		{
			name: "RewriteAndQuarantineFitAloneNotTogether",
			fs: func(t *testing.T) layout {
				d := testutil.Tmpfs(t, kib(20<<10))
				return layout{d, filepath.Join(d, "quarantine"), t.TempDir(), ""}
			},
			valid: (7 << 20) / k, corrupt: (5 << 19) / k, lineLen: 100, fill: "z", fail: true, upFront: true,
			where: func(l layout) string { return l.quarantine }, what: "held for other files the agent is writing there",
		},
		{
			name: "RecoveryRecordOnAFullFileSystem",
			fs: func(t *testing.T) layout {
				s := testutil.Tmpfs(t, "2m")
				// Fill it to just below the headroom.
				fill(t, s, testutil.FreeBytes(t, s)-headroomOf(t, s)+4096)
				return layout{t.TempDir(), filepath.Join(t.TempDir(), "quarantine"), s, t.TempDir()}
			},
			valid: 1 << 20, corrupt: 64 << 10, lineLen: 100, fill: "w", fail: true,
			where: func(l layout) string { return filepath.Join(l.state, "state") }, what: "the recovery record needs",
		},
		{
			name: "ScratchOnASmallFileSystem",
			fs: func(t *testing.T) layout {
				return layout{t.TempDir(), filepath.Join(t.TempDir(), "quarantine"), testutil.Tmpfs(t, kib(256)), ""}
			},
			valid: (8 << 20) / k, corrupt: 64 << 10, lineLen: 100, fill: "v", fail: true,
			where: func(l layout) string { return filepath.Join(l.state, "state", "scratch") }, what: "the scratch file needs",
		},
		{
			name: "EverythingFits",
			fs: func(t *testing.T) layout {
				d := testutil.Tmpfs(t, kib(20<<10))
				return layout{d, filepath.Join(d, "quarantine"), t.TempDir(), ""}
			},
			valid: (2 << 20) / k, corrupt: (2 << 20) / k, lineLen: 100, fill: "u",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := tt.fs(t)
			path := filepath.Join(l.store, "s.jsonl")
			var b strings.Builder
			var corrupt []string
			for i, c, v := 0, 0, 0; c < tt.corrupt || v < tt.valid; i++ {
				if c*max(1, tt.valid) <= v*max(1, tt.corrupt) && c < tt.corrupt || v >= tt.valid {
					line := corruptLine(i, tt.lineLen, tt.fill)
					b.WriteString(line)
					corrupt = append(corrupt, strings.TrimSuffix(line, "\n"))
					c += len(line)
					continue
				}
				line := rec(i, fresh) + "\n"
				if v == 0 {
					line = rec(i, old) + "\n" // retention removes it: a rewrite
				}
				b.WriteString(line)
				v += len(line)
			}
			write(t, path, b.String(), 0o644)
			e := env(l.state)
			e.QuarantineDir = l.quarantine
			if l.scratch != "" {
				e.ScratchDir = l.scratch
			}
			be := newBackendIn(t, path, e)
			headroom := headroomOf(t, l.store)
			where := l.quarantine
			if tt.where != nil {
				where = tt.where(l)
			}
			w := watchPapyra(t, path, headroom/2, where)
			ctx := context.Background()
			pol := backends.Policy{Retention: config.Retention{MaxAgeSeconds: ptr[float64](600)}, Now: backendtest.Now}
			var st backends.Stats
			p, err := be.Plan(ctx, pol)
			if err == nil {
				st, err = be.Apply(ctx, p)
				p.Close()
			}
			w.end(t, headroom)
			t.Log(err)
			got := testutil.ReadLines(t, path)
			inStore := count(got, corrupt)
			var inQuarantine map[string]int
			if ents, _ := os.ReadDir(l.quarantine); len(ents) > 0 {
				inQuarantine = quarantinedRaw(t, l.quarantine)
			}
			if tt.fail {
				if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), tt.where(l)) || !strings.Contains(err.Error(), tt.what) {
					t.Fatalf("run: got %v, want ENOSPC naming %s and %q", err, tt.where(l), tt.what)
				}
				for _, c := range corrupt {
					if inStore[c] != 1 || inQuarantine[c] != 0 {
						t.Fatalf("unreadable line %.30q: %d times in the store, %d in quarantine; want 1 and 0", c, inStore[c], inQuarantine[c])
					}
				}
				// Papyra's appends may land on that file system too.
				if low := w.minOther.Load(); tt.upFront && low < w.freeOther-w.written.Load()-8192 {
					t.Errorf("the free space of %s went from %d down to %d bytes: the run wrote before it failed", w.other, w.freeOther, low)
				}
				if want := b.String(); !strings.HasPrefix(strings.Join(got, "\n")+"\n", want) {
					t.Errorf("the store changed after a failed run")
				}
			} else {
				if err != nil {
					t.Fatalf("run: %v", err)
				}
				for _, c := range corrupt {
					if inStore[c] != 0 || inQuarantine[c] != 1 {
						t.Fatalf("unreadable line %.30q: %d times in the store, %d in quarantine; want 0 and 1", c, inStore[c], inQuarantine[c])
					}
				}
				if st.Quarantined != int64(len(corrupt)) {
					t.Errorf("stats: %d quarantined, want %d", st.Quarantined, len(corrupt))
				}
			}
			written := count(got, w.lines)
			for _, line := range w.lines {
				if written[line] != 1 {
					t.Fatalf("Papyra's record %.60q is %d times in the store, want 1", line, written[line])
				}
			}
			testutil.AssertNoSideFiles(t, l.store)
		})
	}
}

// fill takes n bytes of dir's file system.
func fill(t *testing.T, dir string, n int64) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "filler"), make([]byte, max(n, 0)), 0o600); err != nil {
		t.Fatal(err)
	}
}

// count counts how often each of want occurs in got.
func count(got, want []string) map[string]int {
	set := make(map[string]int, len(want))
	for _, w := range want {
		set[w] = 0
	}
	for _, g := range got {
		if _, ok := set[g]; ok {
			set[g]++
		}
	}
	return set
}

// quarantinedRaw counts the raw lines of every quarantine file in dir.
func quarantinedRaw(t *testing.T, dir string) map[string]int {
	t.Helper()
	out := map[string]int{}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		for _, l := range testutil.ReadLines(t, filepath.Join(dir, e.Name())) {
			var q quarantine.Entry
			if err := json.Unmarshal([]byte(l), &q); err != nil {
				t.Fatalf("quarantine file %s: %v", e.Name(), err)
			}
			out[q.Raw]++
		}
	}
	return out
}

// TestRun_HeadroomOneFileSystem is the case end to end: one small
// file system holds the store (mostly unreadable lines), the state and
// lock directories, the quarantine and the textfile, while a Papyra
// process appends. `papyra-compact run` fails the target (exit 1) with
// ENOSPC naming the quarantine directory, before writing anything big;
// the writer's appends all succeed and are all in the store, once; every
// unreadable line is still in the store; nothing is quarantined; the
// failure is recorded in the state and the textfile.
func TestRun_HeadroomOneFileSystem(t *testing.T) {
	bin := testutil.Binary(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	k := 1
	if testing.Short() {
		k = 4
	}
	fsDir := testutil.Tmpfs(t, strconv.Itoa(20<<10/k)+"k")
	store := filepath.Join(fsDir, "data", "events.ndjson")
	if err := os.MkdirAll(filepath.Dir(store), 0o755); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	var corrupt []string
	b.WriteString(rec(0, float64(time.Now().Unix())) + "\n")
	for i := 0; b.Len() < 11<<20/k; i++ {
		line := corruptLine(i, 100, "x")
		b.WriteString(line)
		corrupt = append(corrupt, strings.TrimSuffix(line, "\n"))
	}
	write(t, store, b.String(), 0o644)
	cfg := filepath.Join(t.TempDir(), "compact.yaml")
	y := fmt.Sprintf(`state_dir: %[1]s/state
lock_dir: %[1]s/lock
quarantine_dir: %[1]s/quarantine
metrics:
  textfile: %[1]s/textfile/papyra.prom
defaults:
  grace_period: 30ms
targets:
  - name: issue
    kind: jsonl
    path: %[2]s
    retention:
      max_age: 1d
`, fsDir, store)
	if err := os.WriteFile(cfg, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	// Papyra: records of ~250 bytes, 75 KB in all (19 KB with -short),
	// far less than the headroom; the free space is sampled meanwhile.
	n := 300 / k
	headroom := headroomOf(t, fsDir)
	var minFree atomic.Int64
	minFree.Store(1 << 62)
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var st unix.Statfs_t
		for {
			select {
			case <-stop:
				return
			default:
			}
			if unix.Statfs(fsDir, &st) == nil {
				if f := int64(st.Bavail) * st.Bsize; f < minFree.Load() {
					minFree.Store(f)
				}
			}
		}
	}()
	w := exec.Command(exe, "-test.run=^$")
	w.Env = append(os.Environ(), "PAPYRA_TEST_APPENDER="+appenderSpec(store, 0, n, time.Millisecond, 0))
	var wOut strings.Builder
	w.Stderr = &wOut
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "run", "--config", cfg, "--no-progress").CombinedOutput()
	if werr := w.Wait(); werr != nil {
		t.Errorf("Papyra's writer failed: %v\n%s", werr, wOut.String())
	}
	close(stop)
	<-sampled
	if low, wrote := minFree.Load(), int64(n*260); low < headroom-wrote-8192 {
		t.Errorf("free space went down to %d bytes during the run; the headroom is %d and Papyra wrote at most %d", low, headroom, wrote)
	}
	t.Logf("%s", out)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("run: %v, want exit status 1", err)
	}
	q := filepath.Join(fsDir, "quarantine", "issue")
	if !strings.Contains(string(out), "no space left on device") || !strings.Contains(string(out), q) {
		t.Errorf("the output does not say that the quarantine in %s does not fit", q)
	}
	got := testutil.ReadLines(t, store)
	inStore := count(got, corrupt)
	for _, c := range corrupt {
		if inStore[c] != 1 {
			t.Fatalf("unreadable line %.30q is %d times in the store, want 1", c, inStore[c])
		}
	}
	c := takeCensus(t, store)
	for k := 0; k < n; k++ {
		if got := c.appended[[2]int{0, k}]; got != 1 {
			t.Errorf("appended record %d is %d times in the store, want 1 (the run failed: retention removed nothing)", k, got)
		}
	}
	if ents, _ := os.ReadDir(q); len(ents) != 0 {
		t.Errorf("%d quarantine files after a failed run", len(ents))
	}
	testutil.AssertNoSideFiles(t, filepath.Dir(store))
	if st, err := os.ReadFile(filepath.Join(fsDir, "state", "targets", "issue.json")); err != nil || !strings.Contains(string(st), "no space left on device") {
		t.Errorf("the failure is not in the state: %v\n%s", err, st)
	}
	if tf, err := os.ReadFile(filepath.Join(fsDir, "textfile", "papyra.prom")); err != nil || !strings.Contains(string(tf), `papyra_compact_runs_total{backend="jsonl",result="failure",target="issue"} 1`) {
		t.Errorf("the textfile does not say the target failed: %v", err)
	}
}

// TestBackend_HeadroomSharedWithAnotherRun: runs in flight at once (the
// daemon's) share one budget: space another run holds on the file system
// counts against this one's claims, and once it is given back the run
// fits.
func TestBackend_HeadroomSharedWithAnotherRun(t *testing.T) {
	fsDir := testutil.Tmpfs(t, "8m")
	path := filepath.Join(fsDir, "s.jsonl")
	var b strings.Builder
	b.WriteString(rec(0, old) + "\n")
	for i := 1; b.Len() < 1<<20; i++ {
		b.WriteString(rec(i, fresh) + "\n")
		if i%10 == 0 {
			b.WriteString(corruptLine(i, 100, "s"))
		}
	}
	write(t, path, b.String(), 0o644)
	space := fsutil.NewSpace()
	// Another run holds all but 1 MiB of what may be written.
	other, err := space.Claim("another run's rewrite", fsDir, testutil.FreeBytes(t, fsDir)-headroomOf(t, fsDir)-(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	e := env(t.TempDir())
	e.QuarantineDir = filepath.Join(fsDir, "quarantine")
	e.Space = space
	pol := config.Retention{MaxAgeSeconds: ptr[float64](600)}
	_, err = compact(t, newBackendIn(t, path, e), pol)
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "held for other files the agent is writing there") {
		t.Fatalf("run while another holds the space: got %v, want ENOSPC counting what the other run holds", err)
	}
	if got := read(t, path); got != b.String() {
		t.Fatal("the store changed after a failed run")
	}
	other.Release()
	if _, err := compact(t, newBackendIn(t, path, e), pol); err != nil {
		t.Fatalf("run once the other run is done: %v", err)
	}
}
