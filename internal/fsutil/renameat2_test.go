package fsutil_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/papyra-compact/papyra-compact/internal/fsutil"
)

func TestExchange(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	for p, c := range map[string]string{a: "A", b: "B"} {
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := fsutil.Exchange(a, b); err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	for p, want := range map[string]string{a: "B", b: "A"} {
		if got, _ := os.ReadFile(p); string(got) != want {
			t.Errorf("%s: got %q, want %q", filepath.Base(p), got, want)
		}
	}
	err := fsutil.Exchange(a, filepath.Join(dir, "missing"))
	if !errors.Is(err, unix.ENOENT) {
		t.Errorf("Exchange with a missing name: got %v, want ENOENT", err)
	}
}

func TestRenameNoReplace(t *testing.T) {
	tests := []struct {
		name      string
		targetExt bool
		wantErr   error
	}{
		{"FreeTarget", false, nil},
		{"TakenTarget", true, unix.EEXIST},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			from, to := filepath.Join(dir, "from"), filepath.Join(dir, "to")
			if err := os.WriteFile(from, []byte("new"), 0o644); err != nil {
				t.Fatal(err)
			}
			if tt.targetExt {
				if err := os.WriteFile(to, []byte("old"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			err := fsutil.RenameNoReplace(from, to)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("RenameNoReplace: got %v, want %v", err, tt.wantErr)
			}
			want := "new"
			if tt.targetExt {
				want = "old"
			}
			if got, _ := os.ReadFile(to); string(got) != want {
				t.Errorf("target: got %q, want %q", got, want)
			}
		})
	}
}
