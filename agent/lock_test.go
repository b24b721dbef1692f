package agent_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/papyra-compact/papyra-compact/agent"
	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

func TestTryLock(t *testing.T) {
	dir := t.TempDir()
	l, err := agent.TryLock(dir, "/var/lib/papyra/orders.jsonl", "orders")
	if err != nil {
		t.Fatalf("first TryLock: %v", err)
	}
	path := agent.LockPath(dir, "/var/lib/papyra/orders.jsonl")
	if !agent.Held(path) {
		t.Errorf("Held after TryLock: got false, want true")
	}
	t.Run("ErrLocked", func(t *testing.T) {
		_, err := agent.TryLock(dir, "/var/lib/papyra/orders.jsonl", "orders-alias")
		if !errors.Is(err, backends.ErrLocked) {
			t.Fatalf("second TryLock: got %v, want ErrLocked", err)
		}
		if !strings.Contains(err.Error(), "target orders") {
			t.Errorf("error %q does not name the holder", err)
		}
	})
	t.Run("OtherStoreFree", func(t *testing.T) {
		o, err := agent.TryLock(dir, "/var/lib/papyra/other.jsonl", "other")
		if err != nil {
			t.Fatalf("TryLock on another store: %v", err)
		}
		o.Unlock()
	})
	t.Run("OtherProcess", func(t *testing.T) {
		// flock(1) in another process sees the lock too.
		if _, err := exec.LookPath("flock"); err != nil {
			testutil.SkipOrFail(t, "flock(1) not installed (util-linux)")
		}
		out, err := exec.Command("flock", "-n", path, "true").CombinedOutput()
		if err == nil {
			t.Errorf("flock -n succeeded while the lock was held: %s", out)
		}
	})
	if err := l.Unlock(); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	if agent.Held(path) {
		t.Errorf("Held after Unlock: got true, want false")
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("lock file removed on Unlock (it must stay): %v", err)
	}
	if filepath.Dir(path) != dir {
		t.Errorf("lock file %s is outside the lock dir %s", path, dir)
	}
}
