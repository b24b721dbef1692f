package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/papyra-compact/papyra-compact/agent"
	"github.com/papyra-compact/papyra-compact/backends/backendtest"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// TestDaemon_SlowTargetDoesNotStarve runs the daemon binary on two real
// stores with one slot: a slow one listed first, whose runs take longer
// than its 1s interval (its records age out every second, so every run
// rewrites it, and the failpoints build pauses each rewrite 1.5s, as a
// big store's would take), and a small one due every 2s. Both must run
// again and again: the slow one once kept the slot forever (due again
// the moment it landed, and first in configuration order). Counts only;
// the deadline is a hang guard, not a speed measure.
func TestDaemon_SlowTargetDoesNotStarve(t *testing.T) {
	dir := t.TempDir()
	var big bytes.Buffer
	start := float64(time.Now().Unix()) - 3600
	for i := range 60000 {
		big.WriteString(backendtest.Record{Kind: "event", I: i, Timestamp: start + float64(i)/100}.JSON() + "\n")
	}
	if err := os.WriteFile(filepath.Join(dir, "big.jsonl"), big.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	testutil.CopyFile(t, testutil.Fixture(t, "jsonl/store.jsonl"), filepath.Join(dir, "small.jsonl"))
	cfg := filepath.Join(dir, "compact.yaml")
	y := fmt.Sprintf(`state_dir: %[1]s/state
lock_dir: %[1]s/lock
quarantine_dir: %[1]s/q
metrics:
  textfile: ""
defaults:
  grace_period: 10ms
targets:
  - {name: big, kind: jsonl, path: %[1]s/big.jsonl, interval: 1s, retention: {max_age_seconds: 3600}}
  - {name: small, kind: jsonl, path: %[1]s/small.jsonl, interval: 2s}
`, dir)
	if err := os.WriteFile(cfg, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testutil.Binary(t, "failpoints"), "daemon", "--config", cfg, "--stop-grace", "10s")
	cmd.Env = childEnv("PAPYRA_FAILPOINT=survivors-written:sleep=1500ms")
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	runs := func(target string) uint64 {
		st, _, err := agent.LoadTargetState(filepath.Join(dir, "state"), target)
		if err != nil {
			return 0
		}
		return st.Counters.RunsSuccess
	}
	for deadline := time.Now().Add(5 * time.Minute); runs("small") < 3 || runs("big") < 2; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after 5 minutes: big ran %d times, small %d; want both to keep running\n%s", runs("big"), runs("small"), out.String())
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("daemon after SIGTERM: %v\n%s", err, out.String())
	}
	if st, _, _ := agent.LoadTargetState(filepath.Join(dir, "state"), "small"); st.Interval != 2 {
		t.Errorf("small's schedule in the state: interval %v, want 2", st.Interval)
	}
	if strings.Contains(out.String(), "run failed") {
		t.Errorf("a run failed:\n%s", out.String())
	}
}
