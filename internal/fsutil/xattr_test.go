package fsutil_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/papyra-compact/papyra-compact/internal/fsutil"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// TestCopyXattrs: dst ends with exactly src's attributes, values byte for
// byte (binary ones too), and loses one src does not have.
func TestCopyXattrs(t *testing.T) {
	dir := t.TempDir()
	src, dst := create(t, filepath.Join(dir, "src")), create(t, filepath.Join(dir, "dst"))
	set(t, src, "user.a", "1")
	set(t, src, "user.big", strings.Repeat("x", 3000)) // past the first read buffer
	set(t, src, "user.bin", "\x00\xff\x01")
	set(t, dst, "user.a", "stale")
	set(t, dst, "user.extra", "not on the original")
	if err := fsutil.CopyXattrs(dst, src); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"user.a": "1", "user.big": strings.Repeat("x", 3000), "user.bin": "\x00\xff\x01"} {
		if got := get(t, dst, name); got != want {
			t.Errorf("%s: got %q, want %q", name, got, want)
		}
	}
	if _, err := unix.Fgetxattr(int(dst.Fd()), "user.extra", make([]byte, 64)); !errors.Is(err, unix.ENODATA) {
		t.Errorf("user.extra still on dst: %v", err)
	}
}

// TestCopyXattrs_Refused: an attribute that cannot be set on dst (here an
// immutable file) fails with ErrXattr naming it.
func TestCopyXattrs_Refused(t *testing.T) {
	if os.Geteuid() != 0 {
		testutil.SkipOrFail(t, "making a file immutable needs root")
	}
	dir := t.TempDir()
	src, dst := create(t, filepath.Join(dir, "src")), create(t, filepath.Join(dir, "dst"))
	set(t, src, "user.papyra", "orders")
	flags, err := unix.IoctlGetUint32(int(dst.Fd()), unix.FS_IOC_GETFLAGS)
	if err != nil {
		testutil.SkipOrFail(t, "FS_IOC_GETFLAGS: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(dst.Fd()), unix.FS_IOC_SETFLAGS, int(flags|fsImmutable)); err != nil {
		testutil.SkipOrFail(t, "FS_IOC_SETFLAGS: %v", err)
	}
	t.Cleanup(func() { _ = unix.IoctlSetPointerInt(int(dst.Fd()), unix.FS_IOC_SETFLAGS, int(flags)) })
	err = fsutil.CopyXattrs(dst, src)
	if !errors.Is(err, fsutil.ErrXattr) || !strings.Contains(err.Error(), "user.papyra") || !strings.Contains(err.Error(), src.Name()) {
		t.Fatalf("got %v, want ErrXattr naming user.papyra and the source", err)
	}
}

func create(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func set(t *testing.T, f *os.File, name, v string) {
	t.Helper()
	if err := unix.Fsetxattr(int(f.Fd()), name, []byte(v), 0); err != nil {
		testutil.SkipOrFail(t, "set %s: %v (no user xattrs on this file system)", name, err)
	}
}

func get(t *testing.T, f *os.File, name string) string {
	t.Helper()
	b := make([]byte, 8192)
	n, err := unix.Fgetxattr(int(f.Fd()), name, b)
	if err != nil {
		t.Fatalf("get %s: %v", name, err)
	}
	return string(b[:n])
}

// fsImmutable is FS_IMMUTABLE_FL (linux/fs.h).
const fsImmutable = 0x10
