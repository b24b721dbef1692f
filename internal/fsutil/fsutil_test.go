package fsutil_test

import (
	"errors"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/papyra-compact/papyra-compact/internal/fsutil"
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
