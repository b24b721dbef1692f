package main_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/papyra-compact/papyra-compact/agent"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// holdStoreLock takes the orders store's lock as a running compaction
// would, and returns its release.
func holdStoreLock(t *testing.T, env e2eEnv) func() {
	t.Helper()
	key, err := filepath.EvalSymlinks(env.orders) // jsonl's lock key: the store's real path
	if err != nil {
		t.Fatal(err)
	}
	lock, err := agent.TryLock(env.lockDir, key, "orders")
	if err != nil {
		t.Fatal(err)
	}
	released := false
	release := func() {
		if !released {
			released = true
			_ = lock.Unlock()
		}
	}
	t.Cleanup(release)
	return release
}

// statusJSON is the part of `status --json` the tests read.
type statusJSON struct {
	Failing bool `json:"failing"`
	Targets []struct {
		Target          string   `json:"target"`
		Backend         string   `json:"backend"`
		Result          string   `json:"result"`
		Failing         bool     `json:"failing"`
		LastRun         *string  `json:"last_run"`
		DurationSeconds *float64 `json:"duration_seconds"`
		Removed         *int64   `json:"removed"`
		ReclaimedBytes  *int64   `json:"reclaimed_bytes"`
		StoreSizeBytes  *int64   `json:"store_size_bytes"`
		OldestRecord    *string  `json:"oldest_record"`
		NextRun         *string  `json:"next_run"`
		Running         bool     `json:"running"`
		LockHolder      string   `json:"lock_holder"`
		LastError       string   `json:"last_error"`
		Counters        struct {
			RunsSuccess uint64 `json:"runs_success"`
			RunsFailure uint64 `json:"runs_failure"`
		} `json:"counters"`
	} `json:"targets"`
}

// TestStatus_RealRuns reads the state that real runs wrote: a target
// that succeeded, one that failed (its path is a directory), and one that
// never ran; while a run holds a lock; and as an unprivileged user.
func TestStatus_RealRuns(t *testing.T) {
	env := newE2EEnv(t, 1)
	bin := testutil.Binary(t)

	t.Run("BeforeAnyRun", func(t *testing.T) {
		code, out, errOut := runBinary(t, bin, nil, "status", "--config", env.cfg)
		if code != 0 || !strings.Contains(out, "never run") {
			t.Errorf("got exit %d, want 0 and \"never run\":\n%s%s", code, out, errOut)
		}
	})

	// Two passes over every target but s0, so the counters add up.
	for range 2 {
		args := []string{"run", "--config", env.cfg, "--now", "1795000000"}
		for _, tg := range env.targets {
			if tg != "s0" {
				args = append(args, "--target", tg)
			}
		}
		if code, out, errOut := runBinary(t, bin, nil, args...); code != 1 {
			t.Fatalf("run: got exit %d, want 1\n%s%s", code, out, errOut)
		}
	}

	t.Run("Table", func(t *testing.T) {
		code, out, errOut := runBinary(t, bin, nil, "status", "--config", env.cfg)
		if code != 1 {
			t.Errorf("got exit %d, want 1 (a target failed)\n%s", code, errOut)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 1+len(env.targets) {
			t.Fatalf("got %d lines, want a header and %d targets:\n%s", len(lines), len(env.targets), out)
		}
		for _, want := range []string{"TARGET", "LAST RUN", "RESULT", "REMOVED", "RECLAIMED", "STORE SIZE", "OLDEST RECORD", "NEXT RUN", "LOCK", "LAST ERROR"} {
			if !strings.Contains(lines[0], want) {
				t.Errorf("header lacks %q: %s", want, lines[0])
			}
		}
		row := func(target string) string {
			for _, l := range lines[1:] {
				if strings.HasPrefix(l, target+" ") {
					return l
				}
			}
			t.Fatalf("no row for %s:\n%s", target, out)
			return ""
		}
		for target, wants := range map[string][]string{
			"orders": {"jsonl", "success", "KiB", "2026-11-"},
			"broken": {"failure", "not a regular file (drwx"},
			"cache":  {"memory", "success"},
			"s0":     {"never run"},
		} {
			for _, w := range wants {
				if r := row(target); !strings.Contains(r, w) {
					t.Errorf("%s row lacks %q: %s", target, w, r)
				}
			}
		}
	})

	t.Run("JSON", func(t *testing.T) {
		code, out, _ := runBinary(t, bin, nil, "status", "--config", env.cfg, "--json")
		if code != 1 {
			t.Errorf("got exit %d, want 1", code)
		}
		var st statusJSON
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatalf("%v:\n%s", err, out)
		}
		if !st.Failing || len(st.Targets) != len(env.targets) {
			t.Fatalf("got failing %v and %d targets, want true and %d", st.Failing, len(st.Targets), len(env.targets))
		}
		byName := map[string]int{}
		for i, tg := range st.Targets {
			byName[tg.Target] = i
		}
		o, b, s := st.Targets[byName["orders"]], st.Targets[byName["broken"]], st.Targets[byName["s0"]]
		if o.Result != "success" || o.Failing || o.Counters.RunsSuccess != 2 || o.Removed == nil || *o.Removed != 0 ||
			o.StoreSizeBytes == nil || *o.StoreSizeBytes <= 0 || o.OldestRecord == nil || o.NextRun != nil || o.Running {
			t.Errorf("orders: got %+v", o)
		}
		if b.Result != "failure" || !b.Failing || b.Counters.RunsFailure != 2 || !strings.Contains(b.LastError, "not a regular file") || b.StoreSizeBytes != nil {
			t.Errorf("broken: got %+v", b)
		}
		if s.Result != "" || s.LastRun != nil || s.Failing {
			t.Errorf("s0: got %+v", s)
		}
	})

	t.Run("LockHolder", func(t *testing.T) {
		release := holdStoreLock(t, env)
		defer release()
		_, out, _ := runBinary(t, bin, nil, "status", "--config", env.cfg)
		want := fmt.Sprintf("running: pid %d, target orders", os.Getpid())
		if !strings.Contains(out, want) {
			t.Errorf("got\n%s\nwant %q on the orders row", out, want)
		}
	})

	t.Run("WithoutRoot", func(t *testing.T) {
		var attr *syscall.SysProcAttr
		runAs := bin
		if os.Geteuid() == 0 {
			// Run as nobody: the binary and every directory on the way
			// must be reachable by others, as /usr/bin and /var/lib are.
			runAs = filepath.Join(env.dir, "papyra-compact")
			testutil.CopyFile(t, bin, runAs)
			for _, p := range []string{runAs, env.dir, filepath.Dir(env.dir)} {
				if err := os.Chmod(p, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			attr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		}
		release := holdStoreLock(t, env)
		defer release()
		code, out, errOut := runBinary(t, runAs, attr, "status", "--config", env.cfg)
		if code != 1 || !strings.Contains(out, "not a regular file") || !strings.Contains(out, "running: pid") || errOut != "" {
			t.Errorf("got exit %d, stdout\n%s\nstderr %q; want exit 1, the error, the lock holder, no complaint", code, out, errOut)
		}
	})

	t.Run("CorruptStateFile", func(t *testing.T) {
		// Reported, and the other targets still shown.
		if err := os.WriteFile(agent.TargetStatePath(env.stateDir, "s0"), []byte("{torn"), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Remove(agent.TargetStatePath(env.stateDir, "s0")) })
		code, out, errOut := runBinary(t, bin, nil, "status", "--config", env.cfg)
		if code != 1 || !strings.Contains(errOut, "s0.json") || !strings.Contains(out, "orders ") {
			t.Errorf("got exit %d, stdout\n%s\nstderr %s", code, out, errOut)
		}
	})

	t.Run("StateDirOnly", func(t *testing.T) {
		// No configuration: every target the state directory knows.
		code, out, errOut := runBinary(t, bin, nil, "status", "--config", filepath.Join(env.dir, "missing.yaml"), "--state-dir", env.stateDir)
		if code != 1 || !strings.Contains(errOut, "listing the targets the state directory knows") ||
			!strings.Contains(out, "broken") || strings.Contains(out, "s0 ") {
			t.Errorf("got exit %d, stdout\n%s\nstderr %s", code, out, errOut)
		}
	})
}
