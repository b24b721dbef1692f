//go:build failpoints

package segments_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// crashSteps are the fail points of a rotating run, in order. The first
// layout reaches all of them.
var crashSteps = testutil.FailPoints["rotating"]

// crashPause holds the run at a moment a writer must slip in. "wait"
// holds it until the test has written (slipIn: a record opened at the
// previous pause is written, one is appended as Papyra does, one is
// opened for the next); "sleep=" pauses while the writer goes on (and
// holds every fourth record between open and write). Before the exchange
// of the active file (rotating-active-recorded), an append lands past the
// copied offset of the old inode: only the drain, or the recovery of a
// killed drain, carries it over; that needs the in-place layout (in the
// self-rotating one the writer already appends to the new active file).
// Right after the exchange, a record opened before it lands on the old
// inode. Most then kill at a later step; those without a kill let the
// run's own drain do the work, and would lose those records without it.
type crashPause struct {
	spec       string
	selfRotate bool
}

var crashPauses = []crashPause{
	{"rotating-anchored:wait,rotating-prepared", true},
	{"rotating-slot:wait,rotating-self-rotated:wait,rotating-drained", true},
	{"rotating-active-recorded:wait,rotating-active-swapped", false},
	{"rotating-active-recorded:wait,rotating-drained", false},
	{"rotating-active-recorded:wait,rotating-active-swapped:wait,rotating-drained", false},
	{"rotating-active-recorded:wait,rotating-active-swapped:wait,rotating-drained", true},
	{"rotating-active-recorded:wait", false},
	{"rotating-active-recorded:wait,rotating-active-swapped:wait", false},
	{"rotating-anchored:sleep=30ms,rotating-prepared", true},
	{"rotating-active-swapped:sleep=40ms,rotating-drained", true},
}

// crashReach is how the kill at a step that needs a writer to get there
// reaches it: the drain appends only what a writer put on the old active
// inode after the last copy of the tail.
var crashReach = map[string]crashPause{
	"rotating-drain-appended": {"rotating-active-recorded:wait,rotating-drain-appended", false},
}

// lateFirst numbers the records the test writes itself at a paused step.
const lateFirst = 1000

const (
	crashMaxFiles  = 7 // slot 6 starts empty: the run places an anchor
	crashPerWriter = 120
)

var crashCorrupt = []string{"not json at all", "[1, 2, 3]"}

// crashLayout seeds a store; i counts seeded records. The self-rotating
// layout has an expired slot 1, so the run rotates the active file
// itself; the in-place layout keeps slot 1, so the active file is
// replaced where it is.
func crashLayout(selfRotate bool, now float64) (l layout, fresh, expired []int) {
	i := 0
	recs := func(n int, ts float64) string {
		var b strings.Builder
		for range n {
			b.WriteString(rec(i, ts))
			if ts == now {
				fresh = append(fresh, i)
			} else {
				expired = append(expired, i)
			}
			i++
		}
		return b.String()
	}
	oldTS := now - 10*86400
	l = layout{}
	l[5] = recs(20, oldTS) + crashCorrupt[0] + "\n" + recs(10, oldTS)
	l[4] = recs(15, oldTS) + crashCorrupt[1] + "\n" + recs(15, now)
	l[3] = recs(30, now)
	l[2] = recs(30, now)
	if selfRotate {
		l[1] = recs(30, oldTS)
	} else {
		l[1] = recs(30, now)
	}
	l[0] = recs(10, oldTS) + recs(20, now)
	return l, fresh, expired
}

// TestCrash kills `papyra-compact run` on a rotating store with SIGKILL at
// every named step, after pausing it where the writer slips in, and at
// random moments while a Papyra-style rotating writer appends, then checks
// that each seeded record inside retention is present exactly once right
// after the kill, that the next run recovers and succeeds, that no
// appended record and no corrupt line was lost or duplicated, that the
// writer never failed, and that only Papyra-named segments remain.
// PAPYRA_CRASH_KILLS sets the number of kills (CI: 120): only a kill that
// interrupted a run counts, and a random kill that came after the run
// finished is tried again. Every named step must have fired;
// PAPYRA_CRASH_SEED replays the random choices of a logged run.
func TestCrash(t *testing.T) {
	kills := testutil.CrashKills(t, 60)
	bin := testutil.Binary(t, "failpoints")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	seed := testutil.CrashSeed(t)
	var (
		mu    sync.Mutex
		tally testutil.FailPointTally
		late  atomic.Int64
	)
	type job struct {
		spec       string
		selfRotate bool
		kill       bool // counts as a kill
	}
	var jobs []job
	for _, st := range crashSteps {
		if p, ok := crashReach[st]; ok {
			jobs = append(jobs, job{p.spec, p.selfRotate, true})
			continue
		}
		jobs = append(jobs, job{st, true, true})
	}
	for _, p := range crashPauses {
		jobs = append(jobs, job{p.spec, p.selfRotate, killsAt(p.spec)})
	}
	// Every named step and pause first, then random kills (every third
	// a named one again) until enough kills are planned; a random kill
	// that comes too late is retried inside its subtest.
	n, fixed := 0, len(jobs)
	for _, j := range jobs {
		if j.kill {
			n++
		}
	}
	for i := fixed; n < kills; i++ {
		j := job{"random", i%2 == 0, true}
		if i%3 == 0 {
			j = jobs[i%fixed]
		}
		if j.kill {
			n++
		}
		jobs = append(jobs, j)
	}
	// Two kills at a time: each waits mostly on fsync and on its writer.
	t.Run("Kills", func(t *testing.T) {
		for i, j := range jobs {
			t.Run(fmt.Sprintf("%03d_%s", i+1, j.spec), func(t *testing.T) {
				t.Parallel()
				rng := rand.New(rand.NewPCG(seed, uint64(i)))
				for attempt := 0; ; attempt++ {
					if attempt == 20 {
						t.Fatalf("%s: 20 random kills came after the run had finished", j.spec)
					}
					r := crashOnce(t, bin, exe, j.spec, j.selfRotate, rng, func(log string) {
						mu.Lock()
						defer mu.Unlock()
						tally.Add(t, log, j.spec)
					})
					if !r.ok {
						t.Fatalf("kill %d (%s) broke the guarantee; see above (seed logged at the top)", i+1, j.spec)
					}
					if r.killed || j.spec != "random" {
						break
					}
					late.Add(1)
				}
			})
		}
	})
	tally.Check(t, crashSteps)
	if t.Failed() {
		return
	}
	t.Logf("%d kills that interrupted a run (%d random kills came after the run had finished and were tried again): every kept record present once after each kill, every appended record kept exactly once",
		n, late.Load())
}

type crashResult struct {
	killed bool // the kill interrupted the run
	ok     bool
}

// killsAt reports whether spec ends with a kill at a named step.
func killsAt(spec string) bool {
	if spec == "random" {
		return false
	}
	for _, s := range strings.Split(spec, ",") {
		if _, action, _ := strings.Cut(s, ":"); action == "" || action == "kill" {
			return true
		}
	}
	return false
}

// wasKilled reports whether err is the exit of a process SIGKILL ended.
func wasKilled(err error) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

func crashOnce(t *testing.T, bin, exe, mode string, selfRotate bool, rng *rand.Rand, tally func(log string)) crashResult {
	t.Helper()
	dir := t.TempDir()
	now := float64(time.Now().Unix())
	seed, fresh, expired := crashLayout(selfRotate, now)
	active := lay(t, seed)
	// Named steps: a writer that does not rotate, so that the layout (and
	// so every step) is what the run sees. Random kills: one that rotates
	// whenever the slots allow.
	maxBytes := int64(1 << 20)
	if mode == "random" {
		maxBytes = 4096
	}
	cfg := writeCrashConfig(t, dir, active, maxBytes)
	w := exec.Command(exe, "-test.run=^$")
	spec := writerSpec{Path: active, MaxBytes: maxBytes, MaxFiles: crashMaxFiles, ID: 1, N: crashPerWriter, Pause: time.Millisecond, Hold: time.Millisecond}
	w.Env = append(os.Environ(), "PAPYRA_TEST_ROTATING_WRITER="+spec.String())
	var werr bytes.Buffer
	w.Stderr = &werr
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	fpLog := filepath.Join(dir, "failpoints.log")
	run := exec.Command(bin, "run", "--config", cfg, "--no-progress")
	var out bytes.Buffer
	run.Stdout, run.Stderr = &out, &out
	run.Env = append(os.Environ(), "PAPYRA_FAILPOINT_LOG="+fpLog)
	pauses := testutil.NewPauses(t, mode, fpLog)
	if mode != "random" {
		run.Env = append(run.Env, "PAPYRA_FAILPOINT="+pauses.Spec)
	}
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	if mode == "random" {
		time.Sleep(time.Duration(rng.IntN(150_000)) * time.Microsecond)
		_ = run.Process.Signal(syscall.SIGKILL)
	}
	late := 0
	var held []*os.File
	pw := papyraWriter{path: active, maxBytes: maxBytes, maxFiles: crashMaxFiles}
	slipIn := func(string) {
		line := func() string { return rotLine(fmt.Sprintf(`{"w": 7, "n": %d}`, lateFirst+late), now) }
		for _, f := range held {
			if _, err := f.WriteString(line()); err != nil {
				t.Error(err)
			}
			late++
			_ = f.Close()
		}
		held = held[:0]
		if err := pw.append(line()); err != nil {
			t.Error(err)
		}
		late++
		f, err := os.OpenFile(active, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Error(err)
			return
		}
		held = append(held, f)
	}
	exited := make(chan struct{})
	driven := make(chan []string, 1)
	go func() {
		released := pauses.Drive(t, exited, slipIn)
		// A record opened at the last pause is never written: close it
		// now, as a writer would, not when the run has ended (the run
		// waits for the writers of the old inode to close it).
		for _, f := range held {
			_ = f.Close()
		}
		held = nil
		driven <- released
	}()
	err := run.Wait()
	close(exited)
	<-driven
	// A kill interrupted the run only if it came before the run's
	// summary line: one that lands while the process exits tests nothing.
	killed := wasKilled(err) && !strings.Contains(out.String(), "crash: ")
	if mode != "random" {
		tally(fpLog)
	}
	switch {
	case killsAt(mode) && !wasKilled(err):
		t.Errorf("%s: the run was not killed at its fail point: %v\n%s", mode, err, out.String())
		return crashResult{}
	case !killsAt(mode) && mode != "random" && err != nil:
		t.Errorf("%s: the paused run failed: %v\n%s", mode, err, out.String())
		return crashResult{}
	case mode == "random" && err != nil && !wasKilled(err):
		// A kill after the summary line is not counted (killed is false)
		// but is no failure either: the run had finished its work.
		t.Errorf("random kill: the run failed on its own: %v\n%s", err, out.String())
		return crashResult{}
	}
	if err := w.Wait(); err != nil {
		t.Errorf("%s: the writer failed: %v\n%s", mode, err, werr.String())
		return crashResult{}
	}
	// Right after the kill: every kept record exactly once.
	c := crashCensus(t, active)
	for _, i := range fresh {
		if c.seeded[i] != 1 {
			t.Errorf("%s: after the kill seeded record %d is present %d times, want 1\nkilled run said:\n%s", mode, i, c.seeded[i], out.String())
			return crashResult{}
		}
	}
	next := exec.Command(bin, "run", "--config", cfg, "--no-progress")
	if b, err := next.CombinedOutput(); err != nil {
		t.Errorf("%s: the run after the kill failed: %v\n%s\nkilled run said:\n%s", mode, err, b, out.String())
		return crashResult{}
	}
	c = crashCensus(t, active)
	for _, i := range fresh {
		if c.seeded[i] != 1 {
			t.Errorf("%s: seeded record %d present %d times after recovery, want 1", mode, i, c.seeded[i])
			return crashResult{}
		}
	}
	for _, i := range expired {
		if c.seeded[i] != 0 {
			t.Errorf("%s: expired record %d still present after recovery", mode, i)
			return crashResult{}
		}
	}
	for n := 0; n < crashPerWriter; n++ {
		if k := c.appended[n]; k != 1 {
			t.Errorf("%s: appended record %d present %d times after recovery, want 1 (0: lost; more: a drain or a recovery appended it twice)\nkilled run said:\n%s", mode, n, k, out.String())
			return crashResult{}
		}
	}
	for k := 0; k < late; k++ {
		if n := c.appended[lateFirst+k]; n != 1 {
			t.Errorf("%s: record %d written at a paused step present %d times after recovery, want 1\nkilled run said:\n%s", mode, k, n, out.String())
			return crashResult{}
		}
	}
	if c.other != 0 {
		t.Errorf("%s: %d unexpected lines in the store", mode, c.other)
	}
	testutil.AssertNoSideFiles(t, filepath.Dir(active))
	assertPapyraNaming(t, active, crashMaxFiles)
	q, _ := filepath.Glob(filepath.Join(dir, "quarantine", "crash", "*"))
	var quarantined []byte
	for _, f := range q {
		b, _ := os.ReadFile(f)
		quarantined = append(quarantined, b...)
	}
	for _, s := range crashCorrupt {
		if !bytes.Contains(quarantined, []byte(s)) {
			t.Errorf("%s: corrupt line %q is not in quarantine", mode, s)
		}
	}
	return crashResult{killed: killed, ok: !t.Failed()}
}

// crashCount is what a store holds: seeded records by "i", appended ones
// by "n".
type crashCount struct {
	seeded, appended map[int]int
	other            int
}

func crashCensus(t *testing.T, active string) crashCount {
	t.Helper()
	c := crashCount{seeded: map[int]int{}, appended: map[int]int{}}
	for _, l := range readStore(t, active) {
		var r struct{ Payload struct{ I, N *int } }
		switch {
		case json.Unmarshal([]byte(l), &r) != nil:
			if l != crashCorrupt[0] && l != crashCorrupt[1] {
				c.other++
			}
		case r.Payload.N != nil:
			c.appended[*r.Payload.N]++
		case r.Payload.I != nil:
			c.seeded[*r.Payload.I]++
		default:
			if l != crashCorrupt[1] {
				c.other++
			}
		}
	}
	return c
}

func writeCrashConfig(t *testing.T, dir, active string, maxBytes int64) string {
	t.Helper()
	cfg := filepath.Join(dir, "compact.yaml")
	y := fmt.Sprintf(`state_dir: %[1]s/state
lock_dir: %[1]s/lock
quarantine_dir: %[1]s/quarantine
metrics:
  textfile: ""
defaults:
  grace_period: 30ms
targets:
  - name: crash
    kind: rotating
    path: %[2]s
    max_bytes: %[3]d
    max_files: %[4]d
    retention:
      max_age: 1d
`, dir, active, maxBytes, crashMaxFiles)
	if err := os.WriteFile(cfg, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}
