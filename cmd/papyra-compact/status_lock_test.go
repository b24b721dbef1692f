package main_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/papyra-compact/papyra-compact/agent"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// TestStatus_RedisLockWithoutSecret: `status` learns a target's lock key
// from the configuration alone, so an unprivileged user sees a running
// Redis target whose password_file only the service user may read (status
// once built the backend, which read the secret, failed, and showed the
// target as idle).
func TestStatus_RedisLockWithoutSecret(t *testing.T) {
	if os.Geteuid() != 0 {
		testutil.SkipOrFail(t, "needs root to run status as another user")
	}
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Chmod(dir, 0o755))
	pass := filepath.Join(dir, "redis.pass")
	must(os.WriteFile(pass, []byte("s3cret\n"), 0o600))
	lockDir, stateDir := filepath.Join(dir, "lock"), filepath.Join(dir, "state")
	cfg := filepath.Join(dir, "compact.yaml")
	must(os.WriteFile(cfg, fmt.Appendf(nil, `state_dir: %s
lock_dir: %s
quarantine_dir: %s/quarantine
metrics:
  textfile: ""
targets:
  - name: events
    kind: redis
    addrs: ["127.0.0.1:6399"]
    db: 3
    prefix: app
    password_file: %s
`, stateDir, lockDir, dir, pass), 0o644))
	// The key as redisstream documents it: server, database, prefix, system.
	lock, err := agent.TryLock(lockDir, "redis:127.0.0.1:6399/3/app:local", "events")
	must(err)
	defer lock.Unlock()

	bin := filepath.Join(dir, "papyra-compact")
	testutil.CopyFile(t, testutil.Binary(t), bin)
	must(os.Chmod(bin, 0o755))
	for d := filepath.Dir(dir); d != "/"; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o001 == 0 {
			must(os.Chmod(d, fi.Mode().Perm()|0o001))
		}
	}
	nobody := &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	_, out, errOut := runBinary(t, bin, nobody, "status", "--config", cfg)
	if !strings.Contains(out, "running: pid") {
		t.Errorf("status as nobody: got\n%s%s\nwant the events row to show the lock holder", out, errOut)
	}
}

// TestStatus_BadConfigNamesStateDir: with a configuration that does not
// load, status says which state directory it read instead.
func TestStatus_BadConfigNamesStateDir(t *testing.T) {
	dir := t.TempDir()
	for name, tt := range map[string]struct{ yaml, want string }{
		"StateDirReadable": {"state_dir: " + dir + "/st\ntargets:\n  - name: a\n    kind: nope\n", dir + "/st"},
		"Unparseable":      {":::\n\t- nope", "/var/lib/papyra-compact"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := filepath.Join(dir, name+".yaml")
			if err := os.WriteFile(cfg, []byte(tt.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			_, _, errOut := runBinary(t, testutil.Binary(t), nil, "status", "--config", cfg)
			if !strings.Contains(errOut, "the state directory knows ("+tt.want+")") {
				t.Errorf("stderr %q: want it to name the state directory %s", errOut, tt.want)
			}
		})
	}
}
