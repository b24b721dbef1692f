package testutil

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// User is a system user a test created.
type User struct {
	Name     string
	UID, GID int
}

// NewUser creates a real system user with a unique name (useradd, no
// home, no login shell) and deletes it when t ends. It needs root; where
// that or useradd is missing it skips (fails under CI).
func NewUser(t testing.TB) User {
	t.Helper()
	if os.Geteuid() != 0 {
		SkipOrFail(t, "creating users needs root")
	}
	useradd, err := exec.LookPath("useradd")
	if err != nil {
		SkipOrFail(t, "useradd not found: %v", err)
	}
	var b [5]byte
	_, _ = rand.Read(b[:])
	name := "pct-" + hex.EncodeToString(b[:])
	out, err := exec.Command(useradd, "--system", "--no-create-home", "--user-group", "--shell", "/usr/sbin/nologin", name).CombinedOutput()
	if err != nil {
		t.Fatalf("useradd %s: %v\n%s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("userdel", name).CombinedOutput(); err != nil {
			t.Errorf("userdel %s: %v\n%s", name, err, out)
		}
	})
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatalf("look up the new user %s: %v", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return User{Name: name, UID: uid, GID: gid}
}

// Own gives path (not what a symlink there points to) to u, with the
// mode when it is not a symlink.
func (u User) Own(t testing.TB, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Lchown(path, u.UID, u.GID); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSymlink == 0 {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
	}
}

// Flipper swaps two names in one directory with renameat2(RENAME_EXCHANGE)
// in a tight loop, as an attacker racing the agent would: each exchange is
// atomic, so the names flip between what they held.
type Flipper struct {
	stop  chan struct{}
	done  chan struct{}
	flips int
	err   error
}

// StartFlipper starts flipping names a and b of dir (held open, so that
// the flipper keeps working in that directory whatever is renamed above
// it). Stop it with Stop.
func StartFlipper(t testing.TB, dir, a, b string) *Flipper {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := &Flipper{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(f.done)
		defer unix.Close(fd)
		for {
			select {
			case <-f.stop:
				if f.flips%2 == 1 { // put the names back as they were, if both are still there
					if err := unix.Renameat2(fd, a, fd, b, unix.RENAME_EXCHANGE); err != nil && err != unix.ENOENT {
						f.err = err
					}
					f.flips++
				}
				return
			default:
			}
			switch err := unix.Renameat2(fd, a, fd, b, unix.RENAME_EXCHANGE); err {
			case nil:
				f.flips++
			case unix.ENOENT:
				// The run under attack moved one of the names away for a
				// moment (a segment it drops or rotates): keep trying.
			default:
				f.err = err
				return
			}
		}
	}()
	return f
}

// Stop stops the flipper, leaving the names as they were before it
// started (unless one of them is gone by then), and returns how many
// exchanges it made.
func (f *Flipper) Stop(t testing.TB) int {
	t.Helper()
	close(f.stop)
	<-f.done
	if f.err != nil {
		t.Fatalf("flipper: %v", f.err)
	}
	return f.flips
}
