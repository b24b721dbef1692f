//go:build failpoints

package jsonl_test

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/papyra-compact/papyra-compact/backends/backendtest"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// crashSteps are the fail points of a jsonl swap, in order.
var crashSteps = testutil.FailPoints["jsonl"]

// crashPauses hold the run at the moments a writer must slip in. "wait"
// holds it until the test has written (slipIn): during the preparation,
// after the last copy of the tail and before the rename (a record
// appended then lands past the copied offset of the old inode: only the
// drain, or the recovery of a killed drain, carries it over), and right
// after the rename (a record opened before it, written now, lands on the
// old inode too). "sleep=" pauses while the Papyra-style writers go on
// (and sometimes hold a record between open and write). Most then kill
// at a later step; those without a kill let the run's own drain do the
// work, and would lose the records written at the pause without it.
var crashPauses = []string{
	"temp-created:wait,before-rename",
	"before-rename:wait,after-rename",
	"before-rename:wait,dir-synced",
	"before-rename:wait,drained",
	"before-rename:wait,after-rename:wait,drained",
	"before-rename:wait",
	"before-rename:wait,after-rename:wait",
	"temp-created:sleep=30ms,before-rename",
	"after-rename:sleep=40ms,drained",
}

// crashReach is how the kill at a step that needs a writer to get there
// reaches it: the drain appends only what a writer put on the old inode
// after the last copy of the tail.
var crashReach = map[string]string{
	"drain-appended": "before-rename:wait,drain-appended",
}

// lateWriter is the writer id of the records the test writes itself at a
// paused step.
const lateWriter = 7

const (
	crashSeeded    = 400
	crashWriters   = 2
	crashPerWriter = 300
	crashPause     = 200 * time.Microsecond
	crashHold      = time.Millisecond
)

var corruptSeeds = []string{"not json at all", "[1, 2, 3]", `{"kind": "event", "timest`}

// TestCrash kills `papyra-compact run` with SIGKILL at every named step of
// the swap, after pausing it where writers slip in, and at random moments
// while Papyra-style writers append, then checks that the store held the
// old or the new content, that the next run succeeds and leaves no side
// file, and that no appended record and no corrupt line was lost or
// duplicated. PAPYRA_CRASH_KILLS sets the number of kills (make crash:
// 1000; CI: 120): only a kill that interrupted a run counts (a random one
// that came after the run finished does not), and the test goes on until
// that many did. Every named step must have fired; PAPYRA_CRASH_SEED
// replays the random choices of a logged run.
func TestCrash(t *testing.T) {
	kills := testutil.CrashKills(t, 100)
	bin := testutil.Binary(t, "failpoints")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(testutil.CrashSeed(t), 1))
	var modes []string
	for _, st := range crashSteps {
		modes = append(modes, cmp.Or(crashReach[st], st))
	}
	modes = append(modes, crashPauses...)
	var tally testutil.FailPointTally
	var killed, finished, late, runs int
	for i := 0; killed < kills; i++ {
		if i >= 4*kills+len(modes) {
			t.Fatalf("only %d of %d runs were interrupted by their kill: the random kills come too late", killed, i)
		}
		mode := "random"
		if i < len(modes) || i%3 == 0 {
			mode = modes[i%len(modes)]
		}
		r := crashOnce(t, bin, exe, mode, rng, &tally)
		if !r.ok {
			t.Fatalf("run %d (%s) broke the guarantee; see above (seed logged at the top)", i+1, mode)
		}
		runs++
		switch {
		case r.killed:
			killed++
		case mode == "random":
			late++
		default:
			finished++
		}
	}
	tally.Check(t, crashSteps)
	if t.Failed() {
		return
	}
	t.Logf("%d kills that interrupted a run (%d runs: %d random kills came after the run had finished, %d paused runs finished): every store old or new, every appended record kept exactly once",
		killed, runs, late, finished)
}

type crashResult struct {
	killed bool // the kill interrupted the run
	ok     bool
}

// killsAt reports whether mode ends with a kill at a named step.
func killsAt(mode string) bool {
	if mode == "random" {
		return false
	}
	for _, spec := range strings.Split(mode, ",") {
		if _, action, _ := strings.Cut(spec, ":"); action == "" || action == "kill" {
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

func crashOnce(t *testing.T, bin, exe, mode string, rng *rand.Rand, tally *testutil.FailPointTally) crashResult {
	t.Helper()
	dir := t.TempDir()
	store := filepath.Join(dir, "data", "events.ndjson")
	cfg := writeCrashConfig(t, dir, store)
	now := time.Now()
	var seed strings.Builder
	for i := 0; i < crashSeeded; i++ {
		ts := float64(now.Unix()) - 60
		if i%2 == 0 {
			ts -= 10 * 86400
		}
		seed.WriteString(backendtest.Record{Kind: "event", I: i, Timestamp: ts}.JSON() + "\n")
		if i%150 == 7 {
			seed.WriteString(corruptSeeds[(i/150)%len(corruptSeeds)] + "\n")
		}
	}
	if err := os.WriteFile(store, []byte(seed.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	var writers []*exec.Cmd
	for id := 0; id < crashWriters; id++ {
		w := exec.Command(exe, "-test.run=^$")
		w.Env = append(os.Environ(), "PAPYRA_TEST_APPENDER="+appenderSpec(store, id, crashPerWriter, crashPause, crashHold))
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		writers = append(writers, w)
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
		time.Sleep(time.Duration(rng.IntN(60_000)) * time.Microsecond)
		_ = run.Process.Signal(syscall.SIGKILL)
	}
	// At each waiting step: a record opened at the previous one is written
	// now, one is appended as Papyra does, and one is opened for the next.
	var late int
	var held []*os.File
	slipIn := func(string) {
		ts := float64(time.Now().UnixNano()) / 1e9
		for _, f := range held {
			if _, err := f.WriteString(appendedLine(lateWriter, late, ts)); err != nil {
				t.Error(err)
			}
			late++
			_ = f.Close()
		}
		held = held[:0]
		if err := testutil.AppendPapyra(store, []byte(appendedLine(lateWriter, late, ts))); err != nil {
			t.Error(err)
		}
		late++
		f, err := os.OpenFile(store, os.O_WRONLY|os.O_APPEND, 0)
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
		tally.Add(t, fpLog, mode)
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
	// Right after the kill: the seeded records are the old set or the new.
	c := takeCensus(t, store)
	present := 0
	for i := 0; i < crashSeeded; i++ {
		present += c.seeded[i]
	}
	if present != crashSeeded && present != crashSeeded/2 {
		t.Errorf("%s: after the kill the store holds %d seeded records, want %d (old) or %d (new)", mode, present, crashSeeded, crashSeeded/2)
		return crashResult{}
	}
	for _, w := range writers {
		if err := w.Wait(); err != nil {
			t.Fatalf("writer: %v", err)
		}
	}
	// The next run recovers and succeeds.
	next := exec.Command(bin, "run", "--config", cfg, "--no-progress")
	if b, err := next.CombinedOutput(); err != nil {
		t.Errorf("%s: the run after the kill failed: %v\n%s", mode, err, b)
		return crashResult{}
	}
	c = takeCensus(t, store)
	missing, dups := c.missingAppended(crashWriters, crashPerWriter)
	if len(missing) > 0 || dups > 0 {
		t.Errorf("%s: %d appended records lost (first: %v), %d duplicated\nkilled run said:\n%s", mode, len(missing), first(missing, 5), dups, out.String())
		return crashResult{}
	}
	for k := 0; k < late; k++ {
		if n := c.appended[[2]int{lateWriter, k}]; n != 1 {
			t.Errorf("%s: record %d written at a paused step present %d times, want 1\nkilled run said:\n%s", mode, k, n, out.String())
			return crashResult{}
		}
	}
	for i := 1; i < crashSeeded; i += 2 {
		if c.seeded[i] != 1 || c.seeded[i-1] != 0 {
			t.Errorf("%s: seeded records %d/%d present %d/%d times, want 0/1", mode, i-1, i, c.seeded[i-1], c.seeded[i])
			return crashResult{}
		}
	}
	testutil.AssertNoSideFiles(t, filepath.Dir(store))
	q, _ := filepath.Glob(filepath.Join(dir, "quarantine", "crash", "*"))
	var quarantined []byte
	for _, f := range q {
		b, _ := os.ReadFile(f)
		quarantined = append(quarantined, b...)
	}
	for _, s := range corruptSeeds {
		if !bytes.Contains(quarantined, []byte(strconv.Quote(s)[1:len(strconv.Quote(s))-1])) {
			t.Errorf("%s: corrupt line %q is neither in the store nor in quarantine", mode, s)
			return crashResult{}
		}
	}
	return crashResult{killed: killed, ok: !t.Failed()}
}

func writeCrashConfig(t *testing.T, dir, store string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(store), 0o755); err != nil {
		t.Fatal(err)
	}
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
    kind: jsonl
    path: %[2]s
    retention:
      max_age: 1d
`, dir, store)
	if err := os.WriteFile(cfg, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestCrash_InjectedENOSPC makes the temp file's first write fail with
// ENOSPC (the unprivileged stand-in for the tmpfs test): the run fails
// with a clear error, the original is intact, no temp file remains.
func TestCrash_InjectedENOSPC(t *testing.T) {
	bin := testutil.Binary(t, "failpoints")
	dir := t.TempDir()
	store := filepath.Join(dir, "data", "events.ndjson")
	cfg := writeCrashConfig(t, dir, store)
	content := lines(rec(1, fresh), "not json", rec(2, fresh))
	if err := os.WriteFile(store, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	run := exec.Command(bin, "run", "--config", cfg)
	run.Env = append(os.Environ(), "PAPYRA_FAILPOINT=temp-created:enospc")
	out, err := run.CombinedOutput()
	var ee *exec.ExitError
	if err == nil || !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("run with ENOSPC: got %v, want exit status 1\n%s", err, out)
	}
	if !strings.Contains(string(out), "no space left on device") {
		t.Errorf("output does not explain the failure:\n%s", out)
	}
	if got := read(t, store); got != content {
		t.Errorf("store changed after a failed run: %q", got)
	}
	testutil.AssertNoSideFiles(t, filepath.Dir(store))
	if q, _ := filepath.Glob(filepath.Join(dir, "quarantine", "crash", "*")); len(q) != 0 {
		t.Errorf("quarantine files left by a failed run: %v", q)
	}
}
