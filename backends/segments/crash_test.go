//go:build failpoints

package segments_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// crashSteps are the fail points of a rotating run, in order. The first
// layout reaches all of them.
var crashSteps = []string{
	"rotating-anchored", "rotating-temps-written", "rotating-prepared", "rotating-swapped", "rotating-dropped",
	"rotating-slot", "rotating-self-rotated", "rotating-active-swapped", "rotating-drained", "rotating-unfrozen",
}

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
// every named step and at random moments while a Papyra-style rotating
// writer appends, then checks that each seeded record inside retention is
// present exactly once right after the kill, that the next run recovers
// and succeeds, that no appended record and no corrupt line was lost, that
// the writer never failed, and that only Papyra-named segments remain.
// PAPYRA_CRASH_KILLS sets the number of kills (CI: 120).
func TestCrash(t *testing.T) {
	kills := 60
	if s := os.Getenv("PAPYRA_CRASH_KILLS"); s != "" {
		kills, _ = strconv.Atoi(s)
	}
	bin := testutil.Binary(t, "failpoints")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	seed := uint64(time.Now().UnixNano())
	var dups atomic.Int64
	// Two kills at a time: each waits mostly on fsync and on its writer.
	t.Run("Kills", func(t *testing.T) {
		for i := 0; i < kills; i++ {
			mode := "random"
			if i < 2*len(crashSteps) || i%3 == 0 {
				mode = crashSteps[i%len(crashSteps)]
			}
			t.Run(fmt.Sprintf("%03d_%s", i+1, mode), func(t *testing.T) {
				t.Parallel()
				rng := rand.New(rand.NewPCG(seed, uint64(i)))
				d, ok := crashOnce(t, bin, exe, mode, i%2 == 0 || mode != "random", rng)
				if !ok {
					t.Fatalf("kill %d (%s) broke the guarantee; see above", i+1, mode)
				}
				dups.Add(int64(d))
			})
		}
	})
	t.Logf("%d kills (seed %d): every kept record present once after each kill, every appended record kept; %d records duplicated by recovery", kills, seed, dups.Load())
}

func crashOnce(t *testing.T, bin, exe, mode string, selfRotate bool, rng *rand.Rand) (dups int, ok bool) {
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
	spec := writerSpec{Path: active, MaxBytes: maxBytes, MaxFiles: crashMaxFiles, ID: 1, N: crashPerWriter, Pause: time.Millisecond}
	w.Env = append(os.Environ(), "PAPYRA_TEST_ROTATING_WRITER="+spec.String())
	var werr bytes.Buffer
	w.Stderr = &werr
	if err := w.Start(); err != nil {
		t.Fatal(err)
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
		time.Sleep(time.Duration(rng.IntN(150_000)) * time.Microsecond)
		_ = run.Process.Signal(syscall.SIGKILL)
	}
	err := run.Wait()
	if mode != "random" && (err == nil || !strings.Contains(err.Error(), "killed")) {
		t.Errorf("%s: the run was not killed at its fail point: %v\n%s", mode, err, out.String())
		return 0, false
	}
	if err := w.Wait(); err != nil {
		t.Errorf("%s: the writer failed: %v\n%s", mode, err, werr.String())
		return 0, false
	}
	// Right after the kill: every kept record exactly once.
	c := crashCensus(t, active)
	for _, i := range fresh {
		if c.seeded[i] != 1 {
			t.Errorf("%s: after the kill seeded record %d is present %d times, want 1\nkilled run said:\n%s", mode, i, c.seeded[i], out.String())
			return 0, false
		}
	}
	next := exec.Command(bin, "run", "--config", cfg, "--no-progress")
	if b, err := next.CombinedOutput(); err != nil {
		t.Errorf("%s: the run after the kill failed: %v\n%s\nkilled run said:\n%s", mode, err, b, out.String())
		return 0, false
	}
	c = crashCensus(t, active)
	for _, i := range fresh {
		if c.seeded[i] != 1 {
			t.Errorf("%s: seeded record %d present %d times after recovery, want 1", mode, i, c.seeded[i])
			return 0, false
		}
	}
	for _, i := range expired {
		if c.seeded[i] != 0 {
			t.Errorf("%s: expired record %d still present after recovery", mode, i)
			return 0, false
		}
	}
	for n := 0; n < crashPerWriter; n++ {
		switch k := c.appended[n]; {
		case k == 0:
			t.Errorf("%s: appended record %d lost\nkilled run said:\n%s", mode, n, out.String())
			return dups, false
		case k > 1:
			dups += k - 1
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
	return dups, !t.Failed()
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
