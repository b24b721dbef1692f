package segments_test

import (
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/config"
)

// TestBackend_SegmentFileTypes: an active file or segment that is a FIFO
// or a socket is refused without blocking, naming its type and full mode;
// a hard-linked active file is refused (records appended through the other
// name would go to the old inode), a hard-linked rotated segment is not
// (nothing appends to it).
func TestBackend_SegmentFileTypes(t *testing.T) {
	tests := []struct {
		name  string
		make  func(t *testing.T, active string)
		wants string // "" when the run must succeed
	}{
		{"FIFOActive", func(t *testing.T, a string) {
			if err := unix.Mkfifo(a, 0o620); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(a, 0o620); err != nil {
				t.Fatal(err)
			}
		}, "a named pipe (FIFO) (prw--w----)"},
		{"FIFOSegment", func(t *testing.T, a string) {
			if err := unix.Mkfifo(a+".2", 0o600); err != nil {
				t.Fatal(err)
			}
		}, "a named pipe (FIFO)"},
		{"SocketActive", func(t *testing.T, a string) {
			l, err := net.Listen("unix", a)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
		}, "a socket (S"},
		{"HardLinkedActive", func(t *testing.T, a string) {
			if err := os.WriteFile(a, []byte(rec(3, fresh)), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Link(a, a+"-backup"); err != nil {
				t.Fatal(err)
			}
		}, "hard link"},
		{"HardLinkedRotated", func(t *testing.T, a string) {
			if err := os.WriteFile(a, []byte(rec(3, fresh)), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Link(a+".1", a+"-backup"); err != nil {
				t.Fatal(err)
			}
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A short directory: a unix socket path has a 108-byte limit.
			dir, err := os.MkdirTemp("", "pc")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(dir) })
			active := dir + "/s.log"
			if err := os.WriteFile(active+".1", []byte(rec(1, old)+rec(2, fresh)), 0o644); err != nil {
				t.Fatal(err)
			}
			tt.make(t, active)
			done := make(chan error, 1)
			go func() {
				_, err := compact(t, newBackend(t, active, 1<<20, 5), config.Retention{MaxAgeSeconds: ptr(86400.0)})
				done <- err
			}()
			select {
			case err = <-done:
			case <-time.After(2 * time.Minute): // a hang, not a speed bound
				t.Fatal("the run blocked")
			}
			if tt.wants == "" {
				if err != nil {
					t.Fatalf("compact: %v", err)
				}
				return
			}
			if !errors.Is(err, backends.ErrUnsafe) || !strings.Contains(err.Error(), tt.wants) {
				t.Fatalf("compact: got %v, want a refusal saying %q", err, tt.wants)
			}
			if b, _ := os.ReadFile(active + ".1"); string(b) != rec(1, old)+rec(2, fresh) {
				t.Errorf("segment 1 changed after a refusal: %q", b)
			}
		})
	}
}
