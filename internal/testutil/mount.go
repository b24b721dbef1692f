package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/papyra-compact/papyra-compact/internal/fsutil"
)

// Tmpfs mounts a tmpfs of size (a mount option value: "20m", "96k") on a
// new temp directory and returns it; it is unmounted when the test ends.
// It needs root (CI runs as root): otherwise SkipOrFail.
func Tmpfs(t testing.TB, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		SkipOrFail(t, "mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		SkipOrFail(t, "mount tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

// FreeBytes is what an unprivileged writer may still write on dir's file
// system, as the agent judges it (fsutil.Usable).
func FreeBytes(t testing.TB, dir string) int64 {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	avail, _ := fsutil.Usable(&st)
	return avail
}

// Ext4 makes an ext4 file system of size bytes with reserved% of its
// blocks reserved for root (mkfs.ext4 -m), mounts it through a loop
// device on a new temp directory and returns it; it is unmounted when the
// test ends. It needs root and mkfs.ext4 (e2fsprogs): otherwise
// SkipOrFail.
func Ext4(t testing.TB, size int64, reserved int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		SkipOrFail(t, "mounting a loop device needs root")
	}
	img := filepath.Join(t.TempDir(), "fs.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, size); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-m", strconv.Itoa(reserved), img).CombinedOutput(); err != nil {
		SkipOrFail(t, "mkfs.ext4: %v\n%s", err, out)
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-o", "loop", img, dir).CombinedOutput(); err != nil {
		SkipOrFail(t, "mount -o loop: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", dir).Run() })
	return dir
}
