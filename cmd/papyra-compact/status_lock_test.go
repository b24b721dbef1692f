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
