package main_test

import (
	"bytes"
	"encoding/json"
	"errors"
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

// stuckEnv is a store whose compaction the failpoints binary holds at
// "temp-created" forever (the step waits for a file nobody creates):
// a run stuck in the middle of its work, deaf to cancellation, as one in
// a hung system call would be.
type stuckEnv struct {
	dir, cfg, store, stateDir, textfile, fpLog string
}

func newStuckEnv(t *testing.T) stuckEnv {
	t.Helper()
	dir := t.TempDir()
	e := stuckEnv{dir: dir, cfg: filepath.Join(dir, "compact.yaml"), store: filepath.Join(dir, "data", "orders.jsonl"),
		stateDir: filepath.Join(dir, "state"), textfile: filepath.Join(dir, "prom", "papyra_compact.prom"), fpLog: filepath.Join(dir, "fp.log")}
	if err := os.MkdirAll(filepath.Dir(e.store), 0o755); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for i := range 1000 {
		b.WriteString(backendtest.Record{Kind: "event", I: i, Timestamp: float64(backendtest.Now.Unix())}.JSON() + "\n")
	}
	if err := os.WriteFile(e.store, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	y := fmt.Sprintf(`state_dir: %s
lock_dir: %s/lock
quarantine_dir: %s/quarantine
metrics:
  textfile: %s
defaults:
  grace_period: 10ms
  interval: 1h
targets:
  - name: orders
    kind: jsonl
    path: %s
    retention:
      max_records: 10
`, e.stateDir, dir, dir, e.textfile, e.store)
	if err := os.WriteFile(e.cfg, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	return e
}

// start runs the failpoints binary with args, stuck at temp-created, and
// returns once the run is stuck there.
func (e stuckEnv) start(t *testing.T, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(testutil.Binary(t, "failpoints"), args...)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET=",
		"PAPYRA_FAILPOINT=temp-created:wait="+filepath.Join(e.dir, "never"), "PAPYRA_FAILPOINT_LOG="+e.fpLog)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(10 * time.Millisecond) {
		if b, _ := os.ReadFile(e.fpLog); strings.Contains(string(b), "temp-created") {
			return cmd, &out
		}
		if time.Now().After(deadline) {
			t.Fatalf("the run never reached temp-created:\n%s", out.String())
		}
	}
}

// stop sends SIGTERM and waits for the process to exit. The bound is
// not a speed measure: the stuck step would hold the process forever.
func stop(t *testing.T, cmd *exec.Cmd, out *bytes.Buffer) int {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return exit.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(2 * time.Minute):
		t.Fatalf("still running two minutes after SIGTERM with --stop-grace 1s:\n%s", out.String())
		return -1
	}
}

// interrupted checks what state, status and metrics say of the run.
func (e stuckEnv) interrupted(t *testing.T) {
	t.Helper()
	st, _, err := agent.LoadTargetState(e.stateDir, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if st.LastResult != "interrupted" || st.Counters.RunsInterrupted != 1 || st.Failed || st.Counters.RunsFailure != 0 {
		t.Errorf("state: got last result %q, %d interrupted, failed %v, %d failures; want interrupted once, no failure",
			st.LastResult, st.Counters.RunsInterrupted, st.Failed, st.Counters.RunsFailure)
	}
	prom, err := os.ReadFile(e.textfile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(prom), `papyra_compact_runs_total{backend="jsonl",result="interrupted",target="orders"} 1`) ||
		strings.Contains(string(prom), `papyra_compact_target_success{backend="jsonl",target="orders"} 0`) {
		t.Errorf("textfile: want runs_total{result=\"interrupted\"} 1 and no target_success 0:\n%s", prom)
	}
	code, out, _ := runBinary(t, testutil.Binary(t), nil, "status", "--config", e.cfg, "--json")
	var rep struct {
		Failing bool `json:"failing"`
		Targets []struct {
			Result  string `json:"result"`
			Failing bool   `json:"failing"`
		} `json:"targets"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	if code != 0 || rep.Failing || len(rep.Targets) != 1 || rep.Targets[0].Result != "interrupted" || rep.Targets[0].Failing {
		t.Errorf("status: got exit %d, %s; want exit 0 and orders interrupted, not failing", code, out)
	}
}

// TestRun_SIGTERMInterrupts: a run stuck in its work ends within
// --stop-grace of SIGTERM, with exit status 143, and is recorded as
// interrupted, not failed.
func TestRun_SIGTERMInterrupts(t *testing.T) {
	e := newStuckEnv(t)
	cmd, out := e.start(t, "run", "--config", e.cfg, "--stop-grace", "1s", "--no-progress")
	if code := stop(t, cmd, out); code != 143 {
		t.Errorf("exit status: got %d, want 143\n%s", code, out.String())
	}
	if !strings.Contains(out.String(), "orders: interrupted after") || strings.Contains(out.String(), "FAILED") {
		t.Errorf("summary: want orders interrupted, not failed:\n%s", out.String())
	}
	e.interrupted(t)
}

// TestDaemon_SIGTERMInterrupts: the daemon ends within --stop-grace of
// SIGTERM though its compaction is stuck, and records it as interrupted.
func TestDaemon_SIGTERMInterrupts(t *testing.T) {
	e := newStuckEnv(t)
	cmd, out := e.start(t, "daemon", "--config", e.cfg, "--stop-grace", "1s")
	if code := stop(t, cmd, out); code != 0 {
		t.Errorf("exit status: got %d, want 0 (a stopped daemon)\n%s", code, out.String())
	}
	e.interrupted(t)
}
