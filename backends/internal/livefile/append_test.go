package livefile_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/papyra-compact/papyra-compact/backends/internal/livefile"
	"github.com/papyra-compact/papyra-compact/internal/fsutil"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// TestAppend_Headroom: drained lines are claimed from the run's budget
// before they are announced. On a file system where they would cross the
// headroom, nothing is announced (save not called), nothing is appended,
// the offset stays, and the error is ENOSPC naming the file; once there
// is room, the same lines go in, once.
func TestAppend_Headroom(t *testing.T) {
	small := testutil.Tmpfs(t, "1m")
	oldPath := filepath.Join(t.TempDir(), "old")
	content := strings.Repeat(`{"kind": "event", "timestamp": 1795000000.0}`+"\n", 3)
	if err := os.WriteFile(oldPath, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	old, err := os.Open(oldPath)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	dstPath := filepath.Join(small, "store")
	dst, err := os.OpenFile(dstPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	// Leave the headroom (1% of 1 MiB) and less than one more page free.
	headroom := int64(1<<20) / 100
	filler := filepath.Join(small, "filler")
	if err := os.WriteFile(filler, make([]byte, testutil.FreeBytes(t, small)-(headroom+4095)/4096*4096), 0o600); err != nil {
		t.Fatal(err)
	}
	var p livefile.Progress
	saves := 0
	save := func() error { saves++; return nil }
	n, err := p.Append(old, dst, fsutil.NewSpace(), save, nil)
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), dstPath) {
		t.Fatalf("append past the headroom: got %v, want ENOSPC naming %s", err, dstPath)
	}
	if n != 0 || p.Offset != 0 || p.Pending != 0 || saves != 0 || livefile.Size(dst) != 0 {
		t.Fatalf("after a refused append: %d appended, %+v, %d saves, %d bytes in the file; want nothing", n, p, saves, livefile.Size(dst))
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if n, err = p.Append(old, dst, fsutil.NewSpace(), save, nil); err != nil || n != int64(len(content)) || p.Offset != n {
		t.Fatalf("append with room: %d bytes, %+v, %v", n, p, err)
	}
	if got, _ := os.ReadFile(dstPath); string(got) != content {
		t.Errorf("the file holds %q, want %q", got, content)
	}
}
