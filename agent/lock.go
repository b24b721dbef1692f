package agent

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/papyra-compact/papyra-compact/backends"
)

// Lock is an exclusive flock(2) on one store's lock file.
//
// Guarantees: at most one papyra-compact process per machine works on a
// store at a time, whatever target names point at it, because the lock
// file is named after the store's resolved real path. The kernel drops the
// lock when the process dies, even by SIGKILL, so a crashed run never
// blocks the next one. Not guaranteed: exclusion against Papyra itself
// (it takes no file locks, §8.1) or against agents on other hosts sharing
// the store (flock over NFS is not reliable; Redis targets use a lease).
//
// Lock files live in the lock directory, never next to the store (Papyra's
// scan reports <store>* files), and are never deleted: unlinking a lock
// file another process is waiting on would let two runs hold "the" lock.
type Lock struct {
	f    *os.File
	path string
}

// LockPath returns the lock file for a store key.
func LockPath(dir, key string) string {
	sum := sha256.Sum256([]byte(key))
	name := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, filepath.Base(key))
	if len(name) > 64 {
		name = name[:64]
	}
	return filepath.Join(dir, name+"-"+hex.EncodeToString(sum[:8])+".lock")
}

// TryLock takes the lock for key without waiting. When another process
// holds it, the error wraps backends.ErrLocked and names the holder.
func TryLock(dir, key, target string) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create lock directory %s: %w", dir, err)
	}
	path := LockPath(dir, key)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s: %w (%s)", key, backends.ErrLocked, ReadHolder(path))
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	// Say who holds it, for `status` and for the skipped run's message.
	holder := fmt.Sprintf("pid %d, target %s, since %s\n", os.Getpid(), target, time.Now().UTC().Format(time.RFC3339))
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(holder), 0)
	}
	return &Lock{f: f, path: path}, nil
}

// ReadHolder describes the process holding the lock file at path.
func ReadHolder(path string) string {
	b, err := os.ReadFile(path)
	if err != nil || len(strings.TrimSpace(string(b))) == 0 {
		return "holder unknown"
	}
	return "held by " + strings.TrimSpace(string(b))
}

// Held reports whether some process holds the lock file at path now.
func Held(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB); err != nil {
		return true
	}
	_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return false
}

// Unlock releases the lock. The holder line is cleared first so that a
// stale name is never shown for a free lock.
func (l *Lock) Unlock() error {
	_ = l.f.Truncate(0)
	return l.f.Close() // closing the last descriptor releases the flock
}
