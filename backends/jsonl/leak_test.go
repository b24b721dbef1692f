//go:build failpoints

package jsonl_test

import (
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

// TestCrash_NoLeftovers kills `papyra-compact run` with SIGKILL again and
// again on ONE store (at the swap's fail points and at random moments)
// while a Papyra-style writer appends, never cleaning up in between; then
// one clean run. Nothing any run created may be left in the state, lock,
// store or quarantine directories (no temp file of a record write, no
// temp copy, no scratch file, no unnamed quarantine part), the recovery
// record is gone, and every appended record is there once.
// PAPYRA_LEAK_KILLS sets the kills (default 200; 40 with -short).
func TestCrash_NoLeftovers(t *testing.T) {
	kills := 200
	if testing.Short() {
		kills = 40
	}
	if s := os.Getenv("PAPYRA_LEAK_KILLS"); s != "" {
		kills, _ = strconv.Atoi(s)
	}
	const perWriter = 40
	bin := testutil.Binary(t, "failpoints")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, uint64(time.Now().UnixNano())))
	dir := t.TempDir()
	store := filepath.Join(dir, "data", "events.ndjson")
	cfg := writeCrashConfig(t, dir, store)
	var seed strings.Builder
	now := float64(time.Now().Unix())
	for i := 0; i < 200; i++ {
		seed.WriteString(backendtest.Record{Kind: "event", I: i, Timestamp: now - 60 - float64(i%2)*10*86400}.JSON() + "\n")
		if i%50 == 7 {
			seed.WriteString(corruptSeeds[(i/50)%len(corruptSeeds)] + "\n")
		}
	}
	if err := os.WriteFile(store, []byte(seed.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < kills; i++ {
		w := exec.Command(exe, "-test.run=^$")
		w.Env = append(os.Environ(), "PAPYRA_TEST_APPENDER="+appenderSpec(store, i, perWriter, crashPause, crashHold))
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		run := exec.Command(bin, "run", "--config", cfg, "--no-progress")
		if i%3 == 0 {
			run.Env = append(os.Environ(), "PAPYRA_FAILPOINT="+crashSteps[(i/3)%len(crashSteps)])
		}
		if err := run.Start(); err != nil {
			t.Fatal(err)
		}
		if i%3 != 0 {
			time.Sleep(time.Duration(rng.IntN(80_000)) * time.Microsecond)
			_ = run.Process.Signal(syscall.SIGKILL)
		}
		_ = run.Wait()
		if err := w.Wait(); err != nil {
			t.Fatalf("writer: %v", err)
		}
	}
	if out, err := exec.Command(bin, "run", "--config", cfg, "--no-progress").CombinedOutput(); err != nil {
		t.Fatalf("the clean run after %d kills failed: %v\n%s", kills, err, out)
	}
	for _, d := range []string{filepath.Dir(store), filepath.Join(dir, "state"), filepath.Join(dir, "lock"), filepath.Join(dir, "quarantine", "crash")} {
		if _, err := os.Stat(d); err == nil {
			testutil.AssertNoSideFiles(t, d)
		}
	}
	if recs, _ := filepath.Glob(filepath.Join(dir, "state", "jsonl-swap-*")); len(recs) != 0 {
		t.Errorf("recovery record files left after a clean run: %v", recs)
	}
	c := takeCensus(t, store)
	if missing, dups := c.missingAppended(kills, perWriter); len(missing) > 0 || dups > 0 {
		t.Errorf("%d appended records lost (first: %v), %d duplicated", len(missing), first(missing, 5), dups)
	}
	t.Logf("%d kills on one store, then a clean run: no leftovers", kills)
}
