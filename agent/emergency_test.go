package agent_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	sys "golang.org/x/sys/unix"

	"github.com/papyra-compact/papyra-compact/agent"
	"github.com/papyra-compact/papyra-compact/backends/all"
	"github.com/papyra-compact/papyra-compact/config"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// smallFS mounts a tmpfs of size bytes on a fresh directory.
func smallFS(t *testing.T, size int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		testutil.SkipOrFail(t, "mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if err := sys.Mount("tmpfs", dir, "tmpfs", 0, "size="+strconv.Itoa(size)+",mode=0755"); err != nil {
		testutil.SkipOrFail(t, "mount tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = sys.Unmount(dir, sys.MNT_DETACH) })
	return dir
}

// avail is what an unprivileged writer may still use on dir's file system.
func avail(t *testing.T, dir string) int64 {
	t.Helper()
	var st sys.Statfs_t
	if err := sys.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Frsize
}

const pageSize = 4096

// emLine is one rotating-store record stamped ts, n (< 90000000) in its
// payload, written with 8 digits so that every line is the same length.
func emLine(n int, ts float64) string {
	l := fmt.Sprintf(`{"system_id": "local", "actor_address": {"system": "local", "actor_id": 1}, "event_type": "ActorStarted", "payload": {"n": %d}, "timestamp": %s, "kind": "event"}`,
		10000000+n, strconv.FormatFloat(ts, 'f', 1, 64))
	return l + "\n"
}

// segmentBytes bounds a test segment: 16 pages.
const segmentBytes = 16 * pageSize

// segSize is the size of a test segment: whole lines within segmentBytes.
func segSize() int64 {
	l := len(emLine(0, 1e9))
	return int64(segmentBytes / l * l)
}

// writeSegment writes a segment of path's store at index i (0: the
// active file) whose records run up to newest, one a second, filling
// segmentBytes (the last line padded).
func writeSegment(t *testing.T, path string, i int, newest float64, first int) []int {
	t.Helper()
	if i > 0 {
		path += "." + strconv.Itoa(i)
	}
	var b strings.Builder
	var ns []int
	l := len(emLine(0, newest))
	count := segmentBytes / l
	for k := 0; k < count; k++ {
		b.WriteString(emLine(first+k, newest-float64(count-1-k)))
		ns = append(ns, first+k)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return ns
}

// fill leaves about left bytes free on dir's file system with a filler
// file, and returns what is free then.
func fill(t *testing.T, dir string, left int64) int64 {
	t.Helper()
	n := avail(t, dir) - left
	if n > 0 {
		if err := os.WriteFile(filepath.Join(dir, "filler"), make([]byte, n), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return avail(t, dir)
}

// emStores lays out, on one small file system, two opted-in rotating
// stores a and b and one rotating store c that did not opt in, and
// returns the configuration. Newest record of each segment, in days
// before now:
//
//	a: .4 9d  .3 7d  .2 5d  .1 1h (younger than min_keep)  active 20d
//	b: .3 8d  .2 6d  .1 4d  active 30d
//	c: .2 40d .1 35d active 30d (not opted in: never touched)
func emStores(t *testing.T, mnt string, now time.Time) *config.Config {
	t.Helper()
	cfg, _ := testConfig(t)
	day := 86400.0
	ts := func(days float64) float64 { return float64(now.Unix()) - days*day }
	n := 0
	lay := func(name string, segs map[int]float64) string {
		dir := filepath.Join(mnt, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, "store.log")
		for i, newest := range segs {
			writeSegment(t, p, i, newest, n)
			n += 10000
		}
		return p
	}
	a := lay("a", map[int]float64{4: ts(9), 3: ts(7), 2: ts(5), 1: ts(1.0 / 24), 0: ts(20)})
	b := lay("b", map[int]float64{3: ts(8), 2: ts(6), 1: ts(4), 0: ts(30)})
	c := lay("c", map[int]float64{2: ts(40), 1: ts(35), 0: ts(30)})
	mb, mf := int64(segmentBytes), int64(10)
	day1 := config.Duration(24 * time.Hour)
	cfg.Targets = []config.Target{
		{Name: "c", Kind: config.KindRotating, Path: c, MaxBytes: &mb, MaxFiles: &mf},
		{Name: "a", Kind: config.KindRotating, Path: a, MaxBytes: &mb, MaxFiles: &mf, KeepFree: &config.Amount{Bytes: 1}, MinKeep: &day1},
		{Name: "b", Kind: config.KindRotating, Path: b, MaxBytes: &mb, MaxFiles: &mf, KeepFree: &config.Amount{Bytes: 1}, MinKeep: &day1},
	}
	return cfg
}

// snapshotDir returns every file under dir (but the filler) and its content.
func snapshotDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == "filler" {
			return err
		}
		b, err := os.ReadFile(p)
		out[strings.TrimPrefix(p, dir+"/")] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestEmergency_DropsOldestFirstAcrossStores fills a small file system
// holding two opted-in stores and one that did not opt in, then checks:
// the oldest segments by newest record go first across both stores, the
// largest keep_free applies, it stops once keep_free is met, and nothing
// else changed — no active file, no segment younger than min_keep, no
// file of the store that did not opt in.
func TestEmergency_DropsOldestFirstAcrossStores(t *testing.T) {
	mnt := smallFS(t, 1<<20+512<<10)
	now := time.Now()
	cfg := emStores(t, mnt, now)
	free := fill(t, mnt, 64<<10)
	// Met after exactly four drops: a.4 (9d), b.3 (8d), a.3 (7d), b.2 (6d).
	keep := free + 3*segmentBytes + segmentBytes/2
	cfg.Targets[1].KeepFree.Bytes = keep
	cfg.Targets[2].KeepFree.Bytes = keep / 2 // the largest applies
	before := snapshotDir(t, mnt)
	rep := agent.New(cfg, all.Backends(), slog.New(slog.DiscardHandler)).Emergency(context.Background(), agent.EmergencyOptions{Now: now})
	if len(rep.FileSystems) != 1 {
		t.Fatalf("%d file systems, want 1: %+v", len(rep.FileSystems), rep)
	}
	f := rep.FileSystems[0]
	var got []string
	for _, d := range f.Drops {
		got = append(got, d.Target+":"+filepath.Base(d.Segment))
		if d.Records != int64(segmentBytes/len(emLine(0, 1e9))) || !d.HasTimes || d.Bytes != segSize() || d.Newest-d.Oldest != float64(d.Records-1) {
			t.Errorf("drop %s: %+v", d.Segment, d)
		}
	}
	want := []string{"a:store.log.4", "b:store.log.3", "a:store.log.3", "b:store.log.2"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("dropped %v, want %v in that order", got, want)
	}
	if f.Unmet != "" || f.FreeAfter < keep || f.KeepFree != keep || f.FreeBefore != free {
		t.Errorf("report %+v (keep %d, free %d)", f, keep, free)
	}
	after := snapshotDir(t, mnt)
	gone := map[string]bool{"a/store.log.4": true, "b/store.log.3": true, "a/store.log.3": true, "b/store.log.2": true}
	for name, content := range before {
		switch {
		case gone[name]:
			if _, ok := after[name]; ok {
				t.Errorf("%s still there", name)
			}
		case after[name] != content:
			t.Errorf("%s changed (dropped or rewritten)", name)
		}
	}
	if len(after) != len(before)-len(gone) {
		t.Errorf("files after: %v", keysOf(after))
	}
	testutil.AssertNoSideFiles(t, filepath.Join(mnt, "a"))
	testutil.AssertNoSideFiles(t, filepath.Join(mnt, "b"))
}

func keysOf(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// TestEmergency_Unmet: when keep_free cannot be met, everything that may
// go goes (oldest first), and what may not — the segment younger than
// min_keep, the active files, the store that did not opt in — stays; the
// check says so, in the report, the state and the metrics, and `run`
// does it before its targets.
func TestEmergency_Unmet(t *testing.T) {
	mnt := smallFS(t, 1<<20+512<<10)
	now := time.Now()
	cfg := emStores(t, mnt, now)
	cfg.Metrics.Textfile = filepath.Join(t.TempDir(), "papyra.prom")
	fill(t, mnt, 64<<10)
	cfg.Targets[1].KeepFree = &config.Amount{Percent: 90}
	before := snapshotDir(t, mnt)
	rec, err := agent.NewRecorder(cfg, all.Backends(), agent.RecorderOptions{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	var rep agent.EmergencyReport
	res, err := agent.New(cfg, all.Backends(), slog.New(slog.DiscardHandler)).RunOnce(context.Background(), agent.Options{
		OnEmergency: func(r agent.EmergencyReport) {
			rep = r
			if err := rec.RecordEmergency(r); err != nil {
				t.Error(err)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Errorf("%s: %v", r.Target, r.Err)
		}
	}
	if len(rep.FileSystems) != 1 {
		t.Fatalf("report %+v", rep)
	}
	f := rep.FileSystems[0]
	var got []string
	for _, d := range f.Drops {
		got = append(got, d.Target+":"+filepath.Base(d.Segment))
	}
	want := []string{"a:store.log.4", "b:store.log.3", "a:store.log.3", "b:store.log.2", "a:store.log.2", "b:store.log.1"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("dropped %v, want %v", got, want)
	}
	if f.Unmet == "" || !strings.Contains(f.Unmet, "left: 1 rotated segment (64.0 KiB) holding records younger than min_keep") {
		t.Errorf("unmet %q, want the young segment named", f.Unmet)
	}
	after := snapshotDir(t, mnt)
	for _, name := range []string{"a/store.log", "a/store.log.1", "b/store.log", "c/store.log", "c/store.log.1", "c/store.log.2"} {
		if after[name] != before[name] || before[name] == "" {
			t.Errorf("%s changed or missing", name)
		}
	}
	for _, line := range agent.EmergencySummary(f) {
		t.Log(line)
	}
	st, _, err := agent.LoadTargetState(cfg.StateDir, "a")
	if err != nil || st.Emergency == nil {
		t.Fatalf("state of a: %+v, %v", st, err)
	}
	if e := st.Emergency; e.DroppedSegments != 3 || e.DroppedBytes != uint64(3*segSize()) || !e.Unmet || e.DroppedRecords == 0 {
		t.Errorf("emergency state of a: %+v", e)
	}
	prom, err := os.ReadFile(cfg.Metrics.Textfile)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`papyra_compact_emergency_dropped_segments_total{backend="rotating",target="a"} 3`,
		`papyra_compact_emergency_dropped_segments_total{backend="rotating",target="b"} 3`,
		`papyra_compact_emergency_keep_free_unmet{backend="rotating",target="a"} 1`,
	} {
		if !strings.Contains(string(prom), want) {
			t.Errorf("textfile lacks %s", want)
		}
	}
	if strings.Contains(string(prom), `emergency_dropped_segments_total{backend="rotating",target="c"}`) {
		t.Error("the store that did not opt in exports emergency metrics")
	}
}

// TestEmergency_MetSkipsEverything: above keep_free nothing is read or
// changed, and a store another run holds the lock of is never touched.
func TestEmergency_LockedStorePassedOver(t *testing.T) {
	mnt := smallFS(t, 1<<20+512<<10)
	now := time.Now()
	cfg := emStores(t, mnt, now)
	free := fill(t, mnt, 64<<10)
	cfg.Targets[1].KeepFree.Bytes = free + 2*segmentBytes
	key, err := all.Backends().LockKey(cfg.Targets[1])
	if err != nil {
		t.Fatal(err)
	}
	l, err := agent.TryLock(cfg.LockDir, key, "elsewhere")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	before := snapshotDir(t, mnt)
	rep := agent.New(cfg, all.Backends(), slog.New(slog.DiscardHandler)).Emergency(context.Background(), agent.EmergencyOptions{Now: now})
	f := rep.FileSystems[0]
	var got []string
	for _, d := range f.Drops {
		got = append(got, d.Target+":"+filepath.Base(d.Segment))
	}
	if strings.Join(got, " ") != "b:store.log.3 b:store.log.2" {
		t.Errorf("dropped %v, want b's two oldest (a is locked)", got)
	}
	after := snapshotDir(t, mnt)
	for name, c := range before {
		if strings.HasPrefix(name, "a/") && after[name] != c {
			t.Errorf("%s of the locked store changed", name)
		}
	}
	t.Run("Met", func(t *testing.T) {
		cfg.Targets[1].KeepFree.Bytes = 1
		cfg.Targets[2].KeepFree.Bytes = 1
		before := snapshotDir(t, mnt)
		rep := agent.New(cfg, all.Backends(), slog.New(slog.DiscardHandler)).Emergency(context.Background(), agent.EmergencyOptions{Now: now})
		if f := rep.FileSystems[0]; len(f.Drops) != 0 || f.Unmet != "" {
			t.Errorf("report %+v", f)
		}
		after := snapshotDir(t, mnt)
		if len(after) != len(before) {
			t.Error("files changed")
		}
	})
}

// TestEmergency_LiveWriter: a writer appending (and rotating) as Papyra
// does while segments are dropped loses no record.
func TestEmergency_LiveWriter(t *testing.T) {
	mnt := smallFS(t, 1<<20+512<<10)
	now := time.Now()
	cfg := emStores(t, mnt, now)
	free := fill(t, mnt, 64<<10)
	cfg.Targets[1].KeepFree.Bytes = free + 4*segmentBytes
	cfg.Targets[2].KeepFree.Bytes = 1
	active := cfg.Targets[1].Path
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var written []int
	var werr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		w := rotWriter{path: active, maxBytes: segmentBytes, maxFiles: 10}
		for n := 900000; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := w.append(emLine(n, float64(time.Now().Unix()))); err != nil {
				werr = err
				return
			}
			written = append(written, n)
			time.Sleep(2 * time.Millisecond)
		}
	}()
	rep := agent.New(cfg, all.Backends(), slog.New(slog.DiscardHandler)).Emergency(context.Background(), agent.EmergencyOptions{Now: now})
	close(stop)
	wg.Wait()
	if werr != nil {
		t.Fatalf("writer: %v", werr)
	}
	if len(rep.FileSystems[0].Drops) == 0 {
		t.Fatalf("nothing dropped: %+v", rep.FileSystems[0])
	}
	have := map[int]bool{}
	for _, n := range storeNumbers(t, active) {
		have[n] = true
	}
	lost := 0
	for _, n := range written {
		if !have[n] {
			lost++
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d records the writer appended are gone", lost, len(written))
	}
	t.Logf("%d records appended during %d drops", len(written), len(rep.FileSystems[0].Drops))
}

// storeNumbers reads the payload numbers of every record of the store.
func storeNumbers(t *testing.T, active string) []int {
	t.Helper()
	dir, base := filepath.Dir(active), filepath.Base(active)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, e := range ents {
		if e.Name() != base && !strings.HasPrefix(e.Name(), base+".") {
			continue
		}
		for _, l := range testutil.ReadLines(t, filepath.Join(dir, e.Name())) {
			i := strings.Index(l, `{"n": `)
			if i < 0 {
				continue
			}
			n, err := strconv.Atoi(l[i+6 : i+14])
			if err == nil {
				out = append(out, n-10000000)
			}
		}
	}
	return out
}

// rotWriter appends as Papyra's RotatingFilePersistence does: rotate
// when the line would not fit and path.{max_files-1} is absent (renaming
// path.i → path.i+1 top down, then path → path.1), then open with
// O_APPEND, write, close.
type rotWriter struct {
	path               string
	maxBytes, maxFiles int64
}

func (w rotWriter) name(i int64) string { return w.path + "." + strconv.FormatInt(i, 10) }

func (w rotWriter) append(line string) error {
	if st, err := os.Stat(w.path); err == nil && st.Size()+int64(len(line)) > w.maxBytes {
		if _, err := os.Stat(w.name(w.maxFiles - 1)); errors.Is(err, fs.ErrNotExist) {
			for i := w.maxFiles - 2; i >= 1; i-- {
				if _, err := os.Stat(w.name(i)); err == nil {
					if err := os.Rename(w.name(i), w.name(i+1)); err != nil {
						return err
					}
				}
			}
			if err := os.Rename(w.path, w.name(1)); err != nil {
				return err
			}
		}
	}
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteString(line)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// TestEmergency_DaemonMinuteCheck runs the real daemon with a short
// emergency interval: free space is fine at start, then the file system
// fills while no compaction is due (an hourly interval), and the
// daemon's own check drops the oldest segments, records them in the
// state and stops once keep_free is met.
func TestEmergency_DaemonMinuteCheck(t *testing.T) {
	mnt := smallFS(t, 1<<20+512<<10)
	now := time.Now()
	cfg := emStores(t, mnt, now)
	dir := t.TempDir()
	keep := int64(64<<10) + 2*segmentBytes + segmentBytes/2
	var b strings.Builder
	fmt.Fprintf(&b, "state_dir: %s/state\nlock_dir: %s/lock\nquarantine_dir: %s/q\nmetrics:\n  textfile: %s/m.prom\ndefaults:\n  grace_period: 10ms\ntargets:\n", dir, dir, dir, dir)
	for _, tg := range cfg.Targets {
		fmt.Fprintf(&b, "  - {name: %s, kind: rotating, path: %s, max_bytes: %d, max_files: 10, interval: 1h", tg.Name, tg.Path, segmentBytes)
		if tg.KeepFree != nil {
			fmt.Fprintf(&b, ", keep_free: %d, min_keep: 1d", keep)
		}
		b.WriteString("}\n")
	}
	path := filepath.Join(dir, "compact.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	logs := &syncBuffer{}
	go func() {
		done <- agent.RunDaemon(ctx, agent.DaemonOptions{
			ConfigPath: path, Registry: all.Backends(), Logger: slog.New(slog.NewTextHandler(logs, nil)),
			StopGrace: 5 * time.Second, EmergencyEvery: 50 * time.Millisecond,
		})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	emergency := func(target string) *agent.EmergencyState {
		st, _, err := agent.LoadTargetState(dir+"/state", target)
		if err != nil {
			return nil
		}
		return st.Emergency
	}
	// Checked, met, nothing dropped; and every target's first run done.
	eventually(t, 60*time.Second, "a first emergency check and the first runs", func() bool {
		e := emergency("a")
		if e == nil || e.Unmet || e.DroppedSegments != 0 {
			return false
		}
		for _, tg := range []string{"a", "b", "c"} {
			if st, found, _ := agent.LoadTargetState(dir+"/state", tg); !found || st.LastResult == "" {
				return false
			}
		}
		return true
	})
	before := snapshotDir(t, mnt)
	fill(t, mnt, 64<<10)
	eventually(t, 60*time.Second, "emergency drops by the daemon's check", func() bool {
		e := emergency("a")
		return e != nil && e.DroppedSegments > 0 && !e.Unmet && e.FreeBytes >= keep
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	done <- nil
	a, bs := emergency("a"), emergency("b")
	if a.DroppedSegments != 2 || bs.DroppedSegments != 1 {
		t.Errorf("dropped a %d, b %d segments; want a.4, b.3, a.3", a.DroppedSegments, bs.DroppedSegments)
	}
	after := snapshotDir(t, mnt)
	for _, gone := range []string{"a/store.log.4", "b/store.log.3", "a/store.log.3"} {
		if _, ok := after[gone]; ok {
			t.Errorf("%s still there", gone)
		}
	}
	if len(after) != len(before)-3 {
		t.Errorf("files after: %v", keysOf(after))
	}
	if !strings.Contains(logs.String(), agent.MsgEmergencyDrop) {
		t.Errorf("no %q in the log:\n%s", agent.MsgEmergencyDrop, logs.String())
	}
}

// TestEmergency_Journal: each drop is one journal entry with its own
// MESSAGE_ID, the target, the segment, its record count, first and last
// timestamps and the time span; keep_free unmet is another.
func TestEmergency_Journal(t *testing.T) {
	mnt := smallFS(t, 1<<20+512<<10)
	now := time.Now()
	cfg := emStores(t, mnt, now)
	free := fill(t, mnt, 64<<10)
	cfg.Targets[1].KeepFree.Bytes = free + segmentBytes/2
	cfg.Targets[2].KeepFree = &config.Amount{Percent: 99}
	j := newJournald(t)
	h, err := agent.NewJournalHandler(io.Discard, agent.LogOptions{JournalSocket: j.path})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	rep := agent.New(cfg, all.Backends(), slog.New(h)).Emergency(context.Background(), agent.EmergencyOptions{Now: now})
	f := rep.FileSystems[0]
	if len(f.Drops) != 6 || f.Unmet == "" {
		t.Fatalf("report %+v", f)
	}
	first := f.Drops[0]
	var drops, unmet []map[string]string
	for len(drops) < len(f.Drops) || len(unmet) == 0 {
		e := j.entry(t)
		switch e["MESSAGE_ID"] {
		case agent.MessageIDEmergencyDrop:
			drops = append(drops, e)
		case agent.MessageIDKeepFreeUnmet:
			unmet = append(unmet, e)
		}
	}
	want := map[string]string{
		"PRIORITY":               "4",
		"PAPYRA_TARGET":          "a",
		"PAPYRA_BACKEND":         "rotating",
		"PAPYRA_SEGMENT":         first.Segment,
		"PAPYRA_RECORDS":         strconv.FormatInt(first.Records, 10),
		"PAPYRA_BYTES":           strconv.FormatInt(first.Bytes, 10),
		"PAPYRA_FIRST":           agent.FormatTimestamp(first.Oldest),
		"PAPYRA_LAST":            agent.FormatTimestamp(first.Newest),
		"PAPYRA_SPAN_MS":         strconv.FormatInt(int64(first.Records-1)*1000, 10),
		"PAPYRA_KEEP_FREE_BYTES": strconv.FormatInt(f.KeepFree, 10),
	}
	for k, w := range want {
		if drops[0][k] != w {
			t.Errorf("%s = %q, want %q", k, drops[0][k], w)
		}
	}
	if unmet[0]["PRIORITY"] != "3" || !strings.Contains(unmet[0]["PAPYRA_REASON"], "younger than min_keep") {
		t.Errorf("unmet entry %v", unmet[0])
	}
}

// TestEmergency_OrderByNewestRecord: a long segment that starts early but
// ends late goes after a short one that lies wholly before its end, so no
// drop removes a record newer than one left behind in another store.
func TestEmergency_OrderByNewestRecord(t *testing.T) {
	mnt := smallFS(t, 1<<20+512<<10)
	now := time.Now()
	cfg := emStores(t, mnt, now)
	day := 86400.0
	at := func(days float64) float64 { return float64(now.Unix()) - days*day }
	// a.4 spans 30 days back to 3 days; b.3 lies wholly at 8 days, the
	// oldest newest record of all.
	long := emLine(1, at(30)) + strings.Repeat(emLine(2, at(20)), segmentBytes/len(emLine(0, 1e9))-2) + emLine(3, at(3))
	if err := os.WriteFile(cfg.Targets[1].Path+".4", []byte(long), 0o644); err != nil {
		t.Fatal(err)
	}
	free := fill(t, mnt, 64<<10)
	cfg.Targets[1].KeepFree.Bytes = free + segmentBytes/2
	rep := agent.New(cfg, all.Backends(), slog.New(slog.DiscardHandler)).Emergency(context.Background(), agent.EmergencyOptions{Now: now})
	f := rep.FileSystems[0]
	if len(f.Drops) != 1 || f.Drops[0].Target != "b" || filepath.Base(f.Drops[0].Segment) != "store.log.3" {
		t.Errorf("drops %+v, want b's store.log.3 alone (its newest record, 8 days old, is the oldest newest; a.4's is 3 days old)", f.Drops)
	}
}

// writeEmDaemonConfig writes dir/compact.yaml for a daemon over cfg's
// rotating stores (state, lock and quarantine under dir, no textfile),
// keep_free at keep for those that opted in, and returns its path.
func writeEmDaemonConfig(t *testing.T, dir string, cfg *config.Config, keep int64) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "state_dir: %s/state\nlock_dir: %s/lock\nquarantine_dir: %s/q\nmetrics:\n  textfile: \"\"\ndefaults:\n  grace_period: 10ms\ntargets:\n", dir, dir, dir)
	for _, tg := range cfg.Targets {
		fmt.Fprintf(&b, "  - {name: %s, kind: rotating, path: %s, max_bytes: %d, max_files: 10, interval: 1h", tg.Name, tg.Path, segmentBytes)
		if tg.KeepFree != nil {
			fmt.Fprintf(&b, ", keep_free: %d, min_keep: 1d", keep)
		}
		b.WriteString("}\n")
	}
	path := filepath.Join(dir, "compact.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestEmergency_DaemonChecksBeforeFirstRuns: a daemon started on a file
// system already below keep_free drops segments before any target's
// first compaction starts.
func TestEmergency_DaemonChecksBeforeFirstRuns(t *testing.T) {
	mnt := smallFS(t, 1<<20+512<<10)
	now := time.Now()
	cfg := emStores(t, mnt, now)
	dir := t.TempDir()
	free := fill(t, mnt, 64<<10)
	keep := free + segmentBytes/2
	path := writeEmDaemonConfig(t, dir, cfg, keep)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- agent.RunDaemon(ctx, agent.DaemonOptions{
			ConfigPath: path, Registry: all.Backends(), Logger: slog.New(slog.DiscardHandler),
			StopGrace: 5 * time.Second, EmergencyEvery: time.Hour,
		})
	}()
	state := func(target string) agent.TargetState {
		st, _, _ := agent.LoadTargetState(dir+"/state", target)
		return st
	}
	eventually(t, 60*time.Second, "the first runs of every target", func() bool {
		return state("a").LastResult != "" && state("b").LastResult != "" && state("c").LastResult != ""
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	e := state("a").Emergency
	if e == nil || e.DroppedSegments != 1 || e.LastDrop.IsZero() {
		t.Fatalf("emergency state of a: %+v", e)
	}
	for _, tg := range []string{"a", "b", "c"} {
		if st := state(tg); !st.LastRun.After(e.LastDrop) {
			t.Errorf("target %s started at %v, before the emergency drop at %v", tg, st.LastRun, e.LastDrop)
		}
	}
}
