//go:build e2esystemd

// The end-to-end test under a real systemd: a Debian 12 rootfs booted
// with systemd-nspawn (--volatile=overlay, so every run starts from the
// same machine), driven with nsenter. `make e2e-systemd` builds the rootfs
// and runs it; `make e2e` (in CI) runs it in a container it booted
// itself, named by PAPYRA_E2E_LEADER (its PID 1 as the host sees it).
// Both need root.

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/papyra-compact/papyra-compact/agent"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// machine is a booted container.
type machine struct {
	t      *testing.T
	leader int // the container's PID 1, as the host sees it
}

// boot starts the rootfs under systemd-nspawn with host dirs bound in,
// and stops it when the test ends.
func boot(t *testing.T, rootfs string, binds map[string]string) *machine {
	t.Helper()
	args := []string{"-D", rootfs, "--volatile=overlay", "--boot", "--register=no", "--keep-unit",
		"--console=read-only", "--machine=papyra-e2e-" + strconv.Itoa(os.Getpid())}
	for host, inside := range binds {
		args = append(args, "--bind-ro="+host+":"+inside)
	}
	cmd := exec.Command("systemd-nspawn", args...)
	var console bytes.Buffer
	cmd.Stdout, cmd.Stderr = &console, &console
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("systemd-nspawn: %v", err)
	}
	m := &machine{t: t}
	t.Cleanup(func() {
		if m.leader > 0 {
			_ = syscall.Kill(m.leader, syscall.Signal(34+4)) // SIGRTMIN+4: systemd powers off
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("console:\n%s", console.String())
		}
		// Without a host systemd, nspawn leaves its cgroups behind;
		// remove the empty ones (a busy one, another container's,
		// refuses).
		for _, top := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup/systemd"} {
			for _, sub := range []string{"payload", "supervisor"} {
				var dirs []string
				_ = filepath.WalkDir(filepath.Join(top, sub), func(p string, d os.DirEntry, err error) error {
					if err == nil && d.IsDir() {
						dirs = append(dirs, p)
					}
					return nil
				})
				for i := len(dirs) - 1; i >= 0; i-- {
					_ = syscall.Rmdir(dirs[i])
				}
			}
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for m.leader == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("container did not start:\n%s", console.String())
		}
		out, _ := exec.Command("pgrep", "-P", strconv.Itoa(cmd.Process.Pid), "-x", "systemd").Output()
		m.leader, _ = strconv.Atoi(strings.TrimSpace(string(out)))
		time.Sleep(50 * time.Millisecond)
	}
	for {
		state, _ := m.try("systemctl", "is-system-running")
		if state == "running" || state == "degraded" {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("system not running: %q\n%s", state, console.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// on returns m reporting to t, for use in a subtest.
func (m *machine) on(t *testing.T) *machine {
	c := *m
	c.t = t
	return &c
}

// try runs a command in the container and returns its trimmed output.
func (m *machine) try(args ...string) (string, error) {
	cmd := exec.Command("nsenter", append([]string{"--target", strconv.Itoa(m.leader), "--all"}, args...)...)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// run runs a command in the container and fails the test if it fails.
func (m *machine) run(args ...string) string {
	m.t.Helper()
	out, err := m.try(args...)
	if err != nil {
		m.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (m *machine) sh(script string) string {
	m.t.Helper()
	return m.run("/bin/sh", "-ec", script)
}

// show returns a unit property.
func (m *machine) show(unit, prop string) string {
	m.t.Helper()
	return m.run("systemctl", "show", "-P", prop, unit)
}

// await polls cond until it holds.
func (m *machine) await(timeout time.Duration, what string, cond func() bool) {
	m.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			out, _ := m.try("journalctl", "--no-pager", "-n", "60")
			m.t.Fatalf("not within %v: %s\njournal:\n%s", timeout, what, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// journal returns the JSON entries journalctl selects with args.
func (m *machine) journal(args ...string) []map[string]any {
	m.t.Helper()
	out := m.run(append([]string{"journalctl", "--no-pager", "-o", "json"}, args...)...)
	var entries []map[string]any
	for _, line := range strings.Split(out, "\n") {
		var e map[string]any
		if json.Unmarshal([]byte(line), &e) == nil {
			entries = append(entries, e)
		}
	}
	return entries
}

const e2eConfig = `metrics:
  textfile: /var/lib/prometheus/node-exporter/papyra_compact.prom
defaults:
  grace_period: 100ms
  interval: 1h
targets:
%s`

func e2eTargets(names ...string) string {
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "  - name: %s\n    kind: jsonl\n    path: /var/lib/papyra/%s.jsonl\n    retention:\n      max_records: 500\n", n, n)
	}
	return fmt.Sprintf(e2eConfig, b.String())
}

// attach returns the container whose PID 1 is leader (already booted by
// `make e2e`), with the host dirs in binds copied in, since a running
// container cannot get new bind mounts.
func attach(t *testing.T, leader int, binds map[string]string) *machine {
	t.Helper()
	m := &machine{t: t, leader: leader}
	for host, inside := range binds {
		dst := filepath.Join(fmt.Sprintf("/proc/%d/root", leader), inside)
		if out, err := exec.Command("cp", "-rT", host, dst).CombinedOutput(); err != nil {
			t.Fatalf("copy %s into the container: %v\n%s", host, err, out)
		}
	}
	if state, _ := m.try("systemctl", "is-system-running"); state != "running" && state != "degraded" {
		t.Fatalf("container %d: system %q", leader, state)
	}
	return m
}

func TestSystemd(t *testing.T) {
	rootfs := os.Getenv("PAPYRA_E2E_ROOTFS")
	leader, _ := strconv.Atoi(os.Getenv("PAPYRA_E2E_LEADER"))
	if rootfs == "" && leader == 0 {
		testutil.SkipOrFail(t, "neither PAPYRA_E2E_ROOTFS nor PAPYRA_E2E_LEADER is set (make e2e-systemd and make e2e set them)")
	}
	if os.Geteuid() != 0 {
		testutil.SkipOrFail(t, "needs root for systemd-nspawn")
	}
	bin := testutil.Binary(t, "failpoints") // PAPYRA_FAILPOINT makes the loop stuck
	stage := t.TempDir()
	testutil.CopyFile(t, bin, filepath.Join(stage, "papyra-compact"))
	testutil.CopyFile(t, testutil.Fixture(t, "jsonl/store.jsonl"), filepath.Join(stage, "store.jsonl"))
	binds := map[string]string{
		stage:                                    "/opt/e2e",
		filepath.Join(testutil.Root(t), "units"): "/opt/e2e-units",
	}
	var m *machine
	if leader != 0 {
		m = attach(t, leader, binds)
	} else {
		m = boot(t, rootfs, binds)
	}

	// Install as a package would: the binary, the units, the system user;
	// a store owned by the application's own user, readable only by it.
	m.sh(`install -m 0755 /opt/e2e/papyra-compact /usr/bin/papyra-compact
cp /opt/e2e-units/* /etc/systemd/system/
useradd --system --no-create-home --shell /usr/sbin/nologin papyra-compact
useradd --system --no-create-home app
mkdir -p /etc/papyra /var/lib/papyra /var/lib/prometheus/node-exporter
chown app:app /var/lib/papyra && chmod 0750 /var/lib/papyra
systemctl daemon-reload`)
	layStore := func(m *machine, name string) {
		m.sh(fmt.Sprintf(`install -o app -g app -m 0640 /opt/e2e/store.jsonl /var/lib/papyra/%s.jsonl`, name))
	}
	// A new configuration arrives as dpkg installs one: by rename. It is
	// written straight into the container's file system (bind mounts
	// cannot be added to a running container).
	writeConfig := func(m *machine, content string) {
		path := fmt.Sprintf("/proc/%d/root/etc/papyra/compact.yaml.dpkg-new", m.leader)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			m.t.Fatal(err)
		}
		m.sh(`mv /etc/papyra/compact.yaml.dpkg-new /etc/papyra/compact.yaml`)
	}
	layStore(m, "orders")
	writeConfig(m, e2eTargets("orders"))

	t.Run("VerifyInstalled", func(t *testing.T) {
		m := m.on(t)
		out, err := m.try("systemd-analyze", "verify", "--man=no",
			"papyra-compact.service", "papyra-compact.timer", "papyra-compact-daemon.service")
		if err != nil || out != "" {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		}
	})

	t.Run("TimerPass", func(t *testing.T) {
		m := m.on(t)
		// Type=oneshot: start returns once the pass is over.
		m.run("systemctl", "start", "papyra-compact.service")
		if got := m.show("papyra-compact.service", "ActiveState"); got != "inactive" {
			t.Errorf("after systemctl start: got %v, want inactive (the pass is over)", got)
		}
		if got := m.show("papyra-compact.service", "Result"); got != "success" {
			t.Errorf("Result: got %v, want success", got)
		}
		if got := m.run("wc", "-l", "/var/lib/papyra/orders.jsonl"); !strings.HasPrefix(got, "500 ") {
			t.Errorf("store lines: got %v, want 500", got)
		}
		// The replacement kept the application's owner and mode: the
		// capabilities in the unit did their job under the sandbox.
		if got := m.run("stat", "-c", "%U:%G %a", "/var/lib/papyra/orders.jsonl"); got != "app:app 640" {
			t.Errorf("owner and mode: got %v, want app:app 640", got)
		}
		entries := m.journal("PAPYRA_TARGET=orders", "MESSAGE_ID="+agent.MessageIDRunFinished)
		if len(entries) != 1 {
			t.Fatalf("journal entries for orders: got %d, want 1", len(entries))
		}
		e := entries[0]
		for k, want := range map[string]string{
			"_SYSTEMD_UNIT": "papyra-compact.service", "PAPYRA_BACKEND": "jsonl",
			"PAPYRA_RECORDS_REMOVED": "1500", "PRIORITY": "6", "_TRANSPORT": "journal",
		} {
			if got := fmt.Sprint(e[k]); got != want {
				t.Errorf("%s: got %v, want %v", k, got, want)
			}
		}
		for _, k := range []string{"PAPYRA_BYTES_RECLAIMED", "PAPYRA_DURATION_MS"} {
			if _, ok := e[k]; !ok {
				t.Errorf("%s: missing from %v", k, e)
			}
		}
		if out := m.run("cat", "/var/lib/prometheus/node-exporter/papyra_compact.prom"); !strings.Contains(out, "papyra_compact_") {
			t.Errorf("textfile: got %q", out)
		}
		m.run("systemctl", "start", "papyra-compact.timer")
		if out := m.run("systemctl", "list-timers", "--all", "--no-pager", "papyra-compact.timer"); !strings.Contains(out, "papyra-compact.service") {
			t.Errorf("list-timers: got %s", out)
		}
	})

	t.Run("Daemon", func(t *testing.T) {
		m := m.on(t)
		layStore(m, "orders")
		m.run("systemctl", "start", "papyra-compact-daemon.service")
		if got := m.show("papyra-compact.timer", "ActiveState"); got != "inactive" {
			t.Errorf("timer: got %v, want inactive (Conflicts=)", got)
		}
		m.await(30*time.Second, "idle status after the first compaction", func() bool {
			return strings.HasPrefix(m.show("papyra-compact-daemon.service", "StatusText"), "idle, 1 targets")
		})

		// A bad file: rejected, logged with its line, the service runs on.
		writeConfig(m, e2eTargets("orders")+"      max_agee: 1d\n")
		m.await(30*time.Second, "the failed reload in the status", func() bool {
			return strings.Contains(m.show("papyra-compact-daemon.service", "StatusText"), "config reload failed")
		})
		if got := m.show("papyra-compact-daemon.service", "ActiveState"); got != "active" {
			t.Errorf("after a bad config: got %v, want active", got)
		}
		if e := m.journal("-u", "papyra-compact-daemon", "PAPYRA_FIELD=targets[0].retention.max_agee"); len(e) == 0 || fmt.Sprint(e[0]["PAPYRA_LINE"]) != "12" {
			t.Errorf("rejection in the journal: got %v, want PAPYRA_LINE=12", e)
		}

		// systemctl reload of the bad file fails (ExecReload= waits for
		// the daemon's verdict), and the daemon runs on.
		if out, err := m.try("systemctl", "reload", "papyra-compact-daemon.service"); err == nil {
			t.Errorf("systemctl reload of a bad config succeeded: %s", out)
		}
		if got := m.show("papyra-compact-daemon.service", "ActiveState"); got != "active" {
			t.Errorf("after a failed reload: got %v, want active", got)
		}

		// A good one, applied by systemctl reload.
		layStore(m, "events")
		writeConfig(m, e2eTargets("orders", "events"))
		m.run("systemctl", "reload", "papyra-compact-daemon.service")
		m.await(30*time.Second, "both targets scheduled", func() bool {
			return strings.HasPrefix(m.show("papyra-compact-daemon.service", "StatusText"), "idle, 2 targets")
		})
		if got := m.run("wc", "-l", "/var/lib/papyra/events.jsonl"); !strings.HasPrefix(got, "500 ") {
			t.Errorf("events lines: got %v, want 500", got)
		}

		m.run("systemctl", "stop", "papyra-compact-daemon.service")
		if got := m.show("papyra-compact-daemon.service", "Result"); got != "success" {
			t.Errorf("stop Result: got %v, want success", got)
		}
	})

	t.Run("WatchdogKillsStuckLoop", func(t *testing.T) {
		m := m.on(t)
		m.sh(`mkdir -p /run/systemd/system/papyra-compact-daemon.service.d
cat > /run/systemd/system/papyra-compact-daemon.service.d/stuck.conf <<EOF
[Service]
Environment=PAPYRA_FAILPOINT=scheduler-loop:sleep=1h
WatchdogSec=3s
RestartSec=1s
EOF
systemctl daemon-reload`)
		m.run("systemctl", "start", "papyra-compact-daemon.service")
		m.await(30*time.Second, "a watchdog restart", func() bool {
			n, _ := strconv.Atoi(m.show("papyra-compact-daemon.service", "NRestarts"))
			return n >= 1
		})
		out := m.run("journalctl", "--no-pager", "-o", "short-precise", "-u", "papyra-compact-daemon", "_PID=1")
		t.Logf("systemd on the daemon:\n%s", out)
		if !strings.Contains(out, "Watchdog timeout") {
			t.Errorf("journal: no watchdog timeout:\n%s", out)
		}
		// The restarted one is stuck too and would not heed SIGTERM.
		m.sh(`rm -r /run/systemd/system/papyra-compact-daemon.service.d; systemctl daemon-reload
systemctl kill --signal=SIGKILL papyra-compact-daemon.service; systemctl stop papyra-compact-daemon.service`)
	})
}
