package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/papyra-compact/papyra-compact/config"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

func mustWrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func parseConfig(t *testing.T, y string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("/etc/papyra/compact.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestWriteDropins follows check's advice store by store, as the issue's
// operator did: the drop-in written for the second store outside the
// sandbox still has the first (it used to name only the new one, and so
// removed the first), for both units, and it goes away when no longer
// needed. daemon-reload runs only when a file changed.
func TestWriteDropins(t *testing.T) {
	root := t.TempDir()
	units := filepath.Join(testutil.Root(t), "units")
	for _, u := range serviceUnits {
		data, err := os.ReadFile(filepath.Join(units, u))
		if err != nil {
			t.Fatal(err)
		}
		mustWrite(t, filepath.Join(root, "usr/lib/systemd/system", u), string(data))
	}
	// An admin's own drop-in, which must be neither rewritten nor
	// repeated in ours.
	for _, u := range serviceUnits {
		mustWrite(t, filepath.Join(root, "etc/systemd/system", u+".d/10-admin.conf"), "[Service]\nReadWritePaths=/data/admin\n")
	}
	target := func(name, path string) string {
		return "  - {name: " + name + ", kind: jsonl, path: " + path + "}\n"
	}
	steps := []struct {
		name       string
		targets    string
		want       []string // paths both drop-ins name; nil: no drop-in
		wantReload bool
	}{
		{"FirstStore", target("a", "/srv/a/a.jsonl"), []string{"/srv/a"}, true},
		{"SecondStoreKeepsFirst", target("a", "/srv/a/a.jsonl") + target("b", "/srv/b/b.jsonl"), []string{"/srv/a", "/srv/b"}, true},
		{"Unchanged", target("a", "/srv/a/a.jsonl") + target("b", "/srv/b/b.jsonl"), []string{"/srv/a", "/srv/b"}, false},
		{"AdminsPathNotRepeated", target("a", "/srv/a/a.jsonl") + target("c", "/data/admin/c.jsonl"), []string{"/srv/a"}, true},
		{"NoneNeeded", target("a", "/var/lib/papyra/a.jsonl"), nil, true},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			cfg := parseConfig(t, "targets:\n"+st.targets)
			reloaded := false
			var out strings.Builder
			if err := writeDropins(&out, cfg, root, func() error { reloaded = true; return nil }); err != nil {
				t.Fatal(err)
			}
			if reloaded != st.wantReload {
				t.Errorf("daemon-reload: got %v, want %v\n%s", reloaded, st.wantReload, out.String())
			}
			for _, u := range serviceUnits {
				data, err := os.ReadFile(dropinPath(root, u))
				if st.want == nil {
					if !os.IsNotExist(err) {
						t.Errorf("%s: got %q, %v; want no drop-in", u, data, err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("%s: %v", u, err)
				}
				line := "\nReadWritePaths=-" + strings.Join(st.want, " -") + "\n"
				if !strings.Contains(string(data), line) || strings.Count(string(data), "ReadWritePaths=") != 1 {
					t.Errorf("%s: got\n%s\nwant the one line %q", u, data, line)
				}
			}
			// Once written, check has nothing left to warn about.
			var check strings.Builder
			checkSandbox(&check, cfg, root)
			if check.Len() != 0 {
				t.Errorf("check after --write-dropin still warns:\n%s", check.String())
			}
		})
	}
}

// TestCheck_SandboxCompleteDropIn: with a drop-in written for one store,
// adding a second prints a drop-in with both, not only the new one.
func TestCheck_SandboxCompleteDropIn(t *testing.T) {
	root := t.TempDir()
	for _, u := range serviceUnits {
		mustWrite(t, dropinPath(root, u), "[Service]\nReadWritePaths=-/srv/a\n")
	}
	cfg := parseConfig(t, "targets:\n  - {name: a, kind: jsonl, path: /srv/a/a.jsonl}\n  - {name: b, kind: jsonl, path: /srv/b/b.jsonl}\n")
	var out strings.Builder
	checkSandbox(&out, cfg, root)
	got := out.String()
	if strings.Contains(got, "/srv/a  ") || !strings.Contains(got, "/srv/b                                   for target b") {
		t.Errorf("the warning must list only what cannot be written now (/srv/b):\n%s", got)
	}
	if !strings.Contains(got, "# /etc/systemd/system/papyra-compact.service.d/papyra-paths.conf") ||
		!strings.Contains(got, "# /etc/systemd/system/papyra-compact-daemon.service.d/papyra-paths.conf") ||
		strings.Count(got, "    ReadWritePaths=-/srv/a -/srv/b\n") != 2 {
		t.Errorf("want the complete drop-in, both stores:\n%s", got)
	}
}

func TestCheck_MissingStores(t *testing.T) {
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "here.jsonl"), "")
	cfg := filepath.Join(dir, "c.yaml")
	mustWrite(t, cfg, "targets:\n"+
		"  - {name: here, kind: jsonl, path: "+dir+"/here.jsonl}\n"+
		"  - {name: typo, kind: jsonl, path: "+dir+"/hree.jsonl}\n"+
		"  - {name: rot, kind: rotating, path: "+dir+"/nope/audit.log, max_bytes: 1000, max_files: 3}\n"+
		"  - {name: mem, kind: memory}\n")
	code, stdout, stderr := cli(t, "check", "--config", cfg)
	if code != 0 {
		t.Fatalf("exit %d, want 0 (a valid file; the store may come later)\n%s", code, stderr)
	}
	for _, want := range []string{
		"warning: target typo: store " + dir + "/hree.jsonl does not exist",
		"warning: target rot: store " + dir + "/nope/audit.log does not exist",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("got\n%s\nwant %q", stdout, want)
		}
	}
	if strings.Contains(stdout, "target here:") || strings.Contains(stdout, "target mem:") || strings.Count(stdout, "does not exist") != 2 {
		t.Errorf("want warnings for the two missing stores only:\n%s", stdout)
	}
}

func TestCheck_Words(t *testing.T) {
	t.Run("MissingConfigFile", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "none.yaml")
		for _, cmd := range []string{"check", "run"} {
			code, _, stderr := cli(t, cmd, "--config", path)
			if code != 2 || !strings.Contains(stderr, path+" does not exist") || strings.Contains(stderr, "is not valid") {
				t.Errorf("%s: got exit %d, %q; want 2 and that it does not exist", cmd, code, stderr)
			}
		}
	})
	t.Run("Ages", func(t *testing.T) {
		cfg := filepath.Join(t.TempDir(), "c.yaml")
		mustWrite(t, cfg, "targets:\n  - {name: o, kind: memory, retention: {max_age: 30d}}\n")
		if _, stdout, _ := cli(t, "check", "--config", cfg); !strings.Contains(stdout, "retention: max_age=30d") {
			t.Errorf("got %s, want max_age=30d", stdout)
		}
	})
	t.Run("StatusJSONNoTargets", func(t *testing.T) {
		dir := t.TempDir()
		cfg := filepath.Join(dir, "c.yaml")
		mustWrite(t, cfg, "state_dir: "+dir+"/state\nlock_dir: "+dir+"/lock\n")
		code, stdout, stderr := cli(t, "status", "--json", "--config", cfg)
		if code != 0 || !strings.Contains(stdout, `"targets": []`) || !strings.Contains(stdout, `"problems": []`) {
			t.Errorf("got exit %d, %s %s; want \"targets\": []", code, stdout, stderr)
		}
	})
}

func TestScheduleProblem(t *testing.T) {
	st := func(unit, file, active string) unitState {
		return unitState{Unit: unit, LoadState: "loaded", UnitFileState: file, ActiveState: active}
	}
	tests := []struct {
		name         string
		timer, dmn   unitState
		wantProblem  bool
		wantMentions string
	}{
		{"TimerOn", st(timerUnit, "enabled", "active"), st(daemonUnit, "disabled", "inactive"), false, ""},
		{"DaemonOn", st(timerUnit, "disabled", "inactive"), st(daemonUnit, "enabled", "active"), false, ""},
		// The README's old switch: started, never enabled; gone after a reboot.
		{"DaemonStartedNotEnabled", st(timerUnit, "disabled", "inactive"), st(daemonUnit, "disabled", "active"), true, "disabled, active"},
		{"AfterReboot", st(timerUnit, "disabled", "inactive"), st(daemonUnit, "disabled", "inactive"), true, "enable --now"},
		{"TimerEnabledButStopped", st(timerUnit, "enabled", "inactive"), st(daemonUnit, "disabled", "inactive"), true, "enabled, inactive"},
		{"DaemonFailed", st(timerUnit, "disabled", "inactive"), st(daemonUnit, "enabled", "failed"), true, "enabled, failed"},
		{"TimerMasked", st(timerUnit, "masked", "inactive"), st(daemonUnit, "disabled", "inactive"), true, "masked"},
		{"NotInstalled", unitState{Unit: timerUnit, LoadState: "not-found"}, unitState{Unit: daemonUnit, LoadState: "not-found"}, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := &unitsView{Timer: tt.timer, Daemon: tt.dmn}
			p := v.scheduleProblem()
			if (p != "") != tt.wantProblem || !strings.Contains(p, tt.wantMentions) {
				t.Errorf("got %q, want problem %v mentioning %q", p, tt.wantProblem, tt.wantMentions)
			}
		})
	}
	if (*unitsView)(nil).scheduleProblem() != "" {
		t.Error("no systemd: want no problem")
	}
}

// TestCheckTextfileDir: the service user must be able to write the
// directory by its permissions or by the units' CAP_DAC_OVERRIDE.
func TestCheckTextfileDir(t *testing.T) {
	if os.Geteuid() != 0 {
		testutil.SkipOrFail(t, "needs root to chown the directories")
	}
	u := &user.User{Uid: "54321", Gid: "54321", Username: "svc"}
	capUnits := func(t *testing.T, root string, caps bool) {
		for _, unit := range serviceUnits {
			line := "AmbientCapabilities=CAP_CHOWN CAP_FOWNER CAP_DAC_OVERRIDE\n"
			if !caps {
				line = "AmbientCapabilities=CAP_CHOWN\n"
			}
			mustWrite(t, filepath.Join(root, "usr/lib/systemd/system", unit), "[Service]\n"+line)
		}
	}
	tests := []struct {
		name      string
		uid, gid  int
		mode      os.FileMode
		caps      bool
		noDir     bool
		wantWarns bool
	}{
		{"OwnedByService", 54321, 54321, 0o755, false, false, false},
		{"RootOwnedWithCap", 0, 0, 0o755, true, false, false},
		{"RootOwnedNoCap", 0, 0, 0o755, false, false, true},
		{"GroupWritable", 0, 54321, 0o775, false, false, false},
		{"GroupReadOnly", 0, 54321, 0o755, false, false, true},
		{"OwnedButReadOnly", 54321, 0, 0o555, false, false, true},
		{"Missing", 0, 0, 0, true, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			capUnits(t, root, tt.caps)
			dir := filepath.Join(root, "var/lib/prometheus/node-exporter")
			if !tt.noDir {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Chown(dir, tt.uid, tt.gid); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(dir, tt.mode); err != nil {
					t.Fatal(err)
				}
			}
			cfg := parseConfig(t, "metrics:\n  textfile: /var/lib/prometheus/node-exporter/papyra_compact.prom\n")
			var out strings.Builder
			checkTextfileDir(&out, cfg, root, u)
			if got := strings.Contains(out.String(), "warning: metrics.textfile directory /var/lib/prometheus/node-exporter"); got != tt.wantWarns {
				t.Errorf("warns: got %v, want %v\n%s", got, tt.wantWarns, out.String())
			}
		})
	}
}

// TestStatusJSON_MissingSince: a target whose store went missing shows
// when, in the table and the JSON.
func TestStatus_MissingSince(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	mustWrite(t, cfg, "state_dir: "+dir+"/state\nlock_dir: "+dir+"/lock\nquarantine_dir: "+dir+"/q\nmetrics:\n  textfile: \"\"\n"+
		"targets:\n  - {name: typo, kind: jsonl, path: "+dir+"/nope.jsonl}\n")
	for range 2 {
		if code, stdout, stderr := cli(t, "run", "--config", cfg); code != 0 || !strings.Contains(stdout, "nothing to do") {
			t.Fatalf("run: exit %d, %s %s", code, stdout, stderr)
		}
	}
	code, stdout, _ := cli(t, "status", "--json", "--config", cfg)
	var rep statusReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || code != 0 {
		t.Fatalf("exit %d, %v: %s", code, err, stdout)
	}
	if len(rep.Targets) != 1 || rep.Targets[0].MissingSince == nil || rep.Targets[0].LastRun == nil ||
		rep.Targets[0].MissingSince.After(*rep.Targets[0].LastRun) {
		t.Fatalf("got %+v, want missing_since set, at or before the last run", rep.Targets)
	}
	if _, table, _ := cli(t, "status", "--config", cfg); !strings.Contains(table, "store missing since "+rep.Targets[0].MissingSince.Format(time.RFC3339)) {
		t.Errorf("table lacks the missing-since time:\n%s", table)
	}
}

// TestReload runs `papyra-compact reload` (ExecReload=) against a real
// daemon with real signals: it waits for the daemon's verdict and fails,
// naming the problem, when the new file is rejected.
func TestReload(t *testing.T) {
	bin := testutil.Binary(t)
	dir := t.TempDir()
	testutil.CopyFile(t, testutil.Fixture(t, "jsonl/store.jsonl"), filepath.Join(dir, "orders.jsonl"))
	cfg := filepath.Join(dir, "compact.yaml")
	mustWrite(t, cfg, daemonConfig(dir, "orders"))
	cmd := exec.Command(bin, "daemon", "--config", cfg)
	cmd.Env = childEnv()
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("daemon output:\n%s", out.String())
		}
	})
	waitLog(t, out, 10*time.Second, "daemon started")
	pid := strconv.Itoa(cmd.Process.Pid)
	exe := func(args ...string) (int, string, string) {
		c := exec.Command(bin, args...)
		var so, se strings.Builder
		c.Stdout, c.Stderr = &so, &se
		err := c.Run()
		if err != nil && c.ProcessState == nil {
			t.Fatal(err)
		}
		return c.ProcessState.ExitCode(), so.String(), se.String()
	}
	reload := func() (int, string, string) {
		return exe("reload", "--config", cfg, "--pid", pid, "--timeout", "20s")
	}

	// A typo: the watch may see it first; reload still waits for the
	// verdict on its own SIGHUP, and fails with the line.
	replaceFile(t, cfg, daemonConfig(dir, "orders")+"      max_agee: 1d\n")
	code, stdout, stderr := reload()
	if code != 1 || !strings.Contains(stderr, "rejected the new configuration") || !strings.Contains(stderr, "max_agee") {
		t.Errorf("bad config: got exit %d, stdout %q, stderr %q; want 1 and the problem", code, stdout, stderr)
	}
	if n := strings.Count(out.String(), `trigger=SIGHUP`); n == 0 {
		t.Errorf("the daemon logged no SIGHUP reload:\n%s", out.String())
	}
	// status sees the rejection and exits 1 for it.
	code, stdout, _ = exe("status", "--config", cfg)
	if code != 1 || !strings.Contains(stdout, "WARNING: the last configuration reload") || !strings.Contains(stdout, "max_agee") {
		t.Errorf("status after a rejected reload: got exit %d\n%s", code, stdout)
	}

	replaceFile(t, cfg, daemonConfig(dir, "orders", "events"))
	code, stdout, stderr = reload()
	if code != 0 || !strings.Contains(stdout, "configuration reloaded") {
		t.Errorf("good config: got exit %d, stdout %q, stderr %q; want 0", code, stdout, stderr)
	}
	if code, stdout, _ = exe("status", "--config", cfg); code != 0 || strings.Contains(stdout, "WARNING") {
		t.Errorf("status after a good reload: got exit %d\n%s", code, stdout)
	}

	// A daemon that is gone: an error at once, not a wait.
	_ = cmd.Process.Kill()
	<-exited
	exited <- nil
	if code, _, stderr = reload(); code != 1 || !strings.Contains(stderr, "signal the daemon") {
		t.Errorf("dead daemon: got exit %d, %q", code, stderr)
	}
}

// TestManual_Words: the manual (--help and the man page) lists every
// kind and every command's flags, and usage messages spell flags as the
// manual does.
func TestManual_Words(t *testing.T) {
	for _, want := range []string{
		"    jsonl ", "    rotating ", "    redis ", "    memory ",
		"papyra-compact check [--config FILE] [--units] [--write-dropin]",
		"papyra-compact reload [--config FILE]",
		"CONFIGURATION\n", "/etc/papyra/compact.yaml as installed is the annotated reference",
		"journalctl -u papyra-compact -u papyra-compact-daemon PAPYRA_TARGET=orders",
	} {
		if !strings.Contains(manual, want) {
			t.Errorf("manual lacks %q", want)
		}
	}
	for _, cmd := range []string{"run", "daemon", "check", "status", "reload"} {
		code, _, stderr := cli(t, cmd, "--no-such-flag")
		if code != 2 || !strings.Contains(stderr, "  --config FILE\n") || regexp.MustCompile(`(?m)^\s+-[a-z]`).MatchString(stderr) {
			t.Errorf("%s usage: got exit %d,\n%s\nwant --config FILE and no single-dash flag", cmd, code, stderr)
		}
		for _, flagLine := range regexp.MustCompile(`(?m)^  --([a-z-]+)`).FindAllStringSubmatch(stderr, -1) {
			if !strings.Contains(manual, "--"+flagLine[1]) {
				t.Errorf("%s --%s is not in the manual", cmd, flagLine[1])
			}
		}
	}
}
