package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// lockedBuffer collects a child's stderr while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// daemonConfig is a configuration for jsonl stores under dir, keeping the
// last 500 records of each, compacted hourly (so once, at start).
func daemonConfig(dir string, stores ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "state_dir: %[1]s/state\nlock_dir: %[1]s/lock\nquarantine_dir: %[1]s/q\n"+
		"metrics:\n  textfile: %[1]s/papyra_compact.prom\ndefaults:\n  grace_period: 10ms\n  interval: 1h\ntargets:\n", dir)
	for _, s := range stores {
		fmt.Fprintf(&b, "  - name: %s\n    kind: jsonl\n    path: %s/%s.jsonl\n    retention:\n      max_records: 500\n", s, dir, s)
	}
	return b.String()
}

// replaceFile writes content next to path and renames it over, as
// editors and dpkg do.
func replaceFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".dpkg-new"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// childEnv is the test's environment without anything systemd may have
// set for it, plus extra.
func childEnv(extra ...string) []string {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		for _, k := range []string{"NOTIFY_SOCKET=", "WATCHDOG_USEC=", "WATCHDOG_PID=", "JOURNAL_STREAM="} {
			if strings.HasPrefix(kv, k) {
				return true
			}
		}
		return false
	})
	return append(env, extra...)
}

// TestDaemon_EndToEnd runs the built binary as systemd would run
// papyra-compact-daemon.service, with our socket as the service manager.
func TestDaemon_EndToEnd(t *testing.T) {
	bin := testutil.Binary(t)
	dir := t.TempDir()
	for _, s := range []string{"orders", "events"} {
		testutil.CopyFile(t, testutil.Fixture(t, "jsonl/store.jsonl"), filepath.Join(dir, s+".jsonl"))
	}
	want, err := os.ReadFile(testutil.Fixture(t, "jsonl/expected.max_records-500.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "compact.yaml")
	if err := os.WriteFile(cfg, []byte(daemonConfig(dir, "orders")), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := testutil.NewNotifySocket(t)
	cmd := exec.Command(bin, "daemon", "--config", cfg, "--log-level", "debug", "--stop-grace", "5s")
	cmd.Env = childEnv("NOTIFY_SOCKET="+sock.Path, "WATCHDOG_USEC=1000000")
	stderr := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("daemon output:\n%s", stderr.String())
		}
	})
	const wait = 10 * time.Second
	var all []string // every message, for the watchdog check
	waitFor := func(what string, match func(string) bool) []string {
		t.Helper()
		seen := sock.WaitFor(t, wait, what, match)
		all = append(all, seen...)
		return seen
	}
	is := func(want string) func(string) bool { return func(m string) bool { return m == want } }

	// Start-up: READY=1 once the configuration is loaded, then the
	// first compaction, its progress and the idle status.
	waitFor("READY=1", is("READY=1"))
	seen := waitFor("idle status", testutil.HasPrefix("STATUS=idle, 1 targets, next: orders at "))
	if !slices.ContainsFunc(seen, testutil.HasPrefix("STATUS=orders: ")) {
		t.Errorf("got %q, want a progress status for orders", seen)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "orders.jsonl")); !bytes.Equal(got, want) {
		t.Errorf("orders.jsonl: got %d bytes, want the %d bytes of Papyra's max_records=500 result", len(got), len(want))
	}
	if !strings.Contains(stderr.String(), `msg="run finished" target=orders backend=jsonl outcome=success`) {
		t.Errorf("no run finished entry in the log:\n%s", stderr.String())
	}

	// A new target by rename (dpkg style): the watch reloads, wrapped
	// in RELOADING=1 … READY=1, and the new target is compacted.
	replaceFile(t, cfg, daemonConfig(dir, "orders", "events"))
	waitFor("RELOADING=1", testutil.HasPrefix("RELOADING=1\nMONOTONIC_USEC="))
	waitFor("READY=1 after the reload", is("READY=1"))
	waitFor("idle with both targets", testutil.HasPrefix("STATUS=idle, 2 targets"))
	if got, _ := os.ReadFile(filepath.Join(dir, "events.jsonl")); !bytes.Equal(got, want) {
		t.Errorf("events.jsonl: got %d bytes, want %d: the added target was not compacted", len(got), len(want))
	}

	// A bad file is rejected with its line; the daemon keeps running on
	// the last good configuration and says so in its status.
	replaceFile(t, cfg, daemonConfig(dir, "orders", "events")+"      max_agee: 1d\n")
	waitFor("failed reload status", func(m string) bool {
		return strings.HasPrefix(m, "STATUS=") && strings.Contains(m, "config reload failed") &&
			strings.Contains(m, cfg+":20: targets[1].retention.max_agee: unknown field")
	})
	if !strings.Contains(stderr.String(), "line=20 field=targets[1].retention.max_agee") {
		t.Errorf("the rejection is not logged with its line and field:\n%s", stderr.String())
	}

	// SIGHUP (systemctl reload) reloads even when the file did not
	// change; fixing the file first makes it succeed.
	if err := os.WriteFile(cfg, []byte(daemonConfig(dir, "orders", "events")), 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // let the watch's reload pass
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor("RELOADING=1 on SIGHUP", testutil.HasPrefix("RELOADING=1\n"))
	waitFor("READY=1 after SIGHUP", is("READY=1"))
	waitLog(t, stderr, wait, "trigger=SIGHUP targets=2")

	// SIGTERM: STOPPING=1 and a clean exit 0.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor("STOPPING=1", is("STOPPING=1"))
	select {
	case err := <-exited:
		exited <- err // for the cleanup
		if err != nil {
			t.Errorf("exit: got %v, want status 0", err)
		}
	case <-time.After(wait):
		t.Fatal("the daemon did not exit after SIGTERM")
	}
	if n := slices.Index(all, "WATCHDOG=1"); n < 0 {
		t.Errorf("got %q, want WATCHDOG=1 pings from the loop (WATCHDOG_USEC=1s)", all)
	}
	if _, err := os.Stat(filepath.Join(dir, "papyra_compact.prom")); err != nil {
		t.Errorf("metrics textfile: %v", err)
	}
}

func waitLog(t *testing.T, out *lockedBuffer, timeout time.Duration, want string) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !strings.Contains(out.String(), want); {
		if time.Now().After(deadline) {
			t.Fatalf("log line with %q not seen within %v", want, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestDaemon_BadConfigExits2(t *testing.T) {
	path := filepath.Join(t.TempDir(), "compact.yaml")
	if err := os.WriteFile(path, []byte("targets:\n  - {name: a, kind: memory, interval: 0s}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"Invalid", []string{"daemon", "--config", path}, path + ":2: targets[0].interval: must be at least 1s"},
		{"Missing", []string{"daemon", "--config", path + ".nope"}, path + ".nope does not exist"},
		{"BadFlag", []string{"daemon", "--stop-grace", "-1s"}, "--stop-grace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := cli(t, tt.args...)
			if code != 2 || !strings.Contains(stderr, tt.want) {
				t.Errorf("got exit %d, stderr %q; want 2 and %q", code, stderr, tt.want)
			}
		})
	}
}
