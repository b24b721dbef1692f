package fsutil_test

import (
	"errors"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/papyra-compact/papyra-compact/internal/fsutil"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

func TestCheckSpace(t *testing.T) {
	dir := t.TempDir()
	if err := fsutil.CheckSpace(dir, 0); err != nil {
		t.Fatalf("nothing to write: %v", err)
	}
	err := fsutil.CheckSpace(dir, 1<<60)
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "needs 1.0 EiB in "+dir) {
		t.Fatalf("an exabyte: got %v, want ENOSPC naming the need and the directory", err)
	}
	if err := fsutil.CheckSpace(filepath.Join(dir, "missing"), 0); err == nil || errors.Is(err, syscall.ENOSPC) {
		t.Errorf("missing directory: got %v, want a statfs error", err)
	}
}

// TestCheckSpace_RootsReservedBlocksAreNotFree: on an ext4 file system
// with blocks reserved for root, a write that would fit only into those
// blocks is refused, although this test runs as root: Papyra, which runs
// unprivileged, could not use them, and its appends would fail first.
func TestCheckSpace_RootsReservedBlocksAreNotFree(t *testing.T) {
	dir := testutil.Ext4(t, 16<<20, 10)
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	if st.Bfree <= st.Bavail {
		t.Fatalf("no reserved blocks on the test file system: bfree %d, bavail %d", st.Bfree, st.Bavail)
	}
	bs := st.Bsize
	reserve := min(int64(st.Blocks)*bs/100, fsutil.Headroom)
	avail := int64(st.Bavail) * bs
	if err := fsutil.CheckSpace(dir, avail-reserve-bs); err != nil {
		t.Errorf("a write that leaves the headroom of what an unprivileged writer may use: %v", err)
	}
	err := fsutil.CheckSpace(dir, avail-reserve+2*bs)
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), dir) {
		t.Errorf("a write that fits only in root's reserved blocks: got %v, want ENOSPC naming %s", err, dir)
	}
}
