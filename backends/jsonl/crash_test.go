//go:build failpoints

package jsonl_test

import (
	"bytes"
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
var crashSteps = []string{
	"temp-created", "survivors-written", "temp-synced", "quarantine-synced",
	"before-rename", "after-rename", "dir-synced", "drained",
}

const (
	crashSeeded    = 400
	crashWriters   = 2
	crashPerWriter = 300
)

var corruptSeeds = []string{"not json at all", "[1, 2, 3]", `{"kind": "event", "timest`}

// TestCrash kills `papyra-compact run` with SIGKILL at every named step of
// the swap and at random moments while Papyra-style writers append, then
// checks that the store held the old or the new content, that the next
// run succeeds and leaves no side file, and that no appended record and no
// corrupt line was lost. PAPYRA_CRASH_KILLS sets the number of kills
// (make crash: 1000; CI: 120).
func TestCrash(t *testing.T) {
	kills := 100
	if s := os.Getenv("PAPYRA_CRASH_KILLS"); s != "" {
		kills, _ = strconv.Atoi(s)
	}
	bin := testutil.Binary(t, "failpoints")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	var dupTotal, tornRuns int
	for i := 0; i < kills; i++ {
		mode := "random"
		if i < 2*len(crashSteps) || i%3 == 0 {
			mode = crashSteps[i%len(crashSteps)]
		}
		dups, ok := crashOnce(t, bin, exe, mode, rng)
		if !ok {
			t.Fatalf("kill %d (%s) broke the guarantee; see above", i+1, mode)
		}
		dupTotal += dups
		if dups > 0 {
			tornRuns++
		}
	}
	t.Logf("%d kills: every store old or new, every appended record kept exactly once (%d duplicates in %d runs)", kills, dupTotal, tornRuns)
}

func crashOnce(t *testing.T, bin, exe, mode string, rng *rand.Rand) (dups int, ok bool) {
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
		w.Env = append(os.Environ(), "PAPYRA_TEST_APPENDER="+appenderSpec(store, id, crashPerWriter, 100*time.Microsecond))
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		writers = append(writers, w)
	}
	run := exec.Command(bin, "run", "--config", cfg, "--no-progress")
	var out bytes.Buffer
	run.Stdout, run.Stderr = &out, &out
	if mode != "random" {
		run.Env = append(os.Environ(), "PAPYRA_FAILPOINT="+mode)
	}
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	if mode == "random" {
		time.Sleep(time.Duration(rng.IntN(60_000)) * time.Microsecond)
		_ = run.Process.Signal(syscall.SIGKILL)
	}
	err := run.Wait()
	if mode != "random" && (err == nil || !strings.Contains(err.Error(), "killed")) {
		t.Errorf("%s: the run was not killed at its fail point: %v\n%s", mode, err, out.String())
		return 0, false
	}
	// Right after the kill: the seeded records are the old set or the new.
	c := takeCensus(t, store)
	present := 0
	for i := 0; i < crashSeeded; i++ {
		present += c.seeded[i]
	}
	if present != crashSeeded && present != crashSeeded/2 {
		t.Errorf("%s: after the kill the store holds %d seeded records, want %d (old) or %d (new)", mode, present, crashSeeded, crashSeeded/2)
		return 0, false
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
		return 0, false
	}
	c = takeCensus(t, store)
	missing, dups := c.missingAppended(crashWriters, crashPerWriter)
	if len(missing) > 0 || dups > 0 {
		t.Errorf("%s: %d appended records lost (first: %v), %d duplicated\nkilled run said:\n%s", mode, len(missing), first(missing, 5), dups, out.String())
		return dups, false
	}
	for i := 1; i < crashSeeded; i += 2 {
		if c.seeded[i] != 1 || c.seeded[i-1] != 0 {
			t.Errorf("%s: seeded records %d/%d present %d/%d times, want 0/1", mode, i-1, i, c.seeded[i-1], c.seeded[i])
			return dups, false
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
			return dups, false
		}
	}
	return dups, !t.Failed()
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
